//! The alert store: what the writer folds in, what readers page through, and a restart of the
//! writer over a real journal.

use std::collections::BTreeSet;
use std::time::Duration;

use alerts::{AlertQuery, AlertStore, AlertWriter, FILTER, StoredAlert};
use journal::{Bus, Delivery, InProcessBus, Journal};
use model::{Event, Timestamp};
use proptest::prelude::*;
use runtime::{ConsumerMetrics, Runner, Spec};
use tokio_util::sync::CancellationToken;

fn alert(key: &str, rule: &str, owner: &str, accounts: &[&str], secs: i64) -> Event {
    let ts = Timestamp::from_secs(1_700_000_000 + secs);
    Event::ComplianceAlert {
        key: key.into(),
        rule: rule.into(),
        alert: serde_json::json!({
            "type": rule,
            "key": key,
            "owner": owner,
            "accounts": accounts,
            "ts": ts,
        }),
        ts,
    }
}

fn ack(key: &str, by: &str, secs: i64) -> Event {
    Event::AlertAcknowledged {
        key: key.into(),
        by: by.into(),
        ts: Timestamp::from_secs(1_700_100_000 + secs),
    }
}

fn delivery(seq: u64, event: Event) -> Delivery {
    Delivery {
        seq,
        recorded_at: event.ts(),
        subject: event.subject(),
        event,
    }
}

fn keys(items: &[StoredAlert]) -> Vec<&str> {
    items.iter().map(|a| a.key.as_str()).collect()
}

fn all(store: &AlertStore, q: AlertQuery) -> Vec<StoredAlert> {
    store
        .page(&AlertQuery { limit: 10_000, ..q })
        .unwrap()
        .items
}

#[test]
fn alerts_and_acks_are_stored_by_key_in_journal_order_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("alerts.db");
    // A reader may open the store before the writer: it is empty, not an error.
    let store = AlertStore::open(&path).unwrap();
    assert_eq!((store.count().unwrap(), store.position().unwrap()), (0, 0));
    assert!(all(&store, AlertQuery::default()).is_empty());

    let mut w = AlertWriter::open(&path).unwrap();
    w.write(&[
        delivery(3, alert("W-1", "WASH_TRADE", "o1", &["a1"], 10)),
        delivery(7, alert("S-1", "SPOOFING", "o2", &["a2", "a3"], 20)),
        delivery(9, ack("W-1", "reviewer", 1)),
    ])
    .unwrap();
    w.write(&[
        // A repeated key is ignored (the first raise wins); an ack of an unknown key too.
        delivery(11, alert("W-1", "WASH_TRADE", "other", &["zz"], 99)),
        delivery(12, ack("nope", "reviewer", 2)),
        delivery(15, alert("L-1", "LAYERING", "o1", &["a3"], 30)),
    ])
    .unwrap();
    assert_eq!((w.count(), w.position().unwrap()), (3, 15));
    assert_eq!((store.count().unwrap(), store.position().unwrap()), (3, 15));

    let w1 = store.get("W-1").unwrap().unwrap();
    assert_eq!(w1.journal_seq, 3);
    assert_eq!(w1.owner.as_deref(), Some("o1"));
    assert_eq!(w1.accounts, vec!["a1"]);
    assert_eq!(w1.rule, "WASH_TRADE");
    assert_eq!(w1.ts, Timestamp::from_secs(1_700_000_010));
    assert_eq!(w1.alert["owner"], "o1");
    assert_eq!(w1.acknowledged_by.as_deref(), Some("reviewer"));
    assert_eq!(
        w1.acknowledged_at,
        Some(Timestamp::from_secs(1_700_100_001))
    );
    assert!(store.get("nope").unwrap().is_none());
    assert!(store.contains("S-1").unwrap() && !store.contains("nope").unwrap());
    assert_eq!(
        store.get("S-1").unwrap().unwrap().acknowledged_by,
        None,
        "not acknowledged"
    );

    let q = |f: fn(&mut AlertQuery)| {
        let mut q = AlertQuery::default();
        f(&mut q);
        keys(&all(&store, q))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(|_| {}), ["W-1", "S-1", "L-1"]);
    assert_eq!(q(|q| q.newest_first = true), ["L-1", "S-1", "W-1"]);
    assert_eq!(q(|q| q.owner = Some("o1".into())), ["W-1", "L-1"]);
    assert_eq!(q(|q| q.rule = Some("SPOOFING".into())), ["S-1"]);
    assert_eq!(q(|q| q.accounts = Some(vec!["a3".into()])), ["S-1", "L-1"]);
    assert_eq!(
        q(|q| q.accounts = Some(vec!["a1".into(), "a2".into()])),
        ["W-1", "S-1"]
    );
    assert!(q(|q| q.accounts = Some(vec![])).is_empty());
    assert!(q(|q| q.accounts = Some(vec!["zz".into()])).is_empty());
    assert_eq!(
        q(|q| {
            q.from = Some(Timestamp::from_secs(1_700_000_020));
            q.to = Some(Timestamp::from_secs(1_700_000_030));
        }),
        ["S-1"],
        "from inclusive, to exclusive"
    );
    assert_eq!(
        store.raised_after(3, 10).unwrap(),
        vec![
            ("S-1".to_string(), Timestamp::from_secs(1_700_000_020)),
            ("L-1".to_string(), Timestamp::from_secs(1_700_000_030)),
        ]
    );
    assert_eq!(store.raised_after(3, 1).unwrap().len(), 1);

    // A batch applied again (a commit lost to a power cut) changes nothing.
    let mut w = AlertWriter::open(&path).unwrap();
    assert_eq!(w.count(), 3, "the count survives a reopen");
    w.write(&[delivery(15, alert("L-1", "LAYERING", "o1", &["a3"], 30))])
        .unwrap();
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(all(&store, AlertQuery::default()).len(), 3);
}

