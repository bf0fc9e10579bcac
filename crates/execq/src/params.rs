//! Parameters. Field names are the spec's and are the keys of the service's config section and
//! of the CLI's `--params` file (YAML or JSON). Every default is the spec's own choice; each
//! enum names the section-6 disagreement it settles.

use model::Decimal;
use serde::{Deserialize, Serialize};

use crate::ExecqError;

/// 6.1: which quote is "the quote at the time of order receipt".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuoteTiming {
    /// Last quote with `ts <= t_r` (ties: the later message in sequence wins). Spec section 0.
    #[default]
    Inclusive,
    /// Last quote with `ts < t_r`.
    Strict,
}

/// 6.3: the midpoint the effective spread is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EsBenchmark {
    /// Mid (and quoted spread) at order receipt: Rule 605 (600(b)(5)).
    #[default]
    ReceiptMid,
    /// Mid (and quoted spread) prevailing at the fill: microstructure research / exchange stats.
    ExecutionMid,
}

/// 6.2: denominator of the realized spread in bps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RsBpsDenominator {
    /// Share-weighted benchmark mid (the receipt mid under the default `es_benchmark`). A3.
    #[default]
    ReceiptMid,
    /// Share-weighted mid at `t_e + h`.
    HorizonMid,
}

/// What a realized-spread horizon that the data never reached resolves to when the report is
/// built (a streaming engine resolves a horizon on the first record later than `t_e + h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RsEndOfData {
    /// The last quote in the data: by the definition of "prevailing quote" (last quote with
    /// `ts <= t`) it is the quote at `t_e + h` if the data is complete up to then.
    #[default]
    LastQuote,
    /// Leave the fill out of that horizon's averages (the data may simply stop early).
    Exclude,
}

/// Crossed quotes (bid > ask) at the point of use. Locked quotes (bid = ask) are always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CrossedQuote {
    /// Treat as no quote: the statistics that need it are null, with the reason in `notes`.
    #[default]
    Ignore,
    /// Use the crossed quote as given (negative quoted spread).
    Use,
}

/// 6.6 / 6.7: what the order-size buckets count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SizeBucketBasis {
    /// Legacy 600(b)(10) share buckets (100-499, 500-1999, 2000-4999, 5000+), with `fractional`,
    /// `odd_lot` (under `round_lot`) and `<100` below them.
    #[default]
    Shares,
    /// Amended-rule summary-report notional buckets (<$250 ... >=$200k).
    Notional,
}

/// 6.7: the price that turns quantity into notional for the notional size buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NotionalPrice {
    /// `qty * M_r` (A7 vectors).
    #[default]
    ReceiptMid,
    /// `qty * limit price` (market orders fall back to the receipt mid).
    LimitPrice,
}

/// 6.9: the decision price when `order_new` carries no `decision_price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DecisionPriceFallback {
    /// No decision price, no shortfall: `is_*` fields are null (the issue: "when a decision
    /// price is given").
    #[default]
    None,
    /// Use the arrival price `P0 = M_r` (the delay component is then zero).
    ArrivalMid,
}

/// 6.9: the end price `Pn` the unfilled part is valued at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IsEndPrice {
    /// Mid prevailing when the order ends (last fill or cancel; A9 default).
    #[default]
    OrderEndMid,
    /// Mid of the last quote in the data for the symbol (a "close"/horizon-end reading).
    EndOfDataMid,
}

/// 6.9: the bps denominator of the shortfall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IsBpsDenominator {
    /// Paper notional `S * Pd` (A9).
    #[default]
    Paper,
    /// Executed notional `sum q_j P_j`.
    Executed,
}

/// Width of the time windows the aggregates are grouped by (UTC, by receipt time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeWindow {
    Hour,
    #[default]
    Day,
    Month,
}

