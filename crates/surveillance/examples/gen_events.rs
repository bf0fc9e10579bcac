//! The surveillance benchmark's deterministic event stream (seed 42: 500 accounts, 100 owners,
//! 50 symbols, limit orders, cancels, fills with their tape prints, quotes, other tape prints)
//! as interchange NDJSON on stdout, the input of the CLI measurements of `trade2026 surveil`
//! and `trade2026 execq` (docs/BENCHMARKS.md).
//!
//! `cargo run --release -p surveillance --example gen_events -- 1000000 > /tmp/events.ndjson`

use std::io::{BufWriter, Write};

#[path = "../tests/common/gen.rs"]
mod evgen;

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("the number of records"))
        .unwrap_or(1_000_000);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for r in evgen::events(42, n, &evgen::bench_cfg()) {
        serde_json::to_writer(&mut out, &r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
