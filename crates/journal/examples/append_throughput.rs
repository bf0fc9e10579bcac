//! Durable append throughput and latency of the journal for 1..1024 concurrent appenders.
//!
//! ```text
//! cargo run --release -p journal --example append_throughput -- [seconds-per-level] [dir]
//! ```
//! Each level opens a fresh journal in a temporary directory under `dir` (default: the system
//! temp dir; use a directory on the disk the journal will live on, not a tmpfs), runs N tokio
//! tasks that each append events back to back for the given time (default 3 s), and prints
//! durable events/s and append latency percentiles (time from `append` call to durable ack).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use journal::Journal;
use journal::sample::trade;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let base: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let sample = serde_json::to_vec(&trade(1))?;
    println!(
        "journal append throughput: {secs} s per level, dir {}, event payload {} bytes, {} CPUs",
        base.display(),
        sample.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>12} {:>14} {:>10} {:>10} {:>10} {:>10}",
        "appenders", "events", "durable ev/s", "p50 us", "p99 us", "p99.9 us", "max us"
    );
    for concurrency in [1usize, 8, 64, 256, 1024] {
        let dir = tempfile::tempdir_in(&base)?;
        let (journal, _) = Journal::open(&dir.path().join("events.db"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (count, hist, elapsed) = rt.block_on(async {
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(concurrency);
            for t in 0..concurrency {
                let journal = journal.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                        .expect("histogram bounds");
                    let mut n = t as i64;
                    while !stop.load(Ordering::Relaxed) {
                        let event = trade(n);
                        let t0 = Instant::now();
                        journal.append(event).await.expect("append");
                        hist.saturating_record(t0.elapsed().as_micros() as u64);
                        n += concurrency as i64;
                    }
                    hist
                }));
            }
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            stop.store(true, Ordering::Relaxed);
            let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            for t in tasks {
                all.add(t.await.expect("task")).expect("same bounds");
            }
            (all.len(), all, started.elapsed())
        });
        assert_eq!(
            journal.last_seq(),
            count,
            "every acknowledged append is in the journal"
        );
        println!(
            "{:>10} {:>12} {:>14.0} {:>10} {:>10} {:>10} {:>10}",
            concurrency,
            count,
            count as f64 / elapsed.as_secs_f64(),
            hist.value_at_quantile(0.50),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max()
        );
        journal.shutdown()?;
    }
    Ok(())
}
