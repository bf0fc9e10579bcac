//! Property tests: random market data and orders never overfill, fill prices respect the book
//! and the limits, and the journal replays to the live state.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use model::{Decimal, Event, Liquidity, Order, OrderId, Price, Side};
use proptest::prelude::*;
use venue::{FeeSchedule, PaperVenue, VenueConfig};

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
                    let e = market_event(&md, t).expect("market action");
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
