//! Exact sums and the statistics derived from them.
//!
//! Every statistic is a ratio of share-weighted sums (spec section 0: "percentage statistics
//! are a ratio of averages"). Orders and groups carry the same [`Sums`]; a group's sums are the
//! plain sum of its orders' sums, so an aggregate is exactly its orders recombined.

use model::Decimal;
use rust_decimal::RoundingStrategy;
use rust_decimal::prelude::FromPrimitive;
use serde::{Deserialize, Serialize};

use crate::params::{Resolved, RsBpsDenominator};

/// Legacy 605(a)(1)(i)(F)-(J) time-to-execution buckets, half-open in ms (A5, 6.8), plus the
/// overflow bucket.
pub const EXEC_TIME_BUCKETS: [(&str, i64, i64); 6] = [
    ("0-9s", 0, 10_000),
    ("10-29s", 10_000, 30_000),
    ("30-59s", 30_000, 60_000),
    ("60-299s", 60_000, 300_000),
    ("5-30m", 300_000, 1_800_000),
    ("30m+", 1_800_000, i64::MAX),
];

pub(crate) fn exec_bucket(ms: i64) -> usize {
    EXEC_TIME_BUCKETS
        .iter()
        .position(|(_, lo, hi)| ms >= *lo && ms < *hi)
        .unwrap_or(0) // negative times (fill stamped before receipt) land in the first bucket
}

/// Sums for one realized-spread horizon over the fills resolved for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizonSums {
    /// Shares of the resolved fills.
    pub q: Decimal,
    /// `sum q * RS_i(h)`.
    pub rs: Decimal,
    /// `sum q * ES_i` over the same fills (price impact = ES - RS on one set of fills).
    pub es: Decimal,
    /// `sum q * M_benchmark` over the same fills.
    pub mid: Decimal,
    /// `sum q * M(t_e + h)`.
    pub mid_h: Decimal,
}

/// Exact share-weighted sums of one order or one group of orders. Monetary sums are in quote
/// currency, times in integer ms. Serializable so that stored per-order rows and engine
/// snapshots keep them exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums {
    pub orders: u64,
    /// Orders with at least one fill.
    pub orders_filled: u64,
    /// Orders whose executions reached the ordered quantity.
    pub orders_complete: u64,
    pub shares_ordered: Decimal,
    pub shares_executed: Decimal,
    pub shares_cancelled: Decimal,
    /// `sum q_j P_j`.
    pub exec_notional: Decimal,
    pub fees: Decimal,
    /// `sum q_j * (t_e,j - t_r)` in share-ms.
    pub exec_time: Decimal,
    /// Sums of per-order time to first / complete fill, ms (order-weighted averages). Written
    /// as JSON strings: a JSON number holder (`serde_json::Value`) stops at 64 bits.
    #[serde(with = "i128_string")]
    pub first_fill_ms: i128,
    #[serde(with = "i128_string")]
    pub complete_fill_ms: i128,
    /// Effective spread over fills with a usable benchmark quote: shares, `sum q*ES`,
    /// `sum q*M`, `sum q*Q`.
    pub es_q: Decimal,
    pub es: Decimal,
    pub es_mid: Decimal,
    pub es_quoted: Decimal,
    /// Fills with a usable receipt quote: shares and `sum q*M_r` (the %PI and arrival
    /// denominators), `sum s*q*(P - M_r)` (arrival cost numerator).
    pub rq_q: Decimal,
    pub rq_mid: Decimal,
    pub arrival: Decimal,
    /// Price improvement / at the quote / outside the quote: shares, amounts (`sum q*amount`,
    /// both positive) and `sum q*t_exec` (share-ms).
    pub pi_q: Decimal,
    pub pi_amount: Decimal,
    pub pi_time: Decimal,
    pub at_q: Decimal,
    pub at_time: Decimal,
    pub out_q: Decimal,
    pub out_amount: Decimal,
    pub out_time: Decimal,
    /// Shares executed per [`EXEC_TIME_BUCKETS`] bucket.
    pub time_buckets: [Decimal; 6],
    /// One entry per horizon (sorted ascending).
    pub horizons: Vec<HorizonSums>,
    /// Implementation shortfall over the orders that have one: totals in quote currency and the
    /// bps denominator.
    pub is_orders: u64,
    /// Orders among `is_orders` with an arrival price, so the Wagner split exists.
    pub is_wagner_orders: u64,
    pub is_total: Decimal,
    pub is_denominator: Decimal,
    pub is_execution: Decimal,
    pub is_opportunity: Decimal,
    pub is_fees: Decimal,
    pub is_delay: Decimal,
    pub is_trading: Decimal,
    pub is_opportunity_arrival: Decimal,
    /// VWAP slippage over orders with tape volume: `sum s*(sum qP - X*VWAP)` and `sum X*VWAP`;
    /// the same with own prints excluded; and `sum X`, `sum tape volume` for participation.
    pub vwap_orders: u64,
    pub vwap_cost: Decimal,
    pub vwap_den: Decimal,
    pub vwapx_orders: u64,
    pub vwapx_cost: Decimal,
    pub vwapx_den: Decimal,
    pub part_x: Decimal,
    pub part_tape: Decimal,
}

