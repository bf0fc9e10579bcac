//! The Redis/Valkey writer: pipelined, newest-wins, with retry.
//!
//! # Newest wins, atomically
//! Every row goes through one Lua script (`WRITE_SCRIPT`) that reads the stored `_ts:<view>`,
//! and only if the row is strictly newer writes the hash fields, the `_ts`, the JSON document
//! (and the optional `EXPIRE`). Redis runs a script as one atomic step, so a concurrent writer
//! (another pipeline instance, or Feast's own `materialize`) can never slip in between the check
//! and the write. Feast itself does the check as a separate `HMGET` round trip first (spec
//! section 7), which has exactly that race; the script also saves the extra round trip. Equal
//! timestamps are skipped, like Feast does, which also makes a retried batch idempotent.
//!
//! To keep Lua's per-call cost low, one `EVALSHA` carries many rows (`rows_per_call`), and many
//! calls go in one pipeline (`calls_per_pipeline`). Each pipeline starts with `SCRIPT LOAD`, so a
//! Redis that restarted (and lost its script cache) never answers `NOSCRIPT`.
//!
//! Cluster note: a call touches many keys, which Redis Cluster only accepts in one slot; this
//! writer targets standalone Redis/Valkey (what the plan deploys).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::Mutex;

use crate::conn::Endpoint;
use crate::encoding::{
    decode_timestamp, encode_timestamp, encode_value, field_name, redis_key, ts_field_name,
    ts_parts,
};
use crate::error::FeastStoreError;
use crate::row::OnlineRow;
use model::Timestamp;

/// KEYS: (hash key, JSON key) per row. ARGV[1]: key TTL in seconds (0 = none); then per row:
/// new seconds, new nanos, JSON document ("" = none), field count n, `_ts` field, `_ts` value,
/// then n (field, value) pairs. Returns how many rows were written. The `_ts` pair sits right
/// before the feature pairs so `HSET` takes one `unpack` of ARGV, with no table built per row.
///
/// The stored `_ts` is a protobuf Timestamp; Lua numbers are doubles, which hold seconds and
/// nanos exactly, so they are compared as a pair rather than as one nanosecond count. A negative
/// `seconds` is a 10-byte two's-complement varint, decoded by complementing its 63 low bits.
const WRITE_SCRIPT: &str = r#"
local byte = string.byte
local function varint(s, i)
  local v, mul, len, comp = 0, 1, 0, 0
  while true do
    local b = byte(s, i)
    if b == nil then return nil, i end
    i = i + 1
    len = len + 1
    if len <= 9 then
      local low = b % 128
      v = v + low * mul
      comp = comp + (127 - low) * mul
      mul = mul * 128
    end
    if b < 128 then break end
  end
  if len >= 10 then v = -(comp + 1) end
  return v, i
end
local function decode_ts(s)
  local secs, nanos, i = 0, 0, 1
  while i <= #s do
    local tag = byte(s, i)
    local v
    v, i = varint(s, i + 1)
    if v == nil then return 0, 0 end
    if tag == 8 then secs = v elseif tag == 16 then nanos = v end
  end
  return secs, nanos
end
local call = redis.call
local ttl = tonumber(ARGV[1])
local a = 2
local written = 0
for k = 1, #KEYS, 2 do
  local key = KEYS[k]
  local secs, nanos = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local doc = ARGV[a + 2]
  local first = a + 4
  local last = first + 1 + 2 * tonumber(ARGV[a + 3])
  a = last + 1
  local fresh = true
  local old = call('HGET', key, ARGV[first])
  if old then
    local os, on = decode_ts(old)
    fresh = (os < secs) or (os == secs and on < nanos)
  end
  if fresh then
    call('HSET', key, unpack(ARGV, first, last))
    if doc ~= '' then call('SET', KEYS[k + 1], doc) end
    if ttl > 0 then call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"#;

