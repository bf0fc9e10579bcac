//! OMS transition latency. Goal: p50 < 10 µs per transition in-process.
//! Run: `cargo bench -p oms --bench oms`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use model::{
    AccountId, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price, Quantity,
    Side, Symbol, Timestamp, Venue,
};
use oms::{NewOrder, Oms, Submit};

fn request(i: u64) -> NewOrder {
    NewOrder::limit(
        AccountId::new(format!("acct{}", i % 8)).unwrap(),
        InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap()),
        if i % 2 == 0 { Side::Buy } else { Side::Sell },
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

fn benches(c: &mut Criterion) {
    let base = warm(10_000);

    // submit (builds the event) + apply (state change), one new order on a 10k-order OMS.
    c.bench_function("oms/submit+apply", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |oms| {
                let Ok(Submit::New(e)) = oms.submit(request(3), Timestamp::from_secs(1)) else {
                    panic!("submit failed")
                };
                oms.apply(black_box(&e)).unwrap();
            },
            BatchSize::LargeInput,
        )
    });

    // One partial fill of an accepted order.
    let target = OrderId(5_000);
    let order = base.order(target).unwrap().clone();
    let fill = Event::OrderFilled(Fill {
        fill_id: FillId(1),
        order_id: target,
        account: order.account.clone(),
        instrument: order.instrument.clone(),
        side: order.side,
        quantity: Quantity::parse("0.1").unwrap(),
        price: Price::parse("45000.1").unwrap(),
        fee: Money::ZERO,
        liquidity: Liquidity::Maker,
        ts: Timestamp::from_secs(2),
    });
    c.bench_function("oms/apply_fill", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |oms| oms.apply(black_box(&fill)).unwrap(),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(oms_benches, benches);
criterion_main!(oms_benches);
