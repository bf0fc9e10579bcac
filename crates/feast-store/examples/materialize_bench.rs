//! Materialization benchmark: 10,000 entities x 3 views (12 features each) into Redis.
//!
//! `TEST_REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p feast-store --example
//! materialize_bench [-- <entities> <iterations> <script|read>]`
//!
//! `script` (default): `Freshness::AtomicScript`; `read`: `Freshness::ReadThenWrite`; `sole`:
//! `Freshness::SoleWriter` (the writer's default: after the warm-up every slot is remembered, so
//! this is its steady state); append
//! `nodoc` (`read-nodoc`, `script-nodoc`) to leave out the JSON documents.
//!
//! Every iteration carries newer event times than the last, so every row is really written (an
//! equal timestamp would be skipped, which is cheaper). Prints min / median / max wall time of
//! `OnlineStoreWriter::write` for the whole batch; the goal is a median under 150 ms.

use std::time::{Duration, Instant};

use feast_store::{
    Freshness, OnlineRow, OnlineStoreWriter, OnlineValue, WriterOptions, json_key, redis_key,
};
use model::Timestamp;

const VIEWS: [(&str, &str); 3] = [
    ("market_features", "symbol"),
    ("order_features", "symbol"),
    ("position_features", "account"),
];

fn batch(entities: usize, ts: Timestamp) -> Vec<OnlineRow> {
    let mut rows = Vec::with_capacity(entities * VIEWS.len());
    for e in 0..entities {
        for (view, join_key) in VIEWS {
            let entity = if join_key == "symbol" {
                format!("SYM{e:05}USDT")
            } else {
                format!("acct-{e:05}")
            };
            let mut values = Vec::with_capacity(12);
            for f in 0..10 {
                values.push((
                    format!("f64_{f}"),
                    OnlineValue::F64(e as f64 * 1.5 + f as f64),
                ));
            }
            values.push(("count".to_string(), OnlineValue::I64(e as i64)));
            values.push(("label".to_string(), OnlineValue::Str(format!("L{}", e % 7))));
            rows.push(OnlineRow {
                view: view.to_string(),
                join_key: join_key.to_string(),
                entity,
                event_ts: ts,
                values,
            });
        }
    }
    rows
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut args = std::env::args().skip(1);
    let entities: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let iterations: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(15);
    let mode = args.next().unwrap_or_else(|| "script".into());
    let (mode, write_json_doc) = match mode.strip_suffix("-nodoc") {
        Some(m) => (m.to_string(), false),
        None => (mode, true),
    };
    let freshness = match mode.as_str() {
        "script" => Freshness::AtomicScript,
        "read" => Freshness::ReadThenWrite,
        "sole" => Freshness::SoleWriter,
        other => return Err(format!("unknown mode {other:?}: script | read | sole").into()),
    };
    let project = format!("t26bench_{}", std::process::id());

    let options = WriterOptions {
        freshness,
        write_json_doc,
        ..WriterOptions::default()
    };
    let w = OnlineStoreWriter::new(&url, options)?;
    let base = Timestamp::now().as_nanos();
    // Warm-up: connection, script load, first-time key creation.
    w.write(&project, &batch(entities, Timestamp::from_nanos(base)))
        .await?;

    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let rows = batch(
            entities,
            Timestamp::from_nanos(base + 1_000 * (i as i64 + 1)),
        );
        let t = Instant::now();
        let stats = w.write(&project, &rows).await?;
        times.push(t.elapsed());
        assert_eq!(stats.written as usize, rows.len(), "every row is newer");
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{freshness:?}, json docs {write_json_doc}: materialize {} entities x {} views x 12 features ({} rows), {} iterations: \
         min {:.1} ms, median {:.1} ms, max {:.1} ms",
        entities,
        VIEWS.len(),
        entities * VIEWS.len(),
        iterations,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );

    // Clean up every key of the run.
    let client = redis::Client::open(w.endpoint().to_url())?;
    let mut c = client.get_multiplexed_async_connection().await?;
    for chunk in batch(entities, Timestamp::from_nanos(0)).chunks(1_000) {
        let mut cmd = redis::cmd("UNLINK");
        for r in chunk {
            cmd.arg(redis_key(&project, &r.join_key, &r.entity))
                .arg(json_key(&r.view, &r.entity));
        }
        let _: i64 = cmd.query_async(&mut c).await?;
    }
    Ok(())
}
