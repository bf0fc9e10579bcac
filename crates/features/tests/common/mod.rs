#![allow(dead_code)]
//! Event builders for the tests.

use model::{
    AccountId, BookDelta, BookLevel, BookSnapshot, ClientOrderId, Decimal, Event, Fill, FillId,
    InstrumentId, Liquidity, Money, Order, OrderId, OrderType, Price, Quantity, Quote, Side,
    Symbol, TimeInForce, Timestamp, TradeTick, Venue,
};

/// 2023-11-14T22:13:20Z: the reference "as of" time of the hand-worked windows.
pub const T0: i64 = 1_700_000_000 * 1_000_000_000;
pub const S: i64 = 1_000_000_000;

pub fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}
pub fn ts(ns: i64) -> Timestamp {
    Timestamp::from_nanos(ns)
}
pub fn inst(sym: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(sym).unwrap())
}
pub fn trade(sym: &str, at: i64, price: &str, qty: &str) -> Event {
    Event::Trade(TradeTick {
        instrument: inst(sym),
        price: Price::parse(price).unwrap(),
        quantity: Quantity::parse(qty).unwrap(),
        aggressor: None,
        trade_id: format!("{at}"),
        ts: ts(at),
    })
}
pub fn quote(sym: &str, at: i64, bid: &str, ask: &str) -> Event {
    Event::Quote(Quote {
        instrument: inst(sym),
        bid: Price::parse(bid).unwrap(),
        bid_size: Quantity::parse("1").unwrap(),
        ask: Price::parse(ask).unwrap(),
        ask_size: Quantity::parse("1").unwrap(),
        ts: ts(at),
    })
}
fn levels(l: &[(&str, &str)]) -> Vec<BookLevel> {
    l.iter()
        .map(|(p, q)| BookLevel {
            price: Price::parse(p).unwrap(),
            quantity: Quantity::parse(q).unwrap(),
        })
        .collect()
}
pub fn snapshot(sym: &str, at: i64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Event {
    Event::BookSnapshot(BookSnapshot {
        instrument: inst(sym),
        bids: levels(bids),
        asks: levels(asks),
        sequence: None,
        ts: ts(at),
    })
}
pub fn delta(sym: &str, at: i64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Event {
    Event::BookDelta(BookDelta {
        instrument: inst(sym),
        bids: levels(bids),
        asks: levels(asks),
        first_sequence: None,
        sequence: None,
        ts: ts(at),
    })
}
pub fn submit(id: u64, acct: &str, sym: &str, side: Side, qty: &str, at: i64) -> Event {
    let order = Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        AccountId::new(acct).unwrap(),
        inst(sym),
        side,
        OrderType::Market,
        TimeInForce::Gtc,
        Quantity::parse(qty).unwrap(),
        None,
        None,
        ts(at),
    )
    .unwrap();
    Event::OrderSubmitted { order }
}
#[allow(clippy::too_many_arguments)]
pub fn fill(
    fill_id: u64,
    order_id: u64,
    acct: &str,
    sym: &str,
    side: Side,
    qty: &str,
    price: &str,
    fee: &str,
    at: i64,
) -> Event {
    Event::OrderFilled(Fill {
        fill_id: FillId(fill_id),
        order_id: OrderId(order_id),
        account: AccountId::new(acct).unwrap(),
        instrument: inst(sym),
        side,
        quantity: Quantity::parse(qty).unwrap(),
        price: Price::parse(price).unwrap(),
        fee: Money::parse(fee).unwrap(),
        liquidity: Liquidity::Taker,
        ts: ts(at),
    })
}
pub fn cancel(id: u64, acct: &str, at: i64) -> Event {
    Event::OrderCanceled {
        order_id: OrderId(id),
        account: AccountId::new(acct).unwrap(),
        reason: "user".into(),
        ts: ts(at),
    }
}
pub fn reject(id: u64, acct: &str, at: i64) -> Event {
    Event::OrderRejected {
        order_id: OrderId(id),
        account: AccountId::new(acct).unwrap(),
        code: "risk".into(),
        message: "limit".into(),
        ts: ts(at),
    }
}
pub fn expire(id: u64, acct: &str, at: i64) -> Event {
    Event::OrderExpired {
        order_id: OrderId(id),
        account: AccountId::new(acct).unwrap(),
        reason: "ioc".into(),
        ts: ts(at),
    }
}

/// Assert a float feature within a relative tolerance (the engine converts exact values once).
#[track_caller]
pub fn assert_f(row: &features::FeatureRow, name: &str, want: f64) {
    let got = row
        .get(name)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{name} is {:?}", row.get(name)));
    let tol = 1e-12 * want.abs().max(1e-9);
    assert!((got - want).abs() <= tol, "{name}: got {got}, want {want}");
}

#[track_caller]
pub fn assert_i(row: &features::FeatureRow, name: &str, want: i64) {
    assert_eq!(row.get(name).and_then(|v| v.as_i64()), Some(want), "{name}");
}

#[track_caller]
pub fn assert_null(row: &features::FeatureRow, name: &str) {
    assert!(
        row.get(name).is_some_and(|v| v.is_null()),
        "{name} is {:?}",
        row.get(name)
    );
}
