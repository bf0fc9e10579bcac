#![allow(dead_code)]
//! Builders shared by the venue tests.

use model::{
    AccountId, BookDelta, BookLevel, BookSnapshot, ClientOrderId, Decimal, Event, Fill,
    InstrumentId, Liquidity, Order, OrderId, OrderType, Price, Quantity, Quote, Side, Symbol,
    TimeInForce, Timestamp, TradeTick, Venue,
};
use proptest::prelude::*;
use venue::PaperVenue;

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

// --- random scripts -------------------------------------------------------------------------

/// One step of a random script: market data, a new order, a cancel or the session end.
#[derive(Debug, Clone)]
pub enum Action {
    Snapshot(Vec<(u32, u32)>, Vec<(u32, u32)>),
    Delta(Vec<(u32, u32)>, Vec<(u32, u32)>),
    Quote(u32, u32, u32, u32),
    Trade(u32, u32),
    Order(bool, u8, u8, u32, u32, u32),
    Cancel(u64),
    ExpireDay,
}

/// Prices are 90 + tick / 2 (90.0 ..= 110.0); quantities tenths (0.1 ..= 5.0, or 0 for deletes).
pub fn price(tick: u32) -> String {
    (Decimal::from(90) + Decimal::from(tick) / Decimal::TWO).to_string()
}
pub fn qty(tenths: u32) -> String {
    (Decimal::from(tenths) / Decimal::TEN).to_string()
}

fn levels(min_qty: u32) -> impl Strategy<Value = Vec<(u32, u32)>> {
    prop::collection::vec((0u32..=40, min_qty..=50), 0..6)
}

/// Market data only (for crash tails).
pub fn market_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => (levels(1), levels(1)).prop_map(|(b, a)| Action::Snapshot(b, a)),
        2 => (levels(0), levels(0)).prop_map(|(b, a)| Action::Delta(b, a)),
        3 => (0u32..=40, 0u32..=50, 0u32..=40, 0u32..=50)
            .prop_map(|(b, bs, a, as_)| Action::Quote(b, bs, a, as_)),
        3 => (0u32..=40, 1u32..=50).prop_map(|(p, q)| Action::Trade(p, q)),
    ]
}

pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        9 => market_action(),
        6 => (any::<bool>(), 0u8..4, 0u8..4, 1u32..=60, 0u32..=40, 0u32..=40)
            .prop_map(|(s, t, f, q, p, sp)| Action::Order(s, t, f, q, p, sp)),
        1 => (1u64..30).prop_map(Action::Cancel),
        1 => Just(Action::ExpireDay),
    ]
}

fn pairs(v: &[(u32, u32)]) -> Vec<(String, String)> {
    v.iter().map(|(p, q)| (price(*p), qty(*q))).collect()
}
fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

pub fn build_order(id: u64, a: (bool, u8, u8, u32, u32, u32)) -> Order {
    let (buy, t, f, q, p, sp) = a;
    let side = if buy { Side::Buy } else { Side::Sell };
    let t = [
        OrderType::Market,
        OrderType::Limit,
        OrderType::Stop,
        OrderType::StopLimit,
    ][t as usize];
    let f = [
        TimeInForce::Gtc,
        TimeInForce::Ioc,
        TimeInForce::Fok,
        TimeInForce::Day,
    ][f as usize];
    let pr = price(p);
    let st = price(sp);
    let needs_price = matches!(t, OrderType::Limit | OrderType::StopLimit);
    let needs_stop = matches!(t, OrderType::Stop | OrderType::StopLimit);
    order(
        id,
        side,
        t,
        f,
        &qty(q),
        needs_price.then_some(pr.as_str()),
        needs_stop.then_some(st.as_str()),
    )
}

/// The market-data event of a market action stamped `t` seconds (`None` for other actions).
pub fn market_event(a: &Action, t: i64) -> Option<Event> {
    Some(match a {
        Action::Snapshot(b, a) => snapshot(&refs(&pairs(b)), &refs(&pairs(a)), t),
        Action::Delta(b, a) => delta(&refs(&pairs(b)), &refs(&pairs(a)), t),
        Action::Quote(b, bs, a, as_) => quote(&price(*b), &qty(*bs), &price(*a), &qty(*as_), t),
        Action::Trade(p, q) => trade(&price(*p), &qty(*q), t),
        _ => return None,
    })
}

/// What the engine does live: each input is journaled, then the venue's output batch, in order.
#[derive(Debug, Clone)]
pub struct Live {
    pub venue: PaperVenue,
    pub journal: Vec<Event>,
}

impl Live {
    pub fn new(venue: PaperVenue) -> Self {
        Live {
            venue,
            journal: Vec::new(),
        }
    }

    /// Run step `i` of a script (order ids and times derive from `i`, so a run continued after
    /// a restart names things exactly as an uninterrupted one). Returns the venue's output.
    pub fn step(&mut self, i: usize, a: &Action) -> Vec<Event> {
        let t = i as i64 + 1;
        match a {
            Action::Order(s, ty, f, q, p, sp) => {
                let o = build_order(t as u64, (*s, *ty, *f, *q, *p, *sp));
                self.order(&o, t)
            }
            Action::Cancel(id) => self.cancel(*id, t),
            Action::ExpireDay => {
                let out = self.venue.expire_day_orders(ts(t));
                self.journal.extend(out.iter().cloned());
                out
            }
            md => {
                let e = market_event(md, t).expect("market action");
                self.md(e)
            }
        }
    }

    pub fn md(&mut self, e: Event) -> Vec<Event> {
        let out = self.venue.on_market_data(&e);
        self.journal.push(e);
        self.journal.extend(out.iter().cloned());
        out
    }

    pub fn order(&mut self, o: &Order, t: i64) -> Vec<Event> {
        self.journal
            .push(Event::OrderSubmitted { order: o.clone() });
        let out = self.venue.on_order(o, ts(t));
        self.journal.extend(out.iter().cloned());
        out
    }

    pub fn cancel(&mut self, id: u64, t: i64) -> Vec<Event> {
        if !self.venue.cancel(OrderId(id)) {
            return Vec::new();
        }
        let e = Event::OrderCanceled {
            order_id: OrderId(id),
            account: AccountId::new("acct").unwrap(),
            reason: "user".into(),
            ts: ts(t),
        };
        self.journal.push(e.clone());
        vec![e]
    }
}

/// A fresh venue rebuilt from a journal with `apply` only (what a restart does).
pub fn rebuild(config: venue::VenueConfig, journal: &[Event]) -> PaperVenue {
    let mut v = PaperVenue::new(config).unwrap();
    for e in journal {
        v.apply(e);
    }
    v
}

/// A snapshot round trip through JSON.
pub fn round_trip(v: &PaperVenue) -> PaperVenue {
    let json = serde_json::to_string(v).unwrap();
    serde_json::from_str(&json).unwrap()
}