impl Sums {
    pub(crate) fn with_horizons(n: usize) -> Sums {
        Sums {
            horizons: vec![HorizonSums::default(); n],
            ..Sums::default()
        }
    }

    /// `self` made a copy of `o`, keeping the allocation of its horizons.
    pub(crate) fn copy_from(&mut self, o: &Sums) {
        let mut h = std::mem::take(&mut self.horizons);
        h.clear();
        h.extend_from_slice(&o.horizons);
        *self = Sums { horizons: h, ..*o };
    }

    /// `self` made zero with `n` horizon entries, keeping the allocation of its horizons.
    pub(crate) fn set_zero(&mut self, n: usize) {
        let mut h = std::mem::take(&mut self.horizons);
        h.clear();
        h.resize(n, HorizonSums::default());
        *self = Sums {
            horizons: h,
            ..Sums::default()
        };
    }

    /// Whether every sum over executions that a statistic divides or shows is zero (as for an
    /// order without fills), so that [`Stats`] takes its short path: no executed shares,
    /// filled or complete orders, quote or price-improvement shares and amounts, time buckets,
    /// fees, VWAP denominators, participation numerator, and no horizon shares or
    /// realized-spread denominators. (Sums only ever divided by one of these may be anything.)
    pub(crate) fn without_executions(&self) -> bool {
        let z = Decimal::is_zero;
        self.orders_filled == 0
            && self.orders_complete == 0
            && z(&self.shares_executed)
            && z(&self.es_q)
            && z(&self.es_mid)
            && z(&self.es_quoted)
            && z(&self.rq_q)
            && z(&self.rq_mid)
            && z(&self.pi_q)
            && z(&self.pi_amount)
            && z(&self.at_q)
            && z(&self.out_q)
            && z(&self.out_amount)
            && z(&self.fees)
            && z(&self.vwap_den)
            && z(&self.vwapx_den)
            && z(&self.part_x)
            && self.time_buckets.iter().all(Decimal::is_zero)
            && self
                .horizons
                .iter()
                .all(|h| h.q.is_zero() && h.mid.is_zero() && h.mid_h.is_zero())
    }

    /// Add another order's or group's sums.
    pub fn add(&mut self, o: &Sums) {
        // `x + 0` is `x` exactly (scale included), and most of an order's sums are zero: the
        // test is cheaper than the addition.
        self.combine(
            o,
            |a, b| {
                if !b.is_zero() {
                    add_to(a, b)
                }
            },
            |a, b| *a += b,
            |a, b| *a += b,
        );
    }

    /// Remove sums added before. Counts wrap instead of failing, so a difference of two
    /// order states can be applied as a delta with [`Sums::add_wrapping`]: the running totals
    /// it lands in are never negative.
    pub(crate) fn sub_wrapping(&mut self, o: &Sums) {
        self.combine(
            o,
            |a, b| *a -= b,
            |a, b| *a = a.wrapping_sub(b),
            |a, b| *a = a.wrapping_sub(b),
        );
    }

    pub(crate) fn add_wrapping(&mut self, o: &Sums) {
        self.combine(
            o,
            |a, b| *a += b,
            |a, b| *a = a.wrapping_add(b),
            |a, b| *a = a.wrapping_add(b),
        );
    }

    /// Apply `dec`, `cnt` and `ms` to every pair of fields (decimal sums, counts, i128 ms sums).
    fn combine(
        &mut self,
        o: &Sums,
        dec: impl Fn(&mut Decimal, Decimal),
        cnt: impl Fn(&mut u64, u64),
        ms: impl Fn(&mut i128, i128),
    ) {
        cnt(&mut self.orders, o.orders);
        cnt(&mut self.orders_filled, o.orders_filled);
        cnt(&mut self.orders_complete, o.orders_complete);
        dec(&mut self.shares_ordered, o.shares_ordered);
        dec(&mut self.shares_executed, o.shares_executed);
        dec(&mut self.shares_cancelled, o.shares_cancelled);
        dec(&mut self.exec_notional, o.exec_notional);
        dec(&mut self.fees, o.fees);
        dec(&mut self.exec_time, o.exec_time);
        ms(&mut self.first_fill_ms, o.first_fill_ms);
        ms(&mut self.complete_fill_ms, o.complete_fill_ms);
        dec(&mut self.es_q, o.es_q);
        dec(&mut self.es, o.es);
        dec(&mut self.es_mid, o.es_mid);
        dec(&mut self.es_quoted, o.es_quoted);
        dec(&mut self.rq_q, o.rq_q);
        dec(&mut self.rq_mid, o.rq_mid);
        dec(&mut self.arrival, o.arrival);
        dec(&mut self.pi_q, o.pi_q);
        dec(&mut self.pi_amount, o.pi_amount);
        dec(&mut self.pi_time, o.pi_time);
        dec(&mut self.at_q, o.at_q);
        dec(&mut self.at_time, o.at_time);
        dec(&mut self.out_q, o.out_q);
        dec(&mut self.out_amount, o.out_amount);
        dec(&mut self.out_time, o.out_time);
        for (a, b) in self.time_buckets.iter_mut().zip(o.time_buckets.iter()) {
            dec(a, *b);
        }
        if self.horizons.len() < o.horizons.len() {
            self.horizons
                .resize(o.horizons.len(), HorizonSums::default());
        }
        for (a, b) in self.horizons.iter_mut().zip(o.horizons.iter()) {
            dec(&mut a.q, b.q);
            dec(&mut a.rs, b.rs);
            dec(&mut a.es, b.es);
            dec(&mut a.mid, b.mid);
            dec(&mut a.mid_h, b.mid_h);
        }
        cnt(&mut self.is_orders, o.is_orders);
        cnt(&mut self.is_wagner_orders, o.is_wagner_orders);
        dec(&mut self.is_total, o.is_total);
        dec(&mut self.is_denominator, o.is_denominator);
        dec(&mut self.is_execution, o.is_execution);
        dec(&mut self.is_opportunity, o.is_opportunity);
        dec(&mut self.is_fees, o.is_fees);
        dec(&mut self.is_delay, o.is_delay);
        dec(&mut self.is_trading, o.is_trading);
        dec(&mut self.is_opportunity_arrival, o.is_opportunity_arrival);
        cnt(&mut self.vwap_orders, o.vwap_orders);
        dec(&mut self.vwap_cost, o.vwap_cost);
        dec(&mut self.vwap_den, o.vwap_den);
        cnt(&mut self.vwapx_orders, o.vwapx_orders);
        dec(&mut self.vwapx_cost, o.vwapx_cost);
        dec(&mut self.vwapx_den, o.vwapx_den);
        dec(&mut self.part_x, o.part_x);
        dec(&mut self.part_tape, o.part_tape);
    }
}

