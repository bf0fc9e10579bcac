//! Value at Risk and Expected Shortfall of a portfolio of linear positions, per-position
//! component VaR, and a VaR backtest with the Kupiec proportion-of-failures test.
//!
//! The methods, formulas and choices are written up in `docs/RISK.md`; in short:
//!
//! - **Input.** `positions` are signed quantities per symbol (zero quantities are ignored);
//!   `prices` are daily closes ([`PriceHistory`]). The histories of the held symbols are
//!   aligned on the dates where *every* one of them has a close: a date missing for one
//!   symbol is dropped for all (no filling). A symbol with no history, or too few common
//!   dates for the request, is an error naming the symbol with the fewest closes.
//! - **Values.** Position value = qty × close on the last common date (`as_of`). Statistics are
//!   f64 (they are estimates); the reported money figures are Decimal rounded to cents
//!   (half away from zero). Positive `var` / `expected_shortfall` are losses.
//! - **Returns** ([`ReturnKind`]): `simple` (default) or `log` daily returns. Historical
//!   simulation revalues each position with the price ratio of the scenario, so both kinds give
//!   identical results there. Parametric/EWMA map P&L linearly (P&L ≈ value × return, delta
//!   normal); Monte Carlo revalues with `value × (e^r − 1)` under `log`, `value × r` under
//!   `simple`.
//! - **Horizon.** Historical uses *overlapping* h-day returns `P(t)/P(t−h) − 1` (no
//!   distributional assumption, but neighbouring scenarios share h−1 days); parametric, EWMA and
//!   Monte Carlo scale the one-day volatility by √h (i.i.d. zero-mean returns).
//! - **Quantiles.** Sample VaR is the `confidence` quantile of the loss sample with linear
//!   interpolation (numpy's default); ES is the mean of the losses at or beyond that VaR.
//! - **Components.** Parametric/EWMA: Euler allocation `w_i (Σw)_i / σ_p · z · √h`.
//!   Historical/Monte Carlo: each position's mean loss over the tail scenarios (those that make
//!   up the ES), scaled by VaR/ES so that the components add up to VaR. After rounding to
//!   cents, any rounding residual goes to the largest position so that the components add up
//!   to `var` exactly.

mod backtest;
pub(crate) mod report;
pub mod stats;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use model::Decimal;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

pub use backtest::{BacktestDay, BacktestReport, TrafficLight, backtest, kupiec_pof};
pub use report::{var_to_csv, var_to_html};

use crate::PtrcError;
use crate::input::PriceHistory;

/// How the loss distribution is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarMethod {
    /// Historical simulation over the aligned price history.
    #[default]
    Historical,
    /// Variance-covariance with the equally weighted sample covariance.
    Parametric,
    /// Variance-covariance with the RiskMetrics exponentially weighted covariance.
    Ewma,
    /// Correlated normal Monte Carlo (Cholesky of the sample covariance), seeded.
    #[serde(alias = "monte_carlo")]
    MonteCarlo,
}

impl VarMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            VarMethod::Historical => "historical",
            VarMethod::Parametric => "parametric",
            VarMethod::Ewma => "ewma",
            VarMethod::MonteCarlo => "montecarlo",
        }
    }
}

impl fmt::Display for VarMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VarMethod {
    type Err = PtrcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['_', '-'], "")
            .as_str()
        {
            "historical" | "hist" | "hs" => Ok(VarMethod::Historical),
            "parametric" | "variancecovariance" | "varcov" | "normal" => Ok(VarMethod::Parametric),
            "ewma" | "riskmetrics" => Ok(VarMethod::Ewma),
            "montecarlo" | "mc" => Ok(VarMethod::MonteCarlo),
            _ => Err(PtrcError::Invalid(format!(
                "unknown VaR method {s:?} (historical, parametric, ewma, montecarlo)"
            ))),
        }
    }
}

