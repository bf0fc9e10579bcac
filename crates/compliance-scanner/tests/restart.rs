//! The scanner as a snapshot consumer: restarting anywhere gives what an uninterrupted run
//! gives, an alert journaled after the snapshot is not raised again by the replay, and the
//! state stays flat over a long stream while the alerts pile up in the store only.

mod common;

use std::path::Path;
use std::time::Duration;

use alerts::{AlertStore, AlertWriter};
use common::*;
use compliance_scanner::{ScanState, ScannerConfig, ScannerService, start};
use journal::{Delivery, InProcessBus};
use model::{Event, Side};
use proptest::prelude::*;
use runtime::consumer::restart_equivalence;
use runtime::{Consumer, ConsumerMetrics, Runner, SnapshotPolicy, SnapshotStore};
use tokio_util::sync::CancellationToken;

const ACCOUNTS: [&str; 3] = ["a1", "a2", "a3"];

/// One step of a random order flow.
#[derive(Debug, Clone)]
enum Step {
    Quote,
    /// A market order of 1, filled a few ticks from the touch.
    Market {
        account: usize,
        buy: bool,
        ticks: u32,
    },
    /// A resting limit order of 1, `ticks` away from the touch.
    Rest {
        account: usize,
        buy: bool,
        ticks: u32,
    },
    /// Cancels the n-th oldest resting order still live.
    Cancel {
        nth: usize,
    },
}

fn arb_step() -> impl Strategy<Value = (Step, i64)> {
    let step = prop_oneof![
        2 => Just(Step::Quote),
        4 => (0..ACCOUNTS.len(), any::<bool>(), 0u32..3)
            .prop_map(|(account, buy, ticks)| Step::Market { account, buy, ticks }),
        3 => (0..ACCOUNTS.len(), any::<bool>(), 1u32..4)
            .prop_map(|(account, buy, ticks)| Step::Rest { account, buy, ticks }),
        3 => (0usize..4).prop_map(|nth| Step::Cancel { nth }),
    ];
    (step, 0i64..1_500)
}

/// The events of a flow: time moves forward by each step's gap.
fn flow(steps: &[(Step, i64)]) -> Vec<Event> {
    let mut events = vec![quote(T0)];
    let mut ms = T0;
    let mut next_id = 1u64;
    let mut live: Vec<(u64, &str)> = Vec::new();
    for (step, gap) in steps {
        ms += gap;
        match step {
            Step::Quote => events.push(quote(ms)),
            Step::Market {
                account,
                buy,
                ticks,
            } => {
                let (side, price) = if *buy {
                    (Side::Buy, 45_000.1 + f64::from(*ticks) / 10.0)
                } else {
                    (Side::Sell, 44_999.9 - f64::from(*ticks) / 10.0)
                };
                events.extend(order_and_fill(
                    next_id,
                    ACCOUNTS[*account],
                    side,
                    &format!("{price:.1}"),
                    ms,
                ));
                next_id += 1;
            }
            Step::Rest {
                account,
                buy,
                ticks,
            } => {
                let side = if *buy { Side::Buy } else { Side::Sell };
                events.extend(resting(next_id, ACCOUNTS[*account], side, *ticks, ms));
                live.push((next_id, ACCOUNTS[*account]));
                next_id += 1;
            }
            Step::Cancel { nth } => {
                if !live.is_empty() {
                    let (id, account) = live.remove(nth % live.len());
                    events.push(cancel(id, account, ms));
                }
            }
        }
    }
    // A last quote well after everything: time-driven pairings run.
    events.push(quote(ms + 120_000));
    events
}

