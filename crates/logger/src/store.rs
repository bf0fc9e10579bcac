//! The log store: one SQLite file (`<data_dir>/logs.db`) with the lines, a full-text index over
//! them (FTS5, contentless: the text is stored once, in `lines`), the order-timeline index built
//! from the journal, and the journal position of that index.
//!
//! **Ids are times.** A line's id is its timestamp in milliseconds shifted left by 20 bits plus
//! a slot number (up to 2^20 lines share a millisecond), so the primary key is the time order:
//! "newest first" is a backwards walk of the table (or of the full-text index, which FTS5 can
//! do with `ORDER BY rowid DESC` and stop after a page), a time range is an id range, and the
//! cursor of the next page is the last id of this one. Times must lie in 1970..2248.
//!
//! **One index.** Besides the primary key there is only the full-text index: every line's
//! search text holds its order id, account and symbol, so `order_id=`, a key's accounts and
//! `q=` are all answered by walking the full-text index newest first and checking each hit's
//! columns exactly. Secondary B-tree indexes would cost a third of the ingest rate; a filter
//! the full-text index cannot narrow (a service or level alone) walks the lines newest first,
//! which is quick for common values and slow for rare ones over a long history (narrow it with
//! `from`/`to` or words).
//!
//! One [`Writer`] (one thread) writes; readers ([`Store`]) use a small pool of read-only
//! connections (WAL mode: reads never wait for the writer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use model::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::{Map, Value};

use crate::LoggerError;
use crate::query::Filter;
use crate::record::{Level, Record};
use crate::timeline::OrderEvent;

/// Bits of an id below the millisecond (the slot within it).
const SLOT_BITS: u32 = 20;
const SLOTS: i64 = 1 << SLOT_BITS;
/// Milliseconds since 1970 must stay below this (2248-09-26), so an id fits an i64.
pub const MAX_MILLIS: i64 = 1 << (63 - SLOT_BITS);
/// Rows deleted per retention transaction (the writer interleaves them with new lines).
const DELETE_CHUNK: i64 = 20_000;
/// The store is brought back under this share of `max_bytes` once it is over.
const SIZE_TARGET: f64 = 0.9;

/// The first id of the millisecond `ts` falls in.
pub fn key_of(ts: Timestamp) -> i64 {
    ts.as_nanos().div_euclid(1_000_000).clamp(0, MAX_MILLIS - 1) << SLOT_BITS
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    level INTEGER NOT NULL,
    service TEXT NOT NULL,
    target TEXT NOT NULL,
    message TEXT NOT NULL,
    order_id TEXT,
    account TEXT,
    symbol TEXT,
    fields TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS lines_fts USING fts5(
    body, content='', contentless_delete=1,
    tokenize='unicode61 remove_diacritics 0'
);
CREATE TABLE IF NOT EXISTS order_events (
    order_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    accounts TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS order_events_ts ON order_events(ts);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> LoggerError + '_ {
    move |source| LoggerError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// A stored line: its id (time order, the cursor) and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLine {
    pub id: i64,
    pub record: Record,
}

impl StoredLine {
    pub fn to_json(&self) -> Value {
        self.record.to_json(Some(self.id))
    }
}

/// A page of lines, newest first, with the cursor of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub lines: Vec<StoredLine>,
    pub next_cursor: Option<i64>,
}

/// What the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use (pages not on the free list).
    pub bytes: u64,
    pub oldest_id: Option<i64>,
    pub newest_id: Option<i64>,
}

/// When old data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ms: i64,
    pub max_bytes: u64,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    pub lines: u64,
    pub order_events: u64,
    /// Everything before this id (time) is gone.
    pub before_id: Option<i64>,
}

fn open_write(path: &Path) -> Result<Connection, LoggerError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| LoggerError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let e = sqlite(path);
    let conn = Connection::open(path).map_err(&e)?;
    // Before the first table: freed pages can then be handed back to the file system.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(&e)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&e)?;
    // Log lines are not acknowledged facts: a power cut may lose the last commits, never
    // corrupt the file (WAL), and no fsync per batch is paid.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&e)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&e)?;
    conn.execute_batch(SCHEMA).map_err(&e)?;
    Ok(conn)
}

