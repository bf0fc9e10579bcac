//! Known answers worked by hand from the spec's formulas (section A). Each case lists its
//! arithmetic. Quote convention: M = (bid+ask)/2, Q = ask-bid, s = +1 buy / -1 sell.

use execq::{
    CrossedQuote, DecisionPriceFallback, EsBenchmark, OrderClass, OrderStatus, Params, QuoteTiming,
    Report, RsEndOfData, compute, report_to_csv, rule605, rule605_to_csv, rule605_to_html,
};
use interchange::{Kind, Record};
use model::{Decimal, Liquidity, Side, Timestamp};

/// 2024-01-02T14:30:00Z plus `ms`.
fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_704_205_800_000 + ms)
}
fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}
fn quote(ms: i64, sym: &str, bid: &str, ask: &str) -> Record {
    let mut r = Record::new(t(ms), Kind::Quote, sym);
    r.bid = Some(d(bid));
    r.ask = Some(d(ask));
    r
}
fn order(ms: i64, sym: &str, id: &str, side: Side, qty: &str, limit: Option<&str>) -> Record {
    let mut r = Record::new(t(ms), Kind::OrderNew, sym);
    r.account = Some("A1".into());
    r.order_id = Some(id.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.price = limit.map(d);
    r.order_type = Some(if limit.is_some() { "limit" } else { "market" }.into());
    r.tif = Some("day".into());
    r
}
fn fill(ms: i64, sym: &str, id: &str, side: Side, qty: &str, px: &str) -> Record {
    let mut r = Record::new(t(ms), Kind::Fill, sym);
    r.account = Some("A1".into());
    r.order_id = Some(id.into());
    r.side = Some(side);
    r.qty = Some(d(qty));
    r.price = Some(d(px));
    r.liquidity = Some(Liquidity::Taker);
    r
}
fn cancel(ms: i64, sym: &str, id: &str, qty: Option<&str>) -> Record {
    let mut r = Record::new(t(ms), Kind::OrderCancel, sym);
    r.order_id = Some(id.into());
    r.qty = qty.map(d);
    r
}
fn trade(ms: i64, sym: &str, qty: &str, px: &str) -> Record {
    let mut r = Record::new(t(ms), Kind::Trade, sym);
    r.qty = Some(d(qty));
    r.price = Some(d(px));
    r
}
fn od(s: &str) -> Option<Decimal> {
    Some(d(s))
}

/// XYZ quoted 10.00 x 10.02 (M = 10.01, Q = 0.02) from t=0; at 30 s the quote moves to
/// 10.03 x 10.05 (M = 10.04); at 10 min to 10.06 x 10.08 (M = 10.07).
fn base_stream() -> Vec<Record> {
    let mut v = vec![quote(0, "XYZ", "10.00", "10.02")];
    // o1: buy market 100, filled at the ask 10.02 after 250 ms.
    v.push(order(1_000, "XYZ", "o1", Side::Buy, "100", None));
    v.push(fill(1_250, "XYZ", "o1", Side::Buy, "100", "10.02"));
    // o2: sell market 200, filled at the bid 10.00 after 100 ms.
    v.push(order(2_000, "XYZ", "o2", Side::Sell, "200", None));
    v.push(fill(2_100, "XYZ", "o2", Side::Sell, "200", "10.00"));
    // o3: buy limit 500 @ 10.01 (inside the quote); 200 fill at 10.01 after 1 s; 300 cancelled.
    v.push(order(3_000, "XYZ", "o3", Side::Buy, "500", Some("10.01")));
    let mut f3 = fill(4_000, "XYZ", "o3", Side::Buy, "200", "10.01");
    f3.liquidity = Some(Liquidity::Maker);
    v.push(f3);
    // o4: sell limit 300 @ 10.00 (marketable: L <= bid), filled at 10.005 (improved).
    v.push(order(5_000, "XYZ", "o4", Side::Sell, "300", Some("10.00")));
    v.push(fill(5_010, "XYZ", "o4", Side::Sell, "300", "10.005"));
    v.push(cancel(10_000, "XYZ", "o3", Some("300")));
    v.push(quote(30_000, "XYZ", "10.03", "10.05"));
    v.push(quote(600_000, "XYZ", "10.06", "10.08"));
    v
}

fn run(records: &[Record], p: &Params) -> Report {
    compute(records, p).unwrap()
}

#[test]
fn market_limit_partial_and_improved_orders() {
    let rep = run(&base_stream(), &Params::default());
    let o1 = &rep.orders["o1"];
    let o2 = &rep.orders["o2"];
    let o3 = &rep.orders["o3"];
    let o4 = &rep.orders["o4"];

    struct Case<'a> {
        name: &'a str,
        got: Option<Decimal>,
        want: Option<Decimal>,
    }
    let cases = [
        // Receipt quote of every order: 10.00 x 10.02, M = 10.01, Q = 0.02.
        Case {
            name: "o1 receipt_mid",
            got: o1.receipt_mid,
            want: od("10.01"),
        },
        Case {
            name: "o1 receipt_quoted_spread",
            got: o1.receipt_quoted_spread,
            want: od("0.02"),
        },
        // o1 buy at 10.02: ES = 2*(+1)*(10.02-10.01) = 0.02; E/Q = 0.02/0.02 = 1;
        // %ES = 0.02/10.01*1e4 = 19.98001998.. -> 19.98 bps.
        Case {
            name: "o1 ES",
            got: o1.stats.avg_effective_spread,
            want: od("0.02"),
        },
        Case {
            name: "o1 E/Q",
            got: o1.stats.eq_ratio,
            want: od("1"),
        },
        Case {
            name: "o1 ES bps",
            got: o1.stats.avg_effective_spread_bps,
            want: od("19.98"),
        },
        // Arrival: +1*(10.02-10.01)/10.01*1e4 = 9.99000999 -> 9.99 bps (cost).
        Case {
            name: "o1 arrival",
            got: o1.stats.arrival_cost_bps,
            want: od("9.99"),
        },
        Case {
            name: "o1 fill_rate",
            got: o1.stats.fill_rate,
            want: od("1"),
        },
        Case {
            name: "o1 cancel_rate",
            got: o1.stats.cancel_rate,
            want: od("0"),
        },
        Case {
            name: "o1 avg_exec_price",
            got: o1.avg_exec_price,
            want: od("10.02"),
        },
        // o2 sell at 10.00: ES = 2*(-1)*(10.00-10.01) = 0.02; arrival = -1*(10.00-10.01)/10.01
        // *1e4 = 9.99 bps: a cost for the sell, same sign as the buy.
        Case {
            name: "o2 ES",
            got: o2.stats.avg_effective_spread,
            want: od("0.02"),
        },
        Case {
            name: "o2 arrival",
            got: o2.stats.arrival_cost_bps,
            want: od("9.99"),
        },
        // o3: 200 of 500 executed, 300 cancelled: fill rate 0.4, cancel rate 0.6.
        // Fill at the mid: ES = 0; improvement vs the ask 10.02 - 10.01 = 0.01 per share.
        Case {
            name: "o3 fill_rate",
            got: o3.stats.fill_rate,
            want: od("0.4"),
        },
        Case {
            name: "o3 cancel_rate",
            got: o3.stats.cancel_rate,
            want: od("0.6"),
        },
        Case {
            name: "o3 ES",
            got: o3.stats.avg_effective_spread,
            want: od("0"),
        },
        Case {
            name: "o3 avg PI",
            got: o3.stats.avg_price_improvement,
            want: od("0.01"),
        },
        // o4 sell at 10.005: ES = -2*(10.005-10.01) = 0.01, E/Q = 0.5; PI = 10.005-10.00 =
        // 0.005/share; %PI = 300*0.005/(300*10.01)*1e4 = 4.99500499.. -> 4.995 bps; arrival
        // = -1*(10.005-10.01)/10.01*1e4 = +4.995 bps: improved against the bid, but still
        // sold below the receipt mid, so a cost.
        Case {
            name: "o4 ES",
            got: o4.stats.avg_effective_spread,
            want: od("0.01"),
        },
        Case {
            name: "o4 E/Q",
            got: o4.stats.eq_ratio,
            want: od("0.5"),
        },
        Case {
            name: "o4 avg PI",
            got: o4.stats.avg_price_improvement,
            want: od("0.005"),
        },
        Case {
            name: "o4 %PI bps",
            got: o4.stats.price_improvement_bps,
            want: od("4.995"),
        },
        Case {
            name: "o4 arrival",
            got: o4.stats.arrival_cost_bps,
            want: od("4.995"),
        },
    ];
    for c in &cases {
        assert_eq!(c.got, c.want, "case {}", c.name);
    }

    assert_eq!(o1.order_class, OrderClass::Market);
    assert_eq!(o3.order_class, OrderClass::InsideTheQuote);
    assert_eq!(o4.order_class, OrderClass::MarketableLimit);
    assert_eq!(o3.size_bucket, "500-1999");
    assert_eq!(o1.size_bucket, "100-499");
    assert_eq!(o3.status, OrderStatus::PartiallyFilledCancelled);
    assert_eq!(o3.liquidity, "maker");
    // A4 categories: o1 at the ask, o2 at the bid, o3 and o4 improved.
    assert_eq!(o1.stats.at_quote_shares, d("100"));
    assert_eq!(o2.stats.at_quote_shares, d("200"));
    assert_eq!(o3.stats.price_improved_shares, d("200"));
    assert_eq!(o4.stats.price_improved_shares, d("300"));
    // A5: o1 250 ms to first and complete fill; o3 1000 ms to first, never complete.
    assert_eq!(o1.time_to_first_fill_ms, Some(250));
    assert_eq!(o1.time_to_complete_fill_ms, Some(250));
    assert_eq!(o3.time_to_first_fill_ms, Some(1000));
    assert_eq!(o3.time_to_complete_fill_ms, None);
    assert_eq!(o4.stats.avg_time_to_execution_ms, od("10"));
}

