//! The streaming engine.
//!
//! State per symbol: the prevailing quote (and the last quote at a strictly earlier timestamp,
//! for `quote_at_receipt: strict`) and cumulative tape volume/notional (VWAP over an order's
//! interval is a difference of two snapshots). State per order: the fill-level sums.
//! Realized-spread lookups wait in one queue of fills (see `settle`); `t_e + h` is
//! non-decreasing in record order, so a lookup is resolved on the first record later than its
//! target: memory is bounded by the fills within the longest horizon. Order ends wait the same
//! way so that tape prints stamped at the order's last timestamp still count.
//!
//! Bounded streaming (see `incremental`): the engine keeps running aggregates over every order
//! it has seen, and with eviction on ([`ExecQuality::set_eviction`]) an order leaves in two
//! stages: once only realized-spread lookups can still change its row, the row goes out
//! ([`ExecQuality::drain_rows`]) and a compact record replaces the order's state; when its last
//! lookup resolves, an update completing the row goes out and the record leaves too. Orders
//! live in a slab (`orders`, reused slots), so memory follows the orders held, not the orders
//! seen.

mod incremental;
mod index;
mod settle;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::ExecqError;
use crate::params::NS_PER_DAY;
use crate::params::{
    CrossedQuote, DecisionPriceFallback, EsBenchmark, IsBpsDenominator, IsEndPrice, NotionalPrice,
    Params, QuoteTiming, Resolved, RsEndOfData, SizeBucketBasis, TimeWindow,
};
use crate::pending::{PendingHorizon, PendingSpreads, RowChange, RowUpdater};
use crate::report::{
    Aggregates, LIQUIDITY, Marketability, NOTES, OrderClass, OrderQuality, OrderStatus, Report,
    SIZE_BUCKETS,
};
use crate::rows::RowAggregator;
use crate::stats::{PRICE_DP, Stats, Sums, exec_bucket, ratio};
use chrono::Datelike;
use foldhash::fast::FixedState;

use incremental::{CellKey, Contrib, Groups, HorizonLin, LinForm};
use index::IdIndex;
use settle::{Lookups, PendingFill, Settling, Slot, Undrained, add_horizon, static_part};
pub use snapshot::SNAPSHOT_VERSION;

const NS_PER_MS: i64 = 1_000_000;

/// An eviction due: `(deadline, order serial, slot, end generation)`.
type Due = (i64, u64, u32, u32);

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Quote {
    ts: i64,
    bid: Decimal,
    ask: Decimal,
}

impl Quote {
    fn mid(&self) -> Decimal {
        (self.bid + self.ask) / Decimal::TWO
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SymState {
    name: String,
    cur: Option<Quote>,
    /// Last quote with `ts` strictly before `cur.ts`.
    before: Option<Quote>,
    tape_q: Decimal,
    tape_n: Decimal,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct EndSnap {
    mid: Option<Decimal>,
    tape_q: Decimal,
    tape_n: Decimal,
}

// Notes: bit flags (bit i is `NOTES[i]`) so a note costs no allocation on the hot path.
const N_NO_QUOTE: u32 = 1;
const N_CROSSED: u32 = 1 << 1;
const N_LOCKED: u32 = 1 << 2;
const N_FILL_AFTER_CANCEL: u32 = 1 << 3;
const N_OVERFILL: u32 = 1 << 4;
const N_CANCEL_EXCEEDS: u32 = 1 << 5;
const N_NO_DECISION: u32 = 1 << 6;
const N_NO_END_PRICE: u32 = 1 << 7;
const N_NO_TAPE: u32 = 1 << 8;
const N_FILL_BEFORE_RECEIPT: u32 = 1 << 9;
const N_SIDE_MISMATCH: u32 = 1 << 10;
const N_NO_BENCH: u32 = 1 << 11;
const N_RS_BEYOND: u32 = 1 << 12;

/// Account key of orders without an account (`(none)` in the aggregates).
const NO_ACCOUNT: u32 = u32::MAX;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderState {
    /// Shared with the order's settling record and its row update (cloned per order).
    #[serde(with = "arc_str")]
    id: Arc<str>,
    /// Index into `ExecQuality::accounts`.
    account: Option<u32>,
    /// Owner, order type and time in force: shared with every order naming the same one
    /// (`ExecQuality::names`).
    #[serde(with = "opt_arc_str")]
    owner: Option<Arc<str>>,
    sym: u32,
    side: Side,
    #[serde(with = "opt_arc_str")]
    order_type: Option<Arc<str>>,
    #[serde(with = "opt_arc_str")]
    tif: Option<Arc<str>>,
    limit: Option<Decimal>,
    decision: Option<Decimal>,
    t_r: i64,
    receipt: Option<Quote>,
    class: OrderClass,
    marketability: Marketability,
    /// Index into [`SIZE_BUCKETS`].
    size_bucket: u8,
    /// Time-window code of `t_r` (see [`ExecQuality::window_code`]).
    window: i64,
    qty: Decimal,
    executed: Decimal,
    /// Cancelled shares counted in `shares_cancelled`, and closed-but-uncounted IOC residuals.
    cancelled: Decimal,
    uncounted: Decimal,
    fill_count: u64,
    first_fill: Option<i64>,
    complete: Option<i64>,
    liq: u8,
    /// Fill-level sums, allocated at the first fill (most orders never fill: a lazily boxed
    /// 1.3 KiB per order). Sparse in snapshots: most of an order's sums are zero.
    sums: OrderSums,
    /// Realized-spread lookups of this order still waiting, per horizon, as sums linear in the
    /// mid they will resolve at (kept only when the engine tracks aggregates).
    pend: Vec<HorizonLin>,
    /// Number of those lookups (kept always: eviction waits for zero).
    pending_n: u32,
    /// Unique per order seen (slots are reused).
    serial: u64,
    start_tape: (Decimal, Decimal),
    end_ts: Option<i64>,
    end_gen: u32,
    end: Option<EndSnap>,
    notes: u32,
    completion_emitted: bool,
}

impl OrderState {
    fn leaves(&self) -> Decimal {
        self.qty - self.executed - self.cancelled - self.uncounted
    }
    fn signed(&self, x: Decimal) -> Decimal {
        signed(self.side, x)
    }
    fn cell(&self, liq: u8) -> CellKey {
        CellKey {
            account: self.account.unwrap_or(NO_ACCOUNT),
            sym: self.sym,
            class: self.class,
            bucket: self.size_bucket,
            liq,
            window: self.window,
        }
    }
}

/// An order's fill-level [`Sums`]: `None` until its first fill, then boxed (the order table
/// grows by doubling, and moving 1 KiB per order is not free). Reads of an unfilled order see
/// zeros (without horizon entries: take [`OrderSums::to_box`] for a full copy).
#[derive(Debug, Clone, Default)]
struct OrderSums(Option<Box<Sums>>);

static ZERO_SUMS: std::sync::LazyLock<Sums> = std::sync::LazyLock::new(Sums::default);

impl std::ops::Deref for OrderSums {
    type Target = Sums;
    fn deref(&self) -> &Sums {
        self.0.as_deref().unwrap_or(&ZERO_SUMS)
    }
}

impl OrderSums {
    /// The sums to add to, allocated (with `n` horizons) on first use.
    fn get_mut(&mut self, n: usize) -> &mut Sums {
        self.0
            .get_or_insert_with(|| Box::new(Sums::with_horizons(n)))
    }

    /// A copy with `n` horizon entries.
    fn to_box(&self, n: usize) -> Box<Sums> {
        match &self.0 {
            Some(s) => s.clone(),
            None => Box::new(Sums::with_horizons(n)),
        }
    }

    /// Whether the horizon entries, if any, are `n`.
    fn horizons_ok(&self, n: usize) -> bool {
        self.0.as_ref().is_none_or(|s| s.horizons.len() == n)
    }
}

/// Snapshot form: the sparse sums (see `snapshot::sparse_sums`); an order without fills writes
/// `{}` and reads back unallocated (with at least one horizon, allocated sums are never `{}`).
impl Serialize for OrderSums {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(sums) => snapshot::sparse_sums::serialize(sums, s),
            None => s.collect_map(std::iter::empty::<((), ())>()),
        }
    }
}

impl<'de> Deserialize<'de> for OrderSums {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sums = snapshot::sparse_sums::deserialize(d)?;
        Ok(OrderSums((*sums != Sums::default()).then_some(sums)))
    }
}

fn signed(side: Side, x: Decimal) -> Decimal {
    match side {
        Side::Buy => x,
        // Not `-x`: that makes a negative zero, which prints as "-0" and would make a
        // snapshot differ from its restored copy (parsing drops the sign of zero).
        Side::Sell => Decimal::ZERO - x,
    }
}

/// `Arc<str>` as a JSON string (serde's `rc` feature is not on).
mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// `Option<Arc<str>>` as an optional JSON string.
mod opt_arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&**v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Option::<String>::deserialize(d).map(|v| v.map(Arc::from))
    }
}

