use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::{Decimal, Side, Timestamp};
use proptest::prelude::*;
use rust_decimal_macros::dec;

use super::*;
use crate::input::parse_ts;
use crate::pnl::{PnlStream, compute, compute_iter};

const HOUR: i64 = 3_600_000_000_000;

fn date(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("test date")
}

fn tr(ts: &str, account: &str, symbol: &str, side: Side, qty: Decimal, price: Decimal) -> Trade {
    Trade {
        ts: parse_ts(ts).expect("test timestamp"),
        account: account.into(),
        owner: account.into(),
        symbol: symbol.into(),
        side,
        qty,
        price,
        fee: dec!(1),
        lot_ids: Vec::new(),
    }
}

fn book_of(method: Method, trades: &[Trade]) -> PnlBook {
    let mut b = PnlBook::new(method);
    for t in trades {
        let _ = b.on_trade(t);
    }
    b
}

fn restored(b: &PnlBook) -> PnlBook {
    let json = serde_json::to_string(b).expect("serialize");
    serde_json::from_str(&json).expect("deserialize")
}

/// The example of daily_series_uses_last_trade_prices_then_final_marks (pnl/tests.rs): three
/// trade days, two accounts, a final marks date; the book gives the same known numbers.
#[test]
fn book_gives_the_known_daily_series() {
    let mut t = vec![
        tr("2024-03-01", "A", "X", Side::Buy, dec!(10), dec!(100)),
        tr("2024-03-02", "B", "X", Side::Buy, dec!(1), dec!(105)),
        tr("2024-03-04", "A", "X", Side::Sell, dec!(4), dec!(104)),
    ];
    t[1].fee = Decimal::ZERO;
    let marks: BTreeMap<String, Decimal> = [("X".to_string(), dec!(110))].into();
    let opts = PnlOptions {
        marks_date: Some(date("2024-03-05")),
        ..PnlOptions::default()
    };
    let b = book_of(Method::Fifo, &t);
    let r = b.report(&marks, &opts).expect("report");
    let equity: Vec<(String, Decimal)> = r.accounts[0]
        .daily
        .iter()
        .map(|d| (d.date.to_string(), d.equity))
        .collect();
    // The same numbers as daily_series_uses_last_trade_prices_then_final_marks.
    assert_eq!(
        equity,
        vec![
            ("2024-03-01".to_string(), dec!(-1)),
            ("2024-03-02".to_string(), dec!(49)),
            ("2024-03-04".to_string(), dec!(38)),
            ("2024-03-05".to_string(), dec!(74)),
        ]
    );
    assert_eq!(
        r,
        compute(&t, Method::Fifo, &marks, &opts).expect("compute")
    );
    assert_eq!(r.accounts[1].daily.len(), 3, "B starts on its first day");
}

#[test]
fn lot_names_follow_the_trade_number_across_a_snapshot() {
    let t = vec![
        tr(
            "2024-03-01T10:00:00Z",
            "A",
            "X",
            Side::Buy,
            dec!(3),
            dec!(10),
        ),
        tr(
            "2024-03-01T11:00:00Z",
            "B",
            "Y",
            Side::Buy,
            dec!(1),
            dec!(5),
        ),
        tr(
            "2024-03-02T10:00:00Z",
            "A",
            "X",
            Side::Sell,
            dec!(5),
            dec!(11),
        ),
        tr(
            "2024-03-03T10:00:00Z",
            "A",
            "X",
            Side::Buy,
            dec!(1),
            dec!(9),
        ),
    ];
    let mut b = book_of(Method::Lifo, &t[..2]);
    b = restored(&b);
    for x in &t[2..] {
        b.on_trade(x).expect("trade");
    }
    let r = b
        .report(&BTreeMap::new(), &PnlOptions::default())
        .expect("report");
    let lots: Vec<(String, Decimal)> = r.accounts[0].symbols[0]
        .open_lots
        .iter()
        .map(|l| (l.lot_id.clone(), l.qty))
        .collect();
    // The sell of 5 closed the long 3 and opened a short of 2 (#3); the buy of 1 covered 1.
    assert_eq!(lots, vec![("#3".to_string(), dec!(-1))]);
    assert_eq!(
        r,
        compute(&t, Method::Lifo, &BTreeMap::new(), &PnlOptions::default()).expect("compute")
    );
}

