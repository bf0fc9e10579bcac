//! Output types: per-order records, aggregates and the report.

use std::collections::BTreeMap;

use model::{Decimal, Side, Timestamp};
use serde::Serialize;

use crate::params::Params;
use crate::stats::{Stats, Sums};

/// Order class at receipt (A1): the legacy Rule 600(b) buckets, classified once against the
/// receipt quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Marketability {
    Market,
    MarketableLimit,
    NonMarketableLimit,
    Unclassified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub size_bucket: &'static str,
    /// `maker`, `taker`, `mixed` or `none` over the order's fills.
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
    /// Why a statistic is null or data was adjusted (`no_quote_at_receipt`, ...).
    pub notes: Vec<&'static str>,
    #[serde(flatten)]
    pub stats: Stats,
    /// The exact sums behind `stats` (not serialized); aggregates and the Rule 605 report are
    /// built from them.
    #[serde(skip)]
    pub sums: Box<Sums>,
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
