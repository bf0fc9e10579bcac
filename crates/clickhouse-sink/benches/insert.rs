//! Insert throughput of the ClickHouse sink: fills through `Consumer::apply` (TabSeparated
//! encoding, one INSERT per batch, the progress row) into a real server, at several batch sizes.
//!
//!     TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 cargo bench -p clickhouse-sink --bench insert
//!
//! `CH_BENCH_ROWS` (default 1,000,000) rows per batch size; each size writes to a database of
//! its own, dropped afterwards. Only `apply` is timed (the events are built between batches).

use std::time::{Duration, Instant};

use clickhouse_sink::{ClickHouseClient, ClickHouseSink};
use config::ClickHouseConfig;
use journal::Delivery;
use model::{
    AccountId, Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price,
    Quantity, Side, Symbol, Timestamp, Venue,
};
use runtime::Consumer;

fn fill(seq: u64) -> Delivery {
    let i = seq as i64;
    let price = Price::new(Decimal::new(4_500_012_345_678 + i % 100_000, 8)).unwrap();
    let qty = Quantity::new(Decimal::new(1 + i % 99_991, 6)).unwrap();
    let event = Event::OrderFilled(Fill {
        fill_id: FillId(seq),
        order_id: OrderId(seq / 2),
        account: AccountId::new(format!("acct{}", seq % 100)).unwrap(),
        instrument: InstrumentId::new(
            Venue::new("sim").unwrap(),
            Symbol::new(["BTC-USD", "ETH-USD", "SOL-USD"][(seq % 3) as usize]).unwrap(),
        ),
        side: if seq.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: qty,
        price,
        fee: Money::new(price.get() * qty.get() * Decimal::new(75, 5)).unwrap(),
        liquidity: Liquidity::Taker,
        ts: Timestamp::from_nanos(1_700_000_000_000_000_000 + i * 1_000_003),
    });
    Delivery {
        seq,
        recorded_at: event.ts(),
        subject: event.subject(),
        event,
    }
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: nothing to measure then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let url =
        std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let rows: u64 = std::env::var("CH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let version = rt
        .block_on(
            ClickHouseClient::new(&ClickHouseConfig {
                http_url: url.clone(),
                database: "default".into(),
            })
            .unwrap()
            .wait_ready(Duration::from_secs(5)),
        )
        .unwrap_or_else(|e| panic!("ClickHouse at {url}: {e}"));
    println!("ClickHouse {version} at {url}: {rows} fill rows per batch size");
    for batch in [1_024u64, 8_192, 65_536] {
        let cfg = ClickHouseConfig {
            http_url: url.clone(),
            database: format!("trade2026_bench_{}_{batch}", std::process::id()),
        };
        let mut sink = rt
            .block_on(ClickHouseSink::connect(&cfg, Duration::from_secs(5)))
            .unwrap();
        let mut busy = Duration::ZERO;
        let mut seq = 1;
        while seq <= rows {
            let last = (seq + batch - 1).min(rows);
            let deliveries: Vec<Delivery> = (seq..=last).map(fill).collect();
            let started = Instant::now();
            sink.apply(&deliveries, &mut Vec::new()).unwrap();
            busy += started.elapsed();
            seq = last + 1;
        }
        let client = sink.client().unwrap();
        let stored = rt
            .block_on(client.query(&format!("SELECT count() FROM `{}`.fills", cfg.database)))
            .unwrap();
        assert_eq!(stored[0][0], rows.to_string());
        println!(
            "batch {batch:>6}: {rows} rows in {:.2} s = {:>9.0} rows/s",
            busy.as_secs_f64(),
            rows as f64 / busy.as_secs_f64()
        );
        rt.block_on(client.execute(&format!("DROP DATABASE `{}`", cfg.database)))
            .unwrap();
    }
}
