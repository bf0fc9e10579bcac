//! `trade2026 bench logs`: fills a store with realistic order-lifecycle lines through the real
//! writer (queue, batches, full-text index), reports the ingest rate, then times searches over
//! what is stored. Runs add to an existing store, so a large one can be built in steps.

use std::path::Path;
use std::time::{Duration, Instant};

use model::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::LoggerError;
use crate::capture::Intake;
use crate::query::{Filter, parse_terms};
use crate::record::{Level, Record};
use crate::store::{Retention, Store};

/// Lines per push job while filling.
const CHUNK: usize = 10_000;
/// Runs of each search (the median and the slowest are reported).
const RUNS: usize = 7;

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub lines_added: u64,
    pub lines_stored: u64,
    pub store_bytes: u64,
    pub ingest_seconds: f64,
    pub ingest_lines_per_sec: f64,
    pub searches: Vec<SearchTiming>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchTiming {
    pub search: String,
    pub hits: usize,
    pub median_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest   {} lines in {:.2} s = {:.0} lines/s",
            self.lines_added, self.ingest_seconds, self.ingest_lines_per_sec
        )?;
        writeln!(
            f,
            "store    {} lines, {:.1} MB",
            self.lines_stored,
            self.store_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "{:<58} {:>6} {:>10} {:>10}",
            "search (first page, 100 lines)", "hits", "median ms", "max ms"
        )?;
        for s in &self.searches {
            writeln!(
                f,
                "{:<58} {:>6} {:>10.2} {:>10.2}",
                s.search, s.hits, s.median_ms, s.max_ms
            )?;
        }
        Ok(())
    }
}

const SYMBOLS: [&str; 5] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];

/// The `i`-th synthetic line: the gateway and engine lines of an order's life (accepted or
/// rejected, filled, cancelled), one order per four lines, 64 accounts, now and then a
/// platform line without an account.
pub fn synthetic_line(i: u64, ts: Timestamp, rng: &mut impl FnMut() -> u64) -> Record {
    let order_id = 1_000_000 + i / 4;
    let account = format!("bench-{}", order_id % 64);
    let symbol = SYMBOLS[(order_id % 5) as usize];
    let (service, target, level, message) = match (i % 4, rng() % 100) {
        (_, 0) => (
            "platform",
            "journal::writer",
            Level::Warn,
            "group commit took longer than expected",
        ),
        (0, r) if r < 3 => ("gateway", "gateway::orders", Level::Info, "order rejected"),
        (0, _) => ("gateway", "gateway::orders", Level::Info, "order accepted"),
        (1, _) => ("engine", "engine::shell", Level::Info, "order filled"),
        (2, r) if r < 50 => ("engine", "engine::shell", Level::Info, "order canceled"),
        (2, _) => ("engine", "engine::shell", Level::Info, "order expired"),
        _ => (
            "gateway",
            "gateway::stream",
            Level::Debug,
            "execution report sent",
        ),
    };
    let mut r = Record::new(ts, level, service, target, message.to_owned());
    if service != "platform" {
        r.set_field("order_id", json!(order_id.to_string()));
        r.set_field("account", json!(account));
        r.set_field("symbol", json!(symbol));
        r.set_field("qty", json!(format!("0.{:03}", 1 + rng() % 999)));
        if message == "order rejected" {
            r.set_field("code", json!("price_collar"));
        }
    } else {
        r.set_field("batch", json!(rng() % 4096));
    }
    r
}

