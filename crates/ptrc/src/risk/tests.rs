use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal_macros::dec;

use super::*;
use crate::input::PriceHistory;

/// Read a wide fixture (`date,SYM1,SYM2,...`, blanks before a listing) into a [`PriceHistory`]
/// for `symbols` between `from` and `to` inclusive. `None` when the fixture is absent outside CI.
pub(crate) fn fixture(file: &str, symbols: &[&str], from: &str, to: &str) -> Option<PriceHistory> {
    let path = format!(
        "{}/../../../shared/fixtures/prices/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "fixture {path} is missing under CI: {e}"
            );
            eprintln!("skipping: fixture {path} not found");
            return None;
        }
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cols: Vec<usize> = symbols
        .iter()
        .map(|s| header.iter().position(|h| h == s).expect("symbol column"))
        .collect();
    let mut out: PriceHistory = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f[0] < from || f[0] > to {
            continue;
        }
        let d = NaiveDate::parse_from_str(f[0], "%Y-%m-%d").unwrap();
        for (s, c) in symbols.iter().zip(&cols) {
            if !f[*c].is_empty() {
                out.entry((*s).to_string())
                    .or_default()
                    .push((d, f[*c].parse::<Decimal>().unwrap()));
            }
        }
    }
    Some(out)
}

fn book() -> BTreeMap<String, Decimal> {
    BTreeMap::from([
        ("AAPL".to_string(), dec!(100)),
        ("JPM".to_string(), dec!(200)),
        ("XOM".to_string(), dec!(-150)),
    ])
}

fn stocks() -> Option<PriceHistory> {
    fixture(
        "pypfopt_stock_prices.csv",
        &["AAPL", "JPM", "XOM"],
        "2016-01-01",
        "2017-12-31",
    )
}

fn req(method: VarMethod, horizon: u32) -> VarRequest {
    VarRequest {
        method,
        horizon_days: horizon,
        ..VarRequest::default()
    }
}

fn assert_cents(got: Decimal, want: f64, what: &str) {
    let g = got.to_f64().unwrap();
    assert!(
        (g - want).abs() <= 0.01,
        "{what}: got {got}, numpy says {want}"
    );
}

fn assert_components_sum(r: &VarReport) {
    let sum: Decimal = r.components.iter().map(|c| c.component_var).sum();
    assert_eq!(sum, r.var, "components must add up to VaR exactly");
}

/// Known answer from an independent numpy/scipy computation on the same real prices
/// (PyPortfolioOpt's `stock_prices.csv`, adjusted closes, 2016-01-04..2017-12-29, 503 closes),
/// for the book AAPL +100, JPM +200, XOM −150 at 99 %. Script (numpy 2.4.6, scipy 1.17.1):
///
/// ```text
/// syms = ["AAPL", "JPM", "XOM"]; qty = np.array([100.0, 200.0, -150.0])
/// rows = [r for r in csv.DictReader(open(".../pypfopt_stock_prices.csv"))
///         if "2016-01-01" <= r["date"] <= "2017-12-31"]
/// P = np.array([[float(r[s]) for s in syms] for r in rows]); w = qty * P[-1]; c = 0.99
/// def hist(h):
///     r = P[h:] / P[:-h] - 1; L = -(r @ w)
///     var = np.percentile(L, 100 * c); es = L[L >= var].mean(); return len(L), var, es
/// r = P[1:] / P[:-1] - 1; z = norm.ppf(c)
/// s = np.sqrt(w @ np.cov(r, rowvar=False) @ w) * np.sqrt(h)     # parametric
/// var, es = z * s, s * norm.pdf(z) / (1 - c)
/// a = 0.94 ** np.arange(n)[::-1]; a /= a.sum(); S = (r * a[:, None]).T @ r   # EWMA
/// ```
///
/// Output:
///
/// ```text
/// n_closes 503 last 2017-12-29 values [16854.2831, 21169.807399999998, -12419.00595] total 25605.08455
/// historical h=1 obs=502 var=1089.166840 es=1261.564754
/// historical h=10 obs=493 var=2856.206978 es=3042.853209
/// parametric h=1 var=859.275373 es=984.441308
/// parametric h=10 var=2717.267317 es=3113.076756
/// ewma h=1 var=604.544973 es=692.605726
/// ```
#[test]
fn known_answer_against_numpy() {
    let Some(prices) = stocks() else { return };
    let cases = [
        (VarMethod::Historical, 1, 502, 1089.166840, 1261.564754),
        (VarMethod::Historical, 10, 493, 2856.206978, 3042.853209),
        (VarMethod::Parametric, 1, 502, 859.275373, 984.441308),
        (VarMethod::Parametric, 10, 502, 2717.267317, 3113.076756),
        (VarMethod::Ewma, 1, 502, 604.544973, 692.605726),
    ];
    for (method, h, obs, var, es) in cases {
        let r = value_at_risk(&book(), &prices, &req(method, h)).unwrap();
        let what = format!("{method} h={h}");
        assert_eq!(r.observations, obs, "{what}");
        assert_cents(r.var, var, &what);
        assert_cents(r.expected_shortfall, es, &what);
        assert_components_sum(&r);
        assert_eq!(r.as_of.to_string(), "2017-12-29");
        assert_eq!(r.portfolio_value, dec!(25605.08));
        let values: Vec<String> = r.components.iter().map(|c| c.value.to_string()).collect();
        assert_eq!(values, ["16854.28", "21169.81", "-12419.01"]);
    }
}

