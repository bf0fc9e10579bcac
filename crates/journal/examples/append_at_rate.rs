//! The durable-append latency of the journal at a fixed rate: the floor under an order's
//! acknowledgement at that rate (an ack waits for its group commit's fsync), measured on the
//! disk the platform uses and in the same run as the order benchmark (`scripts/bench-all`).
//!
//! ```text
//! cargo run --release -p journal --example append_at_rate -- [rate/s] [seconds] [dir] [events]
//! ```
//! Opens a fresh journal under `dir` (default: the system temp dir; use the disk the journal
//! lives on, not a tmpfs) and appends a batch of `events` events (default 3: an order's
//! acceptance, its fill and its expiry travel as one batch) on a fixed schedule, without waiting
//! for the previous batch (open loop). Latency is from each batch's scheduled time to its
//! durable acknowledgement, so a stall of the disk or of the scheduler is not hidden. Prints
//! p50 / p99 / p99.9 / max in microseconds and, last, one JSON line with the same figures.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use journal::Journal;
use journal::sample::trade;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000.0);
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30.0);
    let base: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let per_batch: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    if !(rate > 0.0 && secs > 0.0 && per_batch > 0) {
        return Err("rate, seconds and events must be positive".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir_in(&base)?;
    let (journal, _) = Journal::open(&dir.path().join("events.db"))?;
    let batches = (rate * secs).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    // Paced on this thread with `std::thread::sleep`, as the order loader's pacer thread does
    // (`loadgen`): tokio's timer has a 1 ms resolution, which put every batch up to 1 ms late
    // and so inflated the latency from schedule by as much.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let started = Instant::now();
    for i in 0..batches {
        let due = started + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let events = (0..per_batch)
            .map(|k| trade(i as i64 * per_batch + k))
            .collect();
        let sent = Instant::now();
        let durable = journal.enqueue_batch(events).expect("journal open");
        let tx = tx.clone();
        rt.spawn(async move {
            durable.await.expect("durable append");
            let _ = tx.send((
                due.elapsed().as_micros() as u64,
                sent.elapsed().as_micros() as u64,
            ));
        });
    }
    drop(tx);
    let hist = rt.block_on(async {
        let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let (mut from_schedule, mut from_send) = (new(), new());
        while let Some((due_us, sent_us)) = rx.recv().await {
            from_schedule.saturating_record(due_us);
            from_send.saturating_record(sent_us);
        }
        (from_schedule, from_send)
    });
    let (hist, service) = hist;
    assert_eq!(
        journal.last_seq(),
        batches * per_batch as u64,
        "every acknowledged batch is in the journal"
    );
    journal.shutdown()?;
    println!(
        "journal at {rate}/s for {secs} s, {per_batch} events per batch, dir {}",
        base.display()
    );
    for (name, h) in [("from schedule", &hist), ("from send", &service)] {
        println!(
            "  {name:>13}: p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        );
    }
    let json = |h: &Histogram<u64>| {
        format!(
            "{{\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        )
    };
    println!(
        "{{\"rate\":{rate},\"seconds\":{secs},\"batches\":{},\"from_schedule\":{},\"from_send\":{}}}",
        hist.len(),
        json(&hist),
        json(&service)
    );
    Ok(())
}
