//! The store on a real SQLite file: searches (text, columns, scope, time), keyset pages,
//! retention by age and by size (oldest first), and the order-timeline index.

use logger::query::{Filter, parse_terms};
use logger::record::{Level, Record};
use logger::store::{Retention, Store, Writer, key_of};
use logger::timeline::OrderEvent;
use model::Timestamp;
use serde_json::json;

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
const MS: i64 = 1_000_000;
const DAY_MS: i64 = 86_400_000;

fn line(ts: i64, service: &str, level: Level, message: &str) -> Record {
    Record::new(
        Timestamp::from_nanos(ts),
        level,
        service,
        &format!("{service}::x"),
        message.into(),
    )
}

fn with(mut r: Record, order_id: &str, account: &str) -> Record {
    r.set_field("order_id", json!(order_id));
    r.set_field("account", json!(account));
    r
}

fn open() -> (tempfile::TempDir, Writer, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let store = Store::open(&path).unwrap();
    let writer = Writer::open(&path).unwrap();
    (dir, writer, store)
}

fn insert(w: &mut Writer, records: &[Record]) -> Vec<i64> {
    w.transaction(|b| records.iter().map(|r| b.insert(r)).collect())
        .unwrap()
}

fn messages(store: &Store, f: &Filter) -> Vec<String> {
    store
        .page(f, None, 1000)
        .unwrap()
        .lines
        .into_iter()
        .map(|l| l.record.message)
        .collect()
}

#[test]
fn searches_find_lines_by_words_columns_level_and_time_newest_first() {
    let (_d, mut w, store) = open();
    insert(
        &mut w,
        &[
            with(
                line(T0, "gateway", Level::Info, "order accepted"),
                "41",
                "acc-a",
            ),
            with(
                line(T0 + MS, "engine", Level::Info, "order filled"),
                "41",
                "acc-a",
            ),
            with(
                line(
                    T0 + 2 * MS,
                    "gateway",
                    Level::Warn,
                    "order rejected: price_collar",
                ),
                "42",
                "acc-b",
            ),
            line(
                T0 + 3 * MS,
                "platform",
                Level::Error,
                "journal append failed",
            ),
            line(T0 + 3 * MS, "platform", Level::Debug, "journal append slow"),
        ],
    );
    let all = Filter::default();
    assert_eq!(
        messages(&store, &all),
        [
            "journal append slow",
            "journal append failed",
            "order rejected: price_collar",
            "order filled",
            "order accepted"
        ],
        "newest first; lines of one millisecond in the order they came"
    );
    let q = |text: &str| Filter {
        terms: parse_terms(text).unwrap(),
        ..Filter::default()
    };
    assert_eq!(messages(&store, &q("ORDER")).len(), 3);
    assert_eq!(
        messages(&store, &q("price_collar")),
        ["order rejected: price_collar"]
    );
    assert_eq!(
        messages(&store, &q("41")),
        ["order filled", "order accepted"],
        "fields are indexed"
    );
    assert_eq!(
        messages(&store, &q("acc-b")),
        ["order rejected: price_collar"]
    );
    assert_eq!(messages(&store, &q("fill*")), ["order filled"]);
    assert!(messages(&store, &q("cancelled")).is_empty());
    let by_order = Filter {
        order_id: Some("41".into()),
        ..Filter::default()
    };
    assert_eq!(
        messages(&store, &by_order),
        ["order filled", "order accepted"]
    );
    let warn = Filter {
        min_level: Some(Level::Warn),
        ..Filter::default()
    };
    assert_eq!(
        messages(&store, &warn),
        ["journal append failed", "order rejected: price_collar"]
    );
    let gateway_words = Filter {
        service: Some("gateway".into()),
        terms: parse_terms("order").unwrap(),
        ..Filter::default()
    };
    assert_eq!(
        messages(&store, &gateway_words),
        ["order rejected: price_collar", "order accepted"]
    );
    let window = Filter {
        from: Some(T0 + MS),
        to: Some(T0 + 3 * MS),
        ..Filter::default()
    };
    assert_eq!(
        messages(&store, &window),
        ["order rejected: price_collar", "order filled"],
        "from inclusive, to exclusive"
    );
    let sub_ms = Filter {
        from: Some(T0 + 1),
        ..Filter::default()
    };
    assert!(!messages(&store, &sub_ms).contains(&"order accepted".to_owned()));
}