#[test]
fn log_returns_leave_historical_unchanged_but_move_parametric() {
    let Some(prices) = stocks() else { return };
    for (method, same) in [
        (VarMethod::Historical, true),
        (VarMethod::Parametric, false),
    ] {
        let simple = value_at_risk(&book(), &prices, &req(method, 1)).unwrap();
        let log = value_at_risk(
            &book(),
            &prices,
            &VarRequest {
                returns: ReturnKind::Log,
                ..req(method, 1)
            },
        )
        .unwrap();
        assert_eq!(simple.var == log.var, same, "{method}");
    }
}

#[test]
fn monte_carlo_is_reproducible_and_close_to_parametric() {
    let Some(prices) = stocks() else { return };
    let mc = req(VarMethod::MonteCarlo, 1);
    let a = value_at_risk(&book(), &prices, &mc).unwrap();
    let b = value_at_risk(&book(), &prices, &mc).unwrap();
    assert_eq!(a, b, "same seed, same report");
    let other = value_at_risk(
        &book(),
        &prices,
        &VarRequest {
            seed: 7,
            ..mc.clone()
        },
    )
    .unwrap();
    assert_ne!(a.var, other.var, "a different seed draws different paths");
    assert_components_sum(&a);
    assert_eq!(a.seed, Some(DEFAULT_SEED));
    // The same normal model as the parametric VaR (859.28): with 10 000 paths the 99 % quantile
    // has a standard error of roughly 2.5 %, so allow 7.5 % (three standard errors).
    let v = a.var.to_f64().unwrap();
    assert!((v - 859.275373).abs() / 859.275373 < 0.075, "MC VaR {v}");
    let es = a.expected_shortfall.to_f64().unwrap();
    assert!((es - 984.441308).abs() / 984.441308 < 0.075, "MC ES {es}");
    // Log returns run the full revaluation path and stay in the same place.
    let log = value_at_risk(
        &book(),
        &prices,
        &VarRequest {
            returns: ReturnKind::Log,
            ..mc
        },
    )
    .unwrap();
    assert!((log.var.to_f64().unwrap() - v).abs() / v < 0.05);
}

#[test]
fn parametric_components_are_euler_and_sign_aware() {
    let Some(prices) = stocks() else { return };
    let r = value_at_risk(&book(), &prices, &req(VarMethod::Parametric, 1)).unwrap();
    assert_components_sum(&r);
    // Each component ES is the component VaR scaled by φ(z)/(1−c)/z, the same for all.
    for c in &r.components {
        if c.component_var.abs() > dec!(10) {
            let k = c.component_es.to_f64().unwrap() / c.component_var.to_f64().unwrap();
            assert!(
                (k - 984.441308 / 859.275373).abs() < 1e-3,
                "{}: {k}",
                c.symbol
            );
        }
    }
    // A single long position: VaR = z σ value exactly and it is its own component.
    let one = BTreeMap::from([("AAPL".to_string(), dec!(10))]);
    let r1 = value_at_risk(&one, &prices, &req(VarMethod::Parametric, 1)).unwrap();
    assert_eq!(r1.components[0].component_var, r1.var);
    // Flipping the whole book flips nothing in a symmetric model.
    let short: BTreeMap<_, _> = book().into_iter().map(|(s, q)| (s, -q)).collect();
    let rs = value_at_risk(&short, &prices, &req(VarMethod::Parametric, 1)).unwrap();
    assert_eq!(rs.var, r.var);
}

