//! trade2026 market-data sinks: the plan's sink-ticks and sink-alt.
//!
//! Both consume the journal and store market data in one SQLite file separate from the journal
//! (`<data_dir>/marketdata.db`), so later services (ptrc marks and VaR history, features) can
//! query it by symbol and time range. Ticks (trades, quotes, book updates) and alt data (bars,
//! funding rates, other series) go to their own tables; `src/schema.rs` documents the layout.
//!
//! The store is a derived view of the journal: rows are keyed by journal seq and inserted with
//! `INSERT OR IGNORE`, so after a crash the consumer replays from [`TickStore::last_seq`] (or
//! from anywhere earlier) without duplicating anything.
//!
//! Time ranges are half-open, `from <= ts < to`, so consecutive ranges never double count;
//! [`TickStore::daily_closes`] takes whole UTC days, both ends included.

mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::Value as Json;
use thiserror::Error;

use model::{BookDelta, BookSnapshot, Event, InstrumentId, Timestamp};

pub use schema::SCHEMA_VERSION;

/// Why the store could not be opened, written or read.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("market-data store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "market-data store {}: schema version {found} is newer than this build understands ({supported})",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The file system refused WAL mode (some network file systems do).
    #[error("market-data store {}: could not switch to WAL journal mode (got {mode})", path.display())]
    NoWal { path: PathBuf, mode: String },
    #[error("market-data store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// SQLite integers are signed 64-bit; a journal seq or venue sequence beyond that cannot be
    /// stored as a key.
    #[error("{field} {value} is larger than SQLite's INTEGER range")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("market-data store: cannot encode book levels: {0}")]
    Encode(#[from] serde_json::Error),
    /// A stored row does not decode back into a model value (edited or corrupted file).
    #[error("market-data store: {table} row seq {seq}: {reason}")]
    Corrupt {
        table: &'static str,
        seq: i64,
        reason: String,
    },
}

/// What one [`TickStore::write_batch`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub trades: usize,
    pub quotes: usize,
    pub book_updates: usize,
    pub bars: usize,
    pub funding_rates: usize,
    pub alt: usize,
    /// Market-data records already stored (a replay); not written again.
    pub duplicates: usize,
    /// Records that are not market data (orders, fills, admin); skipped.
    pub ignored: usize,
}

impl WriteStats {
    /// Rows newly written (tick and alt).
    pub fn written(&self) -> usize {
        self.ticks() + self.alt_rows()
    }
    /// Rows newly written by sink-ticks (trades, quotes, book updates).
    pub fn ticks(&self) -> usize {
        self.trades + self.quotes + self.book_updates
    }
    /// Rows newly written by sink-alt (bars, funding rates, other series).
    pub fn alt_rows(&self) -> usize {
        self.bars + self.funding_rates + self.alt
    }
}

/// A stored order-book update, in journal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookUpdate {
    Snapshot(BookSnapshot),
    Delta(BookDelta),
}

impl BookUpdate {
    pub fn ts(&self) -> Timestamp {
        match self {
            BookUpdate::Snapshot(s) => s.ts,
            BookUpdate::Delta(d) => d.ts,
        }
    }
}

/// A non-tick series value with no table of its own (open interest, liquidations, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct AltRecord {
    /// Series name, e.g. `open_interest`.
    pub kind: String,
    pub instrument: InstrumentId,
    pub ts: Timestamp,
    pub payload: Json,
}

/// The market-data store. One writer (the sink) and any number of readers (other processes can
/// open the same file; WAL lets them read while the sink writes).
pub struct TickStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for TickStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickStore")
            .field("path", &self.path)
            .finish()
    }
}

impl TickStore {
    /// Opens (creating if needed) the store at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| SinkError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(SinkError::SchemaTooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // WAL: readers (ptrc, features) never block the sink and vice versa. synchronous=NORMAL
        // may lose the last transactions on power loss but never corrupts; the journal is the
        // source of truth and the sink resumes from last_seq, so lost rows are re-written.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(SinkError::NoWal { path, mode });
        }
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA busy_timeout = 5000;",
        )
        .map_err(open_err)?;
        conn.execute_batch(schema::CREATE).map_err(open_err)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_err)?;
        Ok(TickStore { conn, path })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A journal seq as a SQLite key.
fn seq_key(seq: u64) -> Result<i64, SinkError> {
    i64::try_from(seq).map_err(|_| SinkError::OutOfRange {
        field: "journal seq",
        value: seq,
    })
}

/// sink-ticks / sink-alt as a journal consumer of all market data: its store records the last
/// sequence it holds in the same transaction as the rows, so a restart resumes right there.
impl runtime::Consumer for TickStore {
    type Error = SinkError;

    fn apply(
        &mut self,
        batch: &[journal::Delivery],
        _out: &mut Vec<Event>,
    ) -> Result<(), SinkError> {
        self.write_events(batch.iter().map(|d| (d.seq, &d.event)))
            .map(|_| ())
    }
}

impl runtime::StoredPosition for TickStore {
    fn stored_position(&self) -> Result<u64, SinkError> {
        self.last_seq()
    }
}

impl TickStore {
    /// The subjects the sinks read.
    pub const FILTER: &'static str = "md.>";
}
