//! Engine snapshots: serialize -> deserialize -> continue gives exactly the rows and the state
//! of folding without interruption; the state stays bounded by the windows over hours.

mod common;

use common::*;
use features::{
    FeatureEngine, FeatureRow, MARKET_FEATURES, ORDER_FEATURES, POSITION_FEATURES,
    POSITION_SYMBOL_FEATURES,
};
use model::{Event, Side, Timestamp};
use proptest::prelude::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and fast; quality is not the point.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const SYMS: [&str; 3] = ["AAA", "BBB", "CCC"];
const ACCTS: [&str; 3] = ["acc1", "acc2", "acc3"];

/// A decimal with a random scale, so sums keep scales a restore must not lose.
fn dec(r: &mut Rng, lo: u64, span: u64) -> String {
    let whole = lo + r.below(span);
    match r.below(3) {
        0 => format!("{whole}"),
        1 => format!("{whole}.{}", r.below(10)),
        _ => format!("{whole}.{:02}", r.below(100)),
    }
}

/// A random journal. Times move forward `0..=step_ms` (ties happen) and now and then go back:
/// a few seconds (a late event inside the windows) or more than an hour (outside every
/// window). Every event kind that feeds features, fills of open orders in pieces, and events
/// about orders the engine never saw. At most `max_open` orders are open at once.
fn journal(seed: u64, n: usize, step_ms: u64, max_open: usize) -> Vec<Event> {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = T0;
    let (mut next_order, mut next_fill) = (1u64, 1u64);
    let mut open: Vec<(u64, &str, &str, Side, u64)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        t += (r.below(step_ms + 1) as i64) * 1_000_000;
        let at = match r.below(50) {
            0 => t - (r.below(5_000) as i64) * 1_000_000,
            1 => t - 3_700 * S,
            _ => t,
        };
        let sym = SYMS[r.below(3) as usize];
        match r.below(12) {
            0..=2 => out.push(trade(sym, at, &dec(&mut r, 95, 10), &dec(&mut r, 1, 5))),
            3 => {
                let b = 95 + r.below(10);
                out.push(quote(sym, at, &format!("{b}.00"), &format!("{b}.10")));
            }
            4 => {
                let b = 95 + r.below(10);
                let level = |r: &mut Rng, p: String| (p, dec(r, 1, 5));
                let bids: Vec<(String, String)> = (0..1 + r.below(4))
                    .map(|i| level(&mut r, format!("{b}.{:02}", 90 - i)))
                    .collect();
                let asks: Vec<(String, String)> = (0..1 + r.below(4))
                    .map(|i| level(&mut r, format!("{}.{:02}", b + 1, i)))
                    .collect();
                let b: Vec<(&str, &str)> = bids.iter().map(|(p, q)| (&**p, &**q)).collect();
                let a: Vec<(&str, &str)> = asks.iter().map(|(p, q)| (&**p, &**q)).collect();
                if r.below(3) == 0 {
                    out.push(snapshot(sym, at, &b, &a));
                } else if r.below(2) == 0 {
                    // Remove a level, or add one.
                    out.push(delta(sym, at, &[(b[0].0, "0")], &a[..1]));
                } else {
                    out.push(delta(sym, at, &b[..1], &[]));
                }
            }
            5..=7 if open.len() < max_open => {
                let acct = ACCTS[r.below(3) as usize];
                let side = if r.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let qty = 1 + r.below(4);
                out.push(submit(next_order, acct, sym, side, &qty.to_string(), at));
                open.push((next_order, acct, sym, side, qty));
                next_order += 1;
            }
            _ if !open.is_empty() => {
                let i = r.below(open.len() as u64) as usize;
                let (id, acct, sym, side, left) = open[i];
                match r.below(6) {
                    0 => out.push(cancel(id, acct, at)),
                    1 => out.push(reject(id, acct, at)),
                    2 => out.push(expire(id, acct, at)),
                    _ => {
                        let q = 1 + r.below(left);
                        let (px, fee) = (dec(&mut r, 95, 10), dec(&mut r, 0, 1));
                        out.push(fill(
                            next_fill,
                            id,
                            acct,
                            sym,
                            side,
                            &q.to_string(),
                            &px,
                            &fee,
                            at,
                        ));
                        next_fill += 1;
                        if q < left {
                            open[i].4 = left - q;
                            continue;
                        }
                    }
                }
                open.swap_remove(i);
            }
            _ => {
                // An order the engine never saw being submitted (before its history began).
                let ghost = 1_000_000 + r.below(1_000);
                out.push(fill(
                    next_fill,
                    ghost,
                    ACCTS[r.below(3) as usize],
                    sym,
                    Side::Buy,
                    "1",
                    "100",
                    "0",
                    at,
                ));
                next_fill += 1;
            }
        }
    }
    out
}

