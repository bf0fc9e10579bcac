//! Hand-worked windows for every feature. The arithmetic is in the comments; times are relative
//! to T0 (2023-11-14T22:13:20Z).
//!
//! Windows are panes of `len / 600` (1 min: 100 ms, 5 min: 500 ms, 1 h: 6 s): as of `t` a
//! window counts the events from the start of the pane holding `t - len` up to `t`. T0 is a
//! whole number of 100 ms and 500 ms, so the trade windows as of T0 are exact; it is 2 s past
//! a multiple of 6 s, so the 1-hour window as of T0 starts at T0 - 3602 s.

mod common;

use common::*;
use features::{
    FeatureEngine, MARKET_FEATURES, ORDER_FEATURES, POSITION_FEATURES, POSITION_SYMBOL_FEATURES,
};
use model::Side;

fn feed(events: &[model::Event]) -> FeatureEngine {
    let mut e = FeatureEngine::default();
    for ev in events {
        e.on_event(ev);
    }
    e
}

/// Trades: A 90 x 1 @ T0-400s, B 100 x 2 @ T0-300s (exactly the 5-min boundary),
/// C 101 x 1 @ T0-60s-1ns (just outside 1 min), D 102 x 3 @ T0-60s (exactly the 1-min boundary),
/// E 104 x 1 @ T0-10s.
fn tape() -> Vec<model::Event> {
    vec![
        trade("BTCUSDT", T0 - 400 * S, "90", "1"),
        trade("BTCUSDT", T0 - 300 * S, "100", "2"),
        trade("BTCUSDT", T0 - 60 * S - 1, "101", "1"),
        trade("BTCUSDT", T0 - 60 * S, "102", "3"),
        trade("BTCUSDT", T0 - 10 * S, "104", "1"),
    ]
}

#[test]
fn trade_windows_are_closed_at_both_ends_on_pane_boundaries() {
    let e = feed(&tape());
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_eq!(r.entity, "BTCUSDT.sim");
    assert_eq!(r.event_ts, ts(T0));
    assert_f(&r, "last_price", 104.0);
    // 1 min = [T0-60s, T0] holds D (boundary, included) and E; C at T0-60s-1ns is out.
    // vwap_1m = (102*3 + 104*1) / (3 + 1) = 410 / 4 = 102.5
    assert_f(&r, "vwap_1m", 102.5);
    assert_f(&r, "volume_1m", 4.0);
    // 5 min = [T0-300s, T0] holds B (boundary), C, D, E; A is out.
    // vwap_5m = (200 + 101 + 306 + 104) / (2 + 1 + 3 + 1) = 711 / 7 = 101.571428571...
    assert_f(&r, "vwap_5m", 711.0 / 7.0);
    assert_f(&r, "volume_5m", 7.0);
    assert_i(&r, "trade_count_5m", 4);
    // The reference of a return is the newest trade *before* its window's start (the price the
    // window's trades moved away from; with exact windows it was the last at or before
    // T0 - w, which is itself in the window when stamped exactly T0 - w).
    // return_1m: the 1-min window starts at T0-60s; newest before = C (101): 104/101 - 1.
    assert_f(&r, "return_1m", 104.0 / 101.0 - 1.0);
    // return_5m: the 5-min window starts at T0-300s; newest before = A (90): 104/90 - 1.
    assert_f(&r, "return_5m", 104.0 / 90.0 - 1.0);
    // Log returns of trades in the 5-min window (each against the previous trade, A for B):
    // ln(100/90) = 0.1053605157, ln(101/100) = 0.0099503309, ln(102/101) = 0.0098522964,
    // ln(104/102) = 0.0194180859; mean 0.0361453072; sample stdev (n-1 = 3) = 0.0463610620.
    let rs = [
        (100f64 / 90.0).ln(),
        (101f64 / 100.0).ln(),
        (102f64 / 101.0).ln(),
        (104f64 / 102.0).ln(),
    ];
    let m = rs.iter().sum::<f64>() / 4.0;
    let sd = (rs.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / 3.0).sqrt();
    assert!((sd - 0.046361062).abs() < 1e-9);
    let got = r.get("realized_vol_5m").and_then(|v| v.as_f64()).unwrap();
    // Returns are summed in 1e-12 units: agreement to ~1e-10 relative.
    assert!((got - sd).abs() < 1e-10 * sd, "{got} vs {sd}");
    // No quote or book yet.
    assert_null(&r, "mid");
    assert_null(&r, "spread_bps");
    assert_null(&r, "book_imbalance");

    // One nanosecond later the exact windows would lose both boundary trades; the panes holding
    // T0-60s+1ns (100 ms from T0-60s) and T0-300s+1ns (500 ms from T0-300s) still count whole:
    // nothing changes until the next pane boundary.
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 + 1)).unwrap();
    assert_f(&r, "vwap_1m", 102.5);
    assert_f(&r, "volume_1m", 4.0);
    assert_f(&r, "vwap_5m", 711.0 / 7.0);
    assert_i(&r, "trade_count_5m", 4);
    assert_f(&r, "return_1m", 104.0 / 101.0 - 1.0);
    assert_f(&r, "return_5m", 104.0 / 90.0 - 1.0);
    // The last nanosecond of those panes: still the same.
    let r = e
        .row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 + S / 10 - 1))
        .unwrap();
    assert_f(&r, "volume_1m", 4.0);
    assert_i(&r, "trade_count_5m", 4);

    // At T0+100ms the 1-min window starts at T0-59.9s: D (at T0-60s) falls out and becomes the
    // newest trade before it. 1 min: only E. vwap 104, volume 1; return_1m 104/102 - 1.
    let r = e
        .row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 + S / 10))
        .unwrap();
    assert_f(&r, "vwap_1m", 104.0);
    assert_f(&r, "volume_1m", 1.0);
    assert_f(&r, "return_1m", 104.0 / 102.0 - 1.0);
    // The 5-min pane of T0-300s (500 ms) still counts: unchanged.
    assert_i(&r, "trade_count_5m", 4);
    assert_f(&r, "return_5m", 104.0 / 90.0 - 1.0);

    // At T0+500ms the 5-min window starts at T0-299.5s: B falls out.
    // 5 min: C, D, E: (101 + 306 + 104) / 5 = 511 / 5 = 102.2; reference B (100): 0.04.
    let r = e
        .row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 + S / 2))
        .unwrap();
    assert_f(&r, "vwap_5m", 102.2);
    assert_i(&r, "trade_count_5m", 3);
    assert_f(&r, "return_5m", 0.04);

    // Ten minutes later the windows are empty: volume 0, vwap null, returns 0 (no change: the
    // newest trade before both windows is E itself).
    let r = e
        .row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 + 600 * S))
        .unwrap();
    assert_f(&r, "volume_5m", 0.0);
    assert_i(&r, "trade_count_5m", 0);
    assert_null(&r, "vwap_1m");
    assert_null(&r, "realized_vol_5m");
    assert_f(&r, "return_5m", 0.0);
    assert_f(&r, "last_price", 104.0);
}

