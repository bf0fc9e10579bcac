//! The soak's order mix: which request order index `i` is, and the bodies it sends.
//!
//! Order `i` goes to account `i % accounts` (round-robin, as in `bench orders`); `v = i / accounts`
//! counts that account's visits, and visit `v` plays slot `v % 20` of [`MIX_CYCLE`]:
//!
//! | kind | per 20 visits | share | what it is | expected answer |
//! |---|---|---|---|---|
//! | `market` | 8 | 40 % | market order, GTC (fills completely) | 201 `filled` |
//! | `ioc-limit` | 4 | 20 % | IOC limit 1 % from the mid, buy below / sell above | 201 `expired` |
//! | `resting` | 3 | 15 % | GTC limit 2 % from the mid (inside the 5 % collar) | 201 `accepted` |
//! | `cancel` | 3 | 15 % | `DELETE /orders/{id}` of this account's oldest resting order | 200 `canceled` |
//! | `reject` | 2 | 10 % | IOC limit 50 % from the mid: far outside the collar | 422 `price_collar` |
//!
//! Resting orders (and so their cancels) go to a companion account `bench-<a>-maker`: the risk
//! engine refuses a market order of an account that has a resting order on the other side
//! (`self_trade`: the market order could fill against it), so market orders and resting orders
//! of one account cannot be mixed. All other kinds use `bench-<a>`.
//!
//! Every kind alternates buy and sell within an account (the n-th order of a kind for an account
//! is a buy when n is even), so each account's position from market orders is always 0 or one
//! order's quantity, and resting orders sit evenly on both sides. A cancel takes the account's
//! oldest resting order, which was placed 6 visits earlier (slots 1->7, 6->12, 11->17), i.e.
//! `6 * accounts` orders earlier, so its answer (and its id) is normally in by then; rests and
//! cancels are equal per cycle, so an account has 0-2 open orders in the steady state.

use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::orders;

/// What one step of the soak sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoakKind {
    Market,
    IocLimit,
    Resting,
    Cancel,
    Reject,
}

impl SoakKind {
    pub const ALL: [SoakKind; 5] = [
        SoakKind::Market,
        SoakKind::IocLimit,
        SoakKind::Resting,
        SoakKind::Cancel,
        SoakKind::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SoakKind::Market => "market",
            SoakKind::IocLimit => "ioc-limit",
            SoakKind::Resting => "resting",
            SoakKind::Cancel => "cancel",
            SoakKind::Reject => "reject",
        }
    }

    /// Position in [`SoakKind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// How many of the [`MIX_CYCLE`]'s slots are this kind.
    pub fn per_cycle(self) -> usize {
        MIX_CYCLE.iter().filter(|k| **k == self).count()
    }
}

use SoakKind::{Cancel as C, IocLimit as I, Market as M, Reject as X, Resting as R};

/// One account's cycle of 20 visits (see the module docs for the shares and the spacing).
pub const MIX_CYCLE: [SoakKind; 20] = [
    M, R, I, M, X, M, R, C, I, M, //
    M, R, C, I, M, X, M, C, I, M,
];

/// Buy (0) or sell (1), the index into a body table's account pair.
pub(crate) const BUY: usize = 0;
pub(crate) const SELL: usize = 1;

/// Appended to `bench-<a>` for the account of the resting orders (see the module docs).
pub const MAKER_SUFFIX: &str = "-maker";

/// How far from the mid each limit kind is priced, as a fraction of the mid.
const IOC_AWAY: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
const RESTING_AWAY: Decimal = Decimal::from_parts(2, 0, 0, false, 2);
const REJECT_AWAY: Decimal = Decimal::from_parts(5, 0, 0, false, 1);

/// The step for order index `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub account: usize,
    pub kind: SoakKind,
    /// [`BUY`] or [`SELL`]; meaningless for a cancel.
    pub side: usize,
}