#[test]
fn a_to_date_inside_the_history_needs_a_replay() {
    let t = vec![
        tr("2024-01-02", "A", "X", Side::Buy, dec!(10), dec!(10)),
        tr("2024-01-03", "A", "X", Side::Sell, dec!(5), dec!(12)),
        tr("2024-01-10", "A", "X", Side::Sell, dec!(5), dec!(14)),
    ];
    let b = book_of(Method::Fifo, &t);
    let marks = BTreeMap::new();
    let inside = PnlOptions {
        to: Some(date("2024-01-05")),
        ..PnlOptions::default()
    };
    assert!(!b.answers(&inside));
    assert!(matches!(
        b.report(&marks, &inside),
        Err(PtrcError::NeedsReplay(_))
    ));
    let want = compute(&t, Method::Fifo, &marks, &inside).expect("compute");
    assert_eq!(want.totals.realized_pnl, dec!(8.5), "only the Jan 3 sale");
    assert_eq!(
        compute_iter(t.iter(), Method::Fifo, &marks, &inside).expect("stream"),
        want
    );
    // On or after the newest date, or before the first, the book answers.
    for to in ["2024-01-10", "2024-02-01", "2024-01-01"] {
        let opts = PnlOptions {
            to: Some(date(to)),
            ..PnlOptions::default()
        };
        assert!(b.answers(&opts), "{to}");
        assert_eq!(
            b.report(&marks, &opts).expect("report"),
            compute(&t, Method::Fifo, &marks, &opts).expect("compute"),
            "{to}"
        );
    }
}

#[test]
fn an_out_of_order_trade_is_refused_and_changes_nothing() {
    let t = [
        tr("2024-01-03", "A", "X", Side::Buy, dec!(1), dec!(10)),
        tr("2024-01-02", "A", "X", Side::Buy, dec!(1), dec!(11)),
    ];
    let mut b = book_of(Method::Fifo, &t[..1]);
    let before = serde_json::to_string(&b).expect("serialize");
    let err = b.on_trade(&t[1]).expect_err("out of order");
    assert!(
        matches!(&err, PtrcError::TradeRejected { number: 2, column, .. } if column == "ts"),
        "{err:?}"
    );
    assert_eq!(serde_json::to_string(&b).expect("serialize"), before);
    assert_eq!(b.trades(), 1);
    // The streaming batch form refuses it the same way.
    let err = compute_iter(
        t.iter(),
        Method::Fifo,
        &BTreeMap::new(),
        &PnlOptions::default(),
    )
    .expect_err("out of order");
    assert!(
        matches!(&err, PtrcError::TradeRejected { number: 2, column, .. } if column == "ts"),
        "{err:?}"
    );
}

#[test]
fn a_refused_trade_fails_only_the_reports_that_include_it() {
    let mut bad = tr("2024-01-03", "A", "X", Side::Sell, dec!(1), dec!(11));
    bad.lot_ids = vec!["NOPE".into()];
    let t = vec![
        tr("2024-01-02", "A", "X", Side::Buy, dec!(5), dec!(10)),
        tr("2024-01-02", "B", "X", Side::Buy, dec!(5), dec!(10)),
        bad,
        tr("2024-01-04", "A", "Y", Side::Buy, dec!(2), dec!(3)),
        tr("2024-01-04", "B", "X", Side::Sell, dec!(2), dec!(12)),
    ];
    let mut b = PnlBook::new(Method::Specific);
    let results: Vec<bool> = t.iter().map(|x| b.on_trade(x).is_ok()).collect();
    assert_eq!(results, vec![true, true, false, true, true]);
    let marks = BTreeMap::new();
    for (account, symbol, fails) in [
        (None, None, true),
        (Some("A"), None, true),
        (Some("A"), Some("Y"), false),
        (Some("B"), None, false),
        (None, Some("Y"), false),
        (None, Some("X"), true),
    ] {
        let opts = PnlOptions {
            account: account.map(str::to_string),
            symbol: symbol.map(str::to_string),
            ..PnlOptions::default()
        };
        let got = b.report(&marks, &opts);
        assert_eq!(got.is_err(), fails, "{account:?} {symbol:?}");
        assert_eq!(got, compute(&t, Method::Specific, &marks, &opts));
    }
}

