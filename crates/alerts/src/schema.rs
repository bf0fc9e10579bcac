//! The store's tables.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::AlertsError;

const SCHEMA_VERSION: i64 = 1;

/// An alert keeps its full JSON (`alert`) plus the columns queries filter on; its accounts are
/// a side table (an alert involves one or more). The journal sequence is the rowid, so a
/// listing walks the table (or an index ending in it) in journal order and a page costs its
/// size.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    journal_seq INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    rule        TEXT    NOT NULL,
    owner       TEXT,
    ts          INTEGER NOT NULL,   -- ns since the Unix epoch
    alert       TEXT    NOT NULL,   -- JSON, as journaled
    acked_by    TEXT,
    acked_at    INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_by_rule  ON alerts(rule, journal_seq);
CREATE INDEX IF NOT EXISTS alerts_by_owner ON alerts(owner, journal_seq);
CREATE INDEX IF NOT EXISTS alerts_by_ts    ON alerts(ts);
CREATE TABLE IF NOT EXISTS alert_accounts (
    account     TEXT    NOT NULL,
    journal_seq INTEGER NOT NULL,
    PRIMARY KEY (account, journal_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

pub(crate) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> AlertsError + '_ {
    move |source| AlertsError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Opens (creating the file, its folder and the schema) a read-write connection.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, AlertsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| AlertsError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(path))?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(sqlite(path))?;
    // Derived data with its position in the same transaction: a commit lost to a power cut is
    // applied again from the journal, so an fsync per batch buys nothing.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if version > SCHEMA_VERSION {
        return Err(AlertsError::Schema {
            path: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    conn.execute_batch(SCHEMA).map_err(sqlite(path))?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sqlite(path))?;
    Ok(conn)
}

pub(crate) fn open_reader(path: &Path) -> Result<Connection, AlertsError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(path))?;
    Ok(conn)
}

/// A value of the `meta` table (0 when absent).
pub(crate) fn meta(conn: &Connection, path: &Path, key: &str) -> Result<u64, AlertsError> {
    use rusqlite::OptionalExtension;
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(sqlite(path))?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(sqlite(path))?;
    Ok(v.map_or(0, crate::to_u64))
}
