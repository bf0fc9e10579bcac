//! Properties over seeded random event streams: aggregates are their orders recombined;
//! the streaming engine (queried at any point) equals the batch `compute`.

use std::collections::BTreeMap;

use execq::{ExecQuality, Params, Report, compute};
use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};
use proptest::prelude::*;
use rust_decimal::RoundingStrategy;

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

fn stream(seed: u64, n: usize) -> Vec<Record> {
    let mut g = Gen(seed | 1);
    let syms = ["AAA", "BBB", "CCC"];
    let mut mid = [10_000i64, 5_000, 20_000]; // cents
    let mut open: Vec<(String, usize, Side, i64)> = Vec::new();
    let mut t = 1_704_205_800_000i64;
    let mut out = Vec::new();
    let mut next_id = 0;
    for _ in 0..n {
        t += g.below(40_000) as i64; // ties possible, and gaps beyond the 15 s horizon
        let ts = Timestamp::from_millis(t);
        let si = g.below(3) as usize;
        let sym = syms[si];
        let dec = |cents: i64| Decimal::new(cents, 2);
        match g.below(20) {
            0..=6 => {
                mid[si] += g.below(7) as i64 - 3;
                let half = g.below(3) as i64; // 0 gives a locked quote
                let mut r = Record::new(ts, Kind::Quote, sym);
                r.bid = Some(dec(mid[si] - half));
                r.ask = Some(dec(mid[si] + half + i64::from(g.below(10) == 0)));
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
                r.account = Some(format!("acct{}", g.below(3)));
                r.side = Some(side);
                r.qty = Some(Decimal::from(qty));
                if g.below(3) > 0 {
                    r.price = Some(dec(mid[si] + g.below(9) as i64 - 4));
                    r.order_type = Some("limit".into());
                } else {
                    r.order_type = Some("market".into());
                }
                if g.below(4) == 0 {
                    r.decision_price = Some(dec(mid[si] - 2));
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
                r.liquidity = Some(if g.below(2) == 0 {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                });
                out.push(r);
                let mut tr = Record::new(ts, Kind::Trade, syms[osi]);
                tr.qty = Some(Decimal::from(q));
                tr.price = Some(px);
                out.push(tr);
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

fn rnd(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// A grouping's name, its aggregate map and the key function of an order.
type Group<'a> = (
    &'static str,
    &'a BTreeMap<String, execq::Stats>,
    fn(&execq::OrderQuality) -> String,
);

fn check_aggregates(rep: &Report) {
    let groups: [Group<'_>; 4] = [
        ("symbol", &rep.aggregates.by_symbol, |o| o.symbol.clone()),
        ("account", &rep.aggregates.by_account, |o| {
            o.account.clone().unwrap_or("(none)".into())
        }),
        ("class", &rep.aggregates.by_order_class, |o| {
            o.order_class.as_str().to_string()
        }),
        ("liquidity", &rep.aggregates.by_liquidity, |o| {
            o.liquidity.to_string()
        }),
    ];
    for (name, map, key) in groups {
        let mut total_orders = 0;
        for (k, g) in map {
            let members: Vec<_> = rep.orders.values().filter(|o| key(o) == *k).collect();
            total_orders += members.len() as u64;
            assert_eq!(g.orders, members.len() as u64, "{name} {k}");
            let ex: Decimal = members.iter().map(|o| o.stats.shares_executed).sum();
            let ord: Decimal = members.iter().map(|o| o.stats.shares_ordered).sum();
            let can: Decimal = members.iter().map(|o| o.stats.shares_cancelled).sum();
            assert_eq!(g.shares_executed, ex, "{name} {k}");
            assert_eq!(g.shares_cancelled, can, "{name} {k}");
            if !ord.is_zero() {
                assert_eq!(g.fill_rate, Some(rnd(ex / ord, 6)), "{name} {k}");
            }
            // Share-weighted ES recomputed from the orders' exact sums...
            let es: Decimal = members.iter().map(|o| o.sums.es).sum();
            let es_q: Decimal = members.iter().map(|o| o.sums.es_q).sum();
            let want = (!es_q.is_zero()).then(|| rnd(es / es_q, 8));
            assert_eq!(g.avg_effective_spread, want, "{name} {k}");
            // ...and, within rounding, from the orders' published averages.
            if let Some(avg) = g.avg_effective_spread {
                let w: Decimal = members
                    .iter()
                    .filter_map(|o| o.stats.avg_effective_spread.map(|a| a * o.sums.es_q))
                    .sum();
                assert!((avg - w / es_q).abs() <= Decimal::new(1, 7), "{name} {k}");
            }
            let pi: Decimal = members.iter().map(|o| o.stats.price_improved_shares).sum();
            assert_eq!(g.price_improved_shares, pi, "{name} {k}");
            let is: Vec<Decimal> = members
                .iter()
                .filter_map(|o| o.stats.is_total_usd)
                .collect();
            assert_eq!(g.is_orders, is.len() as u64);
            if !is.is_empty() {
                assert_eq!(
                    g.is_total_usd,
                    Some(is.iter().sum::<Decimal>().normalize()),
                    "{name} {k}"
                );
            }
            // The primary realized spread over the resolved shares.
            let rs: Decimal = members.iter().map(|o| o.sums.horizons[2].rs).sum();
            let rq: Decimal = members.iter().map(|o| o.sums.horizons[2].q).sum();
            assert_eq!(
                g.avg_realized_spread,
                (!rq.is_zero()).then(|| rnd(rs / rq, 8)),
                "{name} {k}"
            );
        }
        assert_eq!(total_orders, rep.orders.len() as u64, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn aggregates_recombine_and_streaming_equals_batch(seed in any::<u64>(), n in 50usize..400, cut in 0usize..400) {
        let recs = stream(seed, n);
        let p = Params::default();
        let batch = compute(&recs, &p).unwrap();
        check_aggregates(&batch);
        for o in batch.orders.values() {
            // Executed + cancelled never exceed ordered unless an overfill is flagged.
            if !o.notes.contains(&"overfill") {
                prop_assert!(o.stats.shares_executed + o.stats.shares_cancelled <= o.stats.shares_ordered);
            }
        }
        let mut e = ExecQuality::new(p).unwrap();
        e.set_observations(true);
        for (i, r) in recs.iter().enumerate() {
            e.on_record(r);
            if i == cut.min(recs.len() - 1) {
                // Querying mid-stream does not change the outcome, and order() agrees with
                // report() at that point.
                let mid = e.report();
                if let Some((id, oq)) = mid.orders.iter().next() {
                    let one = e.order(id);
                    prop_assert_eq!(one.as_ref(), Some(&**oq));
                }
            }
        }
        let streamed = e.report();
        prop_assert_eq!(serde_json::to_string(&streamed).unwrap(), serde_json::to_string(&batch).unwrap());
        // One time-to-execution observation per fill applied.
        let obs = e.drain_observations();
        let fills = batch.orders.values().map(|o| o.fill_count).sum::<u64>();
        prop_assert_eq!(obs.iter().filter(|o| o.metric == execq::Metric::TimeToExecutionMs).count() as u64, fills);
    }
}

/// The per-order CSV line built independently of the CSV writer: each column of `header` is
/// the row's serde field of that name (the horizon pairs from `realized_spreads`, `notes`
/// joined with `;`), null as an empty cell, quoted as RFC 4180 quotes.
fn csv_line_reference(header: &str, o: &execq::OrderQuality) -> String {
    let v = serde_json::to_value(o).unwrap();
    let text = |x: &serde_json::Value| match x {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut horizon = 0;
    let cells: Vec<String> = header
        .trim_end()
        .split(',')
        .map(|col| {
            let cell = if col == "notes" {
                let notes = v["notes"].as_array().unwrap();
                notes.iter().map(text).collect::<Vec<_>>().join(";")
            } else if let Some(field) = v.get(col) {
                text(field)
            } else if col.starts_with("avg_realized_spread_bps_") {
                horizon += 1;
                text(&v["realized_spreads"][horizon - 1]["avg_realized_spread_bps"])
            } else {
                assert!(col.starts_with("avg_realized_spread_"), "{col}");
                text(&v["realized_spreads"][horizon]["avg_realized_spread"])
            };
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect();
    cells.join(",") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The hand-written JSON report and CSV lines are serde's report and the cell-by-cell CSV,
    /// byte for byte; the NDJSON reader gives back the records serde wrote (scales included),
    /// whatever the ids, owners and symbols contain.
    #[test]
    fn hand_written_outputs_and_the_ndjson_reader_match_serde(
        seed in any::<u64>(),
        n in 50usize..400,
        variant in 0usize..4,
    ) {
        let mut recs = stream(seed, n);
        // Text needing JSON escapes or CSV quoting, and an owner on some orders.
        let odd = ["o\"q", "o,c", "o\\b", "é✓", "tab\there", "nl\nx"];
        for (i, r) in recs.iter_mut().enumerate() {
            if let Some(id) = &mut r.order_id && id.ends_with('7') {
                id.push_str(odd[id.len() % odd.len()]);
            }
            if r.kind == Kind::OrderNew && i % 3 == 0 {
                r.owner = Some(odd[i % odd.len()].to_string());
            }
        }
        let mut p = Params::default();
        match variant {
            1 => {
                p.size_bucket_basis = execq::SizeBucketBasis::Notional;
                p.time_window = execq::TimeWindow::Hour;
            }
            2 => {
                p.rs_horizons_ms = vec![1_000];
                p.rs_primary_horizon_ms = 1_000;
                p.time_window = execq::TimeWindow::Month;
            }
            3 => p.rs_end_of_data = execq::RsEndOfData::Exclude,
            _ => {}
        }
        let mut ndjson = Vec::new();
        for r in &recs {
            serde_json::to_writer(&mut ndjson, r).unwrap();
            ndjson.push(b'\n');
        }
        let mut e = ExecQuality::batch(p).unwrap();
        let mut reader = execq::RecordReader::new(&ndjson[..], "gen");
        let mut back = 0;
        while let Some(r) = reader.next_record() {
            let r = r.unwrap();
            let want = serde_json::from_slice::<Record>(
                &serde_json::to_vec(&recs[back]).unwrap(),
            ).unwrap();
            prop_assert_eq!(format!("{r:?}"), format!("{want:?}"));
            e.on_record(r);
            back += 1;
        }
        prop_assert_eq!(back, recs.len());

        let mut ours = Vec::new();
        e.write_report_json(&mut ours).unwrap();
        let theirs = serde_json::to_vec_pretty(&e.report()).unwrap();
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());

        let header = execq::report_csv_header(e.params());
        let mut line = Vec::new();
        for row in e.held_rows_iter(&execq::ReportFilter::default()) {
            line.clear();
            execq::write_report_csv_line(&mut line, &row);
            prop_assert_eq!(
                String::from_utf8(line.clone()).unwrap(),
                csv_line_reference(&header, &row)
            );
        }
    }
}
