//! Snapshots: serialize -> deserialize -> continue gives exactly the alerts and the state of
//! continuing without interruption; the state stays bounded by the windows on a long stream;
//! delivered keys are kept only while a rule could raise them again.

mod common;
#[path = "common/gen.rs"]
mod evgen;

use interchange::{Kind, Record};
use model::{Decimal, Side, Timestamp};
use proptest::prelude::*;
use surveillance::{Alert, OwnerLinkage, Params, QuoteTiming, Rule, Scanner, StateStats};

fn small() -> evgen::GenCfg {
    evgen::GenCfg {
        accounts: 4,
        accounts_per_owner: 2,
        symbols: 2,
        step_us_max: 150_000,
        levels: 3,
    }
}

/// Every rule reachable on small random streams (as in `streaming_batch.rs`).
fn permissive() -> Params {
    Params {
        related_owner_groups: vec![vec!["O0".into(), "O1".into()]],
        mtc_close: [("*".into(), "14:31".into())].into(),
        mtc_window_ms: 30_000,
        mtc_min_volume_share: "0.1".parse().unwrap(),
        mtc_min_move_bps: "1".parse().unwrap(),
        mtc_min_net_ratio: "0.3".parse().unwrap(),
        mtc_min_aggressive_share: "0.3".parse().unwrap(),
        spoof_k_size: "2".parse().unwrap(),
        mi_min_burst_fills: 2,
        mi_min_move_bps: "1".parse().unwrap(),
        layer_min_levels: 2,
        ..Params::default()
    }
}

/// Short state bounds, so streams of a minute or two go through stale orders, pruned
/// layering members, expired dedupe keys and evicted prints.
fn short_windows() -> Params {
    Params {
        owner_linkage: OwnerLinkage::Account,
        quote_timing: QuoteTiming::Strict,
        order_max_live_ms: 3_000,
        wash_window_ms: 2_000,
        mi_burst_window_ms: 500,
        mi_settle_ms: 200,
        mi_exit_window_ms: 3_000,
        mtc_close: [("S0".into(), "14:30:30".into())].into(),
        ..permissive()
    }
}

fn param_sets() -> [Params; 2] {
    [permissive(), short_windows()]
}

/// One step of feeding a scanner: a record, or a heartbeat half-way to the next record.
#[derive(Debug, Clone)]
enum Op {
    Record(usize),
    Advance(Timestamp),
}

fn ops(recs: &[Record], heartbeats: &[u8]) -> Vec<Op> {
    let mut out = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        if i > 0 && heartbeats[i % heartbeats.len()].is_multiple_of(3) {
            let prev = recs[i - 1].ts.as_nanos();
            out.push(Op::Advance(Timestamp::from_nanos(
                prev + (r.ts.as_nanos() - prev) / 2,
            )));
        }
        out.push(Op::Record(i));
    }
    out
}

fn apply(s: &mut Scanner, op: &Op, recs: &[Record]) -> Vec<Alert> {
    match op {
        Op::Record(i) => s.on_record(&recs[*i]),
        Op::Advance(t) => s.advance_to(*t),
    }
}

fn snapshot(s: &Scanner) -> String {
    serde_json::to_string(s).expect("a scanner serializes")
}

fn restore(json: &str) -> Scanner {
    serde_json::from_str(json).expect("a scanner snapshot deserializes")
}

