//! Realized-spread lookups and the second stage of eviction.
//!
//! Every fill with a benchmark quote waits once per horizon for the mid at `t_e + h`. The fills
//! wait in one queue in fill order ([`Lookups`]); a horizon's lookups resolve in that order (its
//! targets do not decrease with `t_e`, and where a session close makes one decrease, the later
//! fill waits behind the earlier one, as a per-horizon queue would), so each horizon keeps only
//! how many fills at the front it has resolved. A fill leaves the queue once every horizon has
//! resolved it.
//!
//! An order whose row is final except for waiting lookups becomes a [`Settling`] record (see
//! [`crate::pending`]): its id, its aggregation cell, its side, how many lookups wait and, per
//! horizon, `sum q*M` of those resolved since. Its fills' lookups go on resolving into it.

use std::collections::VecDeque;
use std::sync::Arc;

use model::{Decimal, Side};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::incremental::{CellKey, HorizonLin};
use super::{ExecQuality, N_RS_BEYOND, OrderState, ReportFilter, signed, usable};
use crate::params::RsEndOfData;
use crate::pending::{PendingHorizon, SpreadUpdate};
use crate::report::OrderClass;
use crate::stats::HorizonSums;

/// A fill whose realized-spread lookups wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingFill {
    pub t_e: i64,
    /// The order's slot (held in full or settling until every lookup of its fills resolved).
    pub slot: u32,
    pub price: Decimal,
    pub q: Decimal,
    /// The benchmark mid of the fill's effective spread.
    pub bench: Decimal,
}

impl PendingFill {
    /// `q * ES` and `q * M_benchmark`, computed as the fill computed them.
    pub fn es_terms(&self, side: Side) -> (Decimal, Decimal) {
        let es = signed(side, Decimal::TWO * (self.price - self.bench));
        (self.q * es, self.q * self.bench)
    }
}

/// The waiting fills and, per horizon, how many fills at the front it has resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lookups {
    pub fills: VecDeque<PendingFill>,
    pub done: Vec<usize>,
}

impl Lookups {
    pub fn new(horizons: usize) -> Lookups {
        Lookups {
            fills: VecDeque::new(),
            done: vec![0; horizons],
        }
    }

    /// Lookups waiting, all horizons together.
    pub fn waiting(&self) -> usize {
        self.done
            .iter()
            .map(|&d| self.fills.len().saturating_sub(d))
            .sum()
    }

    /// The fills still waiting for horizon `k`.
    pub fn waiting_for(&self, k: usize) -> impl Iterator<Item = &PendingFill> {
        let from = self.done.get(k).copied().unwrap_or(self.fills.len());
        self.fills.range(from.min(self.fills.len())..)
    }

    /// Drops the fills every horizon has resolved.
    pub fn trim(&mut self) {
        let all = self.done.iter().copied().min().unwrap_or(0);
        if all > 0 {
            self.fills.drain(..all);
            for d in &mut self.done {
                *d -= all;
            }
        }
    }
}

/// Snapshot form: fills as arrays, `t_e` as the difference to the previous fill (fills are in
/// time order), so a fill costs about 40 bytes of JSON.
#[derive(Serialize, Deserialize)]
struct LookupsSnap {
    done: Vec<usize>,
    fills: Vec<(i64, u32, Decimal, Decimal, Decimal)>,
}

impl Serialize for Lookups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut prev = 0i64;
        LookupsSnap {
            done: self.done.clone(),
            fills: self
                .fills
                .iter()
                .map(|f| {
                    let dt = f.t_e.wrapping_sub(prev);
                    prev = f.t_e;
                    (dt, f.slot, f.price, f.q, f.bench)
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Lookups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let snap = LookupsSnap::deserialize(d)?;
        let mut prev = 0i64;
        let fills = snap
            .fills
            .into_iter()
            .map(|(dt, slot, price, q, bench)| {
                prev = prev.wrapping_add(dt);
                PendingFill {
                    t_e: prev,
                    slot,
                    price,
                    q,
                    bench,
                }
            })
            .collect();
        Ok(Lookups {
            fills,
            done: snap.done,
        })
    }
}

/// A finished order whose row went out with realized-spread lookups waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settling {
    pub id: Arc<str>,
    pub cell: CellKey,
    pub side: Side,
    /// Lookups still waiting.
    pub left: u32,
    /// Per horizon, `sum q*M` over the lookups resolved since the row went out.
    pub mid_q: Box<[Decimal]>,
    /// Per horizon (empty until one happens), the lookups that resolved without a usable
    /// quote.
    pub missed: Box<[PendingHorizon]>,
}