/// Which daily returns feed the statistics (see the module docs for how each method uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnKind {
    /// `P(t)/P(t−1) − 1`.
    #[default]
    Simple,
    /// `ln(P(t)/P(t−1))`.
    Log,
}

impl FromStr for ReturnKind {
    type Err = PtrcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "simple" | "arithmetic" => Ok(ReturnKind::Simple),
            "log" | "logarithmic" => Ok(ReturnKind::Log),
            _ => Err(PtrcError::Invalid(format!(
                "unknown return kind {s:?} (simple, log)"
            ))),
        }
    }
}

/// The default Monte Carlo seed: fixed so that two runs of the same request agree.
pub const DEFAULT_SEED: u64 = 2026;

/// A VaR request. Deserialises from JSON with every field optional (defaults below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VarRequest {
    /// One-sided confidence level, 0.5 < c < 1 (default 0.99, `modules.risk.var_confidence`).
    pub confidence: f64,
    /// Horizon in trading days, ≥ 1 (default 1).
    pub horizon_days: u32,
    pub method: VarMethod,
    /// Use only the last `n` daily returns (n + 1 common closes); `None` uses the whole
    /// aligned history. In [`backtest`] it limits the evaluated days instead.
    pub lookback_days: Option<usize>,
    /// EWMA decay, 0 < λ < 1 (default 0.94, RiskMetrics daily).
    pub ewma_lambda: f64,
    /// Monte Carlo paths (default 10 000, at least 100).
    pub mc_paths: usize,
    /// Monte Carlo seed ([`DEFAULT_SEED`]); the same seed gives the same result.
    pub seed: u64,
    pub returns: ReturnKind,
}

impl Default for VarRequest {
    fn default() -> Self {
        VarRequest {
            confidence: 0.99,
            horizon_days: 1,
            method: VarMethod::Historical,
            lookback_days: None,
            ewma_lambda: 0.94,
            mc_paths: 10_000,
            seed: DEFAULT_SEED,
            returns: ReturnKind::Simple,
        }
    }
}

impl VarRequest {
    fn validate(&self) -> Result<(), PtrcError> {
        let bad = |m: String| Err(PtrcError::Invalid(m));
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return bad(format!(
                "confidence {} must be between 0.5 and 1 (exclusive)",
                self.confidence
            ));
        }
        if self.horizon_days == 0 {
            return bad("horizon_days must be at least 1".into());
        }
        if !(self.ewma_lambda > 0.0 && self.ewma_lambda < 1.0) {
            return bad(format!(
                "ewma_lambda {} must be between 0 and 1 (exclusive)",
                self.ewma_lambda
            ));
        }
        if self.method == VarMethod::MonteCarlo && self.mc_paths < 100 {
            return bad(format!("mc_paths {} must be at least 100", self.mc_paths));
        }
        if self.lookback_days == Some(0) {
            return bad("lookback_days must be at least 1".into());
        }
        Ok(())
    }
}

/// One position's share of the VaR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarComponent {
    pub symbol: String,
    pub qty: Decimal,
    /// qty × close on `as_of`.
    pub value: Decimal,
    /// Contribution to `var`; the components add up to `var` exactly.
    pub component_var: Decimal,
    /// Contribution to `expected_shortfall` (mean tail loss of this position for the sample
    /// methods, Euler allocation of ES for the parametric ones); adds up to ES up to rounding.
    pub component_es: Decimal,
}

/// One bar of the loss-distribution chart: losses in `[lower, upper)` (currency, positive =
/// loss) and the share of scenarios in it (the normal probability mass for parametric/EWMA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub lower: Decimal,
    pub upper: Decimal,
    pub probability: f64,
}

