use std::collections::BTreeMap;

use chrono::NaiveDate;
use model::{Decimal, Side, Timestamp};
use rust_decimal_macros::dec;

use super::*;
use crate::input::{Trade, parse_ts};

fn day(d: &str) -> Timestamp {
    parse_ts(d).expect("test date")
}

/// A trade on date `ts` (`YYYY-MM-DD` or a datetime).
#[allow(clippy::too_many_arguments)]
fn tr(
    ts: &str,
    account: &str,
    symbol: &str,
    side: Side,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    lots: &[&str],
) -> Trade {
    Trade {
        ts: day(ts),
        account: account.into(),
        owner: account.into(),
        symbol: symbol.into(),
        side,
        qty,
        price,
        fee,
        lot_ids: lots.iter().map(|s| s.to_string()).collect(),
    }
}

fn buy(ts: &str, qty: Decimal, price: Decimal, fee: Decimal, lots: &[&str]) -> Trade {
    tr(ts, "A", "X", Side::Buy, qty, price, fee, lots)
}

fn sell(ts: &str, qty: Decimal, price: Decimal, fee: Decimal, lots: &[&str]) -> Trade {
    tr(ts, "A", "X", Side::Sell, qty, price, fee, lots)
}

fn run(trades: &[Trade], method: Method, marks: &[(&str, Decimal)]) -> PnlReport {
    let marks: BTreeMap<String, Decimal> = marks.iter().map(|(s, p)| (s.to_string(), *p)).collect();
    compute(trades, method, &marks, &PnlOptions::default()).expect("compute")
}

fn row<'a>(r: &'a PnlReport, account: &str, symbol: &str) -> &'a SymbolPnl {
    r.accounts
        .iter()
        .find(|a| a.account == account)
        .and_then(|a| a.symbols.iter().find(|s| s.symbol == symbol))
        .expect("row present")
}

fn open_basis(s: &SymbolPnl) -> Decimal {
    s.open_lots.iter().map(|l| l.cost_basis).sum()
}

