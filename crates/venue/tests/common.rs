#![allow(dead_code)]
//! Builders shared by the venue tests.

use model::{
    AccountId, BookDelta, BookLevel, BookSnapshot, ClientOrderId, Decimal, Event, Fill,
    InstrumentId, Liquidity, Order, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol,
    TimeInForce, Timestamp, TradeTick, Venue,
};

pub fn inst() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}
pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}
pub fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
pub fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}
pub fn ts(n: i64) -> Timestamp {
    Timestamp::from_secs(n)
}

#[allow(clippy::too_many_arguments)]
pub fn order(
    id: u64,
    side: Side,
    t: OrderType,
    tif: TimeInForce,
    qty: &str,
    price: Option<&str>,
    stop: Option<&str>,
) -> Order {
    Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        AccountId::new("acct").unwrap(),
        inst(),
        side,
        t,
        tif,
        q(qty),
        price.map(p),
        stop.map(p),
        ts(1),
    )
    .unwrap()
}
pub fn market(id: u64, side: Side, qty: &str) -> Order {
    order(
        id,
        side,
        OrderType::Market,
        TimeInForce::Gtc,
        qty,
        None,
        None,
    )
}
pub fn limit(id: u64, side: Side, tif: TimeInForce, qty: &str, price: &str) -> Order {
    order(id, side, OrderType::Limit, tif, qty, Some(price), None)
}

fn lv(levels: &[(&str, &str)]) -> Vec<BookLevel> {
    levels
        .iter()
        .map(|(pr, qt)| BookLevel {
            price: p(pr),
            quantity: q(qt),
        })
        .collect()
}
pub fn snapshot(bids: &[(&str, &str)], asks: &[(&str, &str)], t: i64) -> Event {
    Event::BookSnapshot(BookSnapshot {
        instrument: inst(),
        bids: lv(bids),
        asks: lv(asks),
        sequence: None,
        ts: ts(t),
    })
}
pub fn delta(bids: &[(&str, &str)], asks: &[(&str, &str)], t: i64) -> Event {
    Event::BookDelta(BookDelta {
        instrument: inst(),
        bids: lv(bids),
        asks: lv(asks),
        first_sequence: None,
        sequence: None,
        ts: ts(t),
    })
}
pub fn quote(bid: &str, bid_size: &str, ask: &str, ask_size: &str, t: i64) -> Event {
    Event::Quote(Quote {
        instrument: inst(),
        bid: p(bid),
        bid_size: q(bid_size),
        ask: p(ask),
        ask_size: q(ask_size),
        ts: ts(t),
    })
}
pub fn trade(price: &str, qty: &str, t: i64) -> Event {
    Event::Trade(TradeTick {
        instrument: inst(),
        price: p(price),
        quantity: q(qty),
        aggressor: None,
        trade_id: format!("t{t}"),
        ts: ts(t),
    })
}

pub fn fills(events: &[Event]) -> Vec<&Fill> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderFilled(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// (order id, quantity, price, fee, liquidity) of every fill, as strings for table tests.
pub fn fill_rows(events: &[Event]) -> Vec<(u64, String, String, String, Liquidity)> {
    fills(events)
        .into_iter()
        .map(|f| {
            (
                f.order_id.0,
                f.quantity.to_string(),
                f.price.to_string(),
                f.fee.get().normalize().to_string(),
                f.liquidity,
            )
        })
        .collect()
}

pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind().as_str()).collect()
}