/// The result of [`value_at_risk`]. Money figures are decimal strings in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarReport {
    /// VaR in currency at `confidence` over `horizon_days` (positive = loss), cents.
    pub var: Decimal,
    /// Expected Shortfall (mean loss beyond VaR), cents.
    pub expected_shortfall: Decimal,
    pub method: VarMethod,
    pub confidence: f64,
    pub horizon_days: u32,
    pub returns: ReturnKind,
    pub components: Vec<VarComponent>,
    /// Σ position values (net, signed), cents.
    pub portfolio_value: Decimal,
    /// Number of return observations (historical: h-day scenarios; others: daily returns).
    pub observations: usize,
    /// First and last common dates of the closes used.
    pub window_start: NaiveDate,
    pub as_of: NaiveDate,
    /// Loss distribution for a chart.
    pub histogram: Vec<HistogramBin>,
    /// Parameters that shaped the result, when they apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ewma_lambda: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mc_paths: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Anything the reader should know (e.g. a covariance jitter was needed).
    pub notes: Vec<String>,
}

/// Aligned inputs: the held symbols, their quantities and closes on the common dates.
pub(crate) struct Aligned {
    pub symbols: Vec<String>,
    pub qty: Vec<Decimal>,
    pub dates: Vec<NaiveDate>,
    /// Row-major `dates.len() × symbols.len()` closes as f64.
    pub closes: Vec<f64>,
    /// Exact closes on the last common date.
    pub last: Vec<Decimal>,
    /// Row-major exact closes (for exact realised P&L in the backtest).
    pub exact: Vec<Decimal>,
}

impl Aligned {
    pub fn n(&self) -> usize {
        self.symbols.len()
    }
    pub fn close(&self, t: usize, i: usize) -> f64 {
        self.closes[t * self.symbols.len() + i]
    }
}

/// Decimal → f64. When the mantissa fits in 53 bits and the scale is at most 22 (every close
/// in practice), mantissa / 10^scale is a division of two exactly representable numbers, so
/// the result is the correctly rounded value: the same double numpy reads from the text. It
/// is also several times faster than rust_decimal's general `to_f64` (u128 division), which
/// matters for 500 × 2,500 closes. Other values fall back to the general conversion.
pub(crate) fn to_f64(d: Decimal) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let m = d.mantissa();
    match POW10.get(d.scale() as usize) {
        Some(p) if m.unsigned_abs() < (1u128 << 53) => m as f64 / p,
        _ => d.to_f64().unwrap_or(f64::NAN),
    }
}

/// Align the held symbols' closes on their common dates, keeping the last `keep` closes
/// (all if `None`); at least `min_closes` must remain.
pub(crate) fn align(
    positions: &BTreeMap<String, Decimal>,
    prices: &PriceHistory,
    keep: Option<usize>,
    min_closes: usize,
) -> Result<Aligned, PtrcError> {
    let held: Vec<(&String, Decimal)> = positions
        .iter()
        .filter(|(_, q)| !q.is_zero())
        .map(|(s, q)| (s, *q))
        .collect();
    if held.is_empty() {
        return Err(PtrcError::Invalid(
            "no positions with a non-zero quantity".into(),
        ));
    }
    let mut series = Vec::with_capacity(held.len());
    for (sym, _) in &held {
        let s = prices
            .get(*sym)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PtrcError::Invalid(format!("no price history for {sym}")))?;
        if s.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(PtrcError::Invalid(format!(
                "the price history of {sym} is not in strictly increasing date order"
            )));
        }
        series.push(s.as_slice());
    }
    // Intersect the sorted date lists pairwise (linear merges, no hashing).
    let mut common: Vec<NaiveDate> = series[0].iter().map(|(d, _)| *d).collect();
    for s in &series[1..] {
        let mut out = Vec::with_capacity(common.len());
        let (mut a, mut b) = (0, 0);
        while a < common.len() && b < s.len() {
            match common[a].cmp(&s[b].0) {
                std::cmp::Ordering::Less => a += 1,
                std::cmp::Ordering::Greater => b += 1,
                std::cmp::Ordering::Equal => {
                    out.push(common[a]);
                    a += 1;
                    b += 1;
                }
            }
        }
        common = out;
    }
    let need = keep.map_or(min_closes, |k| k.max(min_closes));
    if common.len() < need {
        let (sym, s) = held
            .iter()
            .zip(&series)
            .min_by_key(|(_, s)| s.len())
            .map(|((sym, _), s)| (*sym, *s))
            .unwrap_or((held[0].0, series[0]));
        let span = match (s.first(), s.last()) {
            (Some(f), Some(l)) => format!("{} to {}", f.0, l.0),
            _ => "none".into(),
        };
        return Err(PtrcError::Invalid(format!(
            "too little price history: {} common dates across {} symbols, {need} needed; \
             {sym} has {} closes ({span})",
            common.len(),
            held.len(),
            s.len()
        )));
    }
    if let Some(k) = keep {
        common.drain(..common.len() - k);
    }
    let n = held.len();
    let mut closes = vec![0.0; common.len() * n];
    let mut exact = vec![Decimal::ZERO; common.len() * n];
    let mut last = Vec::with_capacity(n);
    for (i, s) in series.iter().enumerate() {
        let mut b = 0;
        for (t, d) in common.iter().enumerate() {
            while s[b].0 < *d {
                b += 1;
            }
            closes[t * n + i] = to_f64(s[b].1);
            exact[t * n + i] = s[b].1;
        }
        last.push(s[b].1);
    }
    Ok(Aligned {
        symbols: held.iter().map(|(s, _)| (*s).clone()).collect(),
        qty: held.iter().map(|(_, q)| *q).collect(),
        dates: common,
        closes,
        last,
        exact,
    })
}