/// Rows as text: equal text means equal rows down to every float's bits.
fn text(rows: &[FeatureRow]) -> String {
    format!("{rows:?}")
}

fn snapshot_of(e: &FeatureEngine) -> String {
    serde_json::to_string(e).expect("an engine serializes")
}

/// Everything the engine can answer as of a time: each view's row for each entity it knows.
fn all_rows(e: &FeatureEngine, as_of: Timestamp) -> Vec<FeatureRow> {
    let mut out = Vec::new();
    for view in [
        MARKET_FEATURES,
        ORDER_FEATURES,
        POSITION_FEATURES,
        POSITION_SYMBOL_FEATURES,
    ] {
        for entity in e.entities(view) {
            out.extend(e.row(view, &entity, as_of));
        }
    }
    out
}

/// Feed `events`, collecting what a service would publish: each event's changed keys, and the
/// changed rows at the events `flush` picks.
fn feed(e: &mut FeatureEngine, events: &[Event], flush: &[u8], from: usize) -> String {
    let mut out = String::new();
    for (i, ev) in events.iter().enumerate() {
        let keys = e.on_event(ev);
        out.push_str(&format!("{keys:?}\n"));
        if flush[(from + i) % flush.len()].is_multiple_of(4) {
            out.push_str(&text(&e.changed_rows()));
            out.push('\n');
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn snapshot_and_continue_equals_uninterrupted(
        seed in any::<u64>(),
        n in 1usize..300,
        step_ms in prop_oneof![Just(50u64), Just(5_000), Just(60_000)],
        flush in proptest::collection::vec(any::<u8>(), 1..8),
        cuts in proptest::collection::vec(0.0f64..1.0, 1..4),
    ) {
        let events = journal(seed, n, step_ms, 8);
        let mut plain = FeatureEngine::default();
        let want = feed(&mut plain, &events, &flush, 0);

        let mut cut_at: Vec<usize> = cuts.iter().map(|c| (c * n as f64) as usize).collect();
        cut_at.push(n);
        cut_at.sort_unstable();
        cut_at.dedup();
        let mut resumed = FeatureEngine::default();
        let mut got = String::new();
        let mut from = 0;
        for cut in cut_at {
            got.push_str(&feed(&mut resumed, &events[from..cut], &flush, from));
            from = cut;
            let before = snapshot_of(&resumed);
            resumed = serde_json::from_str(&before).expect("a snapshot deserializes");
            prop_assert_eq!(snapshot_of(&resumed), before, "canonical");
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(snapshot_of(&resumed), snapshot_of(&plain));
        prop_assert_eq!(resumed.state_stats(), plain.state_stats());
        prop_assert_eq!(resumed.stats(), plain.stats());
        // Every row, now and as the windows decay, and the rows still to be flushed.
        let wm = plain.watermark().unwrap_or(Timestamp::from_nanos(T0));
        for later in [0, 30 * S, 400 * S, 4_000 * S] {
            let as_of = Timestamp::from_nanos(wm.as_nanos() + later);
            prop_assert_eq!(text(&all_rows(&resumed, as_of)), text(&all_rows(&plain, as_of)));
        }
        prop_assert_eq!(text(&resumed.changed_rows()), text(&plain.changed_rows()));
    }
}

#[test]
fn a_snapshot_refuses_inconsistent_content() {
    let mut e = FeatureEngine::default();
    for ev in journal(5, 200, 1_000, 8) {
        e.on_event(&ev);
    }
    assert_eq!(FeatureEngine::SNAPSHOT_VERSION, 2);
    let good: serde_json::Value = serde_json::to_value(&e).unwrap();
    let restored: FeatureEngine = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(snapshot_of(&restored), snapshot_of(&e));

    let mut bad = good.clone();
    bad["pairs"] = serde_json::json!([[0, 99]]);
    let err = serde_json::from_value::<FeatureEngine>(bad).expect_err("refused");
    assert!(err.to_string().contains("out of range"), "{err}");

    let mut bad = good.clone();
    bad["dirty"] = serde_json::json!([["no_such_view", "x"]]);
    let err = serde_json::from_value::<FeatureEngine>(bad).expect_err("refused");
    assert!(err.to_string().contains("unknown view"), "{err}");

    let mut bad = good.clone();
    // A consistent window of the wrong length: the 5-minute one in the 1-minute slot.
    bad["syms"][0]["t1"] = bad["syms"][0]["t5"].clone();
    let err = serde_json::from_value::<FeatureEngine>(bad).expect_err("refused");
    assert!(err.to_string().contains("other windows"), "{err}");

    let mut bad = good.clone();
    bad["accts"][0]["win"]["panes"]
        .as_array_mut()
        .unwrap()
        .reverse();
    assert!(bad["accts"][0]["win"]["panes"].as_array().unwrap().len() > 1);
    let err = serde_json::from_value::<FeatureEngine>(bad).expect_err("refused");
    assert!(err.to_string().contains("out of order"), "{err}");

    let mut bad = good;
    let first = bad["accts"][0].clone();
    bad["accts"].as_array_mut().unwrap().push(first);
    let err = serde_json::from_value::<FeatureEngine>(bad).expect_err("refused");
    assert!(err.to_string().contains("appears twice"), "{err}");
}

/// The largest number of `times` (sorted) inside any closed window of length `h`.
fn max_in_window(times: &[i64], h: i64) -> usize {
    let (mut lo, mut best) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] - times[lo] > h {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[test]
fn state_stays_within_bounds_derived_from_the_windows_over_hours() {
    const MAX_OPEN: usize = 20;
    // Mean step 100 ms: 200k events span about 5.5 hours, five times the longest window.
    let events = journal(42, 200_000, 200, MAX_OPEN);
    let span = events.iter().map(|e| e.ts()).max().unwrap().as_nanos() - T0;
    assert!(span > 5 * 3_600 * S, "hours of events: {span} ns");

    // What a window keeps is bounded by the number of its events inside its length (a pane
    // holds at least one), and by PANES + 1 panes.
    let times = |f: &dyn Fn(&Event) -> bool| -> Vec<i64> {
        let mut t: Vec<i64> = events
            .iter()
            .filter(|e| f(e))
            .map(|e| e.ts().as_nanos())
            .collect();
        t.sort_unstable();
        t
    };
    let panes = features::PANES as usize + 1;
    let mut trades_bound = 0;
    for sym in SYMS {
        let t = times(&|e| matches!(e, Event::Trade(x) if x.instrument.symbol.as_str() == sym));
        // A window spans its length plus one pane.
        trades_bound += max_in_window(&t, 60 * S + S / 10).min(panes)
            + max_in_window(&t, 300 * S + S / 2).min(panes);
    }
    let mut order_bound = 0;
    let mut order_events = 0;
    for acct in ACCTS {
        let t = times(&|e| match e {
            Event::OrderSubmitted { order } => order.account.as_str() == acct,
            Event::OrderFilled(f) => f.account.as_str() == acct,
            Event::OrderCanceled { account, .. }
            | Event::OrderRejected { account, .. }
            | Event::OrderExpired { account, .. } => account.as_str() == acct,
            _ => false,
        });
        order_events += t.len();
        order_bound += max_in_window(&t, 3_606 * S).min(panes);
    }
    let orders = events
        .iter()
        .filter(|e| matches!(e, Event::OrderSubmitted { .. }))
        .count();

    let mut e = FeatureEngine::default();
    let mut peak = e.state_stats();
    for (i, ev) in events.iter().enumerate() {
        e.on_event(ev);
        if i.is_multiple_of(100) {
            // A service publishes the changed rows regularly.
            e.changed_rows();
        }
        if i % 500 == 50 {
            let s = e.state_stats();
            peak.open_orders = peak.open_orders.max(s.open_orders);
            peak.trade_panes = peak.trade_panes.max(s.trade_panes);
            peak.order_panes = peak.order_panes.max(s.order_panes);
            peak.book_levels = peak.book_levels.max(s.book_levels);
            peak.dirty = peak.dirty.max(s.dirty);
            peak.positions = peak.positions.max(s.positions);
            peak.symbols = peak.symbols.max(s.symbols);
            peak.accounts = peak.accounts.max(s.accounts);
            peak.account_symbols = peak.account_symbols.max(s.account_symbols);
        }
    }
    let (n_sym, n_acct) = (SYMS.len(), ACCTS.len());
    let entities = n_sym + 2 * n_acct + n_acct * n_sym;
    // Book levels: the generator quotes 10 bid prices x 4 levels and 10 ask prices x 4 levels.
    let levels_bound = n_sym * 2 * 10 * 4;
    for (name, peak, bound) in [
        ("open_orders", peak.open_orders, MAX_OPEN),
        ("trade_panes", peak.trade_panes, trades_bound),
        ("order_panes", peak.order_panes, order_bound),
        ("book_levels", peak.book_levels, levels_bound),
        ("dirty", peak.dirty, entities),
        ("positions", peak.positions, n_acct * n_sym),
        ("symbols", peak.symbols, n_sym),
        ("accounts", peak.accounts, n_acct),
        ("account_symbols", peak.account_symbols, n_acct * n_sym),
    ] {
        eprintln!("{name}: {peak} <= {bound}");
        assert!(peak <= bound, "{name}: peak {peak} > bound {bound}");
    }
    // The bounds are far below what the history holds.
    assert!(orders > 10 * MAX_OPEN, "{orders} orders");
    assert!(
        order_events > 3 * order_bound,
        "{order_events} vs {order_bound}"
    );
}