/// Tuning and behaviour of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows per `EVALSHA` call (amortizes the script call overhead).
    pub rows_per_call: usize,
    /// `EVALSHA` calls per pipeline (one network round trip).
    pub calls_per_pipeline: usize,
    /// Feast's `online_store.key_ttl_seconds`: `EXPIRE` on the whole entity hash after a write.
    pub key_ttl_seconds: Option<u64>,
    /// Also write the `feast:<view>:<entity>` JSON document.
    pub write_json_doc: bool,
    /// How "newest wins" is enforced; see [`Freshness`].
    pub freshness: Freshness,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            rows_per_call: 100,
            calls_per_pipeline: 50,
            key_ttl_seconds: None,
            write_json_doc: true,
            freshness: Freshness::AtomicScript,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(10),
        }
    }
}

/// How the writer makes sure an older event time never replaces a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Check and write in one Lua script per batch of rows: atomic, so no concurrent writer can
    /// interleave. Costs Redis CPU for the script (roughly twice the plain commands).
    AtomicScript,
    /// Feast's own method (spec section 7): one pipelined `HMGET` of the stored `_ts` fields,
    /// then plain pipelined `HSET` / `MSET` of the rows that are newer. Faster, but not atomic:
    /// a different writer that stores a newer row for the same view and entity between our read
    /// and our write gets overwritten. Safe when this writer is the only one for its views (the
    /// pipeline's normal deployment: one materializer per view).
    ReadThenWrite,
}

/// Exponential backoff for [`OnlineStoreWriter::write_with_retry`].
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1 is made).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No new attempt starts after this much time since the first one.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
        }
    }
}

/// The outcome of one successful write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Rows stored.
    pub written: u64,
    /// Rows not stored because the store already held an equal or newer event time.
    pub skipped_stale: u64,
    /// Pipelines (network round trips) sent.
    pub pipelines: u64,
}

/// Monotonic counters, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct WriterMetrics {
    attempts: AtomicU64,
    failures: AtomicU64,
    gave_up: AtomicU64,
    rows_written: AtomicU64,
    rows_skipped_stale: AtomicU64,
    reconnects: AtomicU64,
}

/// A point-in-time copy of [`WriterMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Write attempts (each `write` call, and each retry, is one).
    pub attempts: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// `write_with_retry` calls that gave up.
    pub gave_up: u64,
    pub rows_written: u64,
    pub rows_skipped_stale: u64,
    /// Connections opened (the first one included).
    pub reconnects: u64,
}

impl WriterMetrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            attempts: self.attempts.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
            rows_skipped_stale: self.rows_skipped_stale.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// Writes [`OnlineRow`]s into Redis/Valkey in Feast's layout plus a JSON document per row.
///
/// The connection is opened lazily and dropped after a connection-level failure, so the writer
/// can be created while Redis is down and recovers by itself once it is back.
pub struct OnlineStoreWriter {
    client: Client,
    endpoint: Endpoint,
    options: WriterOptions,
    script_sha: String,
    conn: Mutex<Option<MultiplexedConnection>>,
    metrics: Arc<WriterMetrics>,
}

impl OnlineStoreWriter {
    /// A writer for `url_or_host_port` (`valkey:6379`, `host:port,db=1`, `redis://…`), without
    /// connecting yet.
    pub fn new(url_or_host_port: &str, options: WriterOptions) -> Result<Self, FeastStoreError> {
        let endpoint = Endpoint::parse(url_or_host_port)?;
        let client = Client::open(endpoint.to_url())?;
        Ok(OnlineStoreWriter {
            client,
            endpoint,
            options,
            script_sha: redis::Script::new(WRITE_SCRIPT).get_hash().to_string(),
            conn: Mutex::new(None),
            metrics: Arc::new(WriterMetrics::default()),
        })
    }

    /// [`new`](Self::new) with default options, then connects and loads the script, so a wrong
    /// address fails here.
    pub async fn connect(url_or_host_port: &str) -> Result<Self, FeastStoreError> {
        let w = Self::new(url_or_host_port, WriterOptions::default())?;
        let mut conn = w.connection().await?;
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(WRITE_SCRIPT)
            .query_async(&mut conn)
            .await
            .map_err(|e| w.on_error(e.into()))?;
        Ok(w)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn metrics(&self) -> Arc<WriterMetrics> {
        Arc::clone(&self.metrics)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, FeastStoreError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.response_timeout));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection after a transient failure so the next attempt opens a new one.
    fn on_error(&self, e: FeastStoreError) -> FeastStoreError {
        if e.is_transient()
            && let Ok(mut guard) = self.conn.try_lock()
        {
            *guard = None;
        }
        e
    }