#[test]
fn historical_components_average_the_tail() {
    // Hand-worked: 2 assets, 11 closes, 10 daily scenarios; at c = 0.9 the VaR is the linear
    // quantile of the 10 losses and the tail holds the losses at or beyond it.
    let d = |i: u32| NaiveDate::from_ymd_opt(2024, 1, 1 + i).unwrap();
    let a = [100, 101, 99, 102, 90, 95, 96, 97, 98, 99, 100];
    let b = [50, 50, 51, 50, 52, 51, 51, 52, 50, 51, 51];
    let prices: PriceHistory = BTreeMap::from([
        (
            "A".to_string(),
            (0..11)
                .map(|i| (d(i), Decimal::from(a[i as usize])))
                .collect(),
        ),
        (
            "B".to_string(),
            (0..11)
                .map(|i| (d(i), Decimal::from(b[i as usize])))
                .collect(),
        ),
    ]);
    let pos = BTreeMap::from([("A".to_string(), dec!(10)), ("B".to_string(), dec!(20))]);
    let r = value_at_risk(
        &pos,
        &prices,
        &VarRequest {
            confidence: 0.9,
            ..VarRequest::default()
        },
    )
    .unwrap();
    // Values: A 10 × 100 = 1000, B 20 × 51 = 1020; scenario losses −(1000 r_A + 1020 r_B),
    // recomputed here independently of the library.
    let ra: Vec<f64> = a
        .windows(2)
        .map(|w| w[1] as f64 / w[0] as f64 - 1.0)
        .collect();
    let rb: Vec<f64> = b
        .windows(2)
        .map(|w| w[1] as f64 / w[0] as f64 - 1.0)
        .collect();
    let mut losses: Vec<f64> = ra
        .iter()
        .zip(&rb)
        .map(|(x, y)| -(1000.0 * x + 1020.0 * y))
        .collect();
    let raw = losses.clone();
    losses.sort_by(f64::total_cmp);
    // Type-7 quantile at 0.9 of 10 values: position 8.1 → s[8] + 0.1 (s[9] − s[8]).
    let var = losses[8] + 0.1 * (losses[9] - losses[8]);
    assert_cents(r.var, var, "hand VaR");
    // Tail = the single worst scenario (≥ VaR), so ES is that loss and the components are the
    // positions' losses in it, scaled by VaR/ES.
    let worst = raw
        .iter()
        .copied()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap()
        .0;
    assert_cents(r.expected_shortfall, losses[9], "hand ES");
    assert_cents(
        r.components[0].component_es,
        -1000.0 * ra[worst],
        "A tail loss",
    );
    assert_cents(
        r.components[1].component_es,
        -1020.0 * rb[worst],
        "B tail loss",
    );
    assert_components_sum(&r);
    assert_eq!(r.observations, 10);
}

