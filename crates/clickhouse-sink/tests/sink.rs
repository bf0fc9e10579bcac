//! The ClickHouse sink against a real server (`TEST_CLICKHOUSE_URL`, default
//! http://127.0.0.1:8123; skipped without one, failing under `CI=true`). Each test uses a
//! database of its own and drops it.

use std::time::Duration;

use clickhouse_sink::{ClickHouseError, ClickHouseSink, Fault, Table};
use journal::{InProcessBus, Journal};
use model::{
    AccountId, ClientOrderId, Event, InstrumentId, Liquidity, Money, Order, OrderId, OrderType,
    Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};
use runtime::{Consumer, ConsumerMetrics, Runner, StoredPosition};
use tokio_util::sync::CancellationToken;

mod common;
use common::{Proxy, TestDb, deliveries, event};

const WAIT: Duration = Duration::from_secs(10);

async fn sink(db: &TestDb) -> ClickHouseSink {
    ClickHouseSink::connect(&db.cfg, WAIT).await.unwrap()
}

fn apply(sink: &mut ClickHouseSink, batch: &[journal::Delivery]) -> Result<(), ClickHouseError> {
    sink.apply(batch, &mut Vec::new())
}

fn delivery(seq: u64, event: Event) -> journal::Delivery {
    journal::Delivery {
        seq,
        recorded_at: event.ts(),
        subject: event.subject(),
        event,
    }
}

