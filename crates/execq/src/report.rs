//! Output types: per-order records, aggregates and the report.

use std::collections::BTreeMap;

use model::{Decimal, Side, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

use crate::params::Params;
use crate::pending::PendingSpreads;
use crate::stats::{Stats, Sums};

/// Order class at receipt (A1): the legacy Rule 600(b) buckets, classified once against the
/// receipt quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderClass {
    /// `order_type` market, or no limit price.
    Market,
    /// Buy limit >= ask (sell limit <= bid) at receipt, 600(b)(39).
    MarketableLimit,
    /// Buy: bid < L < ask (sell mirrored on the ask), 600(b)(29).
    InsideTheQuote,
    /// Buy: L = bid (sell: L = ask).
    AtTheQuote,
    /// Buy: bid - near_quote_band <= L < bid (sell: ask < L <= ask + band).
    NearTheQuote,
    /// Non-marketable and further away than the band (not a legacy covered category).
    AwayFromQuote,
    /// `stop` / `stop_limit` (not classified against the quote).
    Stop,
    /// A limit order with no usable receipt quote.
    Unclassified,
}

impl OrderClass {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderClass::Market => "market",
            OrderClass::MarketableLimit => "marketable_limit",
            OrderClass::InsideTheQuote => "inside_the_quote",
            OrderClass::AtTheQuote => "at_the_quote",
            OrderClass::NearTheQuote => "near_the_quote",
            OrderClass::AwayFromQuote => "away_from_quote",
            OrderClass::Stop => "stop",
            OrderClass::Unclassified => "unclassified",
        }
    }

    /// The legacy Rule 605 covered categories.
    pub fn rule605_covered(self) -> bool {
        matches!(
            self,
            OrderClass::Market
                | OrderClass::MarketableLimit
                | OrderClass::InsideTheQuote
                | OrderClass::AtTheQuote
                | OrderClass::NearTheQuote
        )
    }
}

/// The reference classifier's three-way result (A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Marketability {
    Market,
    MarketableLimit,
    NonMarketableLimit,
    Unclassified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Executions reached the ordered quantity.
    Filled,
    /// Closed by cancels with no execution.
    Cancelled,
    /// Closed by a cancel after some executions.
    PartiallyFilledCancelled,
    /// Still working at the end of the data, with some executions.
    PartiallyFilled,
    /// Still working at the end of the data, no execution.
    Open,
}

/// One order's execution quality. `stats` is flattened into the record, so the JSON has one
/// flat object per order (`receipt_mid`, `fill_rate`, `avg_effective_spread`, ...).
///
/// Serializing gives the served form (no `sums`). Deserializing reads the stored form, which is
/// the served form plus `"sums"` ([`OrderQuality::to_stored_json`]); the served form alone is
/// rejected (missing `sums`) rather than read back with empty sums. Use
/// [`OrderQuality::from_stored_json`]: the `&'static str` fields make the derived impl
/// `Deserialize<'static>` only (it works from an owned `serde_json::Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderQuality {
    pub order_id: String,
    pub account: Option<String>,
    pub owner: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub order_type: Option<String>,
    pub tif: Option<String>,
    pub limit_price: Option<Decimal>,
    pub decision_price: Option<Decimal>,
    /// `t_r`, the `order_new` timestamp.
    pub receipt_ts: Timestamp,
    /// The receipt quote (`quote_at_receipt`); null with a reason in `notes` when none is usable.
    pub receipt_quote_ts: Option<Timestamp>,
    pub receipt_bid: Option<Decimal>,
    pub receipt_ask: Option<Decimal>,
    pub receipt_mid: Option<Decimal>,
    pub receipt_quoted_spread: Option<Decimal>,
    pub order_class: OrderClass,
    pub marketability: Marketability,
    /// One of [`SIZE_BUCKETS`].
    #[serde(deserialize_with = "de_size_bucket")]
    pub size_bucket: &'static str,
    /// `maker`, `taker`, `mixed` or `none` over the order's fills.
    #[serde(deserialize_with = "de_liquidity")]
    pub liquidity: &'static str,
    pub time_window: String,
    pub status: OrderStatus,
    /// When the order ended (last fill or cancel closing it); null while open.
    pub end_ts: Option<Timestamp>,
    pub shares_open: Decimal,
    pub fill_count: u64,
    /// `sum q P / sum q`.
    pub avg_exec_price: Option<Decimal>,
    /// Integer ms (floor of the ns difference).
    pub time_to_first_fill_ms: Option<i64>,
    pub time_to_complete_fill_ms: Option<i64>,
    /// `Pn` used for the shortfall's unfilled part.
    pub is_end_price: Option<Decimal>,
    /// Tape VWAP over the order's interval, own prints included / excluded (A10).
    pub vwap: Option<Decimal>,
    pub vwap_ex_own: Option<Decimal>,
    /// Why a statistic is null or data was adjusted (`no_quote_at_receipt`, ...), from
    /// [`NOTES`].
    #[serde(deserialize_with = "de_notes")]
    pub notes: Vec<&'static str>,
    #[serde(flatten)]
    pub stats: Stats,
    /// The exact sums behind `stats` (not in the served form); aggregates and the Rule 605
    /// report are built from them.
    #[serde(skip_serializing)]
    pub sums: Box<Sums>,
    /// Realized-spread lookups still waiting when the row was emitted (stored form only):
    /// `sums` and `stats` leave them out until a [`crate::SpreadUpdate`] completes the row
    /// ([`crate::RowUpdater::apply`]). `None` in a final row.
    #[serde(skip_serializing, default)]
    pub pending_spreads: Option<Box<PendingSpreads>>,
}