/// Alerts as JSON: equal JSON means equal alerts down to the scale of every decimal.
fn json(alerts: &[Alert]) -> String {
    serde_json::to_string(alerts).expect("alerts serialize")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn snapshot_and_continue_equals_uninterrupted(
        seed in 0u64..1_000_000,
        n in 1usize..500,
        which in 0usize..2,
        heartbeats in proptest::collection::vec(any::<u8>(), 1..6),
        cuts in proptest::collection::vec(0.0f64..1.0, 1..4),
    ) {
        let params = param_sets()[which].clone();
        let recs = evgen::events(seed, n, &small());
        let ops = ops(&recs, &heartbeats);

        let mut plain = Scanner::new(params.clone()).unwrap();
        let mut want = Vec::new();
        for op in &ops {
            want.extend(apply(&mut plain, op, &recs));
        }

        let mut cut_at: Vec<usize> = cuts.iter().map(|c| (c * ops.len() as f64) as usize).collect();
        cut_at.sort_unstable();
        let mut resumed = Scanner::new(params).unwrap();
        let mut got = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if cut_at.contains(&i) {
                let before = snapshot(&resumed);
                resumed = restore(&before);
                // Canonical: the restored scanner serializes to the same bytes.
                prop_assert_eq!(snapshot(&resumed), before);
            }
            got.extend(apply(&mut resumed, op, &recs));
        }
        prop_assert_eq!(json(&got), json(&want));
        prop_assert_eq!(snapshot(&resumed), snapshot(&plain));
        prop_assert_eq!(resumed.state_stats(), plain.state_stats());

        // A snapshot at the very end still finishes like the original.
        let mut restored = restore(&snapshot(&plain));
        prop_assert_eq!(json(&restored.finish()), json(&plain.finish()));
        prop_assert_eq!(snapshot(&restored), snapshot(&plain));
    }
}

