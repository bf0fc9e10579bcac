//! The consumer restarts from a snapshot plus the journal tail exactly as if it had never
//! stopped (state, published output and stored rows), a replayed tail rewrites the same rows,
//! and its memory stays bounded over a long journal.

mod common;

use std::cell::RefCell;
use std::path::Path;

use execution_quality::{QualityConsumer, QualityMetrics, RowWriter};
use journal::Delivery;
use proptest::prelude::*;
use runtime::Consumer;
use runtime::consumer::restart_equivalence;

use common::{deliveries, journal, params, stored_rows};

fn batches(d: &[Delivery], size: usize) -> Vec<Vec<Delivery>> {
    d.chunks(size.max(1)).map(<[Delivery]>::to_vec).collect()
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// A consumer with its store opened at `db`.
fn attached(db: &Path) -> QualityConsumer {
    let mut c = QualityConsumer::new(params(), db).unwrap();
    c.attach(RowWriter::open(db).unwrap(), None);
    c
}

fn apply_all(c: &mut QualityConsumer, batches: &[Vec<Delivery>]) {
    for b in batches {
        c.apply(b, &mut Vec::new()).unwrap();
    }
}

/// The pure part of the state (the store's location differs between runs on purpose).
fn pure_state(c: &QualityConsumer) -> (String, String) {
    (
        serde_json::to_string(c.engine()).unwrap(),
        serde_json::to_string(c.exporter()).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// `restart_equivalence`: the run restored from a snapshot after batch `cut` ends in the
    /// same state, publishes the same (nothing), and leaves the same rows in its store.
    #[test]
    fn restart_anywhere_equals_an_uninterrupted_run_rows_included(
        seed in any::<u64>(),
        n in 1usize..500,
        batch in 1usize..40,
        cut_frac in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("execution_quality.db");
        let events = journal(seed, n, 8, 120);
        let batches = batches(&deliveries(&events), batch);
        let cut = (batches.len() as f64 * cut_frac) as usize;
        // Both runs write to `db` (the path is part of the state, so it must be the same):
        // each new run first takes the previous run's rows out and starts an empty store.
        let runs: RefCell<Vec<Vec<execq::OrderQuality>>> = RefCell::new(Vec::new());
        let make = || {
            runs.borrow_mut().push(stored_rows(&db));
            remove_db(&db);
            QualityConsumer::new(params(), &db).unwrap()
        };
        let (uninterrupted, restarted) = restart_equivalence(make, &batches, cut).unwrap();
        let restarted_rows = stored_rows(&db);
        let uninterrupted_rows = runs.borrow()[1].clone();
        prop_assert_eq!(uninterrupted, restarted);
        prop_assert_eq!(&uninterrupted_rows, &restarted_rows);
        // Rows + held orders cover every accepted order exactly once.
        let mut c = attached(&dir.path().join("check.db"));
        apply_all(&mut c, &batches);
        let held = c.engine().held_rows(&common::all());
        let accepted = events.iter().filter(|e| matches!(e, model::Event::OrderAccepted { .. })).count();
        prop_assert_eq!(restarted_rows.len() + held.len(), accepted);
        prop_assert!(held.iter().all(|h| restarted_rows.iter().all(|r| r.order_id != h.order_id)));
    }

    /// A crash after the snapshot at `cut`: the rows finalized up to `crash` are written, the
    /// state is lost, the consumer restarts from the snapshot and replays from `cut`. The
    /// replay finalizes those orders again into the very same rows (upserts), and the end
    /// state and store equal an uninterrupted run's.
    #[test]
    fn a_replayed_tail_rewrites_the_same_rows(
        seed in any::<u64>(),
        n in 1usize..500,
        batch in 1usize..40,
        cut_frac in 0.0f64..1.0,
        crash_frac in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let events = journal(seed, n, 8, 120);
        let batches = batches(&deliveries(&events), batch);
        let cut = (batches.len() as f64 * cut_frac) as usize;
        let crash = cut + ((batches.len() - cut) as f64 * crash_frac) as usize;

        let plain_db = dir.path().join("plain.db");
        let mut plain = attached(&plain_db);
        apply_all(&mut plain, &batches);

        let db = dir.path().join("crashed.db");
        let mut c = attached(&db);
        apply_all(&mut c, &batches[..cut]);
        let snapshot = serde_json::to_vec(&c).unwrap();
        apply_all(&mut c, &batches[cut..crash]);
        let written_before_crash = stored_rows(&db);
        drop(c);
        let mut c: QualityConsumer = serde_json::from_slice(&snapshot).unwrap();
        c.attach(RowWriter::open(&db).unwrap(), None);
        apply_all(&mut c, &batches[cut..]);

        prop_assert_eq!(pure_state(&c), pure_state(&plain));
        let rows = stored_rows(&db);
        prop_assert_eq!(&rows, &stored_rows(&plain_db));
        // Nothing written before the crash was lost by the replay, and no complete row changed
        // (a row still waiting for realized-spread lookups then may be complete now).
        for r in &written_before_crash {
            let now = rows.iter().find(|x| x.order_id == r.order_id);
            prop_assert!(now.is_some(), "{} lost", r.order_id);
            if r.pending_spreads.is_none() {
                prop_assert_eq!(now, Some(r));
            }
        }
    }
}

#[test]
fn memory_stays_bounded_over_a_long_journal() {
    const MAX_OPEN: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("execution_quality.db");
    let events = journal(7, 120_000, MAX_OPEN, 100);
    let span_s =
        (events[events.len() - 1].ts().as_nanos() - events[0].ts().as_nanos()) / 1_000_000_000;
    assert!(span_s > 3_000, "about an hour of journal: {span_s} s");
    let accepted = events
        .iter()
        .filter(|e| matches!(e, model::Event::OrderAccepted { .. }))
        .count();
    assert!(accepted > 15_000, "many orders: {accepted}");

    let mut c = attached(&db);
    let metrics = telemetry::Metrics::new();
    c.attach(
        RowWriter::open(&db).unwrap(),
        Some(QualityMetrics::register(&metrics)),
    );
    let batches = batches(&deliveries(&events), 512);
    let (mut peak_held, mut peak_open, mut peak_pending, mut peak_settling) = (0, 0, 0, 0);
    let mut snapshot_sizes = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        c.apply(b, &mut Vec::new()).unwrap();
        let s = c.engine().state_sizes();
        assert_eq!(
            s.undrained_rows, 0,
            "every row and update leaves with its batch"
        );
        peak_held = peak_held.max(s.held_orders);
        peak_pending = peak_pending.max(s.pending_lookups);
        peak_settling = peak_settling.max(s.settling_orders);
        peak_open = peak_open.max(c.exporter().stats().open_orders);
        if i % 50 == 49 {
            snapshot_sizes.push(serde_json::to_vec(&c).unwrap().len());
        }
    }
    // Held in full: the open orders plus those ended within the grace (1 s of event time, a
    // few orders at this rate); settling: those ended within the longest horizon (2 s); never
    // the ~15k orders seen.
    assert!(peak_open <= MAX_OPEN, "{peak_open}");
    assert!(
        peak_held <= 2 * MAX_OPEN,
        "held orders peaked at {peak_held}"
    );
    assert!(
        peak_settling > 0 && peak_settling <= 2 * MAX_OPEN,
        "settling orders peaked at {peak_settling}"
    );
    assert!(
        peak_pending <= 100,
        "pending lookups peaked at {peak_pending}"
    );
    // Every accepted order is either stored or still held in full; the stored rows still
    // waiting for realized-spread lookups are exactly the settling orders'.
    let stored = execution_quality::RowReader::new(&db).count().unwrap() as usize;
    assert_eq!(stored + c.engine().held_orders(), accepted);
    assert!(stored >= accepted - 2 * MAX_OPEN);
    let waiting = stored_rows(&db)
        .iter()
        .filter(|r| r.pending_spreads.is_some())
        .count();
    assert_eq!(waiting, c.engine().settling_orders());
    // The snapshot does not grow with the journal: the last is no bigger than twice the first.
    let (first, last) = (snapshot_sizes[0], *snapshot_sizes.last().unwrap());
    assert!(
        last < 2 * first,
        "snapshot grew from {first} to {last} bytes"
    );
    // Gauges come from the running aggregates (every order, stored or held).
    c.tick(model::Timestamp::from_nanos(0), &mut Vec::new())
        .unwrap();
    let text = metrics.render();
    assert!(
        text.contains("execq_fill_rate_by_symbol{symbol=\"AAAUSD\"}"),
        "{text}"
    );
    assert!(
        text.contains("execq_effective_spread_bps_bucket{"),
        "{text}"
    );
    let held_line = format!("trade2026_execq_orders_held {}", c.engine().held_orders());
    assert!(text.contains(&held_line), "{text}");
}

/// The case the upsert exists for, pinned: orders finalized and stored after the snapshot,
/// then held again by the restored state, are finalized again during the replay.
#[test]
fn orders_stored_before_a_crash_are_held_again_after_it_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let events = journal(11, 3_000, 10, 120);
    let batches = batches(&deliveries(&events), 16);
    let (cut, crash) = (batches.len() / 3, 2 * batches.len() / 3);
    let db = dir.path().join("execution_quality.db");
    let mut c = attached(&db);
    apply_all(&mut c, &batches[..cut]);
    let snapshot = serde_json::to_vec(&c).unwrap();
    apply_all(&mut c, &batches[cut..crash]);
    let before_crash = stored_rows(&db);
    drop(c);
    let mut c: QualityConsumer = serde_json::from_slice(&snapshot).unwrap();
    c.attach(RowWriter::open(&db).unwrap(), None);
    let held_again: Vec<String> = c
        .engine()
        .held_rows(&common::all())
        .into_iter()
        .map(|r| r.order_id)
        .filter(|id| before_crash.iter().any(|r| &r.order_id == id))
        .collect();
    assert!(
        !held_again.is_empty(),
        "the snapshot holds orders stored later"
    );
    // Meanwhile a reader merging the store with the engine's rows and views sees each of them
    // once.
    let held = c.engine().held_rows(&common::all());
    let views = c.engine().spread_views(&common::all());
    let merged: Vec<_> = execution_quality::store::MergeById::new(
        before_crash.clone().into_iter(),
        held.clone().into_iter(),
        views.into_iter(),
        execq::RowUpdater::new(&params()).unwrap(),
    )
    .collect();
    let mut ids: Vec<&str> = merged.iter().map(|r| r.order_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), merged.len());
    assert_eq!(
        merged.len(),
        before_crash.len() + held.len() - held_again.len()
    );
    apply_all(&mut c, &batches[cut..]);
    let after = stored_rows(&db);
    let plain_db = dir.path().join("plain.db");
    let mut plain = attached(&plain_db);
    apply_all(&mut plain, &batches);
    let uninterrupted = stored_rows(&plain_db);
    for id in &held_again {
        assert_eq!(
            after.iter().find(|r| &r.order_id == id),
            uninterrupted.iter().find(|r| &r.order_id == id),
            "{id} handed out again into the same row"
        );
    }
    assert_eq!(after, uninterrupted);
}