/// Unrounded result of one VaR estimate.
pub(crate) struct Core {
    pub var: f64,
    pub es: f64,
    pub comp_var: Vec<f64>,
    pub comp_es: Vec<f64>,
    /// Simulated/historical losses (empty for the parametric methods).
    pub losses: Vec<f64>,
    /// Portfolio standard deviation over the horizon (parametric methods).
    pub sigma: f64,
    pub notes: Vec<String>,
}

/// Daily returns (row-major `(T−1) × n`) of the given kind.
pub(crate) fn daily_returns(a: &Aligned, kind: ReturnKind) -> Vec<f64> {
    horizon_returns(a, 1, kind)
}

/// Overlapping `h`-day returns, row-major `(T−h) × n`.
fn horizon_returns(a: &Aligned, h: usize, kind: ReturnKind) -> Vec<f64> {
    let n = a.n();
    let rows = a.dates.len().saturating_sub(h);
    let mut out = Vec::with_capacity(rows * n);
    for t in h..a.dates.len() {
        let (now, then) = (
            &a.closes[t * n..(t + 1) * n],
            &a.closes[(t - h) * n..(t - h + 1) * n],
        );
        out.extend(now.iter().zip(then).map(|(p1, p0)| match kind {
            ReturnKind::Simple => p1 / p0 - 1.0,
            ReturnKind::Log => (p1 / p0).ln(),
        }));
    }
    out
}

/// VaR, ES and tail-average components from a sample of scenario losses per position.
/// `pos_loss(s, i)` is position i's loss in scenario s; `losses[s]` their sum.
fn sample_core(
    losses: Vec<f64>,
    n: usize,
    confidence: f64,
    mut pos_loss_tail: impl FnMut(&dyn Fn(usize) -> bool, &mut [f64]) -> usize,
) -> Core {
    let mut sorted = losses.clone();
    sorted.sort_by(f64::total_cmp);
    let var = stats::quantile_sorted(&sorted, confidence);
    let tail: Vec<f64> = sorted.iter().copied().filter(|l| *l >= var).collect();
    let es = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
    let mut comp_es = vec![0.0; n];
    let in_tail = |s: usize| losses[s] >= var;
    let count = pos_loss_tail(&in_tail, &mut comp_es);
    for c in &mut comp_es {
        *c /= count.max(1) as f64;
    }
    // Rescale the ES split to VaR so that the components add up to VaR (documented choice).
    let scale = if es != 0.0 { var / es } else { 0.0 };
    let comp_var = comp_es.iter().map(|c| c * scale).collect();
    Core {
        var,
        es,
        comp_var,
        comp_es,
        losses,
        sigma: 0.0,
        notes: Vec::new(),
    }
}