/// Adds `lines` synthetic lines to the store at `path` (spread over the last hours, newest
/// now) through the writer, then times searches.
pub fn run(path: &Path, lines: u64, seed: u64) -> Result<BenchReport, LoggerError> {
    let intake = Intake::new(crate::capture::DEFAULT_QUEUE);
    let metrics = telemetry::Metrics::new();
    let writer = crate::spawn_writer(
        path,
        &intake,
        Retention {
            max_age_ms: i64::MAX / 1_000_000,
            max_bytes: u64::MAX,
        },
        &metrics,
    )?;
    let before = writer.store.count()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next = move || rng.random::<u64>();
    // 10 lines per millisecond, ending now, or after the newest line already stored: each run
    // adds newer lines, as a running platform does.
    let now = Timestamp::now().as_nanos();
    let after_stored = writer
        .store
        .usage()?
        .newest_id
        .map_or(0, |id| ((id >> 20) + 1) * 1_000_000);
    let start = (now - (lines as i64) * 100_000).max(after_stored);
    // The lines are made ahead (not timed), then queued chunk after chunk without waiting, as
    // a busy platform or a shipper would: the time is the writer's, from the first push to
    // the last commit.
    let mut chunks = Vec::new();
    let mut i = 0u64;
    while i < lines {
        let n = CHUNK.min((lines - i) as usize);
        chunks.push(
            (0..n as u64)
                .map(|k| {
                    let at = i + k;
                    synthetic_line(
                        before + at,
                        Timestamp::from_nanos(start + at as i64 * 100_000),
                        &mut next,
                    )
                })
                .collect::<Vec<Record>>(),
        );
        i += n as u64;
    }
    let started = Instant::now();
    let waits: Vec<_> = chunks
        .into_iter()
        .map(|chunk| intake.push_nowait(chunk))
        .collect::<Result<_, _>>()
        .map_err(|_| LoggerError::WriterStopped)?;
    for stored in waits {
        stored
            .blocking_recv()
            .map_err(|_| LoggerError::WriterStopped)?
            .map_err(|_| LoggerError::WriterStopped)?;
    }
    let ingest = started.elapsed();
    let store = writer.store.clone();
    writer.stop();
    let stored = store.count()?;
    let searches = searches(&store, before + lines)?;
    Ok(BenchReport {
        lines_added: lines,
        lines_stored: stored,
        store_bytes: store.usage()?.bytes,
        ingest_seconds: ingest.as_secs_f64(),
        ingest_lines_per_sec: lines as f64 / ingest.as_secs_f64().max(1e-9),
        searches,
    })
}

fn searches(store: &Store, total: u64) -> Result<Vec<SearchTiming>, LoggerError> {
    let mid_order = (1_000_000 + total / 8).to_string();
    let q = |text: &str| parse_terms(text).expect("bench queries parse");
    let cases: Vec<(String, Filter)> = vec![
        (
            format!("q={mid_order} (one order's lines)"),
            Filter {
                terms: q(&mid_order),
                ..Filter::default()
            },
        ),
        (
            "q=filled (a quarter of all lines)".into(),
            Filter {
                terms: q("filled"),
                ..Filter::default()
            },
        ),
        (
            "q=price_collar (rare, oldest hits deep in the index)".into(),
            Filter {
                terms: q("price_collar"),
                ..Filter::default()
            },
        ),
        (
            "q=order canceled&service=engine".into(),
            Filter {
                terms: q("order canceled"),
                service: Some("engine".into()),
                ..Filter::default()
            },
        ),
        (
            format!("order_id={mid_order}"),
            Filter {
                order_id: Some(mid_order.clone()),
                ..Filter::default()
            },
        ),
        (
            "q=filled, trader key of bench-7".into(),
            Filter {
                terms: q("filled"),
                accounts: Some(vec!["bench-7".into()]),
                ..Filter::default()
            },
        ),
        (
            "q=filled&service=gateway (no line has both)".into(),
            Filter {
                terms: q("filled"),
                service: Some("gateway".into()),
                ..Filter::default()
            },
        ),
        (
            "service=platform (1% of lines)".into(),
            Filter {
                service: Some("platform".into()),
                ..Filter::default()
            },
        ),
        (
            "level=warn (newest first)".into(),
            Filter {
                min_level: Some(Level::Warn),
                ..Filter::default()
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, filter) in cases {
        let mut times: Vec<Duration> = Vec::new();
        let mut hits = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            hits = store.page(&filter, None, 100)?.lines.len();
            times.push(t.elapsed());
        }
        times.sort();
        out.push(SearchTiming {
            search: name,
            hits,
            median_ms: times[RUNS / 2].as_secs_f64() * 1e3,
            max_ms: times[RUNS - 1].as_secs_f64() * 1e3,
        });
    }
    Ok(out)
}