fn alert_keys(out: &[Event]) -> Vec<String> {
    out.iter()
        .filter_map(|e| match e {
            Event::ComplianceAlert { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

fn scan_state() -> ScanState {
    ScanState::new(&ScannerConfig::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Snapshot + restore + continue == uninterrupted, for any flow, batching and cut point:
    /// the same alerts (same keys, same JSON) and the same final state.
    #[test]
    fn restart_anywhere_equals_an_uninterrupted_scan(
        steps in proptest::collection::vec(arb_step(), 1..80),
        batch in 1usize..9,
        cut_frac in 0.0f64..1.0,
    ) {
        let ds = deliveries(&flow(&steps), 1);
        let batches: Vec<Vec<Delivery>> = ds.chunks(batch).map(<[Delivery]>::to_vec).collect();
        let cut = ((batches.len() as f64) * cut_frac) as usize;
        let (plain, resumed) = restart_equivalence(scan_state, &batches, cut).unwrap();
        prop_assert_eq!(plain, resumed);
    }
}

#[test]
fn random_flows_do_raise_alerts_so_the_property_is_not_vacuous() {
    // The same generator with a fixed flow: washes and more.
    let mut steps = Vec::new();
    for i in 0..30 {
        steps.push((
            Step::Market {
                account: i % 3,
                buy: i % 2 == 0,
                ticks: 0,
            },
            700,
        ));
    }
    let mut s = scan_state();
    let mut out = Vec::new();
    s.apply(&deliveries(&flow(&steps), 1), &mut out).unwrap();
    assert!(alert_keys(&out).len() >= 10, "{:?}", alert_keys(&out));
}

#[test]
fn an_alert_the_store_or_the_restore_already_knows_is_not_published_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let events = wash("washer", 1, T0);
    let mut later = events.clone();
    later.push(quote(T0 + 120_000));
    let ds = deliveries(&later, 1);

    let mut fresh = scan_state();
    let mut out = Vec::new();
    fresh.apply(&ds, &mut out).unwrap();
    let keys = alert_keys(&out);
    assert_eq!(keys.len(), 1, "the round trip raises one alert");

    // The store has it (journaled by an earlier run): checked before publishing.
    let mut w = AlertWriter::open(&path).unwrap();
    w.write(&deliveries(&out, 100)).unwrap();
    let mut replay = scan_state().with_store(AlertStore::open(&path).unwrap());
    let mut again = Vec::new();
    replay.apply(&ds, &mut again).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(replay.suppressed(), 1);

    // Told at restore (journaled after the snapshot): the detectors drop it themselves.
    let Event::ComplianceAlert { ts, .. } = &out[0] else {
        unreachable!()
    };
    let mut told = scan_state().with_known_alerts([(keys[0].clone(), *ts)]);
    let mut again = Vec::new();
    told.apply(&ds, &mut again).unwrap();
    assert!(again.is_empty(), "{again:?}");
    // And the state is that of the run that raised it.
    assert_eq!(
        serde_json::to_string(&told).unwrap(),
        serde_json::to_string(&fresh).unwrap()
    );
}

fn policy() -> SnapshotPolicy {
    SnapshotPolicy {
        every_events: 1,
        every: Duration::from_secs(3600),
        keep: 100,
    }
}

async fn start_service(
    bus: &InProcessBus,
    dir: &Path,
    shutdown: &CancellationToken,
) -> ScannerService<InProcessBus> {
    let metrics = telemetry::Metrics::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    start(
        &runner,
        dir,
        ScannerConfig::default(),
        policy(),
        &metrics,
        shutdown.clone(),
    )
    .await
    .unwrap()
}

async fn stop(svc: ScannerService<InProcessBus>, shutdown: CancellationToken) {
    shutdown.cancel();
    for (name, task) in svc.tasks {
        task.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Removes the scanner's snapshots newer than `seq`: as if it crashed before writing them.
fn crash_back_to(dir: &Path, seq: u64) -> usize {
    let store =
        SnapshotStore::open(&dir.join("snapshots"), compliance_scanner::SCANNER, 100).unwrap();
    let mut removed = 0;
    for (s, path) in store.list().unwrap() {
        if s > seq {
            std::fs::remove_file(path).unwrap();
            removed += 1;
        }
    }
    removed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_stream_raises_no_alert_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, bus) = open(dir.path());
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;

    // Half a round trip, snapshotted.
    let all = wash("washer", 1, T0);
    journal.append_batch(all[..4].to_vec()).await.unwrap();
    let half = journal.last_seq();
    svc.scanner
        .wait_for(half, Duration::from_secs(5))
        .await
        .unwrap();
    let h = svc.scanner.clone();
    eventually("a snapshot of the first half", || h.snapshot_seq() >= half).await;
    let snapshot_at = svc.scanner.snapshot_seq();

    // The second half completes the pattern: one alert, journaled after the snapshot.
    journal.append_batch(all[4..].to_vec()).await.unwrap();
    let store = svc.alerts.clone();
    eventually("the alert stored", || store.count().unwrap() == 1).await;
    let first = journaled_alerts(&journal);
    assert_eq!(first.len(), 1);
    stop(svc, shutdown).await;

    // Crash before any later snapshot: the restart replays the second half and meets the
    // pattern again.
    assert!(crash_back_to(dir.path(), snapshot_at) > 0);
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;
    assert_eq!(
        svc.scanner.snapshot_seq(),
        snapshot_at,
        "restored from the snapshot before the alert"
    );
    // More flow after the restart, with its own alert.
    journal
        .append_batch(wash("other", 3, T0 + 600_000))
        .await
        .unwrap();
    let store = svc.alerts.clone();
    eventually("the new alert stored", || store.count().unwrap() == 2).await;
    svc.scanner
        .wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    stop(svc, shutdown).await;
    let second = journaled_alerts(&journal);
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[0], first[0]);
    assert_ne!(second[1], first[0]);

    // No snapshot at all (lost, or another configuration): a replay from the beginning still
    // raises nothing twice; the store recognises every old alert.
    assert!(crash_back_to(dir.path(), 0) > 0);
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;
    svc.scanner
        .wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    // The second round trip completes on the clock (no record after it), once caught up.
    let h = svc.scanner.clone();
    eventually("both old alerts met again", || {
        h.read(ScanState::suppressed) == 2
    })
    .await;
    stop(svc, shutdown).await;
    assert_eq!(journaled_alerts(&journal), second);
}

#[test]
fn state_stays_flat_over_a_long_stream_while_alerts_accumulate_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = AlertWriter::open(&dir.path().join("alerts.db")).unwrap();
    let mut s = scan_state();
    const MIN: i64 = 60_000;
    // Three days: a quote every 20 s, a wash round trip every 3 minutes by one of 5 accounts,
    // a resting order every minute cancelled 2 minutes later, so history keeps growing.
    let days = 3;
    let minutes = days * 24 * 60;
    let mut seq = 0u64;
    let mut next_id = 1u64;
    let mut total_alerts = 0usize;
    let mut peak = s.stats();
    let mut open_rest: Vec<(u64, String, i64)> = Vec::new();
    for m in 0..minutes {
        let t = T0 + m * MIN;
        let mut events = vec![quote(t), quote(t + 20_000), quote(t + 40_000)];
        if m % 3 == 0 {
            let account = format!("w{}", m % 5);
            events.extend(order_and_fill(
                next_id,
                &account,
                Side::Buy,
                "45000.1",
                t + 1_000,
            ));
            events.extend(order_and_fill(
                next_id + 1,
                &account,
                Side::Sell,
                "44999.9",
                t + 3_000,
            ));
            next_id += 2;
        }
        let account = format!("r{}", m % 7);
        events.extend(resting(next_id, &account, Side::Sell, 2, t + 5_000));
        open_rest.push((next_id, account, t + 2 * MIN + 6_000));
        next_id += 1;
        while open_rest.first().is_some_and(|o| o.2 <= t + 6_000) {
            let (id, account, at) = open_rest.remove(0);
            events.push(cancel(id, &account, at));
        }
        events.sort_by_key(Event::ts);
        let ds = deliveries(&events, seq + 1);
        seq += ds.len() as u64;
        let mut out = Vec::new();
        s.apply(&ds, &mut out).unwrap();
        total_alerts += alert_keys(&out).len();
        writer.write(&deliveries(&out, seq + 1)).unwrap();
        seq += out.len() as u64;
        let now = s.stats();
        peak.scanner.orders = peak.scanner.orders.max(now.scanner.orders);
        peak.scanner.kept_fills = peak.scanner.kept_fills.max(now.scanner.kept_fills);
        peak.scanner.emitted_keys = peak.scanner.emitted_keys.max(now.scanner.emitted_keys);
        peak.scanner.quote_history = peak.scanner.quote_history.max(now.scanner.quote_history);
        peak.scanner.pending_tasks = peak.scanner.pending_tasks.max(now.scanner.pending_tasks);
        peak.scanner.day_stats = peak.scanner.day_stats.max(now.scanner.day_stats);
        peak.exporter.open_orders = peak.exporter.open_orders.max(now.exporter.open_orders);
        peak.exporter.unaccepted = peak.exporter.unaccepted.max(now.exporter.unaccepted);
        peak.pending_latency = peak.pending_latency.max(now.pending_latency);
    }
    let washes = (minutes as usize).div_ceil(3);
    // Every round trip raised its alert, and the alerts are in the store, not in the state.
    assert!(
        total_alerts >= washes,
        "{total_alerts} alerts for {washes} round trips"
    );
    assert_eq!(writer.count(), total_alerts as u64);
    assert!(next_id > 7_000, "{next_id} orders");
    // Bounds from the windows, far below the history (sampled after each minute): alert keys
    // within the 60 s wash horizon plus the minute between sweeps (one round trip every 3
    // minutes), the resting orders not yet cancelled (2 minutes) plus finished ones for a
    // second, round-trip fills for the 60 s wash window, per-owner counters for the 12 owners.
    let sc = peak.scanner;
    assert!(sc.emitted_keys <= 2, "{peak:?}");
    assert!(sc.orders <= 3, "{peak:?}");
    assert!(sc.kept_fills <= 2, "{peak:?}");
    assert!(sc.quote_history <= 3, "{peak:?}");
    assert!(sc.day_stats <= 12, "{peak:?}");
    assert!(peak.exporter.open_orders <= 3, "{peak:?}");
    assert!(peak.exporter.unaccepted == 0, "{peak:?}");
    assert_eq!(
        peak.pending_latency, 0,
        "no latency tracking without a histogram"
    );
    // The state does not grow from the first day to the last.
    let end = s.stats().scanner;
    assert!(
        end.orders <= sc.orders && end.emitted_keys <= sc.emitted_keys,
        "{end:?}"
    );
}
