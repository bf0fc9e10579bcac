//! Bounded streaming: two-stage eviction of finished orders (rows out with realized-spread
//! lookups waiting, then their updates), running aggregates, aggregates / reports / Rule 605
//! from rows, snapshots, and bounded memory (in `bounded.rs`). Every property compares
//! against the batch `compute` over the same records, which keeps every order.

use std::collections::BTreeMap;

use execq::{
    CrossedQuote, DecisionPriceFallback, EsBenchmark, ExecQuality, IsBpsDenominator, IsEndPrice,
    OrderQuality, Params, ReportFilter, RowChange, RowUpdater, RsEndOfData, SizeBucketBasis,
    TimeWindow, aggregate_rows, compute, report_from_rows, rule605, rule605_from_rows,
};
use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};
use proptest::prelude::*;

/// A small deterministic generator (xorshift) so a failing seed replays exactly.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 2024-01-02T14:30:00Z.
const T0_MS: i64 = 1_704_205_800_000;

/// Random order_new / fill / cancel / quote / trade records in time order: partial fills,
/// fills racing cancels, fills without a tape print, crossed and locked quotes, orders
/// without an account or decision price, IOC residuals, orders still working at the end.
fn stream(seed: u64, n: usize) -> Vec<Record> {
    let mut g = Gen(seed | 1);
    let syms = ["AAA", "BBB", "CCC"];
    let mut mid = [10_000i64, 5_000, 20_000]; // cents
    let mut open: Vec<(String, usize, Side, i64)> = Vec::new();
    let mut t = T0_MS;
    let mut out = Vec::new();
    let mut next_id = 0;
    let dec = |cents: i64| Decimal::new(cents, 2);
    for _ in 0..n {
        t += g.below(40_000) as i64; // ties possible, and gaps beyond the horizons
        let ts = Timestamp::from_millis(t);
        let si = g.below(3) as usize;
        let sym = syms[si];
        match g.below(20) {
            0..=6 => {
                mid[si] += g.below(7) as i64 - 3;
                let half = g.below(3) as i64; // 0 gives a locked quote
                let mut r = Record::new(ts, Kind::Quote, sym);
                r.bid = Some(dec(mid[si] - half));
                r.ask = Some(dec(mid[si] + half + i64::from(g.below(10) == 0)));
                if g.below(25) == 0 {
                    std::mem::swap(&mut r.bid, &mut r.ask); // crossed
                    r.ask = r.ask.map(|a| a - Decimal::ONE);
                }
                out.push(r);
            }
            7..=9 => {
                let mut r = Record::new(ts, Kind::OrderNew, sym);
                let id = format!("o{next_id}");
                next_id += 1;
                let side = if g.below(2) == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let qty = [50, 100, 300, 700, 2500, 6000][g.below(6) as usize];
                r.order_id = Some(id.clone());
                r.account = match g.below(4) {
                    0 => None,
                    a => Some(format!("acct{a}")),
                };
                r.side = Some(side);
                r.qty = Some(Decimal::from(qty));
                if g.below(3) > 0 {
                    r.price = Some(dec(mid[si] + g.below(9) as i64 - 4));
                    r.order_type = Some("limit".into());
                } else {
                    r.order_type = Some("market".into());
                }
                if g.below(3) == 0 {
                    r.decision_price = Some(dec(mid[si] - 2 + g.below(5) as i64));
                }
                r.tif = Some(if g.below(5) == 0 { "ioc" } else { "day" }.into());
                open.push((id, si, side, qty));
                out.push(r);
            }
            10..=14 if !open.is_empty() => {
                let k = g.below(open.len() as u64) as usize;
                let (id, osi, side, left) = open[k].clone();
                let q = 1 + g.below(left as u64) as i64;
                let px = dec(mid[osi] + g.below(7) as i64 - 3);
                let mut r = Record::new(ts, Kind::Fill, syms[osi]);
                r.order_id = Some(id);
                r.side = Some(side);
                r.qty = Some(Decimal::from(q));
                r.price = Some(px);
                r.fee = Some(Decimal::new(q, 3));
                r.liquidity = match g.below(5) {
                    0 => None,
                    1 | 2 => Some(Liquidity::Maker),
                    _ => Some(Liquidity::Taker),
                };
                out.push(r);
                if g.below(8) > 0 {
                    let mut tr = Record::new(ts, Kind::Trade, syms[osi]);
                    tr.qty = Some(Decimal::from(q));
                    tr.price = Some(px);
                    out.push(tr);
                }
                if q >= left {
                    open.swap_remove(k);
                } else {
                    open[k].3 = left - q;
                }
            }
            15..=16 if !open.is_empty() => {
                let k = g.below(open.len() as u64) as usize;
                let (id, osi, _, left) = open.swap_remove(k);
                let mut r = Record::new(ts, Kind::OrderCancel, syms[osi]);
                r.order_id = Some(id.clone());
                r.qty = if g.below(2) == 0 {
                    Some(Decimal::from(left))
                } else {
                    None
                };
                out.push(r);
                if g.below(6) == 0 {
                    // A fill racing the cancel.
                    let mut f = Record::new(ts, Kind::Fill, syms[osi]);
                    f.order_id = Some(id);
                    f.qty = Some(Decimal::ONE);
                    f.price = Some(dec(mid[osi]));
                    out.push(f);
                }
            }
            _ => {
                let mut r = Record::new(ts, Kind::Trade, sym);
                r.qty = Some(Decimal::from(1 + g.below(500)));
                r.price = Some(dec(mid[si] + g.below(5) as i64 - 2));
                out.push(r);
            }
        }
    }
    out
}