/// `*a += b`, the same digits, scale and sign as rust_decimal's addition gives, with the
/// common case done in place: two nonzero operands of one sign and one scale with mantissas
/// below 2^64, whose sum rust_decimal gives as the mantissas' sum with that sign and scale.
/// Everything else (zeros, other signs or scales, wider mantissas) takes its addition.
#[inline(always)]
pub(crate) fn add_to(a: &mut Decimal, b: Decimal) {
    // `serialize`: flags (sign and scale), then lo, mid, hi, little-endian.
    let (x, y) = (Decimal::serialize(a), Decimal::serialize(&b));
    let word = |v: &[u8; 16], i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
    if word(&x, 0) == word(&y, 0) && word(&x, 12) == 0 && word(&y, 12) == 0 {
        let low = |v: &[u8; 16]| u64::from(word(v, 4)) | u64::from(word(v, 8)) << 32;
        let (la, lb) = (low(&x), low(&y));
        if la != 0 && lb != 0 {
            let (sum, carry) = la.overflowing_add(lb);
            *a = Decimal::from_parts(
                sum as u32,
                (sum >> 32) as u32,
                u32::from(carry),
                a.is_sign_negative(),
                a.scale(),
            );
            return;
        }
    }
    *a += b;
}

mod i128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Output scales (round half away from zero): prices and per-share amounts 8 dp, bps 4 dp,
/// ratios 6 dp, milliseconds 3 dp. Sums in quote currency and shares are exact.
pub(crate) const PRICE_DP: u32 = 8;
pub(crate) const BPS_DP: u32 = 4;
pub(crate) const RATIO_DP: u32 = 6;
pub(crate) const MS_DP: u32 = 3;

pub(crate) fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// `a / b` rounded, `None` when `b` is zero (a statistic with no observations is null).
pub(crate) fn ratio(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
    if b.is_zero() {
        return None;
    }
    // Fast paths: decimal division is the report's main cost and these cases are common
    // (no improvement, a full fill).
    if a.is_zero() {
        return Some(Decimal::ZERO);
    }
    // The same digits, sign and scale (`==` would compare values, through a rescaling when
    // they are not the same digits); equal values written otherwise give 1 below as well.
    if a.mantissa() == b.mantissa() && a.scale() == b.scale() {
        return Some(Decimal::ONE);
    }
    if let Some(q) = div_round(a.mantissa(), a.scale(), b, dp) {
        return Some(q);
    }
    a.checked_div(b).map(|x| round(x, dp))
}

pub(crate) fn bps(a: Decimal, b: Decimal) -> Option<Decimal> {
    if b.is_zero() {
        return None;
    }
    if a.is_zero() {
        return Some(Decimal::ZERO);
    }
    // `a * 10^4` is exact (same scale, mantissa times 10^4) while the mantissa fits 96 bits.
    let am = a
        .mantissa()
        .checked_mul(10_000)
        .filter(|m| m.unsigned_abs() < 1 << 96);
    if let Some(q) = am.and_then(|m| div_round(m, a.scale(), b, BPS_DP)) {
        return Some(q);
    }
    a.checked_mul(Decimal::from(10_000))
        .and_then(|x| x.checked_div(b))
        .map(|x| round(x, BPS_DP))
}