/// Which account, kind and side order `i` is. `accounts` must be at least 1.
pub(crate) fn plan(i: u64, accounts: usize) -> Step {
    let n_accounts = accounts.max(1) as u64;
    let account = i % n_accounts;
    let visit = i / n_accounts;
    let cycle_len = MIX_CYCLE.len() as u64;
    let cycle = visit / cycle_len;
    // Below 20, so the cast is exact.
    let slot = (visit % cycle_len) as usize;
    let kind = MIX_CYCLE[slot];
    let rank = MIX_CYCLE[..slot].iter().filter(|k| **k == kind).count() as u64;
    let nth = cycle
        .wrapping_mul(kind.per_cycle() as u64)
        .wrapping_add(rank);
    Step {
        // Below `accounts`, so it fits usize.
        account: account as usize,
        kind,
        side: if nth.is_multiple_of(2) { BUY } else { SELL },
    }
}

/// Every body the soak sends, built before the clock starts (and again when the mid moves):
/// each table is laid out `[2 * account + side]`.
#[derive(Debug)]
pub(crate) struct MixBodies {
    pub mid: Decimal,
    market: Vec<Bytes>,
    ioc: Vec<Bytes>,
    resting: Vec<Bytes>,
    reject: Vec<Bytes>,
}

impl MixBodies {
    pub fn build(
        symbol: &str,
        accounts: usize,
        quantity: Decimal,
        mid: Decimal,
    ) -> Result<MixBodies, LoadError> {
        let limit = |suffix, away, tif| {
            orders::limit_bodies(symbol, accounts, suffix, quantity, mid, away, tif)
        };
        Ok(MixBodies {
            mid,
            market: orders::market_bodies(symbol, accounts, "", quantity),
            ioc: limit("", IOC_AWAY, "ioc")?,
            resting: limit(MAKER_SUFFIX, RESTING_AWAY, "gtc")?,
            // IOC, so that with the collar switched off these expire instead of piling up.
            reject: limit("", REJECT_AWAY, "ioc")?,
        })
    }