/// Every size bucket name, in report order: the share buckets, the notional buckets, and
/// `unknown` (notional basis without a price).
pub const SIZE_BUCKETS: [&str; 16] = [
    "fractional",
    "odd_lot",
    "<100",
    "100-499",
    "500-1999",
    "2000-4999",
    "5000+",
    "<$250",
    "$250-<$1k",
    "$1k-<$5k",
    "$5k-<$10k",
    "$10k-<$20k",
    "$20k-<$50k",
    "$50k-<$200k",
    ">=$200k",
    "unknown",
];

/// Liquidity flags by the engine's bit set (1 maker, 2 taker, 3 both).
pub const LIQUIDITY: [&str; 4] = ["none", "maker", "taker", "mixed"];

/// Every note an order row can carry; bit `i` of the engine's note set is `NOTES[i]`.
pub const NOTES: [&str; 13] = [
    "no_quote_at_receipt",
    "crossed_quote_at_receipt",
    "locked_quote_at_receipt",
    "fill_after_cancel",
    "overfill",
    "cancel_exceeds_open",
    "no_decision_price",
    "no_end_price",
    "no_tape_prints",
    "fill_before_receipt",
    "fill_side_mismatch",
    "fill_without_benchmark_quote",
    "realized_spread_beyond_data",
];

/// The static name in `table` equal to `name`.
pub(crate) fn static_name(table: &'static [&'static str], name: &str) -> Option<&'static str> {
    table.iter().copied().find(|t| *t == name)
}

fn de_static<'de, D: Deserializer<'de>>(
    d: D,
    table: &'static [&'static str],
    what: &str,
) -> Result<&'static str, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    static_name(table, &s).ok_or_else(|| serde::de::Error::custom(format!("unknown {what} `{s}`")))
}

fn de_size_bucket<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    de_static(d, &SIZE_BUCKETS, "size bucket")
}

fn de_liquidity<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    de_static(d, &LIQUIDITY, "liquidity")
}

fn de_notes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
    let v = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
    v.iter()
        .map(|s| {
            static_name(&NOTES, s)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown note `{s}`")))
        })
        .collect()
}

impl OrderQuality {
    /// The stored form: the served JSON plus the exact `sums` (and the waiting realized-spread
    /// lookups, if any), so a row read back with [`OrderQuality::from_stored_json`] is equal to
    /// this one and aggregates exactly.
    pub fn to_stored_json(&self) -> Result<String, crate::ExecqError> {
        #[derive(Serialize)]
        struct Stored<'a> {
            #[serde(flatten)]
            row: &'a OrderQuality,
            sums: &'a Sums,
            #[serde(skip_serializing_if = "Option::is_none")]
            pending_spreads: Option<&'a PendingSpreads>,
        }
        serde_json::to_string(&Stored {
            row: self,
            sums: &self.sums,
            pending_spreads: self.pending_spreads.as_deref(),
        })
        .map_err(|e| crate::ExecqError::BadStoredRow(e.to_string()))
    }

    /// Read a row written by [`OrderQuality::to_stored_json`].
    pub fn from_stored_json(s: &str) -> Result<OrderQuality, crate::ExecqError> {
        let bad = |e: serde_json::Error| crate::ExecqError::BadStoredRow(e.to_string());
        // Through an owned `Value`: the `&'static str` fields make the derived impl
        // `Deserialize<'static>` only.
        let v: serde_json::Value = serde_json::from_str(s).map_err(bad)?;
        OrderQuality::deserialize(v).map_err(bad)
    }
}

/// Aggregates by each grouping of the issue. Keys: account (`(none)` if absent), symbol,
/// order class, size bucket, liquidity flag and UTC time window of receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Aggregates {
    pub overall: Stats,
    pub by_account: BTreeMap<String, Stats>,
    pub by_symbol: BTreeMap<String, Stats>,
    pub by_order_class: BTreeMap<String, Stats>,
    pub by_size_bucket: BTreeMap<String, Stats>,
    pub by_liquidity: BTreeMap<String, Stats>,
    pub by_time_window: BTreeMap<String, Stats>,
}

/// The full result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The parameters the report was computed with.
    pub params: Params,
    /// Records seen (including skipped ones).
    pub records: u64,
    /// Records skipped or adjusted, by reason.
    pub data_issues: BTreeMap<String, u64>,
    /// Per-order records keyed by order id (boxed: a record is ~1.5 KiB and the map moves
    /// values when its nodes split).
    pub orders: BTreeMap<String, Box<OrderQuality>>,
    pub aggregates: Aggregates,
}
