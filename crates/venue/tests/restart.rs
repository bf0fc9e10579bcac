//! Restarts: a venue rebuilt with `apply` from the journal (optionally followed by a crash tail of
//! market data the live venue never acted on) and then run live again must make resting orders do
//! exactly what they would have done: a stop fires only on a journaled `order_triggered`, so a
//! stop reached during the downtime fires (and executes) on the first live update.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use model::{Decimal, Event, Liquidity, OrderId, OrderType, Side, TimeInForce};
use proptest::prelude::*;
use venue::{FeeSchedule, PaperVenue, VenueConfig};

fn config() -> VenueConfig {
    config_with_latency(0)
}

fn config_with_latency(latency_ns: i64) -> VenueConfig {
    VenueConfig {
        fees: FeeSchedule::new(d("-1"), d("3")),
        latency_ns,
        ..VenueConfig::default()
    }
}

/// No latency, or 1.5 s (longer than the 1 s between script steps, so resting orders are
/// not yet eligible for the next market data).
fn latency() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(1_500_000_000)]
}

fn book3(t: i64) -> Event {
    snapshot(
        &[("99", "1"), ("98", "2"), ("97", "3")],
        &[("100", "1"), ("101", "2"), ("102", "3")],
        t,
    )
}

fn stop(id: u64, side: Side, qty: &str, stop: &str) -> model::Order {
    order(
        id,
        side,
        OrderType::Stop,
        TimeInForce::Gtc,
        qty,
        None,
        Some(stop),
    )
}

fn stop_limit(id: u64, side: Side, qty: &str, limit: &str, stop: &str) -> model::Order {
    order(
        id,
        side,
        OrderType::StopLimit,
        TimeInForce::Gtc,
        qty,
        Some(limit),
        Some(stop),
    )
}

/// Live until the crash, then a fresh venue rebuilt from the journal plus the crash tail.
fn crash_and_rebuild(live: &Live, tail: &[Event]) -> Live {
    let mut journal = live.journal.clone();
    journal.extend(tail.iter().cloned());
    Live {
        venue: rebuild(live.venue.config().clone(), &journal),
        journal,
    }
}

#[test]
fn a_stop_reached_only_in_the_crash_tail_executes_on_the_first_live_update() {
    let mut live = Live::new(PaperVenue::new(config()).unwrap());
    live.md(book3(10));
    live.md(trade("99.5", "1", 11));
    let out = live.order(&stop(1, Side::Sell, "2", "98.5"), 12);
    assert_eq!(kinds(&out), ["order_accepted"]);

    // The engine crashed after the journal got this print but before it acted on it.
    let mut restarted = crash_and_rebuild(&live, &[trade("98.4", "1", 13)]);
    let r = restarted.venue.resting_order(OrderId(1)).unwrap();
    assert!(
        r.is_pending_stop(),
        "replayed market data must not trigger a stop"
    );

    // A quote does not move the reference price (the last trade): only the downtime print
    // reached the stop, and the first live update acts on it.
    let out = restarted.md(quote("99", "1", "100", "1", 14));
    assert_eq!(
        kinds(&out),
        ["order_triggered", "order_filled", "order_filled"]
    );
    assert_eq!(
        fill_rows(&out),
        [
            (
                1,
                "1".into(),
                "99".into(),
                "0.0297".into(),
                Liquidity::Taker
            ),
            (
                1,
                "1".into(),
                "98".into(),
                "0.0294".into(),
                Liquidity::Taker
            ),
        ]
    );
    assert_eq!(out[0].ts(), ts(14));
    assert_eq!(restarted.venue.footprint().resting_orders, 0);
    assert!(restarted.venue.resting_order(OrderId(1)).is_none());
}

#[test]
fn a_stop_limit_reached_in_the_crash_tail_takes_liquidity_as_a_taker() {
    let mut live = Live::new(PaperVenue::new(config()).unwrap());
    live.md(book3(10));
    live.md(trade("99.5", "1", 11));
    live.order(&stop_limit(1, Side::Buy, "2", "101", "100"), 12);

    let mut restarted = crash_and_rebuild(&live, &[trade("100", "1", 13)]);
    assert!(
        restarted
            .venue
            .resting_order(OrderId(1))
            .unwrap()
            .is_pending_stop()
    );
    // Marketable when it triggers (asks 100 and 101 within the 101 limit): it takes them as a
    // taker instead of resting at 101 as a maker.
    let out = restarted.md(quote("99", "1", "100", "1", 14));
    assert_eq!(
        kinds(&out),
        ["order_triggered", "order_filled", "order_filled"]
    );
    assert_eq!(
        fill_rows(&out),
        [
            (1, "1".into(), "100".into(), "0.03".into(), Liquidity::Taker),
            (
                1,
                "1".into(),
                "101".into(),
                "0.0303".into(),
                Liquidity::Taker
            ),
        ]
    );
    assert_eq!(restarted.venue.footprint().resting_orders, 0);
}