#[test]
fn the_bare_symbol_resolves_when_one_venue_lists_it_and_the_past_is_refused() {
    let e = feed(&tape());
    let r = e.row(MARKET_FEATURES, "BTCUSDT", ts(T0)).unwrap();
    assert_eq!(r.entity, "BTCUSDT");
    assert_f(&r, "last_price", 104.0);
    assert!(e.row(MARKET_FEATURES, "ETHUSDT", ts(T0)).is_none());
    assert!(e.row("nope", "BTCUSDT", ts(T0)).is_none());
    // The engine has folded a trade at T0-10s: a row as of T0-11s would need to forget it.
    assert!(
        e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0 - 11 * S))
            .is_none()
    );
    assert_eq!(e.watermark(), Some(ts(T0 - 10 * S)));
}

#[test]
fn spread_mid_and_top_five_book_imbalance() {
    let mut ev = tape();
    // Quote 103.9 / 104.1: mid 104, spread 0.2 / 104 * 1e4 = 19.2307692 bps.
    ev.push(quote("BTCUSDT", T0 - 5 * S, "103.9", "104.1"));
    let e = feed(&ev);
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_f(&r, "mid", 104.0);
    assert_f(&r, "spread_bps", 0.2 / 104.0 * 1e4);
    assert_null(&r, "book_imbalance");

    // Book: bids 1+2+3+4+5 in the top 5 (the 6th level, 100, is ignored), asks 2 x 5 = 10.
    // imbalance = (15 - 10) / (15 + 10) = 0.2
    ev.push(snapshot(
        "BTCUSDT",
        T0 - 4 * S,
        &[
            ("103.9", "1"),
            ("103.8", "2"),
            ("103.7", "3"),
            ("103.6", "4"),
            ("103.5", "5"),
            ("103.4", "100"),
        ],
        &[
            ("104.1", "2"),
            ("104.2", "2"),
            ("104.3", "2"),
            ("104.4", "2"),
            ("104.5", "2"),
        ],
    ));
    let e = feed(&ev);
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_f(&r, "book_imbalance", 0.2);

    // Delta deletes the best bid: top 5 bids = 2+3+4+5+100 = 114, asks 10:
    // (114 - 10) / 124 = 0.8387096774. The book's top (103.8 / 104.1) is now the newest:
    // mid 103.95, spread 0.3 / 103.95 * 1e4 = 28.8600288600 bps.
    ev.push(delta("BTCUSDT", T0 - 3 * S, &[("103.9", "0")], &[]));
    let e = feed(&ev);
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_f(&r, "book_imbalance", 104.0 / 124.0);
    assert_f(&r, "mid", 103.95);
    assert_f(&r, "spread_bps", 0.3 / 103.95 * 1e4);
}

