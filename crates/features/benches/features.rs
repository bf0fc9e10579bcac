//! 1 M trade events through the feature engine, `changed_rows` every 1,000 events.
//! Goal (issue 6): < 1 s. Run: `cargo bench -p features --bench features`.

use criterion::{Criterion, criterion_group, criterion_main};
use model::{
    Decimal, Event, InstrumentId, Price, Quantity, Side, Symbol, Timestamp, TradeTick, Venue,
};

use features::FeatureEngine;

const N: usize = 1_000_000;
const SYMBOLS: usize = 10;

/// Deterministic synthetic tape: 10 symbols, one trade per millisecond overall (so each
/// symbol's 5-min window sums ~30,000 trades, in at most 601 panes), prices a random walk in
/// cents, quantities with 4 decimals.
fn tape() -> Vec<Event> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let venue = Venue::new("sim").expect("venue");
    let instruments: Vec<InstrumentId> = (0..SYMBOLS)
        .map(|i| {
            InstrumentId::new(
                venue.clone(),
                Symbol::new(format!("SYM{i}USDT")).expect("symbol"),
            )
        })
        .collect();
    let mut cents: Vec<i64> = (0..SYMBOLS)
        .map(|i| 1_000_000 + 10_000 * i as i64)
        .collect();
    let t0 = 1_704_067_200_000i64;
    (0..N)
        .map(|n| {
            let s = (next() % SYMBOLS as u64) as usize;
            cents[s] = (cents[s] + (next() % 21) as i64 - 10).max(1);
            Event::Trade(TradeTick {
                instrument: instruments[s].clone(),
                price: Price::new(Decimal::new(cents[s], 2)).expect("price"),
                quantity: Quantity::new(Decimal::new(1 + (next() % 50_000) as i64, 4))
                    .expect("qty"),
                aggressor: Some(if next() % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                }),
                trade_id: n.to_string(),
                ts: Timestamp::from_millis(t0 + n as i64),
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = tape();
    let mut g = c.benchmark_group("features");
    g.sample_size(10);
    g.bench_function("1M_trades_changed_rows_every_1000", |b| {
        b.iter(|| {
            let mut engine = FeatureEngine::default();
            let mut rows = 0usize;
            for (i, e) in events.iter().enumerate() {
                engine.on_event(e);
                if i % 1000 == 999 {
                    rows += engine.changed_rows().len();
                }
            }
            std::hint::black_box(rows)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