/// The writer's connection: a larger page cache (the hot pages stay in memory between
/// batches) and a larger full-text buffer (fewer, larger index segments per batch, so less
/// merging).
fn open_writer(path: &Path) -> Result<Connection, LoggerError> {
    let conn = open_write(path)?;
    let e = sqlite(path);
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(&e)?;
    // Checkpoints stay at SQLite's 4 MB of log: 64 MB ones ingest ~10% faster, but each
    // writes and syncs 64 MB at once, and in `up` the journal's fsyncs share the disk: an
    // order's acknowledgement must not wait behind a log checkpoint.
    conn.execute(
        "INSERT INTO lines_fts(lines_fts, rank) VALUES('hashsize', ?1)",
        [16 * 1024 * 1024],
    )
    .map_err(&e)?;
    Ok(conn)
}

fn open_read(path: &Path) -> Result<Connection, LoggerError> {
    let e = sqlite(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&e)?;
    Ok(conn)
}

// --- reading ------------------------------------------------------------------------------------

/// Read access to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

/// Read connections kept for reuse.
const POOL: usize = 4;

const LINE_COLUMNS: &str = "l.id, l.ts, l.level, l.service, l.target, l.message, l.order_id, l.account, l.symbol, l.fields";

fn line_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredLine> {
    let fields: Option<String> = row.get(9)?;
    let fields = fields
        .and_then(|f| serde_json::from_str::<Map<String, Value>>(&f).ok())
        .unwrap_or_default();
    Ok(StoredLine {
        id: row.get(0)?,
        record: Record {
            ts: Timestamp::from_nanos(row.get(1)?),
            level: Level::from_code(row.get(2)?),
            service: row.get(3)?,
            target: row.get(4)?,
            message: row.get(5)?,
            order_id: row.get(6)?,
            account: row.get(7)?,
            symbol: row.get(8)?,
            fields,
        },
    })
}

impl Store {
    /// Opens (creating it and its schema if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, LoggerError> {
        drop(open_write(path)?);
        Ok(Store {
            path: Arc::new(path.to_path_buf()),
            pool: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LoggerError> {
        let conn = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => open_read(&self.path)?,
        };
        let result = f(&conn).map_err(sqlite(&self.path));
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL {
            pool.push(conn);
        }
        result
    }

    /// A page of lines matching `filter`, newest first, older than `cursor` when given.
    pub fn page(
        &self,
        filter: &Filter,
        cursor: Option<i64>,
        limit: usize,
    ) -> Result<Page, LoggerError> {
        let (sql, args) = page_sql(filter, cursor, limit + 1);
        let mut lines = self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), line_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let next_cursor = if lines.len() > limit {
            lines.truncate(limit);
            lines.last().map(|l| l.id)
        } else {
            None
        };
        Ok(Page { lines, next_cursor })
    }

