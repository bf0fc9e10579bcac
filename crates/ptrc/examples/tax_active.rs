//! One `form_8949` over the active-trader input of issue 13 (the shape of the bench
//! `active_form_8949_1M_trades`), or with `long` over the long-only input of issue 5 (the bench
//! `form_8949_1M_trades_wash_sales`), for profiling: prints the thread CPU time, the counts and
//! a digest of the whole report (to compare two builds' results).
//! Run: `cargo run --release -p ptrc --example tax_active [runs] [long] [trades]` (`trades`:
//! only the first that many trades, e.g. for callgrind).

#[path = "../benches/common/mod.rs"]
mod common;

use std::hash::{DefaultHasher, Hash, Hasher};

use ptrc::tax::{TaxSettings, form_8949};

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let long = args.get(2).is_some_and(|a| a == "long");
    let (mut t, year) = if long {
        (common::long_only_trades(), 2024)
    } else {
        (
            common::active_trades(1_735_776_000_000_000_000, true, true),
            2025,
        )
    };
    if let Some(n) = args.get(3).and_then(|a| a.parse().ok()) {
        t.truncate(n);
    }
    let settings = TaxSettings::default();
    for _ in 0..runs {
        let before = thread_cpu_ns();
        let rep = form_8949(&t, year, &settings, None).expect("report");
        let cpu = (thread_cpu_ns() - before) as f64 / 1e9;
        let mut h = DefaultHasher::new();
        serde_json::to_string(&rep).expect("json").hash(&mut h);
        eprintln!(
            "{cpu:.3} s CPU; {} rows, {} washes, {} open lots; digest {:016x}",
            rep.rows.len(),
            rep.washes.len(),
            rep.open_lots.len(),
            h.finish()
        );
    }
}
