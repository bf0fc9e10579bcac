//! The blotter's tables.

use std::path::Path;

use rusqlite::Connection;

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
    journal::derived::open_writer(path, SCHEMA, SCHEMA_VERSION)
}

pub(crate) fn open_reader(path: &Path) -> Result<Connection, BlotterError> {
    journal::derived::open_reader(path)
}

impl journal::derived::StoreError for BlotterError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        BlotterError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        sqlite(path)(source)
    }
    fn schema_too_new(path: &Path, found: i64, supported: i64) -> Self {
        BlotterError::Schema {
            path: path.display().to_string(),
            found,
            supported,
        }
    }
}
