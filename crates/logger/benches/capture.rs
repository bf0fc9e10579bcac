//! What the capture layer costs the thread that logs: an order-lifecycle `info!` with the
//! logger's layer installed (the record built and offered to the queue, drained by a thread as
//! the writer would), against the same event with no layer interested in it.
//!
//! `cargo bench -p logger --bench capture`

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use logger::Intake;
use tracing_subscriber::layer::SubscriberExt;

fn event(i: u64) {
    tracing::info!(
        target: "gateway::orders",
        order_id = i,
        account = %"bench-7",
        symbol = %"BTCUSDT",
        status = ?"Accepted",
        "order accepted"
    );
}

fn capture(c: &mut Criterion) {
    let mut g = c.benchmark_group("capture");
    g.measurement_time(Duration::from_secs(5));

    let intake = Intake::new(logger::capture::DEFAULT_QUEUE);
    intake.discard();
    let with_layer = tracing_subscriber::registry().with(intake.layer(tracing::Level::INFO));
    tracing::subscriber::with_default(with_layer, || {
        let mut i = 0u64;
        g.bench_function("info event, logger layer", |b| {
            b.iter(|| {
                i += 1;
                event(i)
            })
        });
    });

    // A queue that is full: the line is dropped and counted.
    let full = Intake::new(1);
    let _ = logger::LineSink::offer(
        &full,
        logger::Record::new(
            model::Timestamp::now(),
            logger::Level::Info,
            "s",
            "t",
            String::new(),
        ),
    );
    let full_layer = tracing_subscriber::registry().with(full.layer(tracing::Level::INFO));
    tracing::subscriber::with_default(full_layer, || {
        let mut i = 0u64;
        g.bench_function("info event, logger layer, queue full", |b| {
            b.iter(|| {
                i += 1;
                event(i)
            })
        });
    });

    let without = tracing_subscriber::registry();
    tracing::subscriber::with_default(without, || {
        let mut i = 0u64;
        g.bench_function("info event, no layer", |b| {
            b.iter(|| {
                i += 1;
                event(i)
            })
        });
    });
    g.finish();
}

criterion_group!(benches, capture);
criterion_main!(benches);
