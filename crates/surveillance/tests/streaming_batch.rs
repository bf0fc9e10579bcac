//! Streaming == batch, key stability, restart without loss or duplicates, bounded state.

mod common;
#[path = "common/gen.rs"]
mod evgen;

use std::collections::BTreeSet;

use proptest::prelude::*;
use surveillance::{Alert, Params, Scanner, scan};

fn small() -> evgen::GenCfg {
    evgen::GenCfg {
        accounts: 4,
        accounts_per_owner: 2,
        symbols: 2,
        step_us_max: 150_000,
        levels: 3,
    }
}

/// Parameters that make every rule reachable on small random streams.
fn params() -> Params {
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

/// Streaming with heartbeats between records (at a time no later than the next record).
fn stream_with_heartbeats(recs: &[interchange::Record], p: &Params, hb: &[u8]) -> Vec<Alert> {
    let mut s = Scanner::new(p.clone()).unwrap();
    let mut out = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        if let Some(prev) = i.checked_sub(1).map(|j| recs[j].ts)
            && hb.get(i % hb.len().max(1)).is_some_and(|b| b % 3 == 0)
        {
            let mid = model::Timestamp::from_nanos(
                prev.as_nanos() + (r.ts.as_nanos() - prev.as_nanos()) / 2,
            );
            out.extend(s.advance_to(mid));
        }
        out.extend(s.on_record(r));
    }
    out.extend(s.finish());
    out
}

#[test]
fn seeded_streams_raise_every_rule_and_streaming_equals_batch() {
    let mut rules = BTreeSet::new();
    for seed in 0..20 {
        let recs = evgen::events(seed, 3_000, &small());
        let batch = scan(&recs, &params()).unwrap();
        assert_eq!(common::stream(&recs, &params()), batch, "seed {seed}");
        assert_eq!(
            stream_with_heartbeats(&recs, &params(), &[0, 1, 2, 3]),
            batch,
            "seed {seed}"
        );
        let keys: BTreeSet<_> = batch.iter().map(|a| a.key.clone()).collect();
        assert_eq!(keys.len(), batch.len(), "keys are unique");
        assert_eq!(
            scan(&recs, &params()).unwrap(),
            batch,
            "re-running gives identical alerts and keys"
        );
        rules.extend(batch.iter().map(|a| a.rule));
    }
    assert_eq!(
        rules.len(),
        5,
        "the random streams exercise every rule: {rules:?}"
    );
}

#[test]
fn restart_from_any_position_loses_and_repeats_nothing() {
    let recs = evgen::events(7, 4_000, &small());
    let batch = scan(&recs, &params()).unwrap();
    assert!(batch.len() >= 5, "{}", batch.len());
    for crash_at in [1, 500, 1_999, 3_000, 3_999] {
        // Before the crash: delivered alerts are journaled by key.
        let mut a = Scanner::new(params()).unwrap();
        let mut delivered: Vec<Alert> = Vec::new();
        for r in &recs[..crash_at] {
            delivered.extend(a.on_record(r));
        }
        // After: a fresh scanner told the delivered keys replays from the start.
        let mut b = Scanner::new(params())
            .unwrap()
            .with_known_keys(delivered.iter().map(|x| x.key.clone()));
        for r in &recs {
            delivered.extend(b.on_record(r));
        }
        delivered.extend(b.finish());
        let mut got: Vec<String> = delivered.iter().map(|x| x.key.clone()).collect();
        let mut want: Vec<String> = batch.iter().map(|x| x.key.clone()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "crash at {crash_at}");
    }
}

#[test]
fn state_stays_bounded_on_a_long_stream() {
    // ~1,000 events/s for ~5 minutes: five times the longest default window (60 s).
    let cfg = evgen::GenCfg {
        accounts: 50,
        accounts_per_owner: 5,
        symbols: 10,
        step_us_max: 2_000,
        levels: 5,
    };
    let recs = evgen::events(3, 300_000, &cfg);
    let mut s = Scanner::new(Params::default()).unwrap();
    let mut mid = None;
    for (i, r) in recs.iter().enumerate() {
        s.on_record(r);
        if i == recs.len() / 2 {
            mid = Some(s.state_stats());
        }
    }
    let (a, b) = (mid.unwrap(), s.state_stats());
    // Window-bounded state does not grow with the length of the stream (linear growth would
    // double it between the middle and the end).
    for (name, x, y) in [
        ("orders", a.orders, b.orders),
        ("kept_fills", a.kept_fills, b.kept_fills),
        ("open_prints", a.open_prints, b.open_prints),
        ("open_episodes", a.open_episodes, b.open_episodes),
        ("pending_tasks", a.pending_tasks, b.pending_tasks),
    ] {
        assert!(
            y * 10 <= x * 13 + 100,
            "{name}: {x} at the middle, {y} at the end ({a:?} / {b:?})"
        );
    }
    assert!(b.orders < 2_000, "{b:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn streaming_equals_batch_on_random_streams(seed in 0u64..1_000_000, n in 1usize..1_500, hb in proptest::collection::vec(any::<u8>(), 1..8)) {
        let recs = evgen::events(seed, n, &small());
        let batch = scan(&recs, &params()).unwrap();
        prop_assert_eq!(stream_with_heartbeats(&recs, &params(), &hb), batch.clone());
        // Chunked feeding through one scanner: same sequence.
        prop_assert_eq!(common::stream(&recs, &params()), batch);
    }
}