/// Parameters varied over the readings that change what a held order's statistics depend on.
fn params(v: u64) -> Params {
    let mut g = Gen(v | 1);
    let mut p = Params::default();
    if g.below(2) == 0 {
        // Short horizons, so lookups resolve and orders leave within the stream.
        p.rs_horizons_ms = vec![1_000, 15_000];
        p.rs_primary_horizon_ms = 15_000;
    }
    p.es_benchmark = [EsBenchmark::ReceiptMid, EsBenchmark::ExecutionMid][g.below(2) as usize];
    p.rs_end_of_data = [RsEndOfData::LastQuote, RsEndOfData::Exclude][g.below(2) as usize];
    p.crossed_quote = [CrossedQuote::Ignore, CrossedQuote::Use][g.below(2) as usize];
    p.decision_price_fallback = [
        DecisionPriceFallback::None,
        DecisionPriceFallback::ArrivalMid,
    ][g.below(2) as usize];
    p.is_bps_denominator =
        [IsBpsDenominator::Paper, IsBpsDenominator::Executed][g.below(2) as usize];
    p.is_include_fees = g.below(2) == 0;
    p.own_prints_on_tape = g.below(2) == 0;
    p.time_window = [TimeWindow::Hour, TimeWindow::Day, TimeWindow::Month][g.below(3) as usize];
    p.size_bucket_basis = [SizeBucketBasis::Shares, SizeBucketBasis::Notional][g.below(2) as usize];
    p.ioc_residual_as_cancel = g.below(2) == 0;
    if g.below(4) == 0 {
        // Closes a few minutes into the stream: the horizon proviso caps lookups there.
        p.session_close = Some("14:40".into());
    }
    p.late_fill_grace_ms = [0, 5_000, 60_000][g.below(3) as usize];
    if g.below(6) == 0 {
        p.is_end_price = IsEndPrice::EndOfDataMid;
    }
    p
}

/// A row store as the service keeps one: rows by order id, a row replacing the stored one,
/// an update completing it.
struct Store {
    rows: BTreeMap<String, OrderQuality>,
    updater: RowUpdater,
}

impl Store {
    fn new(p: &Params) -> Store {
        Store {
            rows: BTreeMap::new(),
            updater: RowUpdater::new(p).unwrap(),
        }
    }