#[tokio::test]
async fn rows_land_with_their_exact_values() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut s = sink(&db).await;
    assert_eq!(s.stored_position().unwrap(), 0);
    let venue = Venue::new("coinbase").unwrap();
    let inst = InstrumentId::new(venue, Symbol::new("BTC-USD").unwrap());
    let account = AccountId::new("acct:1@x").unwrap();
    let order = Order::new(
        OrderId(41),
        ClientOrderId::new("it's\\mine").unwrap(),
        account.clone(),
        inst.clone(),
        Side::Sell,
        OrderType::StopLimit,
        TimeInForce::Day,
        Quantity::parse("0.000000000000000000000000123").unwrap(),
        Some(Price::parse("999999999999999.999999999999").unwrap()),
        Some(Price::parse("0.5").unwrap()),
        Timestamp::from_nanos(1_700_000_000_123_456_789),
    )
    .unwrap();
    let fill = model::Fill {
        fill_id: model::FillId(7),
        order_id: OrderId(41),
        account: account.clone(),
        instrument: inst.clone(),
        side: Side::Sell,
        quantity: Quantity::parse("0.12345678").unwrap(),
        price: Price::parse("45000.12345678").unwrap(),
        // 21 places: rounded in the Decimal column, exact in fee_text.
        fee: Money::parse("-0.004166261940844253445").unwrap(),
        liquidity: Liquidity::Maker,
        ts: Timestamp::from_nanos(1_700_000_001_000_000_001),
    };
    let batch = vec![
        delivery(
            10,
            Event::Quote(Quote {
                instrument: inst.clone(),
                bid: Price::parse("45000.1").unwrap(),
                bid_size: Quantity::parse("1.5").unwrap(),
                ask: Price::parse("45000.2").unwrap(),
                ask_size: Quantity::parse("0").unwrap(),
                // Before 1970: the seconds column clamps, ts_ns keeps it.
                ts: Timestamp::from_nanos(-1_500_000_000),
            }),
        ),
        delivery(
            11,
            Event::Trade(TradeTick {
                instrument: inst.clone(),
                price: Price::parse("45000.15").unwrap(),
                quantity: Quantity::parse("0.001").unwrap(),
                aggressor: None,
                trade_id: "a\tb\nc\\d'e".into(),
                ts: Timestamp::from_nanos(1_700_000_000_000_000_000),
            }),
        ),
        delivery(12, Event::OrderSubmitted { order }),
        delivery(
            13,
            Event::OrderRejected {
                order_id: OrderId(41),
                account: account.clone(),
                code: "PRICE_COLLAR".into(),
                message: "price 'x'\nout of band".into(),
                ts: Timestamp::from_nanos(1_700_000_000_500_000_000),
            },
        ),
        delivery(14, Event::OrderFilled(fill.clone())),
        // Not stored by this sink: counted past, no row.
        delivery(
            15,
            Event::IdsReserved {
                orders_through: 1,
                fills_through: 1,
                ts: Timestamp::from_secs(1),
            },
        ),
    ];
    apply(&mut s, &batch).unwrap();
    assert_eq!(s.stored_position().unwrap(), 15);
    let stats = s.stats();
    for t in Table::ALL {
        let want = if t == Table::Orders { 2 } else { 1 };
        assert_eq!(stats.rows(t), want, "{t:?}");
    }

    let c = db.client();
    let d = &db.cfg.database;
    // toUInt32: 18.16 prints the zero DateTime as 0000-00-00 00:00:00, current releases as
    // 1970-01-01 00:00:00.
    let q = c
        .query(&format!(
            "SELECT seq, toUInt32(ts), ts_ns, venue, symbol, bid, bid_size, ask, ask_size, bid_text, bid_size_text, ask_text, ask_size_text FROM {d}.quotes"
        ))
        .await
        .unwrap();
    assert_eq!(
        q,
        [[
            "10",
            "0",
            "-1500000000",
            "coinbase",
            "BTC-USD",
            "45000.100000000000000000",
            "1.500000000000000000",
            "45000.200000000000000000",
            "0.000000000000000000",
            "45000.1",
            "1.5",
            "45000.2",
            "0"
        ]]
    );
    let t = c
        .query(&format!(
            "SELECT seq, ts, trade_id, aggressor, price, price_text, quantity_text FROM {d}.trades"
        ))
        .await
        .unwrap();
    assert_eq!(
        t,
        [[
            "11",
            "2023-11-14 22:13:20",
            "a\tb\nc\\d'e",
            "",
            "45000.150000000000000000",
            "45000.15",
            "0.001"
        ]]
    );
    let o = c
        .query(&format!(
            "SELECT seq, event, order_id, account, client_order_id, symbol, side, order_type, time_in_force, \
             quantity, price, stop_price, quantity_text, price_text, stop_price_text, reason, message \
             FROM {d}.orders ORDER BY seq"
        ))
        .await
        .unwrap();
    assert_eq!(
        o[0],
        [
            "12",
            "submitted",
            "41",
            "acct:1@x",
            "it's\\mine",
            "BTC-USD",
            "sell",
            "stop_limit",
            "day",
            // 27 places: rounds to zero at 18, exact in the text.
            "0.000000000000000000",
            "999999999999999.999999999999000000",
            "0.500000000000000000",
            "0.000000000000000000000000123",
            "999999999999999.999999999999",
            "0.5",
            "",
            ""
        ]
    );
    assert_eq!(
        o[1],
        [
            "13",
            "rejected",
            "41",
            "acct:1@x",
            "",
            "",
            "",
            "",
            "",
            "\\N",
            "\\N",
            "\\N",
            "",
            "",
            "",
            "PRICE_COLLAR",
            "price 'x'\nout of band"
        ]
    );
    let f = c
        .query(&format!(
            "SELECT fee, fee_text, side, liquidity FROM {d}.fills"
        ))
        .await
        .unwrap();
    assert_eq!(
        f,
        [[
            "-0.004166261940844253",
            "-0.004166261940844253445",
            "sell",
            "maker"
        ]]
    );
    // The query helper rebuilds the fill exactly.
    let got = c
        .fills_for_account(
            &account,
            Timestamp::from_secs(1_700_000_001),
            Timestamp::from_secs(1_700_000_002),
            10,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].seq, &got[0].fill), (14, &fill));
    let none = c
        .fills_for_account(
            &account,
            Timestamp::from_nanos(1_700_000_001_000_000_002),
            Timestamp::from_secs(1_700_000_002),
            10,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "ts_ns is the exact lower bound");
    assert_eq!(c.progress(ClickHouseSink::NAME).await.unwrap(), 15);
}

