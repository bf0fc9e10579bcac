//! The writer thread: the only writer of the store. It takes every job waiting in the queue
//! (captured lines, pushes, journal index batches), writes them in one transaction, answers the
//! pushes and the index once committed, hands the new lines to the tail, and runs retention
//! between batches.
//!
//! Captured lines that nobody waits for gather for up to [`CAPTURED_LINGER`] before they are
//! written: a transaction every 10 ms rewrote the full-text index's pages a hundred times a
//! second on the disk the journal's commits share. Anyone who waits ends the wait at once: a
//! push or an index batch (answered once committed), a read ([`Job::Flush`]: a search or a
//! timeline sees every line captured before it), or a tail stream (live lines).
//!
//! A push is all-or-nothing inside the shared transaction (a savepoint each); a captured line
//! that cannot be stored is dropped and counted, it never stops the others.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use model::Timestamp;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use telemetry::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::{broadcast, oneshot};

use crate::LoggerError;
use crate::capture::Intake;
use crate::record::Record;
use crate::store::{Batch, Retention, StoredLine, Writer};
use crate::timeline::OrderEvent;

/// What the writer is asked to do.
pub enum Job {
    /// A captured line (nobody waits for it).
    Line(Record),
    /// A pushed request: stored whole or not at all; answered with the count once committed.
    Push {
        records: Vec<Record>,
        done: oneshot::Sender<Result<usize, String>>,
    },
    /// Journal events for the order timeline, and the sequence they reach.
    Index {
        events: Vec<OrderEvent>,
        position: u64,
        done: SyncSender<Result<(), String>>,
    },
    /// Write what is queued before this and answer once it is stored (a read's barrier).
    Flush(oneshot::Sender<()>),
    /// Write what is queued before this, then stop.
    Stop,
}

impl Job {
    /// Whether someone waits for this job's transaction (the writer then writes at once).
    fn awaited(&self) -> bool {
        !matches!(self, Job::Line(_))
    }
}

/// Lines written per transaction at most (more wait for the next one).
const BATCH_LINES: usize = 50_000;
/// How often the writer looks at the queue while lines are coming (a line waits at most this
/// long before its batch starts). Every look that finds lines is a transaction: at 1000
/// orders/s (two lines each) a 2 ms poll stored ~4 lines per transaction for ~0.18 ms of CPU
/// per order; 10 ms gathers five times as many per transaction.
const POLL: Duration = Duration::from_millis(10);
/// Empty looks before the writer sleeps until the next line (0.1 s without any).
const IDLE_POLLS: u32 = 10;
/// How long captured lines wait for more while nobody waits for them: with a transaction per
/// poll the log writer dirtied ~9 KB of pages per order at 1000 orders/s (FTS5 segments merged
/// a hundred times a second), as much as the journal itself (docs/BENCHMARKS.md, issue 13).
pub const CAPTURED_LINGER: Duration = Duration::from_secs(1);
/// How often retention runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(10);
/// Delete transactions per retention pass.
const RETENTION_CHUNKS: usize = 8;

/// The writer's counters and gauges (registered by the service).
#[derive(Clone)]
pub struct WriterMetrics {
    pub lines: Counter,
    pub deleted: Counter,
    pub bytes: Gauge,
    pub batch_seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WriterMetrics {
    pub fn new() -> WriterMetrics {
        WriterMetrics {
            lines: Counter::default(),
            deleted: Counter::default(),
            bytes: Gauge::default(),
            batch_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 14)),
        }
    }
}

/// New lines, as committed, for the tail.
pub type Tail = broadcast::Sender<Arc<Vec<StoredLine>>>;

