//! Rows whose realized-spread lookups still wait, and the updates that complete them.
//!
//! With eviction on, an order leaves the engine in two stages (see
//! [`crate::ExecQuality::set_eviction`]). Once its row is final except for realized-spread
//! lookups waiting for their horizon (up to the longest horizon, 5 minutes by default, after
//! its last fill), the engine emits the row ([`RowChange::Row`]) with those lookups left out of
//! its sums and described in [`OrderQuality::pending_spreads`], frees the order's state and
//! keeps only a compact record per order and per waiting fill. When the order's last lookup
//! resolves, the engine emits a [`SpreadUpdate`] ([`RowChange::Update`]); [`RowUpdater::apply`]
//! turns the stored row into the final one, equal to the batch row.
//!
//! Until then [`crate::ExecQuality::spread_views`] gives, per such order, the update that shows
//! the row as of now (resolved lookups with their mids, waiting ones by `rs_end_of_data`, as
//! the batch report at this point would): stored rows plus these views plus the held rows are
//! every order seen, each once, as the batch [`crate::compute`] reports them.
//!
//! Why the stored row carries the waiting lookups' sums: the update then needs, per horizon,
//! only `sum q*M(t_e + h)` over the lookups resolved since (the rest is linear in the fills
//! already in the row), so the engine's record of a finished order is a few numbers.

use std::sync::Arc;

use model::{Decimal, Side};
use serde::{Deserialize, Serialize};

use crate::ExecqError;
use crate::params::{Params, Resolved};
use crate::report::{NOTES, OrderQuality, static_name};
use crate::stats::Stats;

/// The sums of one horizon's realized-spread lookups still waiting when a row was emitted:
/// everything they will add to the row's horizon sums except what depends on the mid at their
/// targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHorizon {
    /// `sum q` over the waiting fills.
    pub shares: Decimal,
    /// `sum s*2*q*P` (`s` = +1 buy, -1 sell).
    pub signed_2qp: Decimal,
    /// `sum q*ES` (the fills' effective spreads).
    pub q_es: Decimal,
    /// `sum q*M` (the fills' benchmark mids).
    pub q_mid: Decimal,
}

impl PendingHorizon {
    pub(crate) fn add(&mut self, o: &PendingHorizon) {
        self.shares += o.shares;
        self.signed_2qp += o.signed_2qp;
        self.q_es += o.q_es;
        self.q_mid += o.q_mid;
    }

    pub(crate) fn sub(&mut self, o: &PendingHorizon) {
        self.shares -= o.shares;
        self.signed_2qp -= o.signed_2qp;
        self.q_es -= o.q_es;
        self.q_mid -= o.q_mid;
    }
}

/// The realized-spread lookups of a row that were still waiting when it was emitted (stored
/// form only: [`OrderQuality::to_stored_json`]). The row's sums and statistics leave them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSpreads {
    /// Lookups waiting (fills times horizons).
    pub lookups: u32,
    /// One entry per horizon, in the order of the row's horizon sums.
    pub horizons: Vec<PendingHorizon>,
}

/// Completes (or, as a view, brings up to now) a stored row whose realized-spread lookups were
/// waiting ([`RowUpdater::apply`]).
///
/// The engine emits a row once only those lookups can change it (the late-fill grace has
/// passed since the order ended) and keeps, per order, its id, aggregation cell, side, the
/// number of lookups left and, per horizon, `sum q*M(t_e + h)` of those resolved since; the
/// rest of what they add to the row is linear in the fills and travels in the row
/// ([`PendingSpreads`]). The final update goes out with the order's last lookup
/// ([`crate::ExecQuality::drain_rows`]); [`crate::ExecQuality::spread_views`] gives views of
/// the orders still waiting, the way the batch report would show them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadUpdate {
    pub(crate) order_id: Arc<str>,
    /// Per horizon, `sum q*M` over the waiting lookups that resolved with a mid `M`.
    pub(crate) mid_q: Box<[Decimal]>,
    /// Per horizon (or empty), the sums of the waiting lookups that resolved without a usable
    /// quote: they stay out of the row.
    pub(crate) missed: Box<[PendingHorizon]>,
    /// Notes bits the update adds (`realized_spread_beyond_data` in a view).
    pub(crate) notes: u32,
    /// Lookups still waiting (0 for the final update; a view resolves them by
    /// `rs_end_of_data`).
    pub(crate) waiting: u32,
}

/// Serde form of [`SpreadUpdate`] (engine snapshots hold undrained updates).
#[derive(Serialize, Deserialize)]
struct UpdateSnap {
    order_id: String,
    mid_q: Vec<Decimal>,
    missed: Vec<PendingHorizon>,
    notes: u32,
    waiting: u32,
}