/// `10^i`, `i` in `0..=38`.
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `round((am / 10^sa) / b, dp)` (see [`round`]) exactly as `checked_div` then `round` give it,
/// computed in integers, or `None` where that is not certain (then take the decimal path).
/// `am` is a dividend mantissa below 2^96 in magnitude, not zero; `b` is not zero.
///
/// rust_decimal's quotient is the exact one rounded (half to even) to its last digit, at the
/// largest scale up to 28 at which the mantissa fits 96 bits: at least `27 - k` fractional
/// digits for `k` integer digits (`find_scale` may stop one digit short of 28 significant
/// ones). Rounding that to `dp` places differs from rounding the exact quotient only when the
/// 28-digit quotient lands on a midpoint at `dp` places that the exact one is not on. With the
/// exact quotient at `dp` places `N / D` (integers), a midpoint it is not on is at least
/// `1 / (2D)` away, and the 28-digit rounding moves it by at most half of `10^(dp - scale)`:
/// so it cannot land there when `D < 10^(scale - dp)`. Required here with a digit to spare:
/// `D < 10^(26 - max(digits(q), dp))`, `q` the quotient at `dp` places.
fn div_round(am: i128, sa: u32, b: Decimal, dp: u32) -> Option<Decimal> {
    let bm = b.mantissa();
    let neg = (am < 0) != (bm < 0);
    let (am, bm) = (am.unsigned_abs(), bm.unsigned_abs());
    let e = dp as i32 + b.scale() as i32 - sa as i32;
    let (n, d) = if e >= 0 {
        (am.checked_mul(*POW10.get(e as usize)?)?, bm)
    } else {
        (am, bm.checked_mul(*POW10.get((-e) as usize)?)?)
    };
    let (mut q, r) = if n <= u128::from(u64::MAX) && d <= u128::from(u64::MAX) {
        let (n, d) = (n as u64, d as u64);
        (u128::from(n / d), u128::from(n % d))
    } else {
        (n / d, n % d)
    };
    // Half away from zero.
    if r >= d - r {
        q += 1;
    }
    let digits = POW10.partition_point(|&p| p <= q) as u32;
    let room = 26u32.checked_sub(digits.max(dp))?;
    if d >= POW10[room as usize] || q >= 1 << 96 {
        return None;
    }
    if q == 0 {
        return Some(Decimal::ZERO);
    }
    // `normalize`: no trailing zeros (in 64 bits when the quotient fits, as it nearly always
    // does).
    let mut scale = dp;
    let q = if let Ok(mut q) = u64::try_from(q) {
        while scale > 0 && q % 10 == 0 {
            q /= 10;
            scale -= 1;
        }
        i128::from(q)
    } else {
        let mut q = q;
        while scale > 0 && q % 10 == 0 {
            q /= 10;
            scale -= 1;
        }
        q as i128
    };
    Some(Decimal::from_i128_with_scale(
        if neg { -q } else { q },
        scale,
    ))
}

/// Realized spread at one horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizonStats {
    pub horizon_ms: u64,
    /// Shares whose horizon resolved.
    pub shares: Decimal,
    /// `sum q*RS(h) / sum q` (A3), price units per share.
    pub avg_realized_spread: Option<Decimal>,
    /// `avg_realized_spread / denominator * 1e4` (`rs_bps_denominator`).
    pub avg_realized_spread_bps: Option<Decimal>,
    /// `AvgES - AvgRS(h)` over the same fills (A3).
    pub price_impact: Option<Decimal>,
}

