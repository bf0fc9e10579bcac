//! The streaming feature engine: folds journal events into per-entity state and computes rows
//! as of an event time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use model::{
    AccountId, BookLevel, Decimal, Event, Fill, InstrumentId, Order, OrderId, Price, Quantity,
    Side, Timestamp, TradeTick,
};
use positions::{Position, Positions};
use rust_decimal::RoundingStrategy;
use rust_decimal::prelude::ToPrimitive;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::defs::{
    self, FeatureRow, FeatureValue, FeatureView, MARKET_FEATURES, ORDER_FEATURES,
    POSITION_FEATURES, POSITION_SYMBOL_FEATURES,
};
use crate::window::{Acc, Window};

const SEC: i64 = 1_000_000_000;
/// The 1-minute window length in nanoseconds.
pub const WINDOW_1M_NS: i64 = 60 * SEC;
/// The 5-minute window length in nanoseconds.
pub const WINDOW_5M_NS: i64 = 300 * SEC;
/// The 1-hour window length in nanoseconds.
pub const WINDOW_1H_NS: i64 = 3600 * SEC;

/// Log returns are summed as integers in units of 1e-12, so window sums are exact and
/// subtracting an evicted return leaves no floating-point residue.
const RET_UNITS: f64 = 1e12;
/// Slippage is summed as integers in units of 1e-6 basis points, for the same reason.
const SLIP_UNITS: i64 = 1_000_000;

/// Tunables of the engine. The window lengths are part of the feature names and so fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineParams {
    /// Levels per side summed by `book_imbalance`.
    pub book_levels: usize,
}

impl Default for EngineParams {
    fn default() -> Self {
        EngineParams { book_levels: 5 }
    }
}

/// A (view, entity) pair whose features changed. `entity` is shared, so these are cheap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKeyRef {
    pub view: &'static str,
    pub entity: Arc<str>,
}

/// Counters of inputs the engine could not use; nothing is dropped silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Trades or order events older than their window's horizon when they arrived (or whose
    /// sums would overflow a decimal): not in any window.
    pub outside_window: u64,
    /// Fills the positions crate refused (overflow of absurd magnitudes).
    pub position_errors: u64,
}

/// FxHash (rustc's hasher): the maps are keyed by the platform's own ids, not by untrusted
/// input an attacker could collide, and SipHash was a tenth of the hot path.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Fx = BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, Fx>;
type FxSet<K> = HashSet<K, Fx>;

// --- market state -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct TradeItem {
    price: Decimal,
    qty: Decimal,
    notional: Decimal,
    /// ln(price / previous trade's price) in 1e-12 units; none for the first trade of a symbol
    /// and for late trades (older than the symbol's latest trade).
    ret: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TradeAcc {
    qty: Decimal,
    notional: Decimal,
    count: i64,
    n_ret: i64,
    #[serde(with = "i128_text")]
    sum_ret: i128,
    #[serde(with = "i128_text")]
    sum_ret2: i128,
}