/// Execution-quality parameters. `#[serde(default)]`: a file only names what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Realized-spread horizons in ms (A3, 6.2). Default `[15000, 60000, 300000]`: the summary
    /// report's 15 s and 1 min plus the legacy 5 min.
    pub rs_horizons_ms: Vec<u64>,
    /// The horizon reported as `avg_realized_spread` / `price_impact` (added to
    /// `rs_horizons_ms` if missing). Default 300000 (legacy 600(b)(6)).
    pub rs_primary_horizon_ms: u64,
    /// Close of regular trading hours, `HH:MM` or `HH:MM:SS` in the session's local time (see
    /// `session_utc_offset_minutes`). When `t_e + h` falls after it, the mid of the last quote
    /// at or before the close is used (A3 proviso). Default none (24-hour market, crypto).
    pub session_close: Option<String>,
    /// Fixed offset of the session's local time from UTC, minutes (e.g. -300 for EST).
    /// Default 0. A fixed offset: daylight-saving changes need a new value.
    pub session_utc_offset_minutes: i32,
    pub rs_end_of_data: RsEndOfData,
    pub rs_bps_denominator: RsBpsDenominator,
    pub quote_at_receipt: QuoteTiming,
    pub es_benchmark: EsBenchmark,
    pub crossed_quote: CrossedQuote,
    /// Round-lot size; orders under it are `odd_lot` (6.6). Default 100; 0 disables.
    pub round_lot: Decimal,
    /// Near-the-quote band below the bid (buys) / above the ask (sells), 600(b)(29). Default
    /// 0.10 in price units.
    pub near_quote_band: Decimal,
    pub size_bucket_basis: SizeBucketBasis,
    pub notional_price: NotionalPrice,
    /// 6.11: count the residual cancel of an IOC/FOK order in `shares_cancelled`. Default true.
    pub ioc_residual_as_cancel: bool,
    pub decision_price_fallback: DecisionPriceFallback,
    pub is_end_price: IsEndPrice,
    /// 6.9: include fills' `fee` in the shortfall. Default true. Negative fees (rebates) reduce it.
    pub is_include_fees: bool,
    pub is_bps_denominator: IsBpsDenominator,
    /// 6.10: whether the public tape (`trade` records) already contains the order's own fills.
    /// Default true (spec section 0). Then the own-prints-excluded VWAP subtracts the order's
    /// fills from the tape; if false, the own-prints-included VWAP adds them.
    pub own_prints_on_tape: bool,
    pub time_window: TimeWindow,
    /// Include `fractional`/`odd_lot`/`<100` orders in the Rule 605 report. Default false
    /// (legacy 605 ignores orders under 100 shares, 6.6).
    pub rule605_include_odd_lots: bool,
    /// Streaming with eviction ([`crate::ExecQuality::set_eviction`]): how long, in event time
    /// after an order ends (filled or cancelled), a late fill or cancel for it is still applied
    /// before its row goes out and its state is freed (realized-spread lookups still waiting
    /// then resolve into a compact record and complete the row later). Default 5000 (5 s); at
    /// most a day. The platform's paper venue never fills an order after its cancel or expiry
    /// (both are decided in the same engine task), so the grace only covers fills racing a
    /// cancel in external interchange data; each second of grace holds a second of finished
    /// orders in full. Not written out when it is the default, so reports computed without
    /// eviction look as before.
    #[serde(skip_serializing_if = "is_default_grace")]
    pub late_fill_grace_ms: u64,
}

const DEFAULT_LATE_FILL_GRACE_MS: u64 = 5_000;

fn is_default_grace(ms: &u64) -> bool {
    *ms == DEFAULT_LATE_FILL_GRACE_MS
}

impl Default for Params {
    fn default() -> Self {
        Params {
            rs_horizons_ms: vec![15_000, 60_000, 300_000],
            rs_primary_horizon_ms: 300_000,
            session_close: None,
            session_utc_offset_minutes: 0,
            rs_end_of_data: RsEndOfData::default(),
            rs_bps_denominator: RsBpsDenominator::default(),
            quote_at_receipt: QuoteTiming::default(),
            es_benchmark: EsBenchmark::default(),
            crossed_quote: CrossedQuote::default(),
            round_lot: Decimal::ONE_HUNDRED,
            near_quote_band: Decimal::new(10, 2),
            size_bucket_basis: SizeBucketBasis::default(),
            notional_price: NotionalPrice::default(),
            ioc_residual_as_cancel: true,
            decision_price_fallback: DecisionPriceFallback::default(),
            is_end_price: IsEndPrice::default(),
            is_include_fees: true,
            is_bps_denominator: IsBpsDenominator::default(),
            own_prints_on_tape: true,
            time_window: TimeWindow::default(),
            rule605_include_odd_lots: false,
            late_fill_grace_ms: DEFAULT_LATE_FILL_GRACE_MS,
        }
    }
}

/// Parameters checked and turned into the form the engine uses.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub p: Params,
    /// Sorted, deduplicated horizons in ns, and their ms values.
    pub horizons_ns: Vec<i64>,
    pub horizons_ms: Vec<u64>,
    pub primary: usize,
    /// Session close as ns after local midnight, and the local offset in ns.
    pub close_ns: Option<i64>,
    pub offset_ns: i64,
    pub grace_ns: i64,
}

const NS_PER_MS: i64 = 1_000_000;
pub(crate) const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;