/// The statistics of one order or one group, all derived from [`Sums`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub orders: u64,
    pub orders_filled: u64,
    /// Order-count fill rate: orders with >= 1 fill / orders (A6 "order-count version").
    pub orders_filled_rate: Option<Decimal>,
    pub shares_ordered: Decimal,
    pub shares_executed: Decimal,
    pub shares_cancelled: Decimal,
    /// Shares executed / shares ordered (A6).
    pub fill_rate: Option<Decimal>,
    /// Shares cancelled before execution / shares ordered (A6).
    pub cancel_rate: Option<Decimal>,
    /// `sum q*t_exec / sum q`, ms (A5).
    pub avg_time_to_execution_ms: Option<Decimal>,
    /// Average over orders with a fill / with a complete fill (order-weighted), ms.
    pub avg_time_to_first_fill_ms: Option<Decimal>,
    pub avg_time_to_complete_fill_ms: Option<Decimal>,
    /// Shares executed per [`EXEC_TIME_BUCKETS`] bucket, in bucket order (`0-9s`, `10-29s`,
    /// `30-59s`, `60-299s`, `5-30m`, `30m+`; half-open in ms).
    pub exec_time_buckets: [Decimal; 6],
    /// Share-weighted benchmark mid and quoted spread over the fills with a usable quote (A2).
    pub avg_mid: Option<Decimal>,
    pub avg_quoted_spread: Option<Decimal>,
    /// `sum q*2s(P - M) / sum q` (A2), price units per share.
    pub avg_effective_spread: Option<Decimal>,
    /// `AvgES / AvgMid * 1e4` (A2 %ES in bps).
    pub avg_effective_spread_bps: Option<Decimal>,
    /// `AvgES / AvgQ` (A2 E/Q).
    pub eq_ratio: Option<Decimal>,
    /// Realized spread and price impact at `rs_primary_horizon_ms` (A3).
    pub avg_realized_spread: Option<Decimal>,
    pub avg_realized_spread_bps: Option<Decimal>,
    pub price_impact: Option<Decimal>,
    /// Every horizon of `rs_horizons_ms`, ascending.
    pub realized_spreads: Vec<HorizonStats>,
    /// A4, against the receipt quote. Amounts are positive per-share averages.
    pub price_improved_shares: Decimal,
    pub price_improvement_amount: Decimal,
    pub avg_price_improvement: Option<Decimal>,
    pub price_improved_avg_time_ms: Option<Decimal>,
    pub at_quote_shares: Decimal,
    pub at_quote_avg_time_ms: Option<Decimal>,
    pub outside_quote_shares: Decimal,
    pub outside_quote_amount: Decimal,
    pub avg_outside_quote_amount: Option<Decimal>,
    pub outside_quote_avg_time_ms: Option<Decimal>,
    /// (PI + at-quote shares) / shares with a receipt quote.
    pub pct_at_quote_or_better: Option<Decimal>,
    /// PI shares / shares with a receipt quote.
    pub pct_shares_price_improved: Option<Decimal>,
    /// A4 summary %PI, in bps: `(sum q*imp - sum q*outside) / sum(q*M_r) * 1e4`.
    pub price_improvement_bps: Option<Decimal>,
    /// `s * (Pbar - P0) / P0 * 1e4`, `P0 = M_r`; for a group `sum s*q*(P-M_r) / sum q*M_r`
    /// (A8). Positive = cost.
    pub arrival_cost_bps: Option<Decimal>,
    /// A9 Perold total and decomposition (quote currency), over orders with a decision price.
    pub is_orders: u64,
    pub is_total_usd: Option<Decimal>,
    pub is_total_bps: Option<Decimal>,
    pub is_execution_cost_usd: Option<Decimal>,
    pub is_opportunity_cost_usd: Option<Decimal>,
    pub is_fees_usd: Option<Decimal>,
    /// Wagner decomposition against the arrival price (sums to `is_total_usd`).
    pub is_delay_usd: Option<Decimal>,
    pub is_trading_usd: Option<Decimal>,
    pub is_opportunity_vs_arrival_usd: Option<Decimal>,
    /// A10, positive = cost: `s*(Pbar - VWAP)/VWAP*1e4` (own prints included / excluded).
    pub vwap_slippage_bps: Option<Decimal>,
    pub vwap_slippage_ex_own_bps: Option<Decimal>,
    /// Executed shares / tape volume over the order's interval (A10).
    pub participation: Option<Decimal>,
    pub fees_usd: Decimal,
}

/// The Wagner split only when every order in the shortfall has one (so it adds up).
fn wagner(s: &Sums, d: Decimal) -> Option<Decimal> {
    (s.is_orders > 0 && s.is_wagner_orders == s.is_orders).then(|| d.normalize())
}

fn opt_if(n: u64, d: Decimal) -> Option<Decimal> {
    (n > 0).then(|| d.normalize())
}

impl Stats {
    pub(crate) fn from_sums(s: &Sums, r: &Resolved) -> Stats {
        Self::from_sums_reusing(s, r, Vec::new())
    }

    /// [`Stats::from_sums`] with `spare`'s allocation for the horizons.
    pub(crate) fn from_sums_reusing(
        s: &Sums,
        r: &Resolved,
        realized_spreads: Vec<HorizonStats>,
    ) -> Stats {
        if s.without_executions() {
            Self::without_executions(s, r, realized_spreads)
        } else {
            Self::from_sums_general(s, r, realized_spreads)
        }
    }

    /// [`Stats::from_sums_general`] of sums for which [`Sums::without_executions`] holds (an
    /// order without fills, most of them): the statistics over executions are null or zero
    /// there, so only those of the order-level sums (quantities, shortfall, tape) are computed,
    /// by the same expressions.
    fn without_executions(
        s: &Sums,
        r: &Resolved,
        mut realized_spreads: Vec<HorizonStats>,
    ) -> Stats {
        // `ratio(0, b)` (and `bps`): null for a zero `b`, else zero.
        let zero_over = |b: Decimal| (!b.is_zero()).then_some(Decimal::ZERO);
        realized_spreads.clear();
        realized_spreads.extend(
            r.horizons_ms
                .iter()
                .take(s.horizons.len())
                .map(|&horizon_ms| HorizonStats {
                    horizon_ms,
                    shares: Decimal::ZERO,
                    avg_realized_spread: None,
                    avg_realized_spread_bps: None,
                    price_impact: None,
                }),
        );
        let mut st = Stats {
            orders: s.orders,
            orders_filled_rate: (s.orders > 0).then_some(Decimal::ZERO),
            shares_ordered: s.shares_ordered.normalize(),
            shares_cancelled: s.shares_cancelled.normalize(),
            fill_rate: zero_over(s.shares_ordered),
            cancel_rate: ratio(s.shares_cancelled, s.shares_ordered, RATIO_DP),
            realized_spreads,
            participation: zero_over(s.part_tape),
            // Every other statistic: zero shares and amounts, null averages and ratios.
            ..Stats::default()
        };
        st.set_shortfall(s);
        st
    }