#[test]
fn a_scope_shows_only_lines_of_its_accounts() {
    let (_d, mut w, store) = open();
    insert(
        &mut w,
        &[
            with(line(T0, "gateway", Level::Info, "a's order"), "1", "acc-a"),
            with(
                line(T0 + MS, "gateway", Level::Info, "b's order"),
                "2",
                "acc-b",
            ),
            line(T0 + 2 * MS, "platform", Level::Info, "no account"),
        ],
    );
    let scoped = |accounts: &[&str]| Filter {
        accounts: Some(accounts.iter().map(|a| (*a).to_owned()).collect()),
        ..Filter::default()
    };
    assert_eq!(messages(&store, &scoped(&["acc-a"])), ["a's order"]);
    assert_eq!(
        messages(&store, &scoped(&["acc-a", "acc-b"])),
        ["b's order", "a's order"]
    );
    assert!(messages(&store, &scoped(&[])).is_empty());
    let words = Filter {
        terms: parse_terms("order").unwrap(),
        ..scoped(&["acc-b"])
    };
    assert_eq!(messages(&store, &words), ["b's order"]);
}

#[test]
fn pages_follow_the_cursor_without_gaps_or_repeats_while_lines_arrive() {
    let (_d, mut w, store) = open();
    let first: Vec<Record> = (0..25)
        .map(|i| line(T0 + i * MS / 2, "s", Level::Info, &format!("line {i}")))
        .collect();
    insert(&mut w, &first);
    let f = Filter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.page(&f, cursor, 10).unwrap();
        seen.extend(page.lines.iter().map(|l| l.record.message.clone()));
        // New lines keep arriving; they are newer than every page still to come.
        insert(&mut w, &[line(T0 + 100 * MS, "s", Level::Info, "late")]);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).rev().map(|i| format!("line {i}")).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_millisecond_holds_many_lines_and_a_restart_continues_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let store = Store::open(&path).unwrap();
    let same: Vec<Record> = (0..5)
        .map(|i| line(T0, "s", Level::Info, &format!("m{i}")))
        .collect();
    let ids = insert(&mut Writer::open(&path).unwrap(), &same);
    assert_eq!(
        ids,
        (0..5)
            .map(|i| key_of(Timestamp::from_nanos(T0)) + i)
            .collect::<Vec<_>>()
    );
    // A new writer (a restart) finds the slots of that millisecond taken.
    let more = insert(&mut Writer::open(&path).unwrap(), &same[..2]);
    assert_eq!(more, vec![ids[4] + 1, ids[4] + 2]);
    assert_eq!(store.count().unwrap(), 7);
}

#[test]
fn retention_by_age_deletes_the_oldest_lines_and_timeline_entries() {
    let (_d, mut w, store) = open();
    let now = T0 + 10 * DAY_MS * MS;
    insert(
        &mut w,
        &[
            line(T0, "s", Level::Info, "ten days old"),
            line(
                now - 3 * DAY_MS * MS - MS,
                "s",
                Level::Info,
                "three days old",
            ),
            line(now - DAY_MS * MS, "s", Level::Info, "a day old"),
            line(now, "s", Level::Info, "new"),
        ],
    );
    let event = |order_id, ts| OrderEvent {
        order_id,
        seq: order_id,
        ts: Timestamp::from_nanos(ts),
        kind: "order_submitted".into(),
        accounts: vec!["a".into()],
        summary: json!({}),
    };
    w.transaction(|b| b.index_events(&[event(1, T0), event(2, now - MS)], 2))
        .unwrap();
    let done = w
        .retain(
            Retention {
                max_age_ms: 3 * DAY_MS,
                max_bytes: u64::MAX,
            },
            Timestamp::from_nanos(now),
            8,
        )
        .unwrap();
    assert_eq!((done.lines, done.order_events), (2, 1));
    assert_eq!(messages(&store, &Filter::default()), ["new", "a day old"]);
    assert!(store.order_events(1).unwrap().is_empty());
    assert_eq!(store.order_events(2).unwrap().len(), 1);
    assert_eq!(store.journal_position().unwrap(), 2);
    // The full-text index forgot the deleted lines too.
    let old = Filter {
        terms: parse_terms("ten").unwrap(),
        ..Filter::default()
    };
    assert!(messages(&store, &old).is_empty());
}