impl Params {
    /// Check the parameters (horizons positive and at most a day, a parseable session close,
    /// non-negative lot and band).
    pub fn validate(&self) -> Result<(), ExecqError> {
        self.resolve().map(|_| ())
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, ExecqError> {
        let bad = |name: &'static str, reason: &str| ExecqError::BadParam {
            name,
            reason: reason.to_string(),
        };
        let mut ms: Vec<u64> = self.rs_horizons_ms.clone();
        ms.push(self.rs_primary_horizon_ms);
        ms.sort_unstable();
        ms.dedup();
        // A day bounds the pending-lookup memory and keeps `t_e + h` far from i64 overflow.
        if ms.iter().any(|&h| h == 0 || h > 86_400_000) {
            return Err(bad(
                "rs_horizons_ms",
                "each horizon must be in 1..=86400000 ms",
            ));
        }
        let primary = ms
            .iter()
            .position(|&h| h == self.rs_primary_horizon_ms)
            .ok_or_else(|| bad("rs_primary_horizon_ms", "not a horizon"))?;
        let close_ns = match &self.session_close {
            None => None,
            Some(s) => Some(
                parse_time_of_day(s)
                    .ok_or_else(|| bad("session_close", "expected HH:MM or HH:MM:SS"))?,
            ),
        };
        if self.session_utc_offset_minutes.abs() > 24 * 60 {
            return Err(bad("session_utc_offset_minutes", "must be within +-1440"));
        }
        if self.round_lot.is_sign_negative() {
            return Err(bad("round_lot", "must be >= 0"));
        }
        if self.near_quote_band.is_sign_negative() {
            return Err(bad("near_quote_band", "must be >= 0"));
        }
        // A day, like the horizons: it bounds how long a finished order stays in memory.
        if self.late_fill_grace_ms > 86_400_000 {
            return Err(bad("late_fill_grace_ms", "must be in 0..=86400000 ms"));
        }
        Ok(Resolved {
            p: self.clone(),
            horizons_ns: ms.iter().map(|&h| h as i64 * NS_PER_MS).collect(),
            horizons_ms: ms,
            primary,
            close_ns,
            offset_ns: i64::from(self.session_utc_offset_minutes) * 60 * 1_000_000_000,
            grace_ns: self.late_fill_grace_ms as i64 * NS_PER_MS,
        })
    }
}

fn parse_time_of_day(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let num = |x: &str, max: i64| -> Option<i64> {
        if x.len() != 2 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        x.parse::<i64>().ok().filter(|v| *v <= max)
    };
    let h = num(parts[0], 24)?;
    let m = num(parts[1], 59)?;
    let sec = match parts.get(2) {
        Some(x) => num(x, 59)?,
        None => 0,
    };
    let total = (h * 3600 + m * 60 + sec) * 1_000_000_000;
    (total <= NS_PER_DAY).then_some(total)
}

impl Resolved {
    /// `t_e + h`, or the session close of `t_e`'s session day when `t_e` is at or before that
    /// close and `t_e + h` is after it (A3 proviso). Fills after the close keep `t_e + h`.
    pub fn horizon_target(&self, t_e: i64, h_ns: i64) -> i64 {
        let target = t_e.saturating_add(h_ns);
        let Some(close) = self.close_ns else {
            return target;
        };
        let local = t_e.saturating_add(self.offset_ns);
        let day_start = local.div_euclid(NS_PER_DAY) * NS_PER_DAY - self.offset_ns;
        let close_ts = day_start.saturating_add(close);
        if t_e <= close_ts && target > close_ts {
            close_ts
        } else {
            target
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_load_with_defaults_and_reject_typos() {
        let y: Params =
            serde_yaml_ng::from_str("rs_horizons_ms: [50, 1000]\nsession_close: \"16:00\"\nsession_utc_offset_minutes: -300\n")
                .unwrap();
        assert_eq!(y.rs_horizons_ms, vec![50, 1000]);
        assert_eq!(y.round_lot, Decimal::ONE_HUNDRED);
        let r = y.resolve().unwrap();
        // The primary 5-minute horizon is added to the list.
        assert_eq!(r.horizons_ms, vec![50, 1000, 300_000]);
        assert_eq!(r.primary, 2);
        let j: Params =
            serde_json::from_str(r#"{"near_quote_band":"0.05","es_benchmark":"execution_mid"}"#)
                .unwrap();
        assert_eq!(j.near_quote_band, Decimal::new(5, 2));
        assert_eq!(j.es_benchmark, EsBenchmark::ExecutionMid);
        assert!(serde_json::from_str::<Params>(r#"{"rs_horizon_ms":[1]}"#).is_err());
        let bad = Params {
            session_close: Some("4pm".into()),
            ..Params::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ExecqError::BadParam {
                name: "session_close",
                ..
            })
        ));
        let zero = Params {
            rs_horizons_ms: vec![0],
            ..Params::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn session_close_caps_the_horizon_in_local_time() {
        let p = Params {
            session_close: Some("16:00".into()),
            session_utc_offset_minutes: -300,
            ..Params::default()
        };
        let r = p.resolve().unwrap();
        // 2024-01-02T20:58:00Z is 15:58 EST; +5 min passes the 16:00 EST (21:00Z) close.
        let t_e = 1_704_229_080 * 1_000_000_000_i64;
        let close = 1_704_229_200 * 1_000_000_000_i64;
        assert_eq!(r.horizon_target(t_e, 300_000 * NS_PER_MS), close);
        // +1 min does not.
        assert_eq!(
            r.horizon_target(t_e, 60_000 * NS_PER_MS),
            t_e + 60_000 * NS_PER_MS
        );
        // A fill after the close keeps t_e + h.
        let after = close + 1;
        assert_eq!(r.horizon_target(after, 1000), after + 1000);
    }
}