#[test]
fn an_alert_without_owner_or_accounts_is_still_listed_but_matches_no_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let mut w = AlertWriter::open(&path).unwrap();
    let odd = Event::ComplianceAlert {
        key: "X-1".into(),
        rule: "CUSTOM".into(),
        alert: serde_json::json!({"note": "no owner"}),
        ts: Timestamp::from_secs(5),
    };
    w.write(&[delivery(1, odd)]).unwrap();
    let store = AlertStore::open(&path).unwrap();
    let a = store.get("X-1").unwrap().unwrap();
    assert_eq!((a.owner, a.accounts.len()), (None, 0));
    assert_eq!(all(&store, AlertQuery::default()).len(), 1);
    let scoped = AlertQuery {
        accounts: Some(vec!["a1".into()]),
        ..Default::default()
    };
    assert!(all(&store, scoped).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_resumes_after_its_stored_position_over_a_real_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let path = dir.path().join("alerts.db");
    let store = AlertStore::open(&path).unwrap();
    let metrics = telemetry::Metrics::new();
    for round in 0..3u64 {
        // Other traffic between the alerts: the writer reads only its subject.
        for i in 0..5 {
            let n = round * 5 + i;
            bus.publish(Event::OrderAccepted {
                order_id: model::OrderId(n + 1),
                account: model::AccountId::new("a1").unwrap(),
                ts: Timestamp::from_secs(n as i64),
            })
            .await
            .unwrap();
            bus.publish(alert(
                &format!("K-{n}"),
                "WASH_TRADE",
                "o",
                &["a1"],
                n as i64,
            ))
            .await
            .unwrap();
        }
        bus.publish(ack(&format!("K-{}", round * 5), "r", round as i64))
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let runner = Runner::new(
            bus.clone(),
            ConsumerMetrics::register(&metrics),
            shutdown.clone(),
        );
        let (h, task) = runner
            .start_stored(
                Spec::new("alert-store", FILTER),
                AlertWriter::open(&path).unwrap(),
            )
            .await
            .unwrap();
        h.wait_for(bus.last_seq(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(h.read(AlertWriter::count), (round + 1) * 5);
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
    // Every alert once, in journal order, every ack applied.
    let listed = all(&store, AlertQuery::default());
    let expected: Vec<String> = (0..15).map(|n| format!("K-{n}")).collect();
    assert_eq!(keys(&listed), expected);
    let acked: Vec<&str> = listed
        .iter()
        .filter(|a| a.acknowledged_by.is_some())
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(acked, ["K-0", "K-5", "K-10"]);
    assert_eq!(store.position().unwrap(), journal.last_seq());
}

/// One alert of the property test: (owner, rule, accounts, ts offset).
fn arb_alert() -> impl Strategy<Value = (u8, u8, BTreeSet<u8>, i64)> {
    (
        0u8..3,
        0u8..3,
        proptest::collection::btree_set(0u8..4, 0..3),
        0i64..50,
    )
}

const RULES: [&str; 3] = ["WASH_TRADE", "SPOOFING", "LAYERING"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Pages of any size and filter, read while new alerts keep arriving, list every matching
    /// alert exactly once in journal order (oldest first: arrivals after the first page are
    /// included; newest first: the listing is of what existed at the first page).
    #[test]
    fn paging_never_skips_or_repeats(
        before in proptest::collection::vec(arb_alert(), 0..40),
        arriving in proptest::collection::vec(arb_alert(), 0..20),
        page in 1usize..7,
        owner in proptest::option::of(0u8..3),
        rule in proptest::option::of(0u8..3),
        accounts in proptest::option::of(proptest::collection::btree_set(0u8..4, 0..3)),
        window in proptest::option::of((0i64..50, 0i64..50)),
        newest_first in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        let mut w = AlertWriter::open(&path).unwrap();
        let store = AlertStore::open(&path).unwrap();
        let mut seq = 0u64;
        let mut write = |w: &mut AlertWriter, batch: &[(u8, u8, BTreeSet<u8>, i64)]| {
            let ds: Vec<Delivery> = batch.iter().map(|(o, r, accts, t)| {
                seq += 2; // gaps: other subjects in between
                let accts: Vec<String> = accts.iter().map(|a| format!("a{a}")).collect();
                let accts: Vec<&str> = accts.iter().map(String::as_str).collect();
                delivery(seq, alert(&format!("K-{seq}"), RULES[*r as usize], &format!("o{o}"), &accts, *t))
            }).collect();
            w.write(&ds).unwrap();
        };
        write(&mut w, &before);
        let query = AlertQuery {
            owner: owner.map(|o| format!("o{o}")),
            rule: rule.map(|r| RULES[r as usize].to_string()),
            accounts: accounts.map(|s| s.iter().map(|a| format!("a{a}")).collect()),
            from: window.map(|(a, b)| Timestamp::from_secs(1_700_000_000 + a.min(b))),
            to: window.map(|(a, b)| Timestamp::from_secs(1_700_000_000 + a.max(b))),
            cursor: None,
            limit: page,
            newest_first,
        };
        let matches = |a: &StoredAlert| {
            query.owner.as_ref().is_none_or(|o| a.owner.as_ref() == Some(o))
                && query.rule.as_ref().is_none_or(|r| &a.rule == r)
                && query.accounts.as_ref().is_none_or(|s| a.accounts.iter().any(|x| s.contains(x)))
                && query.from.is_none_or(|f| a.ts >= f)
                && query.to.is_none_or(|t| a.ts < t)
        };
        let at_start: Vec<StoredAlert> = all(&store, AlertQuery::default());
        let mut listed: Vec<u64> = Vec::new();
        let mut cursor = None;
        let mut arrivals = arriving.chunks(3);
        let mut pages = 0;
        loop {
            let p = store.page(&AlertQuery { cursor, ..query.clone() }).unwrap();
            prop_assert!(p.items.len() <= page);
            prop_assert!(p.items.iter().all(matches));
            listed.extend(p.items.iter().map(|a| a.journal_seq));
            pages += 1;
            prop_assert!(pages < 200, "paging does not end");
            // New alerts arrive between pages.
            if let Some(chunk) = arrivals.next() {
                write(&mut w, chunk);
            }
            match p.next_cursor {
                Some(c) => {
                    prop_assert_eq!(Some(c), p.items.last().map(|a| a.journal_seq));
                    cursor = Some(c);
                }
                None => break,
            }
        }
        for rest in arrivals {
            write(&mut w, rest);
        }
        let expected: Vec<u64> = if newest_first {
            at_start.iter().rev().filter(|a| matches(a)).map(|a| a.journal_seq).collect()
        } else {
            // Oldest first reaches everything that matched by the time it read the last page;
            // arrivals after that are beyond the end.
            let everything = all(&store, AlertQuery::default());
            let last_page_end = listed.last().copied().unwrap_or(0);
            everything.iter().filter(|a| matches(a))
                .map(|a| a.journal_seq)
                .filter(|s| *s <= last_page_end || at_start.iter().any(|b| b.journal_seq == *s))
                .collect()
        };
        prop_assert_eq!(&listed, &expected);
        let distinct: BTreeSet<u64> = listed.iter().copied().collect();
        prop_assert_eq!(distinct.len(), listed.len(), "no alert listed twice");
    }
}

#[test]
fn a_filtered_page_is_full_and_continues_after_its_last_alert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let mut w = AlertWriter::open(&path).unwrap();
    // Alerts 1..=20; those involving b2 are kept out by the filter.
    let batch: Vec<Delivery> = (1..=20)
        .map(|i| {
            let accounts: &[&str] = if i % 3 == 0 { &["a1", "b2"] } else { &["a1"] };
            delivery(
                i,
                alert(&format!("K-{i}"), "WASH_TRADE", "o", accounts, i as i64),
            )
        })
        .collect();
    w.write(&batch).unwrap();
    let store = AlertStore::open(&path).unwrap();
    let keep = |a: &StoredAlert| !a.accounts.iter().any(|x| x == "b2");
    let expected: Vec<String> = (1..=20)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("K-{i}"))
        .collect();
    for newest_first in [false, true] {
        for limit in [1, 2, 4, 13, 14, 100] {
            let mut q = AlertQuery {
                accounts: Some(vec!["a1".into()]),
                limit,
                newest_first,
                ..Default::default()
            };
            let mut seen = Vec::new();
            loop {
                let page = store.page_filtered(&q, keep).unwrap();
                assert!(page.items.len() <= limit);
                assert!(
                    page.next_cursor.is_none() || page.items.len() == limit,
                    "a page with a next one is full"
                );
                seen.extend(page.items.iter().map(|a| a.key.clone()));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            let mut want = expected.clone();
            if newest_first {
                want.reverse();
            }
            assert_eq!(seen, want, "limit {limit}, newest first {newest_first}");
        }
    }
}
