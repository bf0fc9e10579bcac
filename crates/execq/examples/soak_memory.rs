//! Held state and snapshot size of a streaming engine with eviction over a soak-like stream
//! (every order filled once within 200 ms, a quarter partially and then cancelled).
//! `cargo run -p execq --example soak_memory -- [orders_per_s] [minutes] [late_fill_grace_ms]`
use execq::{ExecQuality, Params};

#[path = "../tests/common/soak.rs"]
mod soak;

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (rate, minutes, grace) = (arg(1, 850), arg(2, 20), arg(3, 5_000));
    let params = Params {
        late_fill_grace_ms: grace,
        ..Params::default()
    };
    let mut e = ExecQuality::new(params).expect("valid parameters");
    e.set_eviction(true).expect("eviction");
    e.set_observations(true);
    let (mut rows, mut minute) = (0usize, 0i64);
    for r in soak::Soak::new(rate, minutes * 60, 7) {
        let m = (r.ts.as_nanos() - soak::SOAK_T0_NS) / 60_000_000_000;
        if m > minute {
            minute = m;
            let bytes = serde_json::to_vec(&e).map(|v| v.len()).unwrap_or(0);
            println!(
                "minute {minute:>3}: {:?} rows {rows} snapshot {:.1} MB",
                e.state_sizes(),
                bytes as f64 / 1e6
            );
        }
        e.on_record(&r);
        e.drain_observations();
        rows += e.drain_rows().len();
    }
}
