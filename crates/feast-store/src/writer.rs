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
//! # Newest wins, as the only writer (the default)
//! The feature pipeline is the only writer of its views' slots, so [`Freshness::SoleWriter`]
//! remembers the event time it last wrote per view and entity and sends plain pipelined `HSET`
//! (one per entity hash, all its views) and `MSET` (the documents): no script, and no read
//! round trip except for slots it has not written yet (first write, after a restart or a
//! reconnect), which it reads from Redis first. See [`Freshness`] for when to pick which.
//!
//! Cluster note: a call touches many keys, which Redis Cluster only accepts in one slot; this
//! writer targets standalone Redis/Valkey (what the plan deploys).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
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
            freshness: Freshness::SoleWriter,
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
    /// This writer is the only one writing its (view, entity) slots, so it compares each row
    /// against the event time it last wrote there, kept in memory (one entry per view and
    /// entity, so bounded by the entity count), and sends only plain pipelined `HSET` / `MSET`:
    /// no script, no read round trip in the steady state.
    ///
    /// "Only writer" across restarts: a slot not yet in memory (a new writer, a writer after a
    /// restart, after a reconnect, or after a failed write) is read from Redis first, as in
    /// [`ReadThenWrite`](Self::ReadThenWrite), so what an earlier run (or Feast) stored is never
    /// overwritten by an older row. What it cannot see is a *different* writer storing into the
    /// same slots while this one runs (e.g. Feast's `materialize`, or a second pipeline for the
    /// same views): use [`AtomicScript`](Self::AtomicScript) there. The memory is dropped
    /// whenever the connection is re-opened (Redis may have restarted from an older snapshot)
    /// and for the slots of a write that failed (it may not have been applied).
    SoleWriter,
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
    /// [`Freshness::SoleWriter`]: event time (ns) last written per slot; see [`slot_key`].
    last_written: SyncMutex<FastMap<Box<[u8]>, i64>>,
    sole_writer_turn: Mutex<()>,
}

/// The memory key of one (hash key, view) slot: the hash key, a `0xFF` byte (never in UTF-8,
/// so the view name cannot run into the project name), the view.
fn slot_key(hash_key: &[u8], view: &str) -> Box<[u8]> {
    let mut k = Vec::with_capacity(hash_key.len() + 1 + view.len());
    put_slot_key(&mut k, hash_key, view);
    k.into_boxed_slice()
}

fn put_slot_key(out: &mut Vec<u8>, hash_key: &[u8], view: &str) {
    out.clear();
    out.extend_from_slice(hash_key);
    out.push(0xFF);
    out.extend_from_slice(view.as_bytes());
}

