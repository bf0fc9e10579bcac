//! Builders and a running service over a real journal, shared by the service's tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use blotter::{Blotter, BlotterWriter};
use journal::{Bus, Delivery, InProcessBus, Journal};
use model::{
    AccountId, ClientOrderId, Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order,
    OrderId, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use ptrc_service::{Inputs, Limits, Ptrc, Settings};
use runtime::{ConsumerHandle, ConsumerMetrics, Runner, SnapshotPolicy, Spec};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// 2024-01-01T00:00:00Z.
pub const DAY0: i64 = 1_704_067_200;

pub fn inst(symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(symbol).unwrap())
}

/// One fill as the engine journals it (the order's quantity is the fill's).
#[derive(Debug, Clone)]
pub struct F {
    pub id: u64,
    pub account: &'static str,
    pub symbol: &'static str,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub ts: Timestamp,
}

impl F {
    pub fn fill(&self) -> Fill {
        Fill {
            fill_id: FillId(self.id),
            order_id: OrderId(self.id),
            account: AccountId::new(self.account).unwrap(),
            instrument: inst(self.symbol),
            side: self.side,
            quantity: Quantity::new(self.qty).unwrap(),
            price: Price::new(self.price).unwrap(),
            fee: Money::new(self.fee).unwrap(),
            liquidity: Liquidity::Taker,
            ts: self.ts,
        }
    }

    /// The order and its fill (the order id is the fill id), as the blotter needs them.
    pub fn events(&self) -> Vec<Event> {
        let order = Order::new(
            OrderId(self.id),
            ClientOrderId::new(format!("c{}", self.id)).unwrap(),
            AccountId::new(self.account).unwrap(),
            inst(self.symbol),
            self.side,
            OrderType::Market,
            TimeInForce::Ioc,
            Quantity::new(self.qty).unwrap(),
            None,
            None,
            self.ts,
        )
        .unwrap();
        vec![
            Event::OrderSubmitted { order },
            Event::OrderFilled(self.fill()),
        ]
    }
}

pub fn deliveries(events: &[Event], first_seq: u64) -> Vec<Delivery> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Delivery {
            seq: first_seq + i as u64,
            recorded_at: e.ts(),
            subject: e.subject(),
            event: e.clone(),
        })
        .collect()
}

/// A small deterministic generator (tests must not depend on a seed they cannot see).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` fills over `days` days in two accounts and two symbols, with positions that flip and
/// go flat, some maker rebates, and about one fill in six stamped back by up to a step plus two
/// minutes, often before the previous fill (fills decided on market data carry exchange time).
pub fn mixed_fills(seed: u64, n: usize, days: i64) -> Vec<F> {
    let mut rng = Lcg(seed);
    let step = days * 86_400 / n as i64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let base = DAY0 + step * i as i64;
        let jitter = if rng.below(6) == 0 {
            -(rng.below(step as u64 + 120) as i64)
        } else {
            0
        };
        let fee = match rng.below(5) {
            0 => Decimal::new(-5, 2),
            1 => Decimal::ZERO,
            _ => Decimal::new(rng.below(50) as i64, 2),
        };
        out.push(F {
            id: i as u64 + 1,
            account: ["alice", "bob"][rng.below(2) as usize],
            symbol: ["BTCUSDT", "ETHUSDT"][rng.below(2) as usize],
            side: if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            },
            qty: Decimal::new(1 + rng.below(30) as i64, 1),
            price: Decimal::new(90_00 + rng.below(20_00) as i64, 2),
            fee,
            ts: Timestamp::from_secs(base + jitter),
        });
    }
    out
}

pub fn settings() -> Settings {
    Settings {
        default_method: ptrc::pnl::Method::Fifo,
        tax: ptrc::tax::TaxSettings::default(),
        var_confidence: 0.99,
        account_owners: HashMap::new(),
        limits: Limits::default(),
    }
}

/// A journal, a blotter writer and the ptrc service over it.
pub struct Harness {
    pub journal: Journal,
    pub bus: InProcessBus,
    pub svc: Ptrc,
    pub app: Router,
    pub blotter: Blotter,
    pub blotter_writer: ConsumerHandle<BlotterWriter>,
    pub keys: ApiKeys,
    pub admin: String,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<Result<(), runtime::RuntimeError>>>,
}

pub fn policy() -> SnapshotPolicy {
    SnapshotPolicy {
        every_events: 1_000_000,
        every: Duration::from_secs(3600),
        keep: 2,
    }
}

impl Harness {
    /// Opens (or reopens) the journal and stores under `dir` and starts everything.
    pub async fn start(dir: &Path, settings: Settings) -> Harness {
        let (journal, _) = Journal::open(&dir.join("events.db")).unwrap();
        let bus = InProcessBus::new(journal.clone());
        let shutdown = CancellationToken::new();
        let metrics = telemetry::Metrics::new();
        let runner = Runner::new(
            bus.clone(),
            ConsumerMetrics::register(&metrics),
            shutdown.clone(),
        );
        let blotter_path = dir.join("blotter.db");
        let (blotter_writer, blotter_task) = runner
            .start_stored(
                Spec::new("blotter", "orders.* fills.*"),
                BlotterWriter::open(&blotter_path, 3600).unwrap(),
            )
            .await
            .unwrap();
        let blotter = Blotter::open(&blotter_path);
        let keys = ApiKeys::in_memory();
        let admin = keys
            .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
            .unwrap();
        let started = ptrc_service::start(
            &runner,
            dir,
            policy(),
            Inputs {
                marks: std::sync::Arc::new(|_: &str| None),
                history: None,
                blotter: blotter.clone(),
                reports: reports::ReportStore::local(&dir.join("reports")).unwrap(),
                keys: keys.clone(),
            },
            settings,
        )
        .await
        .unwrap();
        let mut tasks = vec![blotter_task];
        tasks.extend(started.tasks.into_iter().map(|(_, t)| t));
        Harness {
            journal,
            bus,
            app: ptrc_service::router(started.service.clone()),
            svc: started.service,
            blotter,
            blotter_writer,
            keys,
            admin,
            shutdown,
            tasks,
        }
    }

    pub fn key(&self, role: Role, accounts: &[&str]) -> String {
        let accounts = if accounts.is_empty() {
            Accounts::All(AllMarker::All)
        } else {
            Accounts::Some(
                accounts
                    .iter()
                    .map(|a| AccountId::new(*a).unwrap())
                    .collect(),
            )
        };
        self.keys.create_ephemeral(role, accounts).unwrap()
    }

    pub async fn publish(&self, events: Vec<Event>) {
        self.bus.publish_all(events).await.unwrap();
    }

    pub async fn publish_fills(&self, fills: &[F]) {
        self.publish(fills.iter().flat_map(F::events).collect())
            .await;
    }

    /// Waits until the books and the blotter have everything journaled so far.
    pub async fn settle(&self) {
        let head = self.journal.last_seq();
        let wait = Duration::from_secs(20);
        self.svc.books().wait_for(head, wait).await.unwrap();
        self.blotter_writer.wait_for(head, wait).await.unwrap();
    }

    /// Stops every consumer (each writes its final snapshot or commit).
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap().unwrap();
        }
        self.journal.shutdown().unwrap();
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = self.call_raw(method, uri, key, body).await;
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        body: &str,
    ) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, bytes)
    }

    pub async fn post(&self, uri: &str, key: &str, body: &str) -> (StatusCode, serde_json::Value) {
        self.call("POST", uri, key, body).await
    }
}

pub fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
