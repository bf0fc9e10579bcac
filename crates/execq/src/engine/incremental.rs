//! Running aggregates maintained per record.
//!
//! Every aggregate is a function of [`Sums`], and a group's sums are the plain sum of its
//! orders' sums. An order's sums split in two parts:
//!
//! * the part fixed by its own records: fill-level sums, resolved realized-spread horizons,
//!   order counts, and (once its end snapshot is taken) its shortfall, VWAP and participation.
//!   This lives in [`Groups`]. When a record changes an order, the difference between its
//!   contribution after and before is added (O(1) per record); an evicted order's final sums
//!   simply stay there.
//! * the part a report measures "to the end of the data" while the order is held: it moves
//!   with its symbol's current mid and tape. Shortfall of the unfilled part (`s*u*(M - Pd)`),
//!   realized-spread lookups still waiting (`q*2s*(P - M)`) and the participation of orders
//!   without executions (`tape now - tape at receipt`) are linear in the mid / tape volume, so
//!   per aggregation cell they are kept as linear forms ([`LinForm`]) and evaluated when the
//!   aggregates are asked for.
//!
//! The one exception is the VWAP slippage (and participation) of a working order that has
//! executions: `X * N/Q` over the order's own tape interval is not linear in the symbol's tape
//! totals, so [`super::ExecQuality::aggregates`] measures each such order (bounded by the
//! working orders with fills, never by history).
//!
//! Exactness: the decimal sums are exact (rust_decimal), so adding the same terms in another
//! order or as `M*sum(a) - sum(b)` gives the same value, as long as no intermediate result needs
//! more than 28 significant digits (then rust_decimal rounds, and the batch report itself
//! depends on its summation order).

use std::collections::BTreeMap;

use model::{Decimal, Side};
use serde::{Deserialize, Serialize};

use super::settle::PendingFill;
use super::{OrderState, SymState, usable};
use crate::params::{IsBpsDenominator, Params, Resolved, RsEndOfData};
use crate::report::{Aggregates, OrderClass, SIZE_BUCKETS};
use crate::stats::{HorizonSums, Stats, Sums};

/// The finest aggregation cell: every grouping key of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) struct CellKey {
    pub account: u32,
    pub sym: u32,
    pub class: OrderClass,
    pub bucket: u8,
    pub liq: u8,
    pub window: i64,
}

/// One order's contribution (see the module docs).
pub(super) struct Contrib {
    pub fixed: Sums,
    pub lin: LinForm,
    pub pass: bool,
    pub liq: u8,
}

/// Waiting realized-spread lookups of one horizon, linear in the mid `M` they resolve at:
/// `q`, `rs = s2qp - M*s2q`, `es`, `mid`, `mid_h = M*q`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HorizonLin {
    pub q: Decimal,
    pub s2qp: Decimal,
    pub s2q: Decimal,
    pub q_es: Decimal,
    pub q_mid: Decimal,
}

fn signed(side: Side, x: Decimal) -> Decimal {
    match side {
        Side::Buy => x,
        Side::Sell => Decimal::ZERO - x, // no negative zero (see `OrderState::signed`)
    }
}

impl HorizonLin {
    pub fn of(side: Side, f: &PendingFill) -> HorizonLin {
        let two_q = Decimal::TWO * f.q;
        let (q_es, q_mid) = f.es_terms(side);
        HorizonLin {
            q: f.q,
            s2qp: signed(side, two_q * f.price),
            s2q: signed(side, two_q),
            q_es,
            q_mid,
        }
    }

    pub fn add(&mut self, o: &HorizonLin) {
        self.q += o.q;
        self.s2qp += o.s2qp;
        self.s2q += o.s2q;
        self.q_es += o.q_es;
        self.q_mid += o.q_mid;
    }

    pub fn sub(&mut self, o: &HorizonLin) {
        self.q -= o.q;
        self.s2qp -= o.s2qp;
        self.s2q -= o.s2q;
        self.q_es -= o.q_es;
        self.q_mid -= o.q_mid;
    }
}

/// The market-dependent part of a cell's held orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LinForm {
    /// Shortfall of orders valued at the current mid (`u != 0`): present only while the symbol
    /// has a usable quote. `su = sum s*u`, `su_pd = sum s*u*Pd`; the Wagner sums over the
    /// orders with an arrival price.
    is_n: u64,
    is_wagner_n: u64,
    is_exec: Decimal,
    is_fees: Decimal,
    is_den: Decimal,
    is_su: Decimal,
    is_su_pd: Decimal,
    is_delay: Decimal,
    is_trading: Decimal,
    is_su_w: Decimal,
    is_su_p0: Decimal,
    /// Working orders without executions: participation tape `part_n * Q - part_q0`.
    part_n: u64,
    part_q0: Decimal,
    /// Waiting lookups per horizon.
    pub pend: Vec<HorizonLin>,
}

impl LinForm {
    pub fn is_empty(&self) -> bool {
        self.is_n == 0 && self.part_n == 0 && self.pend.iter().all(|h| h.q.is_zero())
    }