    fn apply(&mut self, changes: Vec<RowChange>) {
        for c in changes {
            match c {
                RowChange::Row(r) => {
                    self.rows.insert(r.order_id.clone(), *r);
                }
                RowChange::Update(u) => {
                    assert!(u.is_final(), "{}: a drained update is final", u.order_id());
                    let row = self
                        .rows
                        .get_mut(u.order_id())
                        .expect("an update follows its row");
                    assert!(
                        self.updater.apply(row, &u).unwrap(),
                        "the row waited for it"
                    );
                }
            }
        }
    }

    /// The stored rows as stored (some waiting for realized-spread lookups).
    fn stored(&self) -> Vec<OrderQuality> {
        self.rows.values().cloned().collect()
    }

    /// Every order as of now: the stored rows, those still waiting brought up to now with the
    /// engine's views, and the rows of the orders held in full. Each order exactly once.
    fn now(&self, e: &ExecQuality) -> Vec<OrderQuality> {
        let views = e.spread_views(&ReportFilter::default());
        let mut out = Vec::new();
        let mut used = 0;
        for row in self.rows.values() {
            let mut row = row.clone();
            if row.pending_spreads.is_some() {
                let v = views
                    .iter()
                    .find(|v| v.order_id() == row.order_id)
                    .expect("the engine has a view of every row waiting for lookups");
                assert!(self.updater.apply(&mut row, v).unwrap());
                used += 1;
            }
            out.push(row);
        }
        assert_eq!(used, views.len(), "every view has its stored row");
        assert_eq!(e.settling_orders(), views.len());
        for row in e.held_rows(&ReportFilter::default()) {
            assert!(
                !self.rows.contains_key(&row.order_id),
                "{} twice",
                row.order_id
            );
            out.push(row);
        }
        out
    }
}

/// Feed `recs` to a streaming engine, turning eviction on (when the parameters allow it)
/// before record `evict_from`, applying the drained rows and updates to a store every few
/// records. Returns the engine and the store.
fn stream_engine(recs: &[Record], p: &Params, evict_from: usize) -> (ExecQuality, Store) {
    let mut e = ExecQuality::new(p.clone()).unwrap();
    let mut store = Store::new(p);
    for (i, r) in recs.iter().enumerate() {
        if i == evict_from.min(recs.len() - 1) {
            let evicting = e.set_eviction(true).is_ok();
            assert_eq!(evicting, p.is_end_price == IsEndPrice::OrderEndMid);
        }
        e.on_record(r);
        if i % 7 == 0 {
            store.apply(e.drain_rows());
        }
    }
    store.apply(e.drain_rows());
    (e, store)
}

/// A quote on a symbol no order trades, two days after `recs`: every realized-spread
/// horizon and late-fill grace has passed by then, and nothing else changes.
fn far_future(recs: &[Record]) -> Record {
    let last = recs.last().map_or(T0_MS, |r| r.ts.as_millis());
    let mut q = Record::new(
        Timestamp::from_millis(last + 2 * 86_400_000),
        Kind::Quote,
        "ZZZ",
    );
    q.bid = Some(Decimal::ONE);
    q.ask = Some(Decimal::TWO);
    q
}

/// Where two long strings first differ, with context (for readable failures).
fn first_diff(a: &str, b: &str) -> String {
    let i = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let lo = i.saturating_sub(300);
    format!(
        "at {i}: ...{} | ...{}",
        &a[lo..(i + 80).min(a.len())],
        &b[lo..(i + 80).min(b.len())]
    )
}

/// Equal strings, or a failure naming the first difference.
macro_rules! same {
    ($a:expr, $b:expr) => {{
        let (a, b): (String, String) = ($a, $b);
        prop_assert!(a == b, "{}", first_diff(&a, &b));
    }};
}

