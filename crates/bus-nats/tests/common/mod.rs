//! What the NATS tests share: the server (or a skip, or under CI a failure) and the test events.

use std::time::Duration;

use model::{
    AccountId, Decimal, Event, InstrumentId, OrderId, Price, Quantity, Symbol, Timestamp,
    TradeTick, Venue,
};

pub async fn nats() -> Option<async_nats::Client> {
    let url = std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let connected = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
    match connected {
        Ok(Ok(client)) => Some(client),
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "NATS at {url} is required under CI: {why}"
            );
            eprintln!("skipped: no NATS server at {url} ({why}); set TEST_NATS_URL");
            None
        }
    }
}

/// Event `n`: every third a BTCUSDT trade (`md.trade.binance.BTCUSDT`), the rest order acks
/// alternating between accounts a (`orders.a`) and b.
pub fn event(n: u64) -> Event {
    let n_i = i64::try_from(n).unwrap();
    if n.is_multiple_of(3) {
        Event::Trade(TradeTick {
            instrument: InstrumentId::new(
                Venue::new("binance").unwrap(),
                Symbol::new("BTCUSDT").unwrap(),
            ),
            price: Price::new(Decimal::new(4_500_000 + n_i, 2)).unwrap(),
            quantity: Quantity::new(Decimal::new(1 + n_i % 97, 3)).unwrap(),
            aggressor: None,
            trade_id: format!("t{n}"),
            ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
        })
    } else {
        Event::OrderAccepted {
            order_id: OrderId(n),
            account: AccountId::new(if n.is_multiple_of(2) { "a" } else { "b" }).unwrap(),
            ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
        }
    }
}
