//! WASH_TRADE, MARKING_THE_CLOSE and MOMENTUM_IGNITION scenarios with near-misses.

mod common;
use common::*;
use model::Side::{Buy, Sell};
use surveillance::{Evidence, Params, Rule, scan};

const T0: &str = "2024-01-02T14:30:00Z";

fn t(ms: i64) -> model::Timestamp {
    at(T0, ms)
}

fn with_owner(mut r: interchange::Record, owner: &str) -> interchange::Record {
    r.owner = Some(owner.into());
    r
}

/// One print, both legs ours (CME Rule 534 / SEC s.9(a)(1) "no change in beneficial ownership").
fn print(
    buy_acct: &str,
    buy_owner: &str,
    sell_acct: &str,
    sell_owner: &str,
) -> Vec<interchange::Record> {
    vec![
        with_owner(
            fill(
                t(0),
                buy_acct,
                "XYZ",
                Buy,
                "100",
                "10.00",
                "OB",
                "FB",
                "T1",
                true,
            ),
            buy_owner,
        ),
        with_owner(
            fill(
                t(0),
                sell_acct,
                "XYZ",
                Sell,
                "100",
                "10.00",
                "OS",
                "FS",
                "T1",
                false,
            ),
            sell_owner,
        ),
        trade(t(1), "XYZ", "10.00", "100"),
    ]
}

#[test]
fn wash_self_match_same_account() {
    let a = scan(&print("A1", "O1", "A1", "O1"), &Params::default()).unwrap();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (a[0].rule, a[0].subtype.as_str()),
        (Rule::WashTrade, "same_account")
    );
    let Evidence::Wash(e) = &a[0].evidence else {
        panic!()
    };
    assert_eq!(e.trade_ids, vec!["T1"]);
    assert_eq!(
        (e.buy.fill_id.as_str(), e.sell.fill_id.as_str()),
        ("FB", "FS")
    );
    assert_eq!(
        (e.delta_ms, e.price_diff_bps, e.net_position_change),
        (0, d("0"), d("0"))
    );
}

#[test]
fn wash_cross_account_same_owner_and_related_groups() {
    let a = scan(&print("A1", "O1", "A2", "O1"), &Params::default()).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].subtype, "cross_account_same_owner");
    assert_eq!(a[0].accounts, vec!["A1", "A2"]);
    // Two owners with common ownership (CME 534: less than 100% common ownership counts).
    let p = Params {
        related_owner_groups: vec![vec!["FUND".into(), "FUND-SPV".into()]],
        ..Params::default()
    };
    let a = scan(&print("A1", "FUND", "A9", "FUND-SPV"), &p).unwrap();
    assert_eq!(a.len(), 1);
    let Evidence::Wash(e) = &a[0].evidence else {
        panic!()
    };
    assert_eq!(
        e.owner_group,
        Some(vec!["FUND".to_string(), "FUND-SPV".to_string()])
    );
    // owner_linkage = account reading: different accounts never wash.
    let p = Params {
        owner_linkage: surveillance::OwnerLinkage::Account,
        ..p
    };
    assert!(
        scan(&print("A1", "FUND", "A9", "FUND-SPV"), &p)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn near_miss_unrelated_owners_trading_at_the_same_price_and_time() {
    assert!(
        scan(&print("A1", "O1", "A2", "O2"), &Params::default())
            .unwrap()
            .is_empty()
    );
}

/// SEC s.9(a)(1) matched orders: "substantially the same size, ... time, ... price" via the market.
fn round_trip(dt_ms: i64, sell_px: &str, sell_qty: &str) -> Vec<interchange::Record> {
    vec![
        with_owner(
            fill(
                t(0),
                "A1",
                "XYZ",
                Buy,
                "100",
                "10.00",
                "O1",
                "F1",
                "T1",
                true,
            ),
            "OWN",
        ),
        with_owner(
            fill(
                t(dt_ms),
                "A2",
                "XYZ",
                Sell,
                sell_qty,
                sell_px,
                "O2",
                "F2",
                "T2",
                true,
            ),
            "OWN",
        ),
        trade(t(dt_ms + 1), "XYZ", sell_px, sell_qty),
    ]
}

#[test]
fn wash_round_trip_through_the_market() {
    let a = scan(&round_trip(30_000, "10.005", "95"), &Params::default()).unwrap();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].subtype, "round_trip");
    assert_eq!(a[0].ts, t(30_000));
    let Evidence::Wash(e) = &a[0].evidence else {
        panic!()
    };
    assert_eq!(e.delta_ms, 30_000);
    assert_eq!(
        e.price_diff_bps,
        d("4.99875"),
        "0.05 / 10.0025 x 1e4 = 4.9987503..."
    );
    assert_eq!(e.qty_diff_ratio, d("0.05"));
    assert_eq!(e.net_position_change, d("5"));
}