/// What an observation measures (for histograms labelled by symbol and order class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Per fill: `2s(P - M)`, price units.
    EffectiveSpread,
    /// Per fill: `2s(P - M) / M * 1e4`.
    EffectiveSpreadBps,
    /// Per fill: `t_e - t_r`, ms.
    TimeToExecutionMs,
    /// Per completed order (when its end is final): arrival cost, bps.
    ArrivalCostBps,
    TimeToFirstFillMs,
    TimeToCompleteFillMs,
    VwapSlippageBps,
}

/// One per-fill or per-order-completion measurement; `f64` because it feeds histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub ts: Timestamp,
    pub symbol: String,
    pub order_id: String,
    pub order_class: OrderClass,
    pub metric: Metric,
    pub value: f64,
}

/// Sizes of the engine's state, for gauges and for boundedness checks. Every one is bounded by
/// what is live (orders working or finished within the late-fill grace, finished orders and
/// fills within the longest horizon), except `undrained_rows` (the caller drains them) and the
/// aggregate keys (one per account, symbol, order class, size bucket, liquidity flag and time
/// window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateSizes {
    /// Orders held in full (working, or finished within the late-fill grace).
    pub held_orders: usize,
    /// Finished orders whose row went out while realized-spread lookups wait: a compact record
    /// each (id, aggregation cell, per-horizon mid sums).
    pub settling_orders: usize,
    /// Slots of the order table (the peak of `held_orders + settling_orders`; freed slots are
    /// reused).
    pub order_slots: usize,
    /// Fills with realized-spread lookups waiting (one record per fill for every horizon).
    pub pending_fills: usize,
    /// Realized-spread lookups waiting (fills times the horizons they still wait for).
    pub pending_lookups: usize,
    /// Rows and row updates not yet taken by [`ExecQuality::drain_rows`].
    pub undrained_rows: usize,
    /// Aggregation cells with orders whose statistics follow the market (working orders,
    /// lookups waiting).
    pub live_cells: usize,
    /// Keys of the running aggregates, all groupings together.
    pub aggregate_keys: usize,
}

/// The streaming execution-quality engine. Feed records in time order with
/// [`ExecQuality::on_record`]; ask for one order with [`ExecQuality::order`], for the running
/// aggregates with [`ExecQuality::aggregates`], or for everything held with
/// [`ExecQuality::report`] at any time (none of them changes the state).
///
/// Serialize / Deserialize give a snapshot ([`SNAPSHOT_VERSION`]): restoring it and feeding the
/// following records behaves exactly as feeding them to the original engine.
pub struct ExecQuality {
    r: Resolved,
    syms: Vec<SymState>,
    sym_ix: HashMap<String, u32, FixedState>,
    /// Interned account names (few, and an index keeps aggregation keys `Copy`).
    accounts: Vec<String>,
    acct_ix: HashMap<String, u32, FixedState>,
    /// Owners, order types and times in force, held once (not in snapshots: a restored engine
    /// starts a new set).
    names: HashSet<Arc<str>, FixedState>,
    /// Slab of held orders (in full or settling); `free` lists the empty slots, reused first.
    orders: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Settling orders in `orders`.
    settling_n: usize,
    order_ix: IdIndex,
    lookups: Lookups,
    ends: VecDeque<(i64, u32, u32)>,
    /// `(deadline, serial, slot, end_gen)`: the order leaves on the first record after
    /// `deadline` if it is still that order (serial) and that end (generation). A sorted set,
    /// not a queue: with a session close and very long horizons deadlines can decrease.
    evictions: BTreeSet<Due>,
    /// Serial number of the next order (slots are reused; serials are not).
    next_serial: u64,
    issues: BTreeMap<String, u64>,
    records: u64,
    last_ts: Option<i64>,
    observe: bool,
    obs: Vec<Observation>,
    evict: bool,
    /// Rows and row updates the caller has not drained yet.
    undrained: Vec<Undrained>,
    /// Running aggregates maintained (off only for the batch [`compute`], which reports once).
    track: bool,
    /// Everything that does not move with the market: rows handed out (and their lookups
    /// resolved since), and the fill-level part of held orders.
    groups: Groups,
    /// Per aggregation cell, the part of held orders that follows their symbol's current quote
    /// and tape, as linear forms evaluated when asked.
    live: BTreeMap<CellKey, LinForm>,
    /// Working orders with executions: their VWAP to "now" is not linear in the tape, so
    /// [`ExecQuality::aggregates`] measures each of them.
    pass: BTreeSet<u32>,
}

/// Which orders a filtered report covers; `None` fields match everything. Time bounds apply to
/// the order's receipt time: `from <= t_r < to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub account: Option<String>,
    pub symbol: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl ReportFilter {
    pub(crate) fn keeps(&self, account: Option<&str>, symbol: &str, t_r: i64) -> bool {
        self.account.as_deref().is_none_or(|a| account == Some(a))
            && self.symbol.as_deref().is_none_or(|s| s == symbol)
            && self.from.is_none_or(|f| t_r >= f.as_nanos())
            && self.to.is_none_or(|t| t_r < t.as_nanos())
    }
}

/// The batch form: exactly the streaming engine fed `records` in order (every order kept, no
/// running aggregates: the report is built once at the end).
pub fn compute(records: &[Record], params: &Params) -> Result<Report, ExecqError> {
    let mut e = ExecQuality::batch(params.clone())?;
    for r in records {
        e.on_record(r);
    }
    Ok(e.report())
}

fn usable(q: Option<Quote>, policy: CrossedQuote) -> Option<Quote> {
    q.filter(|q| policy == CrossedQuote::Use || q.bid <= q.ask)
}

fn classify(
    order_type: Option<&str>,
    limit: Option<Decimal>,
    side: Side,
    quote: Option<Quote>,
    band: Decimal,
) -> (OrderClass, Marketability) {
    let ot = order_type.unwrap_or("").to_ascii_lowercase();
    if ot == "stop" || ot == "stop_limit" {
        return (OrderClass::Stop, Marketability::Unclassified);
    }
    let Some(l) = limit.filter(|_| ot != "market") else {
        return (OrderClass::Market, Marketability::Market);
    };
    let Some(q) = quote else {
        return (OrderClass::Unclassified, Marketability::Unclassified);
    };
    let class = match side {
        Side::Buy if l >= q.ask => OrderClass::MarketableLimit,
        Side::Buy if l > q.bid => OrderClass::InsideTheQuote,
        Side::Buy if l == q.bid => OrderClass::AtTheQuote,
        Side::Buy if l >= q.bid - band => OrderClass::NearTheQuote,
        Side::Sell if l <= q.bid => OrderClass::MarketableLimit,
        Side::Sell if l < q.ask => OrderClass::InsideTheQuote,
        Side::Sell if l == q.ask => OrderClass::AtTheQuote,
        Side::Sell if l <= q.ask + band => OrderClass::NearTheQuote,
        _ => OrderClass::AwayFromQuote,
    };
    let m = if class == OrderClass::MarketableLimit {
        Marketability::MarketableLimit
    } else {
        Marketability::NonMarketableLimit
    };
    (class, m)
}

/// Index into [`SIZE_BUCKETS`] of a share quantity.
fn share_bucket(q: Decimal, round_lot: Decimal) -> u8 {
    if q < Decimal::ONE && !q.fract().is_zero() {
        0 // fractional
    } else if q < round_lot {
        1 // odd_lot
    } else if q < Decimal::ONE_HUNDRED {
        2 // <100
    } else if q < Decimal::from(500) {
        3
    } else if q < Decimal::from(2000) {
        4
    } else if q < Decimal::from(5000) {
        5
    } else {
        6 // 5000+
    }
}

/// Index into [`SIZE_BUCKETS`] of a notional.
fn notional_bucket(n: Decimal) -> u8 {
    const EDGES: [i64; 7] = [250, 1_000, 5_000, 10_000, 20_000, 50_000, 200_000];
    let i = EDGES
        .iter()
        .position(|edge| n < Decimal::from(*edge))
        .unwrap_or(EDGES.len());
    7 + i as u8
}

const UNKNOWN_BUCKET: u8 = 15;

fn bucket_name(b: u8) -> &'static str {
    SIZE_BUCKETS
        .get(usize::from(b))
        .copied()
        .unwrap_or("unknown")
}

fn ms_between(later: i64, earlier: i64) -> i64 {
    later.saturating_sub(earlier).div_euclid(NS_PER_MS)
}

