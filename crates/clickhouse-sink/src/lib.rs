//! The analytics store: a runtime consumer that writes quotes, trades, order events and fills to
//! ClickHouse (tables `quotes`, `trades`, `orders`, `fills` in `clickhouse.database`), one
//! INSERT per table per batch, each row with its journal sequence (docs/CLICKHOUSE.md).
//!
//! **Exactly once.** After every batch the sink records the batch's last sequence in
//! `sink_progress`; that is its [`runtime::StoredPosition`]. A row at or below it is stored for certain.
//! Above it, a row may be stored when an earlier run stopped between the inserts of a batch (or
//! an INSERT's answer was lost): for those sequences, up to the highest `seq` each table held
//! at start (or that a failed INSERT may have written), the sink asks the table which are there
//! and sends only the others. So a replay, a restart from an older position, a crash between
//! two tables' inserts or a retried INSERT never stores a row twice, whatever ClickHouse kept of
//! an interrupted INSERT.
//!
//! **ClickHouse away.** A batch that cannot be written is retried with backoff (100 ms doubling
//! to 5 s) for as long as it takes, logging each failure with `clickhouse.http_url`, counting
//! retries and showing `clickhouse_sink_up 0`; the consumer catches up once the server answers.
//! Refused credentials and requests ClickHouse rejects as wrong fail the consumer with a message
//! naming the setting. A shutdown while retrying stops with [`ClickHouseError::Stopped`] (the
//! batch is written at the next start).
//!
//! **Reading back.** [`EventReader`] (`ClickHouseClient::events`) rebuilds the stored events
//! from the exact columns, equal to what the sink was given, merged into journal sequence
//! order and paged by keyset on `seq`, optionally within a sequence or time range.
//!
//! `Consumer::apply` is synchronous; the sink does its HTTP on a one-thread tokio runtime of its
//! own, so it works the same under any caller (multi-threaded runtime, current-thread runtime,
//! no runtime).

mod client;
mod error;
mod read;
mod rows;
mod schema;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use config::ClickHouseConfig;
use journal::Delivery;
use model::Event;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

pub use client::{ClickHouseClient, StoredFill};
pub use error::ClickHouseError;
pub use read::{DEFAULT_PAGE, EventRange, EventReader, StoredEvent};
pub use schema::{DECIMAL, PROGRESS_TABLE, Table};

/// Backoff between attempts while ClickHouse fails: 100 ms doubling to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Counters and state of a sink, shared with whoever shows them (`/metrics`, `/health`).
#[derive(Debug, Default)]
pub struct SinkStats {
    up: Gauge,
    retries: Counter,
    rows: Family<Vec<(&'static str, String)>, Counter>,
    replayed: Counter,
    last_error: Mutex<Option<String>>,
    failing_since: Mutex<Option<Instant>>,
}

impl SinkStats {
    /// Registers the series in a service's registry: `trade2026_clickhouse_sink_up`,
    /// `_retries_total`, `_rows_total{table}`, `_replayed_rows_total`.
    pub fn register(&self, metrics: &telemetry::Metrics) {
        metrics.register(
            "clickhouse_sink_up",
            "1 while the ClickHouse sink's last request succeeded, 0 while it is retrying",
            self.up.clone(),
        );
        metrics.register(
            "clickhouse_sink_retries",
            "Failed ClickHouse requests the sink retried",
            self.retries.clone(),
        );
        metrics.register(
            "clickhouse_sink_rows",
            "Rows the sink inserted into ClickHouse, by table",
            self.rows.clone(),
        );
        metrics.register(
            "clickhouse_sink_replayed_rows",
            "Replayed rows the sink skipped because ClickHouse already held them",
            self.replayed.clone(),
        );
    }

    /// Whether the last request succeeded.
    pub fn up(&self) -> bool {
        self.up.get() == 1
    }

    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Rows inserted into `table` by this process.
    pub fn rows(&self, table: Table) -> u64 {
        self.rows.get_or_create(&labels(table)).get()
    }

    /// Replayed rows skipped because they were stored already.
    pub fn replayed(&self) -> u64 {
        self.replayed.get()
    }

