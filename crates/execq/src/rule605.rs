//! The monthly Rule 605-style report: legacy 605(a)(1) columns per symbol, order class (the
//! covered categories) and size bucket, plus a per-class summary with the summary-report
//! percentages. Orders belong to the month of their receipt (UTC).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ExecqError;
use crate::report::{OrderClass, Report};
use crate::stats::{Stats, Sums};

/// One row: a symbol (or `ALL`), an order class and a size bucket (or `ALL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule605Row {
    pub symbol: String,
    pub order_class: OrderClass,
    pub size_bucket: String,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule605 {
    /// `YYYY-MM`.
    pub month: String,
    /// Covered orders received in the month.
    pub covered_orders: u64,
    /// Orders received in the month but outside the covered categories or size buckets.
    pub excluded_orders: u64,
    /// Realized-spread horizon of `avg_realized_spread` (ms).
    pub rs_primary_horizon_ms: u64,
    pub rows: Vec<Rule605Row>,
    /// One row per order class over every symbol and covered size bucket.
    pub summary: Vec<Rule605Row>,
}

const BUCKET_ORDER: [&str; 16] = [
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

fn bucket_rank(b: &str) -> usize {
    BUCKET_ORDER
        .iter()
        .position(|x| *x == b)
        .unwrap_or(BUCKET_ORDER.len())
}

fn valid_month(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(m[5..].parse::<u8>(), Ok(1..=12))
}

/// Build the report for `month` (`YYYY-MM`) from a report computed in this process (it uses
/// the orders' exact sums, which are not serialized).
pub fn rule605(report: &Report, month: &str) -> Result<Rule605, ExecqError> {
    if !valid_month(month) {
        return Err(ExecqError::BadMonth(month.to_string()));
    }
    let r = report.params.resolve()?;
    let n = r.horizons_ms.len();
    let odd = ["fractional", "odd_lot", "<100"];
    let mut rows: BTreeMap<(String, OrderClass, usize, String), Sums> = BTreeMap::new();
    let mut summary: BTreeMap<OrderClass, Sums> = BTreeMap::new();
    let (mut covered, mut excluded) = (0, 0);
    for o in report.orders.values() {
        if o.receipt_ts.to_datetime().format("%Y-%m").to_string() != month {
            continue;
        }
        let size_ok = report.params.rule605_include_odd_lots || !odd.contains(&o.size_bucket);
        if !o.order_class.rule605_covered() || !size_ok {
            excluded += 1;
            continue;
        }
        covered += 1;
        let key = (
            o.symbol.clone(),
            o.order_class,
            bucket_rank(o.size_bucket),
            o.size_bucket.to_string(),
        );
        rows.entry(key)
            .or_insert_with(|| Sums::with_horizons(n))
            .add(&o.sums);
        summary
            .entry(o.order_class)
            .or_insert_with(|| Sums::with_horizons(n))
            .add(&o.sums);
    }
    Ok(Rule605 {
        month: month.to_string(),
        covered_orders: covered,
        excluded_orders: excluded,
        rs_primary_horizon_ms: r.horizons_ms[r.primary],
        rows: rows
            .into_iter()
            .map(|((symbol, order_class, _, size_bucket), s)| Rule605Row {
                symbol,
                order_class,
                size_bucket,
                stats: Stats::from_sums(&s, &r),
            })
            .collect(),
        summary: summary
            .into_iter()
            .map(|(order_class, s)| Rule605Row {
                symbol: "ALL".into(),
                order_class,
                size_bucket: "ALL".into(),
                stats: Stats::from_sums(&s, &r),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked() {
        assert!(valid_month("2024-01"));
        assert!(!valid_month("2024-13"));
        assert!(!valid_month("2024-1"));
        assert!(!valid_month("202401x"));
    }
}