/// 128-bit sums as decimal strings: JSON numbers beyond 64 bits do not survive every JSON
/// library (serde_json's `Value` refuses them).
mod i128_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl Acc for TradeAcc {
    type Item = TradeItem;
    fn try_add(&mut self, it: &TradeItem) -> bool {
        let (Some(qty), Some(notional)) = (
            self.qty.checked_add(it.qty),
            self.notional.checked_add(it.notional),
        ) else {
            return false;
        };
        let (mut n, mut s1, mut s2) = (self.n_ret, self.sum_ret, self.sum_ret2);
        if let Some(r) = it.ret {
            let r = i128::from(r);
            // |r| < 2^63, so r * r < 2^126 cannot overflow; the sums are checked.
            match (s1.checked_add(r), s2.checked_add(r * r)) {
                (Some(a), Some(b)) => (s1, s2) = (a, b),
                _ => return false,
            }
            n += 1;
        }
        *self = TradeAcc {
            qty,
            notional,
            count: self.count + 1,
            n_ret: n,
            sum_ret: s1,
            sum_ret2: s2,
        };
        true
    }
    fn sub(&mut self, it: &TradeItem) {
        // Removing an item that was added cannot overflow: the result is an earlier partial sum.
        self.qty = self.qty.checked_sub(it.qty).unwrap_or_default();
        self.notional = self.notional.checked_sub(it.notional).unwrap_or_default();
        self.count -= 1;
        if let Some(r) = it.ret {
            let r = i128::from(r);
            self.n_ret -= 1;
            self.sum_ret -= r;
            self.sum_ret2 -= r * r;
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bbo {
    bid: Decimal,
    ask: Decimal,
    ts: i64,
}

impl Bbo {
    fn mid(&self) -> Decimal {
        (self.bid + self.ask) / Decimal::TWO
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SymState {
    key: Arc<str>,
    instrument: InstrumentId,
    t1: Window<TradeAcc>,
    t5: Window<TradeAcc>,
    bbo: Option<Bbo>,
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
    has_book: bool,
    /// Accounts that ever filled in this instrument (their position features follow its mark).
    holders: BTreeSet<usize>,
    /// While nobody holds the instrument, marks are not pushed into the positions crate on every
    /// event (that was a third of the hot path); the latest ones are replayed just before the
    /// first fill. The positions crate prefers any mid (quote or book snapshot) over trades and
    /// takes marks in arrival order, so the latest mid, else the latest trade, gives it the
    /// same state.
    pending_mid: Option<(Decimal, Timestamp)>,
    pending_trade: Option<(Decimal, Timestamp)>,
}

impl SymState {
    fn set_bbo(&mut self, bid: Decimal, ask: Decimal, ts: i64) {
        // The newest top of book wins; equal times: the later event in journal order.
        if self.bbo.is_none_or(|b| ts >= b.ts) {
            self.bbo = Some(Bbo { bid, ask, ts });
        }
    }
    fn bbo_from_book(&mut self, ts: i64) {
        if let (Some((b, _)), Some((a, _))) =
            (self.bids.last_key_value(), self.asks.first_key_value())
        {
            let (b, a) = (*b, *a);
            self.set_bbo(b, a, ts);
        }
    }
}

fn apply_levels(book: &mut BTreeMap<Decimal, Decimal>, levels: &[BookLevel]) {
    for l in levels {
        if l.quantity.is_zero() {
            book.remove(&l.price.get());
        } else {
            book.insert(l.price.get(), l.quantity.get());
        }
    }
}

// --- order state --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum OrdKind {
    Submitted,
    Canceled,
    Rejected,
    Expired,
    Fill,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrdItem {
    kind: OrdKind,
    /// This fill brought the order's filled quantity to its full quantity.
    completes: bool,
    /// Arrival slippage of a fill, 1e-6 bps units.
    slip: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OrdAcc {
    submitted: i64,
    canceled: i64,
    rejected: i64,
    expired: i64,
    completed: i64,
    n_slip: i64,
    #[serde(with = "i128_text")]
    sum_slip: i128,
}

impl OrdAcc {
    fn apply(&mut self, it: &OrdItem, d: i64) {
        match it.kind {
            OrdKind::Submitted => self.submitted += d,
            OrdKind::Canceled => self.canceled += d,
            OrdKind::Rejected => self.rejected += d,
            OrdKind::Expired => self.expired += d,
            OrdKind::Fill => {}
        }
        if it.completes {
            self.completed += d;
        }
        if let Some(s) = it.slip {
            self.n_slip += d;
            self.sum_slip += i128::from(d) * i128::from(s);
        }
    }
}

impl Acc for OrdAcc {
    type Item = OrdItem;
    fn try_add(&mut self, it: &OrdItem) -> bool {
        // Counts are bounded by the number of events and |slip| < 2^63: no overflow in practice.
        self.apply(it, 1);
        true
    }
    fn sub(&mut self, it: &OrdItem) {
        self.apply(it, -1);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AcctState {
    key: Arc<str>,
    win: Window<OrdAcc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenOrder {
    side: Side,
    qty: Decimal,
    filled: Decimal,
    /// Mid of the instrument when the order was submitted.
    arrival_mid: Option<Decimal>,
}

// --- the engine ---------------------------------------------------------------------------

/// Folds events into feature state. Deterministic: the same events in the same order give the
/// same rows; no clock, no I/O. Memory is bounded by the number of entities and open orders
/// plus the events inside the longest window (1 h of order events, 5 min of trades); see the
/// crate docs, "Memory bounds", and [`FeatureEngine::state_stats`].
///
/// Serializable (serde) for snapshots: serializing, restoring and folding the following events
/// gives exactly the rows (and the state) of folding them without interruption. The snapshot
/// includes the parameters and is canonical (the same state always serializes to the same
/// bytes); [`FeatureEngine::SNAPSHOT_VERSION`] names its layout.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    params: EngineParams,
    syms: Vec<SymState>,
    sym_index: FxMap<InstrumentId, usize>,
    sym_by_key: FxMap<Arc<str>, usize>,
    accts: Vec<AcctState>,
    acct_index: FxMap<AccountId, usize>,
    pair_keys: BTreeMap<(usize, usize), Arc<str>>,
    orders: FxMap<OrderId, OpenOrder>,
    positions: Positions,
    dirty: FxSet<EntityKeyRef>,
    watermark: Option<Timestamp>,
    stats: EngineStats,
}

/// Sizes of the engine's state, to check it stays bounded (see the crate docs, "Memory
/// bounds").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateStats {
    /// Instruments seen (market entities).
    pub symbols: usize,
    /// Accounts seen (order and position entities).
    pub accounts: usize,
    /// (account, instrument) pairs that ever filled (position-symbol entities).
    pub account_symbols: usize,
    /// Orders submitted and not yet finished.
    pub open_orders: usize,
    /// Trades kept in the 1-minute and 5-minute windows, over every instrument.
    pub trade_items: usize,
    /// Order events kept in the 1-hour windows, over every account.
    pub order_items: usize,
    /// Order-book price levels kept, over every instrument and side.
    pub book_levels: usize,
    /// Entities changed since the last `changed_rows`.
    pub dirty: usize,
    /// Positions held by the positions crate, flat ones included.
    pub positions: usize,
}

/// The serialized form of [`FeatureEngine`]. The indexes (instrument, key and account to slot)
/// are rebuilt on restore; maps are written as sorted lists (JSON keys must be strings, and a
/// hash map's order is not canonical); the changed entities name their view.
#[derive(Serialize)]
struct EngineSnapshotRef<'a> {
    params: &'a EngineParams,
    syms: &'a [SymState],
    accts: &'a [AcctState],
    /// (account slot, instrument slot) of every position-symbol entity.
    pairs: Vec<(usize, usize)>,
    orders: Vec<(&'a OrderId, &'a OpenOrder)>,
    positions: &'a Positions,
    dirty: Vec<(&'static str, &'a str)>,
    watermark: Option<Timestamp>,
    stats: EngineStats,
}

#[derive(Deserialize)]
struct EngineSnapshot {
    params: EngineParams,
    syms: Vec<SymState>,
    accts: Vec<AcctState>,
    pairs: Vec<(usize, usize)>,
    orders: Vec<(OrderId, OpenOrder)>,
    positions: Positions,
    dirty: Vec<(String, String)>,
    watermark: Option<Timestamp>,
    stats: EngineStats,
}

impl Serialize for FeatureEngine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut orders: Vec<(&OrderId, &OpenOrder)> = self.orders.iter().collect();
        orders.sort_unstable_by_key(|(id, _)| **id);
        let mut dirty: Vec<(&'static str, &str)> =
            self.dirty.iter().map(|k| (k.view, &*k.entity)).collect();
        dirty.sort_unstable();
        EngineSnapshotRef {
            params: &self.params,
            syms: &self.syms,
            accts: &self.accts,
            pairs: self.pair_keys.keys().copied().collect(),
            orders,
            positions: &self.positions,
            dirty,
            watermark: self.watermark,
            stats: self.stats,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FeatureEngine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FeatureEngine::from_snapshot(EngineSnapshot::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Exact decimal to f64: `mantissa / 10^scale` is correctly rounded when both are exact f64s
/// (the common case), otherwise rust_decimal's general conversion.
pub(crate) fn dec_f64(d: Decimal) -> Option<f64> {
    let m = d.mantissa();
    let s = d.scale();
    if m.unsigned_abs() < (1u128 << 53) && s <= 22 {
        Some(m as f64 / 10f64.powi(s as i32))
    } else {
        d.normalize().to_f64()
    }
}

fn fv(d: Option<Decimal>) -> FeatureValue {
    d.and_then(dec_f64)
        .filter(|v| v.is_finite())
        .map_or(FeatureValue::Null, FeatureValue::F64)
}

fn log_ret(prev: Decimal, price: Decimal) -> Option<i64> {
    // ln(p / prev) = ln_1p((p - prev) / prev); the difference is exact, so small returns keep
    // their relative precision.
    let diff = dec_f64(price.checked_sub(prev)?)?;
    let r = (diff / dec_f64(prev)?).ln_1p() * RET_UNITS;
    (r.is_finite() && r.abs() < 9.0e18).then(|| r.round() as i64)
}

/// side x (price - mid) / mid in 1e-6 bps, exactly rounded (half to even).
fn slippage_units(side: Side, price: Decimal, mid: Decimal) -> Option<i64> {
    let diff = match side {
        Side::Buy => price.checked_sub(mid)?,
        Side::Sell => mid.checked_sub(price)?,
    };
    diff.checked_mul(Decimal::from(10_000i64 * SLIP_UNITS))?
        .checked_div(mid)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven)
        .to_i64()
}

impl Default for FeatureEngine {
    fn default() -> Self {
        FeatureEngine::new(EngineParams::default())
    }
}

impl FeatureEngine {
    /// Version of the snapshot layout (the serde form of `FeatureEngine`). Bumped whenever the
    /// layout or the meaning of a field changes, so a runtime refuses a snapshot of another
    /// layout.
    pub const SNAPSHOT_VERSION: u32 = 1;

    /// Rebuild an engine from its serialized form, checking that it is consistent (a snapshot
    /// not written by this crate must not make later calls panic).
    fn from_snapshot(snap: EngineSnapshot) -> Result<FeatureEngine, String> {
        let mut e = FeatureEngine::new(snap.params);
        for (i, st) in snap.syms.iter().enumerate() {
            if *st.key != *st.instrument.to_string() {
                return Err(format!("instrument {} has key {}", st.instrument, st.key));
            }
            if st.holders.iter().any(|a| *a >= snap.accts.len()) {
                return Err(format!(
                    "instrument {} has an unknown holder",
                    st.instrument
                ));
            }
            if e.sym_index.insert(st.instrument.clone(), i).is_some() {
                return Err(format!("instrument {} appears twice", st.instrument));
            }
            e.sym_by_key.insert(st.key.clone(), i);
        }
        for (i, a) in snap.accts.iter().enumerate() {
            let id = AccountId::new(&*a.key).map_err(|err| err.to_string())?;
            if e.acct_index.insert(id, i).is_some() {
                return Err(format!("account {} appears twice", a.key));
            }
        }
        for (a, s) in snap.pairs {
            let (Some(acct), Some(sym)) = (snap.accts.get(a), snap.syms.get(s)) else {
                return Err(format!("position-symbol pair ({a}, {s}) out of range"));
            };
            let key: Arc<str> = Arc::from(format!("{}|{}", acct.key, sym.key));
            e.pair_keys.insert((a, s), key);
        }
        e.syms = snap.syms;
        e.accts = snap.accts;
        let n_orders = snap.orders.len();
        e.orders = snap.orders.into_iter().collect();
        if e.orders.len() != n_orders {
            return Err("an order appears twice".into());
        }
        e.positions = snap.positions;
        for (view, entity) in snap.dirty {
            let v = defs::view(&view).ok_or_else(|| format!("unknown view {view:?}"))?;
            e.dirty.insert(EntityKeyRef {
                view: v.name,
                entity: Arc::from(entity),
            });
        }
        e.watermark = snap.watermark;
        e.stats = snap.stats;
        Ok(e)
    }

    /// Sizes of the state (see [`StateStats`]).
    pub fn state_stats(&self) -> StateStats {
        StateStats {
            symbols: self.syms.len(),
            accounts: self.accts.len(),
            account_symbols: self.pair_keys.len(),
            open_orders: self.orders.len(),
            trade_items: self
                .syms
                .iter()
                .map(|s| s.t1.len_items() + s.t5.len_items())
                .sum(),
            order_items: self.accts.iter().map(|a| a.win.len_items()).sum(),
            book_levels: self.syms.iter().map(|s| s.bids.len() + s.asks.len()).sum(),
            dirty: self.dirty.len(),
            positions: self.positions.all().count(),
        }
    }

    pub fn new(params: EngineParams) -> Self {
        FeatureEngine {
            params,
            syms: Vec::new(),
            sym_index: FxMap::default(),
            sym_by_key: FxMap::default(),
            accts: Vec::new(),
            acct_index: FxMap::default(),
            pair_keys: BTreeMap::new(),
            orders: FxMap::default(),
            positions: Positions::new(),
            dirty: FxSet::default(),
            watermark: None,
            stats: EngineStats::default(),
        }
    }

    pub fn params(&self) -> EngineParams {
        self.params
    }

    /// The greatest event time folded so far (of the events that feed features). Rows can be
    /// asked only as of this time or later.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The underlying positions (the positions crate's state), for callers that want more.
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    fn sym(&mut self, instrument: &InstrumentId) -> usize {
        if let Some(i) = self.sym_index.get(instrument) {
            return *i;
        }
        let i = self.syms.len();
        let key: Arc<str> = Arc::from(instrument.to_string());
        self.syms.push(SymState {
            key: key.clone(),
            instrument: instrument.clone(),
            t1: Window::new(WINDOW_1M_NS),
            t5: Window::new(WINDOW_5M_NS),
            bbo: None,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            has_book: false,
            holders: BTreeSet::new(),
            pending_mid: None,
            pending_trade: None,
        });
        self.sym_index.insert(instrument.clone(), i);
        self.sym_by_key.insert(key, i);
        i
    }

    fn acct(&mut self, account: &AccountId) -> usize {
        if let Some(i) = self.acct_index.get(account) {
            return *i;
        }
        let i = self.accts.len();
        self.accts.push(AcctState {
            key: Arc::from(account.as_str()),
            win: Window::new(WINDOW_1H_NS),
        });
        self.acct_index.insert(account.clone(), i);
        i
    }

    fn touch(&mut self, out: &mut Vec<EntityKeyRef>, view: &'static str, entity: &Arc<str>) {
        let k = EntityKeyRef {
            view,
            entity: entity.clone(),
        };
        if !self.dirty.contains(&k) {
            self.dirty.insert(k.clone());
        }
        out.push(k);
    }

    /// Market rows of `s` and the position rows that follow its mark.
    fn touch_market(&mut self, out: &mut Vec<EntityKeyRef>, s: usize) {
        let key = self.syms[s].key.clone();
        self.touch(out, MARKET_FEATURES, &key);
        if self.syms[s].holders.is_empty() {
            return;
        }
        let holders: Vec<usize> = self.syms[s].holders.iter().copied().collect();
        for a in holders {
            let ak = self.accts[a].key.clone();
            self.touch(out, POSITION_FEATURES, &ak);
            if let Some(pk) = self.pair_keys.get(&(a, s)).cloned() {
                self.touch(out, POSITION_SYMBOL_FEATURES, &pk);
            }
        }
    }

    fn positions_event(&mut self, e: &Event) {
        if self.positions.on_event(e).is_err() {
            self.stats.position_errors += 1;
        }
    }

    /// A market event that marks positions: straight to the positions crate when someone holds
    /// the instrument, otherwise remembered (see `SymState::pending_mid`).
    fn mark_event(&mut self, s: usize, e: &Event, mid: Option<Decimal>) {
        if !self.syms[s].holders.is_empty() {
            self.positions_event(e);
            return;
        }
        let st = &mut self.syms[s];
        match (mid, e) {
            (Some(m), _) => st.pending_mid = Some((m, e.ts())),
            (None, Event::Trade(t)) => st.pending_trade = Some((t.price.get(), t.ts)),
            _ => {}
        }
    }

    fn replay_pending_marks(&mut self, s: usize) {
        let st = &mut self.syms[s];
        let (mid, trade) = (st.pending_mid.take(), st.pending_trade.take());
        let instrument = st.instrument.clone();
        let res = match (mid, trade) {
            (Some((m, ts)), _) => self.positions.mark(&instrument, m, ts),
            (None, Some((p, ts))) => match Price::new(p) {
                Ok(price) => self.positions.on_event(&Event::Trade(TradeTick {
                    instrument,
                    price,
                    quantity: Quantity::ZERO,
                    aggressor: None,
                    trade_id: String::new(),
                    ts,
                })),
                Err(_) => Ok(()),
            },
            (None, None) => Ok(()),
        };
        if res.is_err() {
            self.stats.position_errors += 1;
        }
    }

    fn push_order_item(&mut self, a: usize, ts: Timestamp, item: OrdItem) {
        if !self.accts[a].win.push(ts.as_nanos(), item) {
            self.stats.outside_window += 1;
        }
    }

    /// Fold one event; returns the (view, entity) pairs whose features it changed, and records
    /// them for [`FeatureEngine::changed_rows`]. Events that feed no feature return nothing.
    pub fn on_event(&mut self, e: &Event) -> Vec<EntityKeyRef> {
        let mut out = Vec::new();
        let ts = e.ts();
        let relevant = match e {
            Event::Quote(q) => {
                let s = self.sym(&q.instrument);
                self.syms[s].set_bbo(q.bid.get(), q.ask.get(), ts.as_nanos());
                self.mark_event(s, e, Some(q.mid()));
                self.touch_market(&mut out, s);
                true
            }
            Event::Trade(t) => {
                let s = self.sym(&t.instrument);
                self.on_trade(s, t.price.get(), t.quantity.get(), ts.as_nanos());
                self.mark_event(s, e, None);
                self.touch_market(&mut out, s);
                true
            }
            Event::BookSnapshot(b) => {
                let s = self.sym(&b.instrument);
                let st = &mut self.syms[s];
                st.bids.clear();
                st.asks.clear();
                apply_levels(&mut st.bids, &b.bids);
                apply_levels(&mut st.asks, &b.asks);
                st.has_book = true;
                st.bbo_from_book(ts.as_nanos());
                // The positions crate's snapshot mid: first listed bid and ask.
                if let (Some(bb), Some(ba)) = (b.bids.first(), b.asks.first()) {
                    let mid = (bb.price.get() + ba.price.get()) / Decimal::TWO;
                    self.mark_event(s, e, Some(mid));
                }
                self.touch_market(&mut out, s);
                true
            }
            Event::BookDelta(b) => {
                // A delta before any snapshot applies to an empty book.
                let s = self.sym(&b.instrument);
                let st = &mut self.syms[s];
                apply_levels(&mut st.bids, &b.bids);
                apply_levels(&mut st.asks, &b.asks);
                st.has_book = true;
                st.bbo_from_book(ts.as_nanos());
                self.touch_market(&mut out, s);
                true
            }
            Event::OrderSubmitted { order } => {
                self.on_submitted(order);
                let a = self.acct(&order.account);
                let k = self.accts[a].key.clone();
                self.touch(&mut out, ORDER_FEATURES, &k);
                true
            }
            Event::OrderRejected {
                order_id, account, ..
            }
            | Event::OrderCanceled {
                order_id, account, ..
            }
            | Event::OrderExpired {
                order_id, account, ..
            } => {
                let kind = match e {
                    Event::OrderRejected { .. } => OrdKind::Rejected,
                    Event::OrderCanceled { .. } => OrdKind::Canceled,
                    _ => OrdKind::Expired,
                };
                self.orders.remove(order_id);
                let a = self.acct(account);
                self.push_order_item(
                    a,
                    ts,
                    OrdItem {
                        kind,
                        completes: false,
                        slip: None,
                    },
                );
                let k = self.accts[a].key.clone();
                self.touch(&mut out, ORDER_FEATURES, &k);
                true
            }
            Event::OrderFilled(f) => {
                self.on_fill(f, e, &mut out);
                true
            }
            _ => false,
        };
        if relevant && self.watermark.is_none_or(|w| ts > w) {
            self.watermark = Some(ts);
        }
        out
    }

    fn on_trade(&mut self, s: usize, price: Decimal, qty: Decimal, ts: i64) {
        let st = &mut self.syms[s];
        let ret = match st.t5.back() {
            Some((pt, prev)) if ts >= *pt => log_ret(prev.price, price),
            _ => None,
        };
        let Some(notional) = price.checked_mul(qty) else {
            self.stats.outside_window += 1;
            return;
        };
        let item = TradeItem {
            price,
            qty,
            notional,
            ret,
        };
        if !st.t5.push(ts, item) {
            self.stats.outside_window += 1;
            return;
        }
        // Inside the 5-minute horizon but possibly outside the 1-minute one: that is expected.
        st.t1.push(ts, item);
    }

    fn on_submitted(&mut self, order: &Order) {
        let arrival_mid = self
            .sym_index
            .get(&order.instrument)
            .and_then(|s| self.syms[*s].bbo)
            .map(|b| b.mid());
        if order.status.is_open() {
            self.orders.insert(
                order.order_id,
                OpenOrder {
                    side: order.side,
                    qty: order.quantity.get(),
                    filled: order.filled_quantity.get(),
                    arrival_mid,
                },
            );
        }
        let a = self.acct(&order.account);
        self.push_order_item(
            a,
            order.created_at,
            OrdItem {
                kind: OrdKind::Submitted,
                completes: false,
                slip: None,
            },
        );
    }

    fn on_fill(&mut self, f: &Fill, e: &Event, out: &mut Vec<EntityKeyRef>) {
        let price = f.price.get();
        let (slip, completes) = match self.orders.get_mut(&f.order_id) {
            Some(o) => {
                let slip = o.arrival_mid.and_then(|m| slippage_units(o.side, price, m));
                o.filled = o.filled.checked_add(f.quantity.get()).unwrap_or(o.qty);
                (slip, o.filled >= o.qty)
            }
            // A fill of an order submitted before the engine started: no arrival mid, and
            // whether it completes the order is unknown.
            None => (None, false),
        };
        if completes {
            self.orders.remove(&f.order_id);
        }
        let a = self.acct(&f.account);
        self.push_order_item(
            a,
            f.ts,
            OrdItem {
                kind: OrdKind::Fill,
                completes,
                slip,
            },
        );
        let s = self.sym(&f.instrument);
        if self.syms[s].holders.is_empty() {
            self.replay_pending_marks(s);
        }
        self.positions_event(e);
        self.syms[s].holders.insert(a);
        let pk = match self.pair_keys.get(&(a, s)) {
            Some(k) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(format!("{}|{}", self.accts[a].key, self.syms[s].key));
                self.pair_keys.insert((a, s), k.clone());
                k
            }
        };
        let ak = self.accts[a].key.clone();
        self.touch(out, ORDER_FEATURES, &ak);
        // The fill may have moved the instrument's mark: every holder's positions change.
        self.touch_market(out, s);
        self.touch(out, POSITION_SYMBOL_FEATURES, &pk);
    }

    fn resolve_sym(&self, key: &str) -> Option<usize> {
        if let Some(i) = self.sym_by_key.get(key) {
            return Some(*i);
        }
        // A bare symbol, when exactly one venue lists it.
        let mut found = self
            .syms
            .iter()
            .enumerate()
            .filter(|(_, s)| s.instrument.symbol.as_str() == key);
        match (found.next(), found.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The entities the engine knows for `view`, sorted (for periodic re-materialization of
    /// time-decaying windows).
    pub fn entities(&self, view: &str) -> Vec<String> {
        let mut v: Vec<String> = match view {
            MARKET_FEATURES => self.syms.iter().map(|s| s.key.to_string()).collect(),
            ORDER_FEATURES | POSITION_FEATURES => {
                self.accts.iter().map(|a| a.key.to_string()).collect()
            }
            POSITION_SYMBOL_FEATURES => self.pair_keys.values().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        };
        v.sort();
        v
    }

    /// The features of `view` for `entity` computed as of `as_of` in event time. `None` when the
    /// view or entity is unknown, or when `as_of` is before the watermark (the engine has already
    /// folded later events and cannot answer without using the future).
    pub fn row(&self, view: &str, entity: &str, as_of: Timestamp) -> Option<FeatureRow> {
        if self.watermark.is_some_and(|w| as_of < w) {
            return None;
        }
        let v = defs::view(view)?;
        let values = match v.name {
            MARKET_FEATURES => self.market_values(self.resolve_sym(entity)?, as_of.as_nanos()),
            ORDER_FEATURES => {
                let a = self.acct_index.get(&AccountId::new(entity).ok()?)?;
                self.order_values(*a, as_of.as_nanos())
            }
            POSITION_FEATURES => {
                let account = AccountId::new(entity).ok()?;
                self.acct_index.get(&account)?;
                self.position_values(&account, as_of)
            }
            POSITION_SYMBOL_FEATURES => {
                let (acc, inst) = entity.split_once('|')?;
                let account = AccountId::new(acc).ok()?;
                let s = self.resolve_sym(inst)?;
                let p = self
                    .positions
                    .position(&account, &self.syms[s].instrument)?;
                position_symbol_values(p, as_of)
            }
            _ => return None,
        };
        Some(self.make_row(v, entity, as_of, values))
    }

    fn make_row(
        &self,
        v: &'static FeatureView,
        entity: &str,
        as_of: Timestamp,
        values: Vec<FeatureValue>,
    ) -> FeatureRow {
        debug_assert_eq!(values.len(), v.features.len());
        FeatureRow {
            view: v.name,
            entity: entity.to_string(),
            event_ts: as_of,
            values: v.features.iter().map(|f| f.name).zip(values).collect(),
        }
    }

    fn market_values(&self, s: usize, t: i64) -> Vec<FeatureValue> {
        let st = &self.syms[s];
        let a1 = st.t1.acc_as_of(t);
        let a5 = st.t5.acc_as_of(t);
        let last = st.t5.back().map(|(_, it)| it.price);
        let ret = |w: i64| -> Option<Decimal> {
            let p0 = st.t5.last_at_or_before(t.saturating_sub(w))?.1.price;
            last?.checked_sub(p0)?.checked_div(p0)
        };
        let vwap = |a: &TradeAcc| {
            if a.qty.is_zero() {
                None
            } else {
                a.notional.checked_div(a.qty)
            }
        };
        let (mid, spread) = match st.bbo {
            Some(b) => {
                let mid = b.mid();
                let spread = (b.ask - b.bid)
                    .checked_mul(Decimal::from(10_000))
                    .and_then(|x| x.checked_div(mid));
                (Some(mid), spread)
            }
            None => (None, None),
        };
        // Only trades seen count: before the first trade the window features are null, not 0.
        let traded = last.is_some();
        vec![
            fv(last),
            fv(mid),
            fv(spread),
            fv(vwap(&a1)),
            fv(vwap(&a5)),
            if traded {
                fv(Some(a1.qty))
            } else {
                FeatureValue::Null
            },
            if traded {
                fv(Some(a5.qty))
            } else {
                FeatureValue::Null
            },
            if traded {
                FeatureValue::I64(a5.count)
            } else {
                FeatureValue::Null
            },
            fv(ret(WINDOW_1M_NS)),
            fv(ret(WINDOW_5M_NS)),
            realized_vol(&a5),
            self.imbalance(st),
        ]
    }

    fn imbalance(&self, st: &SymState) -> FeatureValue {
        if !st.has_book {
            return FeatureValue::Null;
        }
        let n = self.params.book_levels;
        let sum = |it: &mut dyn Iterator<Item = &Decimal>| {
            it.take(n)
                .try_fold(Decimal::ZERO, |acc, q| acc.checked_add(*q))
        };
        let (Some(b), Some(a)) = (sum(&mut st.bids.values().rev()), sum(&mut st.asks.values()))
        else {
            return FeatureValue::Null;
        };
        let total = b + a;
        if total.is_zero() {
            return FeatureValue::Null;
        }
        fv((b - a).checked_div(total))
    }

    fn order_values(&self, a: usize, t: i64) -> Vec<FeatureValue> {
        let acc = self.accts[a].win.acc_as_of(t);
        let ratio = |num: i64, den: i64| {
            if den == 0 {
                FeatureValue::Null
            } else {
                FeatureValue::F64(num as f64 / den as f64)
            }
        };
        let ended = acc.completed + acc.canceled + acc.rejected + acc.expired;
        let slip = if acc.n_slip == 0 {
            FeatureValue::Null
        } else {
            // Exact integer sum, one division at the end.
            FeatureValue::F64(acc.sum_slip as f64 / acc.n_slip as f64 / SLIP_UNITS as f64)
        };
        vec![
            FeatureValue::I64(acc.submitted),
            FeatureValue::I64(acc.canceled),
            ratio(acc.canceled, acc.submitted),
            ratio(acc.completed, ended),
            slip,
            FeatureValue::I64(acc.rejected),
            FeatureValue::I64(acc.expired),
            FeatureValue::I64(acc.completed),
        ]
    }

    fn position_values(&self, account: &AccountId, as_of: Timestamp) -> Vec<FeatureValue> {
        let day = as_of.to_datetime().date_naive();
        let mut notional = Some(Decimal::ZERO);
        let mut gross = Some(Decimal::ZERO);
        let mut unrealized = Some(Decimal::ZERO);
        let mut realized = Some(Decimal::ZERO);
        let mut fees = Some(Decimal::ZERO);
        let mut open = 0i64;
        let add = |acc: &mut Option<Decimal>, v: Option<Decimal>| {
            *acc = acc.zip(v).and_then(|(a, b)| a.checked_add(b));
        };
        for p in self.positions.account_positions(account) {
            add(&mut notional, position_notional(p));
            add(&mut gross, Some(p.exposure()));
            add(&mut unrealized, Some(p.unrealized_pnl));
            let today = p.day == Some(day);
            add(
                &mut realized,
                Some(if today {
                    p.realized_today
                } else {
                    Decimal::ZERO
                }),
            );
            add(
                &mut fees,
                Some(if today { p.fees_today } else { Decimal::ZERO }),
            );
            if !p.is_flat() {
                open += 1;
            }
        }
        vec![
            fv(notional),
            fv(gross),
            fv(unrealized),
            fv(realized),
            fv(fees),
            FeatureValue::I64(open),
        ]
    }

    /// Rows of every entity touched since the last call, as of the watermark, sorted by view
    /// then entity (for streaming materialization).
    pub fn changed_rows(&mut self) -> Vec<FeatureRow> {
        let mut keys: Vec<EntityKeyRef> = self.dirty.drain().collect();
        let Some(wm) = self.watermark else {
            return Vec::new();
        };
        keys.sort();
        keys.iter()
            .filter_map(|k| self.row(k.view, &k.entity, wm))
            .collect()
    }
}

fn position_notional(p: &Position) -> Option<Decimal> {
    match p.mark {
        Some(m) => p.net_qty.checked_mul(m),
        None => Some(p.cost_basis),
    }
}

fn position_symbol_values(p: &Position, as_of: Timestamp) -> Vec<FeatureValue> {
    let today = p.day == Some(as_of.to_datetime().date_naive());
    vec![
        fv(Some(p.net_qty)),
        fv(p.avg_price),
        fv(p.mark),
        fv(position_notional(p)),
        fv(Some(p.exposure())),
        fv(Some(p.unrealized_pnl)),
        fv(Some(if today {
            p.realized_today
        } else {
            Decimal::ZERO
        })),
        fv(Some(if today { p.fees_today } else { Decimal::ZERO })),
    ]
}

fn realized_vol(a: &TradeAcc) -> FeatureValue {
    if a.n_ret < 2 {
        return FeatureValue::Null;
    }
    let n = i128::from(a.n_ret);
    // Sample variance = (n Σr² - (Σr)²) / (n (n - 1)); the numerator is exact in integers.
    let num = n
        .checked_mul(a.sum_ret2)
        .zip(a.sum_ret.checked_mul(a.sum_ret))
        .and_then(|(x, y)| x.checked_sub(y));
    let var_units = match num {
        Some(num) => num as f64 / (n * (n - 1)) as f64,
        None => {
            // Only with absurd magnitudes: fall back to floating point.
            let (nf, s1, s2) = (n as f64, a.sum_ret as f64, a.sum_ret2 as f64);
            ((s2 - s1 * s1 / nf) / (nf - 1.0)).max(0.0)
        }
    };
    FeatureValue::F64(var_units.sqrt() / RET_UNITS)
}