    /// The error of the last failed request while it is still failing.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// For `/health`: `{"up", "retries", "last_error"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "up": self.up(),
            "retries": self.retries(),
            "last_error": self.last_error(),
        })
    }

    fn succeeded(&self, url: &str) {
        self.up.set(1);
        if let Some(since) = lock(&self.failing_since).take() {
            tracing::info!(
                setting = "clickhouse.http_url",
                url,
                after_secs = since.elapsed().as_secs_f64(),
                "ClickHouse answers again; the sink continues"
            );
        }
        lock(&self.last_error).take();
    }

    fn failed(&self, e: &ClickHouseError, attempt: u32, retry_in: Duration) {
        self.up.set(0);
        self.retries.inc();
        let first = {
            let mut since = lock(&self.failing_since);
            let first = since.is_none();
            since.get_or_insert_with(Instant::now);
            first
        };
        *lock(&self.last_error) = Some(e.to_string());
        if first {
            tracing::error!(
                setting = "clickhouse.http_url",
                error = %e,
                retry_in_ms = retry_in.as_millis() as u64,
                "ClickHouse sink cannot write; retrying until it answers"
            );
        } else {
            tracing::warn!(
                setting = "clickhouse.http_url",
                error = %e,
                attempt,
                retry_in_ms = retry_in.as_millis() as u64,
                "ClickHouse sink still cannot write"
            );
        }
    }
}

fn labels(t: Table) -> Vec<(&'static str, String)> {
    vec![("table", t.name().to_owned())]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A simulated failure for tests of the exactly-once guarantee.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next batch fails after this many table INSERTs, before its other tables and its
    /// progress row: a crash between the inserts of one batch.
    CrashAfterInserts(usize),
    /// The next this-many INSERTs reach ClickHouse but are reported as failed (an answer lost
    /// on the way back), so they are retried.
    LoseAnswers(usize),
}

/// The ClickHouse sink: a [`runtime::Consumer`] with a [`runtime::StoredPosition`].
pub struct ClickHouseSink {
    writer: Writer,
    /// Where the HTTP requests of `apply` run. An `Option` only to shut it down in `Drop`
    /// without blocking (the sink may be dropped inside an async task).
    io: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("client", &self.writer.client)
            .field("position", &self.writer.position)
            .finish()
    }
}

impl ClickHouseSink {
    /// The durable consumer name (also the `sink` column of `sink_progress`).
    pub const NAME: &'static str = "clickhouse";
    /// The subjects it reads: quotes, trades, order events, fills.
    pub const FILTER: &'static str = "md.quote.> md.trade.> orders.> fills.>";

    /// The runtime spec to start it with (`Runner::start_stored(ClickHouseSink::spec(), sink)`).
    /// Bigger batches mean fewer, larger INSERTs, which ClickHouse prefers.
    pub fn spec() -> runtime::Spec {
        let mut spec = runtime::Spec::new(Self::NAME, Self::FILTER);
        spec.batch = 8_192;
        spec
    }

    /// Connects (waiting up to `startup_wait` for the server to answer), creates the database
    /// and tables when missing and reads where the previous run stopped. Errors name
    /// `clickhouse.http_url` / `clickhouse.database`; [`ClickHouseError::is_config`] tells a
    /// setting to fix (exit nonzero) from anything else.
    pub async fn connect(
        cfg: &ClickHouseConfig,
        startup_wait: Duration,
    ) -> Result<ClickHouseSink, ClickHouseError> {
        let client = ClickHouseClient::new(cfg)?;
        let version = client.wait_ready(startup_wait).await?;
        client.ensure_schema().await?;
        let position = client.progress(Self::NAME).await?;
        let mut stored_up_to = [0; 4];
        for t in Table::ALL {
            stored_up_to[t.index()] = client.max_seq(t).await?;
        }
        tracing::info!(
            url = client.url(),
            database = client.database(),
            version,
            position,
            "ClickHouse sink connected"
        );
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("clickhouse-sink")
            .enable_all()
            .build()
            .map_err(|e| ClickHouseError::Runtime(e.to_string()))?;
        let stats = Arc::new(SinkStats::default());
        stats.up.set(1);
        Ok(ClickHouseSink {
            writer: Writer {
                // A pool of its own: its connections belong to the sink's runtime.
                client: client.with_own_pool()?,
                position,
                stored_up_to,
                stats,
                cancel: CancellationToken::new(),
                fault: None,
            },
            io: Some(io),
        })
    }