#[test]
fn a_stop_limit_triggered_live_stays_triggered_after_a_restart() {
    let mut live = Live::new(PaperVenue::new(config()).unwrap());
    live.md(snapshot(&[("102", "1")], &[("107", "1")], 10)); // mid 104.5: below the stop
    live.order(&stop_limit(1, Side::Buy, "2", "106", "105"), 11);
    // Triggers; the ask 107 is above the 106 limit, so it rests at 106.
    let out = live.md(trade("105", "1", 12));
    assert_eq!(kinds(&out), ["order_triggered"]);

    let mut restarted = Live {
        venue: rebuild(config(), &live.journal),
        journal: live.journal.clone(),
    };
    assert_eq!(restarted.venue, live.venue);
    let r = restarted.venue.resting_order(OrderId(1)).unwrap();
    assert!(r.triggered && !r.is_pending_stop());

    // A triggered stop-limit keeps resting at its limit and is filled as a maker when the
    // book crosses it, in both venues alike.
    for e in [trade("106.5", "1", 13), quote("105", "1", "105.5", "5", 14)] {
        assert_eq!(restarted.md(e.clone()), live.md(e));
    }
    let fills = fill_rows(&restarted.journal);
    assert_eq!(
        fills,
        [(
            1,
            "2".into(),
            "106".into(),
            "-0.0212".into(),
            Liquidity::Maker
        )]
    );
}

#[test]
fn a_stop_already_reached_on_arrival_is_journaled_as_triggered_before_its_fills() {
    let mut v = PaperVenue::new(config()).unwrap();
    v.on_market_data(&book3(10));
    v.on_market_data(&trade("100", "1", 11));
    let out = v.on_order(&stop(1, Side::Buy, "1", "99"), ts(12));
    assert_eq!(
        kinds(&out),
        ["order_accepted", "order_triggered", "order_filled"]
    );
    assert!(out.iter().all(|e| e.ts() == ts(12)));
    // A stop-limit that triggers on arrival and cannot trade rests, already triggered.
    let out = v.on_order(&stop_limit(2, Side::Buy, "1", "99.5", "99"), ts(13));
    assert_eq!(kinds(&out), ["order_accepted", "order_triggered"]);
    assert!(v.resting_order(OrderId(2)).unwrap().triggered);
}

#[test]
fn journals_from_before_order_triggered_still_replay_a_filled_stop_as_triggered() {
    let mut live = Live::new(PaperVenue::new(config()).unwrap());
    live.md(snapshot(
        &[("104", "1")],
        &[("105.5", "1"), ("107", "1")],
        10,
    ));
    live.order(&stop_limit(1, Side::Buy, "3", "106", "105"), 11);
    // Triggers, takes the 1 @ 105.5 and rests 2 at 106.
    let out = live.md(trade("105", "1", 12));
    assert_eq!(kinds(&out), ["order_triggered", "order_filled"]);
    let old_journal: Vec<Event> = live
        .journal
        .iter()
        .filter(|e| !matches!(e, Event::OrderTriggered { .. }))
        .cloned()
        .collect();
    let replayed = rebuild(config(), &old_journal);
    let r = replayed.resting_order(OrderId(1)).unwrap();
    assert!(r.triggered);
    assert_eq!(r.leaves, q("2"));
    assert_eq!(replayed, live.venue);
}

// --- properties -------------------------------------------------------------------------------

/// The reference price stops compare with: last trade, else the mid.
fn reference(v: &PaperVenue) -> Option<Decimal> {
    v.market(&inst()).and_then(|m| m.reference_price())
}

