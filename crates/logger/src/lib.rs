//! The logger (port 8112): what every service logged, searchable, and what happened to an
//! order, in one place.
//!
//! - **In**: the platform's own `tracing` events through [`capture`] (a layer next to the
//!   terminal's, a bounded queue that drops and counts rather than block); lines other programs
//!   push in Loki's format ([`loki`]: JSON or protobuf+Snappy, so Promtail, Alloy, Vector and
//!   Docker's driver work) or as NDJSON ([`ingest`]); and the journal's order events
//!   ([`OrderIndex`], a runtime consumer of [`timeline::SUBJECTS`]).
//! - **Kept**: one SQLite file with an FTS5 index ([`store`]), written in batches by one thread
//!   ([`writer`]), trimmed by age and size oldest first.
//! - **Out**: `GET /logs` (search, paged newest first), `GET /logs/tail` (server-sent events),
//!   `GET /orders/{id}/timeline` ([`timeline`]) — see [`http`].
//!
//! Pure parts (records, queries, push decoding, the timeline merge) do no I/O; the store, the
//! writer thread and the HTTP routes are thin shells around them.

pub mod bench;
pub mod capture;
pub mod http;
pub mod ingest;
pub mod loki;
pub mod query;
pub mod record;
pub mod store;
pub mod timeline;
pub mod writer;

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use journal::{Bus, Delivery};
use model::{Event, Timestamp};
use runtime::{Consumer, ConsumerHandle, Runner, RuntimeError, Spec, StoredPosition};
use telemetry::Metrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use capture::{CaptureLayer, Intake, LineSink};
pub use http::{LogsApi, routes};
pub use record::{Level, Record};
pub use store::{Retention, Store};

/// The OpenAPI document of the routes, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The store's file name under the data directory.
pub const FILE_NAME: &str = "logs.db";
/// The order index's durable consumer name.
pub const INDEX: &str = "logger-orders";