fn by_id(rows: impl IntoIterator<Item = OrderQuality>) -> BTreeMap<String, OrderQuality> {
    let mut m = BTreeMap::new();
    for r in rows {
        let id = r.order_id.clone();
        assert!(m.insert(id.clone(), r).is_none(), "{id} twice");
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) running aggregates and aggregates over stored ++ held rows (stored rows waiting for
    /// realized-spread lookups brought up to now with the engine's views) equal the batch
    /// aggregates, at the end and at a cut; (b) every such row equals the batch row; reports,
    /// filters and Rule 605 from rows agree with the batch forms; (c) once every lookup has
    /// resolved, the stored rows themselves are the batch rows.
    #[test]
    fn evicting_stream_equals_batch(seed in any::<u64>(), pv in any::<u64>(), n in 50usize..300, cut in 0usize..300) {
        let recs = stream(seed, n);
        let p = params(pv);
        let batch = compute(&recs, &p).unwrap();
        // Eviction from the start, or turned on halfway (orders that ended before then leave
        // on their deadlines too).
        let evict_from = if pv % 3 == 0 { recs.len() / 2 } else { 0 };
        let (e, store) = stream_engine(&recs, &p, evict_from);
        let held = e.held_rows(&ReportFilter::default());
        prop_assert_eq!(e.held_orders(), held.len());
        prop_assert_eq!(&e.aggregates(), &batch.aggregates);
        let now = store.now(&e);
        let all = || now.iter();
        prop_assert_eq!(&aggregate_rows(all(), &p, &ReportFilter::default()).unwrap(), &batch.aggregates);

        let rows = by_id(all().cloned());
        prop_assert_eq!(rows.len(), batch.orders.len());
        for (id, want) in &batch.orders {
            prop_assert_eq!(rows.get(id), Some(&**want), "order {}", id);
        }
        // Stored rows (waiting ones included) read back equal.
        let stored = store.stored();
        let read_back: Vec<OrderQuality> = stored
            .iter()
            .map(|r| OrderQuality::from_stored_json(&r.to_stored_json().unwrap()).unwrap())
            .collect();
        prop_assert_eq!(&read_back, &stored);

        // The full report from rows, and from the engine with the stored rows as stored.
        let rep = report_from_rows(all().cloned(), &p, &ReportFilter::default(), e.records(), e.data_issues()).unwrap();
        prop_assert_eq!(serde_json::to_string(&rep).unwrap(), serde_json::to_string(&batch).unwrap());
        let rep = e.report_with(read_back.iter().cloned(), &ReportFilter::default());
        prop_assert_eq!(serde_json::to_string(&rep).unwrap(), serde_json::to_string(&batch).unwrap());
        // Before every lookup resolved, the stored rows plus the held rows still count each
        // order once, with only the waiting lookups left out.
        let raw = aggregate_rows(stored.iter().chain(held.iter()), &p, &ReportFilter::default()).unwrap();
        prop_assert_eq!(raw.overall.orders, batch.aggregates.overall.orders);
        prop_assert_eq!(&raw.overall.shares_executed, &batch.aggregates.overall.shares_executed);
        prop_assert_eq!(&raw.overall.avg_effective_spread, &batch.aggregates.overall.avg_effective_spread);

        // Filters: the same orders as the engine's own filtered report over every order.
        let mut keep_all = ExecQuality::new(p.clone()).unwrap();
        for r in &recs {
            keep_all.on_record(r);
        }
        let from = Timestamp::from_millis(T0_MS + (seed % 2_000_000) as i64);
        let filters = [
            ReportFilter { account: Some("acct1".into()), ..Default::default() },
            ReportFilter { symbol: Some("BBB".into()), from: Some(from), ..Default::default() },
            ReportFilter { to: Some(from), ..Default::default() },
        ];
        for f in &filters {
            let want = keep_all.report_filtered(f);
            prop_assert_eq!(&aggregate_rows(all(), &p, f).unwrap(), &want.aggregates);
            let rep = e.report_with(stored.iter().cloned(), f);
            prop_assert_eq!(serde_json::to_string(&rep).unwrap(), serde_json::to_string(&want).unwrap());
            // The filtered views cover the filtered waiting rows.
            let views = e.spread_views(f);
            let waiting = stored
                .iter()
                .filter(|r| r.pending_spreads.is_some())
                .filter(|r| f.account.as_deref().is_none_or(|a| r.account.as_deref() == Some(a)))
                .filter(|r| f.symbol.as_deref().is_none_or(|s| r.symbol == s));
            for r in waiting {
                let in_time = f.from.is_none_or(|t| r.receipt_ts >= t) && f.to.is_none_or(|t| r.receipt_ts < t);
                if in_time {
                    prop_assert!(views.iter().any(|v| v.order_id() == r.order_id), "{}", r.order_id);
                }
            }
        }
        prop_assert_eq!(
            &rule605_from_rows(all(), &p, "2024-01").unwrap(),
            &rule605(&batch, "2024-01").unwrap()
        );

        // Mid-stream: the running aggregates equal the batch over the records so far.
        let cut = cut.min(recs.len() - 1);
        let (mid_engine, _) = stream_engine(&recs[..=cut], &p, 0);
        prop_assert_eq!(&mid_engine.aggregates(), &compute(&recs[..=cut], &p).unwrap().aggregates);

        // Once every lookup has resolved, the stored rows are final and equal the batch rows
        // without any view: the update of each waiting row completed it.
        if p.is_end_price == IsEndPrice::OrderEndMid {
            let mut longer = recs.clone();
            longer.push(far_future(&recs));
            let batch = compute(&longer, &p).unwrap();
            let (e, store) = stream_engine(&longer, &p, evict_from);
            prop_assert_eq!(e.settling_orders(), 0);
            prop_assert_eq!(e.state_sizes().pending_lookups, 0);
            let held = e.held_rows(&ReportFilter::default());
            let rows = by_id(store.stored().into_iter().chain(held));
            prop_assert_eq!(rows.len(), batch.orders.len());
            for (id, want) in &batch.orders {
                let got = rows.get(id);
                prop_assert!(got.is_some_and(|r| r.pending_spreads.is_none()), "{}", id);
                prop_assert_eq!(got, Some(&**want), "order {}", id);
            }
            prop_assert_eq!(&e.aggregates(), &batch.aggregates);
        }
    }

    /// (c) snapshot at a random point, serde_json round trip, continue == uninterrupted: same
    /// finalized rows, observations, aggregates, report and final state.
    #[test]
    fn snapshot_and_continue_equals_uninterrupted(seed in any::<u64>(), pv in any::<u64>(), n in 50usize..300, cut in 0usize..300, via_value in any::<bool>()) {
        let recs = stream(seed, n);
        let p = params(pv);
        let start = || {
            let mut e = ExecQuality::new(p.clone()).unwrap();
            let _ = e.set_eviction(true);
            e.set_observations(true);
            e
        };
        let cut = cut.min(recs.len());
        let drain = |e: &mut ExecQuality, rows: &mut Vec<RowChange>, obs: &mut Vec<execq::Observation>| {
            rows.extend(e.drain_rows());
            obs.extend(e.drain_observations());
        };
        let (mut a, mut a_rows, mut a_obs) = (start(), Vec::new(), Vec::new());
        for (i, r) in recs.iter().enumerate() {
            a.on_record(r);
            if i % 5 == 0 {
                drain(&mut a, &mut a_rows, &mut a_obs);
            }
        }
        drain(&mut a, &mut a_rows, &mut a_obs);

        let (mut b, mut b_rows, mut b_obs) = (start(), Vec::new(), Vec::new());
        for (i, r) in recs[..cut].iter().enumerate() {
            b.on_record(r);
            if i % 5 == 0 {
                drain(&mut b, &mut b_rows, &mut b_obs);
            }
        }
        let json = serde_json::to_string(&b).unwrap();
        let mut b: ExecQuality = if via_value {
            serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap()
        } else {
            serde_json::from_str(&json).unwrap()
        };
        same!(serde_json::to_string(&b).unwrap(), json);
        for (i, r) in recs.iter().enumerate().skip(cut) {
            b.on_record(r);
            if i % 5 == 0 {
                drain(&mut b, &mut b_rows, &mut b_obs);
            }
        }
        drain(&mut b, &mut b_rows, &mut b_obs);
        prop_assert_eq!(&b_rows, &a_rows);
        prop_assert_eq!(&b_obs, &a_obs);
        prop_assert_eq!(&b.aggregates(), &a.aggregates());
        same!(serde_json::to_string(&b.report()).unwrap(), serde_json::to_string(&a.report()).unwrap());
        same!(serde_json::to_string(&b).unwrap(), serde_json::to_string(&a).unwrap());
    }
}

fn rec(ms: i64, kind: Kind, id: &str) -> Record {
    let mut r = Record::new(Timestamp::from_millis(T0_MS + ms), kind, "XYZ");
    if kind != Kind::Quote && kind != Kind::Trade {
        r.order_id = Some(id.into());
    }
    r
}

fn order_new(ms: i64, id: &str, qty: i64) -> Record {
    let mut r = rec(ms, Kind::OrderNew, id);
    r.side = Some(Side::Buy);
    r.qty = Some(Decimal::from(qty));
    r.order_type = Some("market".into());
    r.account = Some("A".into());
    r
}

fn fill(ms: i64, id: &str, qty: i64) -> Record {
    let mut r = rec(ms, Kind::Fill, id);
    r.side = Some(Side::Buy);
    r.qty = Some(Decimal::from(qty));
    r.price = Some(Decimal::new(1002, 2));
    r
}

fn quote(ms: i64) -> Record {
    let mut r = rec(ms, Kind::Quote, "");
    r.bid = Some(Decimal::new(1000, 2));
    r.ask = Some(Decimal::new(1002, 2));
    r
}

/// The rows of `changes`, which must all be final rows (no lookup left waiting).
fn final_rows(changes: Vec<RowChange>) -> Vec<OrderQuality> {
    changes
        .into_iter()
        .map(|c| match c {
            RowChange::Row(r) if r.pending_spreads.is_none() => *r,
            other => panic!("not a final row: {other:?}"),
        })
        .collect()
}

/// A fill within the grace after a cancel is applied (the cancel shrinks, as in the batch);
/// one after the order left is a data issue, not a panic, and changes nothing.
#[test]
fn late_fills_within_and_after_the_grace() {
    let p = Params {
        late_fill_grace_ms: 10_000,
        rs_horizons_ms: vec![1_000],
        rs_primary_horizon_ms: 1_000,
        ..Params::default()
    };
    let recs = vec![
        quote(0),
        order_new(1, "o1", 300),
        fill(2, "o1", 100),
        rec(3, Kind::OrderCancel, "o1"),
        // 5 s after the cancel: within the grace.
        fill(5_003, "o1", 50),
        order_new(5_004, "o2", 100),
        rec(5_005, Kind::OrderCancel, "o2"),
        quote(15_004),
        // o1 ended at 5.003 s: deadline 15.003 s, so it left on the quote at 15.004 s.
        fill(20_000, "o1", 10),
        rec(20_001, Kind::OrderCancel, "o1"),
        quote(30_000),
    ];
    let mut e = ExecQuality::new(p.clone()).unwrap();
    e.set_eviction(true).unwrap();
    let mut rows = Vec::new();
    for r in &recs[..8] {
        e.on_record(r);
    }
    rows.extend(final_rows(e.drain_rows()));
    assert_eq!(rows.len(), 1, "o1 is final");
    let o1 = &rows[0].clone();
    assert_eq!(o1.order_id, "o1");
    assert_eq!(o1.stats.shares_executed, Decimal::from(150));
    assert_eq!(o1.stats.shares_cancelled, Decimal::from(150));
    assert!(o1.notes.contains(&"fill_after_cancel"));
    let before = e.aggregates();
    for r in &recs[8..] {
        e.on_record(r);
    }
    rows.extend(final_rows(e.drain_rows()));
    assert_eq!(
        e.data_issues().get("fill_for_unknown_or_evicted_order"),
        Some(&1)
    );
    assert_eq!(
        e.data_issues().get("cancel_for_unknown_or_evicted_order"),
        Some(&1)
    );
    assert_eq!(
        e.aggregates().overall.shares_executed,
        before.overall.shares_executed
    );
    assert_eq!(e.held_orders(), 0);
    // The batch applies the very late fill (it never forgets an order): that is the
    // difference the grace bounds.
    let batch = compute(&recs, &p).unwrap();
    assert_eq!(batch.orders["o1"].stats.shares_executed, Decimal::from(160));
    assert_eq!(batch.data_issues.get("fill_for_unknown_order"), None);
    // Everything before the late records agrees with the batch.
    let batch = compute(&recs[..8], &p).unwrap();
    assert_eq!(&**batch.orders.get("o1").unwrap(), o1);
}

#[test]
fn eviction_needs_a_final_end_price() {
    let p = Params {
        is_end_price: IsEndPrice::EndOfDataMid,
        ..Params::default()
    };
    let mut e = ExecQuality::new(p).unwrap();
    assert!(matches!(
        e.set_eviction(true),
        Err(execq::ExecqError::EvictionUnsupported(_))
    ));
    assert!(!e.eviction());
}

#[test]
fn stored_rows_need_their_sums_and_snapshots_check_their_version() {
    let recs = stream(7, 200);
    let batch = compute(&recs, &Params::default()).unwrap();
    let row = batch.orders.values().next().unwrap();
    let stored = row.to_stored_json().unwrap();
    assert_eq!(&OrderQuality::from_stored_json(&stored).unwrap(), &**row);
    // The served form has no sums: reading it back would aggregate to zero, so it is refused.
    let served = serde_json::to_string(&**row).unwrap();
    assert!(OrderQuality::from_stored_json(&served).is_err());

    let mut e = ExecQuality::new(Params::default()).unwrap();
    for r in &recs {
        e.on_record(r);
    }
    let mut v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["version"], execq::SNAPSHOT_VERSION);
    v["version"] = (execq::SNAPSHOT_VERSION + 1).into();
    assert!(serde_json::from_value::<ExecQuality>(v.clone()).is_err());
    // A damaged index is refused on restore rather than panicking later.
    v["version"] = execq::SNAPSHOT_VERSION.into();
    v["syms"] = serde_json::json!([]);
    assert!(serde_json::from_value::<ExecQuality>(v).is_err());
}