#[tokio::test]
async fn replays_and_restarts_from_older_positions_never_double_rows() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut s = sink(&db).await;
    for chunk in deliveries(1, 100).chunks(30) {
        apply(&mut s, chunk).unwrap();
    }
    assert_eq!(db.exactly_once().await, [20, 20, 40, 20]);
    // The same batches again (a redelivery): nothing new.
    for chunk in deliveries(1, 100).chunks(30) {
        apply(&mut s, chunk).unwrap();
    }
    assert_eq!(db.exactly_once().await, [20, 20, 40, 20]);
    assert_eq!(s.stats().replayed(), 100);
    drop(s);

    // A restart resumes after the recorded position.
    let mut s = sink(&db).await;
    assert_eq!(s.stored_position().unwrap(), 100);
    apply(&mut s, &deliveries(1, 120)).unwrap();
    assert_eq!(db.exactly_once().await, [24, 24, 48, 24]);
    drop(s);

    // A restart from a position far behind the tables (progress lost): every row already
    // stored is found and skipped, the new ones land.
    db.client()
        .execute(&format!(
            "DROP TABLE `{}`.`{}`",
            db.cfg.database,
            clickhouse_sink::PROGRESS_TABLE
        ))
        .await
        .unwrap();
    let mut s = sink(&db).await;
    assert_eq!(s.stored_position().unwrap(), 0);
    for chunk in deliveries(1, 150).chunks(64) {
        apply(&mut s, chunk).unwrap();
    }
    assert_eq!(db.exactly_once().await, [30, 30, 60, 30]);
    assert_eq!(s.stats().replayed(), 120);
    assert_eq!(s.stored_position().unwrap(), 150);
}

#[tokio::test]
async fn a_crash_between_the_inserts_of_a_batch_still_stores_each_row_once() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut s = sink(&db).await;
    apply(&mut s, &deliveries(1, 10)).unwrap();
    // Batch 11..=40 touches all four tables; the run stops after two of its inserts.
    s.inject(Fault::CrashAfterInserts(2));
    let e = apply(&mut s, &deliveries(11, 40)).unwrap_err();
    assert!(matches!(e, ClickHouseError::Injected(_)), "{e}");
    let partial = db.exactly_once().await;
    assert_eq!(
        partial,
        [8, 8, 4, 2],
        "quotes and trades of the batch are in"
    );
    drop(s);

    let mut s = sink(&db).await;
    assert_eq!(
        s.stored_position().unwrap(),
        10,
        "the batch was not recorded"
    );
    apply(&mut s, &deliveries(11, 40)).unwrap();
    assert_eq!(db.exactly_once().await, [8, 8, 16, 8]);

    // Stopped after every insert but before the progress row.
    s.inject(Fault::CrashAfterInserts(4));
    apply(&mut s, &deliveries(41, 60)).unwrap_err();
    drop(s);
    let mut s = sink(&db).await;
    assert_eq!(s.stored_position().unwrap(), 40);
    apply(&mut s, &deliveries(41, 60)).unwrap();
    assert_eq!(db.exactly_once().await, [12, 12, 24, 12]);
    assert_eq!(s.stored_position().unwrap(), 60);
}

#[tokio::test]
async fn an_insert_whose_answer_is_lost_is_retried_without_doubling() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut s = sink(&db).await;
    s.inject(Fault::LoseAnswers(3));
    apply(&mut s, &deliveries(1, 50)).unwrap();
    assert_eq!(db.exactly_once().await, [10, 10, 20, 10]);
    let stats = s.stats();
    assert_eq!(stats.retries(), 3);
    assert!(stats.up());
    assert_eq!(stats.last_error(), None);
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_naming_the_setting() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let base = db.cfg.http_url.trim_start_matches("http://").to_owned();
    for userinfo in ["default:not-the-password", "nobody:secret"] {
        let cfg = db.at(&format!("http://{userinfo}@{base}"));
        let e = ClickHouseSink::connect(&cfg, WAIT).await.unwrap_err();
        assert!(matches!(e, ClickHouseError::Auth { .. }), "{e:?}");
        assert!(e.is_config());
        let msg = e.to_string();
        assert!(msg.contains("clickhouse.http_url"), "{msg}");
        assert!(msg.contains("credentials"), "{msg}");
        let password = userinfo.split(':').nth(1).unwrap();
        assert!(!msg.contains(password), "the password shows: {msg}");
    }
}

