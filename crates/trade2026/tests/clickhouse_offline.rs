//! ClickHouse as the offline source (issue 12, item 3): a journal's events written through the
//! ClickHouse sink into a fresh database give, byte for byte, the same `features history` rows
//! as the journal, and the same `execq` report as `journal export`'s NDJSON. Needs ClickHouse
//! (`TEST_CLICKHOUSE_URL`, default http://127.0.0.1:8123): skipped without one, failing under
//! `CI=true`.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use clickhouse_sink::{ClickHouseClient, ClickHouseSink};
use config::ClickHouseConfig;
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};
use runtime::Consumer;

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

/// A deterministic walk (no RNG crate): the next value of a 64-bit LCG.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn inst(symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(symbol).unwrap())
}

/// About 20 minutes of two markets and two accounts' orders: quotes, trades, orders accepted,
/// partly and fully filled (fees of many places), cancelled, rejected and expired, plus
/// events ClickHouse does not store (id reservations). Some fills are stamped before the event
/// journaled just before them, as market-driven fills are.
fn events() -> Vec<Event> {
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    let mut ts = T0;
    let mut mid = [4_500_012_345_678i64, 310_055_000_000i64]; // 8 places
    let mut next_order = 1u64;
    let mut next_fill = 1u64;
    let symbols = ["BTCUSDT", "ETHUSDT"];
    for step in 0..1_200u64 {
        ts += 1_000_000_000 + rng.next(5_000_000) as i64;
        let s = (step % 2) as usize;
        mid[s] += rng.next(2_000_001) as i64 - 1_000_000;
        let d = |v: i64| model::Decimal::new(v, 8);
        let bid = Price::new(d(mid[s] - 500_000)).unwrap();
        let ask = Price::new(d(mid[s] + 500_000)).unwrap();
        out.push(Event::Quote(Quote {
            instrument: inst(symbols[s]),
            bid,
            bid_size: Quantity::new(model::Decimal::new(1 + rng.next(5_000) as i64, 3)).unwrap(),
            ask,
            ask_size: Quantity::new(model::Decimal::new(1 + rng.next(5_000) as i64, 3)).unwrap(),
            ts: Timestamp::from_nanos(ts),
        }));
        if step % 3 == 1 {
            out.push(Event::Trade(TradeTick {
                instrument: inst(symbols[s]),
                price: if rng.next(2) == 0 { bid } else { ask },
                quantity: Quantity::new(model::Decimal::new(1 + rng.next(900) as i64, 4)).unwrap(),
                aggressor: match rng.next(3) {
                    0 => None,
                    1 => Some(Side::Buy),
                    _ => Some(Side::Sell),
                },
                trade_id: format!("t{step}"),
                ts: Timestamp::from_nanos(ts + 1_000),
            }));
        }
        if step % 100 == 0 {
            out.push(Event::IdsReserved {
                orders_through: next_order + 1_000_000,
                fills_through: next_fill + 1_000_000,
                ts: Timestamp::from_nanos(ts),
            });
        }
        if step % 4 != 2 {
            continue;
        }
        let account = AccountId::new(format!("acct{}", rng.next(2) + 1)).unwrap();
        let side = if rng.next(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        // 6 places: price x quantity x 7.5 bps has 19, more than ClickHouse's Decimal keeps.
        let qty = Quantity::new(model::Decimal::new(1 + rng.next(400_000) as i64, 6)).unwrap();
        let limit = rng.next(3) > 0;
        let order_id = OrderId(next_order);
        next_order += 1;
        let order = Order::new(
            order_id,
            ClientOrderId::new(format!("c{}", order_id.0)).unwrap(),
            account.clone(),
            inst(symbols[s]),
            side,
            if limit {
                OrderType::Limit
            } else {
                OrderType::Market
            },
            if limit {
                TimeInForce::Gtc
            } else {
                TimeInForce::Ioc
            },
            qty,
            limit.then_some(if side == Side::Buy { bid } else { ask }),
            None,
            Timestamp::from_nanos(ts + 2_000),
        )
        .unwrap();
        out.push(Event::OrderSubmitted { order });
        let at = |dt: i64| Timestamp::from_nanos(ts + 2_000 + dt);
        let outcome = rng.next(6);
        if outcome == 0 {
            out.push(Event::OrderRejected {
                order_id,
                account,
                code: "MAX_NOTIONAL".into(),
                message: "notional 'too' large".into(),
                ts: at(1),
            });
            continue;
        }
        out.push(Event::OrderAccepted {
            order_id,
            account: account.clone(),
            ts: at(1),
        });
        let price = if side == Side::Buy { ask } else { bid };
        let fill = |q: Quantity, dt: i64, id: u64, liq: Liquidity| {
            // 7.5 bps: more places than the Decimal(38, 18) column keeps.
            let fee = price.get() * q.get() * model::Decimal::new(75, 5);
            Event::OrderFilled(Fill {
                fill_id: FillId(id),
                order_id,
                account: account.clone(),
                instrument: inst(symbols[s]),
                side,
                quantity: q,
                price,
                fee: Money::new(fee).unwrap(),
                liquidity: liq,
                ts: at(dt),
            })
        };
        match outcome {
            1 | 2 => {
                out.push(fill(qty, 5, next_fill, Liquidity::Taker));
                next_fill += 1;
            }
            3 => {
                let half = Quantity::new(qty.get() / model::Decimal::TWO).unwrap();
                out.push(fill(half, 5, next_fill, Liquidity::Maker));
                next_fill += 1;
                out.push(Event::OrderCanceled {
                    order_id,
                    account: account.clone(),
                    reason: "user".into(),
                    ts: at(400_000_000),
                });
            }
            4 => {
                // Stamped before the quote journaled next to it: event time is not journal
                // order.
                out.push(fill(qty, -1_500_000_000, next_fill, Liquidity::Maker));
                next_fill += 1;
            }
            _ => out.push(Event::OrderExpired {
                order_id,
                account: account.clone(),
                reason: "day".into(),
                ts: at(700_000_000),
            }),
        }
    }
    out
}

fn clickhouse_url(rt: &tokio::runtime::Runtime) -> Option<String> {
    let url =
        std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let client = ClickHouseClient::new(&ClickHouseConfig {
        http_url: url.clone(),
        database: "default".into(),
    })
    .unwrap();
    match rt.block_on(client.wait_ready(Duration::from_secs(3))) {
        Ok(_) => Some(url),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ClickHouse at {url} is required under CI: {e}"
            );
            eprintln!("skipping: no ClickHouse at {url} ({e}); set TEST_CLICKHOUSE_URL");
            None
        }
    }
}

