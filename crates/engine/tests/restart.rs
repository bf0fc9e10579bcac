//! A crash and restart must not change what resting orders do. The same script runs twice over
//! a real journal: once uninterrupted, once with a crash (the tokio runtime dropped mid-flight:
//! no clean shutdown, no final snapshot, like SIGKILL) while a stop-limit is triggered and
//! resting, market data reaching a plain stop lands in the journal while the engine is down,
//! and a DAY session ends during the downtime. Both runs must end the same: the plain stop
//! executes on the first live update after the restart, the stop-limit stays triggered and fills
//! as a maker, and the DAY order is expired (at start, after the restart).

use std::time::Duration;

use chrono::Utc;
use engine::{Engine, EngineConfig, Outcome, Query, QueryAnswer, TradingCore};
use journal::{InProcessBus, Journal};
use model::{
    AccountId, Event, InstrumentId, Liquidity, OrderId, OrderStatus, OrderType, Price, Quantity,
    Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};
use oms::NewOrder;
use runtime::{ConsumerHandle, ConsumerMetrics, Runner, SnapshotStore};
use tokio_util::sync::CancellationToken;

fn btc() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn quote(bid: &str, ask: &str) -> Event {
    Event::Quote(Quote {
        instrument: btc(),
        bid: p(bid),
        bid_size: Quantity::parse("10").unwrap(),
        ask: p(ask),
        ask_size: Quantity::parse("10").unwrap(),
        ts: Timestamp::now(),
    })
}

fn trade(price: &str) -> Event {
    Event::Trade(TradeTick {
        instrument: btc(),
        price: p(price),
        quantity: Quantity::parse("0.1").unwrap(),
        aggressor: Some(Side::Buy),
        trade_id: format!("t{price}"),
        ts: Timestamp::now(),
    })
}

fn order(kind: OrderType, tif: TimeInForce, price: Option<&str>, stop: Option<&str>) -> NewOrder {
    NewOrder {
        account: AccountId::new("acct").unwrap(),
        client_order_id: None,
        instrument: btc(),
        side: Side::Buy,
        order_type: kind,
        time_in_force: tif,
        quantity: Quantity::parse("1").unwrap(),
        price: price.map(p),
        stop_price: stop.map(p),
        not_a_duplicate_of: None,
    }
}

/// One life of the process: its own tokio runtime, so dropping it is a crash.
struct Life {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    snapshotter: ConsumerHandle<TradingCore>,
    shutdown: CancellationToken,
}