#[test]
fn misaligned_or_short_histories_are_errors_naming_the_symbol() {
    let d = |i: u32| NaiveDate::from_ymd_opt(2024, 1, 1 + i).unwrap();
    let series = |n: u32, skip: Option<u32>| -> Vec<(NaiveDate, Decimal)> {
        (0..n)
            .filter(|i| Some(*i) != skip)
            .map(|i| (d(i), Decimal::from(100 + i % 3)))
            .collect()
    };
    let prices: PriceHistory = BTreeMap::from([
        ("LONG".to_string(), series(30, None)),
        ("GAP".to_string(), series(30, Some(5))),
        ("SHORT".to_string(), series(2, None)),
    ]);
    // A missing date in one series drops that date for all.
    let pos = BTreeMap::from([("LONG".to_string(), dec!(1)), ("GAP".to_string(), dec!(1))]);
    let r = value_at_risk(&pos, &prices, &VarRequest::default()).unwrap();
    assert_eq!(r.observations, 28);
    // Too little common history names the short symbol.
    let pos = BTreeMap::from([
        ("LONG".to_string(), dec!(1)),
        ("SHORT".to_string(), dec!(1)),
    ]);
    let e = value_at_risk(&pos, &prices, &VarRequest::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("SHORT has 2 closes"), "{e}");
    // No history at all.
    let pos = BTreeMap::from([("NOPE".to_string(), dec!(1))]);
    let e = value_at_risk(&pos, &prices, &VarRequest::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no price history for NOPE"), "{e}");
    // Lookback longer than the history.
    let pos = BTreeMap::from([("LONG".to_string(), dec!(1))]);
    let e = value_at_risk(
        &pos,
        &prices,
        &VarRequest {
            lookback_days: Some(100),
            ..VarRequest::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("101 needed") && e.contains("LONG"), "{e}");
    // Bad parameters.
    for bad in [
        VarRequest {
            confidence: 1.0,
            ..VarRequest::default()
        },
        VarRequest {
            horizon_days: 0,
            ..VarRequest::default()
        },
        VarRequest {
            ewma_lambda: 1.0,
            ..VarRequest::default()
        },
    ] {
        assert!(value_at_risk(&pos, &prices, &bad).is_err());
    }
}

#[test]
fn lookback_uses_the_most_recent_returns() {
    let Some(prices) = stocks() else { return };
    let r = value_at_risk(
        &book(),
        &prices,
        &VarRequest {
            lookback_days: Some(250),
            ..VarRequest::default()
        },
    )
    .unwrap();
    assert_eq!(r.observations, 250);
    assert_eq!(r.as_of.to_string(), "2017-12-29");
}

#[test]
fn duplicate_instrument_needs_jitter_for_monte_carlo() {
    let Some(mut prices) = stocks() else { return };
    let aapl = prices["AAPL"].clone();
    prices.insert("AAPL2".to_string(), aapl);
    let pos = BTreeMap::from([
        ("AAPL".to_string(), dec!(50)),
        ("AAPL2".to_string(), dec!(50)),
    ]);
    let r = value_at_risk(&pos, &prices, &req(VarMethod::MonteCarlo, 1)).unwrap();
    assert!(
        r.notes.iter().any(|n| n.contains("not positive definite")),
        "{:?}",
        r.notes
    );
    // Same risk as 100 AAPL (parametric 99 % of that book, within Monte Carlo noise).
    let single = BTreeMap::from([("AAPL".to_string(), dec!(100))]);
    let p = value_at_risk(&single, &prices, &req(VarMethod::Parametric, 1)).unwrap();
    let (x, y) = (r.var.to_f64().unwrap(), p.var.to_f64().unwrap());
    assert!((x - y).abs() / y < 0.075, "{x} vs {y}");
}

#[test]
fn method_parsing_and_json_shape() {
    assert_eq!(
        "montecarlo".parse::<VarMethod>().unwrap(),
        VarMethod::MonteCarlo
    );
    assert_eq!(
        "Monte-Carlo".parse::<VarMethod>().unwrap(),
        VarMethod::MonteCarlo
    );
    assert_eq!("EWMA".parse::<VarMethod>().unwrap(), VarMethod::Ewma);
    assert!("garch".parse::<VarMethod>().is_err());
    let req: VarRequest = serde_json::from_str(r#"{"method":"ewma","confidence":0.95}"#).unwrap();
    assert_eq!(req.method, VarMethod::Ewma);
    assert_eq!(req.horizon_days, 1);
    let Some(prices) = stocks() else { return };
    let r = value_at_risk(&book(), &prices, &VarRequest::default()).unwrap();
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["var"], "1089.17");
    assert_eq!(j["expected_shortfall"], "1261.56");
    assert_eq!(j["method"], "historical");
    assert_eq!(j["horizon_days"], 1);
    assert_eq!(j["components"][0]["symbol"], "AAPL");
    assert!(j["components"][0]["component_var"].is_string());
    let probs: f64 = r.histogram.iter().map(|b| b.probability).sum();
    assert!((probs - 1.0).abs() < 1e-9);
}

#[test]
fn html_and_csv_renderings() {
    let Some(prices) = stocks() else { return };
    let r = value_at_risk(&book(), &prices, &VarRequest::default()).unwrap();
    let html = var_to_html(&r);
    assert!(html.contains("<svg") && html.contains("VaR 1089.17") && html.contains("ES 1261.56"));
    assert!(!html.contains("<script"));
    let csv = var_to_csv(&r);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(
        lines[4].starts_with("historical,0.99,1,TOTAL,,25605.08,1089.17,"),
        "{}",
        lines[4]
    );
}

/// Kupiec POF for 250 days at 99 % (scipy 1.17.1, `chi2.sf(lr, 1)`):
/// `x=4 LR=0.7691383644 p=0.3804837382; x=8 LR=7.7335507245 p=0.0054204052;
///  x=10 LR=12.9554910624 p=0.0003189845`.
#[test]
fn kupiec_known_values() {
    for (x, lr, p) in [
        (4, 0.769_138_364_4, 0.380_483_738_2),
        (8, 7.733_550_724_5, 0.005_420_405_2),
        (10, 12.955_491_062_4, 0.000_318_984_5),
    ] {
        let (l, pv) = kupiec_pof(x, 250, 0.01);
        assert!((l - lr).abs() < 1e-9, "x={x}: LR {l}");
        assert!((pv - p).abs() < 1e-9, "x={x}: p {pv}");
    }
    // Exactly the expected rate: LR 0, p 1. No exceptions: LR = −2·250·ln 0.99.
    assert!(kupiec_pof(5, 500, 0.01).0.abs() < 1e-12);
    assert!((kupiec_pof(0, 250, 0.01).0 - (-500.0 * 0.99f64.ln())).abs() < 1e-12);
}

#[test]
fn backtest_counts_exceptions_by_hand() {
    let Some(prices) = stocks() else { return };
    let req = VarRequest {
        lookback_days: Some(250),
        ..VarRequest::default()
    };
    let bt = backtest(&book(), &prices, &req, 250).unwrap();
    assert_eq!(bt.observations, 250);
    assert_eq!(bt.days.last().unwrap().date.to_string(), "2017-12-29");
    // Recount independently from the reported rows and re-derive every statistic.
    let x = bt.days.iter().filter(|d| -d.pnl > d.var).count();
    assert_eq!(bt.exceptions, x);
    assert!((bt.expected_exceptions - 2.5).abs() < 1e-12);
    let (lr, p) = kupiec_pof(x, 250, 0.01);
    assert_eq!((bt.kupiec_lr, bt.kupiec_p_value), (lr, p));
    let light = match x {
        0..=4 => TrafficLight::Green,
        5..=9 => TrafficLight::Yellow,
        _ => TrafficLight::Red,
    };
    assert_eq!(bt.traffic_light, light);
    // The first day's forecast equals a stand-alone historical VaR on the same 250 returns,
    // valued at that day's previous close: check via value_at_risk on a truncated history.
    let first = &bt.days[0];
    let cut: PriceHistory = prices
        .iter()
        .map(|(s, v)| {
            (
                s.clone(),
                v.iter().copied().filter(|(d, _)| *d < first.date).collect(),
            )
        })
        .collect();
    let alone = value_at_risk(
        &book(),
        &cut,
        &VarRequest {
            lookback_days: Some(250),
            ..VarRequest::default()
        },
    )
    .unwrap();
    assert_eq!(alone.var, first.var);
    // Realised P&L is exact: qty × Δclose on the first evaluated day.
    let pnl: Decimal = book()
        .iter()
        .map(|(s, q)| {
            let v = &prices[s];
            let k = v.iter().position(|(d, _)| *d == first.date).unwrap();
            q * (v[k].1 - v[k - 1].1)
        })
        .sum();
    assert_eq!(first.pnl, pnl.round_dp(2));
}

#[test]
fn backtest_flags_a_bad_model_red() {
    // A regime change: 300 quiet days (±0.1 %) then ±8 % swings. A historical VaR fitted on
    // the quiet window is far too low for the violent days, so exceptions pile up.
    let d0 = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let mut px = Vec::new();
    let mut p = 100.0f64;
    for i in 0..400u32 {
        // 0.1 % wiggle for 300 days, then ±8 % swings.
        let amp = if i < 300 { 0.001 } else { 0.08 };
        p *= 1.0 + if i % 2 == 0 { amp } else { -amp * 0.9 };
        px.push((
            d0 + chrono::Days::new(i.into()),
            Decimal::try_from(p).unwrap().round_dp(4),
        ));
    }
    let prices: PriceHistory = BTreeMap::from([("X".to_string(), px)]);
    let pos = BTreeMap::from([("X".to_string(), dec!(10))]);
    let bt = backtest(&pos, &prices, &VarRequest::default(), 250).unwrap();
    assert!(bt.exceptions >= 10, "{}", bt.exceptions);
    assert_eq!(bt.traffic_light, TrafficLight::Red);
    assert!(bt.kupiec_p_value < 1e-3);
}

// Positions and closes come from outside: a position value or a backtest P&L beyond the exact
// decimal range is an error, never a panic (found by tests/fuzz.rs).
#[test]
fn amounts_beyond_the_decimal_range_are_errors() {
    let day = |k: u32| NaiveDate::from_ymd_opt(2024, 1, 1 + k).unwrap();
    let closes: Vec<(NaiveDate, Decimal)> = (0..20u32)
        .map(|k| (day(k), if k % 2 == 0 { dec!(100) } else { dec!(1000000) }))
        .collect();
    let prices: PriceHistory = BTreeMap::from([("XYZ".to_string(), closes)]);
    let huge = BTreeMap::from([("XYZ".to_string(), -(Decimal::MAX / dec!(10)))]);
    let e = value_at_risk(&huge, &prices, &VarRequest::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the value of the XYZ position is beyond the exact decimal range"),
        "{e}"
    );
    let large = BTreeMap::from([("XYZ".to_string(), Decimal::MAX / dec!(100000))]);
    let e = backtest(&large, &prices, &VarRequest::default(), 5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("beyond the exact decimal range"), "{e}");
}
