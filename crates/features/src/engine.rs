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
use crate::window::{Acc, Push, Window};

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
    /// Trades or order events whose pane had already left their window (the 5-minute one for
    /// trades, the 1-hour one for order events) when they arrived, or whose sums would overflow
    /// a decimal: not in any window's sums.
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

#[derive(Debug, Clone, Copy)]
struct TradeItem {
    price: Decimal,
    qty: Decimal,
    notional: Decimal,
    /// ln(price / previous trade's price) in 1e-12 units; none for the first trade of a symbol
    /// and for late trades (older than the symbol's latest trade).
    ret: Option<i64>,
}

/// The sums of a set of trades (a pane, or a window's running total). Serialized as a list
/// `[qty, notional, count, n_ret, sum_ret, sum_ret2]`: a snapshot holds up to 1,202 of them
/// per instrument, so field names would be most of its bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "TradeAccForm", into = "TradeAccForm")]
struct TradeAcc {
    qty: Decimal,
    notional: Decimal,
    count: i64,
    n_ret: i64,
    sum_ret: i128,
    sum_ret2: i128,
}

type TradeAccForm = (Decimal, Decimal, i64, i64, Big, Big);

impl From<TradeAccForm> for TradeAcc {
    fn from((qty, notional, count, n_ret, s1, s2): TradeAccForm) -> Self {
        TradeAcc {
            qty,
            notional,
            count,
            n_ret,
            sum_ret: s1.0,
            sum_ret2: s2.0,
        }
    }
}

impl From<TradeAcc> for TradeAccForm {
    fn from(a: TradeAcc) -> Self {
        (
            a.qty,
            a.notional,
            a.count,
            a.n_ret,
            Big(a.sum_ret),
            Big(a.sum_ret2),
        )
    }
}

/// A 128-bit sum written as a decimal string: JSON numbers beyond 64 bits do not survive every
/// JSON library (serde_json's `Value` refuses them).
#[derive(Debug, Clone, Copy)]
struct Big(i128);

impl Serialize for Big {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Big {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map(Big).map_err(D::Error::custom)
    }
}

impl Acc for TradeAcc {
    type Item = TradeItem;
    /// A pane remembers the price of its newest trade: the reference of the returns.
    type Last = Decimal;
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
            n = n.wrapping_add(1);
        }
        *self = TradeAcc {
            qty,
            notional,
            count: self.count.wrapping_add(1),
            n_ret: n,
            sum_ret: s1,
            sum_ret2: s2,
        };
        true
    }
    fn sub(&mut self, pane: &TradeAcc) {
        // The pane's trades were all added to `self`: the result is an earlier partial sum, so
        // nothing overflows (wrapping only keeps a foreign snapshot from panicking).
        self.qty = self.qty.checked_sub(pane.qty).unwrap_or_default();
        self.notional = self.notional.checked_sub(pane.notional).unwrap_or_default();
        self.count = self.count.wrapping_sub(pane.count);
        self.n_ret = self.n_ret.wrapping_sub(pane.n_ret);
        self.sum_ret = self.sum_ret.wrapping_sub(pane.sum_ret);
        self.sum_ret2 = self.sum_ret2.wrapping_sub(pane.sum_ret2);
    }
    fn last_of(it: &TradeItem) -> Option<Decimal> {
        Some(it.price)
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

/// Price levels kept per side of a book (or `EngineParams::book_levels`, if more). A venue that
/// leaves truncating a depth-limited book to its clients (Kraken) never deletes the levels that
/// fall out of its depth, so a book fed by deltas would otherwise keep every price it ever
/// reported. Only the best `book_levels` feed a feature; the worst levels beyond this bound are
/// dropped, which changes a feature only after that many of the best levels are deleted
/// without new ones arriving.
pub const MAX_BOOK_LEVELS: usize = 1_000;

/// Apply levels (quantity 0 deletes) to both sides, then drop the worst levels beyond `keep`.
fn apply_levels(st: &mut SymState, bids: &[BookLevel], asks: &[BookLevel], keep: usize) {
    for (book, levels) in [(&mut st.bids, bids), (&mut st.asks, asks)] {
        for l in levels {
            if l.quantity.is_zero() {
                book.remove(&l.price.get());
            } else {
                book.insert(l.price.get(), l.quantity.get());
            }
        }
    }
    while st.bids.len() > keep {
        st.bids.pop_first();
    }
    while st.asks.len() > keep {
        st.asks.pop_last();
    }
}

// --- order state --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrdKind {
    Submitted,
    Canceled,
    Rejected,
    Expired,
    Fill,
}

#[derive(Debug, Clone)]
struct OrdItem {
    kind: OrdKind,
    /// This fill brought the order's filled quantity to its full quantity.
    completes: bool,
    /// Arrival slippage of a fill, 1e-6 bps units.
    slip: Option<i64>,
}

/// The counts of a set of order events (a pane, or a window's running total). Serialized as a
/// list `[submitted, canceled, rejected, expired, completed, n_slip, sum_slip]` (up to 601 per
/// account in a snapshot).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "OrdAccForm", into = "OrdAccForm")]
struct OrdAcc {
    submitted: i64,
    canceled: i64,
    rejected: i64,
    expired: i64,
    completed: i64,
    n_slip: i64,
    sum_slip: i128,
}

type OrdAccForm = (i64, i64, i64, i64, i64, i64, Big);