    /// The `POST /orders` body of a step; `None` for a cancel (a `DELETE` without a body).
    pub fn body(&self, step: Step) -> Option<Bytes> {
        let table = match step.kind {
            SoakKind::Market => &self.market,
            SoakKind::IocLimit => &self.ioc,
            SoakKind::Resting => &self.resting,
            SoakKind::Reject => &self.reject,
            SoakKind::Cancel => return None,
        };
        table.get(2 * step.account + step.side).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &Bytes) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn the_cycle_has_the_documented_shares() {
        let counts: Vec<(SoakKind, usize)> =
            SoakKind::ALL.iter().map(|k| (*k, k.per_cycle())).collect();
        assert_eq!(
            counts,
            [
                (SoakKind::Market, 8),
                (SoakKind::IocLimit, 4),
                (SoakKind::Resting, 3),
                (SoakKind::Cancel, 3),
                (SoakKind::Reject, 2),
            ]
        );
        for (i, k) in SoakKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn a_run_of_whole_cycles_has_exact_proportions_per_account() {
        let accounts = 7;
        let cycles = 5;
        let total = (accounts * MIX_CYCLE.len() * cycles) as u64;
        // [account][kind][side]
        let mut seen = vec![[[0usize; 2]; 5]; accounts];
        for i in 0..total {
            let s = plan(i, accounts);
            assert_eq!(s.account, (i % accounts as u64) as usize);
            seen[s.account][s.kind.index()][s.side] += 1;
        }
        for per_account in &seen {
            for kind in SoakKind::ALL {
                let [buys, sells] = per_account[kind.index()];
                assert_eq!(buys + sells, kind.per_cycle() * cycles, "{kind:?}");
                if kind != SoakKind::Cancel {
                    // 5 cycles of 3 resting orders: 8 buys, 7 sells; even counts split evenly.
                    assert!(
                        buys == sells || buys == sells + 1,
                        "{kind:?} {buys}/{sells}"
                    );
                }
            }
        }
    }

    #[test]
    fn positions_stay_flat_and_cancels_follow_rests_per_account() {
        let accounts = 3;
        let mut position = [0i64; 3];
        // The indices of each account's resting orders, oldest first (the soak cancels FIFO).
        let mut resting: Vec<std::collections::VecDeque<u64>> = vec![Default::default(); 3];
        for i in 0..(accounts as u64 * 20 * 50) {
            let s = plan(i, accounts);
            let a = s.account;
            match s.kind {
                SoakKind::Market => {
                    position[a] += if s.side == BUY { 1 } else { -1 };
                    assert!(
                        position[a] == 0 || position[a] == 1,
                        "account {a} at {}",
                        position[a]
                    );
                }
                SoakKind::Resting => resting[a].push_back(i),
                SoakKind::Cancel => {
                    let placed = resting[a]
                        .pop_front()
                        .expect("a cancel before any resting order");
                    assert_eq!(i - placed, 6 * accounts as u64);
                }
                SoakKind::IocLimit | SoakKind::Reject => {}
            }
            assert!(
                resting[a].len() <= 2,
                "{:?} open on account {a}",
                resting[a]
            );
        }
        assert_eq!(position, [0, 0, 0]);
        assert!(resting.iter().all(|q| q.is_empty()));
    }

    #[test]
    fn bodies_are_priced_exactly_around_the_mid() {
        let mid = Decimal::new(4500012, 2); // 45000.12
        let b = MixBodies::build("BTCUSDT", 2, Decimal::new(1, 3), mid).unwrap();
        let step = |kind, account, side| Step {
            account,
            kind,
            side,
        };

        let market = parse(&b.body(step(SoakKind::Market, 1, SELL)).unwrap());
        assert_eq!(market["account"], "bench-1");
        assert_eq!(market["side"], "sell");
        assert_eq!(market["type"], "market");
        assert_eq!(market["quantity"], "0.001");
        assert!(market.get("price").is_none());
        assert!(market.get("time_in_force").is_none(), "GTC by default");

        let ioc = parse(&b.body(step(SoakKind::IocLimit, 0, BUY)).unwrap());
        assert_eq!(ioc["time_in_force"], "ioc");
        assert_eq!(ioc["account"], "bench-0");
        assert_eq!(ioc["price"], "44550.1188"); // 45000.12 * 0.99

        let rest_buy = parse(&b.body(step(SoakKind::Resting, 0, BUY)).unwrap());
        let rest_sell = parse(&b.body(step(SoakKind::Resting, 1, SELL)).unwrap());
        assert_eq!(rest_buy["type"], "limit");
        assert_eq!(rest_buy["time_in_force"], "gtc");
        assert_eq!(rest_buy["side"], "buy");
        assert_eq!(rest_buy["price"], "44100.1176"); // * 0.98
        assert_eq!(rest_buy["account"], "bench-0-maker");
        assert_eq!(rest_sell["account"], "bench-1-maker");
        assert_eq!(rest_sell["price"], "45900.1224"); // * 1.02

        let reject_buy = parse(&b.body(step(SoakKind::Reject, 0, BUY)).unwrap());
        let reject_sell = parse(&b.body(step(SoakKind::Reject, 0, SELL)).unwrap());
        assert_eq!(reject_buy["price"], "22500.06"); // * 0.5
        assert_eq!(reject_sell["price"], "67500.18"); // * 1.5
        assert_eq!(reject_sell["time_in_force"], "ioc");
        assert_eq!(reject_sell["account"], "bench-0");

        assert!(b.body(step(SoakKind::Cancel, 0, BUY)).is_none());
        assert!(
            b.body(step(SoakKind::Market, 2, BUY)).is_none(),
            "no account 2"
        );
        assert_eq!(b.mid, mid);
    }

    #[test]
    fn the_first_cycle_of_one_account_follows_the_table() {
        let kinds: Vec<&str> = (0..20).map(|i| plan(i, 1).kind.as_str()).collect();
        assert_eq!(
            kinds.join(" "),
            "market resting ioc-limit market reject market resting cancel ioc-limit market \
             market resting cancel ioc-limit market reject market cancel ioc-limit market"
        );
        // Sides alternate per kind: markets buy, sell, buy, ...; the 3 resting buy, sell, buy
        // and the next cycle's first resting order sells.
        let market_sides: Vec<usize> = (0..20)
            .map(|i| plan(i, 1))
            .filter(|s| s.kind == SoakKind::Market)
            .map(|s| s.side)
            .collect();
        assert_eq!(market_sides, [0, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(plan(1, 1).side, BUY);
        assert_eq!(plan(6, 1).side, SELL);
        assert_eq!(plan(11, 1).side, BUY);
        assert_eq!(plan(21, 1).side, SELL);
    }
}
