//! The platform's own `tracing` events as log records: a [`CaptureLayer`] installed next to the
//! terminal's fmt layer (`telemetry::init_tracing_with`) turns each event into a [`Record`] and
//! offers it to a [`LineSink`], which must never block the thread that logged (the engine, a
//! request handler). In `up` the sink is the logger's bounded queue ([`Intake`]): when it is
//! full the line is dropped and counted in `trade2026_logger_dropped_total{reason="queue_full"}`.
//!
//! The sink is the seam for running services apart (`trade2026 run <service>`): a sink that
//! publishes each record on the bus (`logs.<service>`) instead of a local queue, and a logger
//! that consumes that subject, need no change here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use model::Timestamp;
use serde_json::Value;
use telemetry::Labels;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::family::Family;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

use crate::record::{Level, Record, service_of_target};
use crate::writer::Job;

/// Where captured records go. `offer` must return at once, whatever happens to the record.
pub trait LineSink: Send + Sync + 'static {
    /// Takes a record; `false` when it was dropped.
    fn offer(&self, record: Record) -> bool;
}

/// Lines waiting for the writer by default (about 30 MB of typical lines at most).
pub const DEFAULT_QUEUE: usize = 65_536;
/// Most pushed lines waiting for the writer at once; a push beyond it is refused (503).
pub const PUSH_BUDGET: usize = 1_000_000;
/// Why lines are dropped: the queue was full (captured lines), a push was refused because the
/// writer is behind (503), a write failed, or a millisecond held 2^20 lines already.
pub const DROP_REASONS: [&str; 4] = ["queue_full", "push_refused", "store_failed", "time_slots"];

struct Shared {
    tx: SyncSender<Job>,
    rx: Mutex<Option<Receiver<Job>>>,
    dropped: Family<Labels, Counter>,
    /// Pushed lines queued and not yet written.
    pushed_waiting: AtomicUsize,
}

/// The writer's queue: the capture layer's sink, the HTTP pushes' way in and the journal
/// index's. Created before the logger service (the layer is installed when the process
/// starts), handed to it when it starts. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake").finish_non_exhaustive()
    }
}

