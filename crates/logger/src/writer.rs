//! The writer thread: the only writer of the store. It takes every job waiting in the queue
//! (captured lines, pushes, journal index batches), writes them in one transaction, answers the
//! pushes and the index once committed, hands the new lines to the tail, and runs retention
//! between batches.
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
    /// Write what is queued before this, then stop.
    Stop,
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
    let mut jobs: Vec<Job> = Vec::new();
    let mut idle_polls = 0u32;
    loop {
        if Instant::now() >= next_retention {
            retain(&mut writer, retention, &metrics);
            next_retention = Instant::now() + RETENTION_EVERY;
        }
        // While lines keep coming the writer polls the queue every POLL instead of sleeping
        // in it: a sender then never has to wake the writer (a system call on the logging
        // thread, the engine's or a request's). After IDLE_POLLS empty polls it sleeps in
        // the queue until the next line.
        let first = match rx.try_recv() {
            Ok(job) => Ok(job),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if idle_polls < IDLE_POLLS => {
                idle_polls += 1;
                std::thread::sleep(POLL);
                continue;
            }
            Err(TryRecvError::Empty) => {
                rx.recv_timeout(next_retention.saturating_duration_since(Instant::now()))
            }
        };
        idle_polls = 0;
        match first {
            Ok(Job::Stop) => break,
            Ok(job) => jobs.push(job),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let mut lines = job_lines(&jobs[0]);
        let mut stop = false;
        while lines < BATCH_LINES {
            match rx.try_recv() {
                Ok(Job::Stop) => {
                    stop = true;
                    break;
                }
                Ok(job) => {
                    lines += job_lines(&job);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        write(
            &mut writer,
            std::mem::take(&mut jobs),
            &intake,
            &tail,
            &metrics,
        );
        if stop {
            break;
        }
    }
}

fn job_lines(job: &Job) -> usize {
    match job {
        Job::Line(_) => 1,
        Job::Push { records, .. } => records.len(),
        Job::Index { events, .. } => events.len().max(1),
        Job::Stop => 0,
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
