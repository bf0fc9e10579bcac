//! SPOOFING and LAYERING scenarios modelled on Coscia (FCA Final Notice 3 Jul 2013, Appendix 1A
//! worked example) and Sarao (FBI affidavit, 6 May 2010), with near-misses that must not alert.

mod common;
use common::*;
use model::Side::{Buy, Sell};
use surveillance::{Evidence, Params, Rule, Severity, scan};

const COSCIA: &str = "2011-09-06T10:00:00Z";

/// Coscia's worked example (0.000-0.609 s): buy 17 @ 115.86; sells 122 @ 115.89, 85 @ 115.88,
/// 54 @ 115.87; the buy fills in two pieces (3 and 14); the buy trade "triggers cancellation of
/// all 3 large sell orders". Touch before: 115.85 / 115.87 (sizes 40 / 60), tick 0.01.
fn coscia(cancel_at: [i64; 3], fills: bool) -> Vec<interchange::Record> {
    let t = |ms| at(COSCIA, ms);
    let mut v = vec![
        quote(t(0), "BRN", "115.85", "115.87", "40", "60"),
        new_limit(
            t(0),
            "PANTHER-1",
            "COSCIA",
            "BRN",
            Buy,
            "17",
            "115.86",
            "B17",
        ),
        new_limit(
            t(100),
            "PANTHER-1",
            "COSCIA",
            "BRN",
            Sell,
            "122",
            "115.89",
            "S122",
        ),
        new_limit(
            t(101),
            "PANTHER-1",
            "COSCIA",
            "BRN",
            Sell,
            "85",
            "115.88",
            "S85",
        ),
        new_limit(
            t(102),
            "PANTHER-1",
            "COSCIA",
            "BRN",
            Sell,
            "54",
            "115.87",
            "S54",
        ),
    ];
    if fills {
        v.push(fill(
            t(300),
            "PANTHER-1",
            "BRN",
            Buy,
            "3",
            "115.86",
            "B17",
            "F1",
            "X1",
            false,
        ));
        v.push(fill(
            t(350),
            "PANTHER-1",
            "BRN",
            Buy,
            "14",
            "115.86",
            "B17",
            "F2",
            "X2",
            false,
        ));
    }
    let mut cancels = vec![
        (
            cancel_at[0],
            cancel(t(cancel_at[0]), "PANTHER-1", "BRN", Sell, "122", "S122"),
        ),
        (
            cancel_at[1],
            cancel(t(cancel_at[1]), "PANTHER-1", "BRN", Sell, "85", "S85"),
        ),
        (
            cancel_at[2],
            cancel(t(cancel_at[2]), "PANTHER-1", "BRN", Sell, "54", "S54"),
        ),
    ];
    cancels.sort_by_key(|c| c.0);
    v.extend(cancels.into_iter().map(|c| c.1));
    v.push(new_limit(
        t(609),
        "PANTHER-1",
        "COSCIA",
        "BRN",
        Sell,
        "17",
        "115.88",
        "S17",
    ));
    v
}

fn of(alerts: &[surveillance::Alert], rule: Rule) -> Vec<surveillance::Alert> {
    alerts.iter().filter(|a| a.rule == rule).cloned().collect()
}

#[test]
fn coscia_fca_worked_example_raises_spoofing_at_the_first_cancel_crossing_k() {
    let alerts = scan(&coscia([360, 362, 364], true), &Params::default()).unwrap();
    let sp = of(&alerts, Rule::Spoofing);
    assert_eq!(sp.len(), 1, "{alerts:#?}");
    let a = &sp[0];
    assert_eq!(a.owner, "COSCIA");
    assert_eq!(a.accounts, vec!["PANTHER-1"]);
    assert_eq!(
        a.ts,
        at(COSCIA, 360),
        "raised at the cancel that crosses 5 x 17 = 85 lots"
    );
    let Evidence::Spoofing(e) = &a.evidence else {
        panic!("evidence type")
    };
    assert_eq!(e.genuine_order_id, "B17");
    assert_eq!(e.genuine_qty, d("17"));
    assert_eq!(e.genuine_filled_qty, d("17"));
    assert_eq!(e.genuine_fills.len(), 2);
    assert_eq!(e.entry_to_first_fill_ms, Some(300));
    assert_eq!(e.spoof_order_ids, vec!["S122"]);
    assert_eq!(e.total_spoof_qty, d("122"));
    assert_eq!(e.size_ratio, d("7.176471"));
    assert_eq!(e.min_lifetime_ms, 260);
    assert_eq!(
        e.max_cancel_latency_ms, 10,
        "cancel 10 ms after the 14-lot fill"
    );
    assert_eq!(e.spoof_orders[0].ticks_from_touch, Some(d("2")));
    assert_eq!(
        e.order_to_trade_ratio,
        Some(d("16.3529")),
        "(17+122+85+54)/17"
    );
    assert_eq!(a.severity, Severity::Medium);
}