#[test]
fn a_snapshot_carries_its_parameters_and_refuses_invalid_ones() {
    let s = Scanner::new(short_windows()).unwrap();
    let restored = restore(&snapshot(&s));
    assert_eq!(restored.params(), &short_windows());
    assert_eq!(Scanner::SNAPSHOT_VERSION, 2);

    let mut v: serde_json::Value = serde_json::to_value(&s).unwrap();
    v["params"]["spoof_k_size"] = serde_json::json!("0");
    let err = serde_json::from_value::<Scanner>(v)
        .err()
        .expect("parameters are checked on restore");
    assert!(err.to_string().contains("spoof_k_size"), "{err}");
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

/// Hours of a busy book: the random stream, plus
/// * every 20 records an order that is never cancelled nor filled (forgotten after
///   `order_max_live_ms`);
/// * a market maker that replaces its sell order every 2 s, placing the new one before
///   cancelling the old (one layering episode chained for hours), and buys now and then (the
///   episode's opposite fills).
fn long_stream(n: usize) -> Vec<Record> {
    let cfg = evgen::GenCfg {
        accounts: 12,
        accounts_per_owner: 2,
        symbols: 3,
        // Mean step 125 ms (fills come with their tape print at the same time): 200k records
        // span about 5 hours.
        step_us_max: 250_000,
        levels: 4,
    };
    let random = evgen::events(11, n, &cfg);
    let mut out = Vec::with_capacity(n + n / 10);
    for (i, r) in random.iter().enumerate() {
        if i.is_multiple_of(20) {
            let mut o = Record::new(r.ts, Kind::OrderNew, r.symbol.clone());
            o.account = Some("ABANDON".into());
            o.side = Some(Side::Buy);
            o.qty = Some(Decimal::from(5));
            o.price = Some(Decimal::new(9_000, 2));
            o.order_id = Some(format!("abandoned-{i}"));
            o.order_type = Some("limit".into());
            out.push(o);
        }
        out.push(r.clone());
    }
    let (t0, t1) = (random[0].ts.as_nanos(), random[n - 1].ts.as_nanos());
    let at = |k: i64, ms: i64| Timestamp::from_nanos(t0 + k * 2_000_000_000 + ms * 1_000_000);
    let mm = |ts: Timestamp, kind: Kind, side: Side, id: String| {
        let mut r = Record::new(ts, kind, "S0");
        r.account = Some("MM".into());
        r.side = Some(side);
        r.qty = Some(Decimal::from(10));
        r.order_id = Some(id);
        r
    };
    for k in 0.. {
        if at(k, 1_000).as_nanos() > t1 {
            break;
        }
        let mut new = mm(at(k, 0), Kind::OrderNew, Side::Sell, format!("mm-{k}"));
        new.price = Some(Decimal::new(10_100 + k % 3, 2));
        new.order_type = Some("limit".into());
        out.push(new);
        if k > 0 {
            out.push(mm(
                at(k, 1_000),
                Kind::OrderCancel,
                Side::Sell,
                format!("mm-{}", k - 1),
            ));
        }
        if k % 5 == 0 {
            let mut buy = mm(at(k, 500), Kind::OrderNew, Side::Buy, format!("mmb-{k}"));
            buy.order_type = Some("market".into());
            let mut fill = mm(at(k, 500), Kind::Fill, Side::Buy, format!("mmb-{k}"));
            fill.price = Some(Decimal::new(9_990, 2));
            fill.fill_id = Some(format!("mmf-{k}"));
            fill.trade_id = Some(format!("mmt-{k}"));
            out.push(buy);
            out.push(fill);
        }
    }
    // Stable: the random stream keeps its order among equal times.
    out.sort_by_key(|r| r.ts);
    out
}

#[test]
fn state_stays_within_bounds_derived_from_the_windows_over_hours() {
    const MIN: i64 = 60_000_000_000;
    const SWEEP: i64 = MIN;
    let params = Params {
        order_max_live_ms: 10 * 60_000,
        mtc_close: [("*".into(), "16:00".into())].into(),
        // Layering can never complete, so episodes chain for as long as their orders overlap:
        // only pruning keeps their member lists bounded.
        layer_min_levels: 1_000,
        ..permissive()
    };
    let recs = long_stream(200_000);
    let span = recs[recs.len() - 1].ts.as_nanos() - recs[0].ts.as_nanos();
    assert!(span > 4 * 60 * MIN, "the stream covers hours: {span} ns");
    let times = |f: &dyn Fn(&Record) -> bool| -> Vec<i64> {
        recs.iter()
            .filter(|r| f(r))
            .map(|r| r.ts.as_nanos())
            .collect()
    };
    let news = times(&|r| r.kind == Kind::OrderNew);
    let cancels = times(&|r| r.kind == Kind::OrderCancel);
    let fills = times(&|r| r.kind == Kind::Fill);
    let taker_fills =
        times(&|r| r.kind == Kind::Fill && r.liquidity == Some(model::Liquidity::Taker));

    let ms = |v: i64| v * 1_000_000;
    let live = ms(params.order_max_live_ms);
    let keep = ms(params.spoof_t_post_ms.max(params.layer_t_post_ms));
    let wash = ms(params.wash_window_ms);
    let mi_horizon =
        ms(params.mi_burst_window_ms + params.mi_settle_ms.max(params.mi_exit_window_ms));
    // What the scanner keeps about a kind of record is bounded by the number of such records
    // inside the horizon it keeps them for (plus one sweep period, 60 s, for lazy eviction).
    let orders_bound = max_in_window(&news, live + SWEEP + keep);
    let fills_bound =
        max_in_window(&fills, live + keep + SWEEP) + max_in_window(&fills, wash + SWEEP);
    let members_bound = max_in_window(&cancels, live);
    let episodes_bound = max_in_window(&cancels, live + 2 * SWEEP + keep);
    let prints_bound = max_in_window(&fills, wash);
    let bursts_bound = max_in_window(&taker_fills, mi_horizon + SWEEP);
    let tasks_bound = 3 * max_in_window(&taker_fills, mi_horizon) + 3;
    // Per symbol: the quotes inside the momentum-ignition horizon plus the one before it.
    let quote_bound: usize = ["S0", "S1", "S2"]
        .iter()
        .map(|sym| {
            let t = times(&|r| r.kind == Kind::Quote && r.symbol == *sym);
            max_in_window(&t, ms(params.mi_burst_window_ms + params.mi_settle_ms)) + 1
        })
        .sum();
    // Entities: 12 accounts, ABANDON and MM (their own owners), 6 owners, 3 symbols and the
    // related-owner group.
    let names_bound = 12 + 2 + 6 + 3 + 1;

    let mut s = Scanner::new(params.clone()).unwrap();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut peak = s.state_stats();
    let bump = |peak: &mut StateStats, x: StateStats| {
        peak.orders = peak.orders.max(x.orders);
        peak.kept_fills = peak.kept_fills.max(x.kept_fills);
        peak.open_episodes = peak.open_episodes.max(x.open_episodes);
        peak.episode_members = peak.episode_members.max(x.episode_members);
        peak.open_prints = peak.open_prints.max(x.open_prints);
        peak.pending_tasks = peak.pending_tasks.max(x.pending_tasks);
        peak.emitted_keys = peak.emitted_keys.max(x.emitted_keys);
        peak.interned_names = peak.interned_names.max(x.interned_names);
        peak.order_keys = peak.order_keys.max(x.order_keys);
        peak.quote_history = peak.quote_history.max(x.quote_history);
        peak.day_stats = peak.day_stats.max(x.day_stats);
        peak.bursts = peak.bursts.max(x.bursts);
        peak.group_symbols = peak.group_symbols.max(x.group_symbols);
    };
    for (i, r) in recs.iter().enumerate() {
        alerts.extend(s.on_record(r));
        if i.is_multiple_of(500) {
            bump(&mut peak, s.state_stats());
        }
    }
    bump(&mut peak, s.state_stats());

    let mut alert_times: Vec<i64> = alerts.iter().map(|a| a.ts.as_nanos()).collect();
    alert_times.sort_unstable();
    let longest_horizon = [
        Rule::WashTrade,
        Rule::Spoofing,
        Rule::Layering,
        Rule::MarkingTheClose,
        Rule::MomentumIgnition,
    ]
    .into_iter()
    .map(|r| s.dedupe_horizon(r))
    .max()
    .unwrap();
    let keys_bound = max_in_window(&alert_times, longest_horizon + SWEEP);

    assert!(
        alerts.len() > 1_000,
        "a busy stream raises many alerts: {}",
        alerts.len()
    );
    assert!(
        !alerts.iter().any(|a| a.rule == Rule::Layering),
        "layering cannot complete here"
    );
    for (name, peak, bound) in [
        ("orders", peak.orders, orders_bound),
        ("kept_fills", peak.kept_fills, fills_bound),
        ("episode_members", peak.episode_members, members_bound),
        ("open_episodes", peak.open_episodes, episodes_bound),
        ("open_prints", peak.open_prints, prints_bound),
        ("bursts", peak.bursts, bursts_bound),
        ("pending_tasks", peak.pending_tasks, tasks_bound),
        ("quote_history", peak.quote_history, quote_bound),
        ("emitted_keys", peak.emitted_keys, keys_bound),
        ("interned_names", peak.interned_names, names_bound),
        // Order keys are freed once nothing refers to them: at most twice what the orders,
        // the done-queue, kept fills (look-back, round trips, prints, bursts) and episodes
        // refer to, or 1024.
        (
            "order_keys",
            peak.order_keys,
            2 * (2 * orders_bound + 3 * fills_bound + members_bound + episodes_bound) + 1024,
        ),
        ("day_stats", peak.day_stats, names_bound),
        ("group_symbols", peak.group_symbols, names_bound * 3),
    ] {
        eprintln!("{name}: {peak} <= {bound}");
        assert!(peak <= bound, "{name}: peak {peak} > bound {bound}");
    }
    // The bounds are below what the stream holds, so keeping history would break them: the
    // abandoned orders alone outnumber the orders bound, the market maker's cancels (one
    // chained episode) the members bound, its fills (pinned by that episode's start) the fills
    // bound, the alerts the keys bound.
    let abandoned = recs
        .iter()
        .filter(|r| r.account.as_deref() == Some("ABANDON"))
        .count();
    let mm_cancels = recs
        .iter()
        .filter(|r| r.account.as_deref() == Some("MM") && r.kind == Kind::OrderCancel)
        .count();
    let mm_fills = recs
        .iter()
        .filter(|r| r.account.as_deref() == Some("MM") && r.kind == Kind::Fill)
        .count();
    assert!(abandoned > orders_bound, "{abandoned} vs {orders_bound}");
    assert!(
        mm_cancels > members_bound,
        "{mm_cancels} vs {members_bound}"
    );
    assert!(mm_fills > fills_bound, "{mm_fills} vs {fills_bound}");
    assert!(
        alerts.len() > 5 * keys_bound,
        "{} vs {keys_bound}",
        alerts.len()
    );
}

#[test]
fn known_alerts_are_kept_only_while_their_rule_can_raise_them_again() {
    let t0 = Timestamp::parse_rfc3339("2024-01-02T14:30:00Z").unwrap();
    let p = Params::default();
    let s = Scanner::new(p.clone()).unwrap();
    let wash = s.dedupe_horizon(Rule::WashTrade);
    assert_eq!(wash, 60_000_000_000);
    assert_eq!(s.dedupe_horizon(Rule::MarkingTheClose), 0);
    assert_eq!(
        s.dedupe_horizon(Rule::Spoofing),
        86_400_000_000_000 + 60_000_000_000 + 1_000_000_000
    );

    let at = |ns: i64| Timestamp::from_nanos(t0.as_nanos() + ns);
    let quote_at = |ns: i64| {
        let mut r = Record::new(at(ns), Kind::Quote, "X");
        r.bid = Some(Decimal::ONE);
        r.ask = Some(Decimal::TWO);
        r
    };
    let known = vec![
        ("WASH_TRADE-old".to_string(), at(-wash - 1)),
        ("WASH_TRADE-recent".to_string(), at(-wash)),
        ("MARKING_THE_CLOSE-future".to_string(), at(5_000_000_000)),
        ("SPOOFING-old".to_string(), at(-2 * 86_400_000_000_000)),
    ];
    let mut s = Scanner::new(p).unwrap().with_known_alerts(known);
    assert_eq!(
        s.state_stats().emitted_keys,
        4,
        "nothing is dropped before time is known"
    );
    s.on_record(&quote_at(0));
    assert_eq!(
        s.state_stats().emitted_keys,
        2,
        "the first record's time drops the keys no rule can raise again"
    );
    // Keys told without a time live one day past the replay start plus their horizon.
    let mut s = s.with_known_keys(["WASH_TRADE-untimed".to_string()]);
    assert_eq!(s.state_stats().emitted_keys, 3);
    s.on_record(&quote_at(86_400_000_000_000 + wash));
    assert_eq!(
        s.state_stats().emitted_keys,
        1,
        "only the untimed key is left"
    );
    s.on_record(&quote_at(86_400_000_000_000 + wash + 60_000_000_000));
    assert_eq!(s.state_stats().emitted_keys, 0);

    // A restored scanner accepts only what it still needs.
    let restored = restore(&snapshot(&s)).with_known_alerts([
        ("WASH_TRADE-stale".to_string(), at(0)),
        (
            "WASH_TRADE-fresh".to_string(),
            at(86_400_000_000_000 + 60_000_000_000),
        ),
    ]);
    assert_eq!(restored.state_stats().emitted_keys, 1);
}

/// Snapshots taken after the order-key table has been collected several times (freed keys
/// reused) still continue exactly like the uninterrupted scanner, and serialize canonically.
#[test]
fn snapshots_across_order_key_collections_continue_exactly() {
    for (seed, params) in [(7, permissive()), (8, short_windows())] {
        let recs = evgen::events(seed, 12_000, &small());
        let mut plain = Scanner::new(params.clone()).unwrap();
        let want: Vec<Alert> = recs.iter().flat_map(|r| plain.on_record(r)).collect();
        let mut resumed = Scanner::new(params).unwrap();
        let mut got = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            if i % 2_500 == 1_250 {
                let before = snapshot(&resumed);
                resumed = restore(&before);
                assert_eq!(snapshot(&resumed), before);
            }
            got.extend(resumed.on_record(r));
        }
        assert!(!want.is_empty());
        assert_eq!(json(&got), json(&want));
        assert_eq!(snapshot(&resumed), snapshot(&plain));
        assert_eq!(resumed.state_stats(), plain.state_stats());
        // 12,000 records hold ~5,000 orders: keys were freed and reused.
        let orders = recs.iter().filter(|r| r.kind == Kind::OrderNew).count();
        assert!(orders > 3_000, "{orders} orders");
        assert!(
            plain.state_stats().order_keys < orders / 2,
            "{:?}",
            plain.state_stats()
        );
    }
}
