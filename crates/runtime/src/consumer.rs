//! The one consumer loop every service runs over the [`Bus`].
//!
//! A service writes a [`Consumer`]: how one batch of journal events changes its state (and which
//! events it publishes in answer, e.g. compliance alerts). The runtime does the rest, the same way
//! for everyone:
//!
//! - **restart**: a [`Snapshot`] consumer loads its newest valid snapshot and replays only the
//!   journal tail after it; a [`StoredPosition`] consumer (whose own store, e.g. SQLite, records
//!   how far it got in the same transaction as its data) resumes right after that position;
//! - **the loop**: batches in sequence order, applied under the state's lock (HTTP handlers read
//!   the same state through [`ConsumerHandle::read`]); blocking store writes are announced to
//!   tokio so they do not stall other tasks;
//! - **output before progress**: events a batch publishes are durable before the consumer's
//!   position moves past the batch, so a snapshot never claims work whose output was lost;
//! - **checkpoints**: snapshots every N events or T seconds and at shutdown, acked to the bus only
//!   once durable (the journal may archive what every consumer has acked);
//! - **read barrier**: [`ConsumerHandle::wait_for`] lets a reader wait until the state includes a
//!   given sequence (read-your-writes after an acknowledged order);
//! - **metrics**: position, lag, events since the last snapshot and its age, per consumer, read
//!   when `/metrics` is rendered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use journal::{Bus, Delivery, JournalError, StartAt, Subscription};
use model::{Event, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use telemetry::Metrics;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::RuntimeError;
use crate::partition::Partitioning;
use crate::snapshot::{Expect, Rejected, SnapshotMeta, SnapshotStore};

/// A journal consumer: a fold of events into state, plus the events it publishes in answer.
pub trait Consumer: Send + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds `batch` (in sequence order). Events pushed to `out` are published on the bus after
    /// the batch, and are durable before the consumer's position moves past it.
    fn apply(&mut self, batch: &[Delivery], out: &mut Vec<Event>) -> Result<(), Self::Error>;

    /// Called every [`Spec::tick`] with the wall clock, for output that time alone triggers.
    fn tick(&mut self, now: Timestamp, out: &mut Vec<Event>) -> Result<(), Self::Error> {
        let _ = (now, out);
        Ok(())
    }
}

/// A consumer whose state is a pure fold, restored from snapshots.
pub trait Snapshot: Consumer + Serialize + DeserializeOwned {
    /// The layout version of the serialized state. Bump it when the layout changes: snapshots
    /// of another version are skipped (the consumer replays from the beginning instead).
    const STATE_VERSION: u32;

    /// Called just before the state is serialized for a snapshot: makes durable whatever the
    /// snapshot will assume is durable. A consumer that writes history to a store of its own
    /// with deferred syncs (rows the snapshot no longer holds) syncs that store here, once per
    /// snapshot instead of once per batch.
    fn before_snapshot(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A consumer whose own store records, atomically with its data, the last sequence applied.
pub trait StoredPosition: Consumer {
    fn stored_position(&self) -> Result<u64, Self::Error>;
}

/// What a consumer reads and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The durable consumer name (also the snapshot folder and the metrics label).
    pub name: &'static str,
    /// NATS-style subject filter (`>` for everything, `orders.*`, `md.>`).
    pub filter: String,
    /// Most deliveries folded per batch.
    pub batch: usize,
    /// Calls [`Consumer::tick`] at this period when set.
    pub tick: Option<Duration>,
    /// Lingers [`STORE_LINGER`] instead of [`LINGER`] on a runner that lingers
    /// ([`Runner::in_background`]); see [`Spec::read_through_wait`].
    pub store_linger: bool,
}

impl Spec {
    pub fn new(name: &'static str, filter: impl Into<String>) -> Spec {
        Spec {
            name,
            filter: filter.into(),
            batch: 1_024,
            tick: None,
            store_linger: false,
        }
    }

