//! The JSON report written by hand: exactly the bytes `serde_json::to_writer_pretty` makes of
//! [`crate::Report`] (two-space indent, the fields in declaration order, decimals as strings,
//! timestamps as RFC 3339 with nine fractional digits), without serde's per-key escaping,
//! `Display` of decimals and chrono formatting of timestamps. A per-order row is the report's
//! bulk (~60 keys each); the small parts (parameters, data issues, aggregates) still go
//! through serde, re-indented to their depth.

use std::io::Write;

use model::text::{DECIMAL_TEXT, DIGIT_PAIRS, decimal_into, digits_before, integer_into};
use model::{Decimal, Side, Timestamp};

use crate::report::{Marketability, OrderQuality, OrderStatus};
use crate::stats::{HorizonStats, Stats};

/// A newline and the indentation of depth `level`.
#[inline(always)]
fn nl(buf: &mut Vec<u8>, level: usize) {
    const SPACES: &[u8] = b"\n                                ";
    let n = 1 + 2 * level;
    if n <= SPACES.len() {
        buf.extend_from_slice(&SPACES[..n]);
    } else {
        buf.push(b'\n');
        buf.resize(buf.len() + 2 * level, b' ');
    }
}

/// A JSON string, escaped as serde_json escapes it.
pub(crate) fn string(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Rare (ids with quotes or control characters): serde_json's own escaping.
        let _ = serde_json::to_writer(&mut *buf, s);
        return;
    }
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Appends the first `n` bytes of `out` to `buf`: the whole array is copied (a copy of known
/// length, a few moves instead of a call) and the rest cut off again.
#[inline(always)]
fn put<const N: usize>(buf: &mut Vec<u8>, out: &[u8; N], n: usize) {
    let start = buf.len();
    buf.extend_from_slice(out);
    buf.truncate(start + n);
}

pub(crate) fn u64_(buf: &mut Vec<u8>, v: u64) {
    let mut out = [b'0'; 24];
    let n = integer_into(&mut out, 0, v, false);
    put(buf, &out, n);
}

pub(crate) fn i64_(buf: &mut Vec<u8>, v: i64) {
    let mut out = [b'0'; 24];
    let n = integer_into(&mut out, 0, v.unsigned_abs(), v < 0);
    put(buf, &out, n);
}

/// `d` as rust_decimal writes it (`Display` and its serde form).
pub(crate) fn decimal_digits(buf: &mut Vec<u8>, d: &Decimal) {
    let mut out = [b'0'; DECIMAL_TEXT];
    let n = decimal_into(&mut out, 0, d);
    put(buf, &out, n);
}

pub(crate) fn decimal(buf: &mut Vec<u8>, d: &Decimal) {
    // A plain zero (no scale, no sign) is half the decimals of a report.
    if d.is_zero() && d.scale() == 0 && d.is_sign_positive() {
        buf.extend_from_slice(b"\"0\"");
        return;
    }
    let mut out = [b'0'; DECIMAL_TEXT];
    out[0] = b'"';
    let n = decimal_into(&mut out, 1, d);
    out[n] = b'"';
    put(buf, &out, n + 1);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `t` as its `Display` writes it (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; an `i64` of nanoseconds
/// stays within years 1677-2262, always four digits): 30 bytes from `at` in `out` (filled with
/// `b'0'`, which pads the nanoseconds).
#[inline(always)]
fn timestamp_into(out: &mut [u8], at: usize, t: Timestamp) {
    let ns = t.as_nanos();
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let y = y as u32;
    let mut two = |i: usize, v: u32| {
        let r = v as usize * 2;
        out[at + i..at + i + 2].copy_from_slice(&DIGIT_PAIRS[r..r + 2]);
    };
    two(0, y / 100);
    two(2, y % 100);
    two(5, m);
    two(8, d);
    two(11, sod / 3600);
    two(14, sod / 60 % 60);
    two(17, sod % 60);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        out[at + i] = c;
    }
    digits_before(out, at + 29, nanos);
    out[at + 29] = b'Z';
}

/// `t` as its `Display` writes it.
pub(crate) fn timestamp_digits(buf: &mut Vec<u8>, t: Timestamp) {
    let mut out = [b'0'; 30];
    timestamp_into(&mut out, 0, t);
    buf.extend_from_slice(&out);
}

fn timestamp(buf: &mut Vec<u8>, t: Timestamp) {
    let mut out = [b'0'; 32];
    out[0] = b'"';
    timestamp_into(&mut out, 1, t);
    out[31] = b'"';
    buf.extend_from_slice(&out);
}

fn opt_timestamp(buf: &mut Vec<u8>, t: Option<Timestamp>) {
    match t {
        Some(t) => timestamp(buf, t),
        None => buf.extend_from_slice(b"null"),
    }
}

fn opt_string(buf: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => string(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

fn opt_i64(buf: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => i64_(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Static text: a name the JSON needs no escaping for.
fn name(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn marketability_name(m: Marketability) -> &'static str {
    match m {
        Marketability::Market => "market",
        Marketability::MarketableLimit => "marketable_limit",
        Marketability::NonMarketableLimit => "non_marketable_limit",
        Marketability::Unclassified => "unclassified",
    }
}

pub(crate) fn status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::PartiallyFilledCancelled => "partially_filled_cancelled",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Open => "open",
    }
}

/// The entries of one pretty-printed object at depth `L` (its keys at `L + 1`, written with
/// their indentation by `k2!` / `k4!`).
struct Obj<'b, const L: usize> {
    buf: &'b mut Vec<u8>,
    first: bool,
}

impl<'b, const L: usize> Obj<'b, L> {
    fn open(buf: &'b mut Vec<u8>) -> Obj<'b, L> {
        buf.push(b'{');
        Obj { buf, first: true }
    }

    /// The separator, indentation and `"key": ` of the next entry, given as one literal
    /// `,\n<indentation>"key": ` (see `k2!` and `k4!`; the comma is left out for the first
    /// entry); the value follows.
    #[inline(always)]
    fn lit(&mut self, lit: &'static str) -> &mut Vec<u8> {
        let b = lit.as_bytes();
        // Two copies of known length (the literal's, or one less) rather than one of either.
        if self.first {
            self.first = false;
            self.buf.extend_from_slice(&b[1..]);
        } else {
            self.buf.extend_from_slice(b);
        }
        self.buf
    }

    fn close(self) {
        if !self.first {
            nl(self.buf, L);
        }
        self.buf.push(b'}');
    }
}

/// The next key of an `Obj<2>` (a row: keys at depth 3, six spaces), as one literal.
macro_rules! k2 {
    ($o:expr, $k:literal) => {
        $o.lit(concat!(",\n      \"", $k, "\": "))
    };
}

/// The next key of an `Obj<4>` (a horizon in a row: keys at depth 5, ten spaces).
macro_rules! k4 {
    ($o:expr, $k:literal) => {
        $o.lit(concat!(",\n          \"", $k, "\": "))
    };
}

/// An optional decimal entry of an `Obj<2>`; `null` is written with its key as one literal.
macro_rules! od2 {
    ($o:expr, $k:literal, $v:expr) => {
        match $v {
            Some(d) => decimal(k2!($o, $k), d),
            None => {
                $o.lit(concat!(",\n      \"", $k, "\": null"));
            }
        }
    };
}

/// The same for an `Obj<4>`.
macro_rules! od4 {
    ($o:expr, $k:literal, $v:expr) => {
        match $v {
            Some(d) => decimal(k4!($o, $k), d),
            None => {
                $o.lit(concat!(",\n          \"", $k, "\": null"));
            }
        }
    };
}

/// A pretty-printed array of `items` at depth `level`.
fn array<T>(buf: &mut Vec<u8>, level: usize, items: &[T], item: impl Fn(&mut Vec<u8>, &T)) {
    buf.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        nl(buf, level + 1);
        item(buf, x);
    }
    if !items.is_empty() {
        nl(buf, level);
    }
    buf.push(b']');
}

/// One horizon of a row's `realized_spreads`.
fn horizon(buf: &mut Vec<u8>, h: &HorizonStats) {
    let mut o = Obj::<4>::open(buf);
    u64_(k4!(o, "horizon_ms"), h.horizon_ms);
    decimal(k4!(o, "shares"), &h.shares);
    od4!(o, "avg_realized_spread", &h.avg_realized_spread);
    od4!(o, "avg_realized_spread_bps", &h.avg_realized_spread_bps);
    od4!(o, "price_impact", &h.price_impact);
    o.close();
}

/// The fields of [`Stats`], in order, as entries of `o` (flattened into a row).
fn stats_fields(o: &mut Obj<'_, 2>, s: &Stats) {
    let level = 3;
    u64_(k2!(o, "orders"), s.orders);
    u64_(k2!(o, "orders_filled"), s.orders_filled);
    od2!(o, "orders_filled_rate", &s.orders_filled_rate);
    decimal(k2!(o, "shares_ordered"), &s.shares_ordered);
    decimal(k2!(o, "shares_executed"), &s.shares_executed);
    decimal(k2!(o, "shares_cancelled"), &s.shares_cancelled);
    od2!(o, "fill_rate", &s.fill_rate);
    od2!(o, "cancel_rate", &s.cancel_rate);
    od2!(o, "avg_time_to_execution_ms", &s.avg_time_to_execution_ms);
    od2!(o, "avg_time_to_first_fill_ms", &s.avg_time_to_first_fill_ms);
    od2!(
        o,
        "avg_time_to_complete_fill_ms",
        &s.avg_time_to_complete_fill_ms
    );
    array(
        k2!(o, "exec_time_buckets"),
        level,
        &s.exec_time_buckets,
        decimal,
    );
    od2!(o, "avg_mid", &s.avg_mid);
    od2!(o, "avg_quoted_spread", &s.avg_quoted_spread);
    od2!(o, "avg_effective_spread", &s.avg_effective_spread);
    od2!(o, "avg_effective_spread_bps", &s.avg_effective_spread_bps);
    od2!(o, "eq_ratio", &s.eq_ratio);
    od2!(o, "avg_realized_spread", &s.avg_realized_spread);
    od2!(o, "avg_realized_spread_bps", &s.avg_realized_spread_bps);
    od2!(o, "price_impact", &s.price_impact);
    array(
        k2!(o, "realized_spreads"),
        level,
        &s.realized_spreads,
        horizon,
    );
    decimal(k2!(o, "price_improved_shares"), &s.price_improved_shares);
    decimal(
        k2!(o, "price_improvement_amount"),
        &s.price_improvement_amount,
    );
    od2!(o, "avg_price_improvement", &s.avg_price_improvement);
    od2!(
        o,
        "price_improved_avg_time_ms",
        &s.price_improved_avg_time_ms
    );
    decimal(k2!(o, "at_quote_shares"), &s.at_quote_shares);
    od2!(o, "at_quote_avg_time_ms", &s.at_quote_avg_time_ms);
    decimal(k2!(o, "outside_quote_shares"), &s.outside_quote_shares);
    decimal(k2!(o, "outside_quote_amount"), &s.outside_quote_amount);
    od2!(o, "avg_outside_quote_amount", &s.avg_outside_quote_amount);
    od2!(o, "outside_quote_avg_time_ms", &s.outside_quote_avg_time_ms);
    od2!(o, "pct_at_quote_or_better", &s.pct_at_quote_or_better);
    od2!(o, "pct_shares_price_improved", &s.pct_shares_price_improved);
    od2!(o, "price_improvement_bps", &s.price_improvement_bps);
    od2!(o, "arrival_cost_bps", &s.arrival_cost_bps);
    u64_(k2!(o, "is_orders"), s.is_orders);
    od2!(o, "is_total_usd", &s.is_total_usd);
    od2!(o, "is_total_bps", &s.is_total_bps);
    od2!(o, "is_execution_cost_usd", &s.is_execution_cost_usd);
    od2!(o, "is_opportunity_cost_usd", &s.is_opportunity_cost_usd);
    od2!(o, "is_fees_usd", &s.is_fees_usd);
    od2!(o, "is_delay_usd", &s.is_delay_usd);
    od2!(o, "is_trading_usd", &s.is_trading_usd);
    od2!(
        o,
        "is_opportunity_vs_arrival_usd",
        &s.is_opportunity_vs_arrival_usd
    );
    od2!(o, "vwap_slippage_bps", &s.vwap_slippage_bps);
    od2!(o, "vwap_slippage_ex_own_bps", &s.vwap_slippage_ex_own_bps);
    od2!(o, "participation", &s.participation);
    decimal(k2!(o, "fees_usd"), &s.fees_usd);
}

/// One per-order row as its serde form (the served form: no `sums`, no `pending_spreads`),
/// pretty-printed at depth 2 (a value of the report's `orders`).
pub(crate) fn row(buf: &mut Vec<u8>, r: &OrderQuality) {
    let mut o = Obj::<2>::open(buf);
    string(k2!(o, "order_id"), &r.order_id);
    opt_string(k2!(o, "account"), &r.account);
    opt_string(k2!(o, "owner"), &r.owner);
    string(k2!(o, "symbol"), &r.symbol);
    name(k2!(o, "side"), side_name(r.side));
    opt_string(k2!(o, "order_type"), &r.order_type);
    opt_string(k2!(o, "tif"), &r.tif);
    od2!(o, "limit_price", &r.limit_price);
    od2!(o, "decision_price", &r.decision_price);
    timestamp(k2!(o, "receipt_ts"), r.receipt_ts);
    opt_timestamp(k2!(o, "receipt_quote_ts"), r.receipt_quote_ts);
    od2!(o, "receipt_bid", &r.receipt_bid);
    od2!(o, "receipt_ask", &r.receipt_ask);
    od2!(o, "receipt_mid", &r.receipt_mid);
    od2!(o, "receipt_quoted_spread", &r.receipt_quoted_spread);
    name(k2!(o, "order_class"), r.order_class.as_str());
    name(k2!(o, "marketability"), marketability_name(r.marketability));
    string(k2!(o, "size_bucket"), r.size_bucket);
    string(k2!(o, "liquidity"), r.liquidity);
    string(k2!(o, "time_window"), &r.time_window);
    name(k2!(o, "status"), status_name(r.status));
    opt_timestamp(k2!(o, "end_ts"), r.end_ts);
    decimal(k2!(o, "shares_open"), &r.shares_open);
    u64_(k2!(o, "fill_count"), r.fill_count);
    od2!(o, "avg_exec_price", &r.avg_exec_price);
    opt_i64(k2!(o, "time_to_first_fill_ms"), r.time_to_first_fill_ms);
    opt_i64(
        k2!(o, "time_to_complete_fill_ms"),
        r.time_to_complete_fill_ms,
    );
    od2!(o, "is_end_price", &r.is_end_price);
    od2!(o, "vwap", &r.vwap);
    od2!(o, "vwap_ex_own", &r.vwap_ex_own);
    array(k2!(o, "notes"), 3, &r.notes, |buf, n| string(buf, n));
    stats_fields(&mut o, &r.stats);
    o.close();
}

/// `value` pretty-printed by serde_json as if nested at depth `level`.
pub(crate) fn serde_at<T: serde::Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    level: usize,
    value: &T,
) -> std::io::Result<()> {
    let mut tmp = Vec::new();
    serde_json::to_writer_pretty(&mut tmp, value)?;
    // Indentation only ever follows a newline (strings escape theirs).
    for &b in &tmp {
        buf.push(b);
        if b == b'\n' {
            buf.resize(buf.len() + 2 * level, b' ');
        }
    }
    Ok(())
}

/// Writes `buf` to `w` once it holds a good chunk, and empties it.
pub(crate) fn flush_if_big(buf: &mut Vec<u8>, w: &mut impl Write) -> std::io::Result<()> {
    if buf.len() >= 1 << 16 {
        w.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

impl crate::ExecQuality {
    /// [`crate::ExecQuality::report`] as pretty JSON, the same bytes as
    /// `serde_json::to_writer_pretty` of it (no trailing newline), written to `w` row by row:
    /// one per-order row in memory at a time (as [`crate::ExecQuality::report_streamed`]),
    /// the rows written by hand instead of through serde.
    pub fn write_report_json(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut agg = crate::RowAggregator::new(self.params(), crate::ReportFilter::default())
            .map_err(std::io::Error::other)?;
        let mut buf = Vec::with_capacity(1 << 17);
        // The fields of `Report`, in its order.
        buf.push(b'{');
        nl(&mut buf, 1);
        buf.extend_from_slice(b"\"params\": ");
        serde_at(&mut buf, 1, self.params())?;
        buf.push(b',');
        nl(&mut buf, 1);
        buf.extend_from_slice(b"\"records\": ");
        u64_(&mut buf, self.records());
        buf.push(b',');
        nl(&mut buf, 1);
        buf.extend_from_slice(b"\"data_issues\": ");
        serde_at(&mut buf, 1, &self.data_issues())?;
        buf.push(b',');
        nl(&mut buf, 1);
        buf.extend_from_slice(b"\"orders\": {");
        let mut first = true;
        self.for_each_held_row(&crate::ReportFilter::default(), |r| {
            agg.add(r);
            if !first {
                buf.push(b',');
            }
            first = false;
            nl(&mut buf, 2);
            string(&mut buf, &r.order_id);
            buf.extend_from_slice(b": ");
            row(&mut buf, r);
            flush_if_big(&mut buf, w)
        })?;
        if !first {
            nl(&mut buf, 1);
        }
        buf.extend_from_slice(b"},");
        nl(&mut buf, 1);
        buf.extend_from_slice(b"\"aggregates\": ");
        serde_at(&mut buf, 1, &agg.finish())?;
        nl(&mut buf, 0);
        buf.push(b'}');
        w.write_all(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_as_rust_decimal_does() {
        let cases = [
            "0",
            "-0",
            "0.00",
            "1",
            "-1",
            "10",
            "0.5",
            "-0.5",
            "0.000001",
            "123.456",
            "-0.0",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "1e-28",
            "18446744073709551616",
            "18446744073709551615.5",
        ];
        for c in cases {
            let d: Decimal = c.parse().or_else(|_| Decimal::from_scientific(c)).unwrap();
            let mut buf = Vec::new();
            decimal(&mut buf, &d);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&d).unwrap(),
                "{c}"
            );
        }
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let m = i128::from(x as i64) >> (x % 60);
            let m = if x.is_multiple_of(3) { m << 30 } else { m };
            let d = Decimal::from_i128_with_scale(m, (x % 29) as u32);
            let mut buf = Vec::new();
            decimal(&mut buf, &d);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&d).unwrap(),
                "{m} {}",
                x % 29
            );
            let mut buf = Vec::new();
            i64_(&mut buf, x as i64);
            assert_eq!(String::from_utf8(buf).unwrap(), (x as i64).to_string());
        }
        // Mantissas at the edges of the 64-bit path (and of the split at 10^19), every scale,
        // quoted (JSON) and bare (CSV).
        let mut edges = vec![0u128, 1, 9, 10, 99, 100, 101];
        for k in 1..=20u32 {
            let p = 10u128.pow(k);
            edges.extend([p - 1, p, p + 1]);
        }
        edges.extend([
            u128::from(u64::MAX) - 1,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
        ]);
        for m in edges {
            for scale in 0..=28 {
                for neg in [false, true] {
                    let m = if neg { -(m as i128) } else { m as i128 };
                    let d = Decimal::from_i128_with_scale(m, scale);
                    let mut buf = Vec::new();
                    decimal(&mut buf, &d);
                    assert_eq!(
                        String::from_utf8(buf).unwrap(),
                        serde_json::to_string(&d).unwrap(),
                        "{m} {scale}"
                    );
                    let mut buf = b"x".to_vec();
                    decimal_digits(&mut buf, &d);
                    assert_eq!(String::from_utf8(buf).unwrap(), format!("x{d}"));
                }
            }
            if let Ok(v) = u64::try_from(m) {
                let mut buf = b"x".to_vec();
                u64_(&mut buf, v);
                assert_eq!(String::from_utf8(buf).unwrap(), format!("x{v}"));
            }
        }
        let neg_zero = Decimal::ZERO - Decimal::ZERO;
        let neg_zero = -neg_zero;
        let mut buf = Vec::new();
        decimal(&mut buf, &neg_zero);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            serde_json::to_string(&neg_zero).unwrap()
        );
    }

    #[test]
    fn timestamps_print_as_their_display() {
        let mut x: i64 = 0x9e37_79b9_7f4a_7c15u64 as i64;
        let mut cases = vec![0, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_123_456_789];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x);
            cases.push(x / 1_000_000_000 * 1_000_000_000);
        }
        for ns in cases {
            let t = Timestamp::from_nanos(ns);
            let mut buf = b"x".to_vec();
            timestamp_digits(&mut buf, t);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("x{t}"), "{ns}");
            let mut buf = b"x".to_vec();
            timestamp(&mut buf, t);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                format!("x{}", serde_json::to_string(&t).unwrap()),
                "{ns}"
            );
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "",
            "abc",
            "a\"b",
            "a\\b",
            "tab\there",
            "\u{1}",
            "é✓",
            "<100",
        ] {
            let mut buf = Vec::new();
            string(&mut buf, s);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