/// Orders open according to the journal: accepted and not yet filled, expired, canceled.
fn open_by_journal(journal: &[Event]) -> BTreeSet<u64> {
    let mut quantity = BTreeMap::new();
    let mut open = BTreeMap::new();
    for e in journal {
        match e {
            Event::OrderSubmitted { order } => {
                quantity.insert(order.order_id.0, order.quantity.get());
            }
            Event::OrderAccepted { order_id, .. } => {
                open.insert(order_id.0, quantity[&order_id.0]);
            }
            Event::OrderFilled(f) => {
                if let Some(left) = open.get_mut(&f.order_id.0) {
                    *left -= f.quantity.get();
                    if left.is_zero() {
                        open.remove(&f.order_id.0);
                    }
                }
            }
            Event::OrderExpired { order_id, .. }
            | Event::OrderCanceled { order_id, .. }
            | Event::OrderRejected { order_id, .. } => {
                open.remove(&order_id.0);
            }
            _ => {}
        }
    }
    open.into_keys().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Uninterrupted live run == live until a cut, rebuild (by `apply` over the journal, or by a
    /// snapshot round trip), continue live: same outputs after the cut, same final state.
    #[test]
    fn a_restart_at_any_point_continues_like_an_uninterrupted_run(
        actions in prop::collection::vec(action(), 1..80),
        cut in any::<prop::sample::Index>(),
        latency_ns in latency(),
    ) {
        let config = config_with_latency(latency_ns);
        let cut = cut.index(actions.len() + 1);
        let mut whole = Live::new(PaperVenue::new(config.clone()).unwrap());
        let whole_out: Vec<Vec<Event>> =
            actions.iter().enumerate().map(|(i, a)| whole.step(i, a)).collect();

        let mut before = Live::new(PaperVenue::new(config.clone()).unwrap());
        for (i, a) in actions[..cut].iter().enumerate() {
            before.step(i, a);
        }
        let replayed = rebuild(config, &before.journal);
        prop_assert_eq!(&replayed, &before.venue);
        let restored = round_trip(&before.venue);
        prop_assert_eq!(&restored, &before.venue);

        for venue in [replayed, restored] {
            let mut after = Live { venue, journal: before.journal.clone() };
            for (i, a) in actions.iter().enumerate().skip(cut) {
                let out = after.step(i, a);
                prop_assert_eq!(&out, &whole_out[i], "step {} after a cut at {}", i, cut);
            }
            prop_assert_eq!(&after.venue, &whole.venue);
            prop_assert_eq!(&after.journal, &whole.journal);
        }
    }

    /// With a crash tail (market data journaled but never acted on), the restarted venue never
    /// holds a triggered plain stop (it would never execute), never leaves a reached stop
    /// pending after live market data, marks stops triggered only with a journaled reason, and
    /// its open orders are exactly those the journal leaves open.
    #[test]
    fn after_a_crash_tail_stops_still_execute_and_open_orders_match_the_journal(
        actions in prop::collection::vec(action(), 1..80),
        tail in prop::collection::vec(market_action(), 0..6),
        cut in any::<prop::sample::Index>(),
        latency_ns in latency(),
    ) {
        let cut = cut.index(actions.len() + 1);
        let mut before = Live::new(PaperVenue::new(config_with_latency(latency_ns)).unwrap());
        for (i, a) in actions[..cut].iter().enumerate() {
            before.step(i, a);
        }
        let tail: Vec<Event> =
            tail.iter().filter_map(|a| market_event(a, cut as i64 + 1)).collect();
        let mut after = crash_and_rebuild(&before, &tail);
        for (i, a) in actions.iter().enumerate().skip(cut) {
            after.step(i, a);
            for r in after.venue.resting_orders() {
                prop_assert!(
                    !(r.triggered && r.order.order_type == OrderType::Stop),
                    "plain stop {} triggered but resting", r.order.order_id
                );
                if r.triggered {
                    let id = r.order.order_id;
                    let journaled = after.journal.iter().any(|e| {
                        matches!(e, Event::OrderTriggered { order_id, .. } if *order_id == id)
                    });
                    prop_assert!(journaled, "stop {} triggered without order_triggered", id);
                }
                // Market data of this step (stamped i + 1 s) that the order may react to.
                let eligible = ts(i as i64 + 1) >= r.accepted_at || latency_ns == 0;
                if r.is_pending_stop() && eligible && market_event(a, 0).is_some() {
                    let (Some(reference), Some(stop)) = (reference(&after.venue), r.order.stop_price)
                        else { continue };
                    let reached = match r.order.side {
                        Side::Buy => reference >= stop.get(),
                        Side::Sell => reference <= stop.get(),
                    };
                    prop_assert!(!reached, "stop {} reached but pending", r.order.order_id);
                }
            }
        }
        let resting: BTreeSet<u64> =
            after.venue.resting_orders().map(|r| r.order.order_id.0).collect();
        prop_assert_eq!(&resting, &open_by_journal(&after.journal));
        let footprint = after.venue.footprint();
        prop_assert_eq!(footprint.resting_orders, resting.len());
        prop_assert_eq!(footprint.indexed_orders, resting.len());
        prop_assert_eq!(footprint.pending_orders, 0);
    }
}