#[test]
fn snapshots_of_another_version_or_inconsistent_ones_are_refused() {
    let t = vec![
        tr("2024-01-02", "A", "X", Side::Buy, dec!(5), dec!(10)),
        tr("2024-01-03", "B", "Y", Side::Sell, dec!(1), dec!(11)),
    ];
    let b = book_of(Method::Hifo, &t);
    let mut v = serde_json::to_value(&b).expect("serialize");
    assert_eq!(v["version"], SNAPSHOT_VERSION);
    v["version"] = serde_json::json!(SNAPSHOT_VERSION + 1);
    let err = serde_json::from_value::<PnlBook>(v.clone()).expect_err("version");
    assert!(err.to_string().contains("version"), "{err}");
    v["version"] = serde_json::json!(SNAPSHOT_VERSION);
    let corruptions: [(&str, serde_json::Value); 4] = [
        ("/book/positions/0/account", serde_json::json!(7)),
        ("/book/positions/1/symbol", serde_json::json!(5)),
        ("/book/accounts/1/positions", serde_json::json!([0])),
        (
            "/book/days",
            serde_json::json!(["2024-01-03", "2024-01-02"]),
        ),
    ];
    for (path, value) in corruptions {
        let mut bad = v.clone();
        *bad.pointer_mut(path).expect("path") = value;
        let err = serde_json::from_value::<PnlBook>(bad).expect_err(path);
        assert!(err.to_string().contains("inconsistent"), "{path}: {err}");
    }
    let ok: PnlBook = serde_json::from_value(v).expect("restore");
    assert_eq!(
        ok.report(&BTreeMap::new(), &PnlOptions::default()),
        b.report(&BTreeMap::new(), &PnlOptions::default())
    );
}

#[test]
fn a_stream_is_done_after_the_to_date() {
    let t = [
        tr("2024-01-02", "A", "X", Side::Buy, dec!(5), dec!(10)),
        tr("2024-01-05", "A", "X", Side::Sell, dec!(5), dec!(12)),
        tr("2024-01-04", "A", "X", Side::Sell, dec!(5), dec!(12)),
    ];
    let opts = PnlOptions {
        to: Some(date("2024-01-03")),
        ..PnlOptions::default()
    };
    let mut s = PnlStream::new(Method::Fifo, opts.clone());
    s.push(&t[0]).expect("push");
    assert!(!s.is_done());
    s.push(&t[1]).expect("push");
    assert!(s.is_done());
    // Ignored once done, even out of order.
    s.push(&t[2]).expect("ignored");
    let r = s.finish(&BTreeMap::new()).expect("finish");
    assert_eq!(r.accounts[0].symbols[0].position_qty, dec!(5));
    assert_eq!(
        r,
        compute(&t[..2], Method::Fifo, &BTreeMap::new(), &opts).expect("compute")
    );
}

#[test]
fn a_stream_error_is_final() {
    let mut zero = tr("2024-01-03", "A", "X", Side::Sell, dec!(0), dec!(12));
    zero.fee = Decimal::ZERO;
    let good = tr("2024-01-04", "A", "X", Side::Sell, dec!(1), dec!(12));
    let mut s = PnlStream::new(Method::Fifo, PnlOptions::default());
    s.push(&tr("2024-01-02", "A", "X", Side::Buy, dec!(5), dec!(10)))
        .expect("push");
    let err = s.push(&zero).expect_err("zero quantity");
    assert!(
        matches!(&err, PtrcError::TradeRejected { number: 2, column, .. } if column == "qty"),
        "{err:?}"
    );
    assert!(s.is_done());
    assert_eq!(s.push(&good), Err(err.clone()));
    assert_eq!(s.finish(&BTreeMap::new()), Err(err));
}

