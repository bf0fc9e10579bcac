//! The store of per-order rows: `<data_dir>/execution_quality.db`.
//!
//! An order whose row can change only by realized-spread lookups still waiting leaves the
//! engine's full state (`ExecQuality::drain_rows`) and its row lands here, with the waiting
//! lookups described in the row (`OrderQuality::pending_spreads`); when they resolve (up to the
//! longest horizon later) the engine hands out an update that completes the stored row
//! ([`RowWriter::apply`]). Everything that reports over history (`/quality`, one order, Rule
//! 605) streams these rows back and merges them with what the engine still holds: the rows of
//! the orders it holds in full, and its views of the rows still waiting (see [`MergeById`]).
//!
//! Writes are upserts keyed by order id, and updates of the stored row. The consumer's
//! position is its snapshot, so after a crash it replays the journal tail after its newest
//! snapshot and hands out some rows and updates a second time: the upsert rewrites the same
//! row (the engine is deterministic; a completed row goes back to waiting until its update is
//! replayed too), an update of a row already completed changes nothing, and an order that is
//! both stored and held again during that replay is reported once.

use std::path::{Path, PathBuf};

use miniz_oxide::deflate::core::{
    CompressionStrategy, CompressorOxide, TDEFLFlush, TDEFLStatus, compress,
    create_comp_flags_from_zip_params,
};
use std::sync::{Arc, Mutex};

use execq::{OrderQuality, RowChange, RowUpdater, SpreadUpdate};
use model::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::QualityError;

/// The store's file name inside the data directory.
pub const DB_FILE: &str = "execution_quality.db";

const SCHEMA_VERSION: i64 = 1;

/// One row per finalized order: its stored JSON (served form plus exact sums) and the columns
/// the reads filter on. Every listing walks an index in order-id order, so merging with the
/// held rows (also in order-id order) needs no sort.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS order_rows (
    order_id   TEXT    PRIMARY KEY,
    account    TEXT,                -- NULL: the order named no account
    symbol     TEXT    NOT NULL,
    receipt_ts INTEGER NOT NULL,    -- ns since the Unix epoch
    month      TEXT    NOT NULL,    -- YYYY-MM (UTC) of receipt_ts: the Rule 605 month
    row        BLOB    NOT NULL     -- deflate(execq::OrderQuality::to_stored_json); TEXT in old rows
);
CREATE INDEX IF NOT EXISTS order_rows_by_account ON order_rows(account, order_id);
CREATE INDEX IF NOT EXISTS order_rows_by_symbol  ON order_rows(symbol, order_id);
CREATE INDEX IF NOT EXISTS order_rows_by_time    ON order_rows(receipt_ts);
CREATE INDEX IF NOT EXISTS order_rows_by_month   ON order_rows(month, order_id);
";

/// Encodes rows as stored: each row's JSON, deflated. The JSON repeats every field name and the
/// exact sums of every statistic, so it compresses about threefold (3.3 -> 1.1 KB for an IOC
/// order): at 1000 orders/s ~4 GB of disk an hour instead of ~12 GB (each row is also
/// rewritten once, by its spread update). One encoder per writer, reused from row to row: a fresh compressor
/// per row allocated and zeroed ~100 KiB of tables each time.
pub struct RowEncoder {
    deflate: Box<CompressorOxide>,
}

impl Default for RowEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RowEncoder {
    pub fn new() -> RowEncoder {
        // Level 1 (greedy, one probe), raw deflate (negative window bits), fixed Huffman
        // blocks: building each block's own code tables cost as much as the matching for rows
        // of a few KB, and the fixed codes store ~20% more bytes.
        let flags = create_comp_flags_from_zip_params(1, -15, CompressionStrategy::Fixed as i32);
        RowEncoder {
            deflate: Box::new(CompressorOxide::new(flags)),
        }
    }