/// Quote mid 100 (99.9 / 100.1) from T0-4000s.
/// 1: buy 2 @ T0-3600s (boundary, in); fills 1 @ 100.05 (T0-3000s), 1 @ 100.10 (T0-2000s, completes)
/// 2: sell 1 @ T0-3600s-1ns (out); canceled @ T0-100s (in)
/// 3: sell 1 @ T0-50s; fill 1 @ 99.80 (T0-40s, completes)
/// 4: buy 1 @ T0-30s; rejected @ T0-30s
/// 5: buy 1 @ T0-20s; expired @ T0-10s
fn order_flow() -> Vec<model::Event> {
    vec![
        quote("BTCUSDT", T0 - 4000 * S, "99.9", "100.1"),
        submit(2, "acc1", "BTCUSDT", Side::Sell, "1", T0 - 3600 * S - 1),
        submit(1, "acc1", "BTCUSDT", Side::Buy, "2", T0 - 3600 * S),
        fill(
            1,
            1,
            "acc1",
            "BTCUSDT",
            Side::Buy,
            "1",
            "100.05",
            "0.01",
            T0 - 3000 * S,
        ),
        fill(
            2,
            1,
            "acc1",
            "BTCUSDT",
            Side::Buy,
            "1",
            "100.10",
            "0.01",
            T0 - 2000 * S,
        ),
        cancel(2, "acc1", T0 - 100 * S),
        submit(3, "acc1", "BTCUSDT", Side::Sell, "1", T0 - 50 * S),
        fill(
            3,
            3,
            "acc1",
            "BTCUSDT",
            Side::Sell,
            "1",
            "99.80",
            "0.01",
            T0 - 40 * S,
        ),
        submit(4, "acc1", "BTCUSDT", Side::Buy, "1", T0 - 30 * S),
        reject(4, "acc1", T0 - 30 * S),
        submit(5, "acc1", "BTCUSDT", Side::Buy, "1", T0 - 20 * S),
        expire(5, "acc1", T0 - 10 * S),
    ]
}

#[test]
fn order_counts_ratios_and_arrival_slippage_over_one_hour() {
    let e = feed(&order_flow());
    // As of T0+4s, T0+4s-3600s = T0-3596s is a multiple of 6 s: the window is exactly
    // [T0-3596s, T0+4s], and both submissions at T0-3600s are out. Submissions 3, 4, 5 = 3.
    let r = e.row(ORDER_FEATURES, "acc1", ts(T0 + 4 * S)).unwrap();
    assert_i(&r, "orders_1h", 3);
    // One nanosecond earlier the window starts at the 6-s pane boundary T0-3602s (2 s more than
    // an hour): both submissions at T0-3600s and T0-3600s-1ns are in (exact windows counted
    // 1 but not 2 as of T0; panes hold whole 6-s intervals).
    let r = e.row(ORDER_FEATURES, "acc1", ts(T0 + 4 * S - 1)).unwrap();
    assert_i(&r, "orders_1h", 5);

    // As of T0: also [T0-3602s, T0]: submissions 1, 2, 3, 4, 5 = 5.
    let r = e.row(ORDER_FEATURES, "acc1", ts(T0)).unwrap();
    assert_i(&r, "orders_1h", 5);
    assert_i(&r, "cancels_1h", 1);
    // 1 / 5
    assert_f(&r, "cancel_ratio_1h", 0.2);
    assert_i(&r, "rejects_1h", 1);
    assert_i(&r, "expires_1h", 1);
    // Orders 1 and 3 completed by fills.
    assert_i(&r, "filled_orders_1h", 2);
    // 2 / (2 filled + 1 canceled + 1 rejected + 1 expired) = 0.4
    assert_f(&r, "fill_rate_1h", 0.4);
    // buy (100.05 - 100) / 100 * 1e4 = 5 bps; buy (100.10 - 100) / 100 * 1e4 = 10 bps;
    // sell (100 - 99.80) / 100 * 1e4 = 20 bps. Mean = 35 / 3 = 11.6666667 bps.
    assert_f(&r, "avg_slippage_bps_1h", 35.0 / 3.0);

    // 1000 s later: only events in [T0-2602s, T0+1000s] count (the pane of T0-2600s starts 2 s
    // earlier; no event in those 2 s): fill 2 (10 bps), cancel, order 3 and its fill (20 bps),
    // 4 (rejected), 5 (expired).
    let r = e.row(ORDER_FEATURES, "acc1", ts(T0 + 1000 * S)).unwrap();
    assert_i(&r, "orders_1h", 3);
    assert_f(&r, "cancel_ratio_1h", 1.0 / 3.0);
    assert_f(&r, "avg_slippage_bps_1h", 15.0);
    // Two hours later everything is out: counts 0, ratios null.
    let r = e.row(ORDER_FEATURES, "acc1", ts(T0 + 7200 * S)).unwrap();
    assert_i(&r, "orders_1h", 0);
    assert_null(&r, "cancel_ratio_1h");
    assert_null(&r, "fill_rate_1h");
    assert_null(&r, "avg_slippage_bps_1h");
}

