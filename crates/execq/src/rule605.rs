//! The monthly Rule 605-style report: legacy 605(a)(1) columns per symbol, order class (the
//! covered categories) and size bucket, plus a per-class summary with the summary-report
//! percentages. Orders belong to the month of their receipt (UTC).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::ExecqError;
use crate::params::Params;
use crate::report::{OrderClass, OrderQuality, Report, SIZE_BUCKETS};
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

fn bucket_rank(b: &str) -> usize {
    SIZE_BUCKETS
        .iter()
        .position(|x| *x == b)
        .unwrap_or(SIZE_BUCKETS.len())
}

fn valid_month(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(m[5..].parse::<u8>(), Ok(1..=12))
}

/// Build the report for `month` (`YYYY-MM`) from a report computed in this process (it uses
/// the orders' exact sums, which are not in the served JSON).
pub fn rule605(report: &Report, month: &str) -> Result<Rule605, ExecqError> {
    rule605_from_rows(report.orders.values().map(|b| &**b), &report.params, month)
}

/// [`rule605`] over per-order rows (stored rows read back with
/// [`OrderQuality::from_stored_json`] plus the engine's held rows); rows received outside
/// `month` are skipped, so a caller may pass a superset. `params` must be the engine's.
pub fn rule605_from_rows<I>(rows: I, params: &Params, month: &str) -> Result<Rule605, ExecqError>
where
    I: IntoIterator,
    I::Item: Borrow<OrderQuality>,
{
    if !valid_month(month) {
        return Err(ExecqError::BadMonth(month.to_string()));
    }
    let r = params.resolve()?;
    let n = r.horizons_ms.len();
    let odd = ["fractional", "odd_lot", "<100"];
    let mut rows_by: BTreeMap<(String, OrderClass, usize, String), Sums> = BTreeMap::new();
    let mut summary: BTreeMap<OrderClass, Sums> = BTreeMap::new();
    let (mut covered, mut excluded) = (0, 0);
    for row in rows {
        let o: &OrderQuality = row.borrow();
        if o.receipt_ts.to_datetime().format("%Y-%m").to_string() != month {
            continue;
        }
        let size_ok = params.rule605_include_odd_lots || !odd.contains(&o.size_bucket);
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
        rows_by
            .entry(key)
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
        rows: rows_by
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
