//! Rolling one-day VaR backtest with the Kupiec proportion-of-failures test and the Basel
//! traffic light.
//!
//! For each evaluated day d the VaR is estimated from the `window_days` daily returns that end
//! on the close before d, with today's quantities valued at that close; the day's realised
//! P&L is `Σ qty × (close_d − close_{d−1})` (exact). An exception is a realised loss larger
//! than the VaR. Quantities are held fixed (the backtest asks "how would today's book have
//! fared"), which is the usual hypothetical-P&L backtest.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    Aligned, Core, ReturnKind, VarMethod, VarRequest, align, cents, daily_returns, historical_core,
    monte_carlo_core, parametric_core, stats,
};
use crate::PtrcError;
use crate::input::PriceHistory;

/// Basel zones from the binomial probability of seeing at most this many exceptions if the
/// model were right: green below 95 %, yellow below 99.99 %, red otherwise (for 250 days at
/// 99 %: green 0–4, yellow 5–9, red 10+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrafficLight {
    Green,
    Yellow,
    Red,
}

/// One evaluated day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestDay {
    pub date: NaiveDate,
    /// One-day VaR forecast made at the previous close (cents).
    pub var: Decimal,
    /// Realised P&L of the day (cents; negative = loss).
    pub pnl: Decimal,
    pub exception: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub method: VarMethod,
    pub confidence: f64,
    pub window_days: usize,
    /// Days evaluated.
    pub observations: usize,
    pub exceptions: usize,
    /// observations × (1 − confidence).
    pub expected_exceptions: f64,
    pub exception_rate: f64,
    /// Kupiec likelihood ratio, χ²(1) under the null of a correct coverage.
    pub kupiec_lr: f64,
    /// P(χ²(1) > LR); small values reject the model.
    pub kupiec_p_value: f64,
    pub traffic_light: TrafficLight,
    pub days: Vec<BacktestDay>,
}

/// Kupiec POF test: `(LR, p-value)` for `x` exceptions in `n` days at expected rate `p`.
/// `LR = −2 ln[(1−p)^{n−x} p^x] + 2 ln[(1−x/n)^{n−x} (x/n)^x]`, with 0·ln 0 = 0.
pub fn kupiec_pof(x: usize, n: usize, p: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (xf, nf) = (x as f64, n as f64);
    let xlny = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * b.ln() };
    let ln_null = xlny(nf - xf, 1.0 - p) + xlny(xf, p);
    let ph = xf / nf;
    let ln_alt = xlny(nf - xf, 1.0 - ph) + xlny(xf, ph);
    let lr = (-2.0 * (ln_null - ln_alt)).max(0.0);
    (lr, stats::chi2_sf_1(lr))
}

fn traffic_light(x: usize, n: usize, p: f64) -> TrafficLight {
    if x == 0 {
        return TrafficLight::Green;
    }
    let cdf = stats::binom_cdf(x as u64, n as u64, p);
    if cdf < 0.95 {
        TrafficLight::Green
    } else if cdf < 0.9999 {
        TrafficLight::Yellow
    } else {
        TrafficLight::Red
    }
}

/// Roll a one-day VaR (`req.method`, `req.confidence`; the horizon is always one day) over the
/// history with a window of `window_days` returns. `req.lookback_days`, when set, limits the
/// evaluation to the last that many days (e.g. 250, the Basel year).
pub fn backtest(
    positions: &BTreeMap<String, Decimal>,
    prices: &PriceHistory,
    req: &VarRequest,
    window_days: usize,
) -> Result<BacktestReport, PtrcError> {
    let req = VarRequest {
        horizon_days: 1,
        ..req.clone()
    };
    req.validate()?;
    if window_days < 3 {
        return Err(PtrcError::Invalid(format!(
            "window_days {window_days} must be at least 3"
        )));
    }
    // window + 1 closes for the first forecast, one more for its realised P&L.
    let keep = req.lookback_days.map(|k| k + window_days + 1);
    let a: Aligned = align(positions, prices, keep, window_days + 2)?;
    let n = a.n();
    let simple = daily_returns(&a, ReturnKind::Simple);
    let kind = daily_returns(&a, req.returns);
    let rows = a.dates.len() - 1;
    let mut days = Vec::with_capacity(rows - window_days);
    let mut exceptions = 0;
    let mut values = vec![0.0; n];
    for k in window_days..rows {
        // Value at close k (f64 for the statistics), P&L from close k to k + 1 (exact).
        for (i, v) in values.iter_mut().enumerate() {
            *v = super::to_f64(a.qty[i]) * a.close(k, i);
        }
        let win = (k - window_days) * n..k * n;
        let core: Core = match req.method {
            VarMethod::Historical => historical_core(&values, &simple[win], req.confidence),
            VarMethod::Parametric | VarMethod::Ewma => {
                let lambda = (req.method == VarMethod::Ewma).then_some(req.ewma_lambda);
                parametric_core(&values, &kind[win], req.confidence, 1, lambda)
            }
            VarMethod::MonteCarlo => monte_carlo_core(&values, &kind[win], &req)?,
        };
        let pnl = (0..n)
            .try_fold(Decimal::ZERO, |acc, i| {
                let moved = a.exact[(k + 1) * n + i].checked_sub(a.exact[k * n + i])?;
                acc.checked_add(a.qty[i].checked_mul(moved)?)
            })
            .ok_or_else(|| super::beyond_range(&format!("the P&L of {}", a.dates[k + 1])))?;
        let pnl_f = super::to_f64(pnl);
        let exception = -pnl_f > core.var;
        exceptions += usize::from(exception);
        days.push(BacktestDay {
            date: a.dates[k + 1],
            var: cents(core.var, "VaR")?,
            pnl: super::round_cents(pnl),
            exception,
        });
    }
    let obs = days.len();
    let p = 1.0 - req.confidence;
    let (kupiec_lr, kupiec_p_value) = kupiec_pof(exceptions, obs, p);
    Ok(BacktestReport {
        method: req.method,
        confidence: req.confidence,
        window_days,
        observations: obs,
        exceptions,
        expected_exceptions: obs as f64 * p,
        exception_rate: if obs == 0 {
            0.0
        } else {
            exceptions as f64 / obs as f64
        },
        kupiec_lr,
        kupiec_p_value,
        traffic_light: traffic_light(exceptions, obs, p),
        days,
    })
}