    /// The stored form of `row`: raw deflate of `OrderQuality::to_stored_json`.
    pub fn encode(&mut self, row: &OrderQuality) -> Result<Vec<u8>, QualityError> {
        let json = row.to_stored_json()?;
        self.deflate.reset();
        let mut out = vec![0; json.len() / 2 + 64];
        let (mut input, mut written) = (json.as_bytes(), 0);
        loop {
            let (status, read, wrote) = compress(
                &mut self.deflate,
                input,
                &mut out[written..],
                TDEFLFlush::Finish,
            );
            input = &input[read..];
            written += wrote;
            match status {
                TDEFLStatus::Done => {
                    out.truncate(written);
                    return Ok(out);
                }
                // Out of room (data that does not compress).
                TDEFLStatus::Okay => out.resize(out.len() * 2, 0),
                other => {
                    return Err(execq::ExecqError::BadStoredRow(format!(
                        "cannot compress a row: {other:?}"
                    ))
                    .into());
                }
            }
        }
    }
}

/// A stored row back: deflated JSON, or plain JSON text (rows written before compression).
fn decode_row(v: rusqlite::types::ValueRef<'_>) -> Result<OrderQuality, QualityError> {
    use std::io::Read;
    match v {
        rusqlite::types::ValueRef::Text(t) => {
            let t = std::str::from_utf8(t)
                .map_err(|e| execq::ExecqError::BadStoredRow(e.to_string()))?;
            Ok(OrderQuality::from_stored_json(t)?)
        }
        rusqlite::types::ValueRef::Blob(b) => {
            let mut json = String::with_capacity(b.len() * 8);
            flate2::read::DeflateDecoder::new(b)
                .read_to_string(&mut json)
                .map_err(|e| execq::ExecqError::BadStoredRow(format!("damaged row: {e}")))?;
            Ok(OrderQuality::from_stored_json(&json)?)
        }
        _ => Err(execq::ExecqError::BadStoredRow("a row is neither text nor blob".into()).into()),
    }
}

fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> QualityError + '_ {
    move |source| QualityError::Store {
        path: path.display().to_string(),
        source,
    }
}

impl journal::derived::StoreError for QualityError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        QualityError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        sqlite(path)(source)
    }
    fn schema_too_new(path: &Path, found: i64, supported: i64) -> Self {
        QualityError::Schema {
            path: path.display().to_string(),
            found,
            supported,
        }
    }
}

/// The Rule 605 month of a receipt time, as `execq::rule605_from_rows` computes it.
fn month_of(ts: Timestamp) -> String {
    ts.to_datetime().format("%Y-%m").to_string()
}

/// The consumer's write side: one connection, one transaction per batch of rows and updates.
pub struct RowWriter {
    path: PathBuf,
    conn: Connection,
    encoder: RowEncoder,
}