/// The per-batch maps are keyed by our own entity keys, not by untrusted input, and SipHash
/// was 6% of the write's CPU in the profile; FxHash (rustc's hasher) is enough here.
type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        // hashbrown takes its 7 control bits from the top: spread the low bits up.
        self.0.rotate_left(26)
    }
}

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
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
            last_written: SyncMutex::new(FastMap::default()),
            sole_writer_turn: Mutex::new(()),
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
        // A new connection may face a Redis that restarted from an older snapshot: re-read.
        self.forget_all();
        *guard = Some(c.clone());
        Ok(c)
    }

    fn forget_all(&self) {
        self.last_written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
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
        match self.options.freshness {
            Freshness::ReadThenWrite => {
                return self.write_read_then_write(conn, project, rows, false).await;
            }
            Freshness::SoleWriter => {
                return self.write_read_then_write(conn, project, rows, true).await;
            }
            Freshness::AtomicScript => {}
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
    /// at once) and the JSON documents with `MSET`. With `remember` ([`Freshness::SoleWriter`])
    /// only the slots this writer has not written yet are read, and the written event times
    /// are remembered once every pipeline succeeded.
    async fn write_read_then_write(
        &self,
        conn: MultiplexedConnection,
        project: &str,
        rows: &[OnlineRow],
        remember: bool,
    ) -> Result<WriteStats, FeastStoreError> {
        // Sole-writer writes are serialized: two overlapping calls would each decide against
        // the memory as it was before the other one wrote.
        let _turn = match remember {
            true => Some(self.sole_writer_turn.lock().await),
            false => None,
        };
        let res = self
            .read_then_write_inner(conn, project, rows, remember)
            .await;
        if remember {
            let mut mem = self.last_written.lock().unwrap_or_else(|p| p.into_inner());
            match &res {
                Ok((_, written)) => {
                    for (slot, ts) in written {
                        let e = mem.entry(slot.clone()).or_insert(*ts);
                        *e = (*e).max(*ts);
                    }
                }
                // Some pipelines may not have been applied: read these slots again next time.
                Err(_) => {
                    for row in rows {
                        let key = redis_key(project, &row.join_key, &row.entity);
                        mem.remove(&slot_key(&key, &row.view));
                    }
                }
            }
        }
        res.map(|(stats, _)| stats)
    }

    /// Returns the stats and, with `remember`, the (slot, event time) of every row written.
    #[allow(clippy::type_complexity)]
    async fn read_then_write_inner(
        &self,
        conn: MultiplexedConnection,
        project: &str,
        rows: &[OnlineRow],
        remember: bool,
    ) -> Result<(WriteStats, Vec<(Box<[u8]>, i64)>), FeastStoreError> {
        const PIPELINE_CMDS: usize = 2_000;
        let mut stats = WriteStats::default();
        // Unique hash keys in first-seen order, and each row's index into them.
        let mut key_index: FastMap<Vec<u8>, usize> = FastMap::default();
        key_index.reserve(rows.len());
        let mut keys: Vec<(Vec<u8>, Vec<String>)> = Vec::new(); // (key, _ts fields to read)
        let mut row_key = Vec::with_capacity(rows.len());
        let mut stored: FastMap<(usize, &str), Timestamp> = FastMap::default();
        stored.reserve(rows.len());
        {
            let mem = remember.then(|| self.last_written.lock().unwrap_or_else(|p| p.into_inner()));
            let mut slot = Vec::with_capacity(128);
            for row in rows {
                let key = redis_key(project, &row.join_key, &row.entity);
                let remembered = mem.as_ref().and_then(|m| {
                    put_slot_key(&mut slot, &key, &row.view);
                    m.get(&slot[..]).copied()
                });
                let idx = match key_index.get(&key) {
                    Some(&idx) => idx,
                    None => {
                        key_index.insert(key.clone(), keys.len());
                        keys.push((key, Vec::new()));
                        keys.len() - 1
                    }
                };
                match remembered {
                    Some(ns) => {
                        stored.insert((idx, row.view.as_str()), Timestamp::from_nanos(ns));
                    }
                    None => {
                        let ts = ts_field_name(&row.view);
                        if !keys[idx].1.contains(&ts) {
                            keys[idx].1.push(ts);
                        }
                    }
                }
                row_key.push(idx);
            }
        }

        // Round trip 1: the stored timestamps (of the slots not remembered).
        let to_read: Vec<usize> = (0..keys.len()).filter(|&i| !keys[i].1.is_empty()).collect();
        let mut reads = tokio::task::JoinSet::new();
        for (chunk_no, chunk) in to_read.chunks(PIPELINE_CMDS).enumerate() {
            let mut pipe = redis::pipe();
            for &i in chunk {
                pipe.cmd("HMGET").arg(&keys[i].0).arg(&keys[i].1);
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
                let idx = to_read[chunk_no * PIPELINE_CMDS + j];
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
        let mut newest: FastMap<(usize, &str), usize> = FastMap::default();
        newest.reserve(rows.len());
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
            // Sized up front: the command's buffers would otherwise grow (realloc + copy)
            // field by field; malloc/realloc/memmove were a third of the write's CPU.
            let (n_args, n_bytes) = members.iter().fold((2, keys[idx].0.len() + 4), |acc, &i| {
                let r = &rows[i];
                (
                    acc.0 + 2 + 2 * r.values.len(),
                    acc.1 + 32 + r.view.len() + r.values.len() * 16,
                )
            });
            let mut cmd = redis::Cmd::with_capacity(n_args, n_bytes);
            cmd.arg("HSET").arg(&keys[idx].0);
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
            pipe.add_command(cmd).ignore();
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
        if let Some(e) = first_err {
            return Err(e);
        }
        let written = if remember {
            rows.iter()
                .zip(&fresh)
                .zip(&row_key)
                .filter(|((_, ok), _)| **ok)
                .map(|((row, _), &idx)| {
                    (slot_key(&keys[idx].0, &row.view), row.event_ts.as_nanos())
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok((stats, written))
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