/// Memory follows the open lots: a long stream whose positions go flat over and over holds
/// no more lots than one round opens, and its snapshot does not grow with the trade count
/// within a day.
#[test]
fn held_lots_stay_bounded_when_positions_go_flat() {
    let start = parse_ts("2024-01-02").expect("ts").as_nanos();
    let accounts = ["A", "B"];
    let symbols = ["X", "Y", "Z"];
    const ROUND: i64 = 4; // buys per round, then one sell of everything
    let mut b = PnlBook::new(Method::Fifo);
    let mut n: i64 = 0;
    let mut max_lots = 0;
    let mut snapshot_after = BTreeMap::new();
    for round in 0..2_000i64 {
        for a in accounts {
            for s in symbols {
                for k in 0..=ROUND {
                    n += 1;
                    let price = Decimal::new(1_000 + (round * 7 + k * 13) % 300, 2);
                    let (side, qty) = if k < ROUND {
                        (Side::Buy, Decimal::from(k + 1))
                    } else {
                        (Side::Sell, Decimal::from(ROUND * (ROUND + 1) / 2))
                    };
                    let t = Trade {
                        // 1 ms apart: the whole stream lies within one day.
                        ts: Timestamp::from_nanos(start + n * 1_000_000),
                        account: a.into(),
                        owner: a.into(),
                        symbol: s.into(),
                        side,
                        qty,
                        price,
                        fee: dec!(0.01),
                        lot_ids: Vec::new(),
                    };
                    b.on_trade(&t).expect("trade");
                    max_lots = max_lots.max(b.open_lot_count());
                }
            }
        }
        assert_eq!(b.open_lot_count(), 0, "flat after round {round}");
        if round == 199 || round == 1_999 {
            let len = serde_json::to_string(&b).expect("serialize").len();
            snapshot_after.insert(round, len);
        }
    }
    assert_eq!(b.trades() as i64, n);
    // One position at a time is mid-round: at most ROUND lots held.
    assert_eq!(max_lots, ROUND as usize);
    assert_eq!(b.stored_day_count(), 0, "no day has closed");
    // Ten times the trades: only the running totals' digits grow.
    let (small, large) = (snapshot_after[&199], snapshot_after[&1_999]);
    assert!(large < small + 200, "snapshot grew from {small} to {large}");
}

// ---------------------------------------------------------------------------------------------
// Property: book == compute for random trades, options and snapshot cut points
// ---------------------------------------------------------------------------------------------

/// (account, symbol, buy?, qty, qty scale, price in cents, fee in cents, hours after the
/// previous trade, lot id on buys / lot named by sells, close the whole position instead)
type Step = (u8, u8, bool, u32, u32, u32, u32, u8, Option<u8>, bool);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0u8..3,
            0u8..2,
            any::<bool>(),
            // Rarely 0: a trade compute refuses.
            prop_oneof![99 => 1u32..60, 1 => Just(0u32)],
            0u32..2,
            1u32..20_000,
            prop_oneof![1 => Just(0u32), 3 => 0u32..300],
            // Same instant, same day or days later.
            prop_oneof![2 => Just(0u8), 6 => 1u8..10, 2 => 20u8..80],
            prop::option::weighted(0.15, 0u8..6),
            // Flat positions (and days on which an account holds nothing) must occur often.
            prop::bool::weighted(0.3),
        ),
        0..45,
    )
}

fn build(steps: &[Step]) -> Vec<Trade> {
    let mut ts = parse_ts("2024-01-01T09:00:00Z").expect("ts").as_nanos();
    let mut held: BTreeMap<(u8, u8), Decimal> = BTreeMap::new();
    steps
        .iter()
        .map(|&(a, s, buy, q, qs, p, f, gap, lot, close)| {
            ts += i64::from(gap) * HOUR;
            let position = held.entry((a, s)).or_default();
            let (buy, qty) = if close && !position.is_zero() {
                (position.is_sign_negative(), position.abs())
            } else {
                (buy, Decimal::new(i64::from(q), qs))
            };
            *position += if buy { qty } else { -qty };
            Trade {
                ts: Timestamp::from_nanos(ts),
                account: ["A", "B", "C"][usize::from(a)].into(),
                owner: String::new(),
                symbol: ["X", "Y"][usize::from(s)].into(),
                side: if buy { Side::Buy } else { Side::Sell },
                qty,
                price: Decimal::new(i64::from(p), 2),
                fee: Decimal::new(i64::from(f), 2),
                lot_ids: lot.map(|l| vec![format!("L{l}")]).unwrap_or_default(),
            }
        })
        .collect()
}

/// (account, symbol, from, to, marks_date as day offsets from the first trade date; long_only;
/// marks for X and Y in cents)
type Opts = (
    Option<u8>,
    Option<u8>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
    Option<u32>,
    Option<u32>,
);