impl Serialize for SpreadUpdate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        UpdateSnap {
            order_id: self.order_id.to_string(),
            mid_q: self.mid_q.to_vec(),
            missed: self.missed.to_vec(),
            notes: self.notes,
            waiting: self.waiting,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SpreadUpdate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let u = UpdateSnap::deserialize(d)?;
        Ok(SpreadUpdate {
            order_id: Arc::from(u.order_id),
            mid_q: u.mid_q.into_boxed_slice(),
            missed: u.missed.into_boxed_slice(),
            notes: u.notes,
            waiting: u.waiting,
        })
    }
}

impl SpreadUpdate {
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// Whether this is the order's final update (every lookup resolved), not a view of now.
    pub fn is_final(&self) -> bool {
        self.waiting == 0
    }
}

/// What the engine hands to a row store, in order: a row of an order that left the engine, or
/// the update completing a row emitted earlier ([`crate::ExecQuality::drain_rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// Insert or replace the row with this order id. Final unless
    /// [`OrderQuality::pending_spreads`] is set; then a [`RowChange::Update`] for it follows.
    Row(Box<OrderQuality>),
    /// Apply to the stored row with this order id ([`RowUpdater::apply`]).
    Update(SpreadUpdate),
}

impl RowChange {
    pub fn order_id(&self) -> &str {
        match self {
            RowChange::Row(r) => &r.order_id,
            RowChange::Update(u) => u.order_id(),
        }
    }
}

/// Applies [`SpreadUpdate`]s to rows (it needs the engine's parameters to recompute the
/// statistics).
#[derive(Debug, Clone)]
pub struct RowUpdater {
    r: Resolved,
}

fn signed(side: Side, x: Decimal) -> Decimal {
    match side {
        Side::Buy => x,
        Side::Sell => Decimal::ZERO - x, // no negative zero (see `OrderState::signed`)
    }
}

impl RowUpdater {
    /// `params` must be the engine's.
    pub fn new(params: &Params) -> Result<RowUpdater, ExecqError> {
        Ok(RowUpdater {
            r: params.resolve()?,
        })
    }

    pub(crate) fn from_resolved(r: Resolved) -> RowUpdater {
        RowUpdater { r }
    }

    /// Applies `u` to `row`, a row emitted with [`OrderQuality::pending_spreads`]: the waiting
    /// lookups' sums join its horizon sums (those that resolved without a quote stay out), the
    /// statistics are recomputed and `pending_spreads` is cleared. With the final update the
    /// row is then the batch row; with a view, the batch row as of the view.
    ///
    /// `Ok(false)` and no change when nothing in `row` is pending (it was completed already:
    /// the same update replayed after a restart). An error when `u` is not for this row.
    pub fn apply(&self, row: &mut OrderQuality, u: &SpreadUpdate) -> Result<bool, ExecqError> {
        let bad = |why: &str| {
            Err(ExecqError::BadUpdate(format!(
                "order {}: {why}",
                row.order_id.as_str()
            )))
        };
        if row.order_id.as_str() != u.order_id() {
            return bad(&format!("the update is for order {}", u.order_id()));
        }
        let Some(pending) = row.pending_spreads.as_deref() else {
            return Ok(false);
        };
        let n = self.r.horizons_ns.len();
        if pending.horizons.len() != n
            || row.sums.horizons.len() != n
            || u.mid_q.len() != n
            || !(u.missed.is_empty() || u.missed.len() == n)
        {
            return bad("horizon count differs from the parameters");
        }
        let mut horizons = row.sums.horizons.clone();
        for (k, h) in horizons.iter_mut().enumerate() {
            let mut resolved = pending.horizons[k].clone();
            if let Some(m) = u.missed.get(k) {
                resolved.sub(m);
            }
            let mid_q = u.mid_q[k];
            // Nothing resolved for this horizon: leave its sums exactly as they are.
            if resolved.shares.is_zero() && mid_q.is_zero() {
                continue;
            }
            h.q += resolved.shares;
            // sum q*2s(P - M) = sum s*2qP - s*2*sum q*M.
            h.rs += resolved.signed_2qp - signed(row.side, Decimal::TWO * mid_q);
            h.es += resolved.q_es;
            h.mid += resolved.q_mid;
            h.mid_h += mid_q;
        }
        row.sums.horizons = horizons;
        if u.notes != 0 {
            let mut bits = u.notes;
            for n in &row.notes {
                if let Some(i) = NOTES.iter().position(|x| x == n) {
                    bits |= 1 << i;
                }
            }
            row.notes = NOTES
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .filter_map(|(_, n)| static_name(&NOTES, n))
                .collect();
        }
        row.stats = Stats::from_sums(&row.sums, &self.r);
        row.pending_spreads = None;
        Ok(true)
    }
}
