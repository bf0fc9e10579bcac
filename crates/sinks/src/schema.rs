//! The SQLite schema of the market-data store.
//!
//! Conventions, chosen so readers never lose precision and replays never duplicate:
//! - `seq` is the journal sequence number of the event a row came from and the table's primary
//!   key; inserts are `INSERT OR IGNORE`, so replaying the journal stores each event once.
//! - Prices, quantities and rates are TEXT decimals as `rust_decimal` prints them (exact).
//! - Times are INTEGER nanoseconds since the Unix epoch (UTC), like `model::Timestamp`.
//! - Every table has an index on `(symbol, ts)` for "this symbol over this time range".

/// Bumped when the schema changes incompatibly; stored in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS trades (
    seq        INTEGER PRIMARY KEY,
    venue      TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    price      TEXT    NOT NULL,
    quantity   TEXT    NOT NULL,
    aggressor  TEXT,
    trade_id   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_symbol_ts ON trades (symbol, ts);

CREATE TABLE IF NOT EXISTS quotes (
    seq        INTEGER PRIMARY KEY,
    venue      TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    bid        TEXT    NOT NULL,
    bid_size   TEXT    NOT NULL,
    ask        TEXT    NOT NULL,
    ask_size   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS quotes_symbol_ts ON quotes (symbol, ts);

-- Snapshots and deltas in one table so a reader can rebuild a book by scanning one range:
-- start at the last snapshot, apply the deltas after it. Levels are JSON arrays of
-- {\"price\": \"..\", \"quantity\": \"..\"} with decimal strings.
CREATE TABLE IF NOT EXISTS book_updates (
    seq            INTEGER PRIMARY KEY,
    venue          TEXT    NOT NULL,
    symbol         TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    is_snapshot    INTEGER NOT NULL,
    bids           TEXT    NOT NULL,
    asks           TEXT    NOT NULL,
    first_sequence INTEGER,
    sequence       INTEGER
);
CREATE INDEX IF NOT EXISTS book_updates_symbol_ts ON book_updates (symbol, ts);

-- A live candle is journaled on every update; each update is a row. Queries return the latest
-- row (highest seq) per (venue, symbol, interval, start).
CREATE TABLE IF NOT EXISTS bars (
    seq        INTEGER PRIMARY KEY,
    venue      TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    open       TEXT    NOT NULL,
    high       TEXT    NOT NULL,
    low        TEXT    NOT NULL,
    close      TEXT    NOT NULL,
    volume     TEXT    NOT NULL,
    closed     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bars_symbol_ts ON bars (symbol, ts);
CREATE INDEX IF NOT EXISTS bars_symbol_interval_start ON bars (symbol, interval, start);

CREATE TABLE IF NOT EXISTS funding_rates (
    seq          INTEGER PRIMARY KEY,
    venue        TEXT    NOT NULL,
    symbol       TEXT    NOT NULL,
    ts           INTEGER NOT NULL,
    rate         TEXT    NOT NULL,
    mark_price   TEXT,
    next_funding INTEGER
);
CREATE INDEX IF NOT EXISTS funding_rates_symbol_ts ON funding_rates (symbol, ts);

-- Any other non-tick series (open interest, liquidations, ...): payload is JSON text.
CREATE TABLE IF NOT EXISTS alt_series (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    venue      TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    payload    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS alt_series_symbol_ts ON alt_series (symbol, ts);
CREATE INDEX IF NOT EXISTS alt_series_kind_symbol_ts ON alt_series (kind, symbol, ts);

-- The highest journal seq consumed, market data or not, so a restart resumes after events this
-- sink skips (orders, fills) instead of re-reading them. One row.
CREATE TABLE IF NOT EXISTS progress (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq   INTEGER NOT NULL
);
";