    /// For a consumer whose result is a store that every read reaches through
    /// [`ConsumerHandle::wait_for`] (a waiting read ends the linger at once): it may gather
    /// events for [`STORE_LINGER`] and write them in one transaction, since no reader sees the
    /// difference. Not for consumers whose output is pushed (alerts, features, streams).
    pub fn read_through_wait(mut self) -> Spec {
        self.store_linger = true;
        self.batch = self.batch.max(STORE_BATCH);
        self
    }

    pub fn with_tick(mut self, every: Duration) -> Spec {
        self.tick = Some(every);
        self
    }
}

/// When a snapshot consumer writes snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// After this many events applied since the last snapshot.
    pub every_events: u64,
    /// Or after this much time, if anything was applied.
    pub every: Duration,
    /// Snapshot files kept (older ones are the fallback when the newest is damaged).
    pub keep: usize,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_events: 50_000,
            every: Duration::from_secs(60),
            keep: 3,
        }
    }
}

type Series = Family<Vec<(&'static str, String)>, Gauge>;

/// Per-consumer Prometheus series in one service's registry. The values are read from the
/// consumers when `/metrics` is rendered, so a stuck consumer's lag keeps growing on the page
/// instead of showing what it was at its last batch.
#[derive(Clone)]
pub struct ConsumerMetrics {
    position: Series,
    lag: Series,
    snapshot_seq: Series,
    since_snapshot: Series,
    snapshot_age: Series,
    watched: Arc<Mutex<Vec<Watched>>>,
}

/// A consumer whose series this registry shows.
/// Reads the bus's head: the last durable sequence.
type Head = Arc<dyn Fn() -> u64 + Send + Sync>;

struct Watched {
    name: &'static str,
    position: watch::Receiver<u64>,
    progress: Arc<Progress>,
    /// The bus head (what the consumer must reach).
    head: Head,
    snapshotted: bool,
}

impl ConsumerMetrics {
    /// Registers the consumer series in `metrics` (a service's registry); consumers started by
    /// a runner with these metrics appear there.
    pub fn register(metrics: &Metrics) -> ConsumerMetrics {
        let m = ConsumerMetrics {
            position: Family::default(),
            lag: Family::default(),
            snapshot_seq: Family::default(),
            since_snapshot: Family::default(),
            snapshot_age: Family::default(),
            watched: Arc::default(),
        };
        metrics.register(
            "consumer_position",
            "Last journal sequence a consumer has applied",
            m.position.clone(),
        );
        metrics.register(
            "consumer_lag_events",
            "Journal events stored but not yet applied by a consumer",
            m.lag.clone(),
        );
        metrics.register(
            "consumer_snapshot_seq",
            "Journal sequence of a consumer's newest durable snapshot",
            m.snapshot_seq.clone(),
        );
        metrics.register(
            "consumer_events_since_snapshot",
            "Events a consumer applied since its newest snapshot (what a crash would replay)",
            m.since_snapshot.clone(),
        );
        metrics.register(
            "consumer_snapshot_age_seconds",
            "Seconds since a snapshotted consumer's newest durable snapshot (since its start when it has none yet)",
            m.snapshot_age.clone(),
        );
        // Process-wide (one lane per process), shown wherever consumers are.
        let raises = telemetry::SampledCounter::default();
        metrics.register(
            "background_lane_raises",
            "Times the background lane (consumers, log store) was starved of CPU and raised to the normal scheduling class",
            raises.clone(),
        );
        let refreshed = m.clone();
        metrics.on_scrape(move || {
            refreshed.refresh(Timestamp::now());
            raises.set(crate::background::lane_raises() as f64);
        });
        m
    }

    fn labels(name: &str) -> Vec<(&'static str, String)> {
        vec![("consumer", name.to_owned())]
    }

    fn watch(&self, consumer: Watched) {
        let mut watched = lock(&self.watched);
        // A consumer started again (a test restarting it in process) replaces its old entry.
        watched.retain(|w| w.name != consumer.name);
        watched.push(consumer);
    }

    fn refresh(&self, now: Timestamp) {
        for w in lock(&self.watched).iter() {
            let labels = Self::labels(w.name);
            let position = *w.position.borrow();
            let p = &w.progress;
            self.position.get_or_create(&labels).set(to_i64(position));
            self.lag
                .get_or_create(&labels)
                .set(to_i64((w.head)().saturating_sub(position)));
            self.since_snapshot
                .get_or_create(&labels)
                .set(to_i64(p.since_snapshot.load(Ordering::Acquire)));
            self.snapshot_seq
                .get_or_create(&labels)
                .set(to_i64(p.snapshot_seq.load(Ordering::Acquire)));
            if w.snapshotted {
                let at = p.snapshot_at_ns.load(Ordering::Acquire);
                let age_ns = now.as_nanos().saturating_sub(at).max(0);
                self.snapshot_age
                    .get_or_create(&labels)
                    .set(age_ns / 1_000_000_000);
            }
        }
    }
}

/// Shared view of a running consumer: its state (for HTTP handlers), its position and progress.
pub struct ConsumerHandle<C> {
    name: &'static str,
    state: Arc<Mutex<C>>,
    position: watch::Receiver<u64>,
    progress: Arc<Progress>,
    /// The bus's head: what [`ConsumerHandle::caught_up`] waits for.
    head: Head,
}

impl<C> Clone for ConsumerHandle<C> {
    fn clone(&self) -> Self {
        ConsumerHandle {
            name: self.name,
            state: Arc::clone(&self.state),
            position: self.position.clone(),
            progress: Arc::clone(&self.progress),
            head: Arc::clone(&self.head),
        }
    }
}

/// Counters the loop updates and readers (health, tests) look at.
#[derive(Debug, Default)]
struct Progress {
    /// The bus head when the consumer started: it is ready once its position reaches it.
    start_head: AtomicU64,
    ready: AtomicBool,
    snapshot_seq: AtomicU64,
    since_snapshot: AtomicU64,
    snapshots_written: AtomicU64,
    /// When the newest durable snapshot was written (unix ns; the consumer's start before the
    /// first).
    snapshot_at_ns: std::sync::atomic::AtomicI64,
    /// A reader waits for a sequence the consumer has not applied: a lingering batch is folded
    /// at once instead of at the end of its linger.
    hurry: tokio::sync::Notify,
    /// The highest sequence a reader has waited for: the consumer does not linger again until
    /// it has applied it (one notification ends one linger; a reader behind several batches
    /// would otherwise wait out a linger per batch).
    wanted: AtomicU64,
}

/// A reader waited longer than its deadline for a consumer to reach a sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer {consumer} is at {position}, behind {wanted}, after waiting {waited_ms} ms")]
pub struct Lagging {
    pub consumer: &'static str,
    pub position: u64,
    pub wanted: u64,
    pub waited_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<C> ConsumerHandle<C> {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Reads the state (briefly: the consumer waits while a reader holds it).
    pub fn read<T>(&self, f: impl FnOnce(&C) -> T) -> T {
        f(&lock(&self.state))
    }

    /// The last sequence applied.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Caught up with what the bus held when the consumer started.
    pub fn is_ready(&self) -> bool {
        self.progress.ready.load(Ordering::Acquire)
    }

    /// The sequence of the newest durable snapshot (0 before the first).
    pub fn snapshot_seq(&self) -> u64 {
        self.progress.snapshot_seq.load(Ordering::Acquire)
    }

    /// Events applied since the newest snapshot: what a crash now would replay.
    pub fn events_since_snapshot(&self) -> u64 {
        self.progress.since_snapshot.load(Ordering::Acquire)
    }

    pub fn snapshots_written(&self) -> u64 {
        self.progress.snapshots_written.load(Ordering::Acquire)
    }

    /// Waits until the consumer has applied `seq` (events on subjects it does not read count as
    /// applied once it has read past them), at most `timeout`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), Lagging> {
        let started = Instant::now();
        let mut rx = self.position.clone();
        if *rx.borrow() < seq {
            self.progress.wanted.fetch_max(seq, Ordering::AcqRel);
            self.progress.hurry.notify_one();
        }
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= seq)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Lagging {
                consumer: self.name,
                position: self.position(),
                wanted: seq,
                waited_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }

    /// A read's barrier: waits, at most `timeout`, until the consumer has applied everything
    /// durable on the bus when called, so the read shows every event acknowledged before it
    /// (and ends a [`Spec::read_through_wait`] consumer's linger).
    pub async fn caught_up(&self, timeout: Duration) -> Result<(), Lagging> {
        self.wait_for((self.head)(), timeout).await
    }
}

/// Where a consumer starts, and what a snapshot restore skipped.
#[derive(Debug)]
pub struct Restored<C> {
    pub state: C,
    /// The last sequence the state reflects (0: nothing, replay from the beginning).
    pub position: u64,
    pub snapshot: Option<SnapshotMeta>,
    pub rejected: Vec<Rejected>,
}

/// Loads the newest valid snapshot of `C` (or `init()` when none is usable). `max_seq` is the
/// journal's last sequence: a snapshot claiming more belongs to another journal.
pub fn restore<C: Snapshot>(
    store: &SnapshotStore,
    fingerprint: &str,
    max_seq: u64,
    init: impl FnOnce() -> C,
) -> Result<Restored<C>, RuntimeError> {
    let expect = Expect {
        state_version: C::STATE_VERSION,
        fingerprint: fingerprint.to_owned(),
        max_seq,
    };
    let (found, rejected) = store.load(&expect, |b| {
        serde_json::from_slice::<C>(b).map_err(|e| e.to_string())
    })?;
    Ok(match found {
        Some((meta, state)) => {
            tracing::info!(
                snapshot = %store.dir().display(),
                seq = meta.seq,
                skipped = rejected.len(),
                "consumer state restored from a snapshot; replaying the journal after it"
            );
            Restored {
                state,
                position: meta.seq,
                snapshot: Some(meta),
                rejected,
            }
        }
        None => {
            if !rejected.is_empty() {
                tracing::warn!(
                    snapshot = %store.dir().display(),
                    skipped = rejected.len(),
                    "no usable snapshot; replaying the whole journal"
                );
            }
            Restored {
                state: init(),
                position: 0,
                snapshot: None,
                rejected,
            }
        }
    })
}

/// Starts consumers on one bus; every consumer shares the shutdown token and metrics.
#[derive(Clone)]
pub struct Runner<B: Bus> {
    bus: B,
    shutdown: CancellationToken,
    metrics: ConsumerMetrics,
    /// Set for a partitioned replica: every consumer it starts applies only its share.
    partitioning: Option<Partitioning>,
    /// Where the consumers run: the background runtime, or (`None`) the caller's.
    lane: Option<tokio::runtime::Handle>,
    /// How long a consumer lets a small batch grow before folding it (see [`LINGER`]).
    linger: Option<Duration>,
}

/// How long a background consumer lets a batch smaller than [`Spec::batch`] grow before folding
/// it. A store-backed consumer pays a transaction (and a WAL write, for some an fsync) per
/// batch: at 1000 orders/s, folding every commit on its own cost ~0.65 ms of CPU per order over
/// the consumers; gathering 20 ms of events makes that one transaction per 20 ms. A consumer
/// that is behind gets full batches and never lingers; a reader waiting for a sequence
/// ([`ConsumerHandle::wait_for`]) ends the linger at once, so reads stay as fresh as before.
pub const LINGER: Duration = Duration::from_millis(20);

/// The linger of a consumer marked [`Spec::read_through_wait`]. Its transactions write each
/// page they change in full (into the WAL, and again at the checkpoint), and at 1000 orders/s a
/// 20 ms batch of an index spread over the accounts changes nearly as many pages as a full one:
/// at 1000 orders/s the platform dirtied 45 KB per order with every consumer at 20 ms and 27 KB
/// with the blotter, execution-quality and order-timeline stores at 1 s (the journal's own
/// share is ~10 KB, on the same disk as its fsync; docs/BENCHMARKS.md). Full batches
/// ([`Spec::batch`]) still fold at once.
pub const STORE_LINGER: Duration = Duration::from_secs(1);

/// The batch size of a consumer marked [`Spec::read_through_wait`]: a full batch ends the
/// linger (see `grow`), and `up` journals ~3,000 events a second at 1000 orders/s, so the
/// default 1,024 would cut the linger to a third of a second. Below the lag alert's 10,000.
pub const STORE_BATCH: usize = 8_192;

/// Serializes a snapshot consumer's state (after [`Snapshot::before_snapshot`]).
type SaveFn<C> = fn(&mut C) -> Result<Vec<u8>, String>;

/// How the loop makes progress durable.
enum Checkpoint<C> {
    /// The consumer's store committed the batch; just ack.
    Stored,
    Snapshots {
        store: SnapshotStore,
        policy: SnapshotPolicy,
        fingerprint: String,
        version: u32,
        save: SaveFn<C>,
        written_at: Instant,
        written_seq: u64,
    },
}

fn save_json<C: Snapshot>(c: &mut C) -> Result<Vec<u8>, String> {
    c.before_snapshot()
        .map_err(|e| format!("state could not be made durable: {e}"))?;
    serde_json::to_vec(c).map_err(|e| format!("state does not serialize: {e}"))
}

impl<B: Bus> Runner<B> {
    pub fn new(bus: B, metrics: ConsumerMetrics, shutdown: CancellationToken) -> Runner<B> {
        Runner {
            bus,
            shutdown,
            metrics,
            partitioning: None,
            lane: None,
            linger: None,
        }
    }

    /// The same runner starting its consumers on the [`crate::background`] runtime, below the
    /// order path's priority, folding batches of up to [`LINGER`] (`up` and the core's process).
    pub fn in_background(mut self) -> Runner<B> {
        self.lane = crate::background::background();
        self.linger = Some(LINGER);
        self
    }

    /// The same runner for a partitioned replica: each consumer it starts drops the events
    /// whose key belongs to another replica before `apply` (events without a key reach every
    /// replica) and moves its position past them (see [`crate::partition`]).
    pub fn partitioned(mut self, partitioning: Partitioning) -> Runner<B> {
        self.partitioning = Some(partitioning);
        self
    }

    pub fn partitioning(&self) -> Option<&Partitioning> {
        self.partitioning.as_ref()
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// The same runner reporting its consumers in another service's registry: each service's
    /// `/metrics` shows the consumers it owns.
    pub fn with_metrics(&self, metrics: ConsumerMetrics) -> Runner<B> {
        Runner {
            bus: self.bus.clone(),
            shutdown: self.shutdown.clone(),
            metrics,
            partitioning: self.partitioning.clone(),
            lane: self.lane.clone(),
            linger: self.linger,
        }
    }

    /// Starts a consumer whose store records its position.
    pub async fn start_stored<C: StoredPosition>(
        &self,
        spec: Spec,
        consumer: C,
    ) -> Result<(ConsumerHandle<C>, JoinHandle<Result<(), RuntimeError>>), RuntimeError> {
        let position = consumer
            .stored_position()
            .map_err(|e| RuntimeError::consumer(spec.name, 0, e))?;
        self.spawn(spec, consumer, position, Checkpoint::Stored)
            .await
    }

    /// Restores a snapshot consumer (newest valid snapshot, else `init()`) and starts it.
    pub async fn start_snapshotted<C: Snapshot>(
        &self,
        spec: Spec,
        store: SnapshotStore,
        policy: SnapshotPolicy,
        fingerprint: String,
        init: impl FnOnce() -> C,
    ) -> Result<(ConsumerHandle<C>, JoinHandle<Result<(), RuntimeError>>), RuntimeError> {
        let restored = restore(&store, &fingerprint, self.bus.last_seq(), init)?;
        self.start_restored(spec, store, policy, fingerprint, restored)
            .await
    }

    /// Starts a snapshot consumer from a state restored by the caller (who may have replayed
    /// part of the tail already: `restored.position` says how far).
    pub async fn start_restored<C: Snapshot>(
        &self,
        spec: Spec,
        store: SnapshotStore,
        policy: SnapshotPolicy,
        fingerprint: String,
        restored: Restored<C>,
    ) -> Result<(ConsumerHandle<C>, JoinHandle<Result<(), RuntimeError>>), RuntimeError> {
        let written_seq = restored.snapshot.as_ref().map_or(0, |m| m.seq);
        let written_at = restored.snapshot.as_ref().map(|m| m.written_at);
        let checkpoint = Checkpoint::Snapshots {
            store,
            policy,
            fingerprint,
            version: C::STATE_VERSION,
            save: save_json::<C>,
            written_at: Instant::now(),
            written_seq,
        };
        let (handle, task) = self
            .spawn(spec, restored.state, restored.position, checkpoint)
            .await?;
        handle
            .progress
            .snapshot_seq
            .store(written_seq, Ordering::Release);
        if let Some(at) = written_at {
            handle
                .progress
                .snapshot_at_ns
                .store(at.as_nanos(), Ordering::Release);
        }
        Ok((handle, task))
    }

    async fn spawn<C: Consumer>(
        &self,
        spec: Spec,
        consumer: C,
        position: u64,
        checkpoint: Checkpoint<C>,
    ) -> Result<(ConsumerHandle<C>, JoinHandle<Result<(), RuntimeError>>), RuntimeError> {
        let sub = self
            .bus
            .subscribe(spec.name, &spec.filter, StartAt::Sequence(position + 1))
            .await
            .map_err(|e| RuntimeError::Bus {
                consumer: spec.name,
                source: e,
            })?;
        let (tx, rx) = watch::channel(position);
        let progress = Arc::new(Progress::default());
        let head = self.bus.last_seq();
        progress.start_head.store(head, Ordering::Release);
        progress.ready.store(position >= head, Ordering::Release);
        progress
            .snapshot_at_ns
            .store(Timestamp::now().as_nanos(), Ordering::Release);
        let bus = self.bus.clone();
        let bus_head: Head = Arc::new(move || bus.last_seq());
        self.metrics.watch(Watched {
            name: spec.name,
            position: rx.clone(),
            progress: Arc::clone(&progress),
            head: Arc::clone(&bus_head),
            snapshotted: matches!(checkpoint, Checkpoint::Snapshots { .. }),
        });
        let handle = ConsumerHandle {
            name: spec.name,
            state: Arc::new(Mutex::new(consumer)),
            position: rx,
            progress,
            head: bus_head,
        };
        let run = run_loop(
            self.bus.clone(),
            sub,
            spec,
            handle.clone(),
            tx,
            checkpoint,
            self.partitioning.clone(),
            self.linger,
            self.shutdown.clone(),
        );
        let task = match &self.lane {
            Some(lane) => lane.spawn(run),
            None => tokio::spawn(run),
        };
        Ok((handle, task))
    }
}

/// Runs `f` on the state, telling a multi-threaded tokio runtime that it may block (store
/// writes), so other tasks move to another worker meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_loop<B: Bus, C: Consumer>(
    bus: B,
    mut sub: B::Subscription,
    spec: Spec,
    handle: ConsumerHandle<C>,
    position: watch::Sender<u64>,
    mut checkpoint: Checkpoint<C>,
    partitioning: Option<Partitioning>,
    linger: Option<Duration>,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let name = spec.name;
    let linger = linger.map(|l| if spec.store_linger { STORE_LINGER } else { l });
    let mut out: Vec<Event> = Vec::new();
    // The first tick one period from now, not at once: a start catches up first (a tick can be
    // costly, and a consumer is not ready before it has caught up).
    let mut ticker = spec
        .tick
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let mut applied = *position.borrow();
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            batch = sub.next_batch(spec.batch) => {
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(JournalError::Closed) => break,
                    Err(e) => return Err(RuntimeError::Bus { consumer: name, source: e }),
                };
                if let Some(linger) = linger
                    && batch.len() < spec.batch
                    && handle.is_ready()
                    && handle.progress.wanted.load(Ordering::Acquire) <= applied
                {
                    let head = || (handle.head)();
                    match grow(&mut sub, &mut batch, spec.batch, linger, &handle.progress, &shutdown, head).await {
                        Ok(()) => {}
                        Err(JournalError::Closed) => break,
                        Err(e) => return Err(RuntimeError::Bus { consumer: name, source: e }),
                    }
                    // Shutdown came during the linger: the batch is left for the next start
                    // (nothing of it is applied or acknowledged), as for a batch that arrives
                    // after shutdown; what the consumer writes to may be stopping already.
                    if shutdown.is_cancelled() {
                        break;
                    }
                }
                // Past the batch, and past whatever the filter skipped.
                let last = sub.scanned().max(batch.last().map_or(0, |d| d.seq));
                if last <= applied {
                    continue;
                }
                // Another replica's events: dropped here, passed over like filtered subjects.
                if let Some(p) = &partitioning {
                    batch.retain(|d| p.keeps(&d.event));
                }
                if let Some(first) = batch.first().map(|d| d.seq) {
                    blocking(|| lock(&handle.state).apply(&batch, &mut out))
                        .map_err(|e| RuntimeError::consumer(name, first, e))?;
                }
                if !out.is_empty() {
                    bus.publish_all(std::mem::take(&mut out))
                        .await
                        .map_err(|e| RuntimeError::Bus { consumer: name, source: e })?;
                }
                let newly = last.saturating_sub(applied);
                applied = last;
                let p = &handle.progress;
                if !p.ready.load(Ordering::Relaxed) && last >= p.start_head.load(Ordering::Relaxed) {
                    p.ready.store(true, Ordering::Release);
                    tracing::info!(consumer = name, position = last, "consumer caught up");
                }
                position.send_replace(last);
                p.since_snapshot.fetch_add(newly, Ordering::AcqRel);
                checkpoint_after_batch(&mut sub, &mut checkpoint, &handle, last, false).await?;
            }
            _ = tick => {
                blocking(|| lock(&handle.state).tick(Timestamp::now(), &mut out))
                    .map_err(|e| RuntimeError::consumer(name, applied, e))?;
                if !out.is_empty() {
                    bus.publish_all(std::mem::take(&mut out))
                        .await
                        .map_err(|e| RuntimeError::Bus { consumer: name, source: e })?;
                }
                // A quiet consumer still snapshots what it applied once the period has passed.
                checkpoint_after_batch(&mut sub, &mut checkpoint, &handle, applied, false).await?;
            }
        }
    }
    // A clean stop leaves a snapshot of everything applied, so the next start replays nothing.
    checkpoint_after_batch(&mut sub, &mut checkpoint, &handle, applied, true).await
}