#[test]
fn position_features_follow_fills_marks_and_the_utc_day() {
    let mut ev = order_flow();
    let e = feed(&ev);
    // Buys 1 @ 100.05 and 1 @ 100.10: net 2, cost 200.15, avg 100.075.
    // Sell 1 @ 99.80 realizes 99.80 - 100.075 = -0.275; net 1, avg 100.075.
    // Mark = quote mid 100: unrealized (100 - 100.075) x 1 = -0.075; notional 100.
    // Fees 3 x 0.01 = 0.03. All on 2023-11-14 (UTC).
    let r = e
        .row(POSITION_SYMBOL_FEATURES, "acc1|BTCUSDT.sim", ts(T0))
        .unwrap();
    assert_f(&r, "net_qty", 1.0);
    assert_f(&r, "avg_entry_price", 100.075);
    assert_f(&r, "mark_price", 100.0);
    assert_f(&r, "notional", 100.0);
    assert_f(&r, "gross_exposure", 100.0);
    assert_f(&r, "unrealized_pnl", -0.075);
    assert_f(&r, "realized_pnl_today", -0.275);
    assert_f(&r, "fees_today", 0.03);
    let r = e.row(POSITION_FEATURES, "acc1", ts(T0)).unwrap();
    assert_f(&r, "notional", 100.0);
    assert_f(&r, "unrealized_pnl", -0.075);
    assert_f(&r, "realized_pnl_today", -0.275);
    assert_i(&r, "open_positions", 1);

    // A short in ETH: sell 2 @ 2000 (no order known), mark moves to mid 1990:
    // notional -3980, exposure 3980, unrealized (1990 - 2000) x -2 = +20.
    ev.push(fill(
        4,
        99,
        "acc1",
        "ETHUSDT",
        Side::Sell,
        "2",
        "2000",
        "0",
        T0 - 5 * S,
    ));
    ev.push(quote("ETHUSDT", T0 - 4 * S, "1989", "1991"));
    let e = feed(&ev);
    let r = e.row(POSITION_FEATURES, "acc1", ts(T0)).unwrap();
    // notional 100 - 3980 = -3880; gross 100 + 3980 = 4080; unrealized -0.075 + 20 = 19.925
    assert_f(&r, "notional", -3880.0);
    assert_f(&r, "gross_exposure", 4080.0);
    assert_f(&r, "unrealized_pnl", 19.925);
    assert_i(&r, "open_positions", 2);

    // The next UTC day (2023-11-15T00:00:00Z = T0 + 6400 s): nothing realized today yet.
    let r = e.row(POSITION_FEATURES, "acc1", ts(T0 + 6400 * S)).unwrap();
    assert_f(&r, "realized_pnl_today", 0.0);
    assert_f(&r, "fees_today", 0.0);
    assert_f(&r, "unrealized_pnl", 19.925);
    let r = e
        .row(POSITION_FEATURES, "acc1", ts(T0 + 6400 * S - 1))
        .unwrap();
    assert_f(&r, "realized_pnl_today", -0.275);
}

