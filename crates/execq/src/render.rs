//! CSV and HTML renderings. JSON is serde on the types themselves.

use std::fmt::Write;

use model::text::{csv_field, push_csv_field};
use model::{Decimal, Side};
use rust_decimal::prelude::ToPrimitive;

use crate::json;
use crate::params::Params;
use crate::report::{OrderQuality, Report};
use crate::rule605::{Rule605, Rule605Row};
use crate::stats::Stats;

fn label(ms: u64) -> String {
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn od(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn write_row(out: &mut String, cells: Vec<String>) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(out, c);
    }
    out.push('\n');
}

/// Columns shared by the per-order CSV and the Rule 605 CSV, taken from [`Stats`].
fn stats_header(horizons: &[u64]) -> Vec<String> {
    let mut h: Vec<String> = [
        "shares_ordered",
        "shares_executed",
        "shares_cancelled",
        "fill_rate",
        "cancel_rate",
        "avg_time_to_execution_ms",
        "avg_quoted_spread",
        "avg_effective_spread",
        "avg_effective_spread_bps",
        "eq_ratio",
        "avg_realized_spread",
        "price_impact",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for &ms in horizons {
        h.push(format!("avg_realized_spread_{}", label(ms)));
        h.push(format!("avg_realized_spread_bps_{}", label(ms)));
    }
    h.extend(
        [
            "price_improved_shares",
            "avg_price_improvement",
            "price_improved_avg_time_ms",
            "at_quote_shares",
            "at_quote_avg_time_ms",
            "outside_quote_shares",
            "avg_outside_quote_amount",
            "outside_quote_avg_time_ms",
            "pct_at_quote_or_better",
            "pct_shares_price_improved",
            "price_improvement_bps",
            "arrival_cost_bps",
            "is_total_usd",
            "is_total_bps",
            "is_execution_cost_usd",
            "is_opportunity_cost_usd",
            "is_fees_usd",
            "is_delay_usd",
            "is_trading_usd",
            "is_opportunity_vs_arrival_usd",
            "vwap_slippage_bps",
            "vwap_slippage_ex_own_bps",
            "participation",
            "fees_usd",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    h
}

fn stats_cells(s: &Stats) -> Vec<String> {
    let mut c = vec![
        s.shares_ordered.to_string(),
        s.shares_executed.to_string(),
        s.shares_cancelled.to_string(),
        od(s.fill_rate),
        od(s.cancel_rate),
        od(s.avg_time_to_execution_ms),
        od(s.avg_quoted_spread),
        od(s.avg_effective_spread),
        od(s.avg_effective_spread_bps),
        od(s.eq_ratio),
        od(s.avg_realized_spread),
        od(s.price_impact),
    ];
    for h in &s.realized_spreads {
        c.push(od(h.avg_realized_spread));
        c.push(od(h.avg_realized_spread_bps));
    }
    c.extend([
        s.price_improved_shares.to_string(),
        od(s.avg_price_improvement),
        od(s.price_improved_avg_time_ms),
        s.at_quote_shares.to_string(),
        od(s.at_quote_avg_time_ms),
        s.outside_quote_shares.to_string(),
        od(s.avg_outside_quote_amount),
        od(s.outside_quote_avg_time_ms),
        od(s.pct_at_quote_or_better),
        od(s.pct_shares_price_improved),
        od(s.price_improvement_bps),
        od(s.arrival_cost_bps),
        od(s.is_total_usd),
        od(s.is_total_bps),
        od(s.is_execution_cost_usd),
        od(s.is_opportunity_cost_usd),
        od(s.is_fees_usd),
        od(s.is_delay_usd),
        od(s.is_trading_usd),
        od(s.is_opportunity_vs_arrival_usd),
        od(s.vwap_slippage_bps),
        od(s.vwap_slippage_ex_own_bps),
        od(s.participation),
        s.fees_usd.to_string(),
    ]);
    c
}

fn horizons_of(report_horizons: &[u64], primary: u64) -> Vec<u64> {
    let mut h = report_horizons.to_vec();
    h.push(primary);
    h.sort_unstable();
    h.dedup();
    h
}

/// The per-order CSV (one line per order, sorted by order id), with one realized-spread column
/// pair per horizon: [`report_csv_header`] and a [`report_csv_line`] per order.
pub fn report_to_csv(report: &Report) -> String {
    let mut out = report_csv_header(&report.params);
    for o in report.orders.values() {
        out.push_str(&report_csv_line(o));
    }
    out
}

/// The header line of the per-order CSV under `params` (newline included), for writing the
/// CSV row by row (e.g. from [`crate::ExecQuality::held_rows_iter`]).
pub fn report_csv_header(params: &Params) -> String {
    let horizons = horizons_of(&params.rs_horizons_ms, params.rs_primary_horizon_ms);
    let mut out = String::new();
    let mut header: Vec<String> = [
        "order_id",
        "account",
        "owner",
        "symbol",
        "side",
        "order_type",
        "tif",
        "limit_price",
        "decision_price",
        "receipt_ts",
        "receipt_bid",
        "receipt_ask",
        "receipt_mid",
        "receipt_quoted_spread",
        "order_class",
        "size_bucket",
        "liquidity",
        "status",
        "end_ts",
        "shares_open",
        "fill_count",
        "avg_exec_price",
        "time_to_first_fill_ms",
        "time_to_complete_fill_ms",
        "vwap",
        "vwap_ex_own",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(stats_header(&horizons));
    header.push("notes".into());
    write_row(&mut out, header);
    out
}

/// One order's line of the per-order CSV (newline included).
pub fn report_csv_line(o: &OrderQuality) -> String {
    let mut out = Vec::new();
    write_report_csv_line(&mut out, o);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`report_csv_line`] appended to `out`, each cell written in place (for writing the CSV row
/// by row through one buffer).
pub fn write_report_csv_line(out: &mut Vec<u8>, o: &OrderQuality) {
    let mut c = Cells { out, first: true };
    c.text(&o.order_id);
    c.opt_text(&o.account);
    c.opt_text(&o.owner);
    c.text(&o.symbol);
    c.text(side(o.side));
    c.opt_text(&o.order_type);
    c.opt_text(&o.tif);
    c.opt_dec(&o.limit_price);
    c.opt_dec(&o.decision_price);
    c.ts(Some(o.receipt_ts));
    c.opt_dec(&o.receipt_bid);
    c.opt_dec(&o.receipt_ask);
    c.opt_dec(&o.receipt_mid);
    c.opt_dec(&o.receipt_quoted_spread);
    c.text(o.order_class.as_str());
    c.text(o.size_bucket);
    c.text(o.liquidity);
    c.text(json::status_name(o.status));
    c.ts(o.end_ts);
    c.dec(&o.shares_open);
    c.count(o.fill_count);
    c.opt_dec(&o.avg_exec_price);
    c.opt_i64(o.time_to_first_fill_ms);
    c.opt_i64(o.time_to_complete_fill_ms);
    c.opt_dec(&o.vwap);
    c.opt_dec(&o.vwap_ex_own);
    let s = &o.stats;
    c.dec(&s.shares_ordered);
    c.dec(&s.shares_executed);
    c.dec(&s.shares_cancelled);
    c.opt_dec(&s.fill_rate);
    c.opt_dec(&s.cancel_rate);
    c.opt_dec(&s.avg_time_to_execution_ms);
    c.opt_dec(&s.avg_quoted_spread);
    c.opt_dec(&s.avg_effective_spread);
    c.opt_dec(&s.avg_effective_spread_bps);
    c.opt_dec(&s.eq_ratio);
    c.opt_dec(&s.avg_realized_spread);
    c.opt_dec(&s.price_impact);
    for h in &s.realized_spreads {
        c.opt_dec(&h.avg_realized_spread);
        c.opt_dec(&h.avg_realized_spread_bps);
    }
    c.dec(&s.price_improved_shares);
    c.opt_dec(&s.avg_price_improvement);
    c.opt_dec(&s.price_improved_avg_time_ms);
    c.dec(&s.at_quote_shares);
    c.opt_dec(&s.at_quote_avg_time_ms);
    c.dec(&s.outside_quote_shares);
    c.opt_dec(&s.avg_outside_quote_amount);
    c.opt_dec(&s.outside_quote_avg_time_ms);
    c.opt_dec(&s.pct_at_quote_or_better);
    c.opt_dec(&s.pct_shares_price_improved);
    c.opt_dec(&s.price_improvement_bps);
    c.opt_dec(&s.arrival_cost_bps);
    c.opt_dec(&s.is_total_usd);
    c.opt_dec(&s.is_total_bps);
    c.opt_dec(&s.is_execution_cost_usd);
    c.opt_dec(&s.is_opportunity_cost_usd);
    c.opt_dec(&s.is_fees_usd);
    c.opt_dec(&s.is_delay_usd);
    c.opt_dec(&s.is_trading_usd);
    c.opt_dec(&s.is_opportunity_vs_arrival_usd);
    c.opt_dec(&s.vwap_slippage_bps);
    c.opt_dec(&s.vwap_slippage_ex_own_bps);
    c.opt_dec(&s.participation);
    c.dec(&s.fees_usd);
    match o.notes.as_slice() {
        [] => c.text(""),
        [n] => c.text(n),
        notes => c.text(&notes.join(";")),
    }
    c.out.push(b'\n');
}

/// The cells of one CSV line, written in place (quoted as [`write_row`] quotes them).
struct Cells<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Cells<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    fn text(&mut self, s: &str) {
        self.sep();
        // The characters `csv_field` quotes for, as bytes (ASCII: never inside a multi-byte
        // character).
        if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            self.out.extend_from_slice(csv_field(s).as_bytes());
        } else {
            self.out.extend_from_slice(s.as_bytes());
        }
    }

    fn opt_text(&mut self, s: &Option<String>) {
        self.text(s.as_deref().unwrap_or(""));
    }

    fn dec(&mut self, d: &Decimal) {
        self.sep();
        json::decimal_digits(self.out, d);
    }

    fn opt_dec(&mut self, d: &Option<Decimal>) {
        match d {
            Some(d) => self.dec(d),
            None => self.sep(),
        }
    }

    fn ts(&mut self, t: Option<model::Timestamp>) {
        self.sep();
        if let Some(t) = t {
            json::timestamp_digits(self.out, t);
        }
    }

    fn count(&mut self, v: u64) {
        self.sep();
        json::u64_(self.out, v);
    }

    fn opt_i64(&mut self, v: Option<i64>) {
        self.sep();
        if let Some(v) = v {
            json::i64_(self.out, v);
        }
    }
}

fn rule605_rows_csv(out: &mut String, month: &str, rows: &[Rule605Row]) {
    for r in rows {
        let mut c = vec![
            month.to_string(),
            r.symbol.clone(),
            r.order_class.as_str().to_string(),
            r.size_bucket.clone(),
            r.stats.orders.to_string(),
        ];
        c.extend(stats_cells(&r.stats));
        c.extend(r.stats.exec_time_buckets.iter().map(|q| q.to_string()));
        write_row(out, c);
    }
}

/// The Rule 605 report as CSV: detail rows, then the per-class `ALL` summary rows.
pub fn rule605_to_csv(r: &Rule605) -> String {
    let horizons: Vec<u64> = r
        .rows
        .first()
        .or(r.summary.first())
        .map(|row| {
            row.stats
                .realized_spreads
                .iter()
                .map(|h| h.horizon_ms)
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::new();
    let mut header: Vec<String> = ["month", "symbol", "order_class", "size_bucket", "orders"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(stats_header(&horizons));
    header.extend(
        crate::stats::EXEC_TIME_BUCKETS
            .iter()
            .map(|(n, _, _)| format!("shares_executed_{n}")),
    );
    write_row(&mut out, header);
    rule605_rows_csv(&mut out, &r.month, &r.rows);
    rule605_rows_csv(&mut out, &r.month, &r.summary);
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn f(d: Option<Decimal>) -> f64 {
    d.and_then(|d| d.to_f64()).unwrap_or(0.0)
}

/// A horizontal bar chart in inline SVG; bars may be negative (drawn left of a zero line).
fn bar_chart(title: &str, unit: &str, items: &[(String, Option<Decimal>)]) -> String {
    let row_h = 22.0;
    let (label_w, plot_w) = (170.0, 360.0);
    let height = 30.0 + row_h * items.len() as f64;
    let vals: Vec<f64> = items.iter().map(|(_, v)| f(*v)).collect();
    let max_pos = vals.iter().cloned().fold(0.0_f64, f64::max);
    let max_neg = vals.iter().cloned().fold(0.0_f64, |a, v| a.max(-v));
    let span = (max_pos + max_neg).max(f64::MIN_POSITIVE);
    let zero_x = label_w + plot_w * max_neg / span;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>{}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img">"#,
        esc(title),
        label_w + plot_w + 110.0
    );
    for (i, ((name, v), x)) in items.iter().zip(vals.iter()).enumerate() {
        let y = 20.0 + row_h * i as f64;
        let w = plot_w * x.abs() / span;
        let bx = if *x < 0.0 { zero_x - w } else { zero_x };
        let fill = if *x < 0.0 { "#c0504d" } else { "#4f81bd" };
        let text = v.map_or_else(|| "n/a".to_string(), |d| format!("{d} {unit}"));
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text><rect x="{bx:.1}" y="{}" width="{w:.1}" height="{}" fill="{fill}"/><text x="{:.1}" y="{}" font-size="11">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(name),
            y + 3.0,
            row_h - 6.0,
            label_w + plot_w + 4.0,
            y + 14.0,
            esc(&text)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{zero_x:.1}" y1="16" x2="{zero_x:.1}" y2="{}" stroke="#333"/></svg></figure>"##,
        height - 4.0
    );
    s
}

/// Stacked bars of executed shares: price improved / at the quote / outside the quote.
fn stacked_chart(rows: &[Rule605Row]) -> String {
    let row_h = 22.0;
    let (label_w, plot_w) = (170.0, 360.0);
    let height = 40.0 + row_h * rows.len() as f64;
    let parts = |r: &Rule605Row| {
        [
            f(Some(r.stats.price_improved_shares)),
            f(Some(r.stats.at_quote_shares)),
            f(Some(r.stats.outside_quote_shares)),
        ]
    };
    let max = rows
        .iter()
        .map(|r| parts(r).iter().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let colors = ["#9bbb59", "#4f81bd", "#c0504d"];
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>Executed shares: price improved (green), at the quote (blue), outside the quote (red)</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img">"#,
        label_w + plot_w + 110.0
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 20.0 + row_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12">{}</text>"#,
            label_w - 6.0,
            y + 14.0,
            esc(r.order_class.as_str())
        );
        let mut x = label_w;
        for (v, c) in parts(r).iter().zip(colors) {
            let w = plot_w * v / max;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="{}" fill="{c}"/>"#,
                y + 3.0,
                row_h - 6.0
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11">{}</text>"#,
            x + 4.0,
            y + 14.0,
            r.stats.shares_executed
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn html_table(rows: &[Rule605Row]) -> String {
    let cols = [
        "symbol",
        "order class",
        "size",
        "orders",
        "shares",
        "cancelled",
        "executed",
        "fill rate",
        "avg ES",
        "ES bps",
        "E/Q",
        "avg RS",
        "PI shares",
        "avg PI",
        "at quote",
        "outside",
        "avg outside",
        "% at or better",
        "avg time ms",
    ];
    let mut s = String::from("<table><thead><tr>");
    for c in cols {
        let _ = write!(s, "<th>{c}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        let st = &r.stats;
        let cells = [
            r.symbol.clone(),
            r.order_class.as_str().to_string(),
            r.size_bucket.clone(),
            st.orders.to_string(),
            st.shares_ordered.to_string(),
            st.shares_cancelled.to_string(),
            st.shares_executed.to_string(),
            od(st.fill_rate),
            od(st.avg_effective_spread),
            od(st.avg_effective_spread_bps),
            od(st.eq_ratio),
            od(st.avg_realized_spread),
            st.price_improved_shares.to_string(),
            od(st.avg_price_improvement),
            st.at_quote_shares.to_string(),
            st.outside_quote_shares.to_string(),
            od(st.avg_outside_quote_amount),
            od(st.pct_at_quote_or_better),
            od(st.avg_time_to_execution_ms),
        ];
        s.push_str("<tr>");
        for c in cells {
            let _ = write!(s, "<td>{}</td>", esc(&c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A self-contained HTML page (inline CSS and SVG, no JavaScript, no external resources).
pub fn rule605_to_html(r: &Rule605) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Execution quality {m}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}\
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}figure{{margin:1em 0}}\
figcaption{{font-weight:bold}}</style></head><body><h1>Rule 605-style execution quality report, {m}</h1>\
<p>{c} covered orders ({x} excluded: non-covered order class or size bucket). Spreads are share-weighted \
against the receipt quote; realized spread at {h} ms; positive effective spread = paid.</p>",
        m = esc(&r.month),
        c = r.covered_orders,
        x = r.excluded_orders,
        h = r.rs_primary_horizon_ms
    );
    s.push_str("<h2>Summary by order class</h2>");
    s.push_str(&stacked_chart(&r.summary));
    let es: Vec<(String, Option<Decimal>)> = r
        .summary
        .iter()
        .map(|x| {
            (
                x.order_class.as_str().to_string(),
                x.stats.avg_effective_spread_bps,
            )
        })
        .collect();
    s.push_str(&bar_chart(
        "Average effective spread (bps of mid)",
        "bps",
        &es,
    ));
    let fr: Vec<(String, Option<Decimal>)> = r
        .summary
        .iter()
        .map(|x| (x.order_class.as_str().to_string(), x.stats.fill_rate))
        .collect();
    s.push_str(&bar_chart(
        "Fill rate (shares executed / shares ordered)",
        "",
        &fr,
    ));
    s.push_str(&html_table(&r.summary));
    s.push_str("<h2>Detail by symbol, order class and size</h2>");
    s.push_str(&html_table(&r.rows));
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_labels() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(label(300_000), "5m");
        assert_eq!(label(15_000), "15s");
        assert_eq!(label(50), "50ms");
        assert_eq!(esc("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
