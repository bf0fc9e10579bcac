#![allow(dead_code)]
//! Builders shared by the risk integration tests.

use model::{
    AccountId, ClientOrderId, Decimal, InstrumentId, Order, OrderId, OrderType, Price, Quantity,
    Side, Symbol, TimeInForce, Timestamp, Venue,
};

pub fn acct(i: u32) -> AccountId {
    AccountId::new(format!("acct{i}")).unwrap()
}

pub fn inst(symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(symbol).unwrap())
}

/// A new order; `price` for limit / stop-limit, `stop` for stop / stop-limit.
#[allow(clippy::too_many_arguments)]
pub fn order(
    id: u64,
    account: AccountId,
    symbol: &str,
    side: Side,
    order_type: OrderType,
    qty: Decimal,
    price: Option<Decimal>,
    stop: Option<Decimal>,
    at_nanos: i64,
) -> Order {
    Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        account,
        inst(symbol),
        side,
        order_type,
        TimeInForce::Gtc,
        Quantity::new(qty).unwrap(),
        price.map(|p| Price::new(p).unwrap()),
        stop.map(|p| Price::new(p).unwrap()),
        Timestamp::from_nanos(at_nanos),
    )
    .unwrap()
}