impl RowWriter {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<RowWriter, QualityError> {
        // `synchronous=NORMAL` (journal::derived): a row commit lost to a power cut is only
        // harmful once a snapshot that no longer holds its order is durable (nothing would
        // finalize it again), so the consumer calls `sync` before every snapshot
        // (`Snapshot::before_snapshot`): one fsync per snapshot instead of one per batch, off
        // the disk the journal's group commits wait on. A row lost with the tail after the
        // snapshot comes back when the journal tail is replayed (same row, same order id).
        let conn = journal::derived::open_writer::<QualityError>(path, SCHEMA, SCHEMA_VERSION)?;
        Ok(RowWriter {
            path: path.to_owned(),
            conn,
            encoder: RowEncoder::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every committed batch durable: fsyncs the write-ahead log, which holds the commits
    /// since the last checkpoint (a checkpoint syncs what it copies into the database file).
    pub fn sync(&self) -> Result<(), QualityError> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let io = |source| QualityError::Io {
            path: wal.display().to_string(),
            source,
        };
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_all().map_err(io),
            // Nothing committed since the log was last removed (a clean close checkpoints it).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Upserts `rows` in one transaction: a row already stored (the same order handed out
    /// again while a restart replays the journal tail) is replaced by the new one.
    pub fn upsert(&mut self, rows: &[OrderQuality]) -> Result<(), QualityError> {
        let changes: Vec<RowChange> = rows
            .iter()
            .map(|r| RowChange::Row(Box::new(r.clone())))
            .collect();
        self.write(&changes, None).map(|_| ())
    }

    /// Applies the engine's `changes` in order, in one transaction: a row is upserted, an update
    /// completes the stored row of its order (`updater` must have the engine's parameters).
    /// Returns the number of updates whose row is not in the store (nothing to complete: the
    /// store was replaced under the engine's snapshots); an update of a row already complete
    /// (replayed after a restart) changes nothing.
    pub fn apply(
        &mut self,
        changes: &[RowChange],
        updater: &RowUpdater,
    ) -> Result<u64, QualityError> {
        self.write(changes, Some(updater))
    }

    fn write(
        &mut self,
        changes: &[RowChange],
        updater: Option<&RowUpdater>,
    ) -> Result<u64, QualityError> {
        if changes.is_empty() {
            return Ok(0);
        }
        let RowWriter {
            path,
            conn,
            encoder,
        } = self;
        let path: &Path = path;
        let tx = conn.transaction().map_err(sqlite(path))?;
        let mut missing = 0;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO order_rows (order_id, account, symbol, receipt_ts, month, row) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT(order_id) DO UPDATE SET account = excluded.account, \
                     symbol = excluded.symbol, receipt_ts = excluded.receipt_ts, \
                     month = excluded.month, row = excluded.row",
                )
                .map_err(sqlite(path))?;
            let mut get = tx
                .prepare_cached("SELECT row FROM order_rows WHERE order_id = ?1")
                .map_err(sqlite(path))?;
            let mut set = tx
                .prepare_cached("UPDATE order_rows SET row = ?2 WHERE order_id = ?1")
                .map_err(sqlite(path))?;
            for change in changes {
                match change {
                    RowChange::Row(row) => {
                        put.execute(params![
                            row.order_id,
                            row.account,
                            row.symbol,
                            row.receipt_ts.as_nanos(),
                            month_of(row.receipt_ts),
                            encoder.encode(row)?,
                        ])
                        .map_err(sqlite(path))?;
                    }
                    RowChange::Update(u) => {
                        let stored: Option<Result<OrderQuality, QualityError>> = get
                            .query_row([u.order_id()], |r| Ok(decode_row(r.get_ref(0)?)))
                            .optional()
                            .map_err(sqlite(path))?;
                        let Some(row) = stored else {
                            missing += 1;
                            continue;
                        };
                        let mut row = row?;
                        let updater = updater.ok_or_else(|| {
                            execq::ExecqError::BadUpdate("no parameters to apply it with".into())
                        })?;
                        if updater.apply(&mut row, u)? {
                            set.execute(params![u.order_id(), encoder.encode(&row)?])
                                .map_err(sqlite(path))?;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(sqlite(path))?;
        Ok(missing)
    }
}

/// Which stored rows a read covers; `None` fields match everything. Times bound the receipt
/// time: `from <= receipt_ts < to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowQuery {
    /// `None`: every account, including orders without one; `Some`: only these accounts.
    pub accounts: Option<Vec<String>>,
    pub symbol: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// `YYYY-MM` of the receipt time (UTC).
    pub month: Option<String>,
}

/// Read connections kept for reuse.
const MAX_IDLE: usize = 4;

/// Read access to the store, for the HTTP handlers (cheap to clone). Every method blocks on
/// SQLite: async callers run them on the blocking pool.
#[derive(Clone)]
pub struct RowReader {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl RowReader {
    /// Reads the store at `path` (a [`RowWriter`] must have created it).
    pub fn new(path: &Path) -> RowReader {
        RowReader {
            path: Arc::new(path.to_owned()),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn take(&self) -> Result<Connection, QualityError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(c) = idle {
            return Ok(c);
        }
        journal::derived::open_reader(&self.path)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// The stored row of one order.
    pub fn row(&self, order_id: &str) -> Result<Option<OrderQuality>, QualityError> {
        let conn = self.take()?;
        let path = self.path.as_path();
        let row: Option<Result<OrderQuality, QualityError>> = conn
            .query_row(
                "SELECT row FROM order_rows WHERE order_id = ?1",
                [order_id],
                |r| Ok(decode_row(r.get_ref(0)?)),
            )
            .optional()
            .map_err(sqlite(path))?;
        self.give_back(conn);
        row.transpose()
    }

    /// Rows stored.
    pub fn count(&self) -> Result<u64, QualityError> {
        let conn = self.take()?;
        let n: i64 = conn
            .query_row("SELECT count(*) FROM order_rows", [], |r| r.get(0))
            .map_err(sqlite(&self.path))?;
        self.give_back(conn);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Hands `f` the rows `q` selects, one at a time in order-id order (never all in memory).
    /// A row that fails to read ends the iteration, and its error is returned after `f`.
    pub fn with_rows<T>(
        &self,
        q: &RowQuery,
        f: impl FnOnce(&mut dyn Iterator<Item = OrderQuality>) -> T,
    ) -> Result<T, QualityError> {
        let conn = self.take()?;
        let path = self.path.as_path();
        let mut sql = String::from("SELECT row FROM order_rows WHERE 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(accounts) = &q.accounts {
            // Never empty in practice (a scope names at least one account); an empty list
            // selects nothing, as it should.
            let marks = vec!["?"; accounts.len()].join(", ");
            sql.push_str(&format!(" AND account IN ({marks})"));
            args.extend(accounts.iter().cloned().map(Value::Text));
        }
        if let Some(s) = &q.symbol {
            sql.push_str(" AND symbol = ?");
            args.push(Value::Text(s.clone()));
        }
        if let Some(t) = q.from {
            sql.push_str(" AND receipt_ts >= ?");
            args.push(Value::Integer(t.as_nanos()));
        }
        if let Some(t) = q.to {
            sql.push_str(" AND receipt_ts < ?");
            args.push(Value::Integer(t.as_nanos()));
        }
        if let Some(m) = &q.month {
            sql.push_str(" AND month = ?");
            args.push(Value::Text(m.clone()));
        }
        sql.push_str(" ORDER BY order_id");
        let mut failed: Option<QualityError> = None;
        let out = {
            let mut stmt = conn.prepare(&sql).map_err(sqlite(path))?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| Ok(decode_row(r.get_ref(0)?)))
                .map_err(sqlite(path))?;
            let mut it = rows.map_while(|r| match r.map_err(sqlite(path)).and_then(|row| row) {
                Ok(row) => Some(row),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            });
            f(&mut it)
        };
        if let Some(e) = failed {
            return Err(e);
        }
        self.give_back(conn);
        Ok(out)
    }
}

/// Stored rows merged with what the engine holds, all in order-id order, each order once:
/// the rows of the orders it holds in full (`held`) and its views of stored rows still waiting
/// for realized-spread lookups (`views`, `ExecQuality::spread_views`). The engine's part is
/// taken first (under the consumer's lock), then the store is read, so:
///
/// - a stored row still waiting is shown through the engine's view of it;
/// - a stored row complete wins over anything the engine had: its lookups resolved after the
///   engine's part was taken, or the engine is replaying a tail after a restart and holds again
///   an order it had handed out (it will hand out that very row again);
/// - a held row wins over a stored row still waiting: the order left the engine's full state
///   after its part was taken (or is replayed), and the held row has the waiting lookups;
/// - a stored row waiting with neither (an order the engine had not seen when its part was
///   taken) is shown as stored, its waiting lookups left out.
pub struct MergeById<S, H, V>
where
    S: Iterator<Item = OrderQuality>,
    H: Iterator<Item = OrderQuality>,
    V: Iterator<Item = SpreadUpdate>,
{
    stored: std::iter::Peekable<S>,
    held: std::iter::Peekable<H>,
    views: std::iter::Peekable<V>,
    updater: RowUpdater,
}

impl<S, H, V> MergeById<S, H, V>
where
    S: Iterator<Item = OrderQuality>,
    H: Iterator<Item = OrderQuality>,
    V: Iterator<Item = SpreadUpdate>,
{
    /// `updater` must have the engine's parameters.
    pub fn new(stored: S, held: H, views: V, updater: RowUpdater) -> Self {
        MergeById {
            stored: stored.peekable(),
            held: held.peekable(),
            views: views.peekable(),
            updater,
        }
    }

    /// The engine's view of the stored row `id`, if it has one.
    fn view_of(&mut self, id: &str) -> Option<SpreadUpdate> {
        while self.views.next_if(|v| v.order_id() < id).is_some() {}
        self.views.next_if(|v| v.order_id() == id)
    }

    fn stored_now(&mut self, mut row: OrderQuality) -> OrderQuality {
        if let Some(view) = self.view_of(&row.order_id)
            && row.pending_spreads.is_some()
        {
            // Same order id, and the engine's own parameters: only a damaged row fails, and
            // then it is shown as stored.
            let _ = self.updater.apply(&mut row, &view);
        }
        row
    }
}

impl<S, H, V> Iterator for MergeById<S, H, V>
where
    S: Iterator<Item = OrderQuality>,
    H: Iterator<Item = OrderQuality>,
    V: Iterator<Item = SpreadUpdate>,
{
    type Item = OrderQuality;

    fn next(&mut self) -> Option<OrderQuality> {
        let order = match (self.stored.peek(), self.held.peek()) {
            (Some(s), Some(h)) => s.order_id.cmp(&h.order_id),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let row = self.stored.next()?;
                Some(self.stored_now(row))
            }
            std::cmp::Ordering::Greater => self.held.next(),
            std::cmp::Ordering::Equal => {
                let (stored, held) = (self.stored.next()?, self.held.next()?);
                if stored.pending_spreads.is_some() {
                    Some(held)
                } else {
                    Some(stored)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use execq::{RowChange, SpreadUpdate};
    use interchange::{Kind, Record};
    use model::{Decimal, Side};

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    /// Four orders: `o1` (a, AAA, January), `o2` (b, AAA, February), `o3` (no account, BBB,
    /// February), `o4` (c, BBB, February), each cancelled.
    fn rows() -> Vec<OrderQuality> {
        let mut recs = Vec::new();
        for sym in ["AAA", "BBB"] {
            let mut q = Record::new(at("2024-01-31T23:00:00Z"), Kind::Quote, sym);
            q.bid = Some(Decimal::from(99));
            q.ask = Some(Decimal::from(101));
            recs.push(q);
        }
        let orders = [
            ("o1", Some("a"), "AAA", "2024-01-31T23:59:00Z"),
            ("o2", Some("b"), "AAA", "2024-02-01T00:00:00Z"),
            ("o3", None, "BBB", "2024-02-01T00:01:00Z"),
            ("o4", Some("c"), "BBB", "2024-02-01T00:02:00Z"),
        ];
        for (id, account, sym, ts) in orders {
            let mut o = Record::new(at(ts), Kind::OrderNew, sym);
            o.order_id = Some(id.into());
            o.account = account.map(Into::into);
            o.side = Some(Side::Buy);
            o.qty = Some(Decimal::from(100));
            o.order_type = Some("market".into());
            recs.push(o);
        }
        for (id, account, sym, _) in orders {
            let mut c = Record::new(at("2024-02-01T00:03:00Z"), Kind::OrderCancel, sym);
            c.order_id = Some(id.into());
            c.account = account.map(Into::into);
            c.qty = Some(Decimal::from(100));
            recs.push(c);
        }
        let report = execq::compute(&recs, &execq::Params::default()).unwrap();
        report.orders.into_values().map(|b| *b).collect()
    }

    fn ids(reader: &RowReader, q: &RowQuery) -> Vec<String> {
        reader
            .with_rows(q, |rows| rows.map(|r| r.order_id).collect())
            .unwrap()
    }

    #[test]
    fn rows_round_trip_and_every_filter_selects_in_order_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut w = RowWriter::open(&path).unwrap();
        let all = rows();
        assert_eq!(all.len(), 4);
        w.upsert(&all[2..]).unwrap();
        w.upsert(&all[..2]).unwrap();
        let r = RowReader::new(&path);
        assert_eq!(r.count().unwrap(), 4);
        assert_eq!(r.row("o3").unwrap().as_ref(), Some(&all[2]));
        assert_eq!(r.row("o9").unwrap(), None);
        let q = |f: fn(&mut RowQuery)| {
            let mut q = RowQuery::default();
            f(&mut q);
            ids(&r, &q)
        };
        assert_eq!(q(|_| {}), ["o1", "o2", "o3", "o4"]);
        // Several accounts; an order without one belongs to no account.
        assert_eq!(
            q(|q| q.accounts = Some(vec!["c".into(), "a".into()])),
            ["o1", "o4"]
        );
        assert_eq!(q(|q| q.accounts = Some(vec![])), Vec::<String>::new());
        assert_eq!(q(|q| q.symbol = Some("BBB".into())), ["o3", "o4"]);
        assert_eq!(q(|q| q.month = Some("2024-01".into())), ["o1"]);
        assert_eq!(q(|q| q.month = Some("2024-02".into())), ["o2", "o3", "o4"]);
        assert_eq!(
            q(|q| {
                q.from = Some(at("2024-02-01T00:00:00Z"));
                q.to = Some(at("2024-02-01T00:02:00Z"));
            }),
            ["o2", "o3"]
        );
    }

    #[test]
    fn an_encoded_row_decodes_to_itself_in_under_half_its_json() {
        let mut encoder = RowEncoder::new();
        for row in rows() {
            let blob = encoder.encode(&row).unwrap();
            assert!(blob.len() * 2 < row.to_stored_json().unwrap().len());
            let back = decode_row(rusqlite::types::ValueRef::Blob(&blob)).unwrap();
            assert_eq!(back, row);
        }
    }

    #[test]
    fn sync_flushes_the_log_the_commits_are_in_and_needs_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut w = RowWriter::open(&path).unwrap();
        w.upsert(&rows()).unwrap();
        // Commits stay in the write-ahead log (synchronous = NORMAL) until a checkpoint.
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        w.sync().unwrap();
        assert_eq!(RowReader::new(&path).count().unwrap(), rows().len() as u64);
        // No log at all (removed by a clean close's checkpoint): nothing to sync.
        drop(w);
        let w = RowWriter::open(&path).unwrap();
        std::fs::remove_file(&wal).ok();
        w.sync().unwrap();
    }

    #[test]
    fn an_upsert_replaces_the_row_of_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut w = RowWriter::open(&path).unwrap();
        let mut all = rows();
        w.upsert(&all).unwrap();
        all[1].symbol = "ZZZ".into();
        all[1].fill_count = 7;
        w.upsert(&all[1..2]).unwrap();
        let r = RowReader::new(&path);
        assert_eq!(r.count().unwrap(), 4);
        assert_eq!(r.row("o2").unwrap().as_ref(), Some(&all[1]));
        let zzz = RowQuery {
            symbol: Some("ZZZ".into()),
            ..RowQuery::default()
        };
        assert_eq!(ids(&r, &zzz), ["o2"]);
    }

    #[test]
    fn a_merge_keeps_order_id_order_and_the_stored_row_on_a_tie() {
        let all = rows();
        let mut held_o2 = all[1].clone();
        held_o2.fill_count = 99; // a replayed, not yet final view of o2
        let stored = vec![all[1].clone(), all[3].clone()];
        let held = vec![all[0].clone(), held_o2, all[2].clone()];
        let updater = RowUpdater::new(&execq::Params::default()).unwrap();
        let merged: Vec<OrderQuality> = MergeById::new(
            stored.into_iter(),
            held.into_iter(),
            std::iter::empty(),
            updater,
        )
        .collect();
        assert_eq!(merged, all);
    }

    /// One order, bought at 10.02; its row goes out after the 500 ms grace with its realized-
    /// spread lookups (1 s and 10 s) waiting, and their update follows: `(records up to the
    /// row, the row, all records, the update)`.
    fn two_stages() -> (
        Vec<Record>,
        RowChange,
        Vec<Record>,
        RowChange,
        execq::Params,
    ) {
        let p = execq::Params {
            rs_horizons_ms: vec![1_000],
            rs_primary_horizon_ms: 10_000,
            late_fill_grace_ms: 500,
            ..execq::Params::default()
        };
        let t = |ms: i64| Timestamp::from_millis(1_706_745_540_000 + ms);
        let quote = |ms: i64, bid: i64| {
            let mut q = Record::new(t(ms), Kind::Quote, "AAA");
            q.bid = Some(Decimal::new(bid, 2));
            q.ask = Some(Decimal::new(bid + 2, 2));
            q
        };
        let mut o = Record::new(t(1), Kind::OrderNew, "AAA");
        o.order_id = Some("o1".into());
        o.account = Some("a".into());
        o.side = Some(Side::Buy);
        o.qty = Some(Decimal::from(100));
        o.order_type = Some("market".into());
        let mut f = Record::new(t(2), Kind::Fill, "AAA");
        f.order_id = Some("o1".into());
        f.side = Some(Side::Buy);
        f.qty = Some(Decimal::from(100));
        f.price = Some(Decimal::new(1002, 2));
        let first = vec![quote(0, 1000), o, f, quote(600, 1004)];
        let mut e = execq::ExecQuality::new(p.clone()).unwrap();
        e.set_eviction(true).unwrap();
        for r in &first {
            e.on_record(r);
        }
        let mut rows = e.drain_rows();
        assert_eq!(rows.len(), 1);
        let row = rows.remove(0);
        let mut all = first.clone();
        all.extend([quote(1_500, 1008), quote(10_003, 1000)]);
        for r in &all[first.len()..] {
            e.on_record(r);
        }
        let mut updates = e.drain_rows();
        assert_eq!(updates.len(), 1);
        (first, row, all, updates.remove(0), p)
    }

    #[test]
    fn an_update_completes_its_stored_row_once_and_replays_change_nothing() {
        let (first, row, all, update, p) = two_stages();
        let updater = RowUpdater::new(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut w = RowWriter::open(&path).unwrap();
        let r = RowReader::new(&path);
        assert_eq!(w.apply(std::slice::from_ref(&row), &updater).unwrap(), 0);
        let waiting = r.row("o1").unwrap().unwrap();
        assert!(waiting.pending_spreads.is_some());
        // Stored as handed out, the waiting lookups left out of its sums.
        assert_eq!(
            waiting.stats.realized_spreads[0].shares,
            Decimal::ZERO,
            "{waiting:?}"
        );
        assert_ne!(&waiting, &*execq::compute(&first, &p).unwrap().orders["o1"]);
        w.apply(std::slice::from_ref(&update), &updater).unwrap();
        let done = r.row("o1").unwrap().unwrap();
        let batch = execq::compute(&all, &p).unwrap();
        assert_eq!(&done, &*batch.orders["o1"]);
        // A replayed tail: the row goes back to waiting, its update completes it again; an
        // update of a complete row changes nothing.
        w.apply(&[row.clone(), update.clone()], &updater).unwrap();
        assert_eq!(r.row("o1").unwrap().as_ref(), Some(&done));
        w.apply(std::slice::from_ref(&update), &updater).unwrap();
        assert_eq!(r.row("o1").unwrap().as_ref(), Some(&done));
        assert_eq!(r.count().unwrap(), 1);
        // An update without its row is counted, not an error.
        let dir2 = tempfile::tempdir().unwrap();
        let mut empty = RowWriter::open(&dir2.path().join(DB_FILE)).unwrap();
        assert_eq!(empty.apply(&[update], &updater).unwrap(), 1);
    }

    #[test]
    fn a_merge_shows_waiting_rows_through_the_engine_view_and_prefers_held_rows() {
        let (first, row, all, update, p) = two_stages();
        let RowChange::Row(waiting) = row else {
            panic!("a row first")
        };
        let RowChange::Update(update) = update else {
            panic!("then its update")
        };
        let updater = || RowUpdater::new(&p).unwrap();
        let mut e = execq::ExecQuality::new(p.clone()).unwrap();
        e.set_eviction(true).unwrap();
        for r in &first {
            e.on_record(r);
        }
        let view = e.spread_view("o1").unwrap();
        let now = execq::compute(&first, &p).unwrap();
        let merge = |stored: &OrderQuality, held: Option<OrderQuality>, v: Option<SpreadUpdate>| {
            MergeById::new(
                std::iter::once(stored.clone()),
                held.into_iter(),
                v.into_iter(),
                updater(),
            )
            .collect::<Vec<_>>()
        };
        // Waiting and seen through the engine's view: the batch row as of now.
        assert_eq!(
            merge(&waiting, None, Some(view.clone())),
            [(*now.orders["o1"]).clone()]
        );
        // Waiting with no view (an order the engine had not seen yet): as stored.
        assert_eq!(merge(&waiting, None, None), [(*waiting).clone()]);
        // A held row wins over a waiting stored row.
        let mut held = (*now.orders["o1"]).clone();
        held.fill_count = 9;
        assert_eq!(merge(&waiting, Some(held.clone()), None), [held.clone()]);
        // A complete stored row wins over a view or a held row taken before it completed.
        let mut complete = (*waiting).clone();
        updater().apply(&mut complete, &update).unwrap();
        assert_eq!(&complete, &*execq::compute(&all, &p).unwrap().orders["o1"]);
        assert_eq!(merge(&complete, None, Some(view)), [complete.clone()]);
        assert_eq!(merge(&complete, Some(held), None), [complete.clone()]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        drop(RowWriter::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        assert!(matches!(
            RowWriter::open(&path),
            Err(QualityError::Schema { found: 2, .. })
        ));
    }
}