impl Settling {
    pub fn of(o: &OrderState, horizons: usize) -> Settling {
        Settling {
            id: o.id.clone(),
            cell: o.cell(o.liq),
            side: o.side,
            left: o.pending_n,
            mid_q: vec![Decimal::ZERO; horizons].into_boxed_slice(),
            missed: Box::new([]),
        }
    }

    pub fn miss(&mut self, k: usize, p: &PendingHorizon) {
        if self.missed.is_empty() {
            self.missed = vec![PendingHorizon::default(); self.mid_q.len()].into_boxed_slice();
        }
        if let Some(m) = self.missed.get_mut(k) {
            m.add(p);
        }
    }

    pub fn update(&self) -> SpreadUpdate {
        SpreadUpdate {
            order_id: self.id.clone(),
            mid_q: self.mid_q.clone(),
            missed: self.missed.clone(),
            notes: 0,
            waiting: self.left,
        }
    }
}

/// Snapshot form of [`Settling`]: an array, the order class and side as numbers (about 60
/// bytes of JSON per order: a snapshot holds hundreds of thousands of them).
type SettlingSnap = (
    String,
    u32,
    u32,
    u8,
    u8,
    u8,
    i64,
    u8,
    u32,
    Vec<Decimal>,
    Vec<PendingHorizon>,
);

/// Order classes by their number in a snapshot.
const CLASSES: [OrderClass; 8] = [
    OrderClass::Market,
    OrderClass::MarketableLimit,
    OrderClass::InsideTheQuote,
    OrderClass::AtTheQuote,
    OrderClass::NearTheQuote,
    OrderClass::AwayFromQuote,
    OrderClass::Stop,
    OrderClass::Unclassified,
];

impl Serialize for Settling {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.cell;
        let class = CLASSES.iter().position(|x| *x == c.class).unwrap_or(0) as u8;
        (
            &*self.id,
            c.account,
            c.sym,
            class,
            c.bucket,
            c.liq,
            c.window,
            u8::from(self.side == Side::Sell),
            self.left,
            &*self.mid_q,
            &*self.missed,
        )
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Settling {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (id, account, sym, class, bucket, liq, window, side, left, mid_q, missed) =
            SettlingSnap::deserialize(d)?;
        if left == 0 {
            return Err(D::Error::custom("a settling order with no lookup waiting"));
        }
        let class = *CLASSES
            .get(usize::from(class))
            .ok_or_else(|| D::Error::custom("order class out of range"))?;
        let side = match side {
            0 => Side::Buy,
            1 => Side::Sell,
            _ => return Err(D::Error::custom("side out of range")),
        };
        Ok(Settling {
            id: Arc::from(id),
            cell: CellKey {
                account,
                sym,
                class,
                bucket,
                liq,
                window,
            },
            side,
            left,
            mid_q: mid_q.into_boxed_slice(),
            missed: missed.into_boxed_slice(),
        })
    }
}

/// A slot of the order table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Slot {
    /// Working, or finished within the late-fill grace.
    #[serde(rename = "f")]
    Full(Box<OrderState>),
    /// Finished, its row out, realized-spread lookups waiting.
    #[serde(rename = "s")]
    Settling(Settling),
}

/// Output not yet drained, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Undrained {
    /// An order that left the full table (its row, with `pending_spreads` if lookups wait).
    Row(Box<OrderState>),
    Update(SpreadUpdate),
}

/// The sums a waiting lookup will add apart from its mid.
pub(super) fn static_part(side: Side, f: &PendingFill) -> PendingHorizon {
    let lin = HorizonLin::of(side, f);
    PendingHorizon {
        shares: lin.q,
        signed_2qp: lin.s2qp,
        q_es: lin.q_es,
        q_mid: lin.q_mid,
    }
}