#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    #[error("log store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("log store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("more than 1048576 lines share the millisecond of {0}")]
    MillisecondFull(Timestamp),
    #[error("the log writer has stopped")]
    WriterStopped,
    #[error("the log writer was already started on this intake")]
    IntakeTaken,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Settings of the service (`logger` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggerConfig {
    pub retention: Retention,
}

/// The journal consumer that indexes order events for timelines, in the store's own
/// transactions (with the position: a restart resumes exactly after it).
pub struct OrderIndex {
    tx: SyncSender<writer::Job>,
    store: Store,
    shutdown: CancellationToken,
}

impl Consumer for OrderIndex {
    type Error = LoggerError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), LoggerError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let events: Vec<timeline::OrderEvent> = batch
            .iter()
            .flat_map(|d| timeline::index_rows(d.seq, &d.event))
            .collect();
        // A failing write (a full disk) holds the index back, never the platform: it retries
        // until the write succeeds or the platform stops.
        loop {
            let (done, answer) = std::sync::mpsc::sync_channel(1);
            self.tx
                .send(writer::Job::Index {
                    events: events.clone(),
                    position: last.seq,
                    done,
                })
                .map_err(|_| LoggerError::WriterStopped)?;
            match answer.recv() {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => tracing::warn!(error = %e, "order index write failed; retrying"),
                Err(_) => tracing::warn!("order index write failed; retrying"),
            }
            if self.shutdown.is_cancelled() {
                return Err(LoggerError::WriterStopped);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl StoredPosition for OrderIndex {
    fn stored_position(&self) -> Result<u64, LoggerError> {
        self.store.journal_position()
    }
}

/// The running service.
pub struct LoggerService {
    pub store: Store,
    pub intake: Intake,
    pub tail: writer::Tail,
    pub index: ConsumerHandle<OrderIndex>,
    /// `(name, task)`: the order index and the writer (which ends after the shutdown drained it).
    pub tasks: Vec<(&'static str, JoinHandle<Result<(), RuntimeError>>)>,
}

impl LoggerService {
    /// The HTTP routes; tail streams end at `shutdown`.
    pub fn router(
        &self,
        keys: auth::ApiKeys,
        max_streams: usize,
        shutdown: CancellationToken,
    ) -> axum::Router {
        routes(
            LogsApi::new(
                self.store.clone(),
                self.intake.clone(),
                self.tail.clone(),
                keys,
                max_streams,
                shutdown,
            )
            .with_index_barrier(self.index.clone()),
        )
    }
}

/// The running writer thread and what reads what it writes.
pub struct WriterHandle {
    pub store: Store,
    pub tail: writer::Tail,
    stop: SyncSender<writer::Job>,
    thread: std::thread::JoinHandle<()>,
}

impl WriterHandle {
    /// Lets the writer store what is queued, then waits for it to stop.
    pub fn stop(self) {
        let _ = self.stop.send(writer::Job::Stop);
        let _ = self.thread.join();
    }
}

/// Opens (or creates) the store at `path` and starts its writer thread on `intake`'s queue,
/// with its metrics registered in `metrics`.
pub fn spawn_writer(
    path: &Path,
    intake: &Intake,
    retention: Retention,
    metrics: &Metrics,
) -> Result<WriterHandle, LoggerError> {
    let store = Store::open(path)?;
    let db = store::Writer::open(path)?;
    let rx = intake.take_receiver().ok_or(LoggerError::IntakeTaken)?;
    let wm = writer::WriterMetrics::new();
    metrics.register(
        "logger_dropped",
        "Log lines the logger dropped instead of blocking or storing, by reason",
        intake.dropped(),
    );
    metrics.register("logger_lines", "Log lines stored", wm.lines.clone());
    metrics.register(
        "logger_retention_deleted_lines",
        "Log lines deleted by retention (age or size)",
        wm.deleted.clone(),
    );
    metrics.register(
        "logger_store_bytes",
        "Bytes the log store uses",
        wm.bytes.clone(),
    );
    metrics.register(
        "logger_write_batch_seconds",
        "Time to write one batch of log lines (one transaction)",
        wm.batch_seconds.clone(),
    );
    let (tail, _) = tokio::sync::broadcast::channel(1024);
    let writer_intake = intake.clone();
    let writer_tail = tail.clone();
    // The writer follows the background lane's class, which the lane's watchdog raises when
    // the machine starves it: the lane (and so its watchdog) must be running.
    let _ = runtime::background::background();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            // Storing log lines is background work: below the order path that emits them. The
            // capture queue drops (and counts) rather than block a logging thread, so an idle-
            // class writer never holds the order path up; the lane's watchdog raises it with
            // the lane when the machine starves both.
            runtime::background::idle_this_thread();
            writer::run(db, rx, writer_intake, writer_tail, retention, wm)
        })
        .map_err(|source| LoggerError::Io {
            path: "log-writer thread".into(),
            source,
        })?;
    Ok(WriterHandle {
        store,
        tail,
        stop: intake.sender(),
        thread,
    })
}

/// Starts the writer thread on `intake` (the queue the capture layer already feeds) over
/// `<data_dir>/logs.db`, and the order index over `runner`'s bus.
pub async fn start<B: Bus>(
    runner: &Runner<B>,
    data_dir: &Path,
    intake: Intake,
    config: LoggerConfig,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<LoggerService, LoggerError> {
    let writer = spawn_writer(
        &data_dir.join(FILE_NAME),
        &intake,
        config.retention,
        metrics,
    )?;
    let store = writer.store.clone();
    let tail = writer.tail.clone();
    // At shutdown the writer finishes what is queued, then stops, but only once the order
    // index (which writes through it) has stopped too: stopped first, it failed the index's
    // batch in flight and with it the platform's exit.
    let (index_running, index_stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = shutdown.clone();
    let writer_task = tokio::spawn(async move {
        stopping.cancelled().await;
        let _ = index_stopped.await;
        let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
        Ok(())
    });
    let (index, index_task) = runner
        .start_stored(
            // Every timeline read waits for the index (`http.rs`, READ_BARRIER).
            Spec::new(INDEX, timeline::SUBJECTS).read_through_wait(),
            OrderIndex {
                tx: intake.sender(),
                store: store.clone(),
                shutdown,
            },
        )
        .await?;
    let index_task = tokio::spawn(async move {
        let result = index_task.await;
        drop(index_running);
        match result {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    });
    Ok(LoggerService {
        store,
        intake,
        tail,
        index,
        tasks: vec![(INDEX, index_task), ("log-writer", writer_task)],
    })
}
