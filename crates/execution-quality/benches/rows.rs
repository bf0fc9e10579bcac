//! Encoding finalized per-order rows for the row store: what the execution-quality consumer
//! pays per order (twice: the row, then its spread update) at `trade2026 up`'s order rate.
//! Run: `cargo bench -p execution-quality --bench rows`.
//!
//! 1,000 rows of the execq benchmark's deterministic stream (quotes, an order, two fills with
//! their prints, a cancel of the rest), encoded as the writer stores them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use execution_quality::store::RowEncoder;

#[path = "../../execq/benches/common/events.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let report = execq::compute(&common::events(1_000), &execq::Params::default()).unwrap();
    let rows: Vec<_> = report.orders.into_values().map(|r| *r).collect();
    assert_eq!(rows.len(), 1_000);
    let mut g = c.benchmark_group("rows");
    g.throughput(Throughput::Elements(rows.len() as u64));
    let mut encoder = RowEncoder::new();
    g.bench_function("encode_1000_rows", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for r in &rows {
                bytes += encoder.encode(black_box(r)).unwrap().len();
            }
            black_box(bytes)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
