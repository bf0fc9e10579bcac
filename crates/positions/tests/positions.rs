//! Average-cost known answers, marks, fees, daily figures, duplicates and serde.

use chrono::NaiveDate;
use model::{
    AccountId, Event, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price, Quantity,
    Quote, Side, Symbol, Timestamp, TradeTick, Venue,
};
use positions::{DailyPnl, Positions};
use rust_decimal_macros::dec;

fn inst(sym: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(sym).unwrap())
}
fn acct(a: &str) -> AccountId {
    AccountId::new(a).unwrap()
}
/// 2024-01-02T00:00:00Z + `secs`.
fn ts(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_704_153_600 + secs)
}

struct F<'a> {
    id: u64,
    account: &'a str,
    sym: &'a str,
    side: Side,
    qty: &'a str,
    price: &'a str,
    fee: &'a str,
    t: i64,
}

fn fill(f: F<'_>) -> Fill {
    Fill {
        fill_id: FillId(f.id),
        order_id: OrderId(f.id),
        account: acct(f.account),
        instrument: inst(f.sym),
        side: f.side,
        quantity: Quantity::parse(f.qty).unwrap(),
        price: Price::parse(f.price).unwrap(),
        fee: Money::parse(f.fee).unwrap(),
        liquidity: Liquidity::Taker,
        ts: ts(f.t),
    }
}
fn simple(id: u64, side: Side, qty: &str, price: &str) -> Fill {
    fill(F {
        id,
        account: "a",
        sym: "BTCUSDT",
        side,
        qty,
        price,
        fee: "0",
        t: id as i64,
    })
}

fn quote(sym: &str, bid: &str, ask: &str, t: i64) -> Event {
    Event::Quote(Quote {
        instrument: inst(sym),
        bid: Price::parse(bid).unwrap(),
        bid_size: Quantity::parse("1").unwrap(),
        ask: Price::parse(ask).unwrap(),
        ask_size: Quantity::parse("1").unwrap(),
        ts: ts(t),
    })
}

