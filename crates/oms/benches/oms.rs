//! OMS transition latency. Goal: p50 < 10 µs per transition in-process.
//! Run: `cargo bench -p oms --bench oms`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use model::{
    AccountId, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price, Quantity, Side,
    Symbol, Timestamp, Venue,
};
use oms::{NewOrder, Oms, Submit};

fn request(i: u64) -> NewOrder {
    NewOrder::limit(
        AccountId::new(format!("acct{}", i % 8)).unwrap(),
        InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap()),
        if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        Quantity::parse("0.5").unwrap(),
        Price::parse("45000.1").unwrap(),
    )
}

/// An OMS with `n` accepted orders spread over 8 accounts, as a warm platform has.
fn warm(n: u64) -> Oms {
    let mut oms = Oms::new();
    for i in 0..n {
        let Ok(Submit::New(e)) = oms.submit(request(i), Timestamp::from_nanos(i as i64)) else {
            panic!("submit failed")
        };
        oms.apply(&e).unwrap();
        let id = OrderId(oms.last_order_id());
        let e = oms.accept(id, Timestamp::from_nanos(i as i64)).unwrap();
        oms.apply(&e).unwrap();
    }
    oms
}

/// Orders in the warm OMS; at least the bench chunk so every fill finds an accepted order.
const CHUNK_WARM: u64 = 10_000;

fn benches(c: &mut Criterion) {
    let base = warm(CHUNK_WARM);

    // submit (builds the event) + apply (state change) of one new order on a warm OMS.
    // The OMS is re-cloned every CHUNK orders (outside the timed region) so it stays warm
    // without growing by millions of orders.
    const CHUNK: u64 = 5_000;
    c.bench_function("oms/submit+apply", |b| {
        b.iter_custom(|iters| {
            let mut oms = base.clone();
            let mut total = Duration::ZERO;
            for i in 0..iters {
                if i % CHUNK == 0 {
                    oms = base.clone();
                }
                let req = request(i);
                let start = Instant::now();
                let Ok(Submit::New(e)) = oms.submit(req, Timestamp::from_secs(1)) else {
                    panic!("submit failed")
                };
                oms.apply(black_box(&e)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });

    // One partial fill of an accepted order (a different order each time, so none overfills).
    let fill = |i: u64| {
        let order = base.order(OrderId(1 + i % CHUNK)).unwrap();
        Event::OrderFilled(Fill {
            fill_id: FillId(i),
            order_id: order.order_id,
            account: order.account.clone(),
            instrument: order.instrument.clone(),
            side: order.side,
            quantity: Quantity::parse("0.1").unwrap(),
            price: Price::parse("45000.1").unwrap(),
            fee: Money::ZERO,
            liquidity: Liquidity::Maker,
            ts: Timestamp::from_secs(2),
        })
    };
    c.bench_function("oms/apply_fill", |b| {
        b.iter_custom(|iters| {
            let mut oms = base.clone();
            let mut total = Duration::ZERO;
            for i in 0..iters {
                if i % CHUNK == 0 {
                    oms = base.clone();
                }
                let e = fill(i);
                let start = Instant::now();
                oms.apply(black_box(&e)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
}

criterion_group!(oms_benches, benches);
criterion_main!(oms_benches);
