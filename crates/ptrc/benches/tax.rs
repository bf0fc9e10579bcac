//! Form 8949 with wash sales over 1 million trades (issue 5 goal: < 3 s).
//! Run: `cargo bench -p ptrc --bench tax -- --warm-up-time 2 --measurement-time 20 --sample-size 10`.
//!
//! 1,000,000 trades generated deterministically (xorshift, fixed seed) over 500 trading days
//! (2023-01-02 .. 2024-12-03, 2,000 trades a day): 100 owners with 2 accounts each, 200 symbols,
//! long-only, buys and sells of 1-100 shares at a per-symbol random walk in cents with a
//! downward drift on half the symbols, fee 0.005 per share. Sells and quick re-buys in the same
//! owner's two accounts produce many wash sales (the count is printed), including chains and
//! partial replacements. The report is for 2024, so every trade is processed (2023 builds the
//! lots whose adjustments carry into 2024).
//!
//! `active_*` (issue 13): the active-trader input of `scripts/ptrc-active-trades.py` in shape:
//! 1,000,000 trades of 2025, 20 accounts x 10 symbols, each (account, symbol) alternating buy and
//! sell some 20 minutes apart, 1-100 shares at a per-symbol random walk in cents, fee 0.005 per
//! share. Nearly every sale is a loss washed within minutes, so lots fragment at every wash sale
//! (the row count before combining is printed beside the Form 8949 rows).

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ptrc::tax::{TaxSettings, form_8949};

/// CPU time of this thread in ns (Linux `/proc/thread-self/schedstat`), so that a figure can be
/// read on a machine shared with other builds; None elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn bench(c: &mut Criterion) {
    let settings = TaxSettings::default();
    let mut g = c.benchmark_group("tax");
    g.sample_size(10);
    for (name, t, year) in [
        (
            "form_8949_1M_trades_wash_sales",
            common::long_only_trades(),
            2024,
        ),
        (
            "active_form_8949_1M_trades",
            // 2025-01-02, trading days spread over the year, each account its own owner.
            common::active_trades(1_735_776_000_000_000_000, true, true),
            2025,
        ),
    ] {
        let mut cpu = Vec::new();
        let mut rep = None;
        for _ in 0..5 {
            let before = thread_cpu_ns();
            let wall = std::time::Instant::now();
            rep = Some(form_8949(&t, year, &settings, None).expect("report"));
            let w = wall.elapsed().as_secs_f64();
            if let (Some(a), Some(b)) = (before, thread_cpu_ns()) {
                cpu.push(((b - a) as f64 / 1e9, w));
            }
        }
        cpu.sort_by(|x, y| x.0.total_cmp(&y.0));
        if let Some((c, w)) = cpu.get(cpu.len() / 2) {
            eprintln!("{name}: median of 5 runs: {c:.3} s CPU time ({w:.3} s wall) per form_8949");
        }
        let Some(rep) = rep else { return };
        eprintln!(
            "{name} input: {} trades; {year} report: {} rows, {} wash matches, {} W rows, adjustments {}, open lots {}",
            t.len(),
            rep.rows.len(),
            rep.washes.len(),
            rep.rows.iter().filter(|r| r.adjustment_code == "W").count(),
            rep.totals.total.adjustment,
            rep.open_lots.len()
        );
        g.bench_function(name, |b| {
            b.iter(|| form_8949(black_box(&t), year, &settings, None).expect("report"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
