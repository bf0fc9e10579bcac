//! What the ClickHouse tests share: the server (or a skip, or under CI a failure), a database
//! of each test's own (dropped at the end), test events and a TCP proxy to take the server
//! away and bring it back without stopping it (other tests share it).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clickhouse_sink::ClickHouseClient;
use config::ClickHouseConfig;
use journal::Delivery;
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};
use tokio_util::sync::CancellationToken;

/// The server's URL, or `None` (skip) when nothing answers there; under `CI=true` a missing
/// server fails the test.
pub async fn clickhouse_url() -> Option<String> {
    let url =
        std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let cfg = ClickHouseConfig {
        http_url: url.clone(),
        database: "default".into(),
    };
    let answered = ClickHouseClient::new(&cfg)
        .unwrap()
        .wait_ready(Duration::from_secs(3))
        .await;
    match answered {
        Ok(_) => Some(url),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ClickHouse at {url} is required under CI: {e}"
            );
            eprintln!("skipped: no ClickHouse at {url} ({e}); set TEST_CLICKHOUSE_URL");
            None
        }
    }
}

/// A database of the test's own, `trade2026_test_<pid>_<n>`, dropped when this is dropped.
pub struct TestDb {
    pub cfg: ClickHouseConfig,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> Option<TestDb> {
        let url = clickhouse_url().await?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Some(TestDb {
            cfg: ClickHouseConfig {
                http_url: url,
                database: format!("trade2026_test_{}_{n}", std::process::id()),
            },
        })
    }

    /// The same database through another URL (a proxy, wrong credentials).
    pub fn at(&self, url: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            http_url: url.into(),
            database: self.cfg.database.clone(),
        }
    }

    pub fn client(&self) -> ClickHouseClient {
        ClickHouseClient::new(&self.cfg).unwrap()
    }

    /// `(rows, distinct seqs)` of a table.
    pub async fn counts(&self, table: &str) -> (u64, u64) {
        let rows = self
            .client()
            .query(&format!(
                "SELECT count(), uniqExact(seq) FROM `{}`.`{table}`",
                self.cfg.database
            ))
            .await
            .unwrap();
        (rows[0][0].parse().unwrap(), rows[0][1].parse().unwrap())
    }

    /// Asserts every table holds each of its sequences once, and returns the row counts
    /// (quotes, trades, orders, fills).
    pub async fn exactly_once(&self) -> [u64; 4] {
        let mut out = [0; 4];
        for (i, t) in ["quotes", "trades", "orders", "fills"].iter().enumerate() {
            let (rows, distinct) = self.counts(t).await;
            assert_eq!(rows, distinct, "{t}: {rows} rows for {distinct} sequences");
            out[i] = rows;
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // On a thread of its own: the drop may run inside a runtime, which cannot block.
        let client = self.client();
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.cfg.database);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(client.execute(&sql))
        })
        .join();
    }
}

pub fn inst(symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(symbol).unwrap())
}

pub fn acct(n: u64) -> AccountId {
    AccountId::new(format!("acct{}", n % 3)).unwrap()
}

/// Event `n`, cycling through a quote, a trade, an order submission, an acceptance and a fill,
/// with decimals of many places.
pub fn event(n: u64) -> Event {
    let i = i64::try_from(n).unwrap();
    let ts = Timestamp::from_nanos(1_700_000_000_000_000_000 + i * 1_000_003);
    let price = Price::new(model::Decimal::new(4_500_012_345_678 + i, 8)).unwrap();
    let qty = Quantity::new(model::Decimal::new(1 + i % 997, 6)).unwrap();
    match n % 5 {
        0 => Event::Quote(Quote {
            instrument: inst("BTC-USD"),
            bid: price,
            bid_size: qty,
            ask: Price::new(price.get() + model::Decimal::new(1, 8)).unwrap(),
            ask_size: qty,
            ts,
        }),
        1 => Event::Trade(TradeTick {
            instrument: inst("ETH-USD"),
            price,
            quantity: qty,
            aggressor: Some(if n.is_multiple_of(2) {
                Side::Buy
            } else {
                Side::Sell
            }),
            trade_id: format!("t{n}"),
            ts,
        }),
        2 => Event::OrderSubmitted {
            order: Order::new(
                OrderId(n),
                ClientOrderId::new(format!("c{n}")).unwrap(),
                acct(n),
                inst("BTC-USD"),
                Side::Buy,
                OrderType::Limit,
                TimeInForce::Gtc,
                qty,
                Some(price),
                None,
                ts,
            )
            .unwrap(),
        },
        3 => Event::OrderAccepted {
            order_id: OrderId(n - 1),
            account: acct(n - 1),
            ts,
        },
        _ => Event::OrderFilled(fill(n, price, qty, ts)),
    }
}

pub fn fill(n: u64, price: Price, qty: Quantity, ts: Timestamp) -> Fill {
    // price x qty x 7.5 bps: up to 8 + 6 + 5 places, more than the 18 of the Decimal column.
    let fee = price.get() * qty.get() * model::Decimal::new(75, 5);
    Fill {
        fill_id: FillId(n),
        order_id: OrderId(n - 2),
        account: acct(n - 2),
        instrument: inst("BTC-USD"),
        side: Side::Buy,
        quantity: qty,
        price,
        fee: Money::new(fee).unwrap(),
        liquidity: if n.is_multiple_of(2) {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        },
        ts,
    }
}

/// Deliveries `from..=to` of [`event`].
pub fn deliveries(from: u64, to: u64) -> Vec<Delivery> {
    (from..=to)
        .map(|seq| {
            let event = event(seq);
            Delivery {
                seq,
                recorded_at: event.ts(),
                subject: event.subject(),
                event,
            }
        })
        .collect()
}

/// A TCP proxy on a fixed local port in front of the server, on a thread and runtime of its
/// own (so a caller blocked in `apply` does not stall it). `stop` closes the listener and every
/// connection: the server looks gone to whoever uses the proxy.
pub struct Proxy {
    pub port: u16,
    target: String,
    running: Option<(CancellationToken, std::thread::JoinHandle<()>)>,
}

impl Proxy {
    pub fn start(target_url: &str) -> Proxy {
        let target = target_url
            .trim_end_matches('/')
            .rsplit('@')
            .next()
            .unwrap()
            .trim_start_matches("http://")
            .to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = Proxy {
            port,
            target,
            running: None,
        };
        p.resume();
        p
    }

    /// The URL to give the sink (with `userinfo@` of the original, if any).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn resume(&mut self) {
        assert!(self.running.is_none());
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = CancellationToken::new();
        let (target, stopped) = (self.target.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let accepted = tokio::select! {
                        _ = stopped.cancelled() => break,
                        a = listener.accept() => a,
                    };
                    let Ok((mut inbound, _)) = accepted else {
                        continue;
                    };
                    let (target, stopped) = (target.clone(), stopped.clone());
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = stopped.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        }
                    });
                }
            });
            // Dropping the runtime drops every connection task and its sockets.
            drop(rt);
        });
        self.running = Some((stop, thread));
    }

    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.cancel();
            thread.join().unwrap();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}
