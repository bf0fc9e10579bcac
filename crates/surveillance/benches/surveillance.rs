//! Surveillance over 1 million order events (goal < 2 s) and the per-record `on_record`
//! latency distribution (proxy for streaming alert latency at 5,000 events/s; goal p99 < 100 ms).
//!
//! `cargo bench -p surveillance --bench surveillance`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use surveillance::{Scanner, scan};

#[path = "../tests/common/gen.rs"]
mod evgen;

fn bench_scan(c: &mut Criterion) {
    let recs = evgen::events(42, 1_000_000, &evgen::bench_cfg());
    let alerts = scan(&recs, &evgen::bench_params()).expect("params");
    eprintln!("1M events -> {} alerts", alerts.len());
    let mut g = c.benchmark_group("surveillance");
    g.sample_size(10);
    g.bench_function("scan_1M_events", |b| {
        b.iter(|| black_box(scan(black_box(&recs), &evgen::bench_params()).map(|a| a.len())))
    });
    g.finish();
}

/// Per-record latency of `on_record` over the same 1M events, in record order.
fn latency() {
    let recs = evgen::events(42, 1_000_000, &evgen::bench_cfg());
    let mut s = Scanner::new(evgen::bench_params()).expect("params");
    let mut lat: Vec<u64> = Vec::with_capacity(recs.len());
    for r in &recs {
        let t = Instant::now();
        black_box(s.on_record(r));
        lat.push(t.elapsed().as_nanos() as u64);
    }
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize] as f64 / 1_000.0;
    let span_s = (recs[recs.len() - 1].ts.as_nanos() - recs[0].ts.as_nanos()) as f64 / 1e9;
    eprintln!(
        "on_record latency over {} records ({:.0} events/s of record time): p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.1} us",
        lat.len(),
        recs.len() as f64 / span_s,
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
}

criterion_group!(benches, bench_scan);

fn main() {
    latency();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
