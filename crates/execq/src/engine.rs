//! The streaming engine.
//!
//! State per symbol: the prevailing quote (and the last quote at a strictly earlier timestamp,
//! for `quote_at_receipt: strict`) and cumulative tape volume/notional (VWAP over an order's
//! interval is a difference of two snapshots). State per order: the fill-level sums.
//! Realized-spread lookups wait in one FIFO queue per horizon; `t_e + h` is non-decreasing in
//! record order, so a lookup is resolved, and dropped, on the first record later than its
//! target: memory is bounded by the fills within the longest horizon. Order ends wait the same
//! way so that tape prints stamped at the order's last timestamp still count.

use std::collections::{BTreeMap, HashMap, VecDeque};

use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::ExecqError;
use crate::params::NS_PER_DAY;
use crate::params::{
    CrossedQuote, DecisionPriceFallback, EsBenchmark, IsBpsDenominator, IsEndPrice, NotionalPrice,
    Params, QuoteTiming, Resolved, RsEndOfData, SizeBucketBasis, TimeWindow,
};
use crate::report::{Aggregates, Marketability, OrderClass, OrderQuality, OrderStatus, Report};
use crate::stats::{PRICE_DP, Stats, Sums, exec_bucket, ratio};
use chrono::Datelike;
use foldhash::fast::FixedState;

const NS_PER_MS: i64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
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

struct SymState {
    name: String,
    cur: Option<Quote>,
    /// Last quote with `ts` strictly before `cur.ts`.
    before: Option<Quote>,
    tape_q: Decimal,
    tape_n: Decimal,
}

#[derive(Debug, Clone, Copy)]
struct EndSnap {
    mid: Option<Decimal>,
    tape_q: Decimal,
    tape_n: Decimal,
}

// Notes: bit flags so a note costs no allocation on the hot path.
const NOTES: [&str; 13] = [
    "no_quote_at_receipt",
    "crossed_quote_at_receipt",
    "locked_quote_at_receipt",
    "fill_after_cancel",
    "overfill",
    "cancel_exceeds_open",
    "no_decision_price",
    "no_end_price",
    "no_tape_prints",
    "fill_before_receipt",
    "fill_side_mismatch",
    "fill_without_benchmark_quote",
    "realized_spread_beyond_data",
];
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

struct OrderState {
    id: String,
    account: Option<String>,
    owner: Option<String>,
    sym: u32,
    side: Side,
    order_type: Option<String>,
    tif: Option<String>,
    limit: Option<Decimal>,
    decision: Option<Decimal>,
    t_r: i64,
    receipt: Option<Quote>,
    class: OrderClass,
    marketability: Marketability,
    size_bucket: &'static str,
    qty: Decimal,
    executed: Decimal,
    /// Cancelled shares counted in `shares_cancelled`, and closed-but-uncounted IOC residuals.
    cancelled: Decimal,
    uncounted: Decimal,
    fill_count: u64,
    first_fill: Option<i64>,
    complete: Option<i64>,
    liq: u8,
    /// Boxed: the order table grows by doubling, and moving 1 KiB per order is not free.
    sums: Box<Sums>,
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
        match self.side {
            Side::Buy => x,
            Side::Sell => -x,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    target: i64,
    order: u32,
    price: Decimal,
    q: Decimal,
    /// `q * ES` and `q * M_benchmark` of the fill.
    q_es: Decimal,
    q_mid: Decimal,
}

/// What an observation measures (for histograms labelled by symbol and order class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub ts: Timestamp,
    pub symbol: String,
    pub order_id: String,
    pub order_class: OrderClass,
    pub metric: Metric,
    pub value: f64,
}

/// The streaming execution-quality engine. Feed records in time order with
/// [`ExecQuality::on_record`]; ask for one order with [`ExecQuality::order`] or for everything
/// with [`ExecQuality::report`] at any time (neither changes the state).
pub struct ExecQuality {
    r: Resolved,
    syms: Vec<SymState>,
    sym_ix: HashMap<String, u32, FixedState>,
    orders: Vec<OrderState>,
    order_ix: HashMap<String, u32, FixedState>,
    pending: Vec<VecDeque<Pending>>,
    ends: VecDeque<(i64, u32, u32)>,
    issues: BTreeMap<&'static str, u64>,
    records: u64,
    last_ts: Option<i64>,
    observe: bool,
    obs: Vec<Observation>,
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
    fn keeps(&self, account: Option<&str>, symbol: &str, t_r: i64) -> bool {
        self.account.as_deref().is_none_or(|a| account == Some(a))
            && self.symbol.as_deref().is_none_or(|s| s == symbol)
            && self.from.is_none_or(|f| t_r >= f.as_nanos())
            && self.to.is_none_or(|t| t_r < t.as_nanos())
    }
}