#[test]
fn arrival_sign_saving_for_buy_and_sell() {
    // A saving is negative for both sides. Quote 10.00 x 10.02 (M 10.01).
    // Buy at 10.00: +1*(10.00-10.01)/10.01*1e4 = -9.99 bps; ES = 2*(10.00-10.01) = -0.02.
    // Sell at 10.02: -1*(10.02-10.01)/10.01*1e4 = -9.99 bps; ES = -2*(10.02-10.01) = -0.02.
    let v = vec![
        quote(0, "SV", "10.00", "10.02"),
        order(10, "SV", "b", Side::Buy, "100", Some("10.00")),
        fill(20, "SV", "b", Side::Buy, "100", "10.00"),
        order(30, "SV", "s", Side::Sell, "100", Some("10.02")),
        fill(40, "SV", "s", Side::Sell, "100", "10.02"),
    ];
    let rep = run(&v, &Params::default());
    for id in ["b", "s"] {
        assert_eq!(rep.orders[id].stats.arrival_cost_bps, od("-9.99"), "{id}");
        assert_eq!(
            rep.orders[id].stats.avg_effective_spread,
            od("-0.02"),
            "{id}"
        );
        // Improved by 0.02 against the far touch.
        assert_eq!(
            rep.orders[id].stats.avg_price_improvement,
            od("0.02"),
            "{id}"
        );
    }
}

