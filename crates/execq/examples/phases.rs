//! Times the streaming phase and the report phase separately over the benchmark's events.
//! `cargo run --release -p execq --example phases`
use execq::{ExecQuality, Params};
use std::time::Instant;

#[path = "../benches/common/events.rs"]
mod common;
use common::events;

fn main() {
    let recs = events(100_000);
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut e = ExecQuality::new(Params::default()).expect("defaults are valid");
        for r in &recs {
            e.on_record(r);
        }
        let t1 = Instant::now();
        let rep = e.report();
        let t2 = Instant::now();
        drop(rep);
        let t3 = Instant::now();
        println!(
            "stream {:?}  report {:?}  drop {:?}",
            t1 - t0,
            t2 - t1,
            t3 - t2
        );
    }
}