/// How often a lingering consumer looks whether a full batch is waiting.
const FULL_BATCH_CHECK: Duration = Duration::from_millis(50);

/// Lets `batch` grow for `linger` (or until a reader hurries the consumer, a full batch is
/// waiting, or shutdown), then takes what arrived meanwhile, up to `max`, without waiting for
/// more. The full-batch check keeps a consumer's lag under about `max` events plus 50 ms of
/// them at any rate (the lag alert's threshold is 10,000 events), whatever its linger.
async fn grow<S: Subscription>(
    sub: &mut S,
    batch: &mut Vec<Delivery>,
    max: usize,
    linger: Duration,
    progress: &Progress,
    shutdown: &CancellationToken,
    head: impl Fn() -> u64,
) -> Result<(), JournalError> {
    let from = batch.first().map_or(0, |d| d.seq);
    let full = async {
        loop {
            tokio::time::sleep(FULL_BATCH_CHECK).await;
            if head().saturating_sub(from) >= max as u64 {
                break;
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(linger) => {}
        _ = progress.hurry.notified() => {}
        _ = full => {}
        _ = shutdown.cancelled() => {}
    }
    while batch.len() < max {
        // Polled once: what is already there, never a wait.
        match tokio::time::timeout(Duration::ZERO, sub.next_batch(max - batch.len())).await {
            Ok(Ok(more)) if !more.is_empty() => batch.extend(more),
            Ok(Err(e)) => return Err(e),
            _ => break,
        }
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn checkpoint_after_batch<S: Subscription, C: Consumer>(
    sub: &mut S,
    checkpoint: &mut Checkpoint<C>,
    handle: &ConsumerHandle<C>,
    applied: u64,
    final_one: bool,
) -> Result<(), RuntimeError> {
    let name = handle.name;
    let ack = |e| RuntimeError::Bus {
        consumer: name,
        source: e,
    };
    match checkpoint {
        Checkpoint::Stored => {
            if applied > 0 {
                sub.ack(applied).await.map_err(ack)?;
            }
            handle.progress.since_snapshot.store(0, Ordering::Release);
            Ok(())
        }
        Checkpoint::Snapshots {
            store,
            policy,
            fingerprint,
            version,
            save,
            written_at,
            written_seq,
        } => {
            let since = applied.saturating_sub(*written_seq);
            let due = since > 0
                && (final_one
                    || since >= policy.every_events
                    || written_at.elapsed() >= policy.every);
            if !due {
                return Ok(());
            }
            let payload = blocking(|| save(&mut lock(&handle.state))).map_err(|reason| {
                RuntimeError::Snapshot {
                    consumer: name.to_owned(),
                    reason,
                }
            })?;
            let (store2, fp, version) = (store.clone(), fingerprint.clone(), *version);
            tokio::task::spawn_blocking(move || store2.write(applied, version, &fp, &payload))
                .await
                .map_err(|e| RuntimeError::Snapshot {
                    consumer: name.to_owned(),
                    reason: format!("writer task failed: {e}"),
                })??;
            *written_seq = applied;
            *written_at = Instant::now();
            let p = &handle.progress;
            p.snapshot_seq.store(applied, Ordering::Release);
            p.snapshot_at_ns
                .store(Timestamp::now().as_nanos(), Ordering::Release);
            p.since_snapshot.store(0, Ordering::Release);
            p.snapshots_written.fetch_add(1, Ordering::AcqRel);
            // Acked only now: the journal may archive what every consumer has acked.
            sub.ack(applied).await.map_err(ack)?;
            Ok(())
        }
    }
}

/// One run of [`restart_equivalence`]: the final state serialized, and everything published.
pub type RunResult = (String, Vec<Event>);

/// For consumers' property tests: folds `batches` uninterrupted, and again with a restart after
/// batch `cut` (the state serialized as a snapshot and restored), and returns both final states
/// serialized plus everything each run published. A consumer is restart-safe when the two are
/// equal for every stream and cut.
pub fn restart_equivalence<C: Snapshot>(
    make: impl Fn() -> C,
    batches: &[Vec<Delivery>],
    cut: usize,
) -> Result<(RunResult, RunResult), String> {
    let run = |restart_at: Option<usize>| -> Result<RunResult, String> {
        let mut state = make();
        let mut out = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            if restart_at == Some(i) {
                let bytes = save_json(&mut state)?;
                state = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            }
            state.apply(batch, &mut out).map_err(|e| e.to_string())?;
        }
        let end = serde_json::to_string(&state).map_err(|e| e.to_string())?;
        Ok((end, out))
    };
    Ok((run(None)?, run(Some(cut))?))
}

/// Reads the bus from `from` through `to` (both inclusive) and hands each batch to `f`: for a
/// component that rebuilds its state before it goes live (the trading engine replays the
/// journal tail after its snapshot this way). Returns the last sequence read past.
pub async fn replay<B: Bus, E>(
    bus: &B,
    name: &'static str,
    filter: &str,
    from: u64,
    to: u64,
    mut f: impl FnMut(&[Delivery]) -> Result<(), E>,
) -> Result<u64, ReplayError<E>> {
    if from > to {
        return Ok(to);
    }
    let mut sub = bus
        .subscribe(name, filter, StartAt::Sequence(from))
        .await
        .map_err(ReplayError::Bus)?;
    let mut scanned = from - 1;
    while scanned < to {
        let batch = sub.next_batch(4_096).await.map_err(ReplayError::Bus)?;
        let upto: Vec<Delivery> = batch.into_iter().filter(|d| d.seq <= to).collect();
        if !upto.is_empty() {
            f(&upto).map_err(ReplayError::Apply)?;
        }
        scanned = sub.scanned();
    }
    Ok(to)
}

/// Why [`replay`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E> {
    #[error("reading the journal: {0}")]
    Bus(JournalError),
    #[error(transparent)]
    Apply(E),
}