fn f64_of(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

impl ExecQuality {
    /// A streaming engine: every order is kept (eviction is off until
    /// [`ExecQuality::set_eviction`]) and the running aggregates are maintained.
    pub fn new(params: Params) -> Result<ExecQuality, ExecqError> {
        Self::with_tracking(params, true)
    }

    /// The engine of the batch [`compute`]: every order kept and no running aggregates (the
    /// report is built once, at the end). Feed it with [`ExecQuality::on_record`], then take
    /// [`ExecQuality::report`] or, in bounded memory, [`ExecQuality::report_streamed`] /
    /// [`ExecQuality::held_rows_iter`]. Eviction is refused.
    pub fn batch(params: Params) -> Result<ExecQuality, ExecqError> {
        Self::with_tracking(params, false)
    }

    fn with_tracking(params: Params, track: bool) -> Result<ExecQuality, ExecqError> {
        let r = params.resolve()?;
        let n = r.horizons_ns.len();
        Ok(ExecQuality {
            groups: Groups::new(n),
            r,
            syms: Vec::new(),
            sym_ix: HashMap::with_hasher(FixedState::default()),
            accounts: Vec::new(),
            acct_ix: HashMap::with_hasher(FixedState::default()),
            names: HashSet::with_hasher(FixedState::default()),
            orders: Vec::new(),
            free: Vec::new(),
            settling_n: 0,
            order_ix: IdIndex::default(),
            lookups: Lookups::new(n),
            ends: VecDeque::new(),
            evictions: BTreeSet::new(),
            next_serial: 0,
            issues: BTreeMap::new(),
            records: 0,
            last_ts: None,
            observe: false,
            obs: Vec::new(),
            evict: false,
            undrained: Vec::new(),
            track,
            live: BTreeMap::new(),
            pass: BTreeSet::new(),
        })
    }

    pub fn params(&self) -> &Params {
        &self.r.p
    }

    /// Collect [`Observation`]s for [`ExecQuality::drain_observations`] (off by default, so
    /// batch runs do not buffer them).
    pub fn set_observations(&mut self, on: bool) {
        self.observe = on;
        if !on {
            self.obs.clear();
        }
    }

    /// The observations since the last drain.
    pub fn drain_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.obs)
    }

    /// Evict finished orders (off by default), in two stages, so that a finished order costs a
    /// few numbers while its realized-spread horizons run:
    ///
    /// 1. On the first record later than `end + late_fill_grace_ms` in event time, where `end`
    ///    is its last fill or cancel closing it, the order's row is final except for
    ///    realized-spread lookups still waiting (its end snapshot is taken and a later record
    ///    for it is too late). Its row goes out ([`ExecQuality::drain_rows`], a
    ///    [`RowChange::Row`]) and its state is freed. If lookups wait, the row carries them in
    ///    [`OrderQuality::pending_spreads`] and a compact record of the order stays (see
    ///    [`crate::SpreadUpdate`]).
    /// 2. When its last lookup resolves (the first record after its last fill's longest
    ///    horizon), a [`RowChange::Update`] completing that row goes out and the record leaves.
    ///
    /// The running [`ExecQuality::aggregates`] still include every order. [`ExecQuality::report`],
    /// [`ExecQuality::report_filtered`], [`ExecQuality::order`] and [`ExecQuality::held_rows`]
    /// cover orders held in full only; [`ExecQuality::spread_views`] gives the settling ones as
    /// updates of their rows, and [`ExecQuality::report_with`] combines stored rows with both.
    ///
    /// With eviction on, a fill or cancel naming an order the engine does not hold in full
    /// (unknown, or finished more than the grace ago) is counted as
    /// `fill_for_unknown_or_evicted_order` / `cancel_for_unknown_or_evicted_order` and ignored;
    /// an `order_new` reusing the id of a settling order is a `duplicate_order_id`, one reusing
    /// an id that left completely starts a new order.
    ///
    /// Refused with `is_end_price: end_of_data_mid`: there every order's shortfall is valued
    /// at the symbol's last mid in the data, so no row is ever final.
    pub fn set_eviction(&mut self, on: bool) -> Result<(), ExecqError> {
        if !on {
            self.evict = false;
            self.evictions.clear();
            return Ok(());
        }
        if self.r.p.is_end_price == IsEndPrice::EndOfDataMid {
            return Err(ExecqError::EvictionUnsupported(
                "is_end_price end_of_data_mid values every order at the last mid in the data, \
                 so no order's row is ever final"
                    .into(),
            ));
        }
        if !self.track {
            return Err(ExecqError::EvictionUnsupported(
                "the batch engine keeps every order".into(),
            ));
        }
        if self.evict {
            return Ok(());
        }
        self.evict = true;
        // Orders that ended before eviction was turned on.
        let due: Vec<Due> = (0..self.orders.len())
            .filter_map(|ix| {
                let o = self.ord(ix)?;
                Some((self.deadline(o.end_ts?), o.serial, ix as u32, o.end_gen))
            })
            .collect();
        self.evictions.extend(due);
        Ok(())
    }

    pub fn eviction(&self) -> bool {
        self.evict
    }

    /// The rows of the orders that left the engine since the last drain and the updates of rows
    /// whose realized-spread lookups resolved, in the order they happened (a row before its
    /// update). Apply them in order to a store keyed by order id: a row replaces the stored row
    /// with its id, an update completes it ([`RowUpdater::apply`]). A row without
    /// `pending_spreads`, and a row completed by its update, equals the row the batch
    /// [`compute`] gives that order.
    pub fn drain_rows(&mut self) -> Vec<RowChange> {
        let done = std::mem::take(&mut self.undrained);
        let mut cache = None;
        let n = self.r.horizons_ns.len();
        done.into_iter()
            .map(|u| match u {
                Undrained::Row(o) => {
                    let (_, label) = self.window(o.t_r, &mut cache);
                    let mut row = self.finalize(&o, o.sums.to_box(n), 0, label);
                    if o.pending_n > 0 {
                        row.pending_spreads = Some(Box::new(PendingSpreads {
                            lookups: o.pending_n,
                            horizons: o
                                .pend
                                .iter()
                                .map(|l| PendingHorizon {
                                    shares: l.q,
                                    signed_2qp: l.s2qp,
                                    q_es: l.q_es,
                                    q_mid: l.q_mid,
                                })
                                .collect(),
                        }));
                    }
                    RowChange::Row(Box::new(row))
                }
                Undrained::Update(u) => RowChange::Update(u),
            })
            .collect()
    }

    /// Records seen (including skipped ones).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records skipped or adjusted, by reason.
    pub fn data_issues(&self) -> BTreeMap<String, u64> {
        self.issues.clone()
    }

    /// Number of orders held in full (working, or finished within the late-fill grace).
    pub fn held_orders(&self) -> usize {
        self.order_ix.len() - self.settling_n
    }

    /// Number of finished orders whose row went out while realized-spread lookups wait.
    pub fn settling_orders(&self) -> usize {
        self.settling_n
    }

    pub fn state_sizes(&self) -> StateSizes {
        StateSizes {
            held_orders: self.held_orders(),
            settling_orders: self.settling_n,
            order_slots: self.orders.len(),
            pending_fills: self.lookups.fills.len(),
            pending_lookups: self.lookups.waiting(),
            undrained_rows: self.undrained.len(),
            live_cells: self.live.len(),
            aggregate_keys: self.groups.keys(),
        }
    }

    /// When an order that ended at `end` leaves the full table: after the grace for late
    /// records (its realized-spread lookups may wait longer, in a compact record).
    fn deadline(&self, end: i64) -> i64 {
        end.saturating_add(self.r.grace_ns)
    }

    fn issue(&mut self, reason: &'static str) {
        match self.issues.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.issues.insert(reason.to_string(), 1);
            }
        }
    }

    fn sym(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.sym_ix.get(name) {
            return i;
        }
        let i = self.syms.len() as u32;
        self.syms.push(SymState {
            name: name.to_string(),
            cur: None,
            before: None,
            tape_q: Decimal::ZERO,
            tape_n: Decimal::ZERO,
        });
        self.sym_ix.insert(name.to_string(), i);
        i
    }

    fn account(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.acct_ix.get(name) {
            return i;
        }
        let i = self.accounts.len() as u32;
        self.accounts.push(name.to_string());
        self.acct_ix.insert(name.to_string(), i);
        i
    }

    /// `name` held once (see `names`).
    fn name(&mut self, name: Option<&String>) -> Option<Arc<str>> {
        let name = name?.as_str();
        if let Some(n) = self.names.get(name) {
            return Some(n.clone());
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        Some(n)
    }

    /// The order in slot `ix` if it is held in full.
    fn ord(&self, ix: usize) -> Option<&OrderState> {
        match self.orders.get(ix) {
            Some(Some(Slot::Full(o))) => Some(o),
            _ => None,
        }
    }

    fn ord_mut(&mut self, ix: usize) -> Option<&mut OrderState> {
        match self.orders.get_mut(ix) {
            Some(Some(Slot::Full(o))) => Some(o),
            _ => None,
        }
    }

    /// Apply one record. Records must come in time order; an earlier one is skipped and
    /// counted as `out_of_order`.
    pub fn on_record(&mut self, rec: &Record) {
        self.records += 1;
        let ts = rec.ts.as_nanos();
        if self.last_ts.is_some_and(|l| ts < l) {
            self.issue("out_of_order");
            return;
        }
        self.last_ts = Some(ts);
        self.advance(ts);
        match rec.kind {
            Kind::Quote => self.on_quote(rec, ts),
            Kind::Trade => self.on_trade(rec),
            Kind::OrderNew => self.on_order_new(rec, ts),
            Kind::Fill => self.on_fill(rec, ts),
            Kind::OrderCancel => self.on_cancel(rec, ts),
        }
    }

    /// Resolve every horizon lookup and order end strictly before `ts`: all records at those
    /// timestamps have been applied, so the prevailing quote and tape are final for them.
    /// Then evict the orders whose deadline has passed.
    fn advance(&mut self, ts: i64) {
        for k in 0..self.r.horizons_ns.len() {
            let h = self.r.horizons_ns[k];
            while let Some(f) = self
                .lookups
                .done
                .get(k)
                .and_then(|&done| self.lookups.fills.get(done))
            {
                if self.r.horizon_target(f.t_e, h) >= ts {
                    break;
                }
                let f = f.clone();
                self.lookups.done[k] += 1;
                self.resolve_lookup(k, &f);
            }
        }
        self.lookups.trim();
        while let Some(&(end, ix, gen_)) = self.ends.front() {
            if end >= ts {
                break;
            }
            self.ends.pop_front();
            let Some(o) = self.ord(ix as usize) else {
                continue;
            };
            if o.end_gen != gen_ {
                continue; // superseded by a later fill after the cancel
            }
            let Some(s) = self.syms.get(o.sym as usize) else {
                continue;
            };
            let snap = EndSnap {
                mid: usable(s.cur, self.r.p.crossed_quote).map(|q| q.mid()),
                tape_q: s.tape_q,
                tape_n: s.tape_n,
            };
            let before = self.before(ix as usize);
            if let Some(o) = self.ord_mut(ix as usize) {
                o.end = Some(snap);
            }
            self.after(ix as usize, before);
            if self.observe {
                self.emit_completion(ix as usize, end);
            }
        }
        while let Some(&due) = self.evictions.first() {
            if due.0 >= ts {
                break;
            }
            self.evictions.pop_first();
            self.evict_order(due, ts);
        }
    }

    /// Horizon `k` of fill `f` reached its target: resolve it into the order, held in full or
    /// settling, and into the running aggregates.
    fn resolve_lookup(&mut self, k: usize, f: &PendingFill) {
        let ix = f.slot as usize;
        let track = self.track;
        let n = self.r.horizons_ns.len();
        let crossed = self.r.p.crossed_quote;
        let mid_of = |syms: &[SymState], sym: u32| {
            syms.get(sym as usize)
                .and_then(|s| usable(s.cur, crossed))
                .map(|q| q.mid())
        };
        let (cell, side, resolved, settled) = match self.orders.get_mut(ix) {
            Some(Some(Slot::Full(o))) => {
                o.pending_n = o.pending_n.saturating_sub(1);
                let resolved = mid_of(&self.syms, o.sym).map(|m| {
                    let mut h = crate::stats::HorizonSums::default();
                    add_horizon(&mut h, o.side, f, m);
                    h
                });
                if let Some(h) = &resolved
                    && let Some(acc) = o.sums.get_mut(n).horizons.get_mut(k)
                {
                    acc.q += h.q;
                    acc.rs += h.rs;
                    acc.es += h.es;
                    acc.mid += h.mid;
                    acc.mid_h += h.mid_h;
                }
                if !track {
                    return;
                }
                if let Some(l) = o.pend.get_mut(k) {
                    l.sub(&HorizonLin::of(o.side, f));
                }
                (o.cell(o.liq), o.side, resolved, false)
            }
            Some(Some(Slot::Settling(s))) => {
                s.left = s.left.saturating_sub(1);
                let resolved = match mid_of(&self.syms, s.cell.sym) {
                    Some(m) => {
                        if let Some(x) = s.mid_q.get_mut(k) {
                            *x += f.q * m;
                        }
                        let mut h = crate::stats::HorizonSums::default();
                        add_horizon(&mut h, s.side, f, m);
                        Some(h)
                    }
                    None => {
                        s.miss(k, &static_part(s.side, f));
                        None
                    }
                };
                (s.cell, s.side, resolved, s.left == 0)
            }
            _ => return,
        };
        if track {
            if let Some(h) = &resolved {
                self.groups.add_horizon(&cell, k, h);
            }
            if let Some(form) = self.live.get_mut(&cell) {
                if let Some(l) = form.pend.get_mut(k) {
                    l.sub(&HorizonLin::of(side, f));
                }
                if form.is_empty() {
                    self.live.remove(&cell);
                }
            }
        }
        if settled {
            self.settled(ix);
        }
    }

    /// The settling order in slot `ix` has no lookup left: its update goes out and it leaves.
    fn settled(&mut self, ix: usize) {
        let Some(Slot::Settling(s)) = self.orders.get_mut(ix).and_then(Option::take) else {
            return;
        };
        self.settling_n -= 1;
        self.free.push(ix as u32);
        self.order_ix.remove(&s.id, ix as u32);
        self.undrained.push(Undrained::Update(s.update()));
    }

    /// First stage of eviction (see [`ExecQuality::set_eviction`]).
    fn evict_order(&mut self, due: Due, ts: i64) {
        let (_, serial, slot, gen_) = due;
        let ix = slot as usize;
        let Some(o) = self.ord(ix) else { return };
        if o.serial != serial || o.end_gen != gen_ {
            return; // superseded by a later end (which has its own deadline)
        }
        if o.end.is_none() || self.pass.contains(&slot) {
            // Not expected (the end snapshot is taken on the first record after the end, and
            // an ended order is not measured to now): try again on the next later record.
            self.evictions.insert((ts, serial, slot, gen_));
            return;
        }
        let n = self.r.horizons_ns.len();
        let Some(Some(Slot::Full(o))) = self.orders.get_mut(ix).map(Option::take) else {
            return;
        };
        if o.pending_n == 0 {
            self.free.push(slot);
            self.order_ix.remove(&o.id, slot);
        } else {
            // Its lookups keep resolving into this record; the order's contribution to
            // `groups` is its row's sums, and `live` keeps its waiting lookups.
            self.orders[ix] = Some(Slot::Settling(Settling::of(&o, n)));
            self.settling_n += 1;
        }
        self.undrained.push(Undrained::Row(o));
    }

    fn on_quote(&mut self, rec: &Record, ts: i64) {
        let (Some(bid), Some(ask)) = (rec.bid, rec.ask) else {
            self.issue("quote_without_bid_or_ask");
            return;
        };
        if bid <= Decimal::ZERO || ask <= Decimal::ZERO {
            self.issue("quote_non_positive");
            return;
        }
        let i = self.sym(&rec.symbol) as usize;
        let s = &mut self.syms[i];
        if let Some(c) = s.cur
            && c.ts < ts
        {
            s.before = Some(c);
        }
        s.cur = Some(Quote { ts, bid, ask });
    }

    fn on_trade(&mut self, rec: &Record) {
        let (Some(q), Some(p)) = (rec.qty, rec.price) else {
            self.issue("trade_without_qty_or_price");
            return;
        };
        if q <= Decimal::ZERO || p <= Decimal::ZERO {
            self.issue("trade_non_positive");
            return;
        }
        let i = self.sym(&rec.symbol) as usize;
        self.syms[i].tape_q += q;
        self.syms[i].tape_n += q * p;
    }

    /// The time-window code of a receipt time: hour or day number since the epoch, or
    /// `year*12 + month0`.
    fn window_code(&self, t_r: i64) -> i64 {
        match self.r.p.time_window {
            TimeWindow::Hour => t_r.div_euclid(3_600_000_000_000),
            TimeWindow::Day => t_r.div_euclid(NS_PER_DAY),
            TimeWindow::Month => {
                let dt = Timestamp::from_nanos(t_r).to_datetime();
                i64::from(dt.year()) * 12 + i64::from(dt.month0())
            }
        }
    }

    fn on_order_new(&mut self, rec: &Record, ts: i64) {
        let (Some(id), Some(side), Some(qty)) = (&rec.order_id, rec.side, rec.qty) else {
            self.issue("order_new_without_id_side_or_qty");
            return;
        };
        if qty <= Decimal::ZERO {
            self.issue("order_new_non_positive_qty");
            return;
        }
        if self.order_ix.get(id, &self.orders).is_some() {
            self.issue("duplicate_order_id");
            return;
        }
        let si = self.sym(&rec.symbol);
        let account = rec.account.as_deref().map(|a| self.account(a));
        let window = self.window_code(ts);
        let s = &self.syms[si as usize];
        let raw = match self.r.p.quote_at_receipt {
            QuoteTiming::Inclusive => s.cur,
            QuoteTiming::Strict => match s.cur {
                Some(c) if c.ts < ts => Some(c),
                _ => s.before,
            },
        };
        let mut notes = 0;
        let receipt = usable(raw, self.r.p.crossed_quote);
        match raw {
            None => notes |= N_NO_QUOTE,
            Some(q) if q.bid > q.ask => notes |= N_CROSSED,
            Some(q) if q.bid == q.ask => notes |= N_LOCKED,
            _ => {}
        }
        let (class, marketability) = classify(
            rec.order_type.as_deref(),
            rec.price,
            side,
            receipt,
            self.r.p.near_quote_band,
        );
        let size_bucket = match self.r.p.size_bucket_basis {
            SizeBucketBasis::Shares => share_bucket(qty, self.r.p.round_lot),
            SizeBucketBasis::Notional => {
                let mid = receipt.map(|q| q.mid());
                let px = match self.r.p.notional_price {
                    NotionalPrice::ReceiptMid => mid,
                    NotionalPrice::LimitPrice => rec.price.or(mid),
                };
                px.map_or(UNKNOWN_BUCKET, |p| notional_bucket(qty * p))
            }
        };
        let start_tape = (s.tape_q, s.tape_n);
        let id: Arc<str> = Arc::from(id.as_str());
        let owner = self.name(rec.owner.as_ref());
        let order_type = self.name(rec.order_type.as_ref());
        let tif = self.name(rec.tif.as_ref());
        let order = OrderState {
            id: id.clone(),
            account,
            owner,
            sym: si,
            side,
            order_type,
            tif,
            limit: rec.price,
            decision: rec.decision_price,
            t_r: ts,
            receipt,
            class,
            marketability,
            size_bucket,
            window,
            qty,
            executed: Decimal::ZERO,
            cancelled: Decimal::ZERO,
            uncounted: Decimal::ZERO,
            fill_count: 0,
            first_fill: None,
            complete: None,
            liq: 0,
            sums: OrderSums::default(),
            pend: Vec::new(),
            pending_n: 0,
            serial: self.next_serial,
            start_tape,
            end_ts: None,
            end_gen: 0,
            end: None,
            notes,
            completion_emitted: false,
        };
        let order = Some(Slot::Full(Box::new(order)));
        let ix = match self.free.pop() {
            Some(ix) => {
                self.orders[ix as usize] = order;
                ix
            }
            None => {
                self.orders.push(order);
                (self.orders.len() - 1) as u32
            }
        };
        self.next_serial += 1;
        self.order_ix.insert(ix, &self.orders);
        if self.track
            && let Some(o) = self.ord(ix as usize)
        {
            let c = self.contribution(o);
            self.add_contribution(ix, o.cell(c.liq), c);
        }
    }

    /// The slot of the order a fill or cancel names, if it is held in full (a settling order's
    /// grace for late records has passed).
    fn lookup(&mut self, rec: &Record, what: &'static str, evicted: &'static str) -> Option<usize> {
        let ix = rec
            .order_id
            .as_deref()
            .and_then(|id| self.order_ix.get(id, &self.orders))
            .map(|i| i as usize)
            .filter(|&i| self.ord(i).is_some());
        if ix.is_none() {
            self.issue(if self.evict { evicted } else { what });
        }
        ix
    }

    fn set_end(&mut self, ix: usize, ts: i64) {
        let Some(o) = self.ord_mut(ix) else { return };
        o.end_ts = Some(ts);
        o.end_gen += 1;
        o.end = None;
        let (gen_, serial) = (o.end_gen, o.serial);
        self.ends.push_back((ts, ix as u32, gen_));
        if self.evict {
            let d = self.deadline(ts);
            self.evictions.insert((d, serial, ix as u32, gen_));
        }
    }

    fn on_fill(&mut self, rec: &Record, ts: i64) {
        let (Some(q), Some(p)) = (rec.qty, rec.price) else {
            self.issue("fill_without_qty_or_price");
            return;
        };
        if q <= Decimal::ZERO || p <= Decimal::ZERO {
            self.issue("fill_non_positive");
            return;
        }
        let Some(ix) = self.lookup(
            rec,
            "fill_for_unknown_order",
            "fill_for_unknown_or_evicted_order",
        ) else {
            return;
        };
        let before = self.before(ix);
        let Some(sym) = self.ord(ix).map(|o| o.sym as usize) else {
            return;
        };
        let bench_now = usable(self.syms[sym].cur, self.r.p.crossed_quote);
        let track = self.track;
        let r = &self.r;
        let Some(Some(Slot::Full(o))) = self.orders.get_mut(ix) else {
            return;
        };
        if rec.side.is_some_and(|s| s != o.side) {
            o.notes |= N_SIDE_MISMATCH; // the order's side is authoritative
        }
        // A fill beyond the open quantity after a cancel: the cancel took less than it said
        // (the fill raced it), so the cancelled shares shrink; beyond that it is an overfill.
        let mut short = q - o.leaves().max(Decimal::ZERO);
        if short > Decimal::ZERO {
            let c = short.min(o.cancelled);
            o.cancelled -= c;
            short -= c;
            let u = short.min(o.uncounted);
            o.uncounted -= u;
            short -= u;
            if !(c + u).is_zero() {
                o.notes |= N_FILL_AFTER_CANCEL;
            }
            if short > Decimal::ZERO {
                o.notes |= N_OVERFILL;
            }
        }
        o.executed += q;
        o.fill_count += 1;
        let qp = q * p;
        let sums = o.sums.get_mut(r.horizons_ns.len());
        sums.exec_notional += qp;
        sums.fees += rec.fee.unwrap_or(Decimal::ZERO);
        if ts < o.t_r {
            o.notes |= N_FILL_BEFORE_RECEIPT;
        }
        let t_ms = ms_between(ts, o.t_r);
        let q_t = q * Decimal::from(t_ms);
        sums.exec_time += q_t;
        sums.time_buckets[exec_bucket(t_ms)] += q;
        o.first_fill.get_or_insert(ts);
        o.liq |= match rec.liquidity {
            Some(Liquidity::Maker) => 1,
            Some(Liquidity::Taker) => 2,
            None => 0,
        };
        let bench = match r.p.es_benchmark {
            EsBenchmark::ReceiptMid => o.receipt,
            EsBenchmark::ExecutionMid => bench_now,
        };
        let mut es_obs = None;
        if let Some(b) = bench {
            let m = b.mid();
            let es = signed(o.side, Decimal::TWO * (p - m));
            let q_es = q * es;
            let q_mid = q * m;
            sums.es_q += q;
            sums.es += q_es;
            sums.es_mid += q_mid;
            sums.es_quoted += q * (b.ask - b.bid);
            // One lookup per horizon, all in one record: the targets follow from `ts`.
            let n = r.horizons_ns.len();
            let fill = PendingFill {
                t_e: ts,
                slot: ix as u32,
                price: p,
                q,
                bench: m,
            };
            o.pending_n += n as u32;
            if track {
                if o.pend.len() < n {
                    o.pend.resize(n, HorizonLin::default());
                }
                let lin = HorizonLin::of(o.side, &fill);
                for l in &mut o.pend {
                    l.add(&lin);
                }
            }
            self.lookups.fills.push_back(fill);
            es_obs = Some((es, m));
        } else if o.receipt.is_some() {
            o.notes |= N_NO_BENCH;
        }
        if let Some(rq) = o.receipt {
            let m = rq.mid();
            sums.rq_q += q;
            sums.rq_mid += q * m;
            sums.arrival += signed(o.side, qp - q * m);
            // Improvement amount per share, positive when better than the far touch.
            let better = match o.side {
                Side::Buy => rq.ask - p,
                Side::Sell => p - rq.bid,
            };
            if better > Decimal::ZERO {
                sums.pi_q += q;
                sums.pi_amount += q * better;
                sums.pi_time += q_t;
            } else if better.is_zero() {
                sums.at_q += q;
                sums.at_time += q_t;
            } else {
                sums.out_q += q;
                sums.out_amount -= q * better;
                sums.out_time += q_t;
            }
        }
        if o.complete.is_none() && o.executed >= o.qty {
            o.complete = Some(ts);
        }
        let ended = o.leaves() <= Decimal::ZERO;
        if self.observe {
            let (symbol, order_id, class) = (
                self.syms[o.sym as usize].name.clone(),
                o.id.clone(),
                o.class,
            );
            let t = Timestamp::from_nanos(ts);
            let mut push = |metric, value| {
                self.obs.push(Observation {
                    ts: t,
                    symbol: symbol.clone(),
                    order_id: order_id.to_string(),
                    order_class: class,
                    metric,
                    value,
                })
            };
            push(Metric::TimeToExecutionMs, t_ms as f64);
            if let Some((es, m)) = es_obs {
                push(Metric::EffectiveSpread, f64_of(es));
                if !m.is_zero() {
                    push(
                        Metric::EffectiveSpreadBps,
                        f64_of(es / m * Decimal::from(10_000)),
                    );
                }
            }
        }
        if ended {
            self.set_end(ix, ts);
        }
        self.after(ix, before);
    }

    fn on_cancel(&mut self, rec: &Record, ts: i64) {
        let Some(ix) = self.lookup(
            rec,
            "cancel_for_unknown_order",
            "cancel_for_unknown_or_evicted_order",
        ) else {
            return;
        };
        let count = self.r.p.ioc_residual_as_cancel;
        let before = self.before(ix);
        let Some(o) = self.ord_mut(ix) else { return };
        let leaves = o.leaves().max(Decimal::ZERO);
        let asked = rec.qty.unwrap_or(leaves);
        if asked < Decimal::ZERO {
            self.issue("cancel_negative_qty");
            return;
        }
        if asked > leaves {
            o.notes |= N_CANCEL_EXCEEDS;
        }
        let c = asked.min(leaves);
        let ioc = o
            .tif
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("ioc") || t.eq_ignore_ascii_case("fok"));
        if ioc && !count {
            o.uncounted += c;
        } else {
            o.cancelled += c;
        }
        if o.leaves() <= Decimal::ZERO && !c.is_zero() {
            self.set_end(ix, ts);
        }
        self.after(ix, before);
    }

    fn emit_completion(&mut self, ix: usize, end: i64) {
        let Some(o) = self.ord(ix) else { return };
        if o.completion_emitted {
            return;
        }
        let symbol = self.syms[o.sym as usize].name.clone();
        let mut out = Vec::new();
        if let Some(v) = crate::stats::bps(o.sums.arrival, o.sums.rq_mid) {
            out.push((Metric::ArrivalCostBps, f64_of(v)));
        }
        if let Some(f) = o.first_fill {
            out.push((Metric::TimeToFirstFillMs, ms_between(f, o.t_r) as f64));
        }
        if let Some(c) = o.complete {
            out.push((Metric::TimeToCompleteFillMs, ms_between(c, o.t_r) as f64));
        }
        if let Some(snap) = o.end
            && let Some(s) = vwap_slippage(o, &snap, self.r.p.own_prints_on_tape)
        {
            out.push((Metric::VwapSlippageBps, f64_of(s)));
        }
        let (id, class) = (o.id.clone(), o.class);
        for (metric, value) in out {
            self.obs.push(Observation {
                ts: Timestamp::from_nanos(end),
                symbol: symbol.clone(),
                order_id: id.to_string(),
                order_class: class,
                metric,
                value,
            });
        }
        if let Some(o) = self.ord_mut(ix) {
            o.completion_emitted = true;
        }
    }

    /// One order's record as of now, if it is held in full (pending horizons and an unfinished
    /// end take the end-of-data rule, as in [`ExecQuality::report`]). `None` for an unknown
    /// order or one whose row went out (a settling order: see [`ExecQuality::spread_view`]).
    pub fn order(&self, order_id: &str) -> Option<OrderQuality> {
        let ix = self.order_ix.get(order_id, &self.orders)? as usize;
        let o = self.ord(ix)?;
        let mut sums = o.sums.to_box(self.r.horizons_ns.len());
        let mut notes = 0;
        for k in 0..self.lookups.done.len() {
            for f in self.lookups.waiting_for(k) {
                if f.slot as usize == ix {
                    notes |= self.resolve_at_end(o, &mut sums, k, f);
                }
            }
        }
        let (_, label) = self.window(o.t_r, &mut None);
        Some(self.finalize(o, sums, notes, label))
    }

    /// Apply the end-of-data rule to a waiting lookup of `o`; returns the notes it adds.
    fn resolve_at_end(&self, o: &OrderState, sums: &mut Sums, k: usize, f: &PendingFill) -> u32 {
        if self.r.p.rs_end_of_data == RsEndOfData::Exclude {
            return N_RS_BEYOND;
        }
        match usable(self.syms[o.sym as usize].cur, self.r.p.crossed_quote) {
            Some(q) => {
                if let Some(h) = sums.horizons.get_mut(k) {
                    add_horizon(h, o.side, f, q.mid());
                }
                0
            }
            None => N_RS_BEYOND,
        }
    }

    /// The decision price `Pd` (A9).
    fn decision_price(&self, o: &OrderState) -> Option<Decimal> {
        o.decision.or(match self.r.p.decision_price_fallback {
            DecisionPriceFallback::None => None,
            DecisionPriceFallback::ArrivalMid => o.receipt.map(|q| q.mid()),
        })
    }

    /// Order-level counts of one order (its fill-level sums are already in `sums`).
    fn order_counts(o: &OrderState, sums: &mut Sums) {
        sums.orders = 1;
        sums.orders_filled = u64::from(o.fill_count > 0);
        sums.orders_complete = u64::from(o.complete.is_some());
        sums.shares_ordered = o.qty;
        sums.shares_executed = o.executed;
        sums.shares_cancelled = o.cancelled;
        if let Some(f) = o.first_fill {
            sums.first_fill_ms = i128::from(ms_between(f, o.t_r));
        }
        if let Some(c) = o.complete {
            sums.complete_fill_ms = i128::from(ms_between(c, o.t_r));
        }
    }

    /// A9 implementation shortfall of one order with end price `pn`; returns its notes.
    fn shortfall(&self, o: &OrderState, pn: Option<Decimal>, sums: &mut Sums) -> u32 {
        let p = &self.r.p;
        let p0 = o.receipt.map(|q| q.mid());
        let Some(pd) = self.decision_price(o) else {
            return N_NO_DECISION;
        };
        let unfilled = o.qty - o.executed;
        let x = o.executed;
        let notional = o.sums.exec_notional;
        // The unfilled part needs an end price unless there is none.
        let pn_eff = if unfilled.is_zero() {
            pn.or(Some(pd))
        } else {
            pn
        };
        let Some(pn) = pn_eff else {
            return N_NO_END_PRICE;
        };
        let exec = o.signed(notional - x * pd);
        let opp = o.signed(unfilled * (pn - pd));
        let fees = if p.is_include_fees {
            o.sums.fees
        } else {
            Decimal::ZERO
        };
        sums.is_orders = 1;
        sums.is_execution = exec;
        sums.is_opportunity = opp;
        sums.is_fees = fees;
        sums.is_total = exec + opp + fees;
        sums.is_denominator = match p.is_bps_denominator {
            IsBpsDenominator::Paper => o.qty * pd,
            IsBpsDenominator::Executed => notional,
        };
        if let Some(p0) = p0 {
            sums.is_wagner_orders = 1;
            sums.is_delay = o.signed(o.qty * (p0 - pd));
            sums.is_trading = o.signed(notional - x * p0);
            sums.is_opportunity_arrival = o.signed(unfilled * (pn - p0));
        }
        0
    }

    /// A10 VWAP slippage and participation of one order over its interval to `end`; returns
    /// its notes. (The VWAPs themselves, full precision, only for an order with executions.)
    fn tape_part(&self, o: &OrderState, end: &EndSnap, sums: &mut Sums) -> u32 {
        let on_tape = self.r.p.own_prints_on_tape;
        let x = o.executed;
        let notional = o.sums.exec_notional;
        let mut notes = 0;
        let tape = tape_in(o, end, on_tape, true);
        if tape.0 <= Decimal::ZERO {
            notes |= N_NO_TAPE;
        } else {
            sums.part_x = x;
            sums.part_tape = tape.0;
        }
        if x > Decimal::ZERO {
            if let Some(v) = vwap_of(tape) {
                sums.vwap_orders = 1;
                sums.vwap_cost = o.signed(notional - x * v);
                sums.vwap_den = x * v;
            }
            if let Some(v) = vwap_of(tape_in(o, end, on_tape, false)) {
                sums.vwapx_orders = 1;
                sums.vwapx_cost = o.signed(notional - x * v);
                sums.vwapx_den = x * v;
            }
        }
        notes
    }

    /// The two VWAPs of an order's row (own prints included / excluded), rounded: the tape's
    /// `n / q` as [`ratio`] rounds it (the same as rounding the full quotient).
    fn shown_vwaps(&self, o: &OrderState, end: &EndSnap) -> (Option<Decimal>, Option<Decimal>) {
        let on_tape = self.r.p.own_prints_on_tape;
        let shown = |(q, n): (Decimal, Decimal)| {
            if q > Decimal::ZERO && n > Decimal::ZERO {
                ratio(n, q, PRICE_DP)
            } else {
                None
            }
        };
        (
            shown(tape_in(o, end, on_tape, true)),
            shown(tape_in(o, end, on_tape, false)),
        )
    }

    /// The symbol's state as the end of an order that has not ended (or whose end is not
    /// final yet): the order is measured to the end of the data.
    fn end_now(&self, sym: u32) -> EndSnap {
        let s = &self.syms[sym as usize];
        EndSnap {
            mid: usable(s.cur, self.r.p.crossed_quote).map(|q| q.mid()),
            tape_q: s.tape_q,
            tape_n: s.tape_n,
        }
    }

    fn finalize(
        &self,
        o: &OrderState,
        sums: Box<Sums>,
        extra_notes: u32,
        time_window: String,
    ) -> OrderQuality {
        let mut row = OrderQuality {
            order_id: String::new(),
            account: None,
            owner: None,
            symbol: String::new(),
            side: o.side,
            order_type: None,
            tif: None,
            limit_price: None,
            decision_price: None,
            receipt_ts: Timestamp::from_nanos(o.t_r),
            receipt_quote_ts: None,
            receipt_bid: None,
            receipt_ask: None,
            receipt_mid: None,
            receipt_quoted_spread: None,
            order_class: o.class,
            marketability: o.marketability,
            size_bucket: "",
            liquidity: "",
            time_window,
            status: OrderStatus::Open,
            end_ts: None,
            shares_open: Decimal::ZERO,
            fill_count: 0,
            avg_exec_price: None,
            time_to_first_fill_ms: None,
            time_to_complete_fill_ms: None,
            is_end_price: None,
            vwap: None,
            vwap_ex_own: None,
            notes: Vec::new(),
            stats: Stats::default(),
            sums,
            pending_spreads: None,
        };
        self.finalize_into(o, extra_notes, &mut row);
        row
    }

    /// Writes `o`'s row into `row`, reusing its strings and vectors. On entry `row.sums` holds
    /// the order's fill-level sums (waiting lookups resolved as they are to be) and
    /// `row.time_window` its window's label; every other field is overwritten.
    fn finalize_into(&self, o: &OrderState, extra_notes: u32, row: &mut OrderQuality) {
        let p = &self.r.p;
        let sym = &self.syms[o.sym as usize];
        let mut notes = o.notes | extra_notes;
        let now = self.end_now(o.sym);
        // An order whose end is not final yet (or that is still open) ends with the data.
        let end = o.end.unwrap_or(now);
        let sums = &mut *row.sums;
        Self::order_counts(o, sums);
        let p0 = o.receipt.map(|q| q.mid());
        let pn = match p.is_end_price {
            IsEndPrice::OrderEndMid => end.mid,
            IsEndPrice::EndOfDataMid => now.mid,
        };
        notes |= self.shortfall(o, pn, sums);
        notes |= self.tape_part(o, &end, sums);
        let (vwap, vwap_ex) = self.shown_vwaps(o, &end);
        let x = o.executed;
        let notional = o.sums.exec_notional;
        row.stats = Stats::from_sums_reusing(
            &row.sums,
            &self.r,
            std::mem::take(&mut row.stats.realized_spreads),
        );
        let status = if o.complete.is_some() {
            OrderStatus::Filled
        } else if o.leaves() <= Decimal::ZERO {
            if o.fill_count > 0 {
                OrderStatus::PartiallyFilledCancelled
            } else {
                OrderStatus::Cancelled
            }
        } else if o.fill_count > 0 {
            OrderStatus::PartiallyFilled
        } else {
            OrderStatus::Open
        };
        set_str(&mut row.order_id, &o.id);
        set_opt_str(
            &mut row.account,
            o.account
                .and_then(|a| self.accounts.get(a as usize))
                .map(String::as_str),
        );
        set_opt_str(&mut row.owner, o.owner.as_deref());
        set_str(&mut row.symbol, &sym.name);
        row.side = o.side;
        set_opt_str(&mut row.order_type, o.order_type.as_deref());
        set_opt_str(&mut row.tif, o.tif.as_deref());
        row.limit_price = o.limit.map(|d| d.normalize());
        row.decision_price = o.decision.map(|d| d.normalize());
        row.receipt_ts = Timestamp::from_nanos(o.t_r);
        row.receipt_quote_ts = o.receipt.map(|q| Timestamp::from_nanos(q.ts));
        row.receipt_bid = o.receipt.map(|q| q.bid.normalize());
        row.receipt_ask = o.receipt.map(|q| q.ask.normalize());
        row.receipt_mid = p0.map(|d| d.normalize());
        row.receipt_quoted_spread = o.receipt.map(|q| (q.ask - q.bid).normalize());
        row.order_class = o.class;
        row.marketability = o.marketability;
        row.size_bucket = bucket_name(o.size_bucket);
        row.liquidity = liquidity_of(o.liq);
        row.status = status;
        row.end_ts = o.end_ts.map(Timestamp::from_nanos);
        row.shares_open = o.leaves().max(Decimal::ZERO).normalize();
        row.fill_count = o.fill_count;
        row.avg_exec_price = ratio(notional, x, PRICE_DP);
        row.time_to_first_fill_ms = o.first_fill.map(|f| ms_between(f, o.t_r));
        row.time_to_complete_fill_ms = o.complete.map(|c| ms_between(c, o.t_r));
        row.is_end_price = pn.map(|d| d.normalize());
        row.vwap = vwap;
        row.vwap_ex_own = vwap_ex;
        row.notes.clear();
        row.notes.extend(
            NOTES
                .iter()
                .enumerate()
                .filter(|(i, _)| notes & (1 << i) != 0)
                .map(|(_, n)| *n),
        );
        row.pending_spreads = None;
    }

    /// Everything held, as of now. Pending realized-spread horizons take `rs_end_of_data`;
    /// orders still working are measured to the end of the data. Does not change the engine.
    ///
    /// With eviction on this covers only the orders held in full; build reports over every
    /// order with [`ExecQuality::report_with`] from the stored rows (or with
    /// [`crate::report_from_rows`] from rows brought up to now), and take running totals from
    /// [`ExecQuality::aggregates`].
    pub fn report(&self) -> Report {
        self.report_filtered(&ReportFilter::default())
    }

    /// [`ExecQuality::report`] as a value that builds its rows while it is serialized: the
    /// same serde output (the same JSON, byte for byte) with one row in memory at a time.
    pub fn report_streamed(&self) -> crate::rows::StreamedReport<'_> {
        crate::rows::StreamedReport { engine: self }
    }

    /// [`ExecQuality::report`] over the held orders that `filter` keeps (per-order records and
    /// every aggregate are computed from those orders only).
    pub fn report_filtered(&self, filter: &ReportFilter) -> Report {
        self.report_with(std::iter::empty(), filter)
    }

    /// A report over `stored` (the rows taken from [`ExecQuality::drain_rows`] with their
    /// updates applied, e.g. read back from storage) and the orders held now, both through
    /// `filter`: with every row drained since the start, the report over every order seen, as
    /// the batch [`compute`] would give it. A stored row still waiting for realized-spread
    /// lookups is brought up to now with the engine's view of it
    /// ([`ExecQuality::spread_views`]); rows with the id of an order held in full are replaced
    /// by the held one.
    pub fn report_with(
        &self,
        stored: impl IntoIterator<Item = OrderQuality>,
        filter: &ReportFilter,
    ) -> Report {
        let mut orders: BTreeMap<String, Box<OrderQuality>> = BTreeMap::new();
        let updater = RowUpdater::from_resolved(self.r.clone());
        let views = self.spread_views(filter);
        for mut row in stored {
            if filter.keeps(
                row.account.as_deref(),
                &row.symbol,
                row.receipt_ts.as_nanos(),
            ) {
                if row.pending_spreads.is_some()
                    && let Ok(i) = views.binary_search_by(|v| v.order_id().cmp(&row.order_id))
                {
                    // The view names this very order: it cannot fail to apply.
                    let _ = updater.apply(&mut row, &views[i]);
                }
                orders.insert(row.order_id.clone(), Box::new(row));
            }
        }
        for row in self.held_rows(filter) {
            orders.insert(row.order_id.clone(), Box::new(row));
        }
        let mut agg = RowAggregator::from_resolved(self.r.clone(), ReportFilter::default());
        for o in orders.values() {
            agg.add(o);
        }
        Report {
            params: self.r.p.clone(),
            records: self.records,
            data_issues: self.issues.clone(),
            aggregates: agg.finish(),
            orders,
        }
    }

    /// The current rows of the orders held in full that `filter` keeps, in order-id order
    /// (pending horizons and unfinished ends take the end-of-data rule, as in
    /// [`ExecQuality::report`]). Together with the rows drained so far (those still waiting for
    /// realized-spread lookups brought up to now with [`ExecQuality::spread_views`]) they are
    /// every order seen.
    pub fn held_rows(&self, filter: &ReportFilter) -> Vec<OrderQuality> {
        self.held_rows_iter(filter).collect()
    }

    /// [`ExecQuality::held_rows`] one row at a time, built as the iterator is advanced: memory
    /// for one row (plus an index of the held orders), however many orders are held.
    pub fn held_rows_iter<'a>(
        &'a self,
        filter: &ReportFilter,
    ) -> impl Iterator<Item = OrderQuality> + use<'a> {
        let n = self.r.horizons_ns.len();
        let (by_id, mut at_end) = self.held_order(filter);
        let mut window_cache: Option<(i64, String)> = None;
        by_id.into_iter().filter_map(move |ix| {
            let o = self.ord(ix as usize)?;
            let (s, notes) = at_end.remove(&ix).unwrap_or_else(|| (o.sums.to_box(n), 0));
            let (_, label) = self.window(o.t_r, &mut window_cache);
            Some(self.finalize(o, s, notes, label))
        })
    }

    /// The rows of [`ExecQuality::held_rows_iter`] handed to `f` one at a time in one reused
    /// row (its strings, vectors and sums written over for each order): the same rows, without
    /// allocating for each. Stops at `f`'s first error.
    pub fn for_each_held_row<E>(
        &self,
        filter: &ReportFilter,
        mut f: impl FnMut(&OrderQuality) -> Result<(), E>,
    ) -> Result<(), E> {
        let n = self.r.horizons_ns.len();
        let (by_id, at_end) = self.held_order(filter);
        let mut row: Option<OrderQuality> = None;
        let mut window: Option<i64> = None;
        for ix in by_id {
            let Some(o) = self.ord(ix as usize) else {
                continue;
            };
            let waiting = at_end.get(&ix);
            let notes = waiting.map_or(0, |w| w.1);
            let row = match row.as_mut() {
                None => {
                    let s = waiting.map_or_else(|| o.sums.to_box(n), |w| w.0.clone());
                    let code = self.window_code(o.t_r);
                    window = Some(code);
                    row.insert(self.finalize(o, s, notes, self.window_label(code)))
                }
                Some(row) => {
                    match (waiting, &o.sums.0) {
                        (Some(w), _) => row.sums.copy_from(&w.0),
                        (None, Some(s)) => row.sums.copy_from(s),
                        (None, None) => row.sums.set_zero(n),
                    }
                    let code = self.window_code(o.t_r);
                    if window != Some(code) {
                        window = Some(code);
                        row.time_window = self.window_label(code);
                    }
                    self.finalize_into(o, notes, row);
                    row
                }
            };
            f(row)?;
        }
        Ok(())
    }

    /// The held orders that `filter` keeps, in order-id order, and the end-of-data sums and
    /// notes of those with realized-spread lookups still waiting.
    #[allow(clippy::type_complexity)]
    fn held_order(
        &self,
        filter: &ReportFilter,
    ) -> (Vec<u32>, HashMap<u32, (Box<Sums>, u32), FixedState>) {
        let n = self.r.horizons_ns.len();
        let keeps = |o: &OrderState| {
            let name = o.account.and_then(|a| self.accounts.get(a as usize));
            filter.keeps(
                name.map(String::as_str),
                &self.syms[o.sym as usize].name,
                o.t_r,
            )
        };
        let by_id: Vec<u32> = (0..self.orders.len())
            .filter(|&ix| self.ord(ix).is_some_and(keeps))
            .map(|ix| ix as u32)
            .collect();
        // The orders with realized-spread lookups still waiting (the fills within the longest
        // horizon): their sums and notes take the end-of-data rule.
        let mut at_end: HashMap<u32, (Box<Sums>, u32), FixedState> =
            HashMap::with_hasher(FixedState::default());
        for k in 0..self.lookups.done.len() {
            for f in self.lookups.waiting_for(k) {
                if let Some(o) = self.ord(f.slot as usize).filter(|o| keeps(o)) {
                    let (s, notes) = at_end
                        .entry(f.slot)
                        .or_insert_with(|| (o.sums.to_box(n), 0));
                    *notes |= self.resolve_at_end(o, s, k, f);
                }
            }
        }
        // Sorted on (first 8 bytes, id, slot): the prefix (zero-padded, big-endian: it orders
        // as the ids do) decides most comparisons without reading the ids themselves.
        let prefix = |id: &str| {
            let mut b = [0u8; 8];
            let n = id.len().min(8);
            b[..n].copy_from_slice(&id.as_bytes()[..n]);
            u64::from_be_bytes(b)
        };
        let mut keyed: Vec<(u64, &str, u32)> = by_id
            .iter()
            .filter_map(|&ix| {
                let id = &*self.ord(ix as usize)?.id;
                Some((prefix(id), id, ix))
            })
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        (keyed.into_iter().map(|(_, _, ix)| ix).collect(), at_end)
    }

    /// The time-window code of a receipt time and its label, cached for runs of orders in one
    /// window.
    fn window(&self, t_r: i64, cache: &mut Option<(i64, String)>) -> (i64, String) {
        let code = self.window_code(t_r);
        if let Some((c, l)) = cache
            && *c == code
        {
            return (code, l.clone());
        }
        let label = self.window_label(code);
        *cache = Some((code, label.clone()));
        (code, label)
    }

    fn window_label(&self, code: i64) -> String {
        match self.r.p.time_window {
            TimeWindow::Hour => Timestamp::from_nanos(code.saturating_mul(3_600_000_000_000))
                .to_datetime()
                .format("%Y-%m-%dT%H")
                .to_string(),
            TimeWindow::Day => Timestamp::from_nanos(code.saturating_mul(NS_PER_DAY))
                .to_datetime()
                .format("%Y-%m-%d")
                .to_string(),
            TimeWindow::Month => {
                format!("{:04}-{:02}", code.div_euclid(12), code.rem_euclid(12) + 1)
            }
        }
    }

    /// Running aggregates over every order seen (finalized and held), equal to
    /// `compute(records).aggregates` over the same records. Cost: one evaluation per live
    /// aggregation cell and per working order with executions (their VWAP to "now"), plus
    /// one [`Stats`] per key; no pass over finalized orders.
    pub fn aggregates(&self) -> Aggregates {
        if !self.track {
            return self.report().aggregates;
        }
        let mut g = self.groups.clone();
        for (cell, form) in &self.live {
            if let Some(s) = form.eval(&self.syms[cell.sym as usize], &self.r) {
                g.add_at(cell, &s);
            }
        }
        for &ix in &self.pass {
            let Some(o) = self.ord(ix as usize) else {
                continue;
            };
            let mut s = Sums::default();
            self.tape_part(o, &self.end_now(o.sym), &mut s);
            g.add_at(&o.cell(o.liq), &s);
        }
        g.to_aggregates(
            &self.r,
            |a| {
                self.accounts
                    .get(a as usize)
                    .cloned()
                    .unwrap_or_else(|| "(none)".to_string())
            },
            |s| {
                self.syms
                    .get(s as usize)
                    .map(|s| s.name.clone())
                    .unwrap_or_default()
            },
            |w| self.window_label(w),
        )
    }

    /// What an order adds to the running aggregates now: the part fixed by its own records
    /// (into `groups`), the part linear in its symbol's quote and tape (into `live`), and
    /// whether its VWAP must be measured when asked (`pass`).
    fn contribution(&self, o: &OrderState) -> Contrib {
        let mut fixed = *o.sums.to_box(self.r.horizons_ns.len());
        Self::order_counts(o, &mut fixed);
        let mut lin = LinForm::default();
        if let Some(pd) = self.decision_price(o) {
            let unfilled = o.qty - o.executed;
            match (o.end, self.r.p.is_end_price) {
                // Nothing unfilled: the end price does not enter the sums.
                _ if unfilled.is_zero() => {
                    self.shortfall(o, None, &mut fixed);
                }
                (Some(end), IsEndPrice::OrderEndMid) => {
                    self.shortfall(o, end.mid, &mut fixed);
                }
                _ => lin.add_shortfall(o, pd, &self.r.p),
            }
        }
        let mut pass = false;
        match o.end {
            Some(end) => {
                self.tape_part(o, &end, &mut fixed);
            }
            // No executions: participation only, `tape now - tape at receipt` (never
            // negative), and no VWAP.
            None if o.executed.is_zero() => lin.add_unfilled_tape(o.start_tape.0),
            None => pass = true,
        }
        lin.pend.clone_from(&o.pend);
        Contrib {
            fixed,
            lin,
            pass,
            liq: o.liq,
        }
    }

    fn before(&self, ix: usize) -> Option<Contrib> {
        if !self.track {
            return None;
        }
        self.ord(ix).map(|o| self.contribution(o))
    }

    /// Replace the order's old contribution `before` by its current one.
    fn after(&mut self, ix: usize, before: Option<Contrib>) {
        let Some(before) = before else { return };
        let Some(o) = self.ord(ix) else { return };
        let now = self.contribution(o);
        let (cell_b, cell_a) = (o.cell(before.liq), o.cell(now.liq));
        self.groups
            .replace(&cell_b, &before.fixed, &cell_a, &now.fixed);
        if !before.lin.is_empty()
            && let Some(form) = self.live.get_mut(&cell_b)
        {
            form.sub(&before.lin);
            if form.is_empty() {
                self.live.remove(&cell_b);
            }
        }
        if !now.lin.is_empty() {
            self.live.entry(cell_a).or_default().add(&now.lin);
        }
        if before.pass != now.pass {
            if now.pass {
                self.pass.insert(ix as u32);
            } else {
                self.pass.remove(&(ix as u32));
            }
        }
    }

    fn add_contribution(&mut self, ix: u32, cell: CellKey, c: Contrib) {
        self.groups.add(&cell, &c.fixed);
        if !c.lin.is_empty() {
            self.live.entry(cell).or_default().add(&c.lin);
        }
        if c.pass {
            self.pass.insert(ix);
        }
    }
}