#[test]
fn coscia_with_k_at_the_cited_ratio_collects_all_three_spoof_orders() {
    // The spec's Coscia magnitude: 261/17 = 15.4. With k = 15 the alert needs all three.
    let p = Params {
        spoof_k_size: d("15"),
        ..Params::default()
    };
    let alerts = scan(&coscia([360, 362, 364], true), &p).unwrap();
    let sp = of(&alerts, Rule::Spoofing);
    assert_eq!(sp.len(), 1);
    let Evidence::Spoofing(e) = &sp[0].evidence else {
        panic!()
    };
    assert_eq!(sp[0].ts, at(COSCIA, 364));
    assert_eq!(e.spoof_order_ids, vec!["S122", "S85", "S54"]);
    assert_eq!(e.total_spoof_qty, d("261"));
    assert_eq!(e.size_ratio, d("15.352941"));
    assert_eq!(e.price_levels, vec![d("115.87"), d("115.88"), d("115.89")]);
    assert_eq!((e.min_lifetime_ms, e.max_lifetime_ms), (260, 262));
    assert_eq!(e.max_cancel_latency_ms, 14);
    // With k = 16 (> 15.35) the same sequence is below threshold.
    let p = Params {
        spoof_k_size: d("16"),
        ..Params::default()
    };
    assert!(
        of(
            &scan(&coscia([360, 362, 364], true), &p).unwrap(),
            Rule::Spoofing
        )
        .is_empty()
    );
}

#[test]
fn coscia_also_raises_layering_spec_6_13() {
    let alerts = scan(&coscia([360, 362, 364], true), &Params::default()).unwrap();
    let la = of(&alerts, Rule::Layering);
    assert_eq!(la.len(), 1, "{alerts:#?}");
    assert_eq!(
        la[0].ts,
        at(COSCIA, 364),
        "third level pulled completes three levels"
    );
    let Evidence::Layering(e) = &la[0].evidence else {
        panic!()
    };
    assert_eq!(e.side, Sell);
    assert_eq!(e.order_ids, vec!["S122", "S85", "S54"]);
    assert_eq!(e.max_simultaneous_levels, 3);
    assert_eq!(e.total_qty, d("261"));
    assert_eq!(e.touch_size, d("60"));
    let ticks: Vec<_> = e.orders.iter().map(|o| o.ticks_from_touch).collect();
    assert_eq!(ticks, vec![Some(d("2")), Some(d("1")), Some(d("0"))]);
    assert_eq!(e.opposite_fill_qty, d("17"));
    assert_eq!(
        e.opposite_fills
            .iter()
            .map(|f| f.fill_id.as_str())
            .collect::<Vec<_>>(),
        vec!["F1", "F2"]
    );
    assert_eq!(e.layer_fill_qty, d("0"));
    assert_eq!(e.episode_duration_ms, 264);
}

#[test]
fn finra_reading_separates_spoofing_from_away_from_touch_layering() {
    // spoof_max_ticks_from_touch = 0: only orders at/inside the touch count for SPOOFING.
    let p = Params {
        spoof_max_ticks_from_touch: Some(d("0")),
        ..Params::default()
    };
    let alerts = scan(&coscia([360, 362, 364], true), &p).unwrap();
    // Only S54 (0 ticks) qualifies: 54 < 85, no spoofing; layering still fires.
    assert!(of(&alerts, Rule::Spoofing).is_empty(), "{alerts:#?}");
    assert_eq!(of(&alerts, Rule::Layering).len(), 1);
}

