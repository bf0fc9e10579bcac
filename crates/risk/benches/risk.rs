//! Risk check latency. Goal: p50 < 2 µs for a full check that passes every rule.
//! Run: `cargo bench -p risk --bench risk`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use model::{
    AccountId, ClientOrderId, Decimal, InstrumentId, Order, OrderId, OrderStatus, OrderType, Price,
    Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use risk::{RiskContext, RiskEngine, RiskLimits};

/// Limits at every scope, so resolution walks all of them.
const LIMITS: &str = r#"
defaults: { max_order_quantity: 100, max_order_notional: 10000000, price_collar_pct: 5,
            max_position: 1000, max_gross_exposure: 100000000, max_open_orders: 1000,
            max_orders_per_sec: 1000, daily_loss_limit: 100000 }
accounts: { bench: { max_open_orders: 500 } }
symbols: { BTCUSDT: { max_order_quantity: 50 }, LUNAUSDT: { restricted: true } }
account_symbols: { bench: { BTCUSDT: { max_position: 200 } } }
"#;

fn order(id: u64, side: Side, price: &str, status: OrderStatus, ts: Timestamp) -> Order {
    let mut o = Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        AccountId::new("bench").unwrap(),
        InstrumentId::new(
            Venue::new("binance").unwrap(),
            Symbol::new("BTCUSDT").unwrap(),
        ),
        side,
        OrderType::Limit,
        TimeInForce::Gtc,
        Quantity::parse("0.5").unwrap(),
        Some(Price::parse(price).unwrap()),
        None,
        ts,
    )
    .unwrap();
    o.status = status;
    o
}

fn benches(c: &mut Criterion) {
    let limits: RiskLimits = serde_yaml_ng::from_str(LIMITS).unwrap();
    let mut engine = RiskEngine::new(limits).unwrap();
    // Five resting orders of the same account that the incoming buy does not cross.
    let resting: Vec<Order> = (0..5)
        .map(|i| {
            order(
                100 + i,
                if i.is_multiple_of(2) {
                    Side::Sell
                } else {
                    Side::Buy
                },
                if i.is_multiple_of(2) {
                    "45100"
                } else {
                    "44900"
                },
                OrderStatus::Accepted,
                Timestamp::from_secs(0),
            )
        })
        .collect();
    let resting_refs: Vec<&Order> = resting.iter().collect();
    let ctx = RiskContext {
        mid: Some(Decimal::new(4500005, 2)),
        best_bid: Some(Price::parse("45000").unwrap()),
        best_ask: Some(Price::parse("45000.1").unwrap()),
        position: Decimal::new(3, 0),
        gross_exposure: Decimal::new(135_000, 0),
        open_orders: 5,
        resting_orders: &resting_refs,
        daily_pnl: Decimal::new(-1234, 0),
    };
    let mut incoming = order(
        1,
        Side::Buy,
        "45000.05",
        OrderStatus::PendingNew,
        Timestamp::from_secs(1),
    );
    let mut t: i64 = 1_000_000_000;
    // Sanity: the bench measures the passing path.
    engine.check(&incoming, &ctx).unwrap();

    c.bench_function("risk/check_pass_all", |b| {
        b.iter(|| {
            // Advance just over 1 ms so the rate window holds a steady ~1000 orders, all under the limit.
            t += 1_000_001;
            incoming.created_at = Timestamp::from_nanos(t);
            engine.check(black_box(&incoming), black_box(&ctx)).unwrap();
        })
    });
}

criterion_group!(risk_benches, benches);
criterion_main!(risk_benches);
