//! VaR benchmarks (issue 5 goals): historical VaR for 500 instruments × 2,500 days < 200 ms;
//! Monte Carlo 10,000 paths × 500 instruments < 2 s.
//!
//! `cargo bench -p ptrc --bench var`

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{Days, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use model::Decimal;
use ptrc::input::PriceHistory;
use ptrc::risk::{ReturnKind, VarMethod, VarRequest, value_at_risk};

/// Deterministic synthetic closes: one market factor plus idiosyncratic noise from a
/// fixed-seed xorshift, so instruments are correlated and the covariance is well conditioned.
fn synthetic(instruments: usize, days: usize) -> (BTreeMap<String, Decimal>, PriceHistory) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let d0 = NaiveDate::from_ymd_opt(2015, 1, 1).expect("valid date");
    let mut px = vec![100.0f64; instruments];
    let mut hist: Vec<Vec<(NaiveDate, Decimal)>> = vec![Vec::with_capacity(days + 1); instruments];
    for t in 0..=days {
        let market = uniform() * 0.02;
        let date = d0 + Days::new(t as u64);
        for (i, p) in px.iter_mut().enumerate() {
            if t > 0 {
                let beta = 0.5 + (i % 7) as f64 * 0.1;
                *p *= 1.0 + beta * market + uniform() * 0.03;
            }
            let close = Decimal::try_from(*p).expect("finite").round_dp(4);
            hist[i].push((date, close));
        }
    }
    let prices = hist
        .into_iter()
        .enumerate()
        .map(|(i, h)| (format!("S{i:03}"), h))
        .collect();
    let positions = (0..instruments)
        .map(|i| {
            let q = if i % 5 == 0 { -50 } else { 100 + i as i64 };
            (format!("S{i:03}"), Decimal::from(q))
        })
        .collect();
    (positions, prices)
}

fn benches(c: &mut Criterion) {
    let (positions, prices) = synthetic(500, 2_500);
    let hist = VarRequest::default();
    c.bench_function("historical_var_500x2500", |b| {
        b.iter(|| value_at_risk(black_box(&positions), black_box(&prices), &hist).expect("var"))
    });
    let param = VarRequest {
        method: VarMethod::Parametric,
        ..VarRequest::default()
    };
    c.bench_function("parametric_var_500x2500", |b| {
        b.iter(|| value_at_risk(black_box(&positions), black_box(&prices), &param).expect("var"))
    });
    let mut g = c.benchmark_group("monte_carlo");
    g.sample_size(10);
    let mc = VarRequest {
        method: VarMethod::MonteCarlo,
        ..VarRequest::default()
    };
    g.bench_function("mc_var_10000x500_simple", |b| {
        b.iter(|| value_at_risk(black_box(&positions), black_box(&prices), &mc).expect("var"))
    });
    let mc_log = VarRequest {
        returns: ReturnKind::Log,
        ..mc
    };
    g.bench_function("mc_var_10000x500_log", |b| {
        b.iter(|| value_at_risk(black_box(&positions), black_box(&prices), &mc_log).expect("var"))
    });
    g.finish();
}

criterion_group!(var, benches);
criterion_main!(var);