impl Intake {
    /// A queue of `capacity` jobs.
    pub fn new(capacity: usize) -> Intake {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let dropped = Family::<Labels, Counter>::default();
        // Every reason shows (at 0) from the start, so an alert rule can watch it.
        for reason in DROP_REASONS {
            let _ = dropped.get_or_create(&vec![("reason", reason.to_owned())]);
        }
        Intake {
            shared: Arc::new(Shared {
                tx,
                rx: Mutex::new(Some(rx)),
                dropped,
                pushed_waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// Starts a thread that takes what is queued and discards it, polling the queue as the
    /// writer does under load (benchmarks of the capture path). Does nothing when a writer
    /// already took the queue.
    pub fn discard(&self) {
        if let Some(rx) = self.take_receiver() {
            std::thread::spawn(move || {
                loop {
                    match rx.try_recv() {
                        Ok(_) => {}
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                    }
                }
            });
        }
    }

    /// The capture layer for this queue, keeping events at `level` or more severe.
    pub fn layer<S>(&self, level: tracing::Level) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        CaptureLayer { sink: self.clone() }.with_filter(LevelFilter::from_level(level))
    }

    /// Drops counted by reason ([`DROP_REASONS`]).
    pub fn dropped(&self) -> Family<Labels, Counter> {
        self.shared.dropped.clone()
    }

    pub(crate) fn count_dropped(&self, reason: &'static str, n: u64) {
        self.shared
            .dropped
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc_by(n);
    }

    /// The receiving end, once (the writer takes it).
    pub(crate) fn take_receiver(&self) -> Option<Receiver<Job>> {
        self.shared
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub(crate) fn sender(&self) -> SyncSender<Job> {
        self.shared.tx.clone()
    }

    /// Queues a push of `n` lines unless the queue or the push budget is full (then `false`,
    /// and the job is dropped: its sender hears nothing, the caller answers 503).
    pub(crate) fn try_push(&self, job: Job, n: usize) -> bool {
        let waiting = self.shared.pushed_waiting.fetch_add(n, Ordering::AcqRel);
        if waiting + n > PUSH_BUDGET && waiting > 0 {
            self.shared.pushed_waiting.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        if self.shared.tx.try_send(job).is_err() {
            self.shared.pushed_waiting.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Queues `records` as one push (waiting for room in the queue); the answer comes once
    /// they are stored (all or none). For tools and tests; HTTP pushes queue the same job
    /// without waiting for room.
    pub fn push_nowait(
        &self,
        records: Vec<Record>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<usize, String>>, String> {
        let n = records.len();
        let (done, stored) = tokio::sync::oneshot::channel();
        self.shared.pushed_waiting.fetch_add(n, Ordering::AcqRel);
        self.shared
            .tx
            .send(Job::Push { records, done })
            .map_err(|_| "the log writer has stopped".to_owned())?;
        Ok(stored)
    }

    /// [`Intake::push_nowait`] and wait until stored: the count, or why not.
    pub fn store_blocking(&self, records: Vec<Record>) -> Result<usize, String> {
        self.push_nowait(records)?
            .blocking_recv()
            .map_err(|_| "the log store could not write these lines".to_owned())?
    }

    /// Waits, at most `wait`, until every line queued before the call is stored: a read's
    /// barrier, since captured lines linger in the writer while nobody waits for them
    /// (`writer::CAPTURED_LINGER`). `false` when it could not wait (the queue is full, the
    /// writer stopped, a write failed or `wait` passed); the read then shows what is stored.
    pub async fn written(&self, wait: std::time::Duration) -> bool {
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.shared.tx.try_send(Job::Flush(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(wait, stored).await, Ok(Ok(())))
    }

    /// The writer took `n` pushed lines off the queue.
    pub(crate) fn pushed_taken(&self, n: usize) {
        self.shared.pushed_waiting.fetch_sub(n, Ordering::AcqRel);
    }
}

impl LineSink for Intake {
    fn offer(&self, record: Record) -> bool {
        match self.shared.tx.try_send(Job::Line(record)) {
            Ok(()) => true,
            Err(_) => {
                self.count_dropped("queue_full", 1);
                false
            }
        }
    }
}

/// A `tracing` layer that hands every event to a [`LineSink`] as a [`Record`].
pub struct CaptureLayer<K: LineSink> {
    pub sink: K,
}

impl<S: Subscriber, K: LineSink> Layer<S> for CaptureLayer<K> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        let mut record = Record::new(
            Timestamp::now(),
            Level::from_tracing(meta.level()),
            service_of_target(target),
            target,
            String::new(),
        );
        event.record(&mut Fields(&mut record));
        self.sink.offer(record.bounded());
    }
}

/// Writes an event's fields into a record (`message` is the text; `order_id`, `account`,
/// `symbol` go to their columns).
struct Fields<'a>(&'a mut Record);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message.push_str(value);
        } else {
            self.0
                .set_field(field.name(), Value::String(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0.message, "{value:?}");
        } else {
            self.0
                .set_field(field.name(), Value::String(format!("{value:?}")));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set_field(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set_field(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set_field(field.name(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set_field(field.name(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// A sink that keeps what it is offered.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<Record>>>);

    impl LineSink for Kept {
        fn offer(&self, record: Record) -> bool {
            self.0.lock().unwrap().push(record);
            true
        }
    }

    #[test]
    fn an_event_becomes_a_record_with_columns_fields_and_its_service() {
        let kept = Kept::default();
        let subscriber = tracing_subscriber::registry().with(CaptureLayer { sink: kept.clone() });
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "gateway::orders",
                order_id = 42u64,
                account = %"acc-1",
                symbol = "BTCUSDT",
                status = ?Some("Accepted"),
                filled = true,
                "order {} accepted",
                42
            );
            tracing::warn!(target: "oms::book", "odd");
        });
        let got = kept.0.lock().unwrap();
        assert_eq!(got.len(), 2);
        let r = &got[0];
        assert_eq!(
            (r.service.as_str(), r.target.as_str(), r.level),
            ("gateway", "gateway::orders", Level::Info)
        );
        assert_eq!(r.message, "order 42 accepted");
        assert_eq!(r.order_id.as_deref(), Some("42"));
        assert_eq!(r.account.as_deref(), Some("acc-1"));
        assert_eq!(r.symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(
            r.fields.get("status"),
            Some(&Value::from("Some(\"Accepted\")"))
        );
        assert_eq!(r.fields.get("filled"), Some(&Value::from(true)));
        assert_eq!(
            (got[1].service.as_str(), got[1].level),
            ("engine", Level::Warn)
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let intake = Intake::new(2);
        let subscriber = tracing_subscriber::registry().with(intake.layer(tracing::Level::INFO));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..5 {
                tracing::info!(i, "line");
            }
            tracing::debug!("below the layer's level: not even offered");
        });
        let dropped = intake
            .dropped()
            .get_or_create(&vec![("reason", "queue_full".to_owned())])
            .get();
        assert_eq!(dropped, 3);
        let rx = intake.take_receiver().unwrap();
        assert_eq!(rx.try_iter().count(), 2);
        assert!(intake.take_receiver().is_none(), "one writer");
    }
}