/// Perpetual-inventory illustration from a financial-accounting textbook (spec rule 21; Wild,
/// "Financial Accounting", the Trekking example): Aug 1 beginning inventory 10 @ $91, Aug 3
/// purchase 15 @ $106, Aug 14 sale of 20, Aug 17 purchase 20 @ $115, Aug 28 purchase 10 @ $119,
/// Aug 31 sale of 23. Sales are priced at $150 here so realized P&L = proceeds - COGS with
/// proceeds = 43 x 150 = 6,450.
///
/// FIFO (the textbook's text): Aug 14 "the first 10 sold cost $91 each. The next 10 sold cost
///   $106 each" = 910 + 1,060 = 1,970, leaving 5 @ 106 = 530; Aug 31: 5 @ 106 + 18 @ 115 =
///   530 + 2,070 = 2,600, leaving 2 @ 115 + 10 @ 119 = 1,420. COGS 4,570.
/// LIFO: Aug 14: 15 @ 106 + 5 @ 91 = 1,590 + 455 = 2,045, leaving 5 @ 91 = 455; Aug 31:
///   10 @ 119 + 13 @ 115 = 1,190 + 1,495 = 2,685, leaving 7 @ 115 + 5 @ 91 = 805 + 455 = 1,260.
///   COGS 4,730.
/// Moving average: after Aug 3, 25 units cost 2,500 (avg 100); Aug 14: 20 x 100 = 2,000, leaving
///   5 @ 100 = 500; Aug 17 and 28 add 2,300 + 1,190: 35 units cost 3,990 (avg 114); Aug 31:
///   23 x 114 = 2,622, leaving 12 x 114 = 1,368. COGS 4,622.
/// Specific identification (the textbook's choice): Aug 14 sells 8 @ 91 + 12 @ 106 = 728 +
///   1,272 = 2,000; Aug 31 sells 2 @ 91 + 3 @ 106 + 15 @ 115 + 3 @ 119 = 182 + 318 + 1,725 + 357
///   = 2,582, leaving 5 @ 115 + 7 @ 119 = 575 + 833 = 1,408. COGS 4,582.
/// HIFO (no textbook figure; by hand): Aug 14 takes the 106s then the 91s = 2,045 (as LIFO);
///   Aug 31 takes 119s then 115s = 2,685, leaving 7 @ 115 + 5 @ 91 = 1,260. COGS 4,730.
#[test]
fn textbook_perpetual_inventory_fifo_lifo_average_specific() {
    let z = Decimal::ZERO;
    let plain = vec![
        buy("2024-08-01", dec!(10), dec!(91), z, &["BEG"]),
        buy("2024-08-03", dec!(15), dec!(106), z, &["AUG3"]),
        sell("2024-08-14", dec!(20), dec!(150), z, &[]),
        buy("2024-08-17", dec!(20), dec!(115), z, &["AUG17"]),
        buy("2024-08-28", dec!(10), dec!(119), z, &["AUG28"]),
        sell("2024-08-31", dec!(23), dec!(150), z, &[]),
    ];
    // Specific identification: a name closes the whole open quantity of that lot (or what the
    // trade still needs), so the beginning inventory and the Aug 17 purchase are entered as two
    // lots each (same dates and costs) to express "8 of the 10" and "15 of the 20".
    let specific = vec![
        buy("2024-08-01", dec!(8), dec!(91), z, &["BEG-A"]),
        buy("2024-08-01", dec!(2), dec!(91), z, &["BEG-B"]),
        buy("2024-08-03", dec!(15), dec!(106), z, &["AUG3"]),
        sell("2024-08-14", dec!(20), dec!(150), z, &["BEG-A", "AUG3"]),
        buy("2024-08-17", dec!(15), dec!(115), z, &["AUG17-A"]),
        buy("2024-08-17", dec!(5), dec!(115), z, &["AUG17-B"]),
        buy("2024-08-28", dec!(10), dec!(119), z, &["AUG28"]),
        sell(
            "2024-08-31",
            dec!(23),
            dec!(150),
            z,
            &["BEG-B", "AUG3", "AUG17-A", "AUG28"],
        ),
    ];
    struct Case {
        name: &'static str,
        method: Method,
        trades: Vec<Trade>,
        cogs: Decimal,
        ending: Decimal,
    }
    let cases = [
        Case {
            name: "FIFO",
            method: Method::Fifo,
            trades: plain.clone(),
            cogs: dec!(4570),
            ending: dec!(1420),
        },
        Case {
            name: "LIFO",
            method: Method::Lifo,
            trades: plain.clone(),
            cogs: dec!(4730),
            ending: dec!(1260),
        },
        Case {
            name: "moving average",
            method: Method::Avg,
            trades: plain.clone(),
            cogs: dec!(4622),
            ending: dec!(1368),
        },
        Case {
            name: "HIFO",
            method: Method::Hifo,
            trades: plain.clone(),
            cogs: dec!(4730),
            ending: dec!(1260),
        },
        Case {
            name: "specific",
            method: Method::Specific,
            trades: specific,
            cogs: dec!(4582),
            ending: dec!(1408),
        },
    ];
    for c in cases {
        let r = run(&c.trades, c.method, &[]);
        let s = row(&r, "A", "X");
        assert_eq!(s.realized_pnl, dec!(6450) - c.cogs, "{}: realized", c.name);
        assert_eq!(s.position_qty, dec!(12), "{}: ending units", c.name);
        assert_eq!(open_basis(s), c.ending, "{}: ending inventory", c.name);
        // Last trade price 150 is the mark: unrealized = 12 x 150 - ending inventory.
        assert_eq!(
            s.unrealized_pnl,
            dec!(1800) - c.ending,
            "{}: unrealized",
            c.name
        );
    }
    // The per-sale COGS of FIFO as quoted: first sale 1,970.
    let r = run(&plain[..3], Method::Fifo, &[]);
    assert_eq!(row(&r, "A", "X").realized_pnl, dec!(3000) - dec!(1970));
    // Moving average after Aug 28: 35 units at 3,990 = 114 per unit.
    let r = run(&plain[..5], Method::Avg, &[]);
    assert_eq!(row(&r, "A", "X").avg_cost, Some(dec!(114)));
}

/// CFA practice question (spec rule 21): 450 units at $18.80 = $8,460 plus a purchase of 100 units
/// for $2,000 = $10,460; "divided by the 550 unit total equals a $19.02 moving average cost per
/// unit".
#[test]
fn cfa_moving_average_cost() {
    let z = Decimal::ZERO;
    let t = vec![
        buy("2024-01-02", dec!(450), dec!(18.80), z, &[]),
        buy("2024-01-03", dec!(100), dec!(20), z, &[]),
    ];
    let r = run(&t, Method::Avg, &[]);
    let s = row(&r, "A", "X");
    assert_eq!(open_basis(s), dec!(10460));
    let avg = s.avg_cost.expect("open position");
    assert_eq!(avg.round_dp(2), dec!(19.02));
    assert_eq!(avg, dec!(10460) / dec!(550));
    // Selling 100 at $25 realizes 2,500 - 100 x 19.0181... (pro-rated to 12 places).
    let mut t2 = t.clone();
    t2.push(sell("2024-01-04", dec!(100), dec!(25), z, &[]));
    let r = run(&t2, Method::Avg, &[]);
    let s = row(&r, "A", "X");
    assert_eq!(s.realized_pnl, dec!(2500) - dec!(1901.818181818182));
    assert_eq!(s.avg_cost.map(|a| a.round_dp(2)), Some(dec!(19.02)));
}

