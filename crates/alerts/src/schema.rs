//! The store's tables.

use std::path::Path;

use rusqlite::Connection;

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
    journal::derived::open_writer(path, SCHEMA, SCHEMA_VERSION)
}

pub(crate) fn open_reader(path: &Path) -> Result<Connection, AlertsError> {
    journal::derived::open_reader(path)
}

impl journal::derived::StoreError for AlertsError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        AlertsError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        sqlite(path)(source)
    }
    fn schema_too_new(path: &Path, found: i64, supported: i64) -> Self {
        AlertsError::Schema {
            path: path.display().to_string(),
            found,
            supported,
        }
    }
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