    /// Stops retrying (with [`ClickHouseError::Stopped`]) when `token` is cancelled: the
    /// runtime cannot interrupt a blocked `apply`, so pass the service's shutdown token.
    pub fn with_shutdown(mut self, token: CancellationToken) -> ClickHouseSink {
        self.writer.cancel = token;
        self
    }

    /// Registers the sink's series in a service's registry ([`SinkStats::register`]).
    pub fn with_metrics(self, metrics: &telemetry::Metrics) -> ClickHouseSink {
        self.writer.stats.register(metrics);
        self
    }

    /// The sink's counters, readable while the runtime owns the sink.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.writer.stats)
    }

    /// A client for queries on the same server and database.
    pub fn client(&self) -> Result<ClickHouseClient, ClickHouseError> {
        self.writer.client.with_own_pool()
    }

    #[doc(hidden)]
    pub fn inject(&mut self, fault: Fault) {
        self.writer.fault = Some(fault);
    }
}

impl Drop for ClickHouseSink {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            io.shutdown_background();
        }
    }
}

impl runtime::Consumer for ClickHouseSink {
    type Error = ClickHouseError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), ClickHouseError> {
        let Some(io) = self.io.as_ref() else {
            return Err(ClickHouseError::Runtime("shut down".into()));
        };
        let handle = io.handle().clone();
        let writer = &mut self.writer;
        // A thread of our own to block on the sink's runtime: `Handle::block_on` refuses to run
        // on a thread that is inside a runtime, which the caller's may be.
        std::thread::scope(|s| {
            s.spawn(move || handle.block_on(writer.write(batch)))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl runtime::StoredPosition for ClickHouseSink {
    fn stored_position(&self) -> Result<u64, ClickHouseError> {
        Ok(self.writer.position)
    }
}

struct Writer {
    client: ClickHouseClient,
    /// Every row at or below is stored (the last progress recorded).
    position: u64,
    /// Per table: rows above `position` and at or below this may be stored already.
    stored_up_to: [u64; 4],
    stats: Arc<SinkStats>,
    cancel: CancellationToken,
    fault: Option<Fault>,
}

/// One table's rows of a batch.
#[derive(Default)]
struct Rows {
    lines: Vec<u8>,
    count: u64,
    first: u64,
    last: u64,
}

impl Writer {
    async fn write(&mut self, batch: &[Delivery]) -> Result<(), ClickHouseError> {
        let Some(last) = batch.last().map(|d| d.seq) else {
            return Ok(());
        };
        if last <= self.position {
            // A redelivery of what is recorded: nothing to write, and the position must not
            // move back.
            self.stats.replayed.inc_by(batch.len() as u64);
            return Ok(());
        }
        let first_seq = batch[0].seq;
        let fresh = |d: &&Delivery| d.seq > self.position;

        // The sequences that may be stored already, per table.
        let mut doubtful: [Option<(u64, u64)>; 4] = [None; 4];
        for d in batch.iter().filter(fresh) {
            let Some(t) = rows::table_of(&d.event) else {
                continue;
            };
            if d.seq <= self.stored_up_to[t.index()] {
                let r = doubtful[t.index()].get_or_insert((d.seq, d.seq));
                r.1 = d.seq;
            }
        }
        let mut present: [HashSet<u64>; 4] = Default::default();
        for t in Table::ALL {
            if let Some((from, to)) = doubtful[t.index()] {
                let client = &self.client;
                present[t.index()] = self
                    .retrying(first_seq, || client.seqs_in(t, from, to))
                    .await?;
            }
        }

        let mut tables: [Rows; 4] = Default::default();
        let mut replayed = (batch.len() - batch.iter().filter(fresh).count()) as u64;
        for d in batch.iter().filter(fresh) {
            let Some(t) = rows::table_of(&d.event) else {
                continue;
            };
            if present[t.index()].contains(&d.seq) {
                replayed += 1;
                continue;
            }
            let r = &mut tables[t.index()];
            if rows::encode(&mut r.lines, d.seq, &d.event) {
                if r.count == 0 {
                    r.first = d.seq;
                }
                r.count += 1;
                r.last = d.seq;
            }
        }
        self.stats.replayed.inc_by(replayed);

        let mut inserted = 0;
        for t in Table::ALL {
            let rows = std::mem::take(&mut tables[t.index()]);
            if rows.count == 0 {
                continue;
            }
            if let Some(Fault::CrashAfterInserts(n)) = self.fault
                && inserted == n
            {
                self.fault = None;
                return Err(ClickHouseError::Injected(format!(
                    "stopped after {n} table insert(s) of the batch ending at {last}"
                )));
            }
            self.insert(t, rows, first_seq).await?;
            inserted += 1;
        }
        if let Some(Fault::CrashAfterInserts(_)) = self.fault {
            self.fault = None;
            return Err(ClickHouseError::Injected(format!(
                "stopped before recording progress {last}"
            )));
        }

        let client = &self.client;
        self.retrying(first_seq, || {
            client.record_progress(ClickHouseSink::NAME, last)
        })
        .await?;
        self.position = last;
        Ok(())
    }

    /// Inserts one table's rows; after a failed attempt (which ClickHouse may have written in
    /// part or whole) sends only the rows the table does not hold.
    async fn insert(
        &mut self,
        t: Table,
        rows: Rows,
        first_seq: u64,
    ) -> Result<(), ClickHouseError> {
        let Rows {
            lines,
            mut count,
            first,
            last,
        } = rows;
        let mut lines = bytes::Bytes::from(lines);
        let mut attempt = 0;
        loop {
            let mut result = self.client.insert(t, lines.clone()).await;
            if result.is_ok()
                && let Some(Fault::LoseAnswers(n)) = self.fault
                && n > 0
            {
                self.fault = (n > 1).then_some(Fault::LoseAnswers(n - 1));
                result = Err(ClickHouseError::Transport {
                    url: self.client.url().to_owned(),
                    what: format!("INSERT INTO {}", t.name()),
                    reason: "simulated lost answer".into(),
                });
            }
            match result {
                Ok(()) => {
                    self.stats.succeeded(self.client.url());
                    self.stats.rows.get_or_create(&labels(t)).inc_by(count);
                    return Ok(());
                }
                Err(e) => {
                    let slot = &mut self.stored_up_to[t.index()];
                    *slot = (*slot).max(last);
                    self.pause(e, &mut attempt, first_seq).await?;
                }
            }
            let client = &self.client;
            let present = self
                .retrying(first_seq, || client.seqs_in(t, first, last))
                .await?;
            if !present.is_empty() {
                let before = count;
                let (kept, n) = without(&lines, &present);
                (lines, count) = (kept.into(), n);
                self.stats.replayed.inc_by(before - count);
                if count == 0 {
                    return Ok(());
                }
            }
        }
    }

    /// Runs an idempotent request until it succeeds (or fails for good, or shutdown).
    async fn retrying<T, F, Fut>(&self, first_seq: u64, mut op: F) -> Result<T, ClickHouseError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClickHouseError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => {
                    self.stats.succeeded(self.client.url());
                    return Ok(v);
                }
                Err(e) => self.pause(e, &mut attempt, first_seq).await?,
            }
        }
    }

    /// After a failed request: gives up on a permanent error, else waits out the backoff.
    async fn pause(
        &self,
        e: ClickHouseError,
        attempt: &mut u32,
        first_seq: u64,
    ) -> Result<(), ClickHouseError> {
        if !e.is_retryable() {
            return Err(e);
        }
        let delay = Duration::from_millis(100)
            .saturating_mul(1 << (*attempt).min(6))
            .min(MAX_BACKOFF);
        self.stats.failed(&e, *attempt, delay);
        *attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.cancel.cancelled() => Err(ClickHouseError::Stopped {
                url: self.client.url().to_owned(),
                first_seq,
            }),
        }
    }
}

/// The lines whose sequence is not in `present`, and how many.
fn without(lines: &[u8], present: &HashSet<u64>) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(lines.len());
    let mut count = 0;
    for line in lines.split_inclusive(|&b| b == b'\n') {
        if rows::line_seq(line).is_some_and(|s| present.contains(&s)) {
            continue;
        }
        out.extend_from_slice(line);
        count += 1;
    }
    (out, count)
}
