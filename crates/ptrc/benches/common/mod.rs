//! The active-trader input of issue 13, shared by the P&L and tax benches: 1,000,000 trades of
//! 20 accounts x 10 symbols (200 positions) over 250 trading days, each position alternating buys
//! and sells of 1-100 units some 20 minutes apart at a per-symbol random walk in cents, fee 0.005
//! per unit (the shape of `scripts/ptrc-active-trades.py`).

use model::{Decimal, Side, Timestamp};
use ptrc::input::Trade;

/// A deterministic xorshift generator: `rnd(n)` is in `0..n`.
pub fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed;
    move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    }
}

pub const ACTIVE_TRADES: usize = 1_000_000;

/// `start_ns`: midnight UTC of the first day. `calendar`: spread the 250 trading days over 365
/// calendar days (as the script does) instead of consecutive days. `owner_is_account`: each
/// account its own owner (as the CSV reader defaults), else all share the empty owner.
pub fn active_trades(start_ns: i64, calendar: bool, owner_is_account: bool) -> Vec<Trade> {
    const ACCTS: usize = 20;
    const SYMS: usize = 10;
    const DAYS: usize = 250;
    let accounts: Vec<String> = (0..ACCTS).map(|i| format!("trader{i:02}")).collect();
    let symbols: Vec<String> = (0..SYMS).map(|i| format!("ACT{i}")).collect();
    let mut cents: Vec<i64> = (0..SYMS as i64).map(|i| 5_000 + 1_000 * i).collect();
    let mut next_buy = [[true; SYMS]; ACCTS];
    let mut rnd = xorshift(0x2545_F491_4F6C_DD1D);
    let per_day = ACTIVE_TRADES / DAYS;
    let step = 23_400_000_000_000_i64 / per_day as i64;
    let mut out = Vec::with_capacity(ACTIVE_TRADES);
    for i in 0..ACTIVE_TRADES {
        let day = if calendar {
            (i / per_day * 365 / DAYS) as i64
        } else {
            (i / per_day) as i64
        };
        let ts =
            start_ns + day * 86_400_000_000_000 + 34_200_000_000_000 + (i % per_day) as i64 * step;
        let a = rnd(ACCTS as u64) as usize;
        let s = rnd(SYMS as u64) as usize;
        cents[s] = (cents[s] + rnd(11) as i64 - 5).max(100);
        let qty = rnd(100) as i64 + 1;
        let buy = next_buy[a][s];
        next_buy[a][s] = !buy;
        out.push(Trade {
            ts: Timestamp::from_nanos(ts),
            account: accounts[a].clone(),
            owner: if owner_is_account {
                accounts[a].clone()
            } else {
                String::new()
            },
            symbol: symbols[s].clone(),
            side: if buy { Side::Buy } else { Side::Sell },
            qty: Decimal::from(qty),
            price: Decimal::new(cents[s], 2),
            fee: Decimal::new(qty * 5, 3),
            lot_ids: Vec::new(),
        });
    }
    out
}