#[test]
fn near_misses_round_trip_outside_time_price_or_size_tolerance() {
    let p = Params::default();
    assert!(
        scan(&round_trip(60_001, "10.00", "100"), &p)
            .unwrap()
            .is_empty(),
        "61 s > window"
    );
    assert!(
        scan(&round_trip(1_000, "10.02", "100"), &p)
            .unwrap()
            .is_empty(),
        "~20 bps > 10"
    );
    assert!(
        scan(&round_trip(1_000, "10.00", "80"), &p)
            .unwrap()
            .is_empty(),
        "20% > 10%"
    );
}

#[test]
fn self_match_legs_are_not_reused_in_a_round_trip() {
    // A market sale at 10.00, then a self-matched print of the same size and price: the spec
    // pairs round trips only among fills not used in a self-match.
    let mut v = vec![with_owner(
        fill(
            t(-20_000),
            "A1",
            "XYZ",
            Sell,
            "100",
            "10.00",
            "OY",
            "FY",
            "T0",
            true,
        ),
        "O1",
    )];
    v.extend(print("A1", "O1", "A1", "O1"));
    let a = scan(&v, &Params::default()).unwrap();
    assert_eq!(
        a.iter().map(|a| a.subtype.as_str()).collect::<Vec<_>>(),
        vec!["same_account"],
        "{a:#?}"
    );
}

const CLOSE: &str = "2024-01-02T21:00:00Z";

/// Marking the close (2016/522 Annex II: buying "at the reference time ... to increase ... the
/// reference price"): one owner buys 60% of the last 5 minutes' volume, aggressively, and the
/// last print is 80 bps above the price before the window.
fn mtc(owner_qty: &str, last_px: &str, sell_half: bool) -> Vec<interchange::Record> {
    let c = |ms| at(CLOSE, ms);
    let mut v = vec![
        trade(c(-400_000), "XYZ", "50.00", "1000"),
        trade(c(-310_000), "XYZ", "50.00", "1000"),
    ];
    v.push(trade(c(-200_000), "XYZ", "50.10", "2000"));
    let q = d(owner_qty);
    let (bq, sq) = if sell_half {
        (q / d("2"), q / d("2"))
    } else {
        (q, d("0"))
    };
    v.push(fill(
        c(-120_000),
        "CL-1",
        "XYZ",
        Buy,
        &bq.to_string(),
        "50.20",
        "M1",
        "MF1",
        "MT1",
        true,
    ));
    if sell_half {
        v.push(fill(
            c(-110_000),
            "CL-1",
            "XYZ",
            Sell,
            &sq.to_string(),
            "50.20",
            "M2",
            "MF2",
            "MT2",
            true,
        ));
    }
    v.push(trade(c(-120_000), "XYZ", "50.20", &q.to_string()));
    v.push(trade(
        c(-1_000),
        "XYZ",
        last_px,
        &(d("3000") - q).to_string(),
    ));
    v.push(quote(c(60_000), "XYZ", "50.30", "50.40", "10", "10"));
    v.sort_by_key(|r| r.ts);
    v
}

fn mtc_params() -> Params {
    Params {
        mtc_close: [("XYZ".into(), "21:00".into())].into(),
        ..Params::default()
    }
}