fn options() -> impl Strategy<Value = Opts> {
    (
        prop::option::of(0u8..4),
        prop::option::of(0u8..3),
        prop::option::of(-2i64..25),
        prop::option::of(-2i64..25),
        prop::option::of(-2i64..25),
        prop::bool::weighted(0.2),
        prop::option::of(1u32..20_000),
        prop::option::of(1u32..20_000),
    )
}

fn opts_of(o: &Opts, first: NaiveDate) -> (PnlOptions, BTreeMap<String, Decimal>) {
    let day = |k: i64| first + chrono::Duration::days(k);
    let (account, symbol, from, to, md, long_only, mx, my) = *o;
    let opts = PnlOptions {
        long_only,
        // "D" and "Z" have no trades.
        account: account.map(|a| ["A", "B", "C", "D"][usize::from(a)].to_string()),
        symbol: symbol.map(|s| ["X", "Y", "Z"][usize::from(s)].to_string()),
        from: from.map(day),
        to: to.map(day),
        marks_date: md.map(day),
    };
    let mut marks = BTreeMap::new();
    if let Some(m) = mx {
        marks.insert("X".to_string(), Decimal::new(i64::from(m), 2));
    }
    if let Some(m) = my {
        marks.insert("Y".to_string(), Decimal::new(i64::from(m), 2));
    }
    (opts, marks)
}

const METHODS: [Method; 5] = [
    Method::Fifo,
    Method::Lifo,
    Method::Avg,
    Method::Hifo,
    Method::Specific,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The book's report equals compute over the same trades for every option set it answers
    /// (and says NeedsReplay exactly for a `to` inside the history, where compute_iter gives
    /// compute's answer); a snapshot taken at any cut point and restored continues exactly like
    /// the uninterrupted book; compute_iter equals compute.
    #[test]
    fn book_report_equals_compute(
        s in steps(),
        queries in prop::collection::vec(options(), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let trades = build(&s);
        let first = trades.first().map_or(date("2024-01-01"), Trade::date);
        let last = trades.last().map_or(first, Trade::date);
        let cut = cut.index(trades.len() + 1);
        for method in METHODS {
            let mut book = PnlBook::new(method);
            let mut outcomes = Vec::new();
            for t in &trades[..cut] {
                outcomes.push(book.on_trade(t).is_ok());
            }
            let json = serde_json::to_string(&book).expect("serialize");
            let mut resumed: PnlBook = serde_json::from_str(&json).expect("deserialize");
            prop_assert_eq!(serde_json::to_string(&resumed).expect("serialize"), json);
            let mut resumed_outcomes = outcomes.clone();
            for t in &trades[cut..] {
                outcomes.push(book.on_trade(t).is_ok());
                resumed_outcomes.push(resumed.on_trade(t).is_ok());
            }
            prop_assert_eq!(&outcomes, &resumed_outcomes);
            // Uninterrupted and resumed books hold the same state.
            prop_assert_eq!(
                serde_json::to_string(&book).expect("serialize"),
                serde_json::to_string(&resumed).expect("serialize")
            );
            prop_assert_eq!(book.trades(), trades.len());
            for q in &queries {
                let (opts, marks) = opts_of(q, first);
                let want = compute(&trades, method, &marks, &opts);
                let streamed = compute_iter(trades.iter(), method, &marks, &opts);
                prop_assert_eq!(&streamed, &want, "compute_iter {} {:?}", method, opts);
                let inside = opts.to.is_some_and(|to| to >= first && to < last);
                for b in [&book, &resumed] {
                    let got = b.report(&marks, &opts);
                    if inside {
                        prop_assert!(matches!(got, Err(PtrcError::NeedsReplay(_))), "{:?}", got);
                    } else {
                        prop_assert_eq!(&got, &want, "{} {:?}", method, opts);
                    }
                }
            }
            // A refused trade (a 0 quantity, a bad lot name under SPECIFIC) is refused by
            // compute over the trades up to it as well.
            if let Some(i) = outcomes.iter().position(|ok| !ok) {
                let err = compute(&trades[..=i], method, &BTreeMap::new(), &PnlOptions::default());
                prop_assert!(err.is_err(), "{} trade {} refused by the book only", method, i + 1);
            }
        }
    }
}
