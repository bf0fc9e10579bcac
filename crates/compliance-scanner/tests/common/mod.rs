//! Event builders shared by the scanner's tests.
#![allow(dead_code)]

use std::time::Duration;

use journal::{Delivery, InProcessBus, Journal};
use model::{
    AccountId, ClientOrderId, Event, Fill, FillId, InstrumentId, Liquidity, Money, Order, OrderId,
    OrderType, Price, Quantity, Quote, Side, Symbol, TimeInForce, Timestamp, Venue,
};

pub const T0: i64 = 1_700_000_000_000;

pub fn inst() -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new("BTCUSDT").unwrap())
}

pub fn quote(ms: i64) -> Event {
    Event::Quote(Quote {
        instrument: inst(),
        bid: Price::parse("44999.9").unwrap(),
        bid_size: Quantity::parse("5").unwrap(),
        ask: Price::parse("45000.1").unwrap(),
        ask_size: Quantity::parse("5").unwrap(),
        ts: Timestamp::from_millis(ms),
    })
}

fn order(
    id: u64,
    account: &str,
    side: Side,
    kind: OrderType,
    price: Option<&str>,
    ms: i64,
) -> Order {
    Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        AccountId::new(account).unwrap(),
        inst(),
        side,
        kind,
        if kind == OrderType::Market {
            TimeInForce::Ioc
        } else {
            TimeInForce::Gtc
        },
        Quantity::parse("1").unwrap(),
        price.map(|p| Price::parse(p).unwrap()),
        None,
        Timestamp::from_millis(ms),
    )
    .unwrap()
}

/// A market order of 1 filled at `price`; the fill id is the order id.
pub fn order_and_fill(id: u64, account: &str, side: Side, price: &str, ms: i64) -> Vec<Event> {
    let ts = Timestamp::from_millis(ms);
    let acct = AccountId::new(account).unwrap();
    vec![
        Event::OrderSubmitted {
            order: order(id, account, side, OrderType::Market, None, ms),
        },
        Event::OrderAccepted {
            order_id: OrderId(id),
            account: acct.clone(),
            ts,
        },
        Event::OrderFilled(Fill {
            fill_id: FillId(id),
            order_id: OrderId(id),
            account: acct,
            instrument: inst(),
            side,
            quantity: Quantity::parse("1").unwrap(),
            price: Price::parse(price).unwrap(),
            fee: Money::ZERO,
            liquidity: Liquidity::Taker,
            ts,
        }),
    ]
}

/// A resting limit order of 1 placed `ticks` of 0.1 away from the touch.
pub fn resting(id: u64, account: &str, side: Side, ticks: u32, ms: i64) -> Vec<Event> {
    let away = model::Decimal::from(ticks) / model::Decimal::from(10);
    let price = match side {
        Side::Buy => "44999.9".parse::<model::Decimal>().unwrap() - away,
        Side::Sell => "45000.1".parse::<model::Decimal>().unwrap() + away,
    };
    vec![
        Event::OrderSubmitted {
            order: order(
                id,
                account,
                side,
                OrderType::Limit,
                Some(&price.to_string()),
                ms,
            ),
        },
        Event::OrderAccepted {
            order_id: OrderId(id),
            account: AccountId::new(account).unwrap(),
            ts: Timestamp::from_millis(ms),
        },
    ]
}

pub fn cancel(id: u64, account: &str, ms: i64) -> Event {
    Event::OrderCanceled {
        order_id: OrderId(id),
        account: AccountId::new(account).unwrap(),
        reason: "client".into(),
        ts: Timestamp::from_millis(ms),
    }
}

/// Buy 1 and sell 1 two seconds later, 0.2 apart (0.04 bps): a round trip, one WASH_TRADE
/// alert. Order ids `first` and `first + 1`.
pub fn wash(account: &str, first: u64, ms: i64) -> Vec<Event> {
    let mut events = vec![quote(ms)];
    events.extend(order_and_fill(
        first,
        account,
        Side::Buy,
        "45000.1",
        ms + 1_000,
    ));
    events.extend(order_and_fill(
        first + 1,
        account,
        Side::Sell,
        "44999.9",
        ms + 3_000,
    ));
    events
}

pub fn deliveries(events: &[Event], first_seq: u64) -> Vec<Delivery> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Delivery {
            seq: first_seq + i as u64,
            recorded_at: e.ts(),
            subject: e.subject(),
            event: e.clone(),
        })
        .collect()
}

/// The keys of the alerts in the journal, in order.
pub fn journaled_alerts(journal: &Journal) -> Vec<String> {
    journal
        .read_from(1, usize::MAX)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ComplianceAlert { key, .. } => Some(key),
            _ => None,
        })
        .collect()
}

pub fn open(dir: &std::path::Path) -> (Journal, InProcessBus) {
    let (journal, _) = Journal::open(&dir.join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    (journal, bus)
}

/// Polls `cond` until it holds.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}