#[test]
fn aggregates_are_share_weighted() {
    let rep = run(&base_stream(), &Params::default());
    let all = &rep.aggregates.overall;
    // Executed: 100 + 200 + 200 + 300 = 800; ordered 100+200+500+300 = 1100.
    assert_eq!(all.shares_executed, d("800"));
    assert_eq!(all.shares_ordered, d("1100"));
    // fill rate 800/1100 = 0.727272.. -> 0.727273; cancel 300/1100 = 0.272727.
    assert_eq!(all.fill_rate, od("0.727273"));
    assert_eq!(all.cancel_rate, od("0.272727"));
    // AvgES = (100*0.02 + 200*0.02 + 200*0 + 300*0.01)/800 = 9/800 = 0.01125.
    assert_eq!(all.avg_effective_spread, od("0.01125"));
    // E/Q = 9 / (800*0.02) = 0.5625.
    assert_eq!(all.eq_ratio, od("0.5625"));
    // Order-count fill rate 4/4.
    assert_eq!(all.orders_filled_rate, od("1"));
    // by order class: market = o1 + o2: AvgES = (2+4)/300 = 0.02.
    assert_eq!(
        rep.aggregates.by_order_class["market"].avg_effective_spread,
        od("0.02")
    );
    // by liquidity: o3 is maker, the rest taker.
    assert_eq!(
        rep.aggregates.by_liquidity["maker"].shares_executed,
        d("200")
    );
    assert_eq!(
        rep.aggregates.by_liquidity["taker"].shares_executed,
        d("600")
    );
    assert_eq!(rep.aggregates.by_time_window["2024-01-02"].orders, 4);
    // %at-quote-or-better = (PI 500 + at 300) / 800 = 1.
    assert_eq!(all.pct_at_quote_or_better, od("1"));
    // Share-weighted time to execution: (100*250 + 200*100 + 200*1000 + 300*10)/800 = 310.
    assert_eq!(all.avg_time_to_execution_ms, od("310"));
}

