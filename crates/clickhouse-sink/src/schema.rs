//! The tables, one definition each: the DDL, the column list of every INSERT and the check of an
//! existing table come from the same arrays, so they cannot drift apart.
//!
//! Only what ClickHouse 18.16 (Debian's) and current releases both accept: no DateTime64, Map,
//! LowCardinality or Bool. Decimals are `Decimal(38, 18)` (rounded half-to-even to 18 places
//! when a value has more) next to a `String` with the exact text; times are `DateTime('UTC')`
//! (seconds, for ranges and the sort key) next to an `Int64` of nanoseconds (exact).

/// The decimal type of every price, quantity and fee column.
pub const DECIMAL: &str = "Decimal(38, 18)";

/// One of the tables the sink writes events to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Quotes,
    Trades,
    Orders,
    Fills,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Quotes, Table::Trades, Table::Orders, Table::Fills];

    pub fn name(self) -> &'static str {
        match self {
            Table::Quotes => "quotes",
            Table::Trades => "trades",
            Table::Orders => "orders",
            Table::Fills => "fills",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Columns in the order rows are encoded.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::Quotes => QUOTES,
            Table::Trades => TRADES,
            Table::Orders => ORDERS,
            Table::Fills => FILLS,
        }
    }

    /// The sort key: what queries narrow by first.
    pub fn order_by(self) -> &'static str {
        match self {
            // Market data is read by instrument and time.
            Table::Quotes | Table::Trades => "symbol, ts, seq",
            // An order's lifecycle rows sit together; order ids grow in journal order, so an
            // account's orders are also in time order.
            Table::Orders => "account, order_id, seq",
            Table::Fills => "account, ts, seq",
        }
    }

    pub(crate) fn column_list(self) -> String {
        self.columns()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `CREATE TABLE IF NOT EXISTS` for database `db`. One partition (no PARTITION BY): a
    /// batch's rows of one table are one part whatever their timestamps.
    pub fn create_sql(self, db: &str) -> String {
        let cols = self
            .columns()
            .iter()
            .map(|(n, t)| format!("    {n} {t}"))
            .collect::<Vec<_>>()
            .join(",\n");
        format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.`{}` (\n{cols}\n) ENGINE = MergeTree ORDER BY ({})",
            self.name(),
            self.order_by()
        )
    }
}

const SIDE: &str = "Enum8('' = 0, 'buy' = 1, 'sell' = 2)";

const QUOTES: &[(&str, &str)] = &[
    ("seq", "UInt64"),
    ("ts", "DateTime('UTC')"),
    ("ts_ns", "Int64"),
    ("venue", "String"),
    ("symbol", "String"),
    ("bid", DECIMAL),
    ("bid_size", DECIMAL),
    ("ask", DECIMAL),
    ("ask_size", DECIMAL),
    ("bid_text", "String"),
    ("bid_size_text", "String"),
    ("ask_text", "String"),
    ("ask_size_text", "String"),
];

const TRADES: &[(&str, &str)] = &[
    ("seq", "UInt64"),
    ("ts", "DateTime('UTC')"),
    ("ts_ns", "Int64"),
    ("venue", "String"),
    ("symbol", "String"),
    ("trade_id", "String"),
    ("aggressor", SIDE),
    ("price", DECIMAL),
    ("quantity", DECIMAL),
    ("price_text", "String"),
    ("quantity_text", "String"),
];

const ORDERS: &[(&str, &str)] = &[
    ("seq", "UInt64"),
    ("ts", "DateTime('UTC')"),
    ("ts_ns", "Int64"),
    (
        "event",
        "Enum8('submitted' = 1, 'accepted' = 2, 'rejected' = 3, 'canceled' = 4, 'expired' = 5, 'triggered' = 6)",
    ),
    ("order_id", "UInt64"),
    ("account", "String"),
    ("client_order_id", "String"),
    ("venue", "String"),
    ("symbol", "String"),
    ("side", SIDE),
    (
        "order_type",
        "Enum8('' = 0, 'market' = 1, 'limit' = 2, 'stop' = 3, 'stop_limit' = 4)",
    ),
    (
        "time_in_force",
        "Enum8('' = 0, 'gtc' = 1, 'ioc' = 2, 'fok' = 3, 'day' = 4)",
    ),
    ("quantity", "Nullable(Decimal(38, 18))"),
    ("price", "Nullable(Decimal(38, 18))"),
    ("stop_price", "Nullable(Decimal(38, 18))"),
    ("quantity_text", "String"),
    ("price_text", "String"),
    ("stop_price_text", "String"),
    ("reason", "String"),
    ("message", "String"),
];

const FILLS: &[(&str, &str)] = &[
    ("seq", "UInt64"),
    ("ts", "DateTime('UTC')"),
    ("ts_ns", "Int64"),
    ("fill_id", "UInt64"),
    ("order_id", "UInt64"),
    ("account", "String"),
    ("venue", "String"),
    ("symbol", "String"),
    ("side", "Enum8('buy' = 1, 'sell' = 2)"),
    ("liquidity", "Enum8('maker' = 1, 'taker' = 2)"),
    ("price", DECIMAL),
    ("quantity", DECIMAL),
    ("fee", DECIMAL),
    ("price_text", "String"),
    ("quantity_text", "String"),
    ("fee_text", "String"),
];

/// How far each sink got: one row per completed batch (its last journal sequence). Replacing
/// on `seq` keeps one row per sink after merges; readers take `max(seq)`, right before merges
/// too.
pub const PROGRESS_TABLE: &str = "sink_progress";

pub fn progress_sql(db: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS `{db}`.`{PROGRESS_TABLE}` (\n    sink String,\n    seq UInt64,\n    at DateTime('UTC')\n) ENGINE = ReplacingMergeTree(seq) ORDER BY sink"
    )
}

/// A database name used unquoted in messages and quoted in SQL: plain identifiers only.
pub fn valid_database(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
