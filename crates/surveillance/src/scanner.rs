//! The streaming scanner: shared state, record dispatch, time-driven deadlines and eviction.
//! The rules live in `wash.rs`, `spoof_layer.rs`, `close.rs` and `momentum.rs`.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};
use serde::{Deserialize, Serialize};

use crate::SurveillanceError;
use crate::alert::{Alert, FillRef, QuoteSnap, Rule};
use crate::close::MtcSession;
use crate::fxhash::FxMap;
use crate::keys::OrderKeys;
use crate::momentum::MiState;
use crate::params::{CloseSpec, Compiled, DAY_NS, OwnerLinkage, Params, QuoteTiming, ms};
use crate::snapshot::{sorted_heap, sorted_map};
use crate::spoof_layer::{Episode, SpoofAcc};
use crate::wash::{Leg, Pending};

/// Housekeeping period in record time (stale live orders, empty per-owner state).
const SWEEP_NS: i64 = 60_000_000_000;

pub(crate) fn side_ix(s: Side) -> usize {
    match s {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// A fill as the scanner keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fl {
    pub seq: u64,
    pub ts: i64,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    pub acct: u32,
    pub owner: u32,
    /// Interned `account \x1f order_id` (see `keys.rs`): the order's identity.
    pub kid: u32,
    pub fill_id: Arc<str>,
    pub trade_id: Option<Arc<str>>,
    pub taker: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QuoteInt {
    pub ts: i64,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub bid_size: Option<Decimal>,
    pub ask_size: Option<Decimal>,
}

impl QuoteInt {
    pub fn mid(&self) -> Option<Decimal> {
        Some((self.bid? + self.ask?) / Decimal::TWO)
    }
    pub fn snap(&self) -> QuoteSnap {
        QuoteSnap {
            ts: Timestamp::from_nanos(self.ts),
            bid: self.bid,
            ask: self.ask,
            bid_size: self.bid_size,
            ask_size: self.ask_size,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct QuoteState {
    pub cur: Option<QuoteInt>,
    /// The last quote with a timestamp strictly earlier than `cur`'s.
    pub prev: Option<QuoteInt>,
    /// (ts, mid) history for momentum ignition, bounded by burst window + settle time.
    pub hist: VecDeque<(i64, Option<Decimal>)>,
}

/// An order as the scanner keeps it.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ord {
    pub seq: u64,
    pub acct: u32,
    pub owner: u32,
    pub grp: u32,
    pub sym: u32,
    pub side: Side,
    pub qty: Decimal,
    pub price: Option<Decimal>,
    pub limit: bool,
    pub new_ts: i64,
    pub filled: Decimal,
    pub fills: Vec<Arc<Fl>>,
    /// Prevailing quote at placement (per `quote_timing`).
    pub touch: Option<QuoteInt>,
    pub ticks_from_touch: Option<Decimal>,
    pub done: Option<i64>,
    pub spoof: Option<Box<SpoofAcc>>,
}

/// Live orders of one (owner group, symbol, side) as (placement ts, order seq), ascending.
/// Orders are placed in time order and get increasing seqs, so an insert is an append; a
/// sorted deque (serialized as the sorted sequence a `BTreeSet` gave) avoids a tree node per
/// book for the few orders a book usually has live.
#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct LiveSet(VecDeque<(i64, u64)>);

impl LiveSet {
    pub fn insert(&mut self, ts: i64, seq: u64) {
        let e = (ts, seq);
        if self.0.back().is_none_or(|b| *b < e) {
            self.0.push_back(e);
        } else if let Err(i) = self.0.binary_search(&e) {
            self.0.insert(i, e);
        }
    }

    pub fn remove(&mut self, ts: i64, seq: u64) {
        if let Ok(i) = self.0.binary_search(&(ts, seq)) {
            self.0.remove(i);
        }
    }

    /// Placement time of the earliest live order.
    pub fn earliest(&self) -> Option<i64> {
        self.0.front().map(|e| e.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Per (owner group, symbol) state.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct GroupSym {
    /// Recent fills in time order (spoofing look-back, layering opposite executions).
    pub fills: VecDeque<Arc<Fl>>,
    /// Live orders per side as (placement ts, order seq).
    pub live: [LiveSet; 2],
    /// Open layering episodes per side.
    pub episodes: [Vec<Episode>; 2],
    /// Unpaired fills for the round-trip wash rule.
    pub rt_unpaired: VecDeque<Arc<Fl>>,
}

impl GroupSym {
    fn is_empty(&self) -> bool {
        self.fills.is_empty()
            && self.live.iter().all(LiveSet::is_empty)
            && self.episodes.iter().all(Vec::is_empty)
            && self.rt_unpaired.is_empty()
    }
}

#[derive(Default, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct OwnerStats {
    pub day: i64,
    pub order_qty: Decimal,
    pub fill_qty: Decimal,
    pub cancel_qty: Decimal,
}

/// Time-driven work, run when the first record with a later timestamp arrives (or on
/// `advance_to` / `finish`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Task {
    MtcClose { sym: u32, close: i64 },
    MiClose { key: (u32, u32, usize), t0: i64 },
    MiSettle { key: (u32, u32, usize), t0: i64 },
    MiExpire { key: (u32, u32, usize), t0: i64 },
}

/// Sizes of the internal state, to check it stays bounded by the windows (see the crate docs,
/// "Memory bounds", for the bound of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateStats {
    /// Orders kept: live ones (at most `order_max_live_ms` old) and finished ones for
    /// `max(spoof_t_post_ms, layer_t_post_ms)` after they finished.
    pub orders: usize,
    pub group_symbols: usize,
    /// Fills kept for the spoofing/layering look-back and the round-trip wash pairing.
    pub kept_fills: usize,
    pub open_episodes: usize,
    /// Orders listed in open layering episodes (their evidence).
    pub episode_members: usize,
    pub open_prints: usize,
    pub pending_tasks: usize,
    /// Alert keys kept for deduplication (emitted or told as known, not yet expired).
    pub emitted_keys: usize,
    /// Interned names: symbols, accounts, owners and related-owner groups seen.
    pub interned_names: usize,
    /// Interned order keys (`account`, `order_id`) in use: those the state above refers to,
    /// plus those no longer referred to and not yet freed (at most as many again, or 1024).
    pub order_keys: usize,
    /// Quote (time, mid) history kept for momentum ignition, over every symbol.
    pub quote_history: usize,
    /// Per owner group counters of the current UTC day.
    pub day_stats: usize,
    /// Momentum-ignition bursts open or waiting for their settle/exit.
    pub bursts: usize,
}

/// A known or emitted alert key whose expiry is not known yet: keys told without their alert
/// time ([`Scanner::with_known_keys`]) before the first record. See `Scanner::time_known_keys`.
const UNTIMED: i64 = i64::MAX;

/// The streaming scanner. Feed records in time order with [`Scanner::on_record`]; each call
/// returns the alerts completed by that record (plus time-driven ones whose deadline the
/// record's timestamp has passed). Deterministic: the same records give the same alerts, with
/// the same keys, whatever the chunking.
///
/// Serializable (serde) for snapshots: serialize, deserialize and keep feeding gives exactly
/// the alerts and the state of feeding without interruption. The snapshot is canonical (the
/// same state always gives the same bytes) and includes the parameters.
#[derive(Serialize, Deserialize)]
pub struct Scanner {
    #[serde(rename = "params")]
    pub(crate) c: Compiled,
    pub(crate) names: Vec<String>,
    #[serde(with = "sorted_map")]
    ids: FxMap<String, u32>,
    #[serde(with = "sorted_map")]
    pub(crate) group_idx: FxMap<u32, usize>,
    #[serde(with = "sorted_map")]
    acct_owner: FxMap<u32, u32>,
    pub(crate) now: i64,
    pub(crate) seq: u64,
    #[serde(with = "sorted_map")]
    pub(crate) quotes: FxMap<u32, QuoteState>,
    /// Interned order keys and the orders kept under them.
    pub(crate) orders: OrderKeys,
    /// Finished orders as (finish ts, order seq, kid), to forget them after the post-windows.
    done_q: VecDeque<(i64, u64, u32)>,
    #[serde(with = "sorted_map")]
    pub(crate) gs: FxMap<(u32, u32), GroupSym>,
    #[serde(with = "sorted_map")]
    pub(crate) stats: FxMap<u32, OwnerStats>,
    #[serde(with = "sorted_heap")]
    heap: BinaryHeap<Reverse<(i64, u64, Task)>>,
    task_seq: u64,
    #[serde(with = "sorted_map")]
    pub(crate) prints: FxMap<(u32, Arc<str>), Vec<Leg>>,
    pub(crate) prints_q: VecDeque<(i64, u32, Arc<str>)>,
    pub(crate) rt_pending: Vec<Pending>,
    #[serde(with = "sorted_map")]
    pub(crate) mtc: FxMap<u32, MtcSession>,
    #[serde(with = "sorted_map")]
    mtc_spec: FxMap<u32, Option<CloseSpec>>,
    #[serde(with = "sorted_map")]
    pub(crate) last_trade_px: FxMap<u32, Decimal>,
    #[serde(with = "sorted_map")]
    pub(crate) mi: FxMap<(u32, u32, usize), MiState>,
    /// Delivered (or told) alert keys -> the event time after which no rule can raise the key
    /// again ([`UNTIMED`] until the first record for keys told without a time).
    #[serde(with = "sorted_map")]
    emitted: FxMap<String, i64>,
    next_sweep: i64,
    /// Scratch buffer for order keys: not state.
    #[serde(skip)]
    keybuf: String,
    /// Owner group of each interned owner id (`u32::MAX`: not computed yet): a cache of
    /// `parties`, not state.
    #[serde(skip)]
    grp_of: Vec<u32>,
}

impl Scanner {
    /// Version of the snapshot layout (the serde form of `Scanner`). Bumped whenever the layout
    /// or the meaning of a field changes, so a runtime refuses a snapshot of another layout.
    pub const SNAPSHOT_VERSION: u32 = 2;

    pub fn new(params: Params) -> Result<Scanner, SurveillanceError> {
        let c = params.compile()?;
        Ok(Scanner {
            c,
            names: Vec::new(),
            ids: FxMap::default(),
            group_idx: FxMap::default(),
            acct_owner: FxMap::default(),
            now: i64::MIN,
            seq: 0,
            quotes: FxMap::default(),
            orders: OrderKeys::default(),
            done_q: VecDeque::new(),
            gs: FxMap::default(),
            stats: FxMap::default(),
            heap: BinaryHeap::new(),
            task_seq: 0,
            prints: FxMap::default(),
            prints_q: VecDeque::new(),
            rt_pending: Vec::new(),
            mtc: FxMap::default(),
            mtc_spec: FxMap::default(),
            last_trade_px: FxMap::default(),
            mi: FxMap::default(),
            emitted: FxMap::default(),
            next_sweep: i64::MIN,
            keybuf: String::new(),
            grp_of: Vec::new(),
        })
    }

    /// The parameters the scanner runs with (part of its snapshot).
    pub fn params(&self) -> &Params {
        &self.c.p
    }

    /// Suppress alerts already delivered: `(key, alert ts)` of each (restart: pass the alerts
    /// journaled after the snapshot, or all of them when replaying from an earlier point; see
    /// the crate docs). Only keys the rules could still raise again are kept: a key is kept
    /// until event time passes its alert time plus [`Scanner::dedupe_horizon`] of its rule, and
    /// keys already past that are not kept at all.
    pub fn with_known_alerts(
        mut self,
        alerts: impl IntoIterator<Item = (String, Timestamp)>,
    ) -> Scanner {
        for (key, ts) in alerts {
            let expiry = ts.as_nanos().saturating_add(self.horizon_of_key(&key));
            if self.now == i64::MIN || expiry >= self.now {
                self.remember(key, expiry);
            }
        }
        self
    }

    /// Suppress alerts whose key was already delivered, when their alert times are unknown.
    /// Prefer [`Scanner::with_known_alerts`]. Without a time, a key is kept until event time
    /// passes the first record fed after this call (the replay start) plus one day plus its
    /// rule's [`Scanner::dedupe_horizon`]: a replay from the start of the UTC day (crate docs)
    /// cannot raise it later than that. A replay from further back may raise such a key again.
    pub fn with_known_keys(mut self, keys: impl IntoIterator<Item = String>) -> Scanner {
        for key in keys {
            self.remember(key, UNTIMED);
        }
        self.time_known_keys();
        self
    }

    /// How long after an alert's time (ns of event time) the rules can raise the same key
    /// again: the longest time the identifying orders/fills stay in the scanner's state.
    /// Wash trades: `wash_window_ms`. Spoofing and layering (keyed by an order, which lives at
    /// most `order_max_live_ms`, is swept within a minute and kept
    /// `max(spoof_t_post_ms, layer_t_post_ms)` after it ends): the sum of those. Marking the
    /// close (keyed by the close, raised once the close has passed): 0. Momentum ignition
    /// (keyed by the burst's first fill): `mi_burst_window_ms + max(mi_settle_ms,
    /// mi_exit_window_ms)`.
    pub fn dedupe_horizon(&self, rule: Rule) -> i64 {
        let p = &self.c.p;
        let keep = ms(p.spoof_t_post_ms).max(ms(p.layer_t_post_ms));
        match rule {
            Rule::WashTrade => ms(p.wash_window_ms),
            Rule::Spoofing | Rule::Layering => ms(p.order_max_live_ms)
                .saturating_add(SWEEP_NS)
                .saturating_add(keep),
            Rule::MarkingTheClose => 0,
            Rule::MomentumIgnition => ms(p.mi_burst_window_ms)
                .saturating_add(ms(p.mi_settle_ms).max(ms(p.mi_exit_window_ms))),
        }
    }

    /// The horizon of a key's rule (keys are `RULE-hash`); the longest one for a key of no
    /// known rule.
    fn horizon_of_key(&self, key: &str) -> i64 {
        let rules = [
            Rule::WashTrade,
            Rule::Spoofing,
            Rule::Layering,
            Rule::MarkingTheClose,
            Rule::MomentumIgnition,
        ];
        let prefix = key.rsplit_once('-').map_or("", |(r, _)| r);
        match rules.iter().find(|r| r.as_str() == prefix) {
            Some(r) => self.dedupe_horizon(*r),
            None => rules
                .iter()
                .map(|r| self.dedupe_horizon(*r))
                .max()
                .unwrap_or(0),
        }
    }

    fn remember(&mut self, key: String, expiry: i64) {
        let e = self.emitted.entry(key).or_insert(expiry);
        *e = (*e).max(expiry);
    }

    /// Give keys told without a time their expiry once the replay's start time is known.
    fn time_known_keys(&mut self) {
        if self.now == i64::MIN {
            return;
        }
        let start = self.now.saturating_add(DAY_NS);
        let untimed: Vec<String> = self
            .emitted
            .iter()
            .filter(|(_, e)| **e == UNTIMED)
            .map(|(k, _)| k.clone())
            .collect();
        for k in untimed {
            let expiry = start.saturating_add(self.horizon_of_key(&k));
            self.emitted.insert(k, expiry);
        }
    }

    /// Number of records processed so far (the resume position when replaying from the start).
    pub fn records_processed(&self) -> u64 {
        self.seq
    }

    pub fn state_stats(&self) -> StateStats {
        StateStats {
            orders: self.orders.orders().count(),
            group_symbols: self.gs.len(),
            kept_fills: self
                .gs
                .values()
                .map(|g| g.fills.len() + g.rt_unpaired.len())
                .sum(),
            open_episodes: self
                .gs
                .values()
                .map(|g| g.episodes[0].len() + g.episodes[1].len())
                .sum(),
            episode_members: self
                .gs
                .values()
                .flat_map(|g| g.episodes.iter().flatten())
                .map(|e| e.members.len())
                .sum(),
            open_prints: self.prints.len(),
            pending_tasks: self.heap.len(),
            emitted_keys: self.emitted.len(),
            interned_names: self.names.len(),
            order_keys: self.orders.len(),
            quote_history: self.quotes.values().map(|q| q.hist.len()).sum(),
            day_stats: self.stats.len(),
            bursts: self
                .mi
                .values()
                .map(|m| m.pending.len() + usize::from(m.open.is_some()))
                .sum(),
        }
    }

    /// Process one record (records in time order; an earlier timestamp is treated as the
    /// latest one seen so time never runs backwards).
    pub fn on_record(&mut self, r: &Record) -> Vec<Alert> {
        if self.orders.gc_due() {
            self.collect_order_keys();
        }
        let mut out = Vec::new();
        let ts = r.ts.as_nanos().max(self.now);
        self.run_until(Some(ts), &mut out);
        let first = self.now == i64::MIN;
        self.now = ts;
        if first {
            self.time_known_keys();
        }
        self.seq += 1;
        let sym = self.intern(&r.symbol);
        if !self.c.closes.is_empty() {
            self.mtc_ensure_session(sym, ts);
        }
        self.evict_done(ts);
        match r.kind {
            Kind::Quote => self.on_quote(r, sym, ts),
            Kind::Trade => self.mtc_on_trade(r, sym, ts),
            Kind::OrderNew => self.on_new(r, sym, ts),
            Kind::OrderCancel => self.on_cancel(r, sym, ts, &mut out),
            Kind::Fill => self.on_fill(r, sym, ts, &mut out),
        }
        // Deduplicate before the sweep: the sweep expires keys by the new time, and an alert
        // completed by this record's time (a close just passed) must still meet its key.
        let out = self.dedupe(out);
        if ts >= self.next_sweep {
            self.sweep(ts);
            self.next_sweep = ts.saturating_add(SWEEP_NS);
        }
        out
    }

    /// Heartbeat from the service's clock: run the time-driven work (marking-the-close at the
    /// close, momentum-ignition settle/exit, round-trip wash pairing) whose deadline is before
    /// `ts`. Only call it with a `ts` no later than the next record's timestamp; then the
    /// alerts are exactly those of batch mode, only earlier.
    pub fn advance_to(&mut self, ts: Timestamp) -> Vec<Alert> {
        let mut out = Vec::new();
        let ts = ts.as_nanos().max(self.now);
        self.run_until(Some(ts), &mut out);
        self.dedupe(out)
    }

    /// End of data: run every pending deadline (batch mode calls this after the last record).
    pub fn finish(&mut self) -> Vec<Alert> {
        let mut out = Vec::new();
        self.run_until(None, &mut out);
        self.dedupe(out)
    }

    /// Drop alerts whose key was already delivered; remember the others' keys until no rule
    /// can raise them again.
    fn dedupe(&mut self, out: Vec<Alert>) -> Vec<Alert> {
        out.into_iter()
            .filter(|a| {
                let expiry = a.ts.as_nanos().saturating_add(self.dedupe_horizon(a.rule));
                match self.emitted.get_mut(&a.key) {
                    Some(e) => {
                        *e = (*e).max(expiry);
                        false
                    }
                    None => {
                        self.emitted.insert(a.key.clone(), expiry);
                        true
                    }
                }
            })
            .collect()
    }

    fn run_until(&mut self, limit: Option<i64>, out: &mut Vec<Alert>) {
        let before = |t: i64| limit.is_none_or(|l| t < l);
        if self.rt_pending.first().is_some_and(|p| before(p.fl.ts)) {
            self.wash_flush_round_trips(out);
        }
        while let Some(Reverse((t, _, _))) = self.heap.peek() {
            if !before(*t) {
                break;
            }
            let Some(Reverse((t, _, task))) = self.heap.pop() else {
                break;
            };
            match task {
                Task::MtcClose { sym, close } => self.mtc_finalize(sym, close, out),
                Task::MiClose { key, t0 } => self.mi_close(key, t0),
                Task::MiSettle { key, t0 } => self.mi_settle(key, t0, t, out),
                Task::MiExpire { key, t0 } => self.mi_expire(key, t0),
            }
        }
    }

    pub(crate) fn schedule(&mut self, at: i64, task: Task) {
        self.task_seq += 1;
        self.heap.push(Reverse((at, self.task_seq, task)));
    }

    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Account, owner and owner group of a record (owner learned from earlier records of the
    /// account when this one has none, so a fill without `owner` links like its order).
    fn parties(&mut self, r: &Record) -> Option<(u32, u32, u32)> {
        let acct_s = r.account.as_deref().or(r.owner.as_deref())?;
        let acct = self.intern(acct_s);
        let owner = match r.owner.as_deref() {
            Some(o) => {
                let o = self.intern(o);
                self.acct_owner.insert(acct, o);
                o
            }
            None => *self.acct_owner.get(&acct).unwrap_or(&acct),
        };
        let grp = match self.c.p.owner_linkage {
            OwnerLinkage::Account => acct,
            OwnerLinkage::Owner => owner,
            OwnerLinkage::Group => match self.grp_of.get(owner as usize) {
                Some(&g) if g != u32::MAX => g,
                _ => {
                    let g = self.group_id(owner);
                    if self.grp_of.len() <= owner as usize {
                        self.grp_of.resize(owner as usize + 1, u32::MAX);
                    }
                    self.grp_of[owner as usize] = g;
                    g
                }
            },
        };
        Some((acct, owner, grp))
    }

    /// The owner group id of `owner` under `OwnerLinkage::Group` (interning the group).
    fn group_id(&mut self, owner: u32) -> u32 {
        match self.c.group_of.get(self.name(owner)).copied() {
            Some(i) => {
                let g = self.intern(&format!("\u{0}related_owner_groups[{i}]"));
                self.group_idx.insert(g, i);
                g
            }
            None => owner,
        }
    }

    /// The related-owner group behind a group id, if it is one.
    pub(crate) fn group_members(&self, grp: u32) -> Option<Vec<String>> {
        self.group_idx
            .get(&grp)
            .and_then(|&i| self.c.p.related_owner_groups.get(i).cloned())
    }

    /// `account \x1f order_id` into `keybuf`; returns the byte offset of the order id.
    fn order_key(&mut self, account: &str, order_id: &str) -> usize {
        self.keybuf.clear();
        self.keybuf.push_str(account);
        self.keybuf.push('\u{1f}');
        self.keybuf.push_str(order_id);
        account.len() + 1
    }

    /// The kid of an order key, interning it.
    fn intern_order(&mut self, account: &str, order_id: &str) -> u32 {
        let split = self.order_key(account, order_id);
        self.orders.intern(&self.keybuf, split)
    }

    /// The kid of an order key, if interned.
    fn lookup_order(&mut self, account: &str, order_id: &str) -> Option<u32> {
        self.order_key(account, order_id);
        self.orders.lookup(&self.keybuf)
    }

    /// The order id of an interned order key.
    pub(crate) fn order_id(&self, kid: u32) -> &str {
        self.orders.order_id(kid)
    }

    /// Free the order keys nothing refers to any more (see `keys.rs`): every kid held by an
    /// order, the done-queue, a kept fill, a spoofing accumulator or a layering episode is
    /// marked.
    fn collect_order_keys(&mut self) {
        let mut marked = vec![false; self.orders.slots_len()];
        let mut mark = |kid: u32| {
            if let Some(m) = marked.get_mut(kid as usize) {
                *m = true;
            }
        };
        for (kid, o) in self.orders.orders() {
            mark(kid);
            for f in &o.fills {
                mark(f.kid);
            }
            if let Some(acc) = &o.spoof {
                acc.keys.iter().copied().for_each(&mut mark);
            }
        }
        for (_, _, kid) in &self.done_q {
            mark(*kid);
        }
        for g in self.gs.values() {
            for f in g.fills.iter().chain(g.rt_unpaired.iter()) {
                mark(f.kid);
            }
            for e in g.episodes.iter().flatten() {
                mark(e.founder);
                for m in &e.members {
                    mark(m.kid);
                }
            }
        }
        for legs in self.prints.values() {
            for l in legs {
                mark(l.fl.kid);
            }
        }
        for p in &self.rt_pending {
            mark(p.fl.kid);
        }
        for st in self.mi.values() {
            for b in st.open.iter().chain(st.pending.iter()) {
                for f in b.fills.iter().chain(b.exits.iter()) {
                    mark(f.kid);
                }
            }
        }
        self.orders.collect(&marked);
    }

    pub(crate) fn tick(&self, sym: u32) -> Decimal {
        self.c
            .p
            .tick_size
            .get(self.name(sym))
            .copied()
            .unwrap_or(self.c.p.default_tick_size)
    }

    pub(crate) fn stats_mut(&mut self, grp: u32, ts: i64) -> &mut OwnerStats {
        let day = ts.div_euclid(DAY_NS);
        let s = self.stats.entry(grp).or_default();
        if s.day != day {
            *s = OwnerStats {
                day,
                ..OwnerStats::default()
            };
        }
        s
    }

    /// Order quantity / filled quantity of the owner group this UTC day.
    pub(crate) fn otr(&self, grp: u32) -> Option<Decimal> {
        let s = self.stats.get(&grp)?;
        s.order_qty.checked_div(s.fill_qty).map(|v| v.round_dp(4))
    }

    pub(crate) fn cancel_ratio(&self, grp: u32) -> Option<Decimal> {
        let s = self.stats.get(&grp)?;
        s.cancel_qty.checked_div(s.order_qty).map(|v| v.round_dp(4))
    }

    pub(crate) fn fill_ref(&self, f: &Fl) -> FillRef {
        FillRef {
            fill_id: f.fill_id.to_string(),
            order_id: self.order_id(f.kid).to_string(),
            account: self.name(f.acct).to_string(),
            side: f.side,
            qty: f.qty,
            price: f.price,
            ts: Timestamp::from_nanos(f.ts),
        }
    }

    /// Prevailing quote of `sym` at `ts` (the current time) under `quote_timing`.
    pub(crate) fn prevailing(&self, sym: u32, ts: i64) -> Option<&QuoteInt> {
        let q = self.quotes.get(&sym)?;
        match self.c.p.quote_timing {
            QuoteTiming::Inclusive => q.cur.as_ref(),
            QuoteTiming::Strict => match &q.cur {
                Some(c) if c.ts < ts => Some(c),
                _ => q.prev.as_ref(),
            },
        }
    }

    fn on_quote(&mut self, r: &Record, sym: u32, ts: i64) {
        let q = QuoteInt {
            ts,
            bid: r.bid,
            ask: r.ask,
            bid_size: r.bid_size,
            ask_size: r.ask_size,
        };
        let horizon = ms(self.c.p.mi_burst_window_ms).saturating_add(ms(self.c.p.mi_settle_ms));
        let st = self.quotes.entry(sym).or_default();
        let mid = q.mid();
        if st.cur.as_ref().is_some_and(|c| c.ts < ts) {
            st.prev = st.cur.take();
        }
        st.cur = Some(q);
        st.hist.push_back((ts, mid));
        // Keep the last entry at or before the horizon: it is the prevailing one there.
        while st.hist.len() > 1 && st.hist[1].0 <= ts.saturating_sub(horizon) {
            st.hist.pop_front();
        }
    }

    fn on_new(&mut self, r: &Record, sym: u32, ts: i64) {
        let (Some(side), Some(qty), Some(order_id)) = (r.side, r.qty, r.order_id.as_deref()) else {
            return;
        };
        let Some((acct, owner, grp)) = self.parties(r) else {
            return;
        };
        self.stats_mut(grp, ts).order_qty += qty;
        let limit = match r.order_type.as_deref() {
            Some(t) => t == "limit",
            None => r.price.is_some(),
        };
        let touch = self.prevailing(sym, ts).cloned();
        let tick = self.tick(sym);
        let ticks_from_touch = match (r.price, &touch) {
            (Some(p), Some(q)) => match side {
                Side::Sell => q.ask.map(|a| ((p - a) / tick).round_dp(4)),
                Side::Buy => q.bid.map(|b| ((b - p) / tick).round_dp(4)),
            },
            _ => None,
        };
        let acct_name = r.account.as_deref().or(r.owner.as_deref()).unwrap_or("");
        let kid = self.intern_order(acct_name, order_id);
        if self.orders.order(kid).is_some_and(|o| o.done.is_none()) {
            // A repeated order_new for a live order (duplicate delivery): keep the first.
            return;
        }
        let seq = self.seq;
        self.gs.entry((grp, sym)).or_default().live[side_ix(side)].insert(ts, seq);
        self.orders.set_order(
            kid,
            Ord {
                seq,
                acct,
                owner,
                grp,
                sym,
                side,
                qty,
                price: r.price,
                limit,
                new_ts: ts,
                filled: Decimal::ZERO,
                fills: Vec::new(),
                touch,
                ticks_from_touch,
                done: None,
                spoof: None,
            },
        );
    }

    fn is_stale(&self, o: &Ord, ts: i64) -> bool {
        o.done.is_none() && ts.saturating_sub(o.new_ts) > ms(self.c.p.order_max_live_ms)
    }

    fn mark_done(&mut self, kid: u32, ts: i64) {
        let Some(o) = self.orders.order_mut(kid) else {
            return;
        };
        o.done = Some(ts);
        let (grp, sym, side, new_ts, seq) = (o.grp, o.sym, o.side, o.new_ts, o.seq);
        if let Some(g) = self.gs.get_mut(&(grp, sym)) {
            g.live[side_ix(side)].remove(new_ts, seq);
        }
        self.done_q.push_back((ts, seq, kid));
    }

    fn evict_done(&mut self, now: i64) {
        let keep = ms(self.c.p.spoof_t_post_ms).max(ms(self.c.p.layer_t_post_ms));
        while let Some(&(t, seq, kid)) = self.done_q.front() {
            if t.saturating_add(keep) >= now {
                break;
            }
            self.done_q.pop_front();
            if self.orders.order(kid).is_some_and(|o| o.seq == seq) {
                self.orders.take_order(kid);
            }
        }
    }

    fn on_cancel(&mut self, r: &Record, sym: u32, ts: i64, out: &mut Vec<Alert>) {
        let Some(order_id) = r.order_id.as_deref() else {
            return;
        };
        let Some((acct, owner, grp)) = self.parties(r) else {
            return;
        };
        let acct_name = r.account.as_deref().or(r.owner.as_deref()).unwrap_or("");
        let Some(kid) = self.lookup_order(acct_name, order_id) else {
            return;
        };
        let Some(o) = self.orders.order(kid) else {
            return;
        };
        if o.done.is_some() {
            return;
        }
        if self.is_stale(o, ts) {
            self.drop_order(kid);
            return;
        }
        let remaining = r.qty.unwrap_or(o.qty - o.filled);
        self.stats_mut(grp, ts).cancel_qty += remaining;
        if !self.c.closes.is_empty() {
            self.mtc_on_cancel(acct, owner, grp, sym, ts, remaining);
        }
        self.mark_done(kid, ts);
        self.spoof_on_cancel(kid, ts, out);
        self.layer_on_cancel(kid, ts, out);
    }

    fn drop_order(&mut self, kid: u32) {
        if let Some(o) = self.orders.take_order(kid)
            && let Some(g) = self.gs.get_mut(&(o.grp, o.sym))
        {
            g.live[side_ix(o.side)].remove(o.new_ts, o.seq);
        }
    }

    fn on_fill(&mut self, r: &Record, sym: u32, ts: i64, out: &mut Vec<Alert>) {
        let (Some(side), Some(qty), Some(price)) = (r.side, r.qty, r.price) else {
            return;
        };
        let Some((acct, owner, grp)) = self.parties(r) else {
            return;
        };
        let order_id = r.order_id.as_deref().unwrap_or("");
        let acct_name = r.account.as_deref().or(r.owner.as_deref()).unwrap_or("");
        let kid = self.intern_order(acct_name, order_id);
        let fill_id: Arc<str> = match r.fill_id.as_deref() {
            Some(f) => Arc::from(f),
            None => Arc::from(format!("{order_id}@{ts}")),
        };
        self.stats_mut(grp, ts).fill_qty += qty;
        let fl = Arc::new(Fl {
            seq: self.seq,
            ts,
            side,
            qty,
            price,
            acct,
            owner,
            kid,
            fill_id,
            trade_id: r.trade_id.as_deref().map(Arc::from),
            taker: r.liquidity == Some(Liquidity::Taker),
        });
        if self.orders.order(kid).is_some_and(|o| self.is_stale(o, ts)) {
            self.drop_order(kid);
        }
        let mut completed = false;
        if let Some(o) = self.orders.order_mut(kid)
            && o.done.is_none()
        {
            o.filled += qty;
            o.fills.push(fl.clone());
            completed = o.filled >= o.qty;
        }
        if completed {
            self.mark_done(kid, ts);
        }
        let bound = self.fill_bound(grp, sym, ts);
        let g = self.gs.entry((grp, sym)).or_default();
        g.fills.push_back(fl.clone());
        while g.fills.front().is_some_and(|f| f.ts < bound) {
            g.fills.pop_front();
        }
        self.wash_on_fill(&fl, grp, sym, out);
        self.layer_on_fill(&fl, grp, sym, out);
        self.mi_on_fill(&fl, grp, sym, out);
        if !self.c.closes.is_empty() {
            self.mtc_on_fill(&fl, grp, sym);
        }
    }

    /// Oldest fill time any rule can still need for (grp, sym): the spoofing/layering look-back,
    /// the earliest live order (a future layer) and the earliest open layering episode, but
    /// never more than `order_max_live_ms + max(spoof_t_post_ms, layer_t_post_ms)` back: a
    /// layering episode can chain overlapping orders without end, and its opposite fills are
    /// looked for only that far back (the longest a single layer order can live, plus the
    /// post-window).
    fn fill_bound(&self, grp: u32, sym: u32, now: i64) -> i64 {
        let look = ms(self.c.p.spoof_t_post_ms).max(ms(self.c.p.layer_t_post_ms));
        let mut bound = now.saturating_sub(look);
        if let Some(g) = self.gs.get(&(grp, sym)) {
            for s in 0..2 {
                if let Some(t) = g.live[s].earliest() {
                    bound = bound.min(t);
                }
                for e in &g.episodes[s] {
                    bound = bound.min(e.start);
                }
            }
        }
        bound.max(now.saturating_sub(ms(self.c.p.order_max_live_ms).saturating_add(look)))
    }

    fn sweep(&mut self, now: i64) {
        let max_live = ms(self.c.p.order_max_live_ms);
        let stale: Vec<u32> = self
            .orders
            .orders()
            .filter(|(_, o)| o.done.is_none() && now.saturating_sub(o.new_ts) > max_live)
            .map(|(k, _)| k)
            .collect();
        for k in stale {
            self.drop_order(k);
        }
        let keys: Vec<(u32, u32)> = self.gs.keys().copied().collect();
        let t_post = ms(self.c.p.layer_t_post_ms);
        for k in keys {
            let bound = self.fill_bound(k.0, k.1, now);
            let wash_lo = now.saturating_sub(ms(self.c.p.wash_window_ms));
            let Some(g) = self.gs.get_mut(&k) else {
                continue;
            };
            for s in 0..2 {
                let earliest_live = g.live[s].earliest();
                g.episodes[s]
                    .retain(|e| !crate::spoof_layer::episode_closed(e, now, t_post, earliest_live));
            }
            while g.fills.front().is_some_and(|f| f.ts < bound) {
                g.fills.pop_front();
            }
            while g.rt_unpaired.front().is_some_and(|f| f.ts < wash_lo) {
                g.rt_unpaired.pop_front();
            }
            if g.is_empty() {
                self.gs.remove(&k);
            }
        }
        let day = now.div_euclid(DAY_NS);
        self.stats.retain(|_, s| s.day == day);
        self.mi.retain(|_, m| !m.is_empty());
        // Future alerts have a time >= now, so a key whose rule cannot raise it after its
        // expiry is no longer needed.
        self.emitted.retain(|_, expiry| *expiry >= now);
    }

    pub(crate) fn mtc_spec_for(&mut self, sym: u32) -> Option<CloseSpec> {
        if let Some(s) = self.mtc_spec.get(&sym) {
            return *s;
        }
        let name = self.name(sym).to_string();
        let spec = self
            .c
            .closes
            .get(&name)
            .or_else(|| self.c.closes.get("*"))
            .copied();
        self.mtc_spec.insert(sym, spec);
        spec
    }
}

/// Sorted, de-duplicated account names.
pub(crate) fn accounts(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `a / b` rounded for display (the thresholds compare unrounded values).
pub(crate) fn ratio(a: Decimal, b: Decimal) -> Decimal {
    a.checked_div(b).map(|v| v.round_dp(6)).unwrap_or_default()
}

pub(crate) fn ns_to_ms(ns: i64) -> i64 {
    ns / 1_000_000
}
