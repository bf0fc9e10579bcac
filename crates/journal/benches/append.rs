//! Criterion benchmarks of the journal: durable single appends (fsync-bound), group commit
//! under concurrency, and replay reads. For the full concurrency sweep with latency
//! percentiles see `examples/append_throughput.rs`.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use journal::Journal;
use journal::sample::trade;

/// Journals live next to the build output (a real disk), not in a possible tmpfs.
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("JOURNAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("temp dir")
}

fn appends(c: &mut Criterion) {
    let dir = bench_dir();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("append");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Elements(1));
    group.bench_function("single_durable", |b| {
        let mut n = 0;
        b.iter(|| {
            n += 1;
            journal.append_blocking(trade(n)).expect("append")
        });
    });

    for concurrency in [64usize, 512] {
        group.throughput(Throughput::Elements(concurrency as u64));
        group.bench_with_input(
            BenchmarkId::new("concurrent_group_commit", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let started = Instant::now();
                        for i in 0..iters {
                            let mut tasks = Vec::with_capacity(concurrency);
                            for t in 0..concurrency {
                                let journal = journal.clone();
                                let n = (i as usize * concurrency + t) as i64;
                                tasks.push(tokio::spawn(
                                    async move { journal.append(trade(n)).await },
                                ));
                            }
                            for t in tasks {
                                t.await.expect("task").expect("append");
                            }
                        }
                        started.elapsed()
                    })
                });
            },
        );
    }

    group.throughput(Throughput::Elements(1_000));
    group.bench_function("batch_of_1000", |b| {
        b.iter(|| {
            let events: Vec<model::Event> = (0..1_000).map(trade).collect();
            rt.block_on(journal.append_batch(events)).expect("append")
        });
    });
    group.finish();

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("read_from_1000", |b| {
        let last = journal.last_seq();
        let mut from = 1;
        b.iter(|| {
            let records = journal.read_from(from, 1_000).expect("read");
            from = if from + 2_000 > last { 1 } else { from + 1_000 };
            records
        });
    });
    group.finish();
    journal.shutdown().expect("shutdown");
}

criterion_group!(benches, appends);
criterion_main!(benches);