impl From<OrdAccForm> for OrdAcc {
    fn from((submitted, canceled, rejected, expired, completed, n_slip, s): OrdAccForm) -> Self {
        OrdAcc {
            submitted,
            canceled,
            rejected,
            expired,
            completed,
            n_slip,
            sum_slip: s.0,
        }
    }
}

impl From<OrdAcc> for OrdAccForm {
    fn from(a: OrdAcc) -> Self {
        (
            a.submitted,
            a.canceled,
            a.rejected,
            a.expired,
            a.completed,
            a.n_slip,
            Big(a.sum_slip),
        )
    }
}

impl Acc for OrdAcc {
    type Item = OrdItem;
    /// Order features need nothing of the events before their window.
    type Last = ();
    fn try_add(&mut self, it: &OrdItem) -> bool {
        // Counts are bounded by the number of events and |slip| < 2^63: no overflow in practice
        // (wrapping only keeps a foreign snapshot from panicking).
        match it.kind {
            OrdKind::Submitted => self.submitted = self.submitted.wrapping_add(1),
            OrdKind::Canceled => self.canceled = self.canceled.wrapping_add(1),
            OrdKind::Rejected => self.rejected = self.rejected.wrapping_add(1),
            OrdKind::Expired => self.expired = self.expired.wrapping_add(1),
            OrdKind::Fill => {}
        }
        if it.completes {
            self.completed = self.completed.wrapping_add(1);
        }
        if let Some(s) = it.slip {
            self.n_slip = self.n_slip.wrapping_add(1);
            self.sum_slip = self.sum_slip.wrapping_add(i128::from(s));
        }
        true
    }
    fn sub(&mut self, pane: &OrdAcc) {
        self.submitted = self.submitted.wrapping_sub(pane.submitted);
        self.canceled = self.canceled.wrapping_sub(pane.canceled);
        self.rejected = self.rejected.wrapping_sub(pane.rejected);
        self.expired = self.expired.wrapping_sub(pane.expired);
        self.completed = self.completed.wrapping_sub(pane.completed);
        self.n_slip = self.n_slip.wrapping_sub(pane.n_slip);
        self.sum_slip = self.sum_slip.wrapping_sub(pane.sum_slip);
    }
    fn last_of(_: &OrdItem) -> Option<()> {
        None
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
/// same rows; no clock, no I/O. Memory is bounded by the number of entities and open orders:
/// each window holds at most `PANES + 1` pane sums whatever the event rate; see the crate docs,
/// "Windows" and "Memory bounds", and [`FeatureEngine::state_stats`].
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
    /// Panes kept by the 1-minute and 5-minute trade windows, over every instrument: at most
    /// `2 × (PANES + 1)` per instrument, whatever the trade rate.
    pub trade_panes: usize,
    /// Panes kept by the 1-hour order-event windows, over every account: at most `PANES + 1`
    /// per account, whatever the order rate.
    pub order_panes: usize,
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
    ///
    /// 2: windows of panes (running sums per pane of `len / PANES`) instead of items.
    pub const SNAPSHOT_VERSION: u32 = 2;

    /// Rebuild an engine from its serialized form, checking that it is consistent (a snapshot
    /// not written by this crate must not make later calls panic).
    fn from_snapshot(snap: EngineSnapshot) -> Result<FeatureEngine, String> {
        let mut e = FeatureEngine::new(snap.params);
        for (i, st) in snap.syms.iter().enumerate() {
            if *st.key != *st.instrument.to_string() {
                return Err(format!("instrument {} has key {}", st.instrument, st.key));
            }
            if (st.t1.len_ns(), st.t5.len_ns()) != (WINDOW_1M_NS, WINDOW_5M_NS) {
                return Err(format!("instrument {} has other windows", st.instrument));
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
            if a.win.len_ns() != WINDOW_1H_NS {
                return Err(format!("account {} has another window", a.key));
            }
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
            trade_panes: self.syms.iter().map(|s| s.t1.panes() + s.t5.panes()).sum(),
            order_panes: self.accts.iter().map(|a| a.win.panes()).sum(),
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

    /// Levels kept per book side: [`MAX_BOOK_LEVELS`], or more when the features sum more.
    fn max_book_levels(&self) -> usize {
        MAX_BOOK_LEVELS.max(self.params.book_levels)
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
        if self.accts[a].win.push(ts.as_nanos(), item) != Push::Added {
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
                let keep = self.max_book_levels();
                let st = &mut self.syms[s];
                st.bids.clear();
                st.asks.clear();
                apply_levels(st, &b.bids, &b.asks, keep);
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
                let keep = self.max_book_levels();
                let st = &mut self.syms[s];
                apply_levels(st, &b.bids, &b.asks, keep);
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
        let ret = match st.t5.newest() {
            Some((pt, prev)) if ts >= *pt => log_ret(*prev, price),
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
        match st.t5.push(ts, item) {
            Push::Added => {}
            Push::Overflow => {
                self.stats.outside_window += 1;
                return;
            }
            // Not summed, but still the newest trade before the 1-minute window perhaps.
            Push::Expired => self.stats.outside_window += 1,
        }
        // Inside the 5-minute window but possibly outside the 1-minute one: that is expected.
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
        let last = st.t5.newest().map(|(_, price)| *price);
        // The reference is the newest trade before the window's first pane (see the crate docs).
        let ret = |w: &Window<TradeAcc>| -> Option<Decimal> {
            let p0 = w.newest_before(t)?.1;
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
            fv(ret(&st.t1)),
            fv(ret(&st.t5)),
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
