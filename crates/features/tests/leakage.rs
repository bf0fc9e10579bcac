//! Point-in-time correctness of `history`: for random event streams and random request times,
//! the answer equals a fresh engine fed only the events with ts <= request ts, events after the
//! request time never change it, and the windowed sums and returns agree with a brute-force
//! recomputation of the documented pane semantics.

mod common;

use common::*;
use features::{
    FeatureEngine, FeatureRow, MARKET_FEATURES, ORDER_FEATURES, POSITION_FEATURES,
    POSITION_SYMBOL_FEATURES, history, view,
};
use model::{Decimal, Event, Side, Timestamp};
use proptest::prelude::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SYMS: [&str; 2] = ["AAA", "BBB"];
const ACCTS: [&str; 2] = ["acc1", "acc2"];

/// A random journal: times go forward by 0..20 s (ties happen), all event kinds that feed
/// features, fills only of submitted orders.
fn random_events(seed: u64, n: usize, start: i64) -> Vec<Event> {
    let mut r = Rng(seed | 1);
    let mut t = start;
    let mut next_order = 1u64;
    let mut next_fill = 1u64;
    let mut open: Vec<(u64, &str, &str, Side)> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..n {
        t += (r.below(21) as i64) * S / if r.below(4) == 0 { 1 } else { 2 };
        let sym = SYMS[r.below(2) as usize];
        let px = |r: &mut Rng| format!("{}.{:02}", 95 + r.below(10), r.below(100));
        let qty = |r: &mut Rng| format!("{}.{}", 1 + r.below(3), r.below(10));
        match r.below(10) {
            0..=3 => out.push(trade(sym, t, &px(&mut r), &qty(&mut r))),
            4 => {
                let b = 95 + r.below(10);
                out.push(quote(sym, t, &format!("{b}.00"), &format!("{b}.10")));
            }
            5 => {
                let b = 95 + r.below(10);
                let bids: Vec<(String, String)> = (0..1 + r.below(7))
                    .map(|i| (format!("{}.{:02}", b, 90 - i), qty(&mut r)))
                    .collect();
                let asks: Vec<(String, String)> = (0..1 + r.below(7))
                    .map(|i| (format!("{}.{:02}", b + 1, i), qty(&mut r)))
                    .collect();
                let bids: Vec<(&str, &str)> =
                    bids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let asks: Vec<(&str, &str)> =
                    asks.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                if r.below(2) == 0 {
                    out.push(snapshot(sym, t, &bids, &asks));
                } else {
                    out.push(delta(sym, t, &bids[..1], &[]));
                }
            }
            6 | 7 => {
                let acct = ACCTS[r.below(2) as usize];
                let side = if r.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                out.push(submit(next_order, acct, sym, side, "2", t));
                open.push((next_order, acct, sym, side));
                next_order += 1;
            }
            _ if !open.is_empty() => {
                let i = r.below(open.len() as u64) as usize;
                let (id, acct, sym, side) = open[i];
                match r.below(5) {
                    0 => out.push(cancel(id, acct, t)),
                    1 => out.push(reject(id, acct, t)),
                    2 => out.push(expire(id, acct, t)),
                    _ => {
                        out.push(fill(
                            next_fill,
                            id,
                            acct,
                            sym,
                            side,
                            "1",
                            &px(&mut r),
                            "0.01",
                            t,
                        ));
                        next_fill += 1;
                        if r.below(2) == 0 {
                            continue; // partially filled: stays open
                        }
                    }
                }
                open.swap_remove(i);
            }
            _ => out.push(trade(sym, t, &px(&mut r), &qty(&mut r))),
        }
    }
    out
}

fn random_requests(
    seed: u64,
    n: usize,
    from: i64,
    to: i64,
) -> Vec<(&'static str, String, Timestamp)> {
    let mut r = Rng(seed.rotate_left(17) | 1);
    (0..n)
        .map(|_| {
            let at = from + (r.below((to - from) as u64 / 1_000_000) as i64) * 1_000_000;
            let (v, e) = match r.below(4) {
                0 => (
                    MARKET_FEATURES,
                    format!("{}.sim", SYMS[r.below(2) as usize]),
                ),
                1 => (ORDER_FEATURES, ACCTS[r.below(2) as usize].to_string()),
                2 => (POSITION_FEATURES, ACCTS[r.below(2) as usize].to_string()),
                _ => (
                    POSITION_SYMBOL_FEATURES,
                    format!(
                        "{}|{}.sim",
                        ACCTS[r.below(2) as usize],
                        SYMS[r.below(2) as usize]
                    ),
                ),
            };
            (v, e, Timestamp::from_nanos(at))
        })
        .collect()
}