fn quote_at(ms: i64, bid_cents: i64, ask_cents: i64) -> Record {
    let mut r = rec(ms, Kind::Quote, "");
    r.bid = Some(Decimal::new(bid_cents, 2));
    r.ask = Some(Decimal::new(ask_cents, 2));
    r
}

/// The two stages pinned on one order: its row goes out after the grace with both lookups
/// waiting (and the engine's view of it is the batch row at that point), the compact record
/// resolves them at the mids prevailing at their targets, and the update completes the stored
/// row into the batch row. Meanwhile a late fill is ignored, the id cannot be reused, and a
/// snapshot whose waiting lookups do not match the record's count is refused.
#[test]
fn a_row_goes_out_after_the_grace_and_its_update_completes_it() {
    let p = Params {
        rs_horizons_ms: vec![1_000],
        rs_primary_horizon_ms: 10_000,
        late_fill_grace_ms: 500,
        ..Params::default()
    };
    let mut recs = vec![
        quote_at(0, 1_000, 1_002),
        order_new(1, "o1", 100),
        fill(2, "o1", 100),
        // 600 ms: the grace (500 ms after the fill that ended it) has passed.
        quote_at(600, 1_004, 1_006),
    ];
    let mut e = ExecQuality::new(p.clone()).unwrap();
    e.set_eviction(true).unwrap();
    let mut store = Store::new(&p);
    for r in &recs {
        e.on_record(r);
    }
    let changes = e.drain_rows();
    assert_eq!(changes.len(), 1);
    let RowChange::Row(row) = &changes[0] else {
        panic!("a row first: {changes:?}");
    };
    let pending = row.pending_spreads.as_deref().expect("both lookups wait");
    assert_eq!(pending.lookups, 2);
    assert_eq!(pending.horizons.len(), 2);
    assert_eq!(pending.horizons[0].shares, Decimal::from(100));
    // Bought 100 at 10.02: s*2*q*P = 2004.
    assert_eq!(pending.horizons[0].signed_2qp, Decimal::from(2004));
    assert!(
        row.stats
            .realized_spreads
            .iter()
            .all(|h| h.shares.is_zero())
    );
    assert_eq!(e.held_orders(), 0);
    assert_eq!(e.settling_orders(), 1);
    assert_eq!(e.order("o1"), None);
    store.apply(changes);
    // The view of now: both lookups at the last mid (10.05), as the batch report gives it.
    let batch = compute(&recs, &p).unwrap();
    assert_eq!(store.now(&e), vec![(*batch.orders["o1"]).clone()]);
    let view = e.spread_view("o1").unwrap();
    assert!(!view.is_final());

    // After the grace: a late fill is ignored, the id is not free.
    let mut late = e_clone(&e);
    late.on_record(&fill(700, "o1", 10));
    late.on_record(&order_new(800, "o1", 100));
    assert_eq!(
        late.data_issues().get("fill_for_unknown_or_evicted_order"),
        Some(&1)
    );
    assert_eq!(late.data_issues().get("duplicate_order_id"), Some(&1));
    assert_eq!(late.settling_orders(), 1);

    // A snapshot is checked: the record's count of waiting lookups must match the queue.
    let mut v = serde_json::to_value(&e).unwrap();
    let slot = v["orders"]
        .as_array()
        .unwrap()
        .iter()
        .position(|o| o.get("s").is_some())
        .unwrap();
    assert_eq!(v["orders"][slot]["s"][8], 2, "{}", v["orders"][slot]);
    v["orders"][slot]["s"][8] = 3.into();
    assert!(serde_json::from_value::<ExecQuality>(v).is_err());

    // 1.002 s: the 1 s horizon resolves at the mid then (10.05); 10.002 s: the 10 s horizon at
    // 10.07. The record leaves with the last one, and its update completes the row.
    recs.extend([
        quote_at(1_500, 1_008, 1_010),
        quote_at(9_000, 1_006, 1_008),
        quote_at(10_003, 1_000, 1_002),
    ]);
    for r in &recs[4..] {
        e.on_record(r);
    }
    let changes = e.drain_rows();
    assert!(
        matches!(&changes[..], [RowChange::Update(u)] if u.order_id() == "o1" && u.is_final()),
        "{changes:?}"
    );
    assert_eq!(e.settling_orders(), 0);
    assert_eq!(e.state_sizes().order_slots, 1);
    store.apply(changes);
    let row = &store.rows["o1"];
    assert_eq!(row.pending_spreads, None);
    let batch = compute(&recs, &p).unwrap();
    assert_eq!(row, &*batch.orders["o1"]);
    // 2*(10.02 - 10.05) per share at 1 s, 2*(10.02 - 10.07) at 10 s.
    let rs: Vec<_> = row
        .stats
        .realized_spreads
        .iter()
        .map(|h| h.avg_realized_spread)
        .collect();
    assert_eq!(
        rs,
        vec![Some(Decimal::new(-6, 2)), Some(Decimal::new(-10, 2))]
    );
    // Applying the update again (a replay) changes nothing.
    let again = RowUpdater::new(&p).unwrap();
    let mut copy = row.clone();
    assert!(!again.apply(&mut copy, &view).unwrap());
    assert_eq!(&copy, row);
}

/// An independent copy of an engine (through its snapshot).
fn e_clone(e: &ExecQuality) -> ExecQuality {
    serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap()
}
