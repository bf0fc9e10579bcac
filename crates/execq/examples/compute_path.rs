//! The compute bench's work once (`execq::compute` over the bench's generated events), for
//! profiling with callgrind: `cargo build --release -p execq --example compute_path`, then
//! `valgrind --tool=callgrind --toggle-collect='execq::engine::compute*' \
//!  target/release/examples/compute_path 30000`. The argument is the order count (100,000 in
//! the bench: 1 M records).
use execq::{Params, compute};

#[path = "../benches/common/events.rs"]
mod common;
use common::events;

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let recs = events(n);
    let t0 = std::time::Instant::now();
    let r = compute(&recs, &Params::default()).expect("defaults are valid");
    println!("{} orders in {:?}", r.orders.len(), t0.elapsed());
}