/// The batch form: exactly the streaming engine fed `records` in order.
pub fn compute(records: &[Record], params: &Params) -> Result<Report, ExecqError> {
    let mut e = ExecQuality::new(params.clone())?;
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

fn share_bucket(q: Decimal, round_lot: Decimal) -> &'static str {
    if q < Decimal::ONE && !q.fract().is_zero() {
        "fractional"
    } else if q < round_lot {
        "odd_lot"
    } else if q < Decimal::ONE_HUNDRED {
        "<100"
    } else if q < Decimal::from(500) {
        "100-499"
    } else if q < Decimal::from(2000) {
        "500-1999"
    } else if q < Decimal::from(5000) {
        "2000-4999"
    } else {
        "5000+"
    }
}

fn notional_bucket(n: Decimal) -> &'static str {
    const EDGES: [(i64, &str); 7] = [
        (250, "<$250"),
        (1_000, "$250-<$1k"),
        (5_000, "$1k-<$5k"),
        (10_000, "$5k-<$10k"),
        (20_000, "$10k-<$20k"),
        (50_000, "$20k-<$50k"),
        (200_000, "$50k-<$200k"),
    ];
    EDGES
        .iter()
        .find(|(edge, _)| n < Decimal::from(*edge))
        .map_or(">=$200k", |(_, name)| name)
}

fn ms_between(later: i64, earlier: i64) -> i64 {
    later.saturating_sub(earlier).div_euclid(NS_PER_MS)
}

