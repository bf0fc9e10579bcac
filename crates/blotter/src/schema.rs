//! The blotter's tables.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::BlotterError;

const SCHEMA_VERSION: i64 = 1;

/// Orders and fills keep their full JSON (`body`) plus the columns queries filter on. Every
/// listing walks an index in id order, so a page costs its size, not the table's.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    order_id   INTEGER PRIMARY KEY,
    account    TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    status     TEXT    NOT NULL,   -- model::OrderStatus, snake_case
    created_at INTEGER NOT NULL,   -- ns since the Unix epoch
    updated_at INTEGER NOT NULL,
    notional   TEXT    NOT NULL,   -- exact sum of price x quantity of the fills
    body       TEXT    NOT NULL    -- JSON of model::Order
);
CREATE INDEX IF NOT EXISTS orders_by_account        ON orders(account, order_id);
CREATE INDEX IF NOT EXISTS orders_by_account_status ON orders(account, status, order_id);
CREATE INDEX IF NOT EXISTS orders_by_status         ON orders(status, order_id);
CREATE TABLE IF NOT EXISTS fills (
    fill_id  INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    account  TEXT    NOT NULL,
    symbol   TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    body     TEXT    NOT NULL      -- JSON of model::Fill
);
CREATE INDEX IF NOT EXISTS fills_by_account ON fills(account, fill_id);
CREATE INDEX IF NOT EXISTS fills_by_order   ON fills(order_id, fill_id);
CREATE TABLE IF NOT EXISTS client_order_ids (
    account         TEXT    NOT NULL,
    client_order_id TEXT    NOT NULL,
    order_id        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account, client_order_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS client_order_ids_by_time ON client_order_ids(created_at);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

pub(crate) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> BlotterError + '_ {
    move |source| BlotterError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Opens (creating) the writer's connection and the schema.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, BlotterError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BlotterError::Io {
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
    // re-applied from the journal, so the fsync per batch that FULL costs buys nothing here.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite(path))?;
    if version > SCHEMA_VERSION {
        return Err(BlotterError::Schema {
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

pub(crate) fn open_reader(path: &Path) -> Result<Connection, BlotterError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(path))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(path))?;
    Ok(conn)
}
