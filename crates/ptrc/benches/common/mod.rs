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

/// The long-only input of the issue-5 tax bench (`form_8949_1M_trades_wash_sales`):
/// 1,000,000 trades over 500 trading days from 2023-01-02, 100 owners x 2 accounts, 200 symbols.
#[allow(dead_code)] // the P&L bench does not use it
pub fn long_only_trades() -> Vec<Trade> {
    const LONG_TRADES: usize = 1_000_000;
    const OWNERS: usize = 100;
    const SYMBOLS: usize = 200;
    const DAYS: usize = 500;
    let accounts: Vec<(String, String)> = (0..OWNERS * 2)
        .map(|i| (format!("acct{i:03}"), format!("owner{:03}", i / 2)))
        .collect();
    let symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("SYM{i:03}")).collect();
    let mut cents: Vec<i64> = (0..SYMBOLS as i64).map(|i| 5_000 + 50 * i).collect();
    let mut held = vec![0i64; OWNERS * 2 * SYMBOLS];
    let mut rnd = xorshift(0x2545_F491_4F6C_DD1D);
    let start = 1_672_617_600_000_000_000_i64; // 2023-01-02T00:00:00Z
    let per_day = LONG_TRADES / DAYS;
    let step = 23_400_000_000_000_i64 / per_day as i64;
    let fee_per_share = Decimal::new(5, 3);
    let mut out = Vec::with_capacity(LONG_TRADES);
    for i in 0..LONG_TRADES {
        let day = (i / per_day) as i64;
        let ts =
            start + day * 86_400_000_000_000 + 34_200_000_000_000 + (i % per_day) as i64 * step;
        let a = rnd((OWNERS * 2) as u64) as usize;
        let s = rnd(SYMBOLS as u64) as usize;
        // Random walk; odd symbols drift down so that many sales are losses.
        let drift = if s % 2 == 1 { -1 } else { 0 };
        cents[s] = (cents[s] + rnd(41) as i64 - 20 + drift).max(100);
        let h = &mut held[a * SYMBOLS + s];
        let q = rnd(100) as i64 + 1;
        let (side, qty) = if *h > 0 && rnd(2) == 0 {
            (Side::Sell, q.min(*h))
        } else {
            (Side::Buy, q)
        };
        *h += if side == Side::Buy { qty } else { -qty };
        let qty = Decimal::from(qty);
        out.push(Trade {
            ts: Timestamp::from_nanos(ts),
            account: accounts[a].0.clone(),
            owner: accounts[a].1.clone(),
            symbol: symbols[s].clone(),
            side,
            qty,
            price: Decimal::new(cents[s], 2),
            fee: qty * fee_per_share,
            lot_ids: Vec::new(),
        });
    }
    out
}