#[test]
fn realized_spread_uses_the_mid_at_each_horizon() {
    let rep = run(&base_stream(), &Params::default());
    let o1 = &rep.orders["o1"];
    // o1 buy at 10.02, t_e = 1.25 s.
    // 15 s: t_e+h = 16.25 s, mid still 10.01 -> RS = 2*(10.02-10.01) = 0.02, impact 0.
    // 1 min: 61.25 s, mid 10.04 (quote at 30 s) -> RS = 2*(10.02-10.04) = -0.04;
    //        impact = ES - RS = 0.02 - (-0.04) = 0.06 = 2*(10.04-10.01).
    // 5 min: 301.25 s, mid still 10.04 (the 10.07 quote is at 600 s) -> RS = -0.04.
    let h: Vec<_> = o1
        .stats
        .realized_spreads
        .iter()
        .map(|h| (h.horizon_ms, h.avg_realized_spread, h.price_impact))
        .collect();
    assert_eq!(
        h,
        vec![
            (15_000, od("0.02"), od("0")),
            (60_000, od("-0.04"), od("0.06")),
            (300_000, od("-0.04"), od("0.06")),
        ]
    );
    assert_eq!(o1.stats.avg_realized_spread, od("-0.04"));
    // RS bps at 5 min over the receipt mid: -0.04/10.01*1e4 = -39.96003996 -> -39.96.
    assert_eq!(o1.stats.avg_realized_spread_bps, od("-39.96"));
    // o2 sell at 10.00: 1 min -> RS = -2*(10.00-10.04) = 0.08.
    assert_eq!(
        rep.orders["o2"].stats.realized_spreads[1].avg_realized_spread,
        od("0.08")
    );
}

#[test]
fn session_close_proviso_and_end_of_data_rule() {
    // Close at 14:30:45 UTC: o1's 1 min and 5 min horizons (t_e = 1.25 s) are capped at
    // 45 s, whose prevailing mid is 10.04 -> RS = -0.04 for both; 15 s is uncapped (0.02).
    let p = Params {
        session_close: Some("14:30:45".into()),
        ..Params::default()
    };
    let rep = run(&base_stream(), &p);
    let rs: Vec<_> = rep.orders["o1"]
        .stats
        .realized_spreads
        .iter()
        .map(|h| h.avg_realized_spread)
        .collect();
    assert_eq!(rs, vec![od("0.02"), od("-0.04"), od("-0.04")]);

    // Data ending at 40 s: the 1 min and 5 min horizons are beyond the data.
    let short: Vec<Record> = base_stream()
        .into_iter()
        .filter(|r| r.ts <= t(40_000))
        .collect();
    // last_quote (default): the prevailing (last) quote, mid 10.04 -> RS = -0.04.
    let rep = run(&short, &Params::default());
    assert_eq!(rep.orders["o1"].stats.avg_realized_spread, od("-0.04"));
    // exclude: null, with the reason.
    let p = Params {
        rs_end_of_data: RsEndOfData::Exclude,
        ..Params::default()
    };
    let rep = run(&short, &p);
    assert_eq!(rep.orders["o1"].stats.avg_realized_spread, None);
    assert!(
        rep.orders["o1"]
            .notes
            .contains(&"realized_spread_beyond_data")
    );
    assert_eq!(
        rep.orders["o1"].stats.realized_spreads[0].avg_realized_spread,
        od("0.02")
    );
}