/// Historical simulation on scenario returns `scen` (row-major S × n, simple returns).
pub(crate) fn historical_core(values: &[f64], scen: &[f64], confidence: f64) -> Core {
    let n = values.len();
    let losses: Vec<f64> = scen
        .chunks_exact(n)
        .map(|r| -stats::dot(r, values))
        .collect();
    sample_core(losses, n, confidence, |in_tail, acc| {
        let mut count = 0;
        for (s, r) in scen.chunks_exact(n).enumerate() {
            if in_tail(s) {
                count += 1;
                for ((a, r), v) in acc.iter_mut().zip(r).zip(values) {
                    *a -= r * v;
                }
            }
        }
        count
    })
}

/// Variance-covariance VaR from daily returns (row-major T × n): sample covariance (mean
/// removed, T−1 denominator) or, with `lambda`, the EWMA covariance (zero mean, weights
/// λ^age normalised to sum to one over the window; the newest return has age 0).
pub(crate) fn parametric_core(
    values: &[f64],
    daily: &[f64],
    confidence: f64,
    horizon: u32,
    lambda: Option<f64>,
) -> Core {
    let n = values.len();
    let rows = daily.len() / n;
    // Σw is all the Euler allocation needs: Σw = Σ_t a_t d_t (d_t·w), so no n×n matrix.
    let (mean, weights): (Vec<f64>, Vec<f64>) = match lambda {
        None => {
            let mut m = vec![0.0; n];
            for r in daily.chunks_exact(n) {
                for (m, r) in m.iter_mut().zip(r) {
                    *m += r;
                }
            }
            m.iter_mut().for_each(|m| *m /= rows as f64);
            (m, vec![1.0 / (rows as f64 - 1.0); rows])
        }
        Some(l) => {
            let mut w: Vec<f64> = (0..rows).map(|t| l.powi((rows - 1 - t) as i32)).collect();
            let s: f64 = w.iter().sum();
            w.iter_mut().for_each(|x| *x /= s);
            (vec![0.0; n], w)
        }
    };
    let mut sigma_w = vec![0.0; n];
    let mut var_p = 0.0;
    let mut d = vec![0.0; n];
    for (r, a) in daily.chunks_exact(n).zip(&weights) {
        for ((d, r), m) in d.iter_mut().zip(r).zip(&mean) {
            *d = r - m;
        }
        let p = stats::dot(&d, values);
        var_p += a * p * p;
        for (s, d) in sigma_w.iter_mut().zip(&d) {
            *s += a * d * p;
        }
    }
    let sqrt_h = f64::from(horizon).sqrt();
    let sigma = var_p.max(0.0).sqrt() * sqrt_h;
    let z = stats::norm_ppf(confidence);
    let es_mult = stats::norm_pdf(z) / (1.0 - confidence);
    let (comp_var, comp_es) = if sigma > 0.0 {
        values
            .iter()
            .zip(&sigma_w)
            .map(|(w, sw)| {
                let marginal = w * sw * sqrt_h * sqrt_h / sigma;
                (marginal * z, marginal * es_mult)
            })
            .unzip()
    } else {
        (vec![0.0; n], vec![0.0; n])
    };
    Core {
        var: z * sigma,
        es: es_mult * sigma,
        comp_var,
        comp_es,
        losses: Vec::new(),
        sigma,
        notes: Vec::new(),
    }
}

/// Fill `z` with independent standard normals (Box-Muller on the seeded stream).
fn normals(rng: &mut ChaCha8Rng, z: &mut [f64]) {
    for pair in z.chunks_mut(2) {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        pair[0] = r * c;
        if let Some(second) = pair.get_mut(1) {
            *second = r * s;
        }
    }
}

