//! P&L over 1 million fills (issue 5 goal: < 1 s).
//! Run: `cargo bench -p ptrc --bench pnl -- --warm-up-time 2 --measurement-time 20 --sample-size 10`.
//!
//! 1,000,000 fills generated deterministically (xorshift, fixed seed): 200 accounts, 100
//! symbols (20,000 positions), 250 trading days of 4,000 fills, random buy/sell (so shorts and
//! flips occur) of 1-100 units at a per-symbol random walk in cents, fee 0.005 per unit. The
//! full `compute` is measured: lots, realized/unrealized, open lots and the daily series
//! (250 points x 200 accounts), with a marks map for half of the symbols.
//!
//! `active_*` (issue 13): the active-trader input, 1,000,000 fills of 20 accounts x 10 symbols
//! (200 positions) over 250 days; each position alternates buys and sells of 1-100 units some
//! 20 minutes apart, so lots open and close all day long (partial closes, flips, long lot
//! queues never build up).

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use model::{Decimal, Side, Timestamp};
use ptrc::input::Trade;
use ptrc::pnl::{Method, PnlOptions, compute};

const FILLS: usize = 1_000_000;
const ACCOUNTS: usize = 200;
const SYMBOLS: usize = 100;
const DAYS: usize = 250;

fn fills() -> (Vec<Trade>, BTreeMap<String, Decimal>) {
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i:03}")).collect();
    let symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("SYM{i:03}")).collect();
    let mut cents: Vec<i64> = (0..SYMBOLS as i64).map(|i| 2_000 + 150 * i).collect();
    let mut rnd = common::xorshift(0x9E37_79B9_7F4A_7C15);
    let start = 1_704_153_600_000_000_000_i64; // 2024-01-02T00:00:00Z
    let per_day = FILLS / DAYS;
    let step = 23_400_000_000_000_i64 / per_day as i64; // spread over a 6.5 h session
    let mut out = Vec::with_capacity(FILLS);
    for i in 0..FILLS {
        let day = (i / per_day) as i64;
        let ts =
            start + day * 86_400_000_000_000 + 34_200_000_000_000 + (i % per_day) as i64 * step;
        let s = rnd(SYMBOLS as u64) as usize;
        cents[s] = (cents[s] + rnd(21) as i64 - 10).max(100);
        let qty = rnd(100) as i64 + 1;
        out.push(Trade {
            ts: Timestamp::from_nanos(ts),
            account: accounts[rnd(ACCOUNTS as u64) as usize].clone(),
            owner: String::new(),
            symbol: symbols[s].clone(),
            side: if rnd(2) == 0 { Side::Buy } else { Side::Sell },
            qty: Decimal::from(qty),
            price: Decimal::new(cents[s], 2),
            fee: Decimal::new(qty * 5, 3),
            lot_ids: Vec::new(),
        });
    }
    let marks = symbols
        .iter()
        .zip(&cents)
        .step_by(2)
        .map(|(s, c)| (s.clone(), Decimal::new(c + 7, 2)))
        .collect();
    (out, marks)
}

/// The active-trader input (`common::active_trades`, 2024) and its marks: each symbol's last
/// price + 0.03.
fn active_fills() -> (Vec<Trade>, BTreeMap<String, Decimal>) {
    let out = common::active_trades(1_704_153_600_000_000_000, false, false);
    let marks = out
        .iter()
        .map(|t| (t.symbol.clone(), t.price + Decimal::new(3, 2)))
        .collect();
    (out, marks)
}

fn bench(c: &mut Criterion) {
    let opts = PnlOptions::default();
    let mut g = c.benchmark_group("pnl_1m_fills");
    for (input, (trades, marks)) in [("", fills()), ("active_", active_fills())] {
        for method in [Method::Fifo, Method::Avg] {
            g.bench_function(format!("{input}{}", method.as_str()), |b| {
                b.iter(|| {
                    let r = compute(black_box(&trades), method, &marks, &opts);
                    black_box(r.map(|r| r.totals.total_pnl))
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