#[test]
fn parent_order_shortfall_perold_and_wagner() {
    // S = 10,000 buy, Pd = 40.00, receipt quote 40.01 x 40.03 (P0 = 40.02);
    // fills 4,000 @ 40.05 and 4,000 @ 40.10 (fee 24 each), 2,000 cancelled when the quote is
    // 40.44 x 40.46 (Pn = 40.45).
    // execution = 4000*0.05 + 4000*0.10 = 600; opportunity = 2000*(40.45-40.00) = 900;
    // fees 48; IS = 1,548 USD; bps = 1548/(10000*40)*1e4 = 38.7 (the spec's check figures).
    // Wagner: delay = 10000*(40.02-40.00) = 200; trading = 320600 - 8000*40.02 = 440;
    // opportunity vs arrival = 2000*(40.45-40.02) = 860; 200+440+860+48 = 1,548.
    let mut v = vec![quote(0, "PAR", "40.01", "40.03")];
    v.push(trade(500, "PAR", "1000", "39.00")); // before receipt: not in the VWAP
    let mut o = order(1_000, "PAR", "p1", Side::Buy, "10000", None);
    o.decision_price = od("40.00");
    v.push(o);
    let mut f1 = fill(2_000, "PAR", "p1", Side::Buy, "4000", "40.05");
    f1.fee = od("24");
    v.push(f1);
    v.push(trade(2_000, "PAR", "4000", "40.05"));
    let mut f2 = fill(3_000, "PAR", "p1", Side::Buy, "4000", "40.10");
    f2.fee = od("24");
    v.push(f2);
    v.push(trade(3_000, "PAR", "4000", "40.10"));
    v.push(quote(4_000, "PAR", "40.44", "40.46"));
    v.push(cancel(5_000, "PAR", "p1", Some("2000")));
    v.push(trade(5_000, "PAR", "2000", "40.20")); // same ts as the end: in the interval
    v.push(trade(6_000, "PAR", "9000", "41.00")); // after the end: out
    v.push(quote(7_000, "PAR", "41.00", "41.02"));
    let rep = run(&v, &Params::default());
    let p1 = &rep.orders["p1"];
    let s = &p1.stats;
    assert_eq!(s.is_total_usd, od("1548"));
    assert_eq!(s.is_total_bps, od("38.7"));
    assert_eq!(s.is_execution_cost_usd, od("600"));
    assert_eq!(s.is_opportunity_cost_usd, od("900"));
    assert_eq!(s.is_fees_usd, od("48"));
    assert_eq!(s.is_delay_usd, od("200"));
    assert_eq!(s.is_trading_usd, od("440"));
    assert_eq!(s.is_opportunity_vs_arrival_usd, od("860"));
    assert_eq!(p1.is_end_price, od("40.45"));
    // Pbar = 320600/8000 = 40.075; arrival = (40.075-40.02)/40.02*1e4 = 13.74312844 -> 13.7431.
    assert_eq!(p1.avg_exec_price, od("40.075"));
    assert_eq!(s.arrival_cost_bps, od("13.7431"));
    // VWAP over [1 s, 5 s]: (4000*40.05 + 4000*40.10 + 2000*40.20)/10000 = 40.10;
    // slippage = (40.075-40.10)/40.10*1e4 = -6.23441396 -> -6.2344 (a saving);
    // own prints out: VWAP = 40.20, (40.075-40.20)/40.20*1e4 = -31.09452736 -> -31.0945;
    // participation 8000/10000 = 0.8.
    assert_eq!(p1.vwap, od("40.1"));
    assert_eq!(p1.vwap_ex_own, od("40.2"));
    assert_eq!(s.vwap_slippage_bps, od("-6.2344"));
    assert_eq!(s.vwap_slippage_ex_own_bps, od("-31.0945"));
    assert_eq!(s.participation, od("0.8"));
    assert_eq!(p1.status, OrderStatus::PartiallyFilledCancelled);
    assert_eq!(s.fill_rate, od("0.8"));
}

#[test]
fn sell_shortfall_signs() {
    // S = 1000 sell, Pd = 20.00, P0 = 19.99 (19.98 x 20.00); 600 @ 19.95, 400 cancelled at
    // Pn = 19.90 (19.89 x 19.91).
    // execution = -1*(600*19.95 - 600*20) = 30; opportunity = -1*400*(19.90-20.00) = 40;
    // IS = 70; bps = 70/(1000*20)*1e4 = 35. Wagner: delay = -1*1000*(19.99-20) = 10;
    // trading = -1*(11970 - 600*19.99) = 24; opp vs arrival = -1*400*(19.90-19.99) = 36.
    let mut o = order(1_000, "SL", "s1", Side::Sell, "1000", Some("19.90"));
    o.decision_price = od("20.00");
    let v = vec![
        quote(0, "SL", "19.98", "20.00"),
        o,
        fill(2_000, "SL", "s1", Side::Sell, "600", "19.95"),
        quote(3_000, "SL", "19.89", "19.91"),
        cancel(4_000, "SL", "s1", None), // no qty: the remaining 400
    ];
    let rep = run(&v, &Params::default());
    let s = &rep.orders["s1"].stats;
    assert_eq!(s.is_total_usd, od("70"));
    assert_eq!(s.is_total_bps, od("35"));
    assert_eq!(
        (
            s.is_delay_usd,
            s.is_trading_usd,
            s.is_opportunity_vs_arrival_usd
        ),
        (od("10"), od("24"), od("36"))
    );
    assert_eq!(s.shares_cancelled, d("400"));
    // 19.95 < bid 19.98: outside the quote by 0.03.
    assert_eq!(s.outside_quote_shares, d("600"));
    assert_eq!(s.avg_outside_quote_amount, od("0.03"));
    assert_eq!(rep.orders["s1"].order_class, OrderClass::MarketableLimit);
    // Without a decision price the shortfall is null with a reason (default fallback none)...
    let mut v2 = v.clone();
    v2[1].decision_price = None;
    let rep = run(&v2, &Params::default());
    assert_eq!(rep.orders["s1"].stats.is_total_usd, None);
    assert!(rep.orders["s1"].notes.contains(&"no_decision_price"));
    // ...and with `decision_price_fallback: arrival_mid` Pd = P0 = 19.99: delay 0;
    // IS = trading 24 + opportunity -1*400*(19.90-19.99) = 36 -> 60.
    let p = Params {
        decision_price_fallback: DecisionPriceFallback::ArrivalMid,
        ..Params::default()
    };
    let rep = run(&v2, &p);
    assert_eq!(rep.orders["s1"].stats.is_total_usd, od("60"));
    assert_eq!(rep.orders["s1"].stats.is_delay_usd, od("0"));
}