#[test]
fn marking_the_close_alerts_at_the_close_with_its_evidence() {
    let recs = mtc("3000", "50.40", false);
    // Streaming: nothing before the close; raised by the first record after it.
    let mut s = surveillance::Scanner::new(mtc_params()).unwrap();
    let mut emitted_at = None;
    for r in &recs {
        if !s.on_record(r).is_empty() {
            emitted_at = Some(r.ts);
        }
    }
    assert_eq!(emitted_at, Some(at(CLOSE, 60_000)));
    let a = scan(&recs, &mtc_params()).unwrap();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (a[0].rule, a[0].subtype.as_str(), a[0].ts),
        (Rule::MarkingTheClose, "marking_up", at(CLOSE, 0))
    );
    let Evidence::MarkingTheClose(e) = &a[0].evidence else {
        panic!()
    };
    assert_eq!((e.ref_price, e.close_price), (d("50.00"), d("50.40")));
    assert_eq!(e.tape_volume, d("5000"));
    assert_eq!(e.volume_share, d("0.6"));
    assert_eq!(e.net_ratio, d("1"));
    assert_eq!(e.move_bps, d("80"));
    assert_eq!(e.taker_share, d("1"));
}

#[test]
fn near_misses_marking_the_close() {
    let p = mtc_params();
    assert!(
        scan(&mtc("3000", "50.10", false), &p).unwrap().is_empty(),
        "20 bps move < 50"
    );
    assert!(
        scan(&mtc("500", "50.40", false), &p).unwrap().is_empty(),
        "10% share < 25%"
    );
    let a = scan(&mtc("3000", "50.40", true), &p).unwrap();
    // Buying and selling 1500 each at 50.20 is a round trip (WASH_TRADE), not marking the close.
    assert!(
        a.iter().all(|a| a.rule != Rule::MarkingTheClose),
        "net ratio 0 < 0.8: {a:#?}"
    );
    assert_eq!(
        a.iter().map(|a| a.subtype.as_str()).collect::<Vec<_>>(),
        vec!["round_trip"]
    );
    // Same activity but the close is an hour later: the buying is outside the window.
    let p = Params {
        mtc_close: [("XYZ".into(), "22:00".into())].into(),
        ..Params::default()
    };
    assert!(scan(&mtc("3000", "50.40", false), &p).unwrap().is_empty());
}

/// Momentum ignition (2016/522 Annex II 4(e)): five aggressive buys within a second push the mid
/// from 100.00 to 100.31 (31 bps); the owner sells 300 at 100.28 within a minute.
fn mi(n_burst: usize, post_bid: &str, exit_px: &str, with_exit: bool) -> Vec<interchange::Record> {
    let mut v = vec![quote(t(-10), "ABC", "99.99", "100.01", "500", "500")];
    for i in 0..n_burst {
        let px = format!("100.0{}", i + 1);
        v.push(fill(
            t(200 * i as i64),
            "MI-1",
            "ABC",
            Buy,
            "100",
            &px,
            &format!("MB{i}"),
            &format!("BF{i}"),
            &format!("BT{i}"),
            true,
        ));
    }
    let ask = (d(post_bid) + d("0.02")).to_string();
    v.push(quote(t(1_200), "ABC", post_bid, &ask, "500", "500"));
    if with_exit {
        v.push(fill(
            t(5_000),
            "MI-1",
            "ABC",
            Sell,
            "200",
            exit_px,
            "MX",
            "XF1",
            "XT1",
            false,
        ));
        v.push(fill(
            t(6_000),
            "MI-1",
            "ABC",
            Sell,
            "100",
            exit_px,
            "MX",
            "XF2",
            "XT2",
            false,
        ));
    }
    v.push(quote(t(70_000), "ABC", "100.00", "100.02", "500", "500"));
    v
}

