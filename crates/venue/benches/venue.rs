//! A marketable limit order matched against a 20-level book.
//!
//! Each iteration clones a venue holding a fresh 20-level book (so consumed liquidity does not
//! build up) and sends one buy limit that sweeps all 20 ask levels: 20 taker fills plus the
//! acceptance. The clone is done in `iter_batched` setup and is not timed.

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use model::{
    AccountId, BookLevel, BookSnapshot, ClientOrderId, Decimal, Event, InstrumentId, Order,
    OrderId, OrderType, Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use venue::{FeeSchedule, PaperVenue, VenueConfig};

fn setup() -> (PaperVenue, Order) {
    let inst = InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap());
    let level = |px: Decimal| BookLevel {
        price: Price::new(px).unwrap(),
        quantity: Quantity::new(Decimal::new(15, 1)).unwrap(),
    };
    let bids = (1..=20).map(|i| level(Decimal::from(50_000 - i))).collect();
    let asks = (0..20).map(|i| level(Decimal::from(50_000 + i))).collect();
    let mut v = PaperVenue::new(VenueConfig {
        fees: FeeSchedule::new(Decimal::new(-1, 0), Decimal::new(45, 1)),
        ..VenueConfig::default()
    })
    .unwrap();
    v.on_market_data(&Event::BookSnapshot(BookSnapshot {
        instrument: inst.clone(),
        bids,
        asks,
        sequence: Some(1),
        ts: Timestamp::from_secs(1),
    }));
    let order = Order::new(
        OrderId(1),
        ClientOrderId::new("bench").unwrap(),
        AccountId::new("acct").unwrap(),
        inst,
        Side::Buy,
        OrderType::Limit,
        TimeInForce::Gtc,
        Quantity::new(Decimal::from(30)).unwrap(), // exactly the 20 levels x 1.5
        Some(Price::new(Decimal::from(50_019)).unwrap()),
        None,
        Timestamp::from_secs(2),
    )
    .unwrap();
    (v, order)
}

fn bench(c: &mut Criterion) {
    let (venue, order) = setup();
    // Sanity: the order really sweeps 20 levels.
    let out = venue.clone().on_order(&order, Timestamp::from_secs(2));
    assert_eq!(out.len(), 21);
    c.bench_function("marketable_limit_sweeps_20_levels", |b| {
        b.iter_batched(
            || venue.clone(),
            |mut v| black_box(v.on_order(black_box(&order), Timestamp::from_secs(2))),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