#[test]
fn classification_table() {
    // Quote 10.00 x 10.02, band 0.10. Buys: >= 10.02 marketable; (10.00, 10.02) inside;
    // = 10.00 at; [9.90, 10.00) near; below away. Sells mirrored on the ask.
    let cases = [
        (Side::Buy, Some("10.02"), OrderClass::MarketableLimit),
        (Side::Buy, Some("10.50"), OrderClass::MarketableLimit),
        (Side::Buy, Some("10.01"), OrderClass::InsideTheQuote),
        (Side::Buy, Some("10.00"), OrderClass::AtTheQuote),
        (Side::Buy, Some("9.90"), OrderClass::NearTheQuote),
        (Side::Buy, Some("9.89"), OrderClass::AwayFromQuote),
        (Side::Sell, Some("10.00"), OrderClass::MarketableLimit),
        (Side::Sell, Some("10.01"), OrderClass::InsideTheQuote),
        (Side::Sell, Some("10.02"), OrderClass::AtTheQuote),
        (Side::Sell, Some("10.12"), OrderClass::NearTheQuote),
        (Side::Sell, Some("10.13"), OrderClass::AwayFromQuote),
        (Side::Buy, None, OrderClass::Market),
    ];
    let mut v = vec![quote(0, "CL", "10.00", "10.02")];
    for (i, (side, limit, _)) in cases.iter().enumerate() {
        v.push(order(
            1 + i as i64,
            "CL",
            &format!("c{i}"),
            *side,
            "100",
            *limit,
        ));
    }
    let rep = run(&v, &Params::default());
    for (i, (side, limit, want)) in cases.iter().enumerate() {
        assert_eq!(
            rep.orders[&format!("c{i}")].order_class,
            *want,
            "{side:?} {limit:?}"
        );
    }
    // Never filled: open, fill rate 0, no time to fill.
    let c5 = &rep.orders["c5"];
    assert_eq!(c5.status, OrderStatus::Open);
    assert_eq!(c5.stats.fill_rate, od("0"));
    assert_eq!(c5.time_to_first_fill_ms, None);
    assert_eq!(c5.stats.avg_effective_spread, None);
}