#[test]
fn near_miss_honest_large_orders_cancelled_without_opposite_execution() {
    let alerts = scan(&coscia([360, 362, 364], false), &Params::default()).unwrap();
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn near_miss_cancel_after_the_post_fill_window_is_not_spoofing() {
    // Cancelled 1.05-1.06 s after the last fill: outside spoof_t_post_ms = 1000.
    let alerts = scan(&coscia([1400, 1402, 1404], true), &Params::default()).unwrap();
    assert!(of(&alerts, Rule::Spoofing).is_empty(), "{alerts:#?}");
}

#[test]
fn near_miss_large_orders_that_mostly_filled_are_neither() {
    let t = |ms| at(COSCIA, ms);
    let mut v = coscia([360, 362, 364], true);
    // S122 filled 40 of 122 (33% > 10% spoof, > 1% layer) before its cancel.
    v.insert(
        7,
        fill(
            t(355),
            "PANTHER-1",
            "BRN",
            Sell,
            "40",
            "115.89",
            "S122",
            "F3",
            "X3",
            false,
        ),
    );
    v.retain(|r| !(r.order_id.as_deref() == Some("S85") || r.order_id.as_deref() == Some("S54")));
    let alerts = scan(&v, &Params::default()).unwrap();
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn near_miss_large_orders_of_an_unrelated_owner() {
    let mut v = coscia([360, 362, 364], true);
    for r in v.iter_mut() {
        if r.order_id.as_deref().is_some_and(|id| id.starts_with('S')) {
            r.account = Some("MM-7".into());
            if r.owner.is_some() {
                r.owner = Some("MARKET-MAKER".into());
            }
        }
    }
    let alerts = scan(&v, &Params::default()).unwrap();
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn related_owner_group_links_spoof_orders_in_another_owners_account() {
    let mut v = coscia([360, 362, 364], true);
    for r in v.iter_mut() {
        if r.order_id.as_deref().is_some_and(|id| id.starts_with('S')) {
            r.account = Some("AFFILIATE-1".into());
            if r.owner.is_some() {
                r.owner = Some("AFFILIATE".into());
            }
        }
    }
    let p = Params {
        related_owner_groups: vec![vec!["COSCIA".into(), "AFFILIATE".into()]],
        ..Params::default()
    };
    let alerts = scan(&v, &p).unwrap();
    let sp = of(&alerts, Rule::Spoofing);
    assert_eq!(sp.len(), 1);
    assert_eq!(sp[0].accounts, vec!["AFFILIATE-1", "PANTHER-1"]);
    // Same events with OwnerLinkage::Owner (groups ignored): nothing.
    let p = Params {
        owner_linkage: surveillance::OwnerLinkage::Owner,
        ..p
    };
    assert!(scan(&v, &p).unwrap().is_empty());
}

#[test]
fn near_miss_small_opposite_orders_on_two_levels() {
    let t = |ms| at(COSCIA, ms);
    let v = vec![
        quote(t(0), "BRN", "115.85", "115.87", "40", "60"),
        new_limit(t(0), "P", "O", "BRN", Buy, "17", "115.86", "B17"),
        new_limit(t(100), "P", "O", "BRN", Sell, "30", "115.89", "S1"),
        new_limit(t(100), "P", "O", "BRN", Sell, "20", "115.88", "S2"),
        fill(
            t(300),
            "P",
            "BRN",
            Buy,
            "17",
            "115.86",
            "B17",
            "F1",
            "X1",
            false,
        ),
        cancel(t(310), "P", "BRN", Sell, "30", "S1"),
        cancel(t(311), "P", "BRN", Sell, "20", "S2"),
    ];
    // 50/17 = 2.9 < 5 and two levels < 3.
    assert!(scan(&v, &Params::default()).unwrap().is_empty());
}

const SARAO: &str = "2010-05-06T15:17:38.782Z"; // 11:17:38.782 a.m. New York

/// Sarao, 6 May 2010: five 600-lot E-mini sells at 1,156.50-1,157.50 (tick 0.25) placed
/// together, a sixth around 1:13 p.m., all cancelled unexecuted at about 1:40:12.553 p.m.,
/// kept three or more levels from the best ask; he bought meanwhile.
fn sarao(with_buys: bool) -> Vec<interchange::Record> {
    let t = |ms| at(SARAO, ms);
    let mut v = vec![quote(t(0), "ES", "1155.50", "1155.75", "400", "500")];
    for (i, px) in ["1156.50", "1156.75", "1157.00", "1157.25", "1157.50"]
        .iter()
        .enumerate()
    {
        v.push(new_limit(
            t(i as i64),
            "NAV-1",
            "SARAO",
            "ES",
            Sell,
            "600",
            px,
            &format!("L{i}"),
        ));
    }
    if with_buys {
        v.push(new_market(
            t(60_000),
            "NAV-1",
            "SARAO",
            "ES",
            Buy,
            "50",
            "BUY1",
        ));
        v.push(fill(
            t(60_000),
            "NAV-1",
            "ES",
            Buy,
            "50",
            "1155.75",
            "BUY1",
            "FB1",
            "T1",
            true,
        ));
    }
    let sixth = (13 * 60 + 13 - (11 * 60 + 17)) * 60_000; // ~1:13 p.m.
    v.push(new_limit(
        t(sixth),
        "NAV-1",
        "SARAO",
        "ES",
        Sell,
        "600",
        "1157.75",
        "L5",
    ));
    let end = 2 * 3_600_000 + 22 * 60_000 + 33_771; // 1:40:12.553 p.m.
    for i in 0..6 {
        v.push(cancel(
            t(end + i),
            "NAV-1",
            "ES",
            Sell,
            "600",
            &format!("L{i}"),
        ));
    }
    v
}

#[test]
fn sarao_long_lived_layers_raise_layering_without_a_lifetime_cap() {
    let alerts = scan(
        &sarao(true),
        &Params {
            tick_size: [("ES".into(), d("0.25"))].into(),
            ..Params::default()
        },
    )
    .unwrap();
    assert!(
        of(&alerts, Rule::Spoofing).is_empty(),
        "no fill within 1 s of the cancels: {alerts:#?}"
    );
    let la = of(&alerts, Rule::Layering);
    assert_eq!(la.len(), 1, "one episode, one alert: {alerts:#?}");
    let a = &la[0];
    assert_eq!(a.owner, "SARAO");
    let Evidence::Layering(e) = &a.evidence else {
        panic!()
    };
    // Raised when the third level is pulled; later layers of the episode share its key.
    assert_eq!(e.order_ids, vec!["L0", "L1", "L2"]);
    assert_eq!(e.total_qty, d("1800"));
    assert_eq!(e.touch_size, d("500"));
    let ticks: Vec<_> = e
        .orders
        .iter()
        .map(|o| o.ticks_from_touch.unwrap())
        .collect();
    assert_eq!(ticks, vec![d("3"), d("4"), d("5")]);
    assert_eq!(e.opposite_fill_qty, d("50"));
    assert!(
        e.orders[0].lifetime_ms > 2 * 3_600_000,
        "layers lived over two hours"
    );
    assert_eq!(a.severity, Severity::Medium, "3 levels = the minimum");
}

#[test]
fn near_miss_sarao_ladder_without_any_opposite_execution() {
    let p = Params {
        tick_size: [("ES".into(), d("0.25"))].into(),
        ..Params::default()
    };
    assert!(scan(&sarao(false), &p).unwrap().is_empty());
}

#[test]
fn near_miss_layers_at_the_touch_or_smaller_than_the_touch() {
    // Same ladder but the touch is 1156.50 (0 ticks for the best layer) and min_ticks_away = 10.
    let p = Params {
        tick_size: [("ES".into(), d("0.25"))].into(),
        layer_min_ticks_away: d("10"),
        ..Params::default()
    };
    assert!(scan(&sarao(true), &p).unwrap().is_empty());
    // Episode size 1800 below k_touch x touch (4 x 500).
    let p = Params {
        tick_size: [("ES".into(), d("0.25"))].into(),
        layer_k_touch: d("4"),
        ..Params::default()
    };
    // The episode grows to 3600 once all six are cancelled, which is >= 2000: still alerts,
    // but only at the fourth cancel.
    let la = of(&scan(&sarao(true), &p).unwrap(), Rule::Layering);
    assert_eq!(la.len(), 1);
    let Evidence::Layering(e) = &la[0].evidence else {
        panic!()
    };
    assert_eq!(e.order_ids.len(), 4);
    let p = Params {
        tick_size: [("ES".into(), d("0.25"))].into(),
        layer_k_touch: d("8"),
        ..Params::default()
    };
    assert!(scan(&sarao(true), &p).unwrap().is_empty(), "3600 < 8 x 500");
}
