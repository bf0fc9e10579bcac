//! Execution statistics over 1 million events (issue 4 goal: < 1 s).
//! Run: `cargo bench -p execq --bench execq -- --warm-up-time 1 --measurement-time 5 --sample-size 10`.
//!
//! 100,000 orders on 50 symbols, generated deterministically: per order 4 quotes, the
//! `order_new`, 2 fills with their 2 tape prints and a cancel of the rest = 10 records. Default
//! parameters (three realized-spread horizons), full `compute` including the report.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use execq::{Params, compute};

#[path = "common/events.rs"]
mod common;
use common::events;

fn bench(c: &mut Criterion) {
    let recs = events(100_000);
    assert_eq!(recs.len(), 1_000_000);
    let params = Params::default();
    let mut g = c.benchmark_group("execq");
    g.bench_function("compute_1m_events_100k_orders", |b| {
        b.iter(|| {
            let r = compute(black_box(&recs), &params).expect("valid params");
            black_box(r.orders.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