#[test]
fn no_quote_crossed_and_locked() {
    let v = vec![
        order(0, "NQ", "n1", Side::Buy, "100", None),
        fill(10, "NQ", "n1", Side::Buy, "100", "50"),
        order(20, "NQ", "n2", Side::Buy, "100", Some("49")),
        quote(30, "CR", "10.05", "10.00"),
        order(40, "CR", "x1", Side::Buy, "100", Some("10.01")),
        quote(50, "LK", "10.00", "10.00"),
        order(60, "LK", "l1", Side::Buy, "100", None),
        fill(70, "LK", "l1", Side::Buy, "100", "10.00"),
    ];
    let rep = run(&v, &Params::default());
    let n1 = &rep.orders["n1"];
    assert_eq!(n1.receipt_mid, None);
    // Every null has its reason: no quote (ES, PI, arrival), no decision price (IS), no
    // tape (VWAP).
    assert_eq!(
        n1.notes,
        vec!["no_quote_at_receipt", "no_decision_price", "no_tape_prints"]
    );
    assert_eq!(n1.stats.avg_effective_spread, None);
    assert_eq!(n1.stats.arrival_cost_bps, None);
    assert_eq!(n1.stats.fill_rate, od("1"));
    assert_eq!(n1.order_class, OrderClass::Market);
    assert_eq!(rep.orders["n2"].order_class, OrderClass::Unclassified);
    // Crossed quote ignored by default...
    let x1 = &rep.orders["x1"];
    assert_eq!(x1.order_class, OrderClass::Unclassified);
    assert!(x1.notes.contains(&"crossed_quote_at_receipt"));
    // ...or used: 10.01 >= ask 10.00 -> marketable.
    let p = Params {
        crossed_quote: CrossedQuote::Use,
        ..Params::default()
    };
    assert_eq!(
        run(&v, &p).orders["x1"].order_class,
        OrderClass::MarketableLimit
    );
    // Locked 10.00 x 10.00: Q = 0, ES = 0, E/Q undefined (null), at the quote.
    let l1 = &rep.orders["l1"];
    assert_eq!(l1.stats.avg_effective_spread, od("0"));
    assert_eq!(l1.stats.eq_ratio, None);
    assert_eq!(l1.stats.at_quote_shares, d("100"));
    assert!(l1.notes.contains(&"locked_quote_at_receipt"));
}

#[test]
fn fill_after_cancel_of_the_remainder() {
    // Buy 100; cancel of 100 at 1 s; a fill of 40 that raced the cancel arrives at 1.2 s.
    // The cancel really removed 60: executed 40, cancelled 60, fill + cancel rates sum to 1.
    let v = vec![
        quote(0, "FC", "10.00", "10.02"),
        order(100, "FC", "f1", Side::Buy, "100", Some("10.02")),
        cancel(1_000, "FC", "f1", Some("100")),
        fill(1_200, "FC", "f1", Side::Buy, "40", "10.02"),
    ];
    let rep = run(&v, &Params::default());
    let f1 = &rep.orders["f1"];
    assert_eq!(f1.stats.shares_executed, d("40"));
    assert_eq!(f1.stats.shares_cancelled, d("60"));
    assert_eq!(f1.stats.fill_rate, od("0.4"));
    assert_eq!(f1.stats.cancel_rate, od("0.6"));
    assert_eq!(f1.status, OrderStatus::PartiallyFilledCancelled);
    assert_eq!(f1.end_ts, Some(t(1_200)));
    assert!(f1.notes.contains(&"fill_after_cancel"));
}

#[test]
fn quote_timing_and_es_benchmark_readings() {
    // 6.1: a quote stamped exactly at receipt. Earlier quote 10.00 x 10.04 (M 10.02,
    // Q 0.04); at t_r 10.00 x 10.02 (M 10.01, Q 0.02); the market buy fills at 10.02.
    // inclusive: at the quote, ES = 2*(10.02-10.01) = 0.02, E/Q = 1.
    // strict: improved by 0.02, ES = 2*(10.02-10.02) = 0, E/Q = 0.
    let v = vec![
        quote(0, "QT", "10.00", "10.04"),
        quote(1_000, "QT", "10.00", "10.02"),
        order(1_000, "QT", "q1", Side::Buy, "100", None),
        fill(1_100, "QT", "q1", Side::Buy, "100", "10.02"),
    ];
    let inc = run(&v, &Params::default());
    assert_eq!(inc.orders["q1"].stats.eq_ratio, od("1"));
    assert_eq!(inc.orders["q1"].stats.at_quote_shares, d("100"));
    let p = Params {
        quote_at_receipt: QuoteTiming::Strict,
        ..Params::default()
    };
    let st = run(&v, &p);
    assert_eq!(st.orders["q1"].stats.eq_ratio, od("0"));
    assert_eq!(st.orders["q1"].stats.avg_price_improvement, od("0.02"));

    // 6.3: quote moves between receipt (M 10.01) and fill (10.03 x 10.05, M 10.04); buy
    // fills at 10.05. Receipt mid: ES = 2*(10.05-10.01) = 0.08; execution mid: 0.02.
    let v = vec![
        quote(0, "EB", "10.00", "10.02"),
        order(100, "EB", "e1", Side::Buy, "100", None),
        quote(200, "EB", "10.03", "10.05"),
        fill(300, "EB", "e1", Side::Buy, "100", "10.05"),
    ];
    assert_eq!(
        run(&v, &Params::default()).orders["e1"]
            .stats
            .avg_effective_spread,
        od("0.08")
    );
    let p = Params {
        es_benchmark: EsBenchmark::ExecutionMid,
        ..Params::default()
    };
    let rep = run(&v, &p);
    assert_eq!(rep.orders["e1"].stats.avg_effective_spread, od("0.02"));
    // A4 stays against the receipt quote: 10.05 > ask 10.02, outside by 0.03.
    assert_eq!(rep.orders["e1"].stats.avg_outside_quote_amount, od("0.03"));
}