    /// The shortfall of `o` with decision price `pd`, valued at a mid to come.
    pub fn add_shortfall(&mut self, o: &OrderState, pd: Decimal, p: &Params) {
        let x = o.executed;
        let notional = o.sums.exec_notional;
        let u = o.qty - x;
        self.is_n += 1;
        self.is_exec += o.signed(notional - x * pd);
        if p.is_include_fees {
            self.is_fees += o.sums.fees;
        }
        self.is_den += match p.is_bps_denominator {
            IsBpsDenominator::Paper => o.qty * pd,
            IsBpsDenominator::Executed => notional,
        };
        self.is_su += o.signed(u);
        self.is_su_pd += o.signed(u * pd);
        if let Some(q) = o.receipt {
            let p0 = q.mid();
            self.is_wagner_n += 1;
            self.is_delay += o.signed(o.qty * (p0 - pd));
            self.is_trading += o.signed(notional - x * p0);
            self.is_su_w += o.signed(u);
            self.is_su_p0 += o.signed(u * p0);
        }
    }

    pub fn add_unfilled_tape(&mut self, q0: Decimal) {
        self.part_n += 1;
        self.part_q0 += q0;
    }

    pub fn add(&mut self, o: &LinForm) {
        self.combine(o, |a, b| *a += b, |a, b| *a = a.wrapping_add(b));
        if self.pend.len() < o.pend.len() {
            self.pend.resize(o.pend.len(), HorizonLin::default());
        }
        for (a, b) in self.pend.iter_mut().zip(&o.pend) {
            a.add(b);
        }
    }

    pub fn sub(&mut self, o: &LinForm) {
        self.combine(o, |a, b| *a -= b, |a, b| *a = a.wrapping_sub(b));
        if self.pend.len() < o.pend.len() {
            self.pend.resize(o.pend.len(), HorizonLin::default());
        }
        for (a, b) in self.pend.iter_mut().zip(&o.pend) {
            a.sub(b);
        }
    }

    fn combine(
        &mut self,
        o: &LinForm,
        dec: impl Fn(&mut Decimal, Decimal),
        cnt: impl Fn(&mut u64, u64),
    ) {
        cnt(&mut self.is_n, o.is_n);
        cnt(&mut self.is_wagner_n, o.is_wagner_n);
        dec(&mut self.is_exec, o.is_exec);
        dec(&mut self.is_fees, o.is_fees);
        dec(&mut self.is_den, o.is_den);
        dec(&mut self.is_su, o.is_su);
        dec(&mut self.is_su_pd, o.is_su_pd);
        dec(&mut self.is_delay, o.is_delay);
        dec(&mut self.is_trading, o.is_trading);
        dec(&mut self.is_su_w, o.is_su_w);
        dec(&mut self.is_su_p0, o.is_su_p0);
        cnt(&mut self.part_n, o.part_n);
        dec(&mut self.part_q0, o.part_q0);
    }

    /// The sums these orders add now, given their symbol's state (`None`: nothing).
    pub fn eval(&self, sym: &SymState, r: &Resolved) -> Option<Sums> {
        let mid = usable(sym.cur, r.p.crossed_quote).map(|q| q.mid());
        let mut s = Sums::default();
        let mut any = false;
        if self.is_n > 0
            && let Some(m) = mid
        {
            let opp = m * self.is_su - self.is_su_pd;
            s.is_orders = self.is_n;
            s.is_wagner_orders = self.is_wagner_n;
            s.is_execution = self.is_exec;
            s.is_opportunity = opp;
            s.is_fees = self.is_fees;
            s.is_total = self.is_exec + opp + self.is_fees;
            s.is_denominator = self.is_den;
            s.is_delay = self.is_delay;
            s.is_trading = self.is_trading;
            s.is_opportunity_arrival = m * self.is_su_w - self.is_su_p0;
            any = true;
        }
        if self.part_n > 0 {
            s.part_tape = Decimal::from(self.part_n) * sym.tape_q - self.part_q0;
            any = true;
        }
        if r.p.rs_end_of_data == RsEndOfData::LastQuote
            && let Some(m) = mid
            && self.pend.iter().any(|h| !h.q.is_zero())
        {
            s.horizons = self
                .pend
                .iter()
                .map(|h| HorizonSums {
                    q: h.q,
                    rs: h.s2qp - m * h.s2q,
                    es: h.q_es,
                    mid: h.q_mid,
                    mid_h: m * h.q,
                })
                .collect();
            any = true;
        }
        any.then_some(s)
    }
}

/// Running sums per key of each grouping (keys as engine indices; labelled on output).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Groups {
    overall: Sums,
    #[serde(with = "pairs")]
    by_account: BTreeMap<u32, Sums>,
    #[serde(with = "pairs")]
    by_symbol: BTreeMap<u32, Sums>,
    #[serde(with = "pairs")]
    by_class: BTreeMap<OrderClass, Sums>,
    #[serde(with = "pairs")]
    by_bucket: BTreeMap<u8, Sums>,
    #[serde(with = "pairs")]
    by_liquidity: BTreeMap<u8, Sums>,
    #[serde(with = "pairs")]
    by_window: BTreeMap<i64, Sums>,
}

