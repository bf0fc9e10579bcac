//! Execution quality (transaction-cost analysis) for trade2026.
//!
//! A pure library: it reads [`interchange::Record`]s in time order and computes, per order and
//! aggregated, the statistics of the spec `execution-quality-and-surveillance.md` section A
//! (Rule 605-style receipt-quote statistics, effective and realized spreads, price improvement,
//! time to execution, fill and cancel rates, arrival-price slippage, Perold implementation
//! shortfall with the Wagner decomposition, VWAP slippage). No I/O and no clock: every time is
//! a record timestamp, so a replay gives the same answer.
//!
//! * [`ExecQuality`] is the streaming engine (`on_record`, `order`, `report`,
//!   `drain_observations`); [`compute`] is the same engine fed a slice.
//! * Bounded streaming: [`ExecQuality::aggregates`] are running aggregates over every order
//!   seen, maintained per record. With [`ExecQuality::set_eviction`] a finished order leaves
//!   the engine in two stages: once `late_fill_grace_ms` has passed in event time after its
//!   end, its row is handed out by [`ExecQuality::drain_rows`] (with the realized-spread
//!   lookups still waiting described in [`OrderQuality::pending_spreads`]) and a compact record
//!   replaces its state; when its last lookup resolves, a [`SpreadUpdate`] completing the row
//!   follows ([`RowUpdater::apply`]). So memory follows the live orders, plus a few hundred
//!   bytes per order ended within the longest horizon. Rows are stored with
//!   [`OrderQuality::to_stored_json`] and read back with [`OrderQuality::from_stored_json`]; [`aggregate_rows`] / [`RowAggregator`],
//!   [`report_from_rows`] and [`rule605_from_rows`] rebuild aggregates, reports and the Rule
//!   605 report from stored rows (brought up to now with [`ExecQuality::spread_views`]) plus
//!   [`ExecQuality::held_rows`]; [`ExecQuality::report_with`] does it for a slice of rows.
//! * The engine is a serde snapshot ([`SNAPSHOT_VERSION`]): restore and continue equals
//!   continuing.
//! * [`rule605`] builds the monthly Rule 605-style report, [`rule605_to_csv`] /
//!   [`rule605_to_html`] render it; [`report_to_csv`] renders the per-order records.
//! * For the batch CLI: [`RecordReader`] reads interchange NDJSON from any `BufRead` into one
//!   reused record (the records and errors of `interchange::NdjsonReader`);
//!   [`ExecQuality::write_report_json`] and [`write_report_csv_line`] write the report and the
//!   CSV rows by hand, byte for byte what serde and [`report_csv_line`] give.
//! * Where the spec (section 6) lists competing readings, [`Params`] selects one; the defaults
//!   are the spec's choices. `docs/EXECUTION_QUALITY.md` lists every field and parameter.

mod engine;
mod json;
mod ndjson;
mod params;
mod pending;
mod render;
mod report;
mod rows;
mod rule605;
mod stats;

pub use engine::{
    ExecQuality, Metric, Observation, ReportFilter, SNAPSHOT_VERSION, StateSizes, compute,
};
pub use ndjson::RecordReader;
pub use params::{
    CrossedQuote, DecisionPriceFallback, EsBenchmark, IsBpsDenominator, IsEndPrice, NotionalPrice,
    Params, QuoteTiming, RsBpsDenominator, RsEndOfData, SizeBucketBasis, TimeWindow,
};
pub use pending::{PendingHorizon, PendingSpreads, RowChange, RowUpdater, SpreadUpdate};
pub use render::{
    report_csv_header, report_csv_line, report_to_csv, rule605_to_csv, rule605_to_html,
    write_report_csv_line,
};
pub use report::{
    Aggregates, LIQUIDITY, Marketability, NOTES, OrderClass, OrderQuality, OrderStatus, Report,
    SIZE_BUCKETS,
};
pub use rows::{RowAggregator, StreamedReport, aggregate_rows, report_from_rows};
pub use rule605::{Rule605, Rule605Row, rule605, rule605_from_rows};
pub use stats::{EXEC_TIME_BUCKETS, HorizonStats, HorizonSums, Stats, Sums};

use thiserror::Error;

/// Errors of this crate: only bad parameters and bad report arguments. Bad records are not
/// errors; they are counted in [`Report::data_issues`] so one bad line does not stop a month.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ExecqError {
    #[error("invalid parameter `{name}`: {reason}")]
    BadParam { name: &'static str, reason: String },
    #[error("invalid month `{0}`: expected YYYY-MM")]
    BadMonth(String),
    /// A stored per-order row that does not read back (see `OrderQuality::from_stored_json`).
    #[error("invalid stored order row: {0}")]
    BadStoredRow(String),
    /// Eviction asked for under parameters that make an order's row depend on later data.
    #[error("eviction not possible: {0}")]
    EvictionUnsupported(String),
    /// A [`SpreadUpdate`] applied to a row it does not belong to.
    #[error("invalid row update: {0}")]
    BadUpdate(String),
}