    /// Writes `rows` into `project` in one attempt: pipelines of `EVALSHA` calls, each storing
    /// its rows only where they are newer than what Redis holds. Rows are validated first, so
    /// bad input writes nothing. On error some pipelines may have been applied; writing the same
    /// rows again is safe (they are then skipped as not newer).
    pub async fn write(
        &self,
        project: &str,
        rows: &[OnlineRow],
    ) -> Result<WriteStats, FeastStoreError> {
        for row in rows {
            row.validate()?;
        }
        self.metrics.attempts.fetch_add(1, Ordering::Relaxed);
        match self.write_inner(project, rows).await {
            Ok(stats) => {
                self.metrics
                    .rows_written
                    .fetch_add(stats.written, Ordering::Relaxed);
                self.metrics
                    .rows_skipped_stale
                    .fetch_add(stats.skipped_stale, Ordering::Relaxed);
                Ok(stats)
            }
            Err(e) => {
                self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                Err(self.on_error(e))
            }
        }
    }

    async fn write_inner(
        &self,
        project: &str,
        rows: &[OnlineRow],
    ) -> Result<WriteStats, FeastStoreError> {
        let mut stats = WriteStats::default();
        if rows.is_empty() {
            return Ok(stats);
        }
        let conn = self.connection().await?;
        if self.options.freshness == Freshness::ReadThenWrite {
            return self.write_read_then_write(conn, project, rows).await;
        }
        let rows_per_call = self.options.rows_per_call.max(1);
        let rows_per_pipeline = rows_per_call * self.options.calls_per_pipeline.max(1);
        let ttl = self.options.key_ttl_seconds.unwrap_or(0);
        // Pipelines are sent as soon as they are built, so encoding the next one overlaps
        // Redis executing the previous one; replies are summed at the end.
        let mut pending = tokio::task::JoinSet::new();
        let mut scratch = Vec::with_capacity(64);
        for chunk in rows.chunks(rows_per_pipeline) {
            let mut pipe = redis::pipe();
            // Cheap when cached, and it re-creates the script after a Redis restart.
            pipe.cmd("SCRIPT").arg("LOAD").arg(WRITE_SCRIPT).ignore();
            for call in chunk.chunks(rows_per_call) {
                let cmd = pipe
                    .cmd("EVALSHA")
                    .arg(&self.script_sha)
                    .arg(call.len() * 2);
                for row in call {
                    cmd.arg(redis_key(project, &row.join_key, &row.entity))
                        .arg(row.json_key());
                }
                cmd.arg(ttl);
                for row in call {
                    let (secs, nanos) = ts_parts(row.event_ts);
                    cmd.arg(secs).arg(nanos);
                    if self.options.write_json_doc {
                        cmd.arg(row.json_doc());
                    } else {
                        cmd.arg("");
                    }
                    cmd.arg(row.values.len())
                        .arg(ts_field_name(&row.view))
                        .arg(encode_timestamp(row.event_ts));
                    for (name, value) in &row.values {
                        scratch.clear();
                        encode_value(value, &mut scratch);
                        cmd.arg(&field_name(&row.view, name)[..]).arg(&scratch[..]);
                    }
                }
            }
            let mut conn = conn.clone();
            let n_rows = chunk.len() as u64;
            pending.spawn(async move {
                let written: Vec<u64> = pipe.query_async(&mut conn).await?;
                Ok::<_, redis::RedisError>((n_rows, written.iter().sum::<u64>()))
            });
        }
        let mut first_err = None;
        while let Some(res) = pending.join_next().await {
            match res {
                Ok(Ok((n_rows, n))) => {
                    stats.written += n;
                    stats.skipped_stale += n_rows - n.min(n_rows);
                    stats.pipelines += 1;
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(FeastStoreError::from(e));
                }
                Err(join) => {
                    first_err.get_or_insert(FeastStoreError::UnexpectedReply(format!(
                        "pipeline task failed: {join}"
                    )));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(stats)
    }

    /// [`Freshness::ReadThenWrite`]: read every stored `_ts` in one pipelined round trip,
    /// decide in Rust, then write the newer rows with one `HSET` per entity hash (all its views
    /// at once) and the JSON documents with `MSET`.
    async fn write_read_then_write(
        &self,
        conn: MultiplexedConnection,
        project: &str,
        rows: &[OnlineRow],
    ) -> Result<WriteStats, FeastStoreError> {
        const PIPELINE_CMDS: usize = 2_000;
        let mut stats = WriteStats::default();
        // Unique hash keys in first-seen order, and each row's index into them.
        let mut key_index: HashMap<Vec<u8>, usize> = HashMap::with_capacity(rows.len());
        let mut keys: Vec<(Vec<u8>, Vec<String>)> = Vec::new(); // (key, _ts fields to read)
        let mut row_key = Vec::with_capacity(rows.len());
        for row in rows {
            let key = redis_key(project, &row.join_key, &row.entity);
            let idx = *key_index.entry(key.clone()).or_insert_with(|| {
                keys.push((key, Vec::new()));
                keys.len() - 1
            });
            let ts = ts_field_name(&row.view);
            if !keys[idx].1.contains(&ts) {
                keys[idx].1.push(ts);
            }
            row_key.push(idx);
        }

        // Round trip 1: the stored timestamps.
        let mut stored: HashMap<(usize, &str), Timestamp> = HashMap::new();
        let mut reads = tokio::task::JoinSet::new();
        for (chunk_no, chunk) in keys.chunks(PIPELINE_CMDS).enumerate() {
            let mut pipe = redis::pipe();
            for (key, fields) in chunk {
                pipe.cmd("HMGET").arg(key).arg(fields);
            }
            let mut conn = conn.clone();
            reads.spawn(async move {
                let r: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut conn).await?;
                Ok::<_, redis::RedisError>((chunk_no, r))
            });
            stats.pipelines += 1;
        }
        let mut replies = Vec::with_capacity(reads.len());
        while let Some(res) = reads.join_next().await {
            replies.push(
                res.map_err(|e| FeastStoreError::UnexpectedReply(format!("task failed: {e}")))??,
            );
        }
        for (chunk_no, reply) in replies {
            for (j, values) in reply.into_iter().enumerate() {
                let idx = chunk_no * PIPELINE_CMDS + j;
                let (_, fields) = &keys[idx];
                for (field, value) in fields.iter().zip(values) {
                    // An unreadable `_ts` is treated as absent: the new row repairs it.
                    if let Some(ts) = value.as_deref().and_then(decode_timestamp) {
                        let view = &field["_ts:".len()..];
                        stored.insert((idx, view), ts);
                    }
                }
            }
        }

        // Decide: a row is written when newer than the stored one and than any earlier row of
        // the batch for the same view and entity (equal is skipped, as Feast does).
        let mut fresh: Vec<bool> = vec![false; rows.len()];
        let mut newest: HashMap<(usize, &str), usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let slot = (row_key[i], row.view.as_str());
            let floor = stored.get(&slot).copied();
            let prev = newest.get(&slot).map(|&p| rows[p].event_ts);
            let beats = |t: Option<Timestamp>| t.is_none_or(|t| row.event_ts > t);
            if beats(floor) && beats(prev) {
                if let Some(&p) = newest.get(&slot) {
                    fresh[p] = false; // superseded within the batch
                    stats.skipped_stale += 1;
                }
                newest.insert(slot, i);
                fresh[i] = true;
            } else {
                stats.skipped_stale += 1;
            }
        }

        // Round trip 2: one HSET per hash key with all its fresh rows, MSET of the documents.
        let mut by_key: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (i, &ok) in fresh.iter().enumerate() {
            if ok {
                by_key[row_key[i]].push(i);
                stats.written += 1;
            }
        }
        let ttl = self.options.key_ttl_seconds.unwrap_or(0);
        let mut writes = tokio::task::JoinSet::new();
        let mut pipe = redis::pipe();
        let mut n_cmds = 0;
        let mut scratch = Vec::with_capacity(64);
        let mut flush = |pipe: &mut redis::Pipeline, n_cmds: &mut usize, stats: &mut WriteStats| {
            if *n_cmds == 0 {
                return;
            }
            let p = std::mem::replace(pipe, redis::pipe());
            let mut conn = conn.clone();
            writes.spawn(async move { p.query_async::<()>(&mut conn).await });
            *n_cmds = 0;
            stats.pipelines += 1;
        };
        for (idx, members) in by_key.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let cmd = pipe.cmd("HSET").arg(&keys[idx].0);
            for &i in members {
                let row = &rows[i];
                for (name, value) in &row.values {
                    scratch.clear();
                    encode_value(value, &mut scratch);
                    cmd.arg(&field_name(&row.view, name)[..]).arg(&scratch[..]);
                }
                cmd.arg(ts_field_name(&row.view))
                    .arg(encode_timestamp(row.event_ts));
            }
            pipe.ignore();
            n_cmds += 1;
            if ttl > 0 {
                pipe.cmd("EXPIRE").arg(&keys[idx].0).arg(ttl).ignore();
                n_cmds += 1;
            }
            if n_cmds >= PIPELINE_CMDS {
                flush(&mut pipe, &mut n_cmds, &mut stats);
            }
        }
        if self.options.write_json_doc {
            let fresh_rows: Vec<&OnlineRow> = rows
                .iter()
                .zip(&fresh)
                .filter_map(|(r, &ok)| ok.then_some(r))
                .collect();
            for docs in fresh_rows.chunks(500) {
                let cmd = pipe.cmd("MSET");
                for row in docs {
                    cmd.arg(row.json_key()).arg(row.json_doc());
                }
                pipe.ignore();
                n_cmds += 1;
                if n_cmds >= PIPELINE_CMDS / 100 {
                    flush(&mut pipe, &mut n_cmds, &mut stats);
                }
            }
        }
        flush(&mut pipe, &mut n_cmds, &mut stats);
        let mut first_err = None;
        while let Some(res) = writes.join_next().await {
            let res = res
                .map_err(|e| FeastStoreError::UnexpectedReply(format!("task failed: {e}")))
                .and_then(|r| r.map_err(FeastStoreError::from));
            if let Err(e) = res {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// [`write`](Self::write), retried with exponential backoff on transient failures (Redis
    /// down, restarting, timing out) until it succeeds, `policy.max_attempts` are used, or
    /// `policy.deadline` has passed. Each failure is logged and counted in [`metrics`]
    /// (`failures`; `gave_up` when it stops).
    ///
    /// Catching up: on `Err(GaveUp)` nothing is lost as long as the caller keeps `rows` (or
    /// simply keeps its latest row per view and entity) and passes them again on its next cycle;
    /// since the store only takes strictly newer rows, rows already stored by a partly applied
    /// attempt are skipped, and anything newer written meanwhile is not overwritten.
    ///
    /// [`metrics`]: Self::metrics
    pub async fn write_with_retry(
        &self,
        project: &str,
        rows: &[OnlineRow],
        policy: &RetryPolicy,
    ) -> Result<WriteStats, FeastStoreError> {
        let start = Instant::now();
        let mut backoff = policy.initial_backoff;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let err = match self.write(project, rows).await {
                Ok(stats) => {
                    if attempt > 1 {
                        tracing::info!(attempt, rows = rows.len(), "online store write recovered");
                    }
                    return Ok(stats);
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            let elapsed = start.elapsed();
            let remaining = policy.deadline.saturating_sub(elapsed);
            if attempt >= policy.max_attempts.max(1) || remaining.is_zero() {
                self.metrics.gave_up.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    attempts = attempt,
                    ?elapsed,
                    rows = rows.len(),
                    error = %err,
                    "online store write gave up; rows kept by the caller for the next cycle"
                );
                return Err(FeastStoreError::GaveUp {
                    attempts: attempt,
                    elapsed,
                    last: Box::new(err),
                });
            }
            let sleep = backoff.min(remaining);
            tracing::warn!(attempt, ?sleep, error = %err, "online store write failed; retrying");
            tokio::time::sleep(sleep).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }
}