#[test]
fn retention_by_size_deletes_oldest_first_until_under_the_limit() {
    let (_d, mut w, store) = open();
    let text = "x".repeat(200);
    for batch in 0..20 {
        let records: Vec<Record> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                line(
                    T0 + n * MS,
                    "s",
                    Level::Info,
                    &format!("line{n} {text} word{n}"),
                )
            })
            .collect();
        insert(&mut w, &records);
    }
    let before = w.usage().unwrap().bytes;
    let limit = before / 2;
    let rules = Retention {
        max_age_ms: i64::MAX / MS,
        max_bytes: limit,
    };
    let now = Timestamp::from_nanos(T0 + 20_000 * MS);
    let mut passes = 0;
    while w.usage().unwrap().bytes > limit {
        w.retain(rules, now, 8).unwrap();
        passes += 1;
        assert!(passes < 50, "retention does not converge: {:?}", w.usage());
    }
    let left = store.page(&Filter::default(), None, 1000).unwrap().lines;
    let remaining = store.count().unwrap();
    assert!(remaining > 0 && remaining < 10_000, "{remaining}");
    assert!(remaining >= 2_000, "kept more than a fifth: {remaining}");
    // What is left is exactly the newest lines: the oldest kept line follows the newest deleted.
    let oldest_kept = store.usage().unwrap().oldest_id.unwrap();
    let newest = left.first().unwrap();
    assert_eq!(newest.record.message.split(' ').next(), Some("line9999"));
    let deleted = 10_000 - remaining as i64;
    assert_eq!(
        oldest_kept,
        key_of(Timestamp::from_nanos(T0 + deleted * MS))
    );
    let gone = Filter {
        terms: parse_terms("word0").unwrap(),
        ..Filter::default()
    };
    assert!(messages(&store, &gone).is_empty());
}

#[test]
fn the_order_index_keeps_events_per_order_and_its_position() {
    let (_d, mut w, store) = open();
    let ev = |order_id, seq, kind: &str| OrderEvent {
        order_id,
        seq,
        ts: Timestamp::from_nanos(T0 + seq as i64),
        kind: kind.into(),
        accounts: vec!["a".into()],
        summary: json!({"seq": seq}),
    };
    w.transaction(|b| {
        b.index_events(
            &[ev(7, 3, "order_submitted"), ev(8, 4, "order_submitted")],
            4,
        )?;
        b.index_events(&[ev(7, 5, "order_accepted"), ev(7, 6, "order_filled")], 6)
    })
    .unwrap();
    let kinds: Vec<String> = store
        .order_events(7)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["order_submitted", "order_accepted", "order_filled"]);
    assert_eq!(store.journal_position().unwrap(), 6);
    // A redelivered batch changes nothing.
    w.transaction(|b| b.index_events(&[ev(7, 5, "order_accepted")], 6))
        .unwrap();
    assert_eq!(store.order_events(7).unwrap().len(), 3);
    assert_eq!(store.order_events(7).unwrap()[2].summary, json!({"seq": 6}));
}

#[test]
fn the_index_narrows_exact_filters_and_the_columns_decide() {
    let (_d, mut w, store) = open();
    insert(
        &mut w,
        &[
            with(
                line(T0, "gateway", Level::Info, "order accepted"),
                "41",
                "acc-a",
            ),
            // Mentions order 41 and acc-a in its text, but is order 43 of acc-b.
            with(
                line(
                    T0 + MS,
                    "gateway",
                    Level::Info,
                    "order 41 of acc-a looked up",
                ),
                "43",
                "acc-b",
            ),
            // An order id and account that share words with the ones asked for.
            with(
                line(T0 + 2 * MS, "engine", Level::Info, "order filled"),
                "41-2",
                "acc-a-2",
            ),
        ],
    );
    let by_order = Filter {
        order_id: Some("41".into()),
        ..Filter::default()
    };
    assert_eq!(messages(&store, &by_order), ["order accepted"]);
    assert_eq!(
        store
            .order_lines("41", 10)
            .unwrap()
            .iter()
            .map(|l| l.record.order_id.clone().unwrap())
            .collect::<Vec<_>>(),
        ["41"]
    );
    let scoped = Filter {
        accounts: Some(vec!["acc-a".into()]),
        ..Filter::default()
    };
    assert_eq!(messages(&store, &scoped), ["order accepted"]);
    let dashed = Filter {
        order_id: Some("41-2".into()),
        ..Filter::default()
    };
    assert_eq!(messages(&store, &dashed), ["order filled"]);
}