fn start(dir: &std::path::Path, journal: &Journal, session_end: chrono::NaiveTime) -> Life {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let (engine, snapshotter) = rt.block_on(async {
        let runner = Runner::new(
            InProcessBus::new(journal.clone()),
            ConsumerMetrics::register(&telemetry::Metrics::new()),
            shutdown.clone(),
        );
        let config = EngineConfig {
            day_session_end_utc: Some(session_end),
            ..EngineConfig::default()
        };
        let store = SnapshotStore::open(&dir.join("snapshots"), "engine", 3).unwrap();
        let started = Engine::start(
            journal.clone(),
            config,
            store,
            &runner,
            engine::EngineGauges::default(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        (started.engine, started.snapshotter)
    });
    Life {
        rt,
        engine,
        snapshotter,
        shutdown,
    }
}

impl Life {
    /// Journals market data and waits until the engine has acted on it.
    fn market(&self, journal: &Journal, events: Vec<Event>) {
        let last = *self
            .rt
            .block_on(journal.append_batch(events))
            .unwrap()
            .end();
        self.rt.block_on(async {
            for _ in 0..500 {
                match self.engine.query(Query::MarketDataApplied).await.unwrap() {
                    QueryAnswer::MarketDataApplied(seq) if seq >= last => return,
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            panic!("the engine never acted on market data up to {last}");
        });
    }

    fn submit(&self, req: NewOrder) -> OrderId {
        match self.rt.block_on(self.engine.submit(req)).unwrap() {
            Outcome::Accepted(o) => o.order_id,
            other => panic!("not accepted: {other:?}"),
        }
    }

    /// The durable state, from the replica that folds the journal in order.
    fn core<T>(&self, journal: &Journal, f: impl FnOnce(&TradingCore) -> T) -> T {
        self.rt
            .block_on(
                self.snapshotter
                    .wait_for(journal.last_seq(), Duration::from_secs(5)),
            )
            .unwrap();
        self.snapshotter.read(f)
    }

    fn crash(self) {
        // Dropping the runtime drops every task where it stands: nothing shuts down cleanly.
        drop(self.engine);
        drop(self.snapshotter);
        drop(self.rt);
    }

    fn stop(self) {
        self.shutdown.cancel();
        drop(self.rt);
    }
}

#[derive(Debug, PartialEq)]
struct Ending {
    stop: (OrderStatus, Option<Liquidity>),
    stop_limit: (OrderStatus, Option<Liquidity>),
    day: OrderStatus,
    open_orders: usize,
}

fn run(crash: bool) -> Ending {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    // The DAY session ends 1.5 s from now (while the crashed run is down).
    let session_end = (Utc::now() + chrono::Duration::milliseconds(1_500)).time();
    let life = start(dir.path(), &journal, session_end);
    life.market(&journal, vec![quote("99.95", "100.05"), trade("100.00")]);
    let stop = life.submit(order(OrderType::Stop, TimeInForce::Gtc, None, Some("101")));
    let stop_limit = life.submit(order(
        OrderType::StopLimit,
        TimeInForce::Gtc,
        Some("100.3"),
        Some("100.5"),
    ));
    let day = life.submit(order(
        OrderType::Limit,
        TimeInForce::Day,
        Some("99.5"),
        None,
    ));
    // Reaches the stop-limit: triggered, not marketable at 100.3, so it rests at its limit.
    life.market(&journal, vec![quote("100.55", "100.65"), trade("100.60")]);
    life.core(&journal, |c| {
        let r = c
            .venue()
            .resting_order(stop_limit)
            .expect("resting stop-limit");
        assert!(r.triggered, "the stop-limit triggered live");
    });

    let life = if crash {
        life.crash();
        // While the engine is down the feed keeps journaling: this reaches the plain stop.
        let tail = vec![quote("101.15", "101.25"), trade("101.20")];
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(journal.append_batch(tail))
            .unwrap();
        std::thread::sleep(Duration::from_millis(1_700)); // past the session end
        let life = start(dir.path(), &journal, session_end);
        life.core(&journal, |c| {
            let r = c.venue().resting_order(stop_limit).expect("still resting");
            assert!(
                r.triggered,
                "a restart keeps the trigger of a resting stop-limit"
            );
            let s = c.venue().resting_order(stop).expect("the stop still rests");
            assert!(
                s.is_pending_stop(),
                "replayed market data alone does not fire a stop without executing it"
            );
        });
        life
    } else {
        life.market(&journal, vec![quote("101.15", "101.25"), trade("101.20")]);
        std::thread::sleep(Duration::from_millis(1_700));
        life
    };
    // The first live update after a restart (just the next update otherwise).
    life.market(&journal, vec![quote("101.20", "101.30")]);
    // The ask falls to the stop-limit's price: it fills resting, as a maker.
    life.market(&journal, vec![quote("100.20", "100.25")]);

    let ending = life.core(&journal, |c| {
        let status = |id: OrderId| c.oms().order(id).map(|o| o.status);
        let liquidity = |id: OrderId| {
            journal
                .read_from(1, 10_000)
                .unwrap()
                .into_iter()
                .find_map(|r| match r.event {
                    Event::OrderFilled(f) if f.order_id == id => Some(f.liquidity),
                    _ => None,
                })
        };
        Ending {
            stop: (status(stop).unwrap_or(OrderStatus::Filled), liquidity(stop)),
            stop_limit: (
                status(stop_limit).unwrap_or(OrderStatus::Filled),
                liquidity(stop_limit),
            ),
            day: journal
                .read_from(1, 10_000)
                .unwrap()
                .into_iter()
                .find_map(|r| match r.event {
                    Event::OrderExpired { order_id, .. } if order_id == day => {
                        Some(OrderStatus::Expired)
                    }
                    _ => None,
                })
                .unwrap_or(OrderStatus::Accepted),
            open_orders: c.oms().open_len(),
        }
    });
    life.stop();
    ending
}

#[test]
fn resting_stops_stop_limits_and_day_orders_behave_the_same_across_a_crash() {
    let uninterrupted = run(false);
    assert_eq!(
        uninterrupted,
        Ending {
            stop: (OrderStatus::Filled, Some(Liquidity::Taker)),
            stop_limit: (OrderStatus::Filled, Some(Liquidity::Maker)),
            day: OrderStatus::Expired,
            open_orders: 0,
        }
    );
    assert_eq!(run(true), uninterrupted);
}

/// Ids handed out before a crash may belong to decisions the crash took back; a restart
/// continues after everything reserved before it, so no order or fill id is ever given twice.
#[test]
fn order_and_fill_ids_continue_after_the_last_reservation_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let never = chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap();
    let life = start(dir.path(), &journal, never);
    life.market(&journal, vec![quote("99.95", "100.05"), trade("100.00")]);
    let first = life.submit(order(OrderType::Market, TimeInForce::Ioc, None, None));
    let first_fill = life.core(&journal, |c| c.venue().next_fill_id().0) - 1;
    let reserved = life.core(&journal, |c| c.reserved());
    assert!(reserved.orders_through >= first.0 && reserved.fills_through >= first_fill);
    life.crash();

    let life = start(dir.path(), &journal, never);
    let second = life.submit(order(OrderType::Market, TimeInForce::Ioc, None, None));
    assert!(
        second.0 > reserved.orders_through,
        "order id {second} after a crash must come after the reservation {}",
        reserved.orders_through
    );
    let fills: Vec<u64> = journal
        .read_from(1, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::OrderFilled(f) if f.order_id == second => Some(f.fill_id.0),
            _ => None,
        })
        .collect();
    assert!(!fills.is_empty());
    assert!(
        fills.iter().all(|f| *f > reserved.fills_through),
        "{fills:?}"
    );
    life.stop();
}

/// Orders queued faster than the engine takes them are decided in batches (one journal batch
/// per wake-up of the engine task): every caller is still answered only once its order's
/// events are on disk, a query queued among them waits for the orders before it, and journal
/// order is decision order.
#[test]
fn orders_queued_together_are_each_answered_only_once_durable_in_decision_order() {
    const ORDERS: usize = 600; // more than one batch
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let session_end = (Utc::now() + chrono::Duration::hours(12)).time();
    let life = start(dir.path(), &journal, session_end);
    life.market(&journal, vec![quote("99.95", "100.05"), trade("100.00")]);
    let answered: Vec<(OrderId, u64)> = life.rt.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..ORDERS {
            let (engine, journal) = (life.engine.clone(), journal.clone());
            calls.spawn(async move {
                let req = order(OrderType::Limit, TimeInForce::Gtc, Some("99.5"), None);
                let id = match engine.submit(req).await.unwrap() {
                    Outcome::Accepted(o) => o.order_id,
                    other => panic!("order {i} not accepted: {other:?}"),
                };
                // What the caller was told is on disk already.
                let durable = journal.read_from(1, usize::MAX).unwrap();
                let at = durable
                    .iter()
                    .find(|r| {
                        matches!(&r.event, Event::OrderAccepted { order_id, .. } if *order_id == id)
                    })
                    .unwrap_or_else(|| panic!("order {id:?} answered before it was durable"));
                (id, at.seq)
            });
        }
        // A query among the orders: answered once everything decided before it is durable.
        let limits = life.engine.query(Query::RiskLimits).await.unwrap();
        assert!(matches!(limits, QueryAnswer::RiskLimits(_)));
        calls.join_all().await
    });
    assert_eq!(answered.len(), ORDERS);
    // Decision order (order ids are handed out as orders are decided) is journal order.
    let mut by_id = answered.clone();
    by_id.sort_by_key(|(id, _)| id.0);
    assert!(
        by_id.windows(2).all(|w| w[0].1 < w[1].1),
        "journal order follows decision order"
    );
    life.stop();
}