/// (net, avg, realized) after each fill of a sequence.
type Row = (&'static str, Option<&'static str>, &'static str);
/// (name, fills as (side, quantity, price), expected rows).
type Case = (
    &'static str,
    Vec<(Side, &'static str, &'static str)>,
    Vec<Row>,
);

#[test]
fn textbook_average_cost_sequences() {
    use Side::*;
    let cases: Vec<Case> = vec![
        (
            "increase then partial close",
            vec![(Buy, "10", "100"), (Buy, "10", "110"), (Sell, "5", "120")],
            vec![
                ("10", Some("100"), "0"),
                ("20", Some("105"), "0"),
                ("15", Some("105"), "75"), // (120 - 105) x 5
            ],
        ),
        (
            "short then cover",
            vec![(Sell, "10", "50"), (Buy, "4", "45"), (Buy, "6", "55")],
            vec![
                ("-10", Some("50"), "0"),
                ("-6", Some("50"), "20"), // (50 - 45) x 4
                ("0", None, "-10"),       // 20 + (50 - 55) x 6
            ],
        ),
        (
            "flip through zero in one fill",
            vec![(Buy, "5", "100"), (Sell, "8", "110")],
            vec![("5", Some("100"), "0"), ("-3", Some("110"), "50")],
        ),
        (
            "flip short to long",
            vec![(Sell, "2", "30"), (Buy, "3", "20"), (Sell, "1", "25")],
            vec![
                ("-2", Some("30"), "0"),
                ("1", Some("20"), "20"),
                ("0", None, "25"),
            ],
        ),
        (
            // avg 5/3: the partial close realizes 2 - 1.666666666667 at 12 dp, the rest is
            // recovered when flat: 6 - 5 = 1 exactly.
            "repeating-fraction average is exact once flat",
            vec![
                (Buy, "1", "1"),
                (Buy, "2", "2"),
                (Sell, "1", "2"),
                (Sell, "2", "2"),
            ],
            vec![
                ("1", Some("1"), "0"),
                ("3", Some("1.6666666666666666666666666667"), "0"),
                ("2", Some("1.6666666666665"), "0.333333333333"),
                ("0", None, "1"),
            ],
        ),
    ];
    for (name, fills, rows) in cases {
        let mut p = Positions::new();
        for (i, ((side, q, px), (net, avg, realized))) in fills.iter().zip(&rows).enumerate() {
            assert!(p.apply_fill(&simple(i as u64 + 1, *side, q, px)).unwrap());
            let pos = p.position(&acct("a"), &inst("BTCUSDT")).unwrap();
            assert_eq!(pos.net_qty.to_string(), *net, "{name} #{i} net");
            assert_eq!(
                pos.avg_price.map(|a| a.to_string()).as_deref(),
                *avg,
                "{name} #{i} avg"
            );
            assert_eq!(
                pos.realized_pnl.to_string(),
                *realized,
                "{name} #{i} realized"
            );
        }
    }
}

#[test]
fn marks_give_unrealized_pnl_and_exposure() {
    let mut p = Positions::new();
    p.apply_fill(&simple(1, Side::Buy, "10", "100")).unwrap();
    p.apply_fill(&simple(2, Side::Buy, "10", "110")).unwrap();
    let (a, i) = (acct("a"), inst("BTCUSDT"));
    // Unmarked: the fill price is the mark. (110 - 105) x 20 = 100.
    assert_eq!(p.position(&a, &i).unwrap().unrealized_pnl, dec!(100));
    p.on_event(&quote("BTCUSDT", "101", "103", 10)).unwrap(); // mid 102
    let pos = p.position(&a, &i).unwrap();
    assert_eq!(pos.mark, Some(dec!(102)));
    assert_eq!(pos.unrealized_pnl, dec!(-60)); // (102 - 105) x 20
    assert_eq!(p.gross_exposure(&a), dec!(2040));
    // A trade print does not override a mid.
    p.on_event(&Event::Trade(TradeTick {
        instrument: i.clone(),
        price: Price::parse("90").unwrap(),
        quantity: Quantity::parse("1").unwrap(),
        aggressor: None,
        trade_id: "x".into(),
        ts: ts(11),
    }))
    .unwrap();
    assert_eq!(p.position(&a, &i).unwrap().mark, Some(dec!(102)));
    // Positions opened later start at the latest mark; short unrealized has the right sign.
    p.apply_fill(&fill(F {
        id: 3,
        account: "b",
        sym: "BTCUSDT",
        side: Side::Sell,
        qty: "3",
        price: "110",
        fee: "0",
        t: 12,
    }))
    .unwrap();
    let b = p.position(&acct("b"), &i).unwrap();
    assert_eq!(b.unrealized_pnl, dec!(24)); // (102 - 110) x -3
    p.mark(&i, dec!(100), ts(13)).unwrap();
    assert_eq!(p.position(&acct("b"), &i).unwrap().unrealized_pnl, dec!(30));
    assert_eq!(p.account_pnl(&a), (dec!(0), dec!(-100)));
    assert_eq!(p.gross_exposure(&acct("b")), dec!(300));
    assert_eq!(p.net_exposure(&acct("b")), dec!(-300));
}

#[test]
fn trades_mark_only_without_a_mid() {
    let mut p = Positions::new();
    p.apply_fill(&simple(1, Side::Buy, "2", "100")).unwrap();
    p.on_event(&Event::Trade(TradeTick {
        instrument: inst("BTCUSDT"),
        price: Price::parse("104").unwrap(),
        quantity: Quantity::parse("1").unwrap(),
        aggressor: Some(Side::Buy),
        trade_id: "1".into(),
        ts: ts(5),
    }))
    .unwrap();
    let pos = p.position(&acct("a"), &inst("BTCUSDT")).unwrap();
    assert_eq!(pos.unrealized_pnl, dec!(8));
    // A later fill does not replace a trade mark.
    p.apply_fill(&simple(2, Side::Buy, "1", "101")).unwrap();
    let pos = p.position(&acct("a"), &inst("BTCUSDT")).unwrap();
    assert_eq!(pos.mark, Some(dec!(104)));
    assert_eq!(pos.unrealized_pnl, dec!(11)); // 104 x 3 - 301
}

#[test]
fn fees_are_separate_from_realized_pnl() {
    let mut p = Positions::new();
    let mk = |id, side, qty: &'static str, price: &'static str, fee: &'static str| {
        fill(F {
            id,
            account: "a",
            sym: "ETHUSDT",
            side,
            qty,
            price,
            fee,
            t: id as i64,
        })
    };
    p.apply_fill(&mk(1, Side::Buy, "2", "1000", "0.8")).unwrap();
    p.apply_fill(&mk(2, Side::Sell, "2", "1100", "-0.11"))
        .unwrap(); // maker rebate
    let pos = p.position(&acct("a"), &inst("ETHUSDT")).unwrap();
    assert_eq!(pos.realized_pnl, dec!(200));
    assert_eq!(pos.fees, dec!(0.69));
    assert_eq!(pos.net_realized_pnl(), dec!(199.31));
    assert_eq!(p.account_fees(&acct("a")), dec!(0.69));
    assert!(pos.is_flat() && pos.avg_price.is_none() && pos.unrealized_pnl.is_zero());
}

