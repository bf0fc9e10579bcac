//! Property tests: random market data and orders never overfill, fill prices respect the book
//! and the limits, and the journal replays to the live state.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use model::{Decimal, Event, Liquidity, Order, OrderId, OrderType, Price, Side, TimeInForce};
use proptest::prelude::*;
use venue::{FeeSchedule, PaperVenue, VenueConfig};

#[derive(Debug, Clone)]
enum Action {
    Snapshot(Vec<(u32, u32)>, Vec<(u32, u32)>),
    Delta(Vec<(u32, u32)>, Vec<(u32, u32)>),
    Quote(u32, u32, u32, u32),
    Trade(u32, u32),
    Order(bool, u8, u8, u32, u32, u32),
    Cancel(u64),
    ExpireDay,
}

/// Prices are 90 + tick / 2 (90.0 ..= 110.0); quantities tenths (0.1 ..= 5.0, or 0 for deletes).
fn price(tick: u32) -> String {
    (Decimal::from(90) + Decimal::from(tick) / Decimal::TWO).to_string()
}
fn qty(tenths: u32) -> String {
    (Decimal::from(tenths) / Decimal::TEN).to_string()
}

fn levels(min_qty: u32) -> impl Strategy<Value = Vec<(u32, u32)>> {
    prop::collection::vec((0u32..=40, min_qty..=50), 0..6)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => (levels(1), levels(1)).prop_map(|(b, a)| Action::Snapshot(b, a)),
        2 => (levels(0), levels(0)).prop_map(|(b, a)| Action::Delta(b, a)),
        3 => (0u32..=40, 0u32..=50, 0u32..=40, 0u32..=50)
            .prop_map(|(b, bs, a, as_)| Action::Quote(b, bs, a, as_)),
        3 => (0u32..=40, 1u32..=50).prop_map(|(p, q)| Action::Trade(p, q)),
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

fn build_order(id: u64, a: (bool, u8, u8, u32, u32, u32)) -> Order {
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

/// Displayed prices on the side a taker of `side` trades against.
fn opposite_prices(v: &PaperVenue, side: Side) -> BTreeSet<Price> {
    v.market(&inst())
        .map_or_else(BTreeSet::new, |m| match side {
            Side::Buy => m.asks().map(|l| l.price).collect(),
            Side::Sell => m.bids().map(|l| l.price).collect(),
        })
}

fn check_fills(
    out: &[Event],
    orders: &HashMap<OrderId, Order>,
    filled: &mut HashMap<OrderId, Decimal>,
    last_id: &mut u64,
    book: &dyn Fn(Side) -> BTreeSet<Price>,
) -> Result<(), TestCaseError> {
    for f in fills(out) {
        let o = &orders[&f.order_id];
        prop_assert!(f.fill_id.0 > *last_id, "fill ids must increase");
        *last_id = f.fill_id.0;
        prop_assert!(!f.quantity.is_zero());
        let total = filled.entry(f.order_id).or_default();
        *total += f.quantity.get();
        prop_assert!(*total <= o.quantity.get(), "overfill of {:?}", o.order_id);
        prop_assert_eq!(f.side, o.side);
        match (f.liquidity, o.price) {
            (Liquidity::Maker, Some(limit)) => prop_assert_eq!(f.price, limit),
            (Liquidity::Maker, None) => prop_assert!(false, "maker fill without a limit"),
            (Liquidity::Taker, limit) => {
                prop_assert!(book(o.side).contains(&f.price), "taker price not in book");
                if let Some(l) = limit {
                    match o.side {
                        Side::Buy => prop_assert!(f.price <= l),
                        Side::Sell => prop_assert!(f.price >= l),
                    }
                }
            }
        }
    }
    Ok(())
}

fn config() -> VenueConfig {
    VenueConfig {
        fees: FeeSchedule::new(d("-1"), d("3")),
        ..VenueConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_flow_never_overfills_and_respects_prices(actions in prop::collection::vec(action(), 1..60)) {
        let mut v = PaperVenue::new(config()).unwrap();
        let mut journal = Vec::new();
        let mut orders = HashMap::new();
        let mut filled = HashMap::new();
        let mut last_id = 0u64;
        let mut next_order = 1u64;
        for (i, a) in actions.into_iter().enumerate() {
            let t = i as i64 + 1;
            match a {
                Action::Order(s, ty, f, q, p, sp) => {
                    let o = build_order(next_order, (s, ty, f, q, p, sp));
                    next_order += 1;
                    let before = (opposite_prices(&v, Side::Buy), opposite_prices(&v, Side::Sell));
                    orders.insert(o.order_id, o.clone());
                    journal.push(Event::OrderSubmitted { order: o.clone() });
                    let out = v.on_order(&o, ts(t));
                    let book = |s: Side| if s == Side::Buy { before.0.clone() } else { before.1.clone() };
                    check_fills(&out, &orders, &mut filled, &mut last_id, &book)?;
                    journal.extend(out);
                }
                Action::Cancel(id) => {
                    if v.cancel(OrderId(id)) {
                        journal.push(Event::OrderCanceled {
                            order_id: OrderId(id),
                            account: orders[&OrderId(id)].account.clone(),
                            reason: "test".into(),
                            ts: ts(t),
                        });
                    }
                }
                Action::ExpireDay => journal.extend(v.expire_day_orders(ts(t))),
                md => {
                    let e = match md {
                        Action::Snapshot(b, a) => snapshot(&refs(&pairs(&b)), &refs(&pairs(&a)), t),
                        Action::Delta(b, a) => delta(&refs(&pairs(&b)), &refs(&pairs(&a)), t),
                        Action::Quote(b, bs, a, as_) => quote(&price(b), &qty(bs), &price(a), &qty(as_), t),
                        Action::Trade(p, q) => trade(&price(p), &qty(q), t),
                        _ => unreachable!(),
                    };
                    let out = v.on_market_data(&e);
                    let after = (opposite_prices(&v, Side::Buy), opposite_prices(&v, Side::Sell));
                    let book = |s: Side| if s == Side::Buy { after.0.clone() } else { after.1.clone() };
                    check_fills(&out, &orders, &mut filled, &mut last_id, &book)?;
                    journal.push(e);
                    journal.extend(out);
                }
            }
            // Resting quantities never exceed what is unfilled.
            for r in v.resting_orders() {
                let done = filled.get(&r.order.order_id).copied().unwrap_or_default();
                prop_assert_eq!(r.leaves.get(), r.order.quantity.get() - done);
            }
        }
        // Replaying the journal rebuilds the same resting orders, book and fill-id counter.
        let mut replayed = PaperVenue::new(config()).unwrap();
        for e in &journal {
            replayed.apply(e);
        }
        let a: Vec<_> = v.resting_orders().cloned().collect();
        let b: Vec<_> = replayed.resting_orders().cloned().collect();
        prop_assert_eq!(a, b);
        prop_assert_eq!(v.next_fill_id(), replayed.next_fill_id());
        let (ma, mb) = (v.market(&inst()), replayed.market(&inst()));
        prop_assert_eq!(ma.map(|m| m.bids().collect::<Vec<_>>()), mb.map(|m| m.bids().collect::<Vec<_>>()));
        prop_assert_eq!(ma.map(|m| m.asks().collect::<Vec<_>>()), mb.map(|m| m.asks().collect::<Vec<_>>()));
        prop_assert_eq!(ma.and_then(|m| m.last_trade()), mb.and_then(|m| m.last_trade()));
    }
}