fn liquidity_of(liq: u8) -> &'static str {
    LIQUIDITY
        .get(usize::from(liq))
        .copied()
        .unwrap_or(LIQUIDITY[0])
}

/// Tape volume and notional over the order's interval, own prints included (`incl`) or not.
fn tape_in(o: &OrderState, end: &EndSnap, on_tape: bool, incl: bool) -> (Decimal, Decimal) {
    let q = end.tape_q - o.start_tape.0;
    let n = end.tape_n - o.start_tape.1;
    match (on_tape, incl) {
        (true, true) | (false, false) => (q, n),
        (true, false) => (q - o.executed, n - o.sums.exec_notional),
        (false, true) => (q + o.executed, n + o.sums.exec_notional),
    }
}

/// (VWAP slippage bps with own prints, VWAP, VWAP without own prints).
/// `s` set to `v`, keeping its allocation.
fn set_str(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

/// `s` set to `v`, keeping the allocation of a string it holds (for the next `Some`).
fn set_opt_str(s: &mut Option<String>, v: Option<&str>) {
    match (s.as_mut(), v) {
        (Some(s), Some(v)) => set_str(s, v),
        (None, Some(v)) => *s = Some(v.to_string()),
        (_, None) => *s = None,
    }
}

/// The VWAP `n / q` of tape volume `(q, n)`, if there is any.
fn vwap_of((q, n): (Decimal, Decimal)) -> Option<Decimal> {
    (q > Decimal::ZERO && n > Decimal::ZERO).then(|| n / q)
}

/// An order's VWAP slippage in bps (own prints as `on_tape` says), for its observation.
fn vwap_slippage(o: &OrderState, end: &EndSnap, on_tape: bool) -> Option<Decimal> {
    if o.executed.is_zero() {
        return None;
    }
    let v = vwap_of(tape_in(o, end, on_tape, true))?;
    crate::stats::bps(
        o.signed(o.sums.exec_notional - o.executed * v),
        o.executed * v,
    )
}