#[test]
fn ioc_residual_cancel_reading() {
    let mut o = order(100, "IO", "i1", Side::Buy, "100", Some("10.02"));
    o.tif = Some("ioc".into());
    let v = vec![
        quote(0, "IO", "10.00", "10.02"),
        o,
        fill(110, "IO", "i1", Side::Buy, "30", "10.02"),
        cancel(120, "IO", "i1", Some("70")),
    ];
    assert_eq!(
        run(&v, &Params::default()).orders["i1"].stats.cancel_rate,
        od("0.7")
    );
    let p = Params {
        ioc_residual_as_cancel: false,
        ..Params::default()
    };
    let rep = run(&v, &p);
    assert_eq!(rep.orders["i1"].stats.cancel_rate, od("0"));
    assert_eq!(
        rep.orders["i1"].status,
        OrderStatus::PartiallyFilledCancelled
    );
}

#[test]
fn bad_records_are_counted_not_fatal() {
    let mut no_id = fill(10, "B", "zz", Side::Buy, "1", "1");
    no_id.order_id = None;
    let v = vec![
        fill(0, "B", "missing", Side::Buy, "1", "1"),
        no_id,
        Record::new(t(20), Kind::Quote, "B"),
        quote(5, "B", "1", "2"), // earlier than the previous record
    ];
    let rep = run(&v, &Params::default());
    assert_eq!(rep.data_issues["fill_for_unknown_order"], 2);
    assert_eq!(rep.data_issues["quote_without_bid_or_ask"], 1);
    assert_eq!(rep.data_issues["out_of_order"], 1);
    assert_eq!(rep.records, 4);
}

#[test]
fn rule605_report_and_renderings() {
    let rep = run(&base_stream(), &Params::default());
    let r = rule605(&rep, "2024-01").unwrap();
    assert_eq!(r.covered_orders, 4);
    // Summary rows in class order: market (o1+o2), marketable_limit (o4), inside (o3).
    let classes: Vec<_> = r.summary.iter().map(|x| x.order_class).collect();
    assert_eq!(
        classes,
        vec![
            OrderClass::Market,
            OrderClass::MarketableLimit,
            OrderClass::InsideTheQuote
        ]
    );
    assert_eq!(r.summary[0].stats.avg_effective_spread, od("0.02"));
    assert_eq!(r.summary[0].stats.shares_executed, d("300"));
    assert!(rule605(&rep, "2024-02").unwrap().rows.is_empty());
    assert!(rule605(&rep, "24-01").is_err());
    let csv = rule605_to_csv(&r);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("month,symbol,order_class,size_bucket,orders,shares_ordered"));
    assert!(header.contains("avg_realized_spread_5m"));
    let cols = header.split(',').count();
    assert!(csv.lines().all(|l| l.split(',').count() == cols), "{csv}");
    assert!(
        csv.contains("2024-01,ALL,market,ALL,2,300,300,0,1,0,150,"),
        "{csv}"
    );
    let html = rule605_to_html(&r);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && !html.contains("<script"));
    let per_order = report_to_csv(&rep);
    assert_eq!(per_order.lines().count(), 5);
    assert!(
        per_order
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("o1,A1,,XYZ,buy,market,day,,,2024-01-02T14:30:01")
    );
    // JSON has the spec names.
    let json = serde_json::to_value(&rep).unwrap();
    let o1 = &json["orders"]["o1"];
    for k in [
        "receipt_mid",
        "fill_rate",
        "cancel_rate",
        "avg_effective_spread",
        "eq_ratio",
        "price_improved_shares",
        "at_quote_shares",
        "outside_quote_shares",
        "arrival_cost_bps",
        "time_to_first_fill_ms",
        "time_to_complete_fill_ms",
        "avg_exec_price",
        "is_total_usd",
        "is_total_bps",
        "vwap_slippage_bps",
    ] {
        assert!(o1.get(k).is_some(), "missing {k}");
    }
    assert_eq!(o1["receipt_mid"], "10.01");
}