/// Runs the writer until every sender of the queue is gone.
pub fn run(
    mut writer: Writer,
    rx: Receiver<Job>,
    intake: Intake,
    tail: Tail,
    retention: Retention,
    metrics: WriterMetrics,
) {
    let mut next_retention = Instant::now();
    // Jobs taken and not yet written, and what decides when they are.
    let mut jobs: Vec<Job> = Vec::new();
    let mut lines = 0usize;
    let mut oldest: Option<Instant> = None;
    let mut awaited = false;
    let mut stop = false;
    let mut idle_polls = 0u32;
    loop {
        if Instant::now() >= next_retention {
            retain(&mut writer, retention, &metrics);
            next_retention = Instant::now() + RETENTION_EVERY;
        }
        // While lines keep coming the writer polls the queue every POLL instead of sleeping
        // in it: a sender then never has to wake the writer (a system call on the logging
        // thread, the engine's or a request's).
        while lines < BATCH_LINES {
            match rx.try_recv() {
                Ok(Job::Stop) | Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Ok(job) => {
                    awaited |= job.awaited();
                    lines += job_lines(&job);
                    jobs.push(job);
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if !jobs.is_empty() {
            idle_polls = 0;
            let since = *oldest.get_or_insert_with(Instant::now);
            if stop
                || awaited
                || lines >= BATCH_LINES
                || tail.receiver_count() > 0
                || since.elapsed() >= CAPTURED_LINGER
            {
                write(
                    &mut writer,
                    std::mem::take(&mut jobs),
                    &intake,
                    &tail,
                    &metrics,
                );
                (lines, oldest, awaited) = (0, None, false);
                if !stop {
                    continue;
                }
            }
        }
        if stop {
            break;
        }
        if !jobs.is_empty() || idle_polls < IDLE_POLLS {
            if jobs.is_empty() {
                idle_polls += 1;
            }
            std::thread::sleep(POLL);
            continue;
        }
        // IDLE_POLLS empty looks (0.1 s without a line): sleep in the queue until the next.
        match rx.recv_timeout(next_retention.saturating_duration_since(Instant::now())) {
            Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(job) => {
                awaited |= job.awaited();
                lines += job_lines(&job);
                jobs.push(job);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn job_lines(job: &Job) -> usize {
    match job {
        Job::Line(_) => 1,
        Job::Push { records, .. } => records.len(),
        Job::Index { events, .. } => events.len().max(1),
        Job::Flush(_) | Job::Stop => 0,
    }
}

fn retain(writer: &mut Writer, retention: Retention, metrics: &WriterMetrics) {
    match writer.retain(retention, Timestamp::now(), RETENTION_CHUNKS) {
        Ok(done) => {
            metrics.deleted.inc_by(done.lines);
            if done.lines > 0 {
                tracing::debug!(
                    lines = done.lines,
                    order_events = done.order_events,
                    "log retention"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "log retention failed; retrying later"),
    }
    if let Ok(u) = writer.usage() {
        metrics
            .bytes
            .set(i64::try_from(u.bytes).unwrap_or(i64::MAX));
    }
}

/// Answers owed once the transaction commits.
enum Owed {
    Push(
        oneshot::Sender<Result<usize, String>>,
        Result<usize, String>,
    ),
    Index(SyncSender<Result<(), String>>),
    Flush(oneshot::Sender<()>),
}

fn write(
    writer: &mut Writer,
    jobs: Vec<Job>,
    intake: &Intake,
    tail: &Tail,
    metrics: &WriterMetrics,
) {
    let started = Instant::now();
    let want_tail = tail.receiver_count() > 0;
    let captured_total = jobs.iter().filter(|j| matches!(j, Job::Line(_))).count() as u64;
    let mut captured = 0u64;
    let result = writer.transaction(|batch| {
        let mut owed = Vec::new();
        let mut stored = Vec::new();
        for job in jobs {
            match job {
                Job::Line(record) => match batch.insert(&record) {
                    Ok(id) => {
                        captured += 1;
                        if want_tail {
                            stored.push(StoredLine { id, record });
                        }
                    }
                    Err(LoggerError::MillisecondFull(_)) => intake.count_dropped("time_slots", 1),
                    Err(e) => return Err(e),
                },
                Job::Push { records, done } => {
                    intake.pushed_taken(records.len());
                    let outcome = push(batch, &records)?;
                    if let Ok(ids) = &outcome
                        && want_tail
                    {
                        stored.extend(
                            ids.iter()
                                .zip(records)
                                .map(|(id, record)| StoredLine { id: *id, record }),
                        );
                    }
                    owed.push(Owed::Push(done, outcome.map(|ids| ids.len())));
                }
                Job::Index {
                    events,
                    position,
                    done,
                } => {
                    // A batch the index already has (a redelivery after a restart) only
                    // moves nothing back.
                    if position > batch.journal_position()? {
                        batch.index_events(&events, position)?;
                    }
                    owed.push(Owed::Index(done));
                }
                Job::Flush(done) => owed.push(Owed::Flush(done)),
                Job::Stop => {}
            }
        }
        Ok((owed, stored))
    });
    metrics
        .batch_seconds
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok((owed, mut stored)) => {
            let mut pushed = 0;
            for o in owed {
                match o {
                    Owed::Push(done, outcome) => {
                        pushed += outcome.as_ref().map_or(0, |n| *n as u64);
                        let _ = done.send(outcome);
                    }
                    Owed::Index(done) => {
                        let _ = done.send(Ok(()));
                    }
                    Owed::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
            metrics.lines.inc_by(captured + pushed);
            if !stored.is_empty() {
                stored.sort_by_key(|l| l.id);
                let _ = tail.send(Arc::new(stored));
            }
        }
        Err(e) => {
            // Nothing of this transaction is stored. Pushers and the index hear why (they
            // retry); captured lines are dropped and counted.
            tracing::warn!(error = %e, "log store write failed");
            intake.count_dropped("store_failed", captured_total);
            // The jobs were moved into the failed closure; their senders are dropped with it,
            // so each waiting pusher and the index see a closed channel (answered as 503).
        }
    }
}

/// One push inside a savepoint: all its lines, or (on a line that cannot be stored) none.
fn push(
    batch: &mut Batch<'_>,
    records: &[Record],
) -> Result<Result<Vec<i64>, String>, LoggerError> {
    batch.savepoint()?;
    let mut ids = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        match batch.insert(r) {
            Ok(id) => ids.push(id),
            Err(LoggerError::MillisecondFull(ts)) => {
                batch.rollback_savepoint()?;
                return Ok(Err(format!(
                    "line {i}: more than 1048576 lines share the millisecond of {ts}"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    batch.release_savepoint()?;
    Ok(Ok(ids))
}