#[test]
fn replayed_duplicate_fills_are_ignored() {
    let mut p = Positions::new();
    let f1 = simple(7, Side::Buy, "1", "100");
    let f2 = simple(8, Side::Buy, "1", "102");
    assert!(p.apply_fill(&f1).unwrap());
    assert!(p.apply_fill(&f2).unwrap());
    let before = p.clone();
    assert!(!p.apply_fill(&f1).unwrap());
    p.on_event(&Event::OrderFilled(f2)).unwrap();
    assert_eq!(p, before);
    assert_eq!(
        p.position(&acct("a"), &inst("BTCUSDT")).unwrap().net_qty,
        dec!(2)
    );
}

#[test]
fn realized_today_follows_the_utc_date_of_fills_and_marks() {
    let mut p = Positions::new();
    let day = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
    let mk = |id, side, price: &'static str, t| {
        fill(F {
            id,
            account: "a",
            sym: "BTCUSDT",
            side,
            qty: "1",
            price,
            fee: "0.1",
            t,
        })
    };
    p.apply_fill(&mk(1, Side::Buy, "100", 10)).unwrap();
    p.apply_fill(&mk(2, Side::Sell, "90", 20)).unwrap(); // -10 on Jan 2
    p.apply_fill(&mk(3, Side::Buy, "100", 30)).unwrap();
    let a = acct("a");
    assert_eq!(
        p.account_realized_on(&a, day(2)),
        DailyPnl {
            realized: dec!(-10),
            fees: dec!(0.3)
        }
    );
    assert_eq!(p.account_realized_on(&a, day(2)).net(), dec!(-10.3));
    // Next UTC day: a sell realizes +5 and today's figures restart.
    p.apply_fill(&mk(4, Side::Sell, "105", 86_400 + 5)).unwrap();
    assert_eq!(p.account_realized_on(&a, day(3)).realized, dec!(5));
    assert_eq!(p.account_realized_on(&a, day(2)), DailyPnl::default());
    // A mark on a later day resets today's figures even without fills.
    p.mark(&inst("BTCUSDT"), dec!(100), ts(2 * 86_400)).unwrap();
    assert_eq!(p.account_realized_on(&a, day(4)), DailyPnl::default());
    assert_eq!(p.account_pnl(&a).0, dec!(-5));
}

#[test]
fn queries_by_account_and_symbol() {
    let mut p = Positions::new();
    for (id, account, sym) in [
        (1, "a", "BTCUSDT"),
        (2, "a", "ETHUSDT"),
        (3, "b", "BTCUSDT"),
    ] {
        p.apply_fill(&fill(F {
            id,
            account,
            sym,
            side: Side::Buy,
            qty: "1",
            price: "10",
            fee: "0",
            t: 1,
        }))
        .unwrap();
    }
    let syms: Vec<&str> = p
        .account_positions(&acct("a"))
        .map(|p| p.instrument.symbol.as_str())
        .collect();
    assert_eq!(syms, ["BTCUSDT", "ETHUSDT"]);
    assert_eq!(p.positions_by_symbol(&acct("a"), "ETHUSDT").len(), 1);
    assert_eq!(p.positions_by_symbol(&acct("a"), "ETHUSDT.sim").len(), 1);
    assert!(p.positions_by_symbol(&acct("b"), "ETHUSDT").is_empty());
    assert!(p.position(&acct("c"), &inst("BTCUSDT")).is_none());
    assert_eq!(p.all().count(), 3);
}

#[test]
fn position_serializes_decimals_as_strings() {
    let mut p = Positions::new();
    p.apply_fill(&simple(1, Side::Buy, "0.1", "45000.5"))
        .unwrap();
    let pos = p.position(&acct("a"), &inst("BTCUSDT")).unwrap();
    let v = serde_json::to_value(pos).unwrap();
    assert_eq!(v["net_qty"], "0.1");
    assert_eq!(v["avg_price"], "45000.5");
    assert_eq!(v["cost_basis"], "4500.05");
    assert_eq!(v["realized_pnl"], "0");
    assert_eq!(v["mark"], "45000.5");
    assert_eq!(v["day"], "2024-01-02");
    assert_eq!(v["updated_at"], "2024-01-02T00:00:01.000000000Z");
    let back: positions::Position = serde_json::from_value(v).unwrap();
    assert_eq!(&back, pos);
}

#[test]
fn exposure_saturates_instead_of_overflowing() {
    // Each position's notional (5e14 x 1e14 = 5e28) fits a Decimal; their sum (1e29) does not.
    // The account's exposure must saturate (risk then refuses more), never panic.
    let mut p = Positions::new();
    for (id, sym) in [(1, "BTCUSDT"), (2, "ETHUSDT")] {
        p.apply_fill(&fill(F {
            id,
            account: "a",
            sym,
            side: Side::Buy,
            qty: "500000000000000",
            price: "100000000000000",
            fee: "0",
            t: id as i64,
        }))
        .unwrap();
    }
    assert_eq!(p.gross_exposure(&acct("a")), model::Decimal::MAX);
    assert_eq!(p.net_exposure(&acct("a")), model::Decimal::MAX);
}
