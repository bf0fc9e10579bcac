//! Event builders shared by the integration tests. Every builder is a pure function of its
//! arguments, so a test (or a helper process) can rebuild the exact event behind a sequence.
#![allow(dead_code)]

use model::{
    AccountId, Decimal, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price,
    Quantity, Side, Symbol, Timestamp, TradeTick, Venue,
};

pub fn instrument(venue: &str, symbol: &str) -> InstrumentId {
    InstrumentId::new(
        Venue::new(venue).expect("valid venue"),
        Symbol::new(symbol).expect("valid symbol"),
    )
}

/// A trade print; `n` picks price, size, id and time.
pub fn trade(venue: &str, symbol: &str, n: u64) -> Event {
    let n_i = i64::try_from(n).expect("small n");
    Event::Trade(TradeTick {
        instrument: instrument(venue, symbol),
        price: Price::new(Decimal::new(4_500_000 + n_i % 10_000, 2)).expect("positive"),
        quantity: Quantity::new(Decimal::new(1 + n_i % 97, 3)).expect("not negative"),
        aggressor: Some(if n.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        }),
        trade_id: format!("t{n}"),
        ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
    })
}

pub fn accepted(account: &str, n: u64) -> Event {
    Event::OrderAccepted {
        order_id: OrderId(n),
        account: AccountId::new(account).expect("valid account"),
        ts: Timestamp::from_millis(1_700_000_000_000 + i64::try_from(n).expect("small n")),
    }
}

pub fn fill(account: &str, n: u64) -> Event {
    let n_i = i64::try_from(n).expect("small n");
    Event::OrderFilled(Fill {
        fill_id: FillId(n),
        order_id: OrderId(n / 2),
        account: AccountId::new(account).expect("valid account"),
        instrument: instrument("binance", "BTCUSDT"),
        side: Side::Buy,
        quantity: Quantity::new(Decimal::new(5, 1)).expect("positive"),
        price: Price::new(Decimal::new(4_500_000 + n_i, 2)).expect("positive"),
        fee: Money::new(Decimal::new(-n_i, 4)).expect("any"),
        liquidity: Liquidity::Maker,
        ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
    })
}

/// The `n`-th event of a deterministic mixed stream (market data, orders, fills).
pub fn mixed(n: u64) -> Event {
    match n % 4 {
        0 => trade("binance", "BTCUSDT", n),
        1 => trade("coinbase", "BTC-USD", n),
        2 => accepted(if n % 8 == 2 { "acct1" } else { "acct2" }, n),
        _ => fill("acct1", n),
    }
}