    /// Every line carrying `order_id` (oldest first), at most `limit`.
    pub fn order_lines(
        &self,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredLine>, LoggerError> {
        let filter = Filter {
            order_id: Some(order_id.to_owned()),
            ..Filter::default()
        };
        let (sql, args) = page_sql(&filter, None, limit);
        // The same search, oldest first.
        let sql = sql.replace(" DESC LIMIT ", " ASC LIMIT ");
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), line_from_row)?;
            rows.collect()
        })
    }

    /// The journal events indexed for an order, in journal order.
    pub fn order_events(&self, order_id: u64) -> Result<Vec<OrderEvent>, LoggerError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT order_id, seq, ts, kind, accounts, summary FROM order_events
                 WHERE order_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![order_id as i64], |row| {
                let accounts: String = row.get(4)?;
                let summary: String = row.get(5)?;
                Ok(OrderEvent {
                    order_id: row.get::<_, i64>(0)? as u64,
                    seq: row.get::<_, i64>(1)? as u64,
                    ts: Timestamp::from_nanos(row.get(2)?),
                    kind: row.get(3)?,
                    accounts: serde_json::from_str(&accounts).unwrap_or_default(),
                    summary: serde_json::from_str(&summary).unwrap_or(Value::Null),
                })
            })?;
            rows.collect()
        })
    }

    /// The last journal sequence the order index has applied.
    pub fn journal_position(&self) -> Result<u64, LoggerError> {
        self.with_reader(read_position)
    }

    /// Bytes in use and the range of stored lines.
    pub fn usage(&self) -> Result<Usage, LoggerError> {
        self.with_reader(usage)
    }

    /// Lines stored (a count over the whole table: for tests and tools, not for requests).
    pub fn count(&self) -> Result<u64, LoggerError> {
        self.with_reader(|c| {
            c.query_row("SELECT count(*) FROM lines", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
    }
}

fn read_position(c: &Connection) -> rusqlite::Result<u64> {
    c.query_row(
        "SELECT value FROM meta WHERE name = 'journal_position'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0) as u64)
}

fn usage(c: &Connection) -> rusqlite::Result<Usage> {
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let (oldest, newest): (Option<i64>, Option<i64>) =
        c.query_row("SELECT min(id), max(id) FROM lines", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(Usage {
        bytes: ((pages - free).max(0) * size) as u64,
        oldest_id: oldest,
        newest_id: newest,
    })
}

/// The SQL of a page and its arguments. A search (`q`) walks the full-text index backwards
/// from the cursor and joins each hit to its line; otherwise the lines table (or, for an order
/// id or account, its index) is walked backwards. Every other filter is checked per row.
fn page_sql(
    filter: &Filter,
    cursor: Option<i64>,
    limit: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as Sql;
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    let expression = filter.index_expression();
    let fts = expression.is_some();
    let id = if fts { "f.rowid" } else { "l.id" };
    if let Some(expr) = expression {
        conds.push("lines_fts MATCH ?".into());
        args.push(Sql::Text(expr));
    }
    if let Some(c) = cursor {
        conds.push(format!("{id} < ?"));
        args.push(Sql::Integer(c));
    }
    if let Some(from) = filter.from {
        conds.push(format!("{id} >= ?"));
        args.push(Sql::Integer(key_of(Timestamp::from_nanos(from))));
        conds.push("l.ts >= ?".into());
        args.push(Sql::Integer(from));
    }
    if let Some(to) = filter.to {
        // Lines of the millisecond `to` falls in may still be before it.
        conds.push(format!("{id} < ?"));
        args.push(Sql::Integer(
            key_of(Timestamp::from_nanos(to)).saturating_add(SLOTS),
        ));
        conds.push("l.ts < ?".into());
        args.push(Sql::Integer(to));
    }
    if let Some(s) = &filter.service {
        conds.push("l.service = ?".into());
        args.push(Sql::Text(s.clone()));
    }
    if let Some(level) = filter.min_level {
        conds.push("l.level >= ?".into());
        args.push(Sql::Integer(level.code().max(Level::Trace.code())));
    }
    if let Some(o) = &filter.order_id {
        conds.push("l.order_id = ?".into());
        args.push(Sql::Text(o.clone()));
    }
    if let Some(s) = &filter.symbol {
        conds.push("l.symbol = ?".into());
        args.push(Sql::Text(s.clone()));
    }
    if let Some(accounts) = &filter.accounts {
        if accounts.is_empty() {
            conds.push("0".into());
        } else {
            conds.push(format!(
                "l.account IN ({})",
                vec!["?"; accounts.len()].join(",")
            ));
            args.extend(accounts.iter().map(|a| Sql::Text(a.clone())));
        }
    }
    let from = if fts {
        "lines_fts f JOIN lines l ON l.id = f.rowid"
    } else {
        "lines l"
    };
    let wheres = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    args.push(Sql::Integer(limit as i64));
    (
        format!("SELECT {LINE_COLUMNS} FROM {from}{wheres} ORDER BY {id} DESC LIMIT ?"),
        args,
    )
}

// --- writing ------------------------------------------------------------------------------------

/// The one writer of the store.
pub struct Writer {
    conn: Connection,
    path: PathBuf,
    /// Next free slot per recent millisecond (forgotten in bulk when it grows: a forgotten
    /// millisecond is looked up again in the table).
    slots: HashMap<i64, i64>,
}

/// Most milliseconds whose next slot is remembered.
const SLOT_CACHE: usize = 65_536;

impl Writer {
    pub fn open(path: &Path) -> Result<Writer, LoggerError> {
        Ok(Writer {
            conn: open_writer(path)?,
            path: path.to_path_buf(),
            slots: HashMap::new(),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LoggerError + '_ {
        sqlite(&self.path)
    }

    /// Runs `f` in one transaction (committed if it returns `Ok`).
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, LoggerError>,
    ) -> Result<T, LoggerError> {
        let path = self.path.clone();
        let e = sqlite(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut batch = Batch {
            tx,
            slots: &mut self.slots,
            path: &path,
        };
        let out = f(&mut batch)?;
        let Batch { tx, slots, .. } = batch;
        tx.commit().map_err(&e)?;
        if slots.len() > SLOT_CACHE {
            slots.clear();
        }
        Ok(out)
    }

    /// Deletes what retention says must go, oldest first: everything older than the age limit,
    /// then, while the store uses more than `max_bytes`, the oldest share of what is left.
    /// At most `max_chunks` delete transactions, so the writer goes back to new lines soon;
    /// what is left is deleted on the next pass.
    pub fn retain(
        &mut self,
        rules: Retention,
        now: Timestamp,
        max_chunks: usize,
    ) -> Result<Retained, LoggerError> {
        let mut done = Retained::default();
        let age_cutoff = key_of(Timestamp::from_nanos(
            now.as_nanos()
                .saturating_sub(rules.max_age_ms.saturating_mul(1_000_000)),
        ));
        let mut chunks = 0;
        while chunks < max_chunks {
            let n = self.delete_chunk(age_cutoff, &mut done)?;
            chunks += 1;
            if n < DELETE_CHUNK as u64 {
                break;
            }
        }
        if chunks >= max_chunks {
            return Ok(done);
        }
        let u = usage(&self.conn).map_err(self.err())?;
        if u.bytes > rules.max_bytes
            && let (Some(oldest), Some(newest)) = (u.oldest_id, u.newest_id)
        {
            // Delete the oldest share of the time range that would bring the store back under
            // its target, assuming lines spread evenly over time. Space freed inside the
            // full-text index shows only after its segments merge, so the next pass measures
            // again rather than this one deleting until the numbers move.
            let share = ((u.bytes as f64 - rules.max_bytes as f64 * SIZE_TARGET) / u.bytes as f64)
                .clamp(0.01, 0.5);
            let span = ((newest >> SLOT_BITS) - (oldest >> SLOT_BITS)) as f64;
            let cutoff_ms = (oldest >> SLOT_BITS) + (span * share).ceil().max(1.0) as i64;
            let cutoff = cutoff_ms << SLOT_BITS;
            while chunks < max_chunks {
                let n = self.delete_chunk(cutoff, &mut done)?;
                chunks += 1;
                if n < DELETE_CHUNK as u64 {
                    break;
                }
            }
        }
        if done.lines > 0 || done.order_events > 0 {
            // Hand freed pages back to the file system, and let the full-text index fold in
            // its deletions.
            self.conn
                .execute_batch(
                    "INSERT INTO lines_fts(lines_fts, rank) VALUES('merge', 64);
                     PRAGMA incremental_vacuum;",
                )
                .map_err(self.err())?;
        }
        Ok(done)
    }

    /// Deletes up to [`DELETE_CHUNK`] lines before `cutoff` (and the timeline entries of that
    /// time) in one transaction; returns the lines deleted.
    fn delete_chunk(&mut self, cutoff: i64, done: &mut Retained) -> Result<u64, LoggerError> {
        let e = sqlite(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT max(id) FROM (SELECT id FROM lines WHERE id < ?1 ORDER BY id LIMIT ?2)",
                params![cutoff, DELETE_CHUNK],
                |r| r.get(0),
            )
            .map_err(&e)?;
        let mut lines = 0;
        if let Some(last) = last {
            let mut ids = tx
                .prepare_cached("SELECT id FROM lines WHERE id <= ?1")
                .map_err(&e)?;
            let mut del = tx
                .prepare_cached("DELETE FROM lines_fts WHERE rowid = ?1")
                .map_err(&e)?;
            let all: Vec<i64> = ids
                .query_map([last], |r| r.get(0))
                .map_err(&e)?
                .collect::<rusqlite::Result<_>>()
                .map_err(&e)?;
            for id in &all {
                del.execute([id]).map_err(&e)?;
            }
            drop((ids, del));
            lines = tx
                .execute("DELETE FROM lines WHERE id <= ?1", [last])
                .map_err(&e)? as u64;
        }
        // Timeline entries up to the same time: whole chunk when the lines are all gone.
        let until_ns = if lines < DELETE_CHUNK as u64 {
            (cutoff >> SLOT_BITS).saturating_mul(1_000_000)
        } else {
            last.map_or(0, |l| ((l >> SLOT_BITS) + 1).saturating_mul(1_000_000))
        };
        let events = tx
            .execute("DELETE FROM order_events WHERE ts < ?1", [until_ns])
            .map_err(&e)? as u64;
        tx.commit().map_err(&e)?;
        done.lines += lines;
        done.order_events += events;
        if lines > 0 || events > 0 {
            done.before_id = Some(
                done.before_id
                    .unwrap_or(0)
                    .max(cutoff.min(last.map_or(cutoff, |l| l + 1))),
            );
        }
        Ok(lines)
    }

    pub fn usage(&self) -> Result<Usage, LoggerError> {
        usage(&self.conn).map_err(self.err())
    }
}

/// One write transaction.
pub struct Batch<'a> {
    tx: Transaction<'a>,
    slots: &'a mut HashMap<i64, i64>,
    path: &'a Path,
}

impl Batch<'_> {
    /// Stores one line; returns its id.
    pub fn insert(&mut self, r: &Record) -> Result<i64, LoggerError> {
        let e = sqlite(self.path);
        let base = key_of(r.ts);
        let next = match self.slots.get(&base) {
            Some(n) => *n,
            None => {
                let max: Option<i64> = self
                    .tx
                    .prepare_cached("SELECT max(id) FROM lines WHERE id >= ?1 AND id < ?2")
                    .map_err(&e)?
                    .query_row(params![base, base + SLOTS], |row| row.get(0))
                    .map_err(&e)?;
                max.map_or(base, |m| m + 1)
            }
        };
        if next >= base + SLOTS {
            return Err(LoggerError::MillisecondFull(r.ts));
        }
        let fields = if r.fields.is_empty() {
            None
        } else {
            serde_json::to_string(&r.fields).ok()
        };
        self.tx
            .prepare_cached(
                "INSERT INTO lines (id, ts, level, service, target, message, order_id, account, symbol, fields)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(&e)?
            .execute(params![
                next,
                r.ts.as_nanos(),
                r.level.code(),
                r.service,
                r.target,
                r.message,
                r.order_id,
                r.account,
                r.symbol,
                fields,
            ])
            .map_err(&e)?;
        self.tx
            .prepare_cached("INSERT INTO lines_fts (rowid, body) VALUES (?1, ?2)")
            .map_err(&e)?
            .execute(params![next, r.search_text()])
            .map_err(&e)?;
        self.slots.insert(base, next + 1);
        Ok(next)
    }

    /// Indexes journal events for the order timeline and records the journal position.
    pub fn index_events(
        &mut self,
        events: &[OrderEvent],
        position: u64,
    ) -> Result<(), LoggerError> {
        let e = sqlite(self.path);
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO order_events (order_id, seq, ts, kind, accounts, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(&e)?;
        for ev in events {
            stmt.execute(params![
                ev.order_id as i64,
                ev.seq as i64,
                ev.ts.as_nanos(),
                ev.kind,
                serde_json::to_string(&ev.accounts).unwrap_or_else(|_| "[]".into()),
                ev.summary.to_string(),
            ])
            .map_err(&e)?;
        }
        drop(stmt);
        self.tx
            .execute(
                "INSERT INTO meta (name, value) VALUES ('journal_position', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [position as i64],
            )
            .map_err(&e)?;
        Ok(())
    }

    /// Starts a savepoint: what follows can be undone alone.
    pub fn savepoint(&mut self) -> Result<(), LoggerError> {
        self.tx
            .execute_batch("SAVEPOINT push")
            .map_err(sqlite(self.path))
    }

    pub fn release_savepoint(&mut self) -> Result<(), LoggerError> {
        self.tx
            .execute_batch("RELEASE push")
            .map_err(sqlite(self.path))
    }

    /// Undoes everything since the savepoint.
    pub fn rollback_savepoint(&mut self) -> Result<(), LoggerError> {
        self.tx
            .execute_batch("ROLLBACK TO push; RELEASE push")
            .map_err(sqlite(self.path))
    }

    /// The journal position as of this transaction.
    pub fn journal_position(&self) -> Result<u64, LoggerError> {
        read_position(&self.tx).map_err(sqlite(self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_time_and_ranges_cover_whole_milliseconds() {
        let a = key_of(Timestamp::from_nanos(1_700_000_000_123_456_789));
        let b = key_of(Timestamp::from_nanos(1_700_000_000_124_000_000));
        assert!(a < b);
        assert_eq!(b - a, SLOTS);
        assert_eq!(key_of(Timestamp::from_nanos(0)), 0);
        assert_eq!(
            key_of(Timestamp::from_nanos(i64::MAX)) + (SLOTS - 1),
            i64::MAX
        );
    }

    #[test]
    fn a_search_walks_the_index_and_checks_the_rest_per_row() {
        let f = Filter {
            terms: crate::query::parse_terms("filled").unwrap(),
            service: Some("engine".into()),
            accounts: Some(vec!["a".into(), "b".into()]),
            ..Filter::default()
        };
        let (sql, args) = page_sql(&f, Some(99), 11);
        assert!(
            sql.contains("FROM lines_fts f JOIN lines l ON l.id = f.rowid"),
            "{sql}"
        );
        assert!(sql.contains("lines_fts MATCH ?"), "{sql}");
        assert!(sql.ends_with("ORDER BY f.rowid DESC LIMIT ?"), "{sql}");
        assert!(sql.contains("l.account IN (?,?)"), "{sql}");
        assert_eq!(args.len(), 6);
        let (plain, _) = page_sql(&Filter::default(), None, 5);
        assert!(plain.contains("FROM lines l ORDER BY l.id DESC"), "{plain}");
    }
}
