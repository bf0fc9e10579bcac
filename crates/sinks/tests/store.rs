use chrono::NaiveDate;
use model::{
    AccountId, Bar, BookDelta, BookLevel, BookSnapshot, Event, FundingRate, InstrumentId, OrderId,
    Price, Quantity, Quote, Side, Symbol, Timestamp, TradeTick, Venue,
};
use rust_decimal_macros::dec;
use sinks::{AltRecord, BookUpdate, SinkError, TickStore, WriteStats};

fn inst(venue: &str, symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new(venue).unwrap(), Symbol::new(symbol).unwrap())
}
fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}
fn t(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

fn trade(venue: &str, symbol: &str, price: &str, ts: Timestamp) -> TradeTick {
    TradeTick {
        instrument: inst(venue, symbol),
        price: p(price),
        quantity: q("0.5"),
        aggressor: Some(Side::Sell),
        trade_id: format!("{venue}-{}", ts.as_nanos()),
        ts,
    }
}

fn quote(venue: &str, symbol: &str, bid: &str, ask: &str, ts: Timestamp) -> Quote {
    Quote {
        instrument: inst(venue, symbol),
        bid: p(bid),
        bid_size: q("1"),
        ask: p(ask),
        ask_size: q("2"),
        ts,
    }
}

fn store() -> (tempfile::TempDir, TickStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TickStore::open(dir.path().join("marketdata.db")).unwrap();
    (dir, store)
}

const ALL: (Timestamp, Timestamp) = (
    Timestamp::from_nanos(i64::MIN),
    Timestamp::from_nanos(i64::MAX),
);

#[test]
fn every_market_data_kind_round_trips_exactly() {
    let (_dir, mut s) = store();
    let ts = t("2024-03-01T12:00:00.123456789Z");
    let tr = TradeTick {
        instrument: inst("binance", "BTCUSDT"),
        price: p("65000.12345678"),
        // Not representable in f64: proves the column is exact text.
        quantity: q("0.30000000000000004"),
        aggressor: None,
        trade_id: "t-1".to_owned(),
        ts,
    };
    let qu = quote("binance", "BTCUSDT", "64999.9", "65000.1", ts);
    let snap = BookSnapshot {
        instrument: inst("binance", "BTCUSDT"),
        bids: vec![
            BookLevel {
                price: p("64999.9"),
                quantity: q("1.5"),
            },
            BookLevel {
                price: p("64999.8"),
                quantity: q("0.00000001"),
            },
        ],
        asks: vec![BookLevel {
            price: p("65000.1"),
            quantity: q("2"),
        }],
        sequence: Some(9_000_000_001),
        ts,
    };
    let delta = BookDelta {
        instrument: inst("binance", "BTCUSDT"),
        bids: vec![BookLevel {
            price: p("64999.9"),
            quantity: Quantity::ZERO,
        }],
        asks: vec![],
        first_sequence: Some(9_000_000_002),
        sequence: Some(9_000_000_004),
        ts: Timestamp::from_nanos(ts.as_nanos() + 1),
    };
    let bar = Bar {
        instrument: inst("binance", "BTCUSDT"),
        interval: "1m".to_owned(),
        open: p("65000"),
        high: p("65010.5"),
        low: p("64990"),
        close: p("65001"),
        volume: q("12.345"),
        start: t("2024-03-01T12:00:00Z"),
        closed: true,
        ts: t("2024-03-01T12:01:00Z"),
    };
    let funding = FundingRate {
        instrument: inst("binance-futures", "BTCUSDT"),
        rate: dec!(-0.00012345),
        mark_price: Some(p("65002.5")),
        next_funding: Some(t("2024-03-01T16:00:00Z")),
        ts,
    };
    let funding_bare = FundingRate {
        mark_price: None,
        next_funding: None,
        ts: Timestamp::from_nanos(ts.as_nanos() + 1),
        ..funding.clone()
    };
    let batch = vec![
        (1, Event::Trade(tr.clone())),
        (2, Event::Quote(qu.clone())),
        (3, Event::BookSnapshot(snap.clone())),
        (
            4,
            Event::OrderAccepted {
                order_id: OrderId(7),
                account: AccountId::new("test_account").unwrap(),
                ts,
            },
        ),
        (5, Event::BookDelta(delta.clone())),
        (6, Event::Bar(bar.clone())),
        (7, Event::FundingRate(funding.clone())),
        (8, Event::FundingRate(funding_bare.clone())),
    ];
    let stats = s.write_batch(&batch).unwrap();
    assert_eq!(
        stats,
        WriteStats {
            trades: 1,
            quotes: 1,
            book_updates: 2,
            bars: 1,
            funding_rates: 2,
            alt: 0,
            duplicates: 0,
            ignored: 1,
        }
    );
    assert_eq!(
        (stats.ticks(), stats.alt_rows(), stats.written()),
        (4, 3, 7)
    );
    assert_eq!(s.last_seq().unwrap(), 8);

    let (lo, hi) = ALL;
    assert_eq!(
        s.trades("BTCUSDT", None, lo, hi, 10).unwrap(),
        vec![tr.clone()]
    );
    assert_eq!(
        s.quotes("BTCUSDT", None, lo, hi, 10).unwrap(),
        vec![qu.clone()]
    );
    assert_eq!(s.last_trade("BTCUSDT", None).unwrap(), Some(tr));
    assert_eq!(s.last_quote("BTCUSDT", None).unwrap(), Some(qu));
    assert_eq!(
        s.book_updates("BTCUSDT", None, lo, hi, 10).unwrap(),
        vec![BookUpdate::Snapshot(snap), BookUpdate::Delta(delta)]
    );
    assert_eq!(s.bars("BTCUSDT", None, "1m", lo, hi).unwrap(), vec![bar]);
    assert_eq!(
        s.funding_rates("BTCUSDT", None, lo, hi).unwrap(),
        vec![funding, funding_bare]
    );

    let oi = AltRecord {
        kind: "open_interest".to_owned(),
        instrument: inst("bybit", "BTCUSDT"),
        ts,
        payload: serde_json::json!({"open_interest": "12345.678", "unit": "contracts"}),
    };
    let stats = s.write_alt_batch(&[(9, oi.clone())]).unwrap();
    assert_eq!(stats.alt, 1);
    assert_eq!(
        s.alt_series("open_interest", "BTCUSDT", None, lo, hi, 10)
            .unwrap(),
        vec![oi]
    );
    assert!(
        s.alt_series("liquidations", "BTCUSDT", None, lo, hi, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.last_seq().unwrap(), 9);
}

#[test]
fn columns_are_exact_text_and_integer_nanos_in_a_wal_file() {
    let (dir, mut s) = store();
    let ts = t("2024-03-01T00:00:00.000000001Z");
    s.write_batch(&[(1, Event::Trade(trade("binance", "BTCUSDT", "0.1", ts)))])
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("marketdata.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let row: (String, String, String, i64) = conn
        .query_row(
            "SELECT typeof(price), price, typeof(ts), ts FROM trades WHERE seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "text".into(),
            "0.1".into(),
            "integer".into(),
            1_709_251_200_000_000_001
        )
    );
}

#[test]
fn ranges_are_from_inclusive_to_exclusive() {
    let (_dir, mut s) = store();
    let at = |n: i64| Timestamp::from_secs(1_700_000_000 + n);
    let batch: Vec<(u64, Event)> = [10, 20, 30]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                i as u64 + 1,
                Event::Trade(trade("binance", "ETHUSDT", "3000", at(*n))),
            )
        })
        .collect();
    s.write_batch(&batch).unwrap();
    let times = |from: i64, to: i64, limit: usize| -> Vec<i64> {
        s.trades("ETHUSDT", None, at(from), at(to), limit)
            .unwrap()
            .iter()
            .map(|t| t.ts.as_nanos() / 1_000_000_000 - 1_700_000_000)
            .collect()
    };
    assert_eq!(times(10, 30, 10), [10, 20], "to is exclusive");
    assert_eq!(times(10, 31, 10), [10, 20, 30]);
    assert_eq!(times(11, 30, 10), [20], "from is inclusive, 10 < 11");
    assert_eq!(times(20, 20, 10), Vec::<i64>::new(), "an empty range");
    assert_eq!(times(0, 100, 2), [10, 20], "limit keeps the oldest");
    assert!(
        s.trades("BTCUSDT", None, at(0), at(100), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn symbols_match_across_venues_unless_one_is_given() {
    let (_dir, mut s) = store();
    let ts = Timestamp::from_secs(1_700_000_000);
    s.write_batch(&[
        (
            1,
            Event::Quote(quote("binance", "BTCUSDT", "100", "101", ts)),
        ),
        (
            2,
            Event::Quote(quote(
                "kraken",
                "BTCUSDT",
                "100.5",
                "101.5",
                Timestamp::from_nanos(ts.as_nanos() - 1),
            )),
        ),
        (3, Event::Quote(quote("binance", "ETHUSDT", "10", "11", ts))),
    ])
    .unwrap();
    let (lo, hi) = ALL;
    let venues = |v: Option<&str>| -> Vec<String> {
        s.quotes("BTCUSDT", v, lo, hi, 10)
            .unwrap()
            .iter()
            .map(|q| q.instrument.venue.to_string())
            .collect()
    };
    assert_eq!(
        venues(None),
        ["kraken", "binance"],
        "time order across venues"
    );
    assert_eq!(venues(Some("kraken")), ["kraken"]);
    assert!(venues(Some("coinbase")).is_empty());
    assert_eq!(
        s.last_quote("BTCUSDT", Some("kraken"))
            .unwrap()
            .unwrap()
            .bid,
        p("100.5")
    );
}

#[test]
fn last_means_latest_timestamp_not_latest_insert() {
    let (_dir, mut s) = store();
    s.write_batch(&[
        (
            1,
            Event::Trade(trade(
                "binance",
                "SOLUSDT",
                "150",
                Timestamp::from_secs(200),
            )),
        ),
        // Arrives later in the journal but happened earlier (a late venue message).
        (
            2,
            Event::Trade(trade(
                "binance",
                "SOLUSDT",
                "140",
                Timestamp::from_secs(100),
            )),
        ),
    ])
    .unwrap();
    assert_eq!(
        s.last_trade("SOLUSDT", None).unwrap().unwrap().price,
        p("150")
    );
    assert_eq!(s.last_trade("XRPUSDT", None).unwrap(), None);
    assert_eq!(s.last_quote("SOLUSDT", None).unwrap(), None);
}

#[test]
fn replaying_a_batch_stores_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marketdata.db");
    let batch: Vec<(u64, Event)> = (1..=50)
        .map(|i| {
            let ts = Timestamp::from_secs(1_700_000_000 + i);
            let e = if i % 2 == 0 {
                Event::Trade(trade("binance", "BTCUSDT", "100", ts))
            } else {
                Event::Quote(quote("binance", "BTCUSDT", "99", "101", ts))
            };
            (i as u64, e)
        })
        .collect();
    let mut s = TickStore::open(&path).unwrap();
    let first = s.write_batch(&batch).unwrap();
    assert_eq!((first.trades, first.quotes, first.duplicates), (25, 25, 0));
    let again = s.write_batch(&batch).unwrap();
    assert_eq!((again.written(), again.duplicates), (0, 50));

    // After a "crash" (reopen), replaying an overlapping range adds only the new records and
    // never moves the resume point backwards.
    drop(s);
    let mut s = TickStore::open(&path).unwrap();
    assert_eq!(s.last_seq().unwrap(), 50);
    let overlap: Vec<(u64, Event)> = batch[40..]
        .iter()
        .cloned()
        .chain([(
            51,
            Event::Trade(trade(
                "binance",
                "BTCUSDT",
                "101",
                Timestamp::from_secs(1_700_000_051),
            )),
        )])
        .collect();
    let stats = s.write_batch(&overlap).unwrap();
    assert_eq!((stats.trades, stats.duplicates), (1, 10));
    s.write_batch(&batch[..5]).unwrap();
    assert_eq!(s.last_seq().unwrap(), 51);
    let (lo, hi) = ALL;
    assert_eq!(s.trades("BTCUSDT", None, lo, hi, 1000).unwrap().len(), 26);
    assert_eq!(s.quotes("BTCUSDT", None, lo, hi, 1000).unwrap().len(), 25);
}

#[test]
fn ignored_events_still_advance_the_resume_point() {
    let (_dir, mut s) = store();
    assert_eq!(s.last_seq().unwrap(), 0);
    let stats = s
        .write_batch(&[(
            3,
            Event::OrderAccepted {
                order_id: OrderId(1),
                account: AccountId::new("a").unwrap(),
                ts: Timestamp::from_secs(1),
            },
        )])
        .unwrap();
    assert_eq!(stats.ignored, 1);
    assert_eq!(s.last_seq().unwrap(), 3);
    assert_eq!(s.write_batch(&[]).unwrap(), WriteStats::default());
    assert_eq!(s.last_seq().unwrap(), 3);
}

#[test]
fn a_failing_batch_writes_nothing() {
    let (_dir, mut s) = store();
    let ts = Timestamp::from_secs(1);
    let err = s
        .write_batch(&[
            (1, Event::Trade(trade("binance", "BTCUSDT", "1", ts))),
            (u64::MAX, Event::Trade(trade("binance", "BTCUSDT", "2", ts))),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::OutOfRange {
                value: u64::MAX,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.last_seq().unwrap(), 0);
    assert_eq!(s.last_trade("BTCUSDT", None).unwrap(), None);
}

#[test]
fn bars_return_the_latest_version_of_each_candle() {
    let (_dir, mut s) = store();
    let start = |m: i64| Timestamp::from_secs(1_700_000_040 + 60 * m);
    let bar = |m: i64, close: &str, closed: bool, interval: &str| Bar {
        instrument: inst("binance", "BTCUSDT"),
        interval: interval.to_owned(),
        open: p("100"),
        high: p("110"),
        low: p("90"),
        close: p(close),
        volume: q("1"),
        start: start(m),
        closed,
        ts: Timestamp::from_nanos(start(m).as_nanos() + 1),
    };
    s.write_batch(&[
        (1, Event::Bar(bar(0, "101", false, "1m"))),
        (2, Event::Bar(bar(0, "102", true, "1m"))),
        (3, Event::Bar(bar(1, "103", false, "1m"))),
        (4, Event::Bar(bar(0, "555", true, "1h"))),
        (5, Event::Bar(bar(2, "104", true, "1m"))),
    ])
    .unwrap();
    let closes: Vec<(Price, bool)> = s
        .bars("BTCUSDT", None, "1m", start(0), start(2))
        .unwrap()
        .iter()
        .map(|b| (b.close, b.closed))
        .collect();
    // Minute 2 starts exactly at `to`: excluded.
    assert_eq!(closes, [(p("102"), true), (p("103"), false)]);
    assert_eq!(
        s.bars("BTCUSDT", None, "1h", start(0), start(1)).unwrap()[0].close,
        p("555")
    );
}

/// Hand-worked: the close of a UTC day is its last trade on any venue, else its last quote mid.
#[test]
fn daily_closes_known_answer() {
    let (_dir, mut s) = store();
    let e: Vec<Event> = vec![
        // 2024-03-01: last trade 101.5 at the last nanosecond of the day; a later-arriving
        // coinbase print at 22:00 is earlier in time; quotes do not matter on a day with trades.
        Event::Trade(trade(
            "binance",
            "BTCUSDT",
            "100",
            t("2024-03-01T09:00:00Z"),
        )),
        Event::Trade(trade(
            "binance",
            "BTCUSDT",
            "101.5",
            t("2024-03-01T23:59:59.999999999Z"),
        )),
        Event::Trade(trade(
            "coinbase",
            "BTCUSDT",
            "200",
            t("2024-03-01T22:00:00Z"),
        )),
        Event::Quote(quote(
            "binance",
            "BTCUSDT",
            "300",
            "302",
            t("2024-03-01T23:00:00Z"),
        )),
        // 2024-03-02: no trades; last quote mid (102 + 102.5) / 2 = 102.25.
        Event::Quote(quote(
            "binance",
            "BTCUSDT",
            "99",
            "101",
            t("2024-03-02T10:00:00Z"),
        )),
        Event::Quote(quote(
            "binance",
            "BTCUSDT",
            "102",
            "102.5",
            t("2024-03-02T20:00:00Z"),
        )),
        // 2024-03-03: nothing. 2024-03-04: a trade at midnight belongs to the 4th; it beats a
        // later quote.
        Event::Trade(trade(
            "binance",
            "BTCUSDT",
            "103",
            t("2024-03-04T00:00:00Z"),
        )),
        Event::Quote(quote(
            "binance",
            "BTCUSDT",
            "109",
            "111",
            t("2024-03-04T12:00:00Z"),
        )),
        // Outside the queried days, and another symbol.
        Event::Trade(trade(
            "binance",
            "BTCUSDT",
            "105",
            t("2024-03-05T00:00:00Z"),
        )),
        Event::Trade(trade("binance", "BTCUSDT", "99", t("2024-02-29T23:59:59Z"))),
        Event::Trade(trade(
            "binance",
            "ETHUSDT",
            "3000",
            t("2024-03-02T12:00:00Z"),
        )),
    ];
    let batch: Vec<(u64, Event)> = e
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e))
        .collect();
    s.write_batch(&batch).unwrap();

    let day = |d: u32| NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
    assert_eq!(
        s.daily_closes("BTCUSDT", None, day(1), day(4)).unwrap(),
        vec![
            (day(1), p("101.5")),
            (day(2), p("102.25")),
            (day(4), p("103"))
        ]
    );
    assert_eq!(
        s.daily_closes("BTCUSDT", Some("coinbase"), day(1), day(4))
            .unwrap(),
        vec![(day(1), p("200"))]
    );
    assert_eq!(
        s.daily_closes("BTCUSDT", None, day(2), day(2)).unwrap(),
        vec![(day(2), p("102.25"))],
        "a single day, both ends inclusive"
    );
    assert!(
        s.daily_closes("BTCUSDT", None, day(4), day(1))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marketdata.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = TickStore::open(&path).unwrap_err();
    assert!(
        matches!(err, SinkError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