#[tokio::test]
async fn no_server_at_start_is_a_clear_error_naming_the_setting() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = db.at(&format!("http://127.0.0.1:{closed}"));
    let e = ClickHouseSink::connect(&cfg, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, ClickHouseError::Unreachable { .. }), "{e:?}");
    assert!(e.is_config());
    assert!(e.to_string().contains("clickhouse.http_url"), "{e}");
}

/// The sink under the runtime: ClickHouse goes away (a proxy in front of it stops), the journal
/// keeps growing, the consumer retries and catches up when it comes back; a shutdown while it
/// is away stops the consumer with a message and the next start writes what was left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_retries_while_clickhouse_is_away_and_catches_up() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let mut proxy = Proxy::start(&db.cfg.http_url);
    let cfg = db.at(&proxy.url());
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    journal
        .append_batch((1..=40).map(event).collect())
        .await
        .unwrap();

    let metrics = telemetry::Metrics::new();
    let shutdown = CancellationToken::new();
    let runner = Runner::new(
        InProcessBus::new(journal.clone()),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    let sink = ClickHouseSink::connect(&cfg, WAIT)
        .await
        .unwrap()
        .with_shutdown(shutdown.clone())
        .with_metrics(&metrics);
    let stats = sink.stats();
    let (handle, task) = runner
        .start_stored(ClickHouseSink::spec(), sink)
        .await
        .unwrap();
    handle.wait_for(40, WAIT).await.unwrap();
    assert_eq!(db.exactly_once().await, [8, 8, 16, 8]);

    proxy.stop();
    journal
        .append_batch((41..=100).map(event).collect())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stats.retries() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stats.up());
    assert!(
        stats.last_error().unwrap().contains("clickhouse.http_url"),
        "{:?}",
        stats.last_error()
    );
    assert!(metrics.render().contains("trade2026_clickhouse_sink_up 0"));
    assert!(!task.is_finished(), "the consumer keeps retrying");

    proxy.resume();
    handle.wait_for(100, Duration::from_secs(30)).await.unwrap();
    assert!(stats.up());
    assert_eq!(db.exactly_once().await, [20, 20, 40, 20]);

    // Away again, then a shutdown: the consumer stops with a message; nothing is lost.
    proxy.stop();
    journal
        .append_batch((101..=110).map(event).collect())
        .await
        .unwrap();
    let retries = stats.retries();
    while stats.retries() == retries {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let stopped = task.await.unwrap().unwrap_err().to_string();
    assert!(stopped.contains("clickhouse.http_url"), "{stopped}");
    assert!(stopped.contains("next start"), "{stopped}");

    proxy.resume();
    let shutdown = CancellationToken::new();
    let runner = Runner::new(
        InProcessBus::new(journal.clone()),
        ConsumerMetrics::register(&telemetry::Metrics::new()),
        shutdown.clone(),
    );
    let sink = ClickHouseSink::connect(&cfg, WAIT).await.unwrap();
    assert_eq!(sink.stored_position().unwrap(), 100);
    let (handle, task) = runner
        .start_stored(ClickHouseSink::spec(), sink)
        .await
        .unwrap();
    handle.wait_for(110, WAIT).await.unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(db.exactly_once().await, [22, 22, 44, 22]);
}

/// `apply` also works when the caller's runtime is a current-thread one (the runtime's loop then
/// calls it without `block_in_place`).
#[test]
fn apply_works_outside_and_inside_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::new()) else {
        return;
    };
    let mut s = rt.block_on(sink(&db));
    apply(&mut s, &deliveries(1, 5)).unwrap();
    rt.block_on(async { apply(&mut s, &deliveries(6, 10)) })
        .unwrap();
    assert_eq!(rt.block_on(db.exactly_once()), [2, 2, 4, 2]);
    drop(s);
}