/// Drops the test's database however the test ends.
struct DropDb(ClickHouseClient);
impl Drop for DropDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.0.database());
        let client = self.0.clone();
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

fn run(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Vec<u8> {
    let mut cmd = common::bin();
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "trade2026 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn history_and_execq_read_the_same_from_clickhouse_as_from_the_journal() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = clickhouse_url(&rt) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = ClickHouseConfig {
        http_url: url.clone(),
        database: format!("trade2026_offline_{}", std::process::id()),
    };
    let _drop = DropDb(ClickHouseClient::new(&cfg).unwrap());

    // The journal, then its events through the sink in batches, as the runtime hands them over.
    let events = events();
    let mut config = config::Config::default();
    config.platform.data_dir = data.clone();
    let (journal, _) = journal::Journal::open(&config.journal_path()).unwrap();
    rt.block_on(journal.append_batch(events.clone())).unwrap();
    let records = journal.read_from(1, usize::MAX).unwrap();
    assert_eq!(records.len(), events.len());
    journal.shutdown().unwrap();
    // The lock on the journal goes with the value: the commands below open it.
    drop(journal);
    let deliveries: Vec<journal::Delivery> = records
        .into_iter()
        .map(|r| journal::Delivery {
            seq: r.seq,
            recorded_at: r.recorded_at,
            subject: r.subject,
            event: r.event,
        })
        .collect();
    let mut sink = rt
        .block_on(ClickHouseSink::connect(&cfg, Duration::from_secs(10)))
        .unwrap();
    for batch in deliveries.chunks(512) {
        sink.apply(batch, &mut Vec::new()).unwrap();
    }
    drop(sink);

    let data_s = data.to_str().unwrap();
    let env = [
        ("TRADE2026_CLICKHOUSE__HTTP_URL", url.as_str()),
        ("TRADE2026_CLICKHOUSE__DATABASE", cfg.database.as_str()),
    ];
    let end = Timestamp::from_nanos(T0 + 1_300 * 1_000_000_000);
    let at = |secs: i64| Timestamp::from_nanos(T0 + secs * 1_000_000_000 + 123_456_789);
    // Before anything, inside (at many points), after everything.
    let times: Vec<Timestamp> = [-60, 1, 30, 61, 299, 300, 301, 600, 750, 1_000, 1_199]
        .into_iter()
        .map(at)
        .chain([end])
        .collect();
    for (view, entities) in [
        ("market_features", vec!["BTCUSDT", "ETHUSDT.sim", "NOPE"]),
        ("order_features", vec!["acct1", "acct2"]),
        ("position_features", vec!["acct1", "acct2"]),
        (
            "position_symbol_features",
            vec!["acct1|BTCUSDT", "acct2|ETHUSDT.sim"],
        ),
    ] {
        let mut csv = String::from("entity,ts\n");
        for e in &entities {
            for t in &times {
                csv.push_str(&format!("{e},{t}\n"));
            }
        }
        let path = dir.path().join(format!("{view}.csv"));
        std::fs::write(&path, csv).unwrap();
        let path = path.to_str().unwrap();
        let args = ["features", "history", "--view", view, "--entities", path];
        let from_journal = run(
            &[&args[..], &["--data-dir", data_s]].concat(),
            dir.path(),
            &env,
        );
        let from_clickhouse = run(
            &[&args[..], &["--source", "clickhouse"]].concat(),
            dir.path(),
            &env,
        );
        let text = String::from_utf8(from_journal.clone()).unwrap();
        assert_eq!(text.lines().count(), 1 + entities.len() * times.len());
        // Values, not only nulls: the comparison means something.
        assert!(
            text.lines()
                .skip(1)
                .any(|l| l.split(',').skip(3).filter(|v| !v.is_empty()).count() > 2),
            "{view}: {text}"
        );
        assert!(
            from_journal == from_clickhouse,
            "{view}: journal\n{text}\nclickhouse\n{}",
            String::from_utf8_lossy(&from_clickhouse)
        );
    }

    // execq: over `journal export`'s NDJSON and over ClickHouse.
    let ndjson = run(
        &[
            "journal",
            "export",
            "--format",
            "ndjson",
            "--data-dir",
            data_s,
        ],
        dir.path(),
        &env,
    );
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, &ndjson).unwrap();
    let file = file.to_str().unwrap();
    for format in ["json", "csv", "html"] {
        let from_file = run(
            &["execq", "--events", file, "--format", format],
            dir.path(),
            &env,
        );
        let from_clickhouse = run(
            &["execq", "--source", "clickhouse", "--format", format],
            dir.path(),
            &env,
        );
        assert!(from_file.len() > 1_000, "{format}: a report with orders");
        assert!(
            from_file == from_clickhouse,
            "execq --format {format} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(&from_file),
            String::from_utf8_lossy(&from_clickhouse)
        );
    }
}

#[test]
fn execq_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::bin()
        .args(["execq"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--events FILE is required"), "{err}");
    // A bad setting is named before anything is read.
    std::fs::write(
        dir.path().join("e.csv"),
        "entity,ts\nX,2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    let out = common::bin()
        .args([
            "features",
            "history",
            "--source",
            "clickhouse",
            "--entities",
            "e.csv",
        ])
        .env("TRADE2026_CLICKHOUSE__DATABASE", "no-such")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clickhouse.database \"no-such\""), "{err}");
}