/// One fill's realized spread at horizon mid `mid_h`, added to `h`.
pub(super) fn add_horizon(h: &mut HorizonSums, side: Side, f: &PendingFill, mid_h: Decimal) {
    let (q_es, q_mid) = f.es_terms(side);
    let rs = signed(side, Decimal::TWO * (f.price - mid_h));
    h.q += f.q;
    h.rs += f.q * rs;
    h.es += q_es;
    h.mid += q_mid;
    h.mid_h += f.q * mid_h;
}

impl ExecQuality {
    /// The views of the settling orders `filter` keeps by account and symbol (and, by their
    /// time window, roughly by time: a caller matches them to rows by id), in order-id order:
    /// each, applied to the order's stored row ([`crate::RowUpdater::apply`]), gives the row
    /// as of now, as the batch report would give it (waiting lookups take `rs_end_of_data`).
    /// Together with the stored rows and [`ExecQuality::held_rows`], every order seen.
    pub fn spread_views(&self, filter: &ReportFilter) -> Vec<SpreadUpdate> {
        let window_from = filter.from.map(|t| self.window_code(t.as_nanos()));
        let window_to = filter
            .to
            .map(|t| self.window_code(t.as_nanos().saturating_sub(1)));
        let mut at: Vec<Option<u32>> = vec![None; self.orders.len()];
        let mut out: Vec<SpreadUpdate> = Vec::new();
        for (ix, slot) in self.orders.iter().enumerate() {
            let Some(Slot::Settling(s)) = slot else {
                continue;
            };
            let c = &s.cell;
            let account = self.accounts.get(c.account as usize).map(String::as_str);
            let keep = filter.account.as_deref().is_none_or(|a| account == Some(a))
                && filter
                    .symbol
                    .as_deref()
                    .is_none_or(|x| self.syms.get(c.sym as usize).is_some_and(|s| s.name == x))
                && window_from.is_none_or(|w| c.window >= w)
                && window_to.is_none_or(|w| c.window <= w);
            if keep {
                at[ix] = Some(out.len() as u32);
                out.push(s.update());
            }
        }
        self.views_to_now(&mut out, |slot| at.get(slot).copied().flatten());
        out.sort_unstable_by(|a, b| a.order_id.cmp(&b.order_id));
        out
    }

    /// [`ExecQuality::spread_views`] of one order: `None` unless it is settling.
    pub fn spread_view(&self, order_id: &str) -> Option<SpreadUpdate> {
        let ix = self.order_ix.get(order_id, &self.orders)?;
        let Some(Some(Slot::Settling(s))) = self.orders.get(ix as usize) else {
            return None;
        };
        let mut out = vec![s.update()];
        self.views_to_now(&mut out, |slot| (slot == ix as usize).then_some(0));
        out.pop()
    }

    /// Resolves the waiting lookups of the views' orders by `rs_end_of_data` (`index` maps a
    /// slot to its view).
    fn views_to_now(&self, views: &mut [SpreadUpdate], index: impl Fn(usize) -> Option<u32>) {
        for k in 0..self.lookups.done.len() {
            for f in self.lookups.waiting_for(k) {
                let Some(v) = index(f.slot as usize).and_then(|i| views.get_mut(i as usize)) else {
                    continue;
                };
                let Some(Some(Slot::Settling(s))) = self.orders.get(f.slot as usize) else {
                    continue;
                };
                let mid = match self.r.p.rs_end_of_data {
                    RsEndOfData::Exclude => None,
                    RsEndOfData::LastQuote => self
                        .syms
                        .get(s.cell.sym as usize)
                        .and_then(|x| usable(x.cur, self.r.p.crossed_quote))
                        .map(|q| q.mid()),
                };
                match mid {
                    Some(m) => {
                        if let Some(x) = v.mid_q.get_mut(k) {
                            *x += f.q * m;
                        }
                    }
                    None => {
                        if v.missed.is_empty() {
                            v.missed =
                                vec![PendingHorizon::default(); v.mid_q.len()].into_boxed_slice();
                        }
                        if let Some(m) = v.missed.get_mut(k) {
                            m.add(&static_part(s.side, f));
                        }
                        v.notes |= N_RS_BEYOND;
                    }
                }
            }
        }
    }
}
