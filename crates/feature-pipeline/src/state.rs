//! The pipeline's consumer state: the feature engine plus the names the online API serves rows
//! under. Pure (no I/O, no clock) and snapshotted by the runtime.

use std::collections::BTreeMap;
use std::convert::Infallible;

use features::{
    EngineParams, FeatureEngine, FeatureRow, MARKET_FEATURES, ORDER_FEATURES, POSITION_FEATURES,
    POSITION_SYMBOL_FEATURES, StateStats,
};
use journal::Delivery;
use model::{Event, Timestamp};
use runtime::{Consumer, Snapshot};
use serde::{Deserialize, Serialize};

use crate::outbox::Outbox;

/// How recent an instrument's newest event is: (greatest event time, journal sequence of the
/// event that reached it). Ordered, so "most recent" is a plain comparison; the sequence breaks
/// ties between venues whose events carry the same time.
pub type Recency = (Timestamp, u64);

/// The pipeline's state, folded from the journal by the runtime (a [`Snapshot`] consumer).
///
/// Rows are not stored: the online API computes them on demand, as of the engine's watermark,
/// so windows decay as event time moves on and a restored state answers exactly like one that
/// never stopped. What is kept besides the engine is one entry per market instrument (its
/// recency) and one per public symbol (the instrument served under it), both bounded by the
/// platform's instrument universe.
///
/// When an online store is configured, an [`Outbox`] is attached (never snapshotted): every
/// event's changed rows, as of the watermark right after that event, are staged in it for the
/// Redis writer. Rows are thus a function of the journal prefix only, not of how events were
/// batched, so replaying a tail after a restart stages the very rows (values and event times)
/// it staged before, and Redis's newest-wins check skips them.
#[derive(Serialize, Deserialize)]
#[serde(try_from = "StateSnapshot")]
pub struct FeatureState {
    engine: FeatureEngine,
    /// Every market instrument (engine key `SYMBOL.venue`) and its recency.
    instruments: BTreeMap<String, Recency>,
    /// Public symbol (`BTCUSDT`) -> the instrument whose row is served under it: the most recent.
    owners: BTreeMap<String, String>,
    #[serde(skip)]
    outbox: Option<Outbox>,
}

/// The serialized form, checked on restore so a foreign snapshot cannot name rows wrongly.
#[derive(Deserialize)]
struct StateSnapshot {
    engine: FeatureEngine,
    instruments: BTreeMap<String, Recency>,
    owners: BTreeMap<String, String>,
}

impl TryFrom<StateSnapshot> for FeatureState {
    type Error = String;

    fn try_from(s: StateSnapshot) -> Result<Self, String> {
        for (public, key) in &s.owners {
            if !s.instruments.contains_key(key) || public_symbol(key) != public {
                return Err(format!("public symbol {public:?} names instrument {key:?}"));
            }
        }
        if let Some(key) = s
            .instruments
            .keys()
            .find(|k| !s.owners.contains_key(public_symbol(k)))
        {
            return Err(format!("instrument {key:?} has no public symbol"));
        }
        Ok(FeatureState {
            engine: s.engine,
            instruments: s.instruments,
            owners: s.owners,
            outbox: None,
        })
    }
}

/// Sizes of everything the state holds, to check it stays bounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// The engine's own sizes (windows, open orders, positions, ...).
    pub engine: StateStats,
    /// Market instruments known (one recency each).
    pub instruments: usize,
    /// Public symbols served (one owner each).
    pub public_symbols: usize,
}

/// The symbol users name a market entity by: `BTCUSDT` for the engine's `BTCUSDT.binance` (as
/// in the plan's `feast:market_features:BTCUSDT`). A key whose venue part does not look like a
/// venue (lowercase letters, digits, `-`, `_`) is served under its full name.
pub fn public_symbol(key: &str) -> &str {
    match key.rsplit_once('.') {
        Some((symbol, venue))
            if !venue.is_empty()
                && venue.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }) =>
        {
            symbol
        }
        _ => key,
    }
}

impl FeatureState {
    pub fn new(params: EngineParams) -> FeatureState {
        FeatureState {
            engine: FeatureEngine::new(params),
            instruments: BTreeMap::new(),
            owners: BTreeMap::new(),
            outbox: None,
        }
    }

    /// Stages every event's changed rows in `outbox` from now on (for the online-store writer).
    /// Not part of the snapshot: attach it again after a restore.
    pub fn stage_into(mut self, outbox: Outbox) -> FeatureState {
        self.outbox = Some(outbox);
        self
    }

    pub fn engine(&self) -> &FeatureEngine {
        &self.engine
    }

