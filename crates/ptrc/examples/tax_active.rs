//! One `form_8949` over the active-trader input of issue 13 (the shape of the bench
//! `active_form_8949_1M_trades`), for profiling: prints the thread CPU time, the counts and a
//! digest of the whole report (to compare two builds' results).
//! Run: `cargo run --release -p ptrc --example tax_active [runs]`.

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
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let t = common::active_trades(1_735_776_000_000_000_000, true, true);
    let settings = TaxSettings::default();
    for _ in 0..runs {
        let before = thread_cpu_ns();
        let rep = form_8949(&t, 2025, &settings, None).expect("report");
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