#[test]
fn streaming_reports_touched_entities_once_as_of_the_latest_event() {
    let mut e = FeatureEngine::default();
    let ev = order_flow();
    let changed = e.on_event(&ev[0]);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].view, MARKET_FEATURES);
    assert_eq!(&*changed[0].entity, "BTCUSDT.sim");
    for x in &ev[1..] {
        e.on_event(x);
    }
    let rows = e.changed_rows();
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.view, r.entity.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (MARKET_FEATURES, "BTCUSDT.sim"),
            (ORDER_FEATURES, "acc1"),
            (POSITION_FEATURES, "acc1"),
            (POSITION_SYMBOL_FEATURES, "acc1|BTCUSDT.sim"),
        ]
    );
    assert!(rows.iter().all(|r| r.event_ts == ts(T0 - 10 * S)));
    assert!(e.changed_rows().is_empty(), "drained");
    // A quote now changes the mark: market and the holder's positions are reported.
    let changed = e.on_event(&quote("BTCUSDT", T0, "100", "100.2"));
    let views: Vec<&str> = changed.iter().map(|k| k.view).collect();
    assert_eq!(
        views,
        vec![MARKET_FEATURES, POSITION_FEATURES, POSITION_SYMBOL_FEATURES]
    );
    let rows = e.changed_rows();
    assert_eq!(rows.len(), 3);
    // mark 100.1: unrealized (100.1 - 100.075) x 1 = 0.025
    assert_f(&rows[2], "unrealized_pnl", 0.025);
}

#[test]
fn a_late_trade_inside_the_window_counts_but_does_not_move_last_price() {
    let mut ev = tape();
    // Arrives after E (T0-10s) but is stamped T0-30s: inside both windows.
    ev.push(trade("BTCUSDT", T0 - 30 * S, "110", "1"));
    let e = feed(&ev);
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_f(&r, "last_price", 104.0);
    // 1 min: D, late, E = (306 + 110 + 104) / 5 = 104
    assert_f(&r, "vwap_1m", 104.0);
    assert_i(&r, "trade_count_5m", 5);
}

#[test]
fn a_trade_before_a_window_is_its_return_reference_even_when_it_arrives_late() {
    // A 90 @ T0-400s, then E 104 @ T0-10s; then, late, L1 95 @ T0-350s (older than the 5-min
    // window: not summed, counted as outside) and L2 99 @ T0-100s (inside 5 min, before 1 min).
    let e = feed(&[
        trade("BTCUSDT", T0 - 400 * S, "90", "1"),
        trade("BTCUSDT", T0 - 10 * S, "104", "1"),
        trade("BTCUSDT", T0 - 350 * S, "95", "1"),
        trade("BTCUSDT", T0 - 100 * S, "99", "1"),
    ]);
    assert_eq!(
        e.stats().outside_window,
        1,
        "L1 is older than the 5-minute window"
    );
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    assert_f(&r, "last_price", 104.0);
    // 5 min [T0-300s, T0]: L2 and E. 1 min: E.
    assert_i(&r, "trade_count_5m", 2);
    assert_f(&r, "volume_5m", 2.0);
    assert_f(&r, "volume_1m", 1.0);
    // The newest trade before T0-300s is L1 (T0-350s), not A: 104/95 - 1.
    assert_f(&r, "return_5m", 104.0 / 95.0 - 1.0);
    // The newest before T0-60s is L2: 104/99 - 1.
    assert_f(&r, "return_1m", 104.0 / 99.0 - 1.0);
}

#[test]
fn a_book_keeps_at_most_max_book_levels_per_side_and_its_best_levels() {
    // 1,500 bid levels 1..=1500 and 1,200 ask levels 2000..=3199, by deltas (a venue that never
    // deletes the levels that leave its depth).
    let bids: Vec<(String, String)> = (1..=1_500).map(|p| (p.to_string(), "1".into())).collect();
    let asks: Vec<(String, String)> = (2_000..3_200)
        .map(|p| (p.to_string(), "2".into()))
        .collect();
    let b: Vec<(&str, &str)> = bids.iter().map(|(p, q)| (&**p, &**q)).collect();
    let a: Vec<(&str, &str)> = asks.iter().map(|(p, q)| (&**p, &**q)).collect();
    let e = feed(&[delta("BTCUSDT", T0, &b, &a)]);
    assert_eq!(
        e.state_stats().book_levels,
        2 * features::MAX_BOOK_LEVELS,
        "the worst levels of each side are dropped"
    );
    let r = e.row(MARKET_FEATURES, "BTCUSDT.sim", ts(T0)).unwrap();
    // The best levels are kept: bid 1500, ask 2000; top 5: 5 x 1 vs 5 x 2 = (5 - 10) / 15.
    assert_f(&r, "mid", 1_750.0);
    assert_f(&r, "book_imbalance", -1.0 / 3.0);
    // A snapshot replaces the book, within the same bound.
    let e = feed(&[snapshot("BTCUSDT", T0, &b, &a[..10])]);
    assert_eq!(e.state_stats().book_levels, features::MAX_BOOK_LEVELS + 10);
}
