//! The consumer loop end to end over a real journal: snapshots, restart from the newest valid
//! one plus the tail, published output, stored positions, the read barrier.

use std::collections::BTreeMap;
use std::time::Duration;

use journal::{Bus, Delivery, InProcessBus, Journal};
use model::{AccountId, Event, OrderId, Timestamp};
use runtime::consumer::restart_equivalence;
use runtime::{
    Consumer, ConsumerMetrics, Runner, Snapshot, SnapshotPolicy, SnapshotStore, Spec,
    StoredPosition,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

fn accepted(n: u64, account: &str) -> Event {
    Event::OrderAccepted {
        order_id: OrderId(n),
        account: AccountId::new(account).unwrap(),
        ts: Timestamp::from_secs(1_700_000_000 + n as i64),
    }
}

/// Counts orders per account and publishes an alert for every 5th order it sees.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    per_account: BTreeMap<String, u64>,
    seen: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Consumer for Counter {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], out: &mut Vec<Event>) -> Result<(), Never> {
        for d in batch {
            if let Event::OrderAccepted { account, .. } = &d.event {
                *self.per_account.entry(account.to_string()).or_default() += 1;
                self.seen += 1;
                if self.seen.is_multiple_of(5) {
                    out.push(Event::ComplianceAlert {
                        key: format!("five-{}", self.seen),
                        rule: "every_fifth".into(),
                        alert: serde_json::json!({}),
                        ts: d.event.ts(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Snapshot for Counter {
    const STATE_VERSION: u32 = 1;
}

/// A fresh journal in a temporary directory and the in-process bus over it.
fn journal_bus() -> (tempfile::TempDir, Journal, InProcessBus) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    (dir, journal, bus)
}

fn runner(bus: &InProcessBus, shutdown: &CancellationToken) -> Runner<InProcessBus> {
    let metrics = telemetry::Metrics::new();
    Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    )
}

/// Batches of 4, so snapshots fall between batches as they would under load.
fn small_batches() -> Spec {
    let mut spec = Spec::new("counter", "orders.*");
    spec.batch = 4;
    spec
}

/// Polls `cond` until it holds (the loop checkpoints right after publishing its position).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

fn policy(every_events: u64) -> SnapshotPolicy {
    SnapshotPolicy {
        every_events,
        every: Duration::from_secs(3600),
        keep: 3,
    }
}

async fn publish(bus: &InProcessBus, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        bus.publish(accepted(n, if n % 2 == 0 { "a" } else { "b" }))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_the_newest_snapshot_and_replays_only_the_tail() {
    let (dir, journal, bus) = journal_bus();
    let snaps = dir.path().join("snapshots");
    publish(&bus, 1..=23).await;

    // First run: 23 orders (and the 4 alerts it publishes in answer), snapshots every 10 events.
    let shutdown = CancellationToken::new();
    let store = SnapshotStore::open(&snaps, "counter", 3).unwrap();
    let (h, task) = runner(&bus, &shutdown)
        .start_snapshotted(
            small_batches(),
            store,
            policy(10),
            "cfg".into(),
            Counter::default,
        )
        .await
        .unwrap();
    h.wait_for(23, Duration::from_secs(5)).await.unwrap();
    assert!(h.is_ready());
    assert_eq!(h.read(|c| c.seen), 23);
    eventually("two snapshots", || h.snapshots_written() >= 2).await;
    // Its alerts are in the journal, after the orders that caused them.
    let alerts = journal
        .read_from(1, 100)
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.event, Event::ComplianceAlert { .. }))
        .count();
    assert_eq!(alerts, 4);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let last = journal.last_seq();

    // Second run: starts from the final snapshot (taken at shutdown), replays nothing old.
    publish(&bus, 24..=30).await;
    let shutdown = CancellationToken::new();
    let store = SnapshotStore::open(&snaps, "counter", 3).unwrap();
    let restored = runtime::restore(&store, "cfg", journal.last_seq(), Counter::default).unwrap();
    assert_eq!(
        restored.position, last,
        "the shutdown snapshot covers everything applied"
    );
    let (h, task) = runner(&bus, &shutdown)
        .start_restored(small_batches(), store, policy(10), "cfg".into(), restored)
        .await
        .unwrap();
    h.wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    // Same as one uninterrupted fold, and no alert published twice.
    let mut full = Counter::default();
    let all: Vec<Delivery> = journal
        .read_from(1, 1000)
        .unwrap()
        .into_iter()
        .map(Into::into)
        .collect();
    let orders: Vec<Delivery> = all
        .iter()
        .filter(|d| d.subject.starts_with("orders."))
        .cloned()
        .collect();
    full.apply(&orders, &mut Vec::new()).unwrap();
    assert_eq!(h.read(Counter::clone), full);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let keys: Vec<String> = journal
        .read_from(1, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ComplianceAlert { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [
            "five-5", "five-10", "five-15", "five-20", "five-25", "five-30"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_newest_snapshot_falls_back_to_an_older_one_with_the_same_result() {
    let (dir, journal, bus) = journal_bus();
    let snaps = dir.path().join("snapshots");
    publish(&bus, 1..=40).await;
    let shutdown = CancellationToken::new();
    let store = SnapshotStore::open(&snaps, "counter", 5).unwrap();
    let (h, task) = runner(&bus, &shutdown)
        .start_snapshotted(
            small_batches(),
            store.clone(),
            policy(8),
            "cfg".into(),
            Counter::default,
        )
        .await
        .unwrap();
    h.wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    eventually("three snapshots", || h.snapshots_written() >= 3).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let expected = h.read(Counter::clone);

    // Tear the newest file; an older one plus a longer tail gives the same state.
    let files = store.list().unwrap();
    assert!(files.len() >= 2);
    let newest = &files[0].1;
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() - 3]).unwrap();
    let restored = runtime::restore(&store, "cfg", journal.last_seq(), Counter::default).unwrap();
    assert_eq!(restored.rejected.len(), 1);
    assert!(restored.position < files[0].0);
    let shutdown = CancellationToken::new();
    let (h, task) = runner(&bus, &shutdown)
        .start_restored(
            small_batches(),
            store.clone(),
            policy(8),
            "cfg".into(),
            restored,
        )
        .await
        .unwrap();
    h.wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(h.read(|c| c.per_account.clone()), expected.per_account);
    shutdown.cancel();
    task.await.unwrap().unwrap();

    // A configuration change invalidates every snapshot: a full replay, same counts.
    let restored =
        runtime::restore(&store, "other-cfg", journal.last_seq(), Counter::default).unwrap();
    assert_eq!(restored.position, 0);
    assert!(
        restored
            .rejected
            .iter()
            .any(|r| r.reason.contains("another configuration"))
    );
}

/// Remembers its position in a "store" that survives restarts (a shared map here).
struct Stored {
    store: std::sync::Arc<std::sync::Mutex<(u64, u64)>>, // (position, orders)
}

impl Consumer for Stored {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        let mut s = self.store.lock().unwrap();
        for d in batch {
            s.1 += 1;
            s.0 = d.seq;
        }
        Ok(())
    }
}

impl StoredPosition for Stored {
    fn stored_position(&self) -> Result<u64, Never> {
        Ok(self.store.lock().unwrap().0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_consumer_resumes_after_its_own_position_and_readers_can_wait_for_a_sequence() {
    let (_dir, journal, bus) = journal_bus();
    let store = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
    publish(&bus, 1..=10).await;
    for round in 0..2 {
        let shutdown = CancellationToken::new();
        let (h, task) = runner(&bus, &shutdown)
            .start_stored(
                Spec::new("stored", ">"),
                Stored {
                    store: store.clone(),
                },
            )
            .await
            .unwrap();
        if round == 1 {
            // A read barrier for a sequence not yet written times out with where it stands...
            let lag = h.wait_for(15, Duration::from_millis(50)).await.unwrap_err();
            assert_eq!((lag.position, lag.wanted), (10, 15));
            // ...and returns as soon as it is applied.
            let waiter = {
                let h = h.clone();
                tokio::spawn(async move { h.wait_for(15, Duration::from_secs(5)).await })
            };
            publish(&bus, 11..=15).await;
            waiter.await.unwrap().unwrap();
        }
        h.wait_for(journal.last_seq(), Duration::from_secs(5))
            .await
            .unwrap();
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
    // Every event once, across both runs.
    assert_eq!(*store.lock().unwrap(), (15, 15));
    assert_eq!(journal.consumer_position("stored"), Some(15));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn restart_anywhere_equals_an_uninterrupted_fold(
        accounts in proptest::collection::vec(0u8..4, 1..60),
        batch_size in 1usize..7,
        cut_frac in 0.0f64..1.0,
    ) {
        let deliveries: Vec<Delivery> = accounts.iter().enumerate().map(|(i, a)| {
            let event = accepted(i as u64 + 1, &format!("acct{a}"));
            Delivery { seq: i as u64 + 1, recorded_at: event.ts(), subject: event.subject(), event }
        }).collect();
        let batches: Vec<Vec<Delivery>> = deliveries.chunks(batch_size).map(<[Delivery]>::to_vec).collect();
        let cut = ((batches.len() as f64) * cut_frac) as usize;
        let (a, b) = restart_equivalence(Counter::default, &batches, cut).unwrap();
        proptest::prop_assert_eq!(a, b);
    }
}

/// The host every port runs: `/health` reports readiness (503 while a consumer replays),
/// `/metrics` the registry, and unknown routes the JSON 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_serves_health_with_readiness_metrics_and_json_404s() {
    use runtime::http::{ConsumerStatus, Host, Probe};
    struct Fixed(bool);
    impl Probe for Fixed {
        fn status(&self) -> ConsumerStatus {
            ConsumerStatus {
                consumer: "fixed",
                ready: self.0,
                position: 7,
                snapshot_seq: 5,
                events_since_snapshot: 2,
            }
        }
    }
    let get = |addr: std::net::SocketAddr, path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status: u16 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, out.split_once("\r\n\r\n").unwrap().1.to_string())
    };
    let shutdown = CancellationToken::new();
    let metrics = telemetry::Metrics::new();
    for ready in [true, false] {
        let host = Host::bind("svc", "127.0.0.1", 0)
            .await
            .unwrap()
            .probe(Fixed(ready))
            .health_section(
                "feeds",
                std::sync::Arc::new(|| serde_json::json!([{"stale": true}])),
            );
        let addr = host.addr();
        let _task = host.serve(axum::Router::new(), metrics.clone(), shutdown.clone());
        let (status, body) = get(addr, "/health").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, if ready { 200 } else { 503 }, "{body}");
        assert_eq!(v["status"], if ready { "ok" } else { "starting" });
        assert_eq!(v["service"], "svc");
        assert_eq!(v["consumers"][0]["position"], 7);
        // A section informs; readiness stays the consumers'.
        assert_eq!(v["feeds"][0]["stale"], true);
        let (status, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            text.contains("trade2026_process_resident_memory_bytes"),
            "{text}"
        );
        let (status, body) = get(addr, "/nope").await;
        assert_eq!(status, 404);
        assert!(body.contains("\"not_found\""), "{body}");
    }
    shutdown.cancel();
}

/// Holds every batch until `open` is set: a consumer that is stuck.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Gate {
    #[serde(skip)]
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: u64,
}

impl Consumer for Gate {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        while !self.open.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.seen += batch.len() as u64;
        Ok(())
    }
}

impl Snapshot for Gate {
    const STATE_VERSION: u32 = 1;
}

fn sample(text: &str, name: &str, consumer: &str) -> Option<i64> {
    let prefix = format!("{name}{{consumer=\"{consumer}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registry_shows_its_own_consumers_with_the_lag_of_the_moment() {
    let (dir, _, bus) = journal_bus();
    publish(&bus, 1..=10).await;
    let shutdown = CancellationToken::new();
    let (stuck_metrics, other_metrics) =
        (telemetry::Metrics::service(), telemetry::Metrics::service());
    let base = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&stuck_metrics),
        shutdown.clone(),
    );
    let other = base.with_metrics(ConsumerMetrics::register(&other_metrics));

    let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = Gate {
        open: open.clone(),
        seen: 0,
    };
    let mut spec = Spec::new("gate", "orders.*");
    spec.batch = 1;
    let (stuck, stuck_task) = base
        .start_snapshotted(
            spec,
            SnapshotStore::open(&dir.path().join("snaps"), "gate", 3).unwrap(),
            policy(1000),
            "cfg".into(),
            move || gate,
        )
        .await
        .unwrap();
    let (fine, fine_task) = other
        .start_stored(
            Spec::new("fine", "orders.*"),
            Stored {
                store: std::sync::Arc::default(),
            },
        )
        .await
        .unwrap();
    publish(&bus, 11..=30).await;
    fine.wait_for(30, Duration::from_secs(5)).await.unwrap();

    // The stuck consumer never finished its first batch: its lag is the whole journal now,
    // not what it was when it last moved.
    let text = stuck_metrics.render();
    assert_eq!(
        sample(&text, "trade2026_consumer_position", "gate"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trade2026_consumer_lag_events", "gate"),
        Some(30),
        "{text}"
    );
    assert!(
        sample(&text, "trade2026_consumer_snapshot_age_seconds", "gate").is_some_and(|a| a >= 0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trade2026_consumer_lag_events", "fine"),
        None,
        "{text}"
    );
    let text = other_metrics.render();
    assert_eq!(
        sample(&text, "trade2026_consumer_lag_events", "fine"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trade2026_consumer_lag_events", "gate"),
        None,
        "{text}"
    );
    // A stored-position consumer has no snapshots to age.
    assert_eq!(
        sample(&text, "trade2026_consumer_snapshot_age_seconds", "fine"),
        None,
        "{text}"
    );

    open.store(true, std::sync::atomic::Ordering::Release);
    stuck.wait_for(30, Duration::from_secs(5)).await.unwrap();
    let text = stuck_metrics.render();
    assert_eq!(
        sample(&text, "trade2026_consumer_lag_events", "gate"),
        Some(0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "trade2026_consumer_position", "gate"),
        Some(30),
        "{text}"
    );
    shutdown.cancel();
    stuck_task.await.unwrap().unwrap();
    fine_task.await.unwrap().unwrap();
}

/// Records the size of every batch it folds and the nice value of the thread it ran on.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Batches {
    sizes: Vec<usize>,
    nice: Vec<i32>,
}

impl Consumer for Batches {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        self.sizes.push(batch.len());
        self.nice.push(runtime::background::this_thread_nice());
        Ok(())
    }
}

impl Snapshot for Batches {
    const STATE_VERSION: u32 = 1;
}

/// Starts a [`Batches`] consumer under `spec` on `lane`, with its snapshots under `dir`.
async fn start_batches(
    lane: &Runner<InProcessBus>,
    dir: &std::path::Path,
    spec: Spec,
) -> (
    runtime::ConsumerHandle<Batches>,
    tokio::task::JoinHandle<Result<(), runtime::RuntimeError>>,
) {
    let store = SnapshotStore::open(&dir.join("snapshots"), spec.name, 3).unwrap();
    lane.start_snapshotted(
        spec,
        store,
        policy(1_000_000),
        "v1".into(),
        Batches::default,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_consumer_folds_below_the_callers_priority_and_a_reader_still_gets_every_event()
 {
    let (dir, _, bus) = journal_bus();
    let shutdown = CancellationToken::new();
    let lane = runner(&bus, &shutdown).in_background();
    let (h, task) = start_batches(&lane, dir.path(), Spec::new("batches", ">")).await;
    publish(&bus, 1..=10).await;
    // The barrier a read uses: answered with all ten applied (a lingering batch is hurried).
    h.wait_for(10, Duration::from_secs(10)).await.unwrap();
    let (sizes, nice) = h.read(|b| (b.sizes.clone(), b.nice.clone()));
    assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
    let caller = runtime::background::this_thread_nice();
    assert!(
        nice.iter()
            .all(|n| *n == runtime::background::BACKGROUND_NICE.max(caller)),
        "folded at nice {nice:?}, caller at {caller}"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_read_through_wait_gathers_a_longer_batch_until_a_read_hurries_it() {
    let (dir, _, bus) = journal_bus();
    let shutdown = CancellationToken::new();
    let lane = runner(&bus, &shutdown).in_background();
    let (pushed, pushed_task) = start_batches(&lane, dir.path(), Spec::new("pushed", ">")).await;
    let (stored, stored_task) = start_batches(
        &lane,
        dir.path(),
        Spec::new("stored", ">").read_through_wait(),
    )
    .await;
    publish(&bus, 1..=5).await;
    let published = std::time::Instant::now();
    // Past the default linger (20 ms), well inside the store linger (1 s): only the default
    // consumer has folded.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stored_early = stored.read(|b| b.sizes.clone());
    if published.elapsed() < runtime::STORE_LINGER {
        assert!(
            stored_early.is_empty(),
            "folded before its linger: {stored_early:?}"
        );
    }
    eventually("the default consumer folds", || {
        pushed.read(|b| b.sizes.iter().sum::<usize>()) == 5
    })
    .await;
    // A read's barrier ends the store linger at once: one batch of all five.
    stored.wait_for(5, Duration::from_secs(10)).await.unwrap();
    assert_eq!(stored.read(|b| b.sizes.clone()), vec![5]);
    shutdown.cancel();
    pushed_task.await.unwrap().unwrap();
    stored_task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lingering_consumer_folds_once_a_full_batch_is_waiting() {
    let (dir, _, bus) = journal_bus();
    let shutdown = CancellationToken::new();
    let mut spec = Spec::new("full", ">").read_through_wait();
    spec.batch = 4;
    let lane = runner(&bus, &shutdown).in_background();
    let (h, task) = start_batches(&lane, dir.path(), spec).await;
    // One event: a batch smaller than the batch size, so the consumer lingers on it.
    publish(&bus, 1..=1).await;
    let published = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.read(|b| b.sizes.is_empty()), "folded before its linger");
    // Nine more: a full batch is waiting, which ends the linger at the next check (every
    // 50 ms) instead of after the store linger (1 s); no reader hurries it.
    publish(&bus, 2..=10).await;
    eventually("the lingering batch folded", || {
        h.read(|b| !b.sizes.is_empty())
    })
    .await;
    let waited = published.elapsed();
    assert!(
        waited < runtime::STORE_LINGER,
        "folded after {waited:?}: the full batch did not end the linger"
    );
    let sizes = h.read(|b| b.sizes.clone());
    assert!(sizes.iter().all(|n| *n <= 4), "{sizes:?}");
    h.wait_for(10, Duration::from_secs(10)).await.unwrap();
    assert_eq!(h.read(|b| b.sizes.iter().sum::<usize>()), 10);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_keeps_a_consumer_from_lingering_until_it_reaches_the_wanted_sequence() {
    let (dir, _, bus) = journal_bus();
    let shutdown = CancellationToken::new();
    let lane = runner(&bus, &shutdown).in_background();
    let (h, task) = start_batches(
        &lane,
        dir.path(),
        Spec::new("wanted", ">").read_through_wait(),
    )
    .await;
    publish(&bus, 1..=10).await;
    let started = std::time::Instant::now();
    // The reader wants 20 while 10 exist: its one notification ends the linger on the first
    // ten; the next ten arrive later, and the consumer must not linger on them either.
    let reader = {
        let h = h.clone();
        tokio::spawn(async move { h.wait_for(20, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish(&bus, 11..=20).await;
    reader.await.unwrap().unwrap();
    let waited = started.elapsed();
    assert!(
        waited < runtime::STORE_LINGER,
        "the reader waited {waited:?}: the consumer lingered on a batch a reader wanted"
    );
    assert_eq!(h.read(|b| b.sizes.iter().sum::<usize>()), 20);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Counts orders, and records in its own state the count at its last `before_snapshot`: a
/// snapshot taken without the hook would show a different figure than the count it holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Syncing {
    seen: u64,
    synced_at: u64,
}

impl Consumer for Syncing {
    type Error = Never;
    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Never> {
        self.seen += batch.len() as u64;
        Ok(())
    }
}

impl Snapshot for Syncing {
    const STATE_VERSION: u32 = 1;
    fn before_snapshot(&mut self) -> Result<(), Never> {
        self.synced_at = self.seen;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_is_preceded_by_the_consumers_before_snapshot_hook() {
    let (dir, journal, bus) = journal_bus();
    let snaps = dir.path().join("snapshots");
    publish(&bus, 1..=23).await;
    let shutdown = CancellationToken::new();
    let store = SnapshotStore::open(&snaps, "syncing", 3).unwrap();
    let mut spec = Spec::new("syncing", "orders.*");
    spec.batch = 4;
    let (h, task) = runner(&bus, &shutdown)
        .start_snapshotted(spec, store, policy(10), "cfg".into(), Syncing::default)
        .await
        .unwrap();
    h.wait_for(23, Duration::from_secs(5)).await.unwrap();
    eventually("two snapshots", || h.snapshots_written() >= 2).await;
    // The hook ran at each snapshot (the last one so far was taken after 12 or more events).
    assert!(h.read(|s| s.synced_at) >= 10, "{}", h.read(|s| s.synced_at));
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // The shutdown snapshot: taken after all 23, and the hook ran just before it was serialized.
    let store = SnapshotStore::open(&snaps, "syncing", 3).unwrap();
    let restored = runtime::restore(&store, "cfg", journal.last_seq(), Syncing::default).unwrap();
    assert_eq!(restored.position, 23);
    assert_eq!(restored.state.seen, 23);
    assert_eq!(restored.state.synced_at, 23);
}
