//! CPU time of the batch `scan` over the benchmark's event stream (the same records and
//! parameters as `benches/surveillance.rs`), for A/B comparisons on a loaded machine: the
//! figure is the scanning thread's own CPU time (`/proc/thread-self/schedstat`), not wall
//! time, so other processes' load affects it much less. Also prints a digest of the alerts
//! (SHA-256 of their JSON), so two builds can be checked for identical results.
//!
//! `cargo run --release -p surveillance --example scan_cpu -- [records] [runs]`
//! (defaults: 1000000 records, 5 runs)

use std::hint::black_box;
use std::time::Instant;

use sha2::{Digest, Sha256};
use surveillance::scan;

#[path = "../tests/common/gen.rs"]
mod evgen;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("the number of records"))
        .unwrap_or(1_000_000);
    let runs: usize = args
        .next()
        .map(|a| a.parse().expect("the number of runs"))
        .unwrap_or(5);
    let params = evgen::bench_params();
    let recs = evgen::events(42, n, &evgen::bench_cfg());
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut digest = String::new();
    let mut count = 0;
    for _ in 0..runs {
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        let alerts = black_box(scan(black_box(&recs), &params).expect("params"));
        cpu.push(thread_cpu_ns() - c0);
        wall.push(w0.elapsed().as_nanos() as u64);
        if digest.is_empty() {
            let json = serde_json::to_vec(&alerts).expect("alerts serialize");
            digest = hex::encode(Sha256::digest(&json));
            count = alerts.len();
        }
    }
    cpu.sort_unstable();
    wall.sort_unstable();
    let s = |ns: u64| ns as f64 / 1e9;
    println!(
        "{n} records, {count} alerts, digest {digest}\nscan CPU over {runs} runs: min {:.3} s, median {:.3} s, max {:.3} s (wall median {:.3} s)",
        s(cpu[0]),
        s(cpu[cpu.len() / 2]),
        s(cpu[cpu.len() - 1]),
        s(wall[wall.len() / 2]),
    );
}