/// Sample covariance (mean removed, T−1 denominator) of row-major T × n returns.
fn covariance(daily: &[f64], n: usize) -> Vec<f64> {
    let rows = daily.len() / n;
    // Column-major centred copy so each Σ_ij is one contiguous dot product.
    let mut cols = vec![0.0; rows * n];
    for i in 0..n {
        let m = daily.iter().skip(i).step_by(n).sum::<f64>() / rows as f64;
        for t in 0..rows {
            cols[i * rows + t] = daily[t * n + i] - m;
        }
    }
    let mut cov = vec![0.0; n * n];
    let denom = (rows as f64 - 1.0).max(1.0);
    for i in 0..n {
        for j in 0..=i {
            let c = stats::dot(
                &cols[i * rows..(i + 1) * rows],
                &cols[j * rows..(j + 1) * rows],
            ) / denom;
            cov[i * n + j] = c;
            cov[j * n + i] = c;
        }
    }
    cov
}

/// Cholesky factor of `cov`, adding a growing diagonal jitter when it is not positive
/// definite (e.g. two perfectly correlated instruments, or more instruments than days).
fn cholesky_with_jitter(
    cov: &[f64],
    n: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<f64>, PtrcError> {
    if let Some(l) = stats::cholesky(cov, n) {
        return Ok(l);
    }
    let mean_diag = (0..n).map(|i| cov[i * n + i]).sum::<f64>() / n as f64;
    let mut eps = mean_diag.max(f64::MIN_POSITIVE) * 1e-10;
    for _ in 0..12 {
        let mut m = cov.to_vec();
        for i in 0..n {
            m[i * n + i] += eps;
        }
        if let Some(l) = stats::cholesky(&m, n) {
            notes.push(format!(
                "the return covariance is not positive definite; added {eps:.3e} to its \
                 diagonal (about {:.1e} of the mean variance) for the Cholesky factor",
                eps / mean_diag.max(f64::MIN_POSITIVE)
            ));
            return Ok(l);
        }
        eps *= 10.0;
    }
    Err(PtrcError::Invalid(
        "the return covariance is not positive definite even with a diagonal jitter \
         (constant prices?)"
            .into(),
    ))
}

/// Monte Carlo: h-day returns r = √h · L z with L the Cholesky factor of the daily sample
/// covariance and z i.i.d. standard normals from ChaCha8 seeded with `seed`.
pub(crate) fn monte_carlo_core(
    values: &[f64],
    daily: &[f64],
    req: &VarRequest,
) -> Result<Core, PtrcError> {
    let n = values.len();
    let mut notes = Vec::new();
    let cov = covariance(daily, n);
    let l = cholesky_with_jitter(&cov, n, &mut notes)?;
    let sqrt_h = f64::from(req.horizon_days).sqrt();
    let paths = req.mc_paths;
    // Simple returns are linear in z: portfolio P&L = (√h Lᵀw)·z, O(n) per path.
    let mut b = vec![0.0; n];
    for i in 0..n {
        for k in 0..=i {
            b[k] += l[i * n + k] * values[i] * sqrt_h;
        }
    }
    let simulate = |z: &[f64], r: &mut [f64]| {
        for (i, r) in r.iter_mut().enumerate() {
            *r = sqrt_h * stats::dot(&l[i * n..i * n + i + 1], &z[..=i]);
        }
    };
    let pos_loss = |i: usize, r: f64| match req.returns {
        ReturnKind::Simple => -values[i] * r,
        ReturnKind::Log => -values[i] * r.exp_m1(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
    let mut z = vec![0.0; n];
    let mut r = vec![0.0; n];
    let mut losses = Vec::with_capacity(paths);
    for _ in 0..paths {
        normals(&mut rng, &mut z);
        let loss = match req.returns {
            ReturnKind::Simple => -stats::dot(&b, &z),
            ReturnKind::Log => {
                simulate(&z, &mut r);
                r.iter().enumerate().map(|(i, r)| pos_loss(i, *r)).sum()
            }
        };
        losses.push(loss);
    }
    // Second pass over the same stream: per-position losses of the tail paths only, so the
    // n × paths matrix is never stored.
    let mut core = sample_core(losses, n, req.confidence, |in_tail, acc| {
        let mut rng = ChaCha8Rng::seed_from_u64(req.seed);
        let mut count = 0;
        for s in 0..paths {
            normals(&mut rng, &mut z);
            if in_tail(s) {
                count += 1;
                simulate(&z, &mut r);
                for (i, (a, r)) in acc.iter_mut().zip(&r).enumerate() {
                    *a += pos_loss(i, *r);
                }
            }
        }
        count
    });
    core.notes = notes;
    Ok(core)
}

/// Round to cents, half away from zero, always with two decimal places (`1250.00`).
/// The error for an exact amount computed from outside input (positions, closes) that leaves
/// the decimal range.
pub(crate) fn beyond_range(what: &str) -> PtrcError {
    PtrcError::Invalid(format!("{what} is beyond the exact decimal range"))
}

pub(crate) fn round_cents(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// f64 → Decimal rounded to cents; NaN/∞ is an error.
pub(crate) fn cents(x: f64, what: &str) -> Result<Decimal, PtrcError> {
    Decimal::try_from(x)
        .map(round_cents)
        .map_err(|_| PtrcError::Invalid(format!("{what} is not a finite number ({x})")))
}

/// Round components to cents and push the rounding residual onto the largest position, so the
/// rounded components add up to the rounded total exactly.
fn allocate_cents(
    parts: &[f64],
    total: Decimal,
    values: &[f64],
    what: &str,
) -> Result<Vec<Decimal>, PtrcError> {
    let mut out = parts
        .iter()
        .map(|p| cents(*p, what))
        .collect::<Result<Vec<_>, _>>()?;
    let residual = total - out.iter().copied().sum::<Decimal>();
    if let Some(k) = (0..values.len()).max_by(|a, b| values[*a].abs().total_cmp(&values[*b].abs()))
    {
        out[k] += residual;
    }
    Ok(out)
}

const HISTOGRAM_BINS: usize = 40;

fn sample_histogram(losses: &[f64]) -> Result<Vec<HistogramBin>, PtrcError> {
    let (lo, hi) = losses
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    if losses.is_empty() || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Ok(Vec::new());
    }
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let mut counts = [0usize; HISTOGRAM_BINS];
    for x in losses {
        let k = (((x - lo) / width) as usize).min(HISTOGRAM_BINS - 1);
        counts[k] += 1;
    }
    (0..HISTOGRAM_BINS)
        .map(|k| {
            Ok(HistogramBin {
                lower: cents(lo + width * k as f64, "histogram edge")?,
                upper: cents(lo + width * (k + 1) as f64, "histogram edge")?,
                probability: counts[k] as f64 / losses.len() as f64,
            })
        })
        .collect()
}

fn normal_histogram(sigma: f64) -> Result<Vec<HistogramBin>, PtrcError> {
    if sigma <= 0.0 {
        return Ok(Vec::new());
    }
    let (lo, width) = (-4.0 * sigma, 8.0 * sigma / HISTOGRAM_BINS as f64);
    (0..HISTOGRAM_BINS)
        .map(|k| {
            let (a, b) = (lo + width * k as f64, lo + width * (k + 1) as f64);
            Ok(HistogramBin {
                lower: cents(a, "histogram edge")?,
                upper: cents(b, "histogram edge")?,
                probability: stats::norm_cdf(b / sigma) - stats::norm_cdf(a / sigma),
            })
        })
        .collect()
}

/// Estimate one VaR on aligned data (shared by [`value_at_risk`] and the backtest).
pub(crate) fn estimate(a: &Aligned, values: &[f64], req: &VarRequest) -> Result<Core, PtrcError> {
    Ok(match req.method {
        VarMethod::Historical => {
            let scen = horizon_returns(a, req.horizon_days as usize, ReturnKind::Simple);
            historical_core(values, &scen, req.confidence)
        }
        VarMethod::Parametric | VarMethod::Ewma => {
            let daily = daily_returns(a, req.returns);
            let lambda = (req.method == VarMethod::Ewma).then_some(req.ewma_lambda);
            parametric_core(values, &daily, req.confidence, req.horizon_days, lambda)
        }
        VarMethod::MonteCarlo => {
            let daily = daily_returns(a, req.returns);
            monte_carlo_core(values, &daily, req)?
        }
    })
}

/// Closes a method needs at the least: two return observations (historical: two h-day
/// scenarios; the others: three daily returns so the sample covariance is defined).
fn min_closes(req: &VarRequest) -> usize {
    match req.method {
        VarMethod::Historical => req.horizon_days as usize + 2,
        _ => 4,
    }
}

/// Value at Risk and Expected Shortfall of `positions` (signed quantities per symbol) from
/// the daily closes in `prices`. See the module docs for the conventions.
pub fn value_at_risk(
    positions: &BTreeMap<String, Decimal>,
    prices: &PriceHistory,
    req: &VarRequest,
) -> Result<VarReport, PtrcError> {
    req.validate()?;
    let keep = req.lookback_days.map(|k| k.saturating_add(1));
    let a = align(positions, prices, keep, min_closes(req))?;
    let values_dec: Vec<Decimal> = a
        .qty
        .iter()
        .zip(&a.last)
        .zip(&a.symbols)
        .map(|((q, p), sym)| {
            q.checked_mul(*p)
                .ok_or_else(|| beyond_range(&format!("the value of the {sym} position")))
        })
        .collect::<Result<_, _>>()?;
    let portfolio_value = values_dec
        .iter()
        .try_fold(Decimal::ZERO, |acc, v| acc.checked_add(*v))
        .ok_or_else(|| beyond_range("the portfolio value"))?;
    let values: Vec<f64> = values_dec.iter().map(|v| to_f64(*v)).collect();
    let core = estimate(&a, &values, req)?;
    let var = cents(core.var, "VaR")?;
    let es = cents(core.es, "expected shortfall")?;
    let comp_var = allocate_cents(&core.comp_var, var, &values, "component VaR")?;
    let comp_es = core
        .comp_es
        .iter()
        .map(|c| cents(*c, "component ES"))
        .collect::<Result<Vec<_>, _>>()?;
    let components = (0..a.n())
        .map(|i| VarComponent {
            symbol: a.symbols[i].clone(),
            qty: a.qty[i],
            value: round_cents(values_dec[i]),
            component_var: comp_var[i],
            component_es: comp_es[i],
        })
        .collect();
    let histogram = match req.method {
        VarMethod::Historical | VarMethod::MonteCarlo => sample_histogram(&core.losses)?,
        VarMethod::Parametric | VarMethod::Ewma => normal_histogram(core.sigma)?,
    };
    let observations = match req.method {
        VarMethod::Historical => a.dates.len() - req.horizon_days as usize,
        _ => a.dates.len() - 1,
    };
    let mc = req.method == VarMethod::MonteCarlo;
    Ok(VarReport {
        var,
        expected_shortfall: es,
        method: req.method,
        confidence: req.confidence,
        horizon_days: req.horizon_days,
        returns: req.returns,
        components,
        portfolio_value: round_cents(portfolio_value),
        observations,
        window_start: a.dates[0],
        as_of: a.dates[a.dates.len() - 1],
        histogram,
        ewma_lambda: (req.method == VarMethod::Ewma).then_some(req.ewma_lambda),
        mc_paths: mc.then_some(req.mc_paths),
        seed: mc.then_some(req.seed),
        notes: core.notes,
    })
}

#[cfg(test)]
pub(crate) mod tests;
