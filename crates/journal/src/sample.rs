//! The event the journal's benchmarks append (criterion, `append_at_rate`, `append_throughput`,
//! and the durable echo server that bench-all measures the order path against): one definition,
//! so their figures are for the same record.

use model::{
    Decimal, Event, InstrumentId, Price, Quantity, Side, Symbol, Timestamp, TradeTick, Venue,
};

/// A 187-byte trade whose fields vary with `n`.
pub fn trade(n: i64) -> Event {
    Event::Trade(TradeTick {
        instrument: InstrumentId::new(
            Venue::new("binance").expect("venue"),
            Symbol::new("BTCUSDT").expect("symbol"),
        ),
        price: Price::new(Decimal::new(4_500_000 + n % 10_000, 2)).expect("price"),
        quantity: Quantity::new(Decimal::new(1 + n % 97, 3)).expect("quantity"),
        aggressor: Some(if n % 2 == 0 { Side::Buy } else { Side::Sell }),
        trade_id: format!("{}", 3_000_000_000_i64 + n),
        ts: Timestamp::from_millis(1_700_000_000_000 + n),
    })
}