    /// The A9 shortfall statistics of `s`.
    fn set_shortfall(&mut self, s: &Sums) {
        self.is_orders = s.is_orders;
        self.is_total_usd = opt_if(s.is_orders, s.is_total);
        self.is_total_bps = if s.is_orders > 0 {
            bps(s.is_total, s.is_denominator)
        } else {
            None
        };
        self.is_execution_cost_usd = opt_if(s.is_orders, s.is_execution);
        self.is_opportunity_cost_usd = opt_if(s.is_orders, s.is_opportunity);
        self.is_fees_usd = opt_if(s.is_orders, s.is_fees);
        self.is_delay_usd = wagner(s, s.is_delay);
        self.is_trading_usd = wagner(s, s.is_trading);
        self.is_opportunity_vs_arrival_usd = wagner(s, s.is_opportunity_arrival);
    }

    /// [`Stats::from_sums`], every statistic evaluated.
    fn from_sums_general(s: &Sums, r: &Resolved, mut realized_spreads: Vec<HorizonStats>) -> Stats {
        let ms = |a: Decimal, q: Decimal| ratio(a, q, MS_DP);
        realized_spreads.clear();
        realized_spreads.extend(s.horizons.iter().zip(r.horizons_ms.iter()).map(
            |(h, &horizon_ms)| {
                let den = match r.p.rs_bps_denominator {
                    RsBpsDenominator::ReceiptMid => h.mid,
                    RsBpsDenominator::HorizonMid => h.mid_h,
                };
                HorizonStats {
                    horizon_ms,
                    shares: h.q.normalize(),
                    avg_realized_spread: ratio(h.rs, h.q, PRICE_DP),
                    avg_realized_spread_bps: bps(h.rs, den),
                    price_impact: ratio(h.es - h.rs, h.q, PRICE_DP),
                }
            },
        ));
        let primary = realized_spreads.get(r.primary).cloned();
        let first_ms = Decimal::from_i128(s.first_fill_ms).unwrap_or(Decimal::MAX);
        let complete_ms = Decimal::from_i128(s.complete_fill_ms).unwrap_or(Decimal::MAX);
        Stats {
            orders: s.orders,
            orders_filled: s.orders_filled,
            orders_filled_rate: ratio(
                Decimal::from(s.orders_filled),
                Decimal::from(s.orders),
                RATIO_DP,
            ),
            shares_ordered: s.shares_ordered.normalize(),
            shares_executed: s.shares_executed.normalize(),
            shares_cancelled: s.shares_cancelled.normalize(),
            fill_rate: ratio(s.shares_executed, s.shares_ordered, RATIO_DP),
            cancel_rate: ratio(s.shares_cancelled, s.shares_ordered, RATIO_DP),
            avg_time_to_execution_ms: ms(s.exec_time, s.shares_executed),
            avg_time_to_first_fill_ms: ms(first_ms, Decimal::from(s.orders_filled)),
            avg_time_to_complete_fill_ms: ms(complete_ms, Decimal::from(s.orders_complete)),
            exec_time_buckets: s.time_buckets.map(|q| q.normalize()),
            avg_mid: ratio(s.es_mid, s.es_q, PRICE_DP),
            avg_quoted_spread: ratio(s.es_quoted, s.es_q, PRICE_DP),
            avg_effective_spread: ratio(s.es, s.es_q, PRICE_DP),
            // AvgES / AvgMid = sum q*ES / sum q*M (the sum q cancels).
            avg_effective_spread_bps: bps(s.es, s.es_mid),
            eq_ratio: ratio(s.es, s.es_quoted, RATIO_DP),
            avg_realized_spread: primary.as_ref().and_then(|h| h.avg_realized_spread),
            avg_realized_spread_bps: primary.as_ref().and_then(|h| h.avg_realized_spread_bps),
            price_impact: primary.as_ref().and_then(|h| h.price_impact),
            realized_spreads,
            price_improved_shares: s.pi_q.normalize(),
            price_improvement_amount: s.pi_amount.normalize(),
            avg_price_improvement: ratio(s.pi_amount, s.pi_q, PRICE_DP),
            price_improved_avg_time_ms: ms(s.pi_time, s.pi_q),
            at_quote_shares: s.at_q.normalize(),
            at_quote_avg_time_ms: ms(s.at_time, s.at_q),
            outside_quote_shares: s.out_q.normalize(),
            outside_quote_amount: s.out_amount.normalize(),
            avg_outside_quote_amount: ratio(s.out_amount, s.out_q, PRICE_DP),
            outside_quote_avg_time_ms: ms(s.out_time, s.out_q),
            pct_at_quote_or_better: ratio(s.pi_q + s.at_q, s.rq_q, RATIO_DP),
            pct_shares_price_improved: ratio(s.pi_q, s.rq_q, RATIO_DP),
            price_improvement_bps: bps(s.pi_amount - s.out_amount, s.rq_mid),
            arrival_cost_bps: bps(s.arrival, s.rq_mid),
            vwap_slippage_bps: bps(s.vwap_cost, s.vwap_den),
            vwap_slippage_ex_own_bps: bps(s.vwapx_cost, s.vwapx_den),
            participation: ratio(s.part_x, s.part_tape, RATIO_DP),
            fees_usd: s.fees.normalize(),
            is_orders: s.is_orders,
            is_total_usd: opt_if(s.is_orders, s.is_total),
            is_total_bps: if s.is_orders > 0 {
                bps(s.is_total, s.is_denominator)
            } else {
                None
            },
            is_execution_cost_usd: opt_if(s.is_orders, s.is_execution),
            is_opportunity_cost_usd: opt_if(s.is_orders, s.is_opportunity),
            is_fees_usd: opt_if(s.is_orders, s.is_fees),
            is_delay_usd: wagner(s, s.is_delay),
            is_trading_usd: wagner(s, s.is_trading),
            is_opportunity_vs_arrival_usd: wagner(s, s.is_opportunity_arrival),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decimal path `ratio` and `bps` take when the integer one declines.
    fn ratio_ref(a: Decimal, b: Decimal, dp: u32) -> Option<Decimal> {
        a.checked_div(b).map(|x| round(x, dp))
    }

    fn bps_ref(a: Decimal, b: Decimal) -> Option<Decimal> {
        a.checked_mul(Decimal::from(10_000))
            .and_then(|x| x.checked_div(b))
            .map(|x| round(x, BPS_DP))
    }

    fn check(a: Decimal, b: Decimal) {
        if b.is_zero() || a.is_zero() {
            return;
        }
        for dp in [PRICE_DP, BPS_DP, RATIO_DP, MS_DP, 0, 1] {
            let (got, want) = (ratio(a, b, dp), ratio_ref(a, b, dp));
            assert_eq!(got, want, "{a} / {b} at {dp}");
            // Same bytes too (scale and sign of the result).
            assert_eq!(
                got.map(|d| d.to_string()),
                want.map(|d| d.to_string()),
                "{a} / {b} at {dp}"
            );
        }
        let (got, want) = (bps(a, b), bps_ref(a, b));
        assert_eq!(
            got.map(|d| d.to_string()),
            want.map(|d| d.to_string()),
            "bps {a} / {b}"
        );
    }

    /// A xorshift64 generator from `seed` (not zero).
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Random sums in which each field is zero more often than not, so that about one in
    /// five has no sums over executions (the short path) and the others miss it by a field or
    /// a few.
    fn sparse_sums(next: &mut impl FnMut() -> u64, n_horizons: usize) -> Sums {
        let mut dec = |p_zero: u64| -> Decimal {
            let r = next();
            if r % 100 < p_zero {
                // A zero with a scale, sometimes negative.
                let z = Decimal::new(0, (r >> 8) as u32 % 4);
                return if r & 1 << 20 != 0 { -z } else { z };
            }
            let m = (r >> 8) as i64 % 10_000_000_000 - 5_000_000_000;
            Decimal::new(m, (r >> 48) as u32 % 9)
        };
        // Fields a statistic divides by or shows: zero 97% of the time (all 25 or so zero in
        // about half the cases); the others nonzero half the time.
        let (z, o) = (97, 50);
        let mut s = Sums {
            shares_executed: dec(z),
            es_q: dec(z),
            es_mid: dec(z),
            es_quoted: dec(z),
            rq_q: dec(z),
            rq_mid: dec(z),
            pi_q: dec(z),
            pi_amount: dec(z),
            at_q: dec(z),
            out_q: dec(z),
            out_amount: dec(z),
            fees: dec(z),
            vwap_den: dec(z),
            vwapx_den: dec(z),
            part_x: dec(z),
            time_buckets: std::array::from_fn(|_| dec(z)),
            shares_ordered: dec(20),
            shares_cancelled: dec(o),
            exec_notional: dec(o),
            exec_time: dec(o),
            es: dec(o),
            arrival: dec(o),
            pi_time: dec(o),
            at_time: dec(o),
            out_time: dec(o),
            is_total: dec(o),
            is_denominator: dec(o),
            is_execution: dec(o),
            is_opportunity: dec(o),
            is_fees: dec(o),
            is_delay: dec(o),
            is_trading: dec(o),
            is_opportunity_arrival: dec(o),
            vwap_cost: dec(o),
            vwapx_cost: dec(o),
            part_tape: dec(o),
            ..Sums::default()
        };
        s.horizons = (0..n_horizons)
            .map(|_| HorizonSums {
                q: dec(z),
                rs: dec(o),
                es: dec(o),
                mid: dec(z),
                mid_h: dec(z),
            })
            .collect();
        let mut cnt = |p_zero: u64| {
            let r = next();
            if r % 100 < p_zero { 0 } else { r >> 60 }
        };
        s.orders = cnt(10);
        s.orders_filled = cnt(z);
        s.orders_complete = cnt(z);
        s.is_orders = cnt(o);
        s.is_wagner_orders = if cnt(50) == 0 { s.is_orders } else { cnt(o) };
        s.vwap_orders = cnt(o);
        s.vwapx_orders = cnt(o);
        s.first_fill_ms = i128::from(cnt(o));
        s.complete_fill_ms = i128::from(cnt(o));
        s
    }

    #[test]
    fn stats_without_executions_are_the_general_ones() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let (mut short, mut long) = (0, 0);
        for (i, params) in [
            crate::Params::default(),
            crate::Params {
                rs_horizons_ms: vec![1_000],
                rs_primary_horizon_ms: 1_000,
                rs_bps_denominator: RsBpsDenominator::HorizonMid,
                ..crate::Params::default()
            },
            crate::Params {
                rs_horizons_ms: vec![],
                rs_primary_horizon_ms: 5_000,
                ..crate::Params::default()
            },
        ]
        .iter()
        .enumerate()
        {
            let r = params.resolve().unwrap();
            for k in 0..20_000 {
                // Usually as many horizon sums as horizons; sometimes fewer or more.
                let n = match k % 10 {
                    0 => 0,
                    1 => r.horizons_ms.len() + 1,
                    _ => r.horizons_ms.len(),
                };
                let s = sparse_sums(&mut next, n);
                let spare = vec![
                    HorizonStats {
                        horizon_ms: 7,
                        shares: Decimal::ONE,
                        avg_realized_spread: None,
                        avg_realized_spread_bps: None,
                        price_impact: None,
                    };
                    k % 3
                ];
                let got = Stats::from_sums_reusing(&s, &r, spare);
                let want = Stats::from_sums_general(&s, &r, Vec::new());
                if s.without_executions() {
                    short += 1;
                } else {
                    long += 1;
                }
                assert_eq!(got, want, "params {i}, {s:?}");
                // Same digits too (scales and signs, which `==` does not see).
                assert_eq!(
                    serde_json::to_string(&got).unwrap(),
                    serde_json::to_string(&want).unwrap(),
                    "params {i}, {s:?}"
                );
            }
        }
        // Both paths taken, each often.
        assert!(short > 15_000 && long > 15_000, "{short} / {long}");
    }

    #[test]
    fn add_to_adds_as_rust_decimal_does() {
        let mut next = xorshift(0x5851_f42d_4c95_7f2d);
        let pick = |next: &mut dyn FnMut() -> u64| -> Decimal {
            let r = next();
            let scale = [0, 0, 2, 2, 8, (r >> 40) as u32 % 29][(r % 6) as usize];
            // Zeros (signed too), small, 64-bit and 96-bit mantissas.
            let m: i128 = match (r >> 8) % 8 {
                0 => 0,
                1 => i128::from((r >> 16) % 1000),
                2 => i128::from(r >> 20),
                3 => i128::from(r) << 32 | i128::from(next() >> 32),
                4 => (1i128 << 96) - 1 - i128::from((r >> 16) % 3),
                _ => i128::from((r >> 16) % 100_000_000),
            };
            let d = Decimal::from_i128_with_scale(m, scale);
            if r & 1 << 3 != 0 { -d } else { d }
        };
        let mut same_scale = 0;
        for _ in 0..200_000 {
            let a = pick(&mut next);
            let mut b = pick(&mut next);
            if next().is_multiple_of(2) {
                // Often the same scale (the short path).
                b.rescale(a.scale());
                same_scale += 1;
            }
            let Some(want) = a.checked_add(b) else {
                continue;
            };
            let mut got = a;
            add_to(&mut got, b);
            assert_eq!(got.serialize(), want.serialize(), "{a:?} + {b:?}");
        }
        assert!(same_scale > 50_000);
    }

    #[test]
    fn integer_division_rounds_as_the_decimal_one() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let (r1, r2, r3) = (next(), next(), next());
            // Mantissas from one digit to 96 bits, scales 0-28, both signs.
            let m = |r: u64, w: u64| -> i128 {
                let v = (i128::from(r) << 32 | i128::from(w as u32)) >> (r % 90);
                let v = v % (1i128 << 96);
                if w & 1 == 1 { -v } else { v }
            };
            let a = Decimal::from_i128_with_scale(m(r1, r3), (r2 % 29) as u32);
            let b = Decimal::from_i128_with_scale(m(r2, r3 >> 1), ((r1 >> 7) % 29) as u32);
            check(a, b);
            // Equal values, the same digits or written with more trailing zeros.
            check(a, a);
            let k = (r3 % 4) as u32;
            if let Some(wide) = a.mantissa().checked_mul(10i128.pow(k))
                && wide.unsigned_abs() < 1 << 96
                && a.scale() + k <= 28
            {
                let b = Decimal::from_i128_with_scale(wide, a.scale() + k);
                assert_eq!(a, b);
                check(a, b);
                check(b, a);
            }
            // Small operands, as the statistics have them (shares, cents, ms).
            let a = Decimal::new((r1 % 2_000_000) as i64 - 1_000_000, (r2 % 9) as u32);
            let b = Decimal::new((r2 % 100_000) as i64 + 1, (r3 % 5) as u32);
            check(a, b);
            // Quotients at and next to a midpoint at `dp` places: (2k+1)/2 * 10^-dp * b, +-
            // one unit of the dividend's last place.
            let dp = [PRICE_DP, BPS_DP, RATIO_DP, MS_DP][(r3 % 4) as usize];
            let bm = i128::from(r2 % 1_000_000 + 1);
            let k = i128::from(r1 % 1_000_000);
            let am = (2 * k + 1) * bm * 5; // (2k+1)/2 * b * 10, at scale dp + 1
            for delta in [-1, 0, 1] {
                let a = Decimal::from_i128_with_scale(am * 1000 + delta, dp + 4);
                check(a, Decimal::from_i128_with_scale(bm, 0));
                check(a, Decimal::from_i128_with_scale(bm, 2));
            }
        }
    }
}