    /// The greatest event time folded: every row is computed as of it.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.engine.watermark()
    }

    pub fn counts(&self) -> StateCounts {
        StateCounts {
            engine: self.engine.state_stats(),
            instruments: self.instruments.len(),
            public_symbols: self.owners.len(),
        }
    }

    /// Entities served per view, in [`features::views`] order.
    pub fn entity_counts(&self) -> Vec<(&'static str, usize)> {
        let stats = self.engine.state_stats();
        features::views()
            .iter()
            .map(|v| {
                let n = match v.name {
                    MARKET_FEATURES => self.owners.len(),
                    ORDER_FEATURES | POSITION_FEATURES => stats.accounts,
                    POSITION_SYMBOL_FEATURES => stats.account_symbols,
                    _ => 0,
                };
                (v.name, n)
            })
            .collect()
    }

    /// The row the online API serves for (`view`, `entity`) as of the watermark. Entities are
    /// named as users name them: market rows by public symbol, account rows by account, and
    /// position-symbol rows by `account|SYMBOL.venue` exactly.
    pub fn row(&self, view: &str, entity: &str) -> Option<FeatureRow> {
        let view = features::view(view)?;
        let as_of = self.engine.watermark()?;
        match view.name {
            MARKET_FEATURES => {
                let key = self.owners.get(entity)?;
                let mut row = self.engine.row(MARKET_FEATURES, key, as_of)?;
                row.entity = entity.to_string();
                Some(row)
            }
            POSITION_SYMBOL_FEATURES => {
                // The engine would also resolve a bare symbol; the online store never did.
                let (_, instrument) = entity.split_once('|')?;
                self.instruments.get(instrument)?;
                self.engine.row(POSITION_SYMBOL_FEATURES, entity, as_of)
            }
            name => self.engine.row(name, entity, as_of),
        }
    }

    /// Every row of every view as of the watermark, named as [`row`](Self::row) names them (the
    /// scheduled full materialization: windows of quiet entities decay too).
    pub fn all_rows(&self) -> Vec<FeatureRow> {
        let Some(as_of) = self.engine.watermark() else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for (public, key) in &self.owners {
            if let Some(mut row) = self.engine.row(MARKET_FEATURES, key, as_of) {
                row.entity.clone_from(public);
                rows.push(row);
            }
        }
        for view in [ORDER_FEATURES, POSITION_FEATURES, POSITION_SYMBOL_FEATURES] {
            rows.extend(
                self.engine
                    .entities(view)
                    .iter()
                    .filter_map(|e| self.engine.row(view, e, as_of)),
            );
        }
        rows
    }

    fn saw_instrument(&mut self, key: &str, seen: Recency) {
        let recency = match self.instruments.get_mut(key) {
            Some(r) => {
                // A late event (older than the instrument's newest) does not make it recent.
                *r = (*r).max(seen);
                *r
            }
            None => {
                self.instruments.insert(key.to_string(), seen);
                seen
            }
        };
        let public = public_symbol(key);
        let take_over = match self.owners.get(public) {
            Some(owner) if owner == key => false,
            Some(owner) => self.instruments.get(owner).is_none_or(|r| *r < recency),
            None => true,
        };
        if take_over {
            self.owners.insert(public.to_string(), key.to_string());
        }
    }

    /// Stages changed rows under their public names; a market row of an instrument that does
    /// not own its public symbol is not served, so it is not written either.
    fn stage(&self, outbox: &Outbox, rows: Vec<FeatureRow>) {
        outbox.stage(rows.into_iter().filter_map(|mut row| {
            if row.view == MARKET_FEATURES {
                let public = public_symbol(&row.entity);
                if self.owners.get(public) != Some(&row.entity) {
                    return None;
                }
                row.entity = public.to_string();
            }
            Some(row)
        }));
    }
}

impl Consumer for FeatureState {
    type Error = Infallible;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), Infallible> {
        let mut touched_any = false;
        for d in batch {
            let touched = self.engine.on_event(&d.event);
            if touched.is_empty() {
                continue;
            }
            touched_any = true;
            let seen = (d.event.ts(), d.seq);
            for k in touched.iter().filter(|k| k.view == MARKET_FEATURES) {
                self.saw_instrument(&k.entity, seen);
            }
            if let Some(outbox) = &self.outbox {
                // Per event, as of the watermark after it: independent of batching.
                let rows = self.engine.changed_rows();
                self.stage(outbox, rows);
            }
        }
        if touched_any && self.outbox.is_none() {
            // Nothing to write: just forget the changed set, so the state (and its snapshot)
            // is the same with or without an online store.
            let _ = self.engine.changed_rows();
        }
        Ok(())
    }
}

impl Snapshot for FeatureState {
    /// The engine's layout version times 100 plus this wrapper's own layout version, so a change
    /// of either invalidates old snapshots.
    const STATE_VERSION: u32 = FeatureEngine::SNAPSHOT_VERSION * 100 + 1;
}