fn fresh_answer(events: &[Event], v: &'static str, entity: &str, at: Timestamp) -> FeatureRow {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.ts());
    let mut engine = FeatureEngine::default();
    for e in sorted.into_iter().filter(|e| e.ts() <= at) {
        engine.on_event(e);
    }
    engine
        .row(v, entity, at)
        .unwrap_or_else(|| FeatureRow::null(view(v).unwrap(), entity, at))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn history_never_uses_the_future(seed in any::<u64>(), n in 20usize..300) {
        let start = T0;
        let events = random_events(seed, n, start);
        let end = events.last().map_or(start, |e| e.ts().as_nanos());
        let reqs = random_requests(seed, 40, start - 10 * S, end + 100 * S);
        let got = history(&events, &reqs).unwrap();
        prop_assert_eq!(got.len(), reqs.len());
        for (row, (v, entity, at)) in got.iter().zip(&reqs) {
            prop_assert_eq!(row.view, *v);
            prop_assert_eq!(&row.entity, entity);
            prop_assert_eq!(row.event_ts, *at);
            // Same answer as an engine that never saw anything after `at`.
            prop_assert_eq!(row, &fresh_answer(&events, v, entity, *at));
        }
        // Events after the latest request time (here: a whole second random journal) change
        // nothing.
        let last_req = reqs.iter().map(|r| r.2.as_nanos()).max().unwrap_or(end);
        let mut more = events.clone();
        more.extend(random_events(seed ^ 0xABCD, 200, last_req + 1));
        prop_assert_eq!(&history(&more, &reqs).unwrap(), &got);
        // The journal order of the input does not matter beyond ties: reversing the input of
        // events with distinct times gives the same answers.
        let mut distinct: Vec<Event> = Vec::new();
        for e in &events {
            if distinct.last().is_none_or(|l| l.ts() < e.ts()) {
                distinct.push(e.clone());
            }
        }
        let a = history(&distinct, &reqs).unwrap();
        let reversed: Vec<Event> = distinct.iter().rev().cloned().collect();
        prop_assert_eq!(&history(&reversed, &reqs).unwrap(), &a);
    }

    #[test]
    fn windowed_trade_sums_match_a_brute_force_recomputation(seed in any::<u64>(), n in 20usize..400) {
        let events = random_events(seed, n, T0);
        let end = events.last().map_or(T0, |e| e.ts().as_nanos());
        let reqs: Vec<_> = random_requests(seed, 60, T0, end + 400 * S)
            .into_iter()
            .filter(|r| r.0 == MARKET_FEATURES)
            .collect();
        prop_assert_eq!(features::PANES, 600);
        let got = history(&events, &reqs).unwrap();
        for (row, (_, entity, at)) in got.iter().zip(&reqs) {
            let at = at.as_nanos();
            let sym = entity.trim_end_matches(".sim");
            let trades: Vec<(i64, Decimal, Decimal)> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Trade(t) if t.instrument.symbol.as_str() == sym && t.ts.as_nanos() <= at => {
                        Some((t.ts.as_nanos(), t.price.get(), t.quantity.get()))
                    }
                    _ => None,
                })
                .collect();
            if trades.is_empty() {
                prop_assert!(row.get("volume_5m").unwrap().is_null());
                continue;
            }
            let last = trades.iter().max_by_key(|x| x.0).map(|x| x.1).unwrap();
            for (w, vol, vwap, ret) in [
                (60 * S, "volume_1m", "vwap_1m", "return_1m"),
                (300 * S, "volume_5m", "vwap_5m", "return_5m"),
            ] {
                // docs/FEATURES.md: a window of length w counts the trades from the start of the
                // pane (width w / 600) holding at - w, up to at.
                let pane = w / 600;
                let start = (at - w).div_euclid(pane) * pane;
                let inside: Vec<_> = trades.iter().filter(|(t, _, _)| *t >= start).collect();
                let q: Decimal = inside.iter().map(|x| x.2).sum();
                let pq: Decimal = inside.iter().map(|x| x.1 * x.2).sum();
                let want_vol: f64 = q.to_string().parse().unwrap();
                let got_vol = row.get(vol).unwrap().as_f64().unwrap();
                prop_assert!((got_vol - want_vol).abs() <= 1e-12 * want_vol.max(1.0), "{} {} {}", vol, got_vol, want_vol);
                if q.is_zero() {
                    prop_assert!(row.get(vwap).unwrap().is_null());
                } else {
                    let want: f64 = (pq / q).to_string().parse().unwrap();
                    let got_v = row.get(vwap).unwrap().as_f64().unwrap();
                    prop_assert!((got_v - want).abs() <= 1e-12 * want, "{} {} {}", vwap, got_v, want);
                }
                if w == 300 * S {
                    prop_assert_eq!(row.get("trade_count_5m").unwrap().as_i64(), Some(inside.len() as i64));
                }
                // The return's reference: the newest trade before the window's start (ties: the
                // later in journal order).
                let reference = trades
                    .iter()
                    .filter(|(t, _, _)| *t < start)
                    .fold(None, |best: Option<&(i64, Decimal, Decimal)>, x| match best {
                        Some(b) if b.0 > x.0 => Some(b),
                        _ => Some(x),
                    });
                match reference {
                    None => prop_assert!(row.get(ret).unwrap().is_null(), "{}", ret),
                    Some((_, p0, _)) => {
                        let want: f64 = ((last - p0) / p0).to_string().parse().unwrap();
                        let got_r = row.get(ret).unwrap().as_f64().unwrap();
                        prop_assert!((got_r - want).abs() <= 1e-12 * want.abs().max(1e-9), "{} {} {}", ret, got_r, want);
                    }
                }
            }
            // last_price: the last trade by time (ties: journal order).
            let last_f: f64 = last.to_string().parse().unwrap();
            prop_assert_eq!(row.get("last_price").unwrap().as_f64(), Some(last_f));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The engine defers marks of instruments nobody holds; its positions must still equal the
    /// positions crate fed every event.
    #[test]
    fn positions_equal_the_positions_crate_fed_every_event(seed in any::<u64>(), n in 20usize..300) {
        let events = random_events(seed, n, T0);
        let mut engine = FeatureEngine::default();
        let mut plain = positions::Positions::new();
        for e in &events {
            engine.on_event(e);
            let _ = plain.on_event(e);
        }
        for a in ACCTS {
            let a = model::AccountId::new(a).unwrap();
            let got: Vec<_> = engine.positions().account_positions(&a).collect();
            let want: Vec<_> = plain.account_positions(&a).collect();
            prop_assert_eq!(got, want);
        }
    }
}