impl Groups {
    pub fn new(horizons: usize) -> Groups {
        Groups {
            overall: Sums::with_horizons(horizons),
            by_account: BTreeMap::new(),
            by_symbol: BTreeMap::new(),
            by_class: BTreeMap::new(),
            by_bucket: BTreeMap::new(),
            by_liquidity: BTreeMap::new(),
            by_window: BTreeMap::new(),
        }
    }

    pub fn keys(&self) -> usize {
        self.by_account.len()
            + self.by_symbol.len()
            + self.by_class.len()
            + self.by_bucket.len()
            + self.by_liquidity.len()
            + self.by_window.len()
    }

    /// Apply `f` to the overall sums and the entry of each grouping of `cell`.
    fn each(&mut self, cell: &CellKey, mut f: impl FnMut(&mut Sums)) {
        f(&mut self.overall);
        f(self.by_account.entry(cell.account).or_default());
        f(self.by_symbol.entry(cell.sym).or_default());
        f(self.by_class.entry(cell.class).or_default());
        f(self.by_bucket.entry(cell.bucket).or_default());
        f(self.by_liquidity.entry(cell.liq).or_default());
        f(self.by_window.entry(cell.window).or_default());
    }

    pub fn add(&mut self, cell: &CellKey, s: &Sums) {
        self.each(cell, |g| g.add(s));
    }

    /// Add sums that count no orders (a live evaluation) to the groups of `cell`.
    pub fn add_at(&mut self, cell: &CellKey, s: &Sums) {
        self.add(cell, s);
    }

    pub fn add_horizon(&mut self, cell: &CellKey, k: usize, h: &HorizonSums) {
        self.each(cell, |g| {
            if g.horizons.len() <= k {
                g.horizons.resize(k + 1, HorizonSums::default());
            }
            let a = &mut g.horizons[k];
            a.q += h.q;
            a.rs += h.rs;
            a.es += h.es;
            a.mid += h.mid;
            a.mid_h += h.mid_h;
        });
    }

    /// One order's contribution changes from `old` (in `cell_old`) to `new` (in `cell_new`);
    /// the cells differ at most in the liquidity flag.
    pub fn replace(&mut self, cell_old: &CellKey, old: &Sums, cell_new: &CellKey, new: &Sums) {
        let mut d = new.clone();
        d.sub_wrapping(old);
        self.overall.add_wrapping(&d);
        let c = cell_new;
        self.by_account
            .entry(c.account)
            .or_default()
            .add_wrapping(&d);
        self.by_symbol.entry(c.sym).or_default().add_wrapping(&d);
        self.by_class.entry(c.class).or_default().add_wrapping(&d);
        self.by_bucket.entry(c.bucket).or_default().add_wrapping(&d);
        self.by_window.entry(c.window).or_default().add_wrapping(&d);
        if cell_old.liq == cell_new.liq {
            self.by_liquidity.entry(c.liq).or_default().add_wrapping(&d);
        } else {
            if let Some(g) = self.by_liquidity.get_mut(&cell_old.liq) {
                g.sub_wrapping(old);
                if g.orders == 0 {
                    self.by_liquidity.remove(&cell_old.liq);
                }
            }
            self.by_liquidity.entry(cell_new.liq).or_default().add(new);
        }
    }

    pub fn to_aggregates(
        &self,
        r: &Resolved,
        account: impl Fn(u32) -> String,
        symbol: impl Fn(u32) -> String,
        window: impl Fn(i64) -> String,
    ) -> Aggregates {
        Aggregates {
            overall: Stats::from_sums(&self.overall, r),
            by_account: labelled(&self.by_account, account, r),
            by_symbol: labelled(&self.by_symbol, symbol, r),
            by_order_class: labelled(&self.by_class, |c| c.as_str().to_string(), r),
            by_size_bucket: labelled(
                &self.by_bucket,
                |b| {
                    SIZE_BUCKETS
                        .get(usize::from(b))
                        .copied()
                        .unwrap_or("unknown")
                        .to_string()
                },
                r,
            ),
            by_liquidity: labelled(
                &self.by_liquidity,
                |l| super::liquidity_of(l).to_string(),
                r,
            ),
            by_time_window: labelled(&self.by_window, window, r),
        }
    }
}

/// Stats per label; keys with the same label (an account named `(none)` and no account) are
/// one group, as in the batch report.
fn labelled<K: Copy>(
    m: &BTreeMap<K, Sums>,
    label: impl Fn(K) -> String,
    r: &Resolved,
) -> BTreeMap<String, Stats> {
    let mut by: BTreeMap<String, Sums> = BTreeMap::new();
    for (k, s) in m {
        match by.entry(label(*k)) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().add(s),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(s.clone());
            }
        }
    }
    by.into_iter()
        .map(|(k, s)| (k, Stats::from_sums(&s, r)))
        .collect()
}

/// Maps as sequences of pairs: JSON object keys must be strings.
pub(super) mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
