//! Memory bounds: a long stream (100k+ orders over simulated days, market data whose deltas never
//! delete a level, torn journal batches) keeps every collection of the venue bounded, live and in
//! replay.

mod common;

use std::collections::VecDeque;

use common::*;
use model::{Event, OrderId, OrderType, Side, TimeInForce};
use venue::{MAX_LEVELS_PER_SIDE, MAX_PENDING_ORDERS, PaperVenue, VenueConfig};

/// A small deterministic generator (no clock, no seed from the environment).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const DAYS: i64 = 30;
const ORDERS_PER_DAY: u64 = 3_500;
/// The test keeps at most this many of its orders open (cancelling the oldest).
const MAX_OPEN: usize = 150;

#[test]
fn a_long_stream_over_many_days_keeps_every_collection_bounded() {
    let mut live = PaperVenue::new(VenueConfig::default()).unwrap();
    let mut replayed = PaperVenue::new(VenueConfig::default()).unwrap();
    let mut rng = Lcg(42);
    let mut open: VecDeque<u64> = VecDeque::new();
    let mut next_id = 1u64;
    let mut torn = 0usize;
    let mut orders = 0u64;
    let mut mid_ticks: i64 = 2_000; // price = ticks / 10, starting at 200
    let mut max_resting = 0usize;
    let mut max_levels = 0usize;
    for day in 0..DAYS {
        let day_start = day * 86_400;
        for k in 0..ORDERS_PER_DAY {
            let t = day_start + 1 + (k as i64) * 20;
            // The market drifts; every step adds a level 5-25 away on each side that is never
            // deleted (at a new price each time), as a feed publishing only a top-N window
            // would leave behind.
            mid_ticks = (mid_ticks + rng.next(5) as i64 - 2).max(500);
            let px = |ticks: i64| format!("{}", ticks as f64 / 10.0);
            let mut far_px = |sign: i64| {
                let far = model::Decimal::new(5_000 + rng.next(20_000) as i64, 3);
                (model::Decimal::new(mid_ticks, 1) + far * model::Decimal::from(sign)).to_string()
            };
            let (far_bid, far_ask) = (far_px(-1), far_px(1));
            let mut journal = Vec::new();
            let feed = |v: &mut PaperVenue, e: Event, journal: &mut Vec<Event>| {
                let out = v.on_market_data(&e);
                journal.push(e);
                journal.extend(out);
            };
            feed(
                &mut live,
                delta(&[(&far_bid, "1")], &[(&far_ask, "1")], t),
                &mut journal,
            );
            feed(
                &mut live,
                quote(&px(mid_ticks - 1), "2", &px(mid_ticks + 1), "2", t),
                &mut journal,
            );
            if k % 3 == 0 {
                let tick = mid_ticks + rng.next(7) as i64 - 3;
                feed(&mut live, trade(&px(tick), "1", t), &mut journal);
            }

            // One order per step, of every kind.
            let id = next_id;
            next_id += 1;
            let side = if rng.next(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let sign = if side == Side::Buy { 1 } else { -1 };
            let off = rng.next(6) as i64;
            let o = match rng.next(6) {
                0 => market(id, side, "0.5"),
                1 => limit(id, side, TimeInForce::Ioc, "1", &px(mid_ticks + sign * off)),
                2 => limit(id, side, TimeInForce::Gtc, "1", &px(mid_ticks - sign * off)),
                3 => limit(id, side, TimeInForce::Day, "1", &px(mid_ticks - sign * off)),
                4 => order(
                    id,
                    side,
                    OrderType::Stop,
                    TimeInForce::Gtc,
                    "1",
                    None,
                    Some(&px(mid_ticks + sign * (off + 1))),
                ),
                _ => order(
                    id,
                    side,
                    OrderType::StopLimit,
                    TimeInForce::Day,
                    "1",
                    Some(&px(mid_ticks + sign * (off + 2))),
                    Some(&px(mid_ticks + sign * (off + 1))),
                ),
            };
            orders += 1;
            journal.push(Event::OrderSubmitted { order: o.clone() });
            let out = live.on_order(&o, ts(t));
            if live.resting_order(OrderId(id)).is_some() {
                open.push_back(id);
            }
            journal.extend(out);
            // The test's own cap on open orders: cancel the oldest still open.
            while open.len() > MAX_OPEN {
                let old = open.pop_front().unwrap();
                if live.cancel(OrderId(old)) {
                    journal.push(Event::OrderCanceled {
                        order_id: OrderId(old),
                        account: model::AccountId::new("acct").unwrap(),
                        reason: "user".into(),
                        ts: ts(t),
                    });
                }
            }
            // Every 40th step a torn batch: a submission whose acceptance never got journaled.
            if k % 40 == 0 {
                let lost = next_id;
                next_id += 1;
                torn += 1;
                journal.push(Event::OrderSubmitted {
                    order: limit(lost, side, TimeInForce::Gtc, "1", &px(mid_ticks)),
                });
            }
            for e in &journal {
                replayed.apply(e);
            }
            let f = live.footprint();
            max_resting = max_resting.max(f.resting_orders);
            max_levels = max_levels.max(f.book_levels);
            assert!(f.resting_orders <= MAX_OPEN + 1, "{f:?}");
            assert!(f.book_levels <= 2 * MAX_LEVELS_PER_SIDE, "{f:?}");
            assert_eq!(f.indexed_orders, f.resting_orders);
            assert_eq!(f.pending_orders, 0);
        }
        let session_end = day_start + 86_399;
        let expired = live.expire_day_orders(ts(session_end));
        for e in &expired {
            replayed.apply(e);
        }
        open.retain(|id| live.resting_order(OrderId(*id)).is_some());

        let f = live.footprint();
        let r = replayed.footprint();
        assert_eq!(f.instruments, 1);
        assert!(f.consumed_levels <= f.book_levels);
        assert_eq!(
            (r.resting_orders, r.indexed_orders, r.book_levels),
            (f.resting_orders, f.indexed_orders, f.book_levels)
        );
        assert!(r.pending_orders <= MAX_PENDING_ORDERS, "{r:?}");
        assert!(
            live.resting_orders()
                .all(|o| o.order.time_in_force != TimeInForce::Day)
        );
    }
    // The stream really was long and really pushed against every bound.
    assert!(orders >= 100_000);
    assert!(torn > MAX_PENDING_ORDERS);
    // Full: each new submission evicts the oldest leftover until its own acceptance.
    assert_eq!(replayed.footprint().pending_orders, MAX_PENDING_ORDERS - 1);
    assert_eq!(max_levels, 2 * MAX_LEVELS_PER_SIDE);
    assert!(max_resting > 50, "orders did rest: {max_resting}");
    // Replay reached the live state (the torn submissions aside).
    let live_resting: Vec<_> = live.resting_orders().cloned().collect();
    let replayed_resting: Vec<_> = replayed.resting_orders().cloned().collect();
    assert_eq!(live_resting, replayed_resting);
}