#[test]
fn momentum_ignition_burst_move_and_profitable_exit() {
    let a = scan(&mi(5, "100.30", "100.28", true), &Params::default()).unwrap();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        (a[0].rule, a[0].subtype.as_str()),
        (Rule::MomentumIgnition, "buy_burst")
    );
    assert_eq!(
        a[0].ts,
        t(6_000),
        "the exit fill that reaches 50% of the burst qty"
    );
    let Evidence::MomentumIgnition(e) = &a[0].evidence else {
        panic!()
    };
    assert_eq!(
        (e.burst_fills, e.burst_qty, e.burst_duration_ms),
        (5, d("500"), 800)
    );
    assert_eq!(e.burst_vwap, d("100.03"));
    assert_eq!((e.mid_pre, e.mid_post), (d("100.00"), d("100.31")));
    assert_eq!(e.move_bps, d("31"));
    assert_eq!((e.exit_qty, e.exit_vwap), (d("300"), d("100.28")));
    assert_eq!(e.exit_fill_ids, vec!["XF1", "XF2"]);
    assert_eq!(e.gross_pnl, d("75"), "(100.28 - 100.03) x 300");
}

#[test]
fn near_misses_momentum_ignition() {
    let p = Params::default();
    assert!(
        scan(&mi(4, "100.30", "100.28", true), &p)
            .unwrap()
            .is_empty(),
        "4 fills < 5"
    );
    assert!(
        scan(&mi(5, "100.30", "100.28", false), &p)
            .unwrap()
            .is_empty(),
        "no exit"
    );
    assert!(
        scan(&mi(5, "100.30", "99.90", true), &p)
            .unwrap()
            .is_empty(),
        "exit below burst VWAP"
    );
    assert!(
        scan(&mi(5, "100.09", "100.28", true), &p)
            .unwrap()
            .is_empty(),
        "10 bps move < 20"
    );
}

#[test]
fn params_parse_from_yaml_and_json_with_spec_names_and_reject_unknown_names() {
    let y = "wash_window_ms: 30000\nspoof_k_size: 3\ntick_size: {ES: 0.25}\nmtc_close: {\"*\": \"20:00\"}\nrelated_owner_groups: [[A, B]]\nowner_linkage: owner\n";
    let p = Params::from_yaml_or_json(y).unwrap();
    assert_eq!((p.wash_window_ms, p.spoof_k_size), (30_000, d("3")));
    assert_eq!(p.tick_size.get("ES"), Some(&d("0.25")));
    assert_eq!(
        p.spoof_t_post_ms, 1_000,
        "unnamed parameters keep the spec default"
    );
    let j =
        Params::from_yaml_or_json(r#"{"layer_min_levels": 4, "mi_min_move_bps": "25"}"#).unwrap();
    assert_eq!((j.layer_min_levels, j.mi_min_move_bps), (4, d("25")));
    assert!(
        Params::from_yaml_or_json("spoof_k: 3").is_err(),
        "misspelt name"
    );
    assert!(Params::from_yaml_or_json("mtc_close: {X: '25:99'}").is_err());
    assert!(Params::from_yaml_or_json("related_owner_groups: [[A, B], [B, C]]").is_err());
    let def = Params::default();
    assert_eq!(
        (def.wash_price_tol_bps, def.wash_qty_tol_ratio),
        (d("10"), d("0.10"))
    );
    assert_eq!(
        (
            def.layer_min_levels,
            def.layer_max_fill_ratio,
            def.mtc_window_ms
        ),
        (3, d("0.01"), 300_000)
    );
}

#[test]
fn csv_has_one_row_per_alert_with_quoted_json_evidence() {
    let a = scan(&print("A1", "O1", "A2", "O1"), &Params::default()).unwrap();
    let csv = surveillance::alerts_to_csv(&a);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "type,subtype,owner,accounts,symbol,ts,severity,key,evidence"
    );
    assert!(
        lines[1]
            .starts_with("WASH_TRADE,cross_account_same_owner,O1,A1;A2,XYZ,2024-01-02T14:30:00"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",\"{\"\"trade_ids\"\":[\"\"T1\"\"]"),
        "{}",
        lines[1]
    );
    let json = surveillance::alerts_to_json(&a);
    assert_eq!(json["alerts"][0]["type"], "WASH_TRADE");
    assert_eq!(json["alerts"][0]["evidence"]["buy"]["price"], "10.00");
}