fn f64_of(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

impl ExecQuality {
    pub fn new(params: Params) -> Result<ExecQuality, ExecqError> {
        let r = params.resolve()?;
        let n = r.horizons_ns.len();
        Ok(ExecQuality {
            r,
            syms: Vec::new(),
            sym_ix: HashMap::with_hasher(FixedState::default()),
            orders: Vec::new(),
            order_ix: HashMap::with_hasher(FixedState::default()),
            pending: vec![VecDeque::new(); n],
            ends: VecDeque::new(),
            issues: BTreeMap::new(),
            records: 0,
            last_ts: None,
            observe: false,
            obs: Vec::new(),
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

    fn issue(&mut self, reason: &'static str) {
        *self.issues.entry(reason).or_insert(0) += 1;
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
    fn advance(&mut self, ts: i64) {
        for k in 0..self.pending.len() {
            while self.pending[k].front().is_some_and(|p| p.target < ts) {
                if let Some(p) = self.pending[k].pop_front() {
                    let o = &self.orders[p.order as usize];
                    let q = usable(self.syms[o.sym as usize].cur, self.r.p.crossed_quote);
                    if let Some(q) = q {
                        let ix = p.order as usize;
                        apply_horizon(&mut self.orders[ix], k, &p, q.mid());
                    }
                }
            }
        }
        while let Some(&(end, ix, gen_)) = self.ends.front() {
            if end >= ts {
                break;
            }
            self.ends.pop_front();
            let o = &self.orders[ix as usize];
            if o.end_gen != gen_ {
                continue; // superseded by a later fill after the cancel
            }
            let s = &self.syms[o.sym as usize];
            let snap = EndSnap {
                mid: usable(s.cur, self.r.p.crossed_quote).map(|q| q.mid()),
                tape_q: s.tape_q,
                tape_n: s.tape_n,
            };
            self.orders[ix as usize].end = Some(snap);
            if self.observe {
                self.emit_completion(ix as usize, end);
            }
        }
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

    fn on_order_new(&mut self, rec: &Record, ts: i64) {
        let (Some(id), Some(side), Some(qty)) = (&rec.order_id, rec.side, rec.qty) else {
            self.issue("order_new_without_id_side_or_qty");
            return;
        };
        if qty <= Decimal::ZERO {
            self.issue("order_new_non_positive_qty");
            return;
        }
        if self.order_ix.contains_key(id.as_str()) {
            self.issue("duplicate_order_id");
            return;
        }
        let si = self.sym(&rec.symbol);
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
                px.map_or("unknown", |p| notional_bucket(qty * p))
            }
        };
        let start_tape = (s.tape_q, s.tape_n);
        let ix = self.orders.len() as u32;
        self.orders.push(OrderState {
            id: id.clone(),
            account: rec.account.clone(),
            owner: rec.owner.clone(),
            sym: si,
            side,
            order_type: rec.order_type.clone(),
            tif: rec.tif.clone(),
            limit: rec.price,
            decision: rec.decision_price,
            t_r: ts,
            receipt,
            class,
            marketability,
            size_bucket,
            qty,
            executed: Decimal::ZERO,
            cancelled: Decimal::ZERO,
            uncounted: Decimal::ZERO,
            fill_count: 0,
            first_fill: None,
            complete: None,
            liq: 0,
            sums: Box::new(Sums::with_horizons(self.r.horizons_ns.len())),
            start_tape,
            end_ts: None,
            end_gen: 0,
            end: None,
            notes,
            completion_emitted: false,
        });
        self.order_ix.insert(id.clone(), ix);
    }

    fn lookup(&mut self, rec: &Record, what: &'static str) -> Option<usize> {
        let ix = rec
            .order_id
            .as_deref()
            .and_then(|id| self.order_ix.get(id))
            .map(|&i| i as usize);
        if ix.is_none() {
            self.issue(what);
        }
        ix
    }

    fn set_end(&mut self, ix: usize, ts: i64) {
        let o = &mut self.orders[ix];
        o.end_ts = Some(ts);
        o.end_gen += 1;
        o.end = None;
        self.ends.push_back((ts, ix as u32, o.end_gen));
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
        let Some(ix) = self.lookup(rec, "fill_for_unknown_order") else {
            return;
        };
        let bench_now = usable(
            self.syms[self.orders[ix].sym as usize].cur,
            self.r.p.crossed_quote,
        );
        let r = &self.r;
        let o = &mut self.orders[ix];
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
        o.sums.exec_notional += qp;
        o.sums.fees += rec.fee.unwrap_or(Decimal::ZERO);
        if ts < o.t_r {
            o.notes |= N_FILL_BEFORE_RECEIPT;
        }
        let t_ms = ms_between(ts, o.t_r);
        let q_t = q * Decimal::from(t_ms);
        o.sums.exec_time += q_t;
        o.sums.time_buckets[exec_bucket(t_ms)] += q;
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
            let es = o.signed(Decimal::TWO * (p - m));
            let q_es = q * es;
            let q_mid = q * m;
            o.sums.es_q += q;
            o.sums.es += q_es;
            o.sums.es_mid += q_mid;
            o.sums.es_quoted += q * (b.ask - b.bid);
            for (k, &h) in r.horizons_ns.iter().enumerate() {
                self.pending[k].push_back(Pending {
                    target: r.horizon_target(ts, h),
                    order: ix as u32,
                    price: p,
                    q,
                    q_es,
                    q_mid,
                });
            }
            es_obs = Some((es, m));
        } else if o.receipt.is_some() {
            o.notes |= N_NO_BENCH;
        }
        if let Some(rq) = o.receipt {
            let m = rq.mid();
            o.sums.rq_q += q;
            o.sums.rq_mid += q * m;
            o.sums.arrival += o.signed(qp - q * m);
            // Improvement amount per share, positive when better than the far touch.
            let better = match o.side {
                Side::Buy => rq.ask - p,
                Side::Sell => p - rq.bid,
            };
            if better > Decimal::ZERO {
                o.sums.pi_q += q;
                o.sums.pi_amount += q * better;
                o.sums.pi_time += q_t;
            } else if better.is_zero() {
                o.sums.at_q += q;
                o.sums.at_time += q_t;
            } else {
                o.sums.out_q += q;
                o.sums.out_amount -= q * better;
                o.sums.out_time += q_t;
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
                    order_id: order_id.clone(),
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
    }

    fn on_cancel(&mut self, rec: &Record, ts: i64) {
        let Some(ix) = self.lookup(rec, "cancel_for_unknown_order") else {
            return;
        };
        let count = self.r.p.ioc_residual_as_cancel;
        let o = &mut self.orders[ix];
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
    }

    fn emit_completion(&mut self, ix: usize, end: i64) {
        let o = &self.orders[ix];
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
            && let Some(s) = vwap_sums(o, &snap, self.r.p.own_prints_on_tape).0
        {
            out.push((Metric::VwapSlippageBps, f64_of(s)));
        }
        for (metric, value) in out {
            self.obs.push(Observation {
                ts: Timestamp::from_nanos(end),
                symbol: symbol.clone(),
                order_id: o.id.clone(),
                order_class: o.class,
                metric,
                value,
            });
        }
        self.orders[ix].completion_emitted = true;
    }

    /// One order's record as of now (pending horizons and an unfinished end take the
    /// end-of-data rule, as in [`ExecQuality::report`]).
    pub fn order(&self, order_id: &str) -> Option<OrderQuality> {
        let ix = *self.order_ix.get(order_id)? as usize;
        let mut sums = self.orders[ix].sums.clone();
        let mut notes = 0;
        for (k, q) in self.pending.iter().enumerate() {
            for p in q.iter().filter(|p| p.order as usize == ix) {
                notes |= self.resolve_at_end(&mut sums, k, p);
            }
        }
        let (_, label) = self.window(self.orders[ix].t_r, &mut None);
        Some(self.finalize(ix, sums, notes, label))
    }

    /// Apply the end-of-data rule to a pending horizon; returns the notes it adds.
    fn resolve_at_end(&self, sums: &mut Sums, k: usize, p: &Pending) -> u32 {
        if self.r.p.rs_end_of_data == RsEndOfData::Exclude {
            return N_RS_BEYOND;
        }
        let o = &self.orders[p.order as usize];
        match usable(self.syms[o.sym as usize].cur, self.r.p.crossed_quote) {
            Some(q) => {
                add_horizon(&mut sums.horizons[k], o, p, q.mid());
                0
            }
            None => N_RS_BEYOND,
        }
    }

    fn finalize(
        &self,
        ix: usize,
        mut sums: Box<Sums>,
        extra_notes: u32,
        time_window: String,
    ) -> OrderQuality {
        let o = &self.orders[ix];
        let p = &self.r.p;
        let sym = &self.syms[o.sym as usize];
        let mut notes = o.notes | extra_notes;
        let now_mid = usable(sym.cur, p.crossed_quote).map(|q| q.mid());
        // An order whose end is not final yet (or that is still open) ends with the data.
        let end = o.end.unwrap_or(EndSnap {
            mid: now_mid,
            tape_q: sym.tape_q,
            tape_n: sym.tape_n,
        });
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
        // A9 implementation shortfall.
        let p0 = o.receipt.map(|q| q.mid());
        let pd = o.decision.or(match p.decision_price_fallback {
            DecisionPriceFallback::None => None,
            DecisionPriceFallback::ArrivalMid => p0,
        });
        let pn = match p.is_end_price {
            IsEndPrice::OrderEndMid => end.mid,
            IsEndPrice::EndOfDataMid => now_mid,
        };
        let unfilled = o.qty - o.executed;
        let x = o.executed;
        let notional = sums.exec_notional;
        match pd {
            None => notes |= N_NO_DECISION,
            Some(pd) => {
                // The unfilled part needs an end price unless there is none.
                let pn_eff = if unfilled.is_zero() {
                    pn.or(Some(pd))
                } else {
                    pn
                };
                match pn_eff {
                    None => notes |= N_NO_END_PRICE,
                    Some(pn) => {
                        let exec = o.signed(notional - x * pd);
                        let opp = o.signed(unfilled * (pn - pd));
                        let fees = if p.is_include_fees {
                            sums.fees
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
                    }
                }
            }
        }
        // A10 VWAP.
        let (_, vwap, vwap_ex) = vwap_sums(o, &end, p.own_prints_on_tape);
        let (tq, tn) = tape_in(o, &end, p.own_prints_on_tape, true);
        if tq <= Decimal::ZERO {
            notes |= N_NO_TAPE;
        } else {
            sums.part_x = x;
            sums.part_tape = tq;
        }
        if x > Decimal::ZERO {
            if let Some(v) = vwap {
                sums.vwap_orders = 1;
                sums.vwap_cost = o.signed(notional - x * v);
                sums.vwap_den = x * v;
            }
            if let Some(v) = vwap_ex {
                sums.vwapx_orders = 1;
                sums.vwapx_cost = o.signed(notional - x * v);
                sums.vwapx_den = x * v;
            }
        }
        let _ = tn;
        let stats = Stats::from_sums(&sums, &self.r);
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
        let liquidity = liquidity_of(o.liq);
        let t_r = Timestamp::from_nanos(o.t_r);
        OrderQuality {
            order_id: o.id.clone(),
            account: o.account.clone(),
            owner: o.owner.clone(),
            symbol: sym.name.clone(),
            side: o.side,
            order_type: o.order_type.clone(),
            tif: o.tif.clone(),
            limit_price: o.limit.map(|d| d.normalize()),
            decision_price: o.decision.map(|d| d.normalize()),
            receipt_ts: t_r,
            receipt_quote_ts: o.receipt.map(|q| Timestamp::from_nanos(q.ts)),
            receipt_bid: o.receipt.map(|q| q.bid.normalize()),
            receipt_ask: o.receipt.map(|q| q.ask.normalize()),
            receipt_mid: p0.map(|d| d.normalize()),
            receipt_quoted_spread: o.receipt.map(|q| (q.ask - q.bid).normalize()),
            order_class: o.class,
            marketability: o.marketability,
            size_bucket: o.size_bucket,
            liquidity,
            time_window,
            status,
            end_ts: o.end_ts.map(Timestamp::from_nanos),
            shares_open: o.leaves().max(Decimal::ZERO).normalize(),
            fill_count: o.fill_count,
            avg_exec_price: ratio(notional, x, PRICE_DP),
            time_to_first_fill_ms: o.first_fill.map(|f| ms_between(f, o.t_r)),
            time_to_complete_fill_ms: o.complete.map(|c| ms_between(c, o.t_r)),
            is_end_price: pn.map(|d| d.normalize()),
            vwap: vwap.map(|v| crate::stats::round(v, PRICE_DP)),
            vwap_ex_own: vwap_ex.map(|v| crate::stats::round(v, PRICE_DP)),
            notes: NOTES
                .iter()
                .enumerate()
                .filter(|(i, _)| notes & (1 << i) != 0)
                .map(|(_, n)| *n)
                .collect(),
            stats,
            sums,
        }
    }

    /// Everything as of now. Pending realized-spread horizons take `rs_end_of_data`; orders
    /// still working are measured to the end of the data. Does not change the engine.
    pub fn report(&self) -> Report {
        self.report_filtered(&ReportFilter::default())
    }

    /// [`ExecQuality::report`] over the orders that `filter` keeps (per-order records and every
    /// aggregate are computed from those orders only).
    pub fn report_filtered(&self, filter: &ReportFilter) -> Report {
        let mut sums: Vec<Option<Box<Sums>>> =
            self.orders.iter().map(|o| Some(o.sums.clone())).collect();
        let mut notes = vec![0u32; self.orders.len()];
        for (k, q) in self.pending.iter().enumerate() {
            for p in q {
                let ix = p.order as usize;
                if let Some(s) = sums[ix].as_mut() {
                    notes[ix] |= self.resolve_at_end(s, k, p);
                }
            }
        }
        // Orders are finalized in id order so the map is built from a sorted sequence (large
        // values are then moved once, not shifted inside B-tree nodes).
        let mut by_id: Vec<usize> = (0..self.orders.len()).collect();
        by_id.sort_unstable_by(|a, b| self.orders[*a].id.cmp(&self.orders[*b].id));
        // Aggregate into the finest cells first (one addition per order), then roll the cells
        // up into each grouping.
        let mut cells: HashMap<Cell<'_>, Sums, FixedState> =
            HashMap::with_hasher(FixedState::default());
        let mut orders = BTreeMap::new();
        let mut window_cache: Option<(i64, String)> = None;
        for ix in by_id {
            let Some(s) = sums[ix].take() else { continue };
            let o = &self.orders[ix];
            if !filter.keeps(o.account.as_deref(), &self.syms[o.sym as usize].name, o.t_r) {
                continue;
            }
            let (code, label) = self.window(o.t_r, &mut window_cache);
            let oq = self.finalize(ix, s, notes[ix], label);
            let cell = Cell {
                account: o.account.as_deref().unwrap_or("(none)"),
                symbol: &self.syms[o.sym as usize].name,
                class: o.class,
                bucket: o.size_bucket,
                liquidity: liquidity_of(o.liq),
                window: code,
            };
            match cells.get_mut(&cell) {
                Some(acc) => acc.add(&oq.sums),
                None => {
                    cells.insert(cell, (*oq.sums).clone());
                }
            }
            // Ascending keys: each insert appends to the rightmost leaf.
            orders.insert(oq.order_id.clone(), Box::new(oq));
        }
        let mut overall = Sums::with_horizons(self.r.horizons_ns.len());
        let mut groups: [BTreeMap<String, Sums>; 6] = Default::default();
        let mut labels: HashMap<i64, String> = HashMap::new();
        for (cell, s) in &cells {
            overall.add(s);
            let window = labels
                .entry(cell.window)
                .or_insert_with(|| self.window_label(cell.window));
            let keys: [&str; 6] = [
                cell.account,
                cell.symbol,
                cell.class.as_str(),
                cell.bucket,
                cell.liquidity,
                window,
            ];
            for (g, key) in groups.iter_mut().zip(keys) {
                match g.get_mut(key) {
                    Some(acc) => acc.add(s),
                    None => {
                        g.insert(key.to_string(), s.clone());
                    }
                }
            }
        }
        let st = |m: BTreeMap<String, Sums>| -> BTreeMap<String, Stats> {
            m.into_iter()
                .map(|(k, s)| (k, Stats::from_sums(&s, &self.r)))
                .collect()
        };
        let [a, s, c, b, l, t] = groups;
        Report {
            params: self.r.p.clone(),
            records: self.records,
            data_issues: self
                .issues
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            orders,
            aggregates: Aggregates {
                overall: Stats::from_sums(&overall, &self.r),
                by_account: st(a),
                by_symbol: st(s),
                by_order_class: st(c),
                by_size_bucket: st(b),
                by_liquidity: st(l),
                by_time_window: st(t),
            },
        }
    }

    /// The time-window code of a receipt time (hour or day number since the epoch, or
    /// `year*12 + month0`) and its label, cached for runs of orders in one window.
    fn window(&self, t_r: i64, cache: &mut Option<(i64, String)>) -> (i64, String) {
        let code = match self.r.p.time_window {
            TimeWindow::Hour => t_r.div_euclid(3_600_000_000_000),
            TimeWindow::Day => t_r.div_euclid(NS_PER_DAY),
            TimeWindow::Month => {
                let dt = Timestamp::from_nanos(t_r).to_datetime();
                i64::from(dt.year()) * 12 + i64::from(dt.month0())
            }
        };
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
}

/// The finest aggregation cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Cell<'a> {
    account: &'a str,
    symbol: &'a str,
    class: OrderClass,
    bucket: &'static str,
    liquidity: &'static str,
    window: i64,
}

fn liquidity_of(liq: u8) -> &'static str {
    match liq {
        1 => "maker",
        2 => "taker",
        3 => "mixed",
        _ => "none",
    }
}

fn add_horizon(h: &mut crate::stats::HorizonSums, o: &OrderState, p: &Pending, mid_h: Decimal) {
    let rs = o.signed(Decimal::TWO * (p.price - mid_h));
    h.q += p.q;
    h.rs += p.q * rs;
    h.es += p.q_es;
    h.mid += p.q_mid;
    h.mid_h += p.q * mid_h;
}

fn apply_horizon(o: &mut OrderState, k: usize, p: &Pending, mid_h: Decimal) {
    let mut h = std::mem::take(&mut o.sums.horizons[k]);
    add_horizon(&mut h, o, p, mid_h);
    o.sums.horizons[k] = h;
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
fn vwap_sums(
    o: &OrderState,
    end: &EndSnap,
    on_tape: bool,
) -> (Option<Decimal>, Option<Decimal>, Option<Decimal>) {
    let vw = |incl: bool| {
        let (q, n) = tape_in(o, end, on_tape, incl);
        (q > Decimal::ZERO && n > Decimal::ZERO).then(|| n / q)
    };
    let v = vw(true);
    let vx = vw(false);
    let slip = v.and_then(|v| {
        if o.executed.is_zero() {
            return None;
        }
        crate::stats::bps(
            o.signed(o.sums.exec_notional - o.executed * v),
            o.executed * v,
        )
    });
    (slip, v, vx)
}