struct Case {
    name: &'static str,
    method: Method,
    trades: Vec<Trade>,
    mark: Option<Decimal>,
    realized: Decimal,
    unrealized: Decimal,
    qty: Decimal,
    fees: Decimal,
    /// (lot_id, qty, cost_basis) in acquisition order.
    lots: Vec<(&'static str, Decimal, Decimal)>,
}

#[test]
fn table_of_cases() {
    let z = Decimal::ZERO;
    let three_lots = || {
        vec![
            buy("2024-01-02", dec!(10), dec!(10), z, &["L1"]),
            buy("2024-01-03", dec!(10), dec!(30), z, &["L2"]),
            buy("2024-01-04", dec!(10), dec!(20), z, &["L3"]),
        ]
    };
    let with_sell = |lots: &[&str]| {
        let mut t = three_lots();
        t.push(sell("2024-01-05", dec!(15), dec!(25), z, lots));
        t
    };
    let cases = vec![
        // buy 100 @ 10 + fee 1 => lot basis 1,001; sell 40 @ 12 fee 0.5: basis out 1,001 x 40/100
        // = 400.4, realized 480 - 400.4 - 0.5 = 79.1; 60 left at 600.6, mark 11 => 660 - 600.6.
        Case {
            name: "partial lot with fees",
            method: Method::Fifo,
            trades: vec![
                buy("2024-01-02", dec!(100), dec!(10), dec!(1), &[]),
                sell("2024-01-03", dec!(40), dec!(12), dec!(0.5), &[]),
            ],
            mark: Some(dec!(11)),
            realized: dec!(79.1),
            unrealized: dec!(59.4),
            qty: dec!(60),
            fees: dec!(1.5),
            lots: vec![("#1", dec!(60), dec!(600.6))],
        },
        // Short 10 @ 50 fee 1: lot basis -(500 - 1) = -499; cover 10 @ 45 fee 1:
        // realized = 499 - 450 - 1 = 48 = proceeds 500 - cost 450 - fees 2.
        Case {
            name: "short open and cover",
            method: Method::Fifo,
            trades: vec![
                sell("2024-01-02", dec!(10), dec!(50), dec!(1), &[]),
                buy("2024-01-03", dec!(10), dec!(45), dec!(1), &[]),
            ],
            mark: None,
            realized: dec!(48),
            unrealized: z,
            qty: z,
            fees: dec!(2),
            lots: vec![],
        },
        // Short 10 @ 50, cover 4 @ 40: realized 4 x 10 = 40; -6 left at basis -300; mark 55:
        // unrealized = -6 x 55 + 300 = -30.
        Case {
            name: "short partial cover marked",
            method: Method::Lifo,
            trades: vec![
                sell("2024-01-02", dec!(10), dec!(50), z, &[]),
                buy("2024-01-03", dec!(4), dec!(40), z, &[]),
            ],
            mark: Some(dec!(55)),
            realized: dec!(40),
            unrealized: dec!(-30),
            qty: dec!(-6),
            fees: z,
            lots: vec![("#1", dec!(-6), dec!(-300))],
        },
        // Long 10 @ 100 fee 2 (basis 1,002); sell 15 @ 110 fee 3 flips: fee split 2 (closing
        // 10/15) + 1 (opening 5/15). Realized 1,100 - 1,002 - 2 = 96; new short lot #2: -5,
        // basis -(550 - 1) = -549; mark 100: unrealized = -500 + 549 = 49.
        Case {
            name: "flip long to short",
            method: Method::Fifo,
            trades: vec![
                buy("2024-01-02", dec!(10), dec!(100), dec!(2), &[]),
                sell("2024-01-03", dec!(15), dec!(110), dec!(3), &[]),
            ],
            mark: Some(dec!(100)),
            realized: dec!(96),
            unrealized: dec!(49),
            qty: dec!(-5),
            fees: dec!(5),
            lots: vec![("#2", dec!(-5), dec!(-549))],
        },
        // Short 5 @ 20; buy 8 @ 18 fee 0.8 flips: 0.5 to the cover, 0.3 to the new long lot.
        // Realized 100 - 90 - 0.5 = 9.5; lot 3 @ 18 + 0.3 = 54.3; mark 18 => -0.3.
        Case {
            name: "flip short to long",
            method: Method::Avg,
            trades: vec![
                sell("2024-01-02", dec!(5), dec!(20), z, &[]),
                buy(
                    "2024-01-03",
                    dec!(8),
                    dec!(18),
                    dec!(0.8),
                    &["IGNORED-ON-FLIP"],
                ),
            ],
            mark: None,
            realized: dec!(9.5),
            unrealized: dec!(-0.3),
            qty: dec!(3),
            fees: dec!(0.8),
            lots: vec![("#2", dec!(3), dec!(54.3))],
        },
        // Lots 10 @ 10, 10 @ 30, 10 @ 20; sell 15 @ 25 (proceeds 375).
        // FIFO: 10 @ 10 + 5 @ 30 = 250 => 125. Marked at the last price 25, every method's realized +
        // unrealized is 15 x 25 + 375 - 600 = 150.
        Case {
            name: "three lots FIFO",
            method: Method::Fifo,
            trades: with_sell(&[]),
            mark: None,
            realized: dec!(125),
            unrealized: dec!(25),
            qty: dec!(15),
            fees: z,
            lots: vec![("L2", dec!(5), dec!(150)), ("L3", dec!(10), dec!(200))],
        },
        // LIFO: 10 @ 20 + 5 @ 30 = 350 => 25.
        Case {
            name: "three lots LIFO",
            method: Method::Lifo,
            trades: with_sell(&[]),
            mark: None,
            realized: dec!(25),
            unrealized: dec!(125),
            qty: dec!(15),
            fees: z,
            lots: vec![("L1", dec!(10), dec!(100)), ("L2", dec!(5), dec!(150))],
        },
        // HIFO: 10 @ 30 + 5 @ 20 = 400 => -25.
        Case {
            name: "three lots HIFO",
            method: Method::Hifo,
            trades: with_sell(&[]),
            mark: None,
            realized: dec!(-25),
            unrealized: dec!(175),
            qty: dec!(15),
            fees: z,
            lots: vec![("L1", dec!(10), dec!(100)), ("L3", dec!(5), dec!(100))],
        },
        // AVG: 600 / 30 = 20 per unit; 15 x 20 = 300 => 75; 15 left at 300, listed FIFO by
        // quantity at the average cost.
        Case {
            name: "three lots AVG",
            method: Method::Avg,
            trades: with_sell(&[]),
            mark: None,
            realized: dec!(75),
            unrealized: dec!(75),
            qty: dec!(15),
            fees: z,
            lots: vec![("L2", dec!(5), dec!(100)), ("L3", dec!(10), dec!(200))],
        },
        // Specific L3 then L1: 10 @ 20 + 5 @ 10 = 250 => 125.
        Case {
            name: "specific lots named",
            method: Method::Specific,
            trades: with_sell(&["L3", "L1"]),
            mark: None,
            realized: dec!(125),
            unrealized: dec!(25),
            qty: dec!(15),
            fees: z,
            lots: vec![("L1", dec!(5), dec!(50)), ("L2", dec!(10), dec!(300))],
        },
        // Specific L2 covers 10 only; the other 5 fall back to FIFO (L1): 300 + 50 => 25.
        Case {
            name: "specific lots with FIFO fallback",
            method: Method::Specific,
            trades: with_sell(&["L2"]),
            mark: None,
            realized: dec!(25),
            unrealized: dec!(125),
            qty: dec!(15),
            fees: z,
            lots: vec![("L1", dec!(5), dec!(50)), ("L3", dec!(10), dec!(200))],
        },
        // Names on a closing trade are ignored outside Specific (FIFO result).
        Case {
            name: "names ignored under FIFO",
            method: Method::Fifo,
            trades: with_sell(&["L3"]),
            mark: None,
            realized: dec!(125),
            unrealized: dec!(25),
            qty: dec!(15),
            fees: z,
            lots: vec![("L2", dec!(5), dec!(150)), ("L3", dec!(10), dec!(200))],
        },
        // Shorts S1 @ 30, S2 @ 20; cover 10 @ 25. HIFO closes the lot realizing the least gain:
        // S2 (200 - 250 = -50), not S1 (+50). Remaining S1 at -300, mark 25: +50.
        Case {
            name: "HIFO on shorts covers the lowest proceeds first",
            method: Method::Hifo,
            trades: vec![
                sell("2024-01-02", dec!(10), dec!(30), z, &["S1"]),
                sell("2024-01-03", dec!(10), dec!(20), z, &["S2"]),
                buy("2024-01-04", dec!(10), dec!(25), z, &[]),
            ],
            mark: None,
            realized: dec!(-50),
            unrealized: dec!(50),
            qty: dec!(-10),
            fees: z,
            lots: vec![("S1", dec!(-10), dec!(-300))],
        },
        // The same shorts under FIFO cover S1 first: +50.
        Case {
            name: "FIFO on shorts covers the oldest first",
            method: Method::Fifo,
            trades: vec![
                sell("2024-01-02", dec!(10), dec!(30), z, &["S1"]),
                sell("2024-01-03", dec!(10), dec!(20), z, &["S2"]),
                buy("2024-01-04", dec!(10), dec!(25), z, &[]),
            ],
            mark: None,
            realized: dec!(50),
            unrealized: dec!(-50),
            qty: dec!(-10),
            fees: z,
            lots: vec![("S2", dec!(-10), dec!(-200))],
        },
        // AVG on shorts: -10 @ 30 and -10 @ 20 => avg 25 proceeds; cover 10 @ 25 => 0.
        Case {
            name: "AVG on shorts",
            method: Method::Avg,
            trades: vec![
                sell("2024-01-02", dec!(10), dec!(30), z, &["S1"]),
                sell("2024-01-03", dec!(10), dec!(20), z, &["S2"]),
                buy("2024-01-04", dec!(10), dec!(25), z, &[]),
            ],
            mark: None,
            realized: z,
            unrealized: z,
            qty: dec!(-10),
            fees: z,
            lots: vec![("S2", dec!(-10), dec!(-250))],
        },
        // 3 @ 10 + fee 0.01 = 30.01 sold one unit at a time: the pro-rated pieces (12 places)
        // leave no residue, so realized = 33 - 30.01 exactly and no lot remains.
        Case {
            name: "partial consumption conserves basis",
            method: Method::Fifo,
            trades: vec![
                buy("2024-01-02", dec!(3), dec!(10), dec!(0.01), &[]),
                sell("2024-01-03", dec!(1), dec!(11), z, &[]),
                sell("2024-01-04", dec!(1), dec!(11), z, &[]),
                sell("2024-01-05", dec!(1), dec!(11), z, &[]),
            ],
            mark: None,
            realized: dec!(2.99),
            unrealized: z,
            qty: z,
            fees: dec!(0.01),
            lots: vec![],
        },
    ];
    for c in cases {
        let marks: Vec<(&str, Decimal)> = c.mark.map(|m| ("X", m)).into_iter().collect();
        let r = run(&c.trades, c.method, &marks);
        let s = row(&r, "A", "X");
        assert_eq!(s.realized_pnl, c.realized, "{}: realized", c.name);
        assert_eq!(s.unrealized_pnl, c.unrealized, "{}: unrealized", c.name);
        assert_eq!(s.position_qty, c.qty, "{}: qty", c.name);
        assert_eq!(s.fees, c.fees, "{}: fees", c.name);
        assert_eq!(s.total_pnl, c.realized + c.unrealized, "{}: total", c.name);
        let lots: Vec<(String, Decimal, Decimal)> = s
            .open_lots
            .iter()
            .map(|l| (l.lot_id.clone(), l.qty, l.cost_basis))
            .collect();
        let want: Vec<(String, Decimal, Decimal)> = c
            .lots
            .iter()
            .map(|(i, q, b)| (i.to_string(), *q, *b))
            .collect();
        assert_eq!(lots, want, "{}: open lots", c.name);
        let expected_source = if c.mark.is_some() {
            MarkSource::Marks
        } else {
            MarkSource::LastTrade
        };
        assert_eq!(s.mark_source, expected_source, "{}: mark source", c.name);
    }
}

#[test]
fn rejected_trades_name_the_trade_and_column() {
    let z = Decimal::ZERO;
    let t = vec![
        buy("2024-01-02", dec!(5), dec!(10), z, &["L1"]),
        sell("2024-01-03", dec!(6), dec!(11), z, &[]),
    ];
    let opts = PnlOptions {
        long_only: true,
        ..PnlOptions::default()
    };
    let err = compute(&t, Method::Fifo, &BTreeMap::new(), &opts).unwrap_err();
    match &err {
        PtrcError::TradeRejected { number, column, .. } => {
            assert_eq!((*number, column.as_str()), (2, "side"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("trade #2"), "{err}");
    assert!(err.to_string().contains("long-only"), "{err}");
    // Without long_only the same trades leave a short of 1.
    let r = run(&t, Method::Fifo, &[]);
    assert_eq!(row(&r, "A", "X").position_qty, dec!(-1));

    let t = vec![
        buy("2024-01-02", dec!(5), dec!(10), z, &["L1"]),
        sell("2024-01-03", dec!(1), dec!(11), z, &["NOPE"]),
    ];
    let err = compute(
        &t,
        Method::Specific,
        &BTreeMap::new(),
        &PnlOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PtrcError::TradeRejected { number: 2, column, .. } if column == "lot_id"),
        "{err:?}"
    );
    let t = vec![
        buy("2024-01-02", dec!(5), dec!(10), z, &["L1"]),
        buy("2024-01-03", dec!(1), dec!(11), z, &["L1"]),
    ];
    let err = compute(
        &t,
        Method::Specific,
        &BTreeMap::new(),
        &PnlOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already open"), "{err}");
}

#[test]
fn daily_series_uses_last_trade_prices_then_final_marks() {
    let z = Decimal::ZERO;
    let t = vec![
        tr(
            "2024-03-01",
            "A",
            "X",
            Side::Buy,
            dec!(10),
            dec!(100),
            dec!(1),
            &[],
        ),
        tr(
            "2024-03-02",
            "B",
            "X",
            Side::Buy,
            dec!(1),
            dec!(105),
            z,
            &[],
        ),
        tr(
            "2024-03-04",
            "A",
            "X",
            Side::Sell,
            dec!(4),
            dec!(104),
            dec!(1),
            &[],
        ),
    ];
    let marks: BTreeMap<String, Decimal> = [("X".to_string(), dec!(110))].into();
    let opts = PnlOptions {
        marks_date: Some(NaiveDate::from_ymd_opt(2024, 3, 5).expect("date")),
        ..PnlOptions::default()
    };
    let r = compute(&t, Method::Fifo, &marks, &opts).expect("compute");
    let a = &r.accounts[0];
    let got: Vec<(String, Decimal, Decimal, Decimal, Decimal)> = a
        .daily
        .iter()
        .map(|d| {
            (
                d.date.to_string(),
                d.realized,
                d.unrealized,
                d.fees,
                d.equity,
            )
        })
        .collect();
    // Lot basis 1,001 (10 @ 100 + 1). Day 1 mark 100: -1. Day 2 mark 105 (B's trade): 1,050 -
    // 1,001 = 49. Day 4: sells 4 @ 104 fee 1: basis out 400.4, realized 416 - 400.4 - 1 = 14.6;
    // 6 left at 600.6, mark 104: 23.4. Final marks (Mar 5) 110: 660 - 600.6 = 59.4.
    let want = vec![
        ("2024-03-01".to_string(), z, dec!(-1), dec!(1), dec!(-1)),
        ("2024-03-02".to_string(), z, dec!(49), z, dec!(49)),
        (
            "2024-03-04".to_string(),
            dec!(14.6),
            dec!(23.4),
            dec!(1),
            dec!(38),
        ),
        ("2024-03-05".to_string(), z, dec!(59.4), z, dec!(74)),
    ];
    assert_eq!(got, want);
    assert_eq!(a.totals.total_pnl, dec!(74), "last equity = account total");
    // B starts on its first day.
    assert_eq!(r.accounts[1].daily.len(), 3);
    assert_eq!(r.accounts[1].daily[0].date.to_string(), "2024-03-02");
    assert_eq!(r.accounts[1].daily[2].equity, dec!(5));
    // Filtering to account A changes nothing for A: B's trade still moves the mark.
    let only_a = PnlOptions {
        account: Some("A".into()),
        ..opts.clone()
    };
    let ra = compute(&t, Method::Fifo, &marks, &only_a).expect("compute");
    assert_eq!(ra.accounts.len(), 1);
    assert_eq!(ra.accounts[0], r.accounts[0]);
    // Without marks_date the last trade day's point uses the final marks.
    let r = compute(&t, Method::Fifo, &marks, &PnlOptions::default()).expect("compute");
    let last = r.accounts[0].daily.last().expect("points");
    assert_eq!(
        (last.date.to_string(), last.equity),
        ("2024-03-04".into(), dec!(74))
    );
}

#[test]
fn period_filters() {
    let z = Decimal::ZERO;
    let t = vec![
        buy("2024-01-02", dec!(10), dec!(10), dec!(1), &[]),
        sell("2024-01-03", dec!(5), dec!(12), z, &[]),
        sell("2024-01-10", dec!(5), dec!(14), dec!(1), &[]),
        buy("2024-01-20", dec!(1), dec!(20), z, &[]),
    ];
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    // Basis 10 x 10 + 1 = 101 (10.1 per unit). Sale 1 (Jan 3): 60 - 50.5 = 9.5; sale 2 (Jan 10):
    // 70 - 50.5 - 1 = 18.5. Only sale 2 lies in [Jan 5, Jan 15]; the Jan 20 buy is after `to`.
    let opts = PnlOptions {
        from: Some(d("2024-01-05")),
        to: Some(d("2024-01-15")),
        ..PnlOptions::default()
    };
    let r = compute(&t, Method::Fifo, &BTreeMap::new(), &opts).expect("compute");
    let s = row(&r, "A", "X");
    assert_eq!(s.realized_pnl, dec!(18.5));
    assert_eq!(s.fees, dec!(1));
    assert_eq!(s.trades, 1);
    assert_eq!(s.position_qty, z);
    let daily: Vec<String> = r.accounts[0]
        .daily
        .iter()
        .map(|p| p.date.to_string())
        .collect();
    assert_eq!(daily, vec!["2024-01-10"]);
    let all = run(&t, Method::Fifo, &[]);
    assert_eq!(row(&all, "A", "X").realized_pnl, dec!(28));
    assert_eq!(row(&all, "A", "X").position_qty, dec!(1));
}

#[test]
fn unsorted_input_is_processed_in_time_order() {
    let z = Decimal::ZERO;
    let t = vec![
        sell("2024-01-03", dec!(5), dec!(12), z, &[]),
        buy("2024-01-02", dec!(5), dec!(10), z, &[]),
    ];
    let r = run(&t, Method::Fifo, &[]);
    let s = row(&r, "A", "X");
    assert_eq!((s.realized_pnl, s.position_qty), (dec!(10), z));
}

#[test]
fn method_names_parse_and_serialize() {
    for (text, m) in [
        ("FIFO", Method::Fifo),
        ("fifo", Method::Fifo),
        ("Lifo", Method::Lifo),
        ("AVG", Method::Avg),
        ("average", Method::Avg),
        ("hifo", Method::Hifo),
        ("SPECIFIC", Method::Specific),
    ] {
        assert_eq!(text.parse::<Method>().expect(text), m, "{text}");
    }
    assert!("FOFI".parse::<Method>().is_err());
    assert_eq!(
        serde_json::to_string(&Method::Lifo).expect("json"),
        "\"LIFO\""
    );
    let m: Method = serde_json::from_str("\"hifo\"").expect("json");
    assert_eq!(m, Method::Hifo);
    let o: PnlOptions = serde_json::from_str(r#"{"account":"test_account"}"#).expect("json");
    assert_eq!(o.account.as_deref(), Some("test_account"));
    for m in Method::ALL {
        assert_eq!(m.as_str().parse::<Method>().expect("round trip"), m);
    }
}

fn sample_report() -> PnlReport {
    let z = Decimal::ZERO;
    let t = vec![
        tr(
            "2024-01-02",
            "a,<b>&\"",
            "X",
            Side::Buy,
            dec!(10),
            dec!(10),
            dec!(1),
            &[],
        ),
        tr(
            "2024-01-03",
            "a,<b>&\"",
            "Y",
            Side::Sell,
            dec!(2),
            dec!(50),
            z,
            &[],
        ),
        tr(
            "2024-01-04",
            "a,<b>&\"",
            "X",
            Side::Sell,
            dec!(4),
            dec!(12),
            z,
            &[],
        ),
        tr(
            "2024-01-04",
            "plain",
            "X",
            Side::Buy,
            dec!(1),
            dec!(12),
            z,
            &[],
        ),
    ];
    run(&t, Method::Fifo, &[("Y", dec!(55))])
}

#[test]
fn json_numbers_are_decimal_strings() {
    let v = serde_json::to_value(sample_report()).expect("json");
    assert_eq!(v["method"], "FIFO");
    let x = &v["accounts"][0]["symbols"][0];
    assert_eq!(x["symbol"], "X");
    assert_eq!(x["realized_pnl"], "7.6");
    assert_eq!(x["position_qty"], "6");
    assert_eq!(x["open_lots"][0]["cost_basis"], "60.6");
    assert_eq!(v["accounts"][0]["symbols"][1]["mark_source"], "marks");
    assert!(v["totals"]["total_pnl"].is_string());
    let back: PnlReport = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, sample_report());
}

#[test]
fn csv_rendering_is_rectangular_and_escaped() {
    let r = sample_report();
    let text = pnl_to_csv(&r);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header.join(","), PNL_CSV_HEADER);
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().expect("rows");
    let kinds: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    // Account 1: X (+1 lot), Y (+1 lot), 3 days, totals; account 2: X + lot, 1 day, totals; total.
    assert_eq!(
        kinds,
        vec![
            "symbol", "lot", "symbol", "lot", "daily", "daily", "daily", "account", "symbol",
            "lot", "daily", "account", "total"
        ]
    );
    assert_eq!(&rows[0][2], "a,<b>&\"", "the account name survives quoting");
    assert_eq!(&rows[0][10], "7.6");
    let total = rows.last().expect("total row");
    assert_eq!(&total[13], r.totals.total_pnl.to_string());
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = pnl_to_html(&sample_report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(html.contains("<polyline"), "equity curve");
    assert!(
        html.contains("a,&lt;b&gt;&amp;&quot;"),
        "account name escaped"
    );
    assert!(!html.contains("<b>&"), "raw name never appears");
    assert!(html.contains("Total P&amp;L by symbol"));
}

#[test]
fn empty_input_gives_empty_report() {
    let r = run(&[], Method::Fifo, &[]);
    assert!(r.accounts.is_empty());
    assert_eq!(r.totals, PnlTotals::default());
    assert!(pnl_to_html(&r).contains("No symbols"));
}

mod property_tests {
    use super::*;
    use proptest::prelude::*;

    /// (account 0..2, symbol 0..3, buy?, qty 1..50, price in cents, fee in cents)
    fn steps() -> impl Strategy<Value = Vec<(u8, u8, bool, u32, u32, u32)>> {
        prop::collection::vec(
            (
                0u8..2,
                0u8..3,
                any::<bool>(),
                1u32..50,
                1u32..100_000,
                0u32..500,
            ),
            1..60,
        )
    }

    fn build(steps: &[(u8, u8, bool, u32, u32, u32)], flatten: bool) -> Vec<Trade> {
        let mut out = Vec::new();
        let mut pos: BTreeMap<(u8, u8), i64> = BTreeMap::new();
        let mut last_price: BTreeMap<(u8, u8), u32> = BTreeMap::new();
        let base = day("2024-01-01").as_nanos();
        let mut k: i64 = 0;
        let mut push = |a: u8, s: u8, b: bool, q: u32, p: u32, f: u32| {
            k += 1;
            let mut t = tr(
                "2024-01-01",
                &format!("acct{a}"),
                &format!("SYM{s}"),
                if b { Side::Buy } else { Side::Sell },
                Decimal::from(q),
                Decimal::new(i64::from(p), 2),
                Decimal::new(i64::from(f), 2),
                &[],
            );
            // Several trades a day, spread over days, so the daily series has many points.
            t.ts = Timestamp::from_nanos(base + k * 7 * 3_600_000_000_000);
            t
        };
        for &(a, s, b, q, p, f) in steps {
            *pos.entry((a, s)).or_default() += if b { i64::from(q) } else { -i64::from(q) };
            last_price.insert((a, s), p);
            out.push(push(a, s, b, q, p, f));
        }
        if flatten {
            for (&(a, s), &q) in &pos {
                if q != 0 {
                    let p = last_price.get(&(a, s)).copied().unwrap_or(100) + 7;
                    out.push(push(a, s, q < 0, q.unsigned_abs() as u32, p, 3));
                }
            }
        }
        out
    }

    /// Cash view: sell proceeds - buy cost - all fees (+ open quantity at the mark).
    fn cash_pnl(trades: &[Trade], marks: &BTreeMap<String, Decimal>) -> Decimal {
        let mut cash = Decimal::ZERO;
        let mut qty: BTreeMap<&str, Decimal> = BTreeMap::new();
        let mut last: BTreeMap<&str, Decimal> = BTreeMap::new();
        for t in trades {
            let v = t.qty * t.price;
            let q = qty.entry(&t.symbol).or_default();
            match t.side {
                Side::Buy => {
                    cash -= v;
                    *q += t.qty;
                }
                Side::Sell => {
                    cash += v;
                    *q -= t.qty;
                }
            }
            cash -= t.fee;
            last.insert(&t.symbol, t.price);
        }
        for (s, q) in qty {
            let m = marks.get(s).copied().unwrap_or(last[s]);
            cash += q * m;
        }
        cash
    }

    proptest! {
        /// Once every position is flat, realized P&L (net of fees) is the same under every
        /// method and equals sum(sell proceeds) - sum(buy cost) - fees; nothing is unrealized.
        #[test]
        fn flat_positions_realize_the_same_under_every_method(s in steps()) {
            let trades = build(&s, true);
            let want = cash_pnl(&trades, &BTreeMap::new());
            for m in [Method::Fifo, Method::Lifo, Method::Avg, Method::Hifo, Method::Specific] {
                let r = compute(&trades, m, &BTreeMap::new(), &PnlOptions::default()).unwrap();
                prop_assert_eq!(r.totals.realized_pnl, want, "{}", m);
                prop_assert_eq!(r.totals.unrealized_pnl, Decimal::ZERO, "{}", m);
                for a in &r.accounts {
                    for row in &a.symbols {
                        prop_assert!(row.open_lots.is_empty());
                    }
                }
            }
        }

        /// With open positions, realized + unrealized is method-independent (basis is
        /// conserved), equals the cash view marked to market, and the last daily equity point
        /// equals each account's total.
        #[test]
        fn total_pnl_is_method_independent(s in steps(), mark in 1u32..100_000) {
            let trades = build(&s, false);
            let marks: BTreeMap<String, Decimal> =
                [("SYM0".to_string(), Decimal::new(i64::from(mark), 2))].into();
            let want = cash_pnl(&trades, &marks);
            for m in [Method::Fifo, Method::Lifo, Method::Avg, Method::Hifo] {
                let r = compute(&trades, m, &marks, &PnlOptions::default()).unwrap();
                prop_assert_eq!(r.totals.total_pnl, want, "{}", m);
                for a in &r.accounts {
                    let last = a.daily.last().map(|d| d.equity);
                    prop_assert_eq!(last, Some(a.totals.total_pnl), "{}", m);
                    for row in &a.symbols {
                        let q: Decimal = row.open_lots.iter().map(|l| l.qty).sum();
                        prop_assert_eq!(q, row.position_qty);
                        // All open lots are on the position's side.
                        prop_assert!(row.open_lots.iter().all(|l| l.qty.is_sign_positive() == row.position_qty.is_sign_positive()));
                    }
                }
            }
        }
    }
}
