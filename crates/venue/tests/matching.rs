//! Table-driven known-answer cases for the paper venue's matching rules.

mod common;

use common::*;
use model::{Event, Liquidity, Liquidity::*, Order, OrderId, OrderType, Side, TimeInForce};
use rust_decimal_macros::dec;
use venue::{FeeSchedule, PaperVenue, VenueConfig, codes, reasons};

enum Step {
    Md(Event),
    New(Order),
    Cancel(u64),
}
use Step::*;

struct Case {
    name: &'static str,
    config: VenueConfig,
    steps: Vec<Step>,
    /// Kinds of every event the venue emitted, in order.
    kinds: Vec<&'static str>,
    /// (order id, quantity, price, fee, liquidity) of every fill, in order.
    fills: Vec<(u64, &'static str, &'static str, &'static str, Liquidity)>,
    /// Resting order ids and their leaves at the end.
    resting: Vec<(u64, &'static str)>,
}

fn fees(maker: &str, taker: &str) -> VenueConfig {
    VenueConfig {
        fees: FeeSchedule::new(d(maker), d(taker)),
        ..VenueConfig::default()
    }
}

fn book3() -> Event {
    snapshot(
        &[("99", "1"), ("98", "2"), ("97", "3")],
        &[("100", "1"), ("101", "2"), ("102", "3")],
        10,
    )
}

fn cases() -> Vec<Case> {
    use Side::*;
    use TimeInForce::*;
    vec![
        Case {
            // VWAP = (100x1 + 101x2 + 102x1.5) / 4.5 = 455 / 4.5; taker 5 bps of each level.
            name: "market buy walks three ask levels",
            config: fees("1", "5"),
            steps: vec![Md(book3()), New(market(1, Buy, "4.5"))],
            kinds: vec![
                "order_accepted",
                "order_filled",
                "order_filled",
                "order_filled",
            ],
            fills: vec![
                (1, "1", "100", "0.05", Taker),
                (1, "2", "101", "0.101", Taker),
                (1, "1.5", "102", "0.0765", Taker),
            ],
            resting: vec![],
        },
        Case {
            name: "market sell on a quote only: displayed size, then the rest at the quote price",
            config: VenueConfig::default(),
            steps: vec![
                Md(quote("99", "2", "100", "3", 10)),
                New(market(1, Sell, "3")),
            ],
            kinds: vec!["order_accepted", "order_filled", "order_filled"],
            fills: vec![(1, "2", "99", "0", Taker), (1, "1", "99", "0", Taker)],
            resting: vec![],
        },
        Case {
            // 99 x (1 - 10/10000) = 98.901 for the part beyond the displayed depth.
            name: "market remainder beyond depth pays the configured slippage",
            config: VenueConfig {
                market_slippage_bps: dec!(10),
                ..VenueConfig::default()
            },
            steps: vec![
                Md(quote("99", "2", "100", "3", 10)),
                New(market(1, Sell, "3")),
            ],
            kinds: vec!["order_accepted", "order_filled", "order_filled"],
            fills: vec![(1, "2", "99", "0", Taker), (1, "1", "98.901", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "market order without market data is rejected",
            config: VenueConfig::default(),
            steps: vec![New(market(1, Buy, "1"))],
            kinds: vec!["order_rejected"],
            fills: vec![],
            resting: vec![],
        },
        Case {
            name: "market buy with an empty ask side is rejected",
            config: VenueConfig::default(),
            steps: vec![
                Md(snapshot(&[("99", "1")], &[], 10)),
                New(market(1, Buy, "1")),
            ],
            kinds: vec!["order_rejected"],
            fills: vec![],
            resting: vec![],
        },
        Case {
            name: "limit rests, then a trade through it fills all of it at the limit as maker",
            config: fees("-1", "5"),
            steps: vec![
                Md(book3()),
                New(limit(1, Buy, Gtc, "2", "99.5")),
                Md(trade("99.5", "0.5", 11)), // at the limit: up to the printed size
                Md(trade("99.8", "9", 12)),   // above a buy limit: nothing
                Md(trade("99.4", "0.01", 13)), // through: everything left
            ],
            kinds: vec!["order_accepted", "order_filled", "order_filled"],
            // fees: 99.5 x 0.5 x -1 / 10000 = -0.004975; 99.5 x 1.5 x -1 / 10000 = -0.014925
            fills: vec![
                (1, "0.5", "99.5", "-0.004975", Maker),
                (1, "1.5", "99.5", "-0.014925", Maker),
            ],
            resting: vec![],
        },
        Case {
            name: "trade at the limit is shared in time priority",
            config: VenueConfig::default(),
            steps: vec![
                Md(book3()),
                New(limit(1, Sell, Gtc, "1", "105")),
                New(limit(2, Sell, Gtc, "1", "105")),
                Md(trade("105", "1.5", 11)),
            ],
            kinds: vec![
                "order_accepted",
                "order_accepted",
                "order_filled",
                "order_filled",
            ],
            fills: vec![(1, "1", "105", "0", Maker), (2, "0.5", "105", "0", Maker)],
            resting: vec![(2, "0.5")],
        },
        Case {
            name: "quote crossing a resting limit fills up to the crossing size at the limit",
            config: fees("0", "0"),
            steps: vec![
                Md(quote("98", "1", "101", "1", 10)),
                New(limit(1, Buy, Gtc, "2", "100")),
                Md(quote("99", "1", "99.5", "1.5", 11)),
            ],
            kinds: vec!["order_accepted", "order_filled"],
            fills: vec![(1, "1.5", "100", "0", Maker)],
            resting: vec![(1, "0.5")],
        },
        Case {
            name: "marketable limit takes up to its limit and rests the rest",
            config: VenueConfig::default(),
            steps: vec![Md(book3()), New(limit(1, Buy, Gtc, "5", "101"))],
            kinds: vec!["order_accepted", "order_filled", "order_filled"],
            fills: vec![(1, "1", "100", "0", Taker), (1, "2", "101", "0", Taker)],
            resting: vec![(1, "2")],
        },
        Case {
            name: "IOC partial fill and the remainder expires",
            config: VenueConfig::default(),
            steps: vec![Md(book3()), New(limit(1, Buy, Ioc, "3", "100.5"))],
            kinds: vec!["order_accepted", "order_filled", "order_expired"],
            fills: vec![(1, "1", "100", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "FOK without enough quantity within the limit expires unfilled",
            config: VenueConfig::default(),
            steps: vec![Md(book3()), New(limit(1, Buy, Fok, "3.5", "101"))],
            kinds: vec!["order_accepted", "order_expired"],
            fills: vec![],
            resting: vec![],
        },
        Case {
            name: "FOK with enough quantity fills completely",
            config: VenueConfig::default(),
            steps: vec![Md(book3()), New(limit(1, Buy, Fok, "3", "101"))],
            kinds: vec!["order_accepted", "order_filled", "order_filled"],
            fills: vec![(1, "1", "100", "0", Taker), (1, "2", "101", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "market FOK larger than the displayed depth expires",
            config: VenueConfig::default(),
            steps: vec![
                Md(book3()),
                New(order(1, Sell, OrderType::Market, Fok, "7", None, None)),
            ],
            kinds: vec!["order_accepted", "order_expired"],
            fills: vec![],
            resting: vec![],
        },
        Case {
            name: "sell stop triggered by a trade fills as a market order",
            config: fees("0", "10"),
            steps: vec![
                Md(book3()),
                Md(trade("99.5", "1", 10)),
                New(order(
                    1,
                    Sell,
                    OrderType::Stop,
                    Gtc,
                    "2",
                    None,
                    Some("98.5"),
                )),
                Md(trade("98.6", "1", 11)), // not yet
                Md(trade("98.5", "1", 12)), // at the stop: triggers, walks the bids
            ],
            kinds: vec![
                "order_accepted",
                "order_triggered",
                "order_filled",
                "order_filled",
            ],
            // 99 x 1 x 10 / 10000 = 0.099; 98 x 1 x 10 / 10000 = 0.098
            fills: vec![
                (1, "1", "99", "0.099", Taker),
                (1, "1", "98", "0.098", Taker),
            ],
            resting: vec![],
        },
        Case {
            name: "stops use the mid while no trade was seen",
            config: VenueConfig::default(),
            steps: vec![
                Md(quote("99", "5", "100", "5", 10)),
                New(order(1, Buy, OrderType::Stop, Gtc, "1", None, Some("100"))),
                Md(quote("99.5", "5", "100.5", "5", 11)), // mid 100: triggers
            ],
            kinds: vec!["order_accepted", "order_triggered", "order_filled"],
            fills: vec![(1, "1", "100.5", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "stop-limit triggered then resting, later crossed by the quote",
            config: VenueConfig::default(),
            steps: vec![
                Md(snapshot(&[("104", "1")], &[("107", "1")], 10)),
                New(order(
                    1,
                    Buy,
                    OrderType::StopLimit,
                    Gtc,
                    "2",
                    Some("106"),
                    Some("105"),
                )),
                Md(trade("105", "1", 11)), // triggers; ask 107 > 106: rests
                Md(quote("105", "1", "105.5", "5", 12)), // crosses the 106 limit: maker at 106
            ],
            kinds: vec!["order_accepted", "order_triggered", "order_filled"],
            fills: vec![(1, "2", "106", "0", Maker)],
            resting: vec![],
        },
        Case {
            name: "stop-limit that is marketable when triggered takes as a taker",
            config: VenueConfig::default(),
            steps: vec![
                Md(book3()),
                New(order(
                    1,
                    Buy,
                    OrderType::StopLimit,
                    Ioc,
                    "2",
                    Some("101"),
                    Some("100"),
                )),
                Md(trade("100", "1", 11)),
            ],
            kinds: vec![
                "order_accepted",
                "order_triggered",
                "order_filled",
                "order_filled",
            ],
            fills: vec![(1, "1", "100", "0", Taker), (1, "1", "101", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "consumed liquidity is not reused until new market data refreshes the level",
            config: VenueConfig::default(),
            steps: vec![
                Md(quote("99", "1", "100", "1", 10)),
                New(market(1, Buy, "1")),
                New(limit(2, Buy, Ioc, "1", "100")), // the 1 @ 100 is used up
                Md(trade("100.2", "1", 11)),         // a print is not a book refresh
                New(limit(3, Buy, Ioc, "1", "100")),
                Md(delta(&[], &[("100", "1")], 12)), // the level is refreshed
                New(limit(4, Buy, Ioc, "1", "100")),
            ],
            kinds: vec![
                "order_accepted",
                "order_filled",
                "order_accepted",
                "order_expired",
                "order_accepted",
                "order_expired",
                "order_accepted",
                "order_filled",
            ],
            fills: vec![(1, "1", "100", "0", Taker), (4, "1", "100", "0", Taker)],
            resting: vec![],
        },
        Case {
            name: "cancel removes a resting order so later data does not fill it",
            config: VenueConfig::default(),
            steps: vec![
                Md(book3()),
                New(limit(1, Buy, Gtc, "1", "99.5")),
                Cancel(1),
                Md(trade("90", "5", 11)),
            ],
            kinds: vec!["order_accepted"],
            fills: vec![],
            resting: vec![],
        },
    ]
}

#[test]
fn known_answer_cases() {
    for case in cases() {
        let mut v = PaperVenue::new(case.config.clone()).unwrap();
        let mut out = Vec::new();
        for (i, step) in case.steps.iter().enumerate() {
            let t = ts(100 + i as i64);
            match step {
                Md(e) => out.extend(v.on_market_data(e)),
                New(o) => out.extend(v.on_order(o, t)),
                Cancel(id) => assert!(v.cancel(OrderId(*id)), "{}: cancel", case.name),
            }
        }
        assert_eq!(kinds(&out), case.kinds, "{}: event kinds", case.name);
        let want: Vec<_> = case
            .fills
            .iter()
            .map(|(id, qt, pr, fee, l)| (*id, qt.to_string(), pr.to_string(), fee.to_string(), *l))
            .collect();
        assert_eq!(fill_rows(&out), want, "{}: fills", case.name);
        let resting: Vec<(u64, String)> = v
            .resting_orders()
            .map(|r| (r.order.order_id.0, r.leaves.to_string()))
            .collect();
        let want_resting: Vec<(u64, String)> = case
            .resting
            .iter()
            .map(|(id, l)| (*id, l.to_string()))
            .collect();
        assert_eq!(resting, want_resting, "{}: resting", case.name);
        // Fill ids are strictly increasing from the configured start.
        let ids: Vec<u64> = fills(&out).iter().map(|f| f.fill_id.0).collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{}",
            case.name
        );
    }
}

#[test]
fn market_walk_vwap_and_total_fee_are_exact() {
    let mut v = PaperVenue::new(fees("1", "5")).unwrap();
    v.on_market_data(&book3());
    let out = v.on_order(&market(1, Side::Buy, "4.5"), ts(20));
    let f = fills(&out);
    let qty: rust_decimal::Decimal = f.iter().map(|f| f.quantity.get()).sum();
    let notional: rust_decimal::Decimal = f.iter().map(|f| f.quantity.get() * f.price.get()).sum();
    let fee: rust_decimal::Decimal = f.iter().map(|f| f.fee.get()).sum();
    assert_eq!(qty, dec!(4.5));
    assert_eq!(notional, dec!(455));
    assert_eq!(notional / qty, dec!(455) / dec!(4.5)); // 101.111...
    assert_eq!(fee, dec!(0.2275)); // 455 x 5 / 10000
}

#[test]
fn rejections_and_expiries_carry_stable_codes() {
    let mut v = PaperVenue::new(VenueConfig::default()).unwrap();
    let out = v.on_order(&market(1, Side::Buy, "1"), ts(5));
    match &out[..] {
        [Event::OrderRejected { code, ts: t, .. }] => {
            assert_eq!(code, codes::NO_MARKET_DATA);
            assert_eq!(*t, ts(5));
        }
        other => panic!("unexpected {other:?}"),
    }
    v.on_market_data(&book3());
    let out = v.on_order(&limit(2, Side::Sell, TimeInForce::Fok, "7", "97"), ts(6));
    assert!(
        matches!(&out[1], Event::OrderExpired { reason, .. } if reason == reasons::FOK_UNFILLED)
    );
    let out = v.on_order(&limit(2, Side::Sell, TimeInForce::Gtc, "1", "200"), ts(7));
    assert_eq!(kinds(&out), ["order_accepted"]);
    let out = v.on_order(&limit(2, Side::Sell, TimeInForce::Gtc, "1", "200"), ts(8));
    assert!(
        matches!(&out[..], [Event::OrderRejected { code, .. }] if code == codes::DUPLICATE_ORDER_ID)
    );
}

#[test]
fn day_orders_expire_at_session_end_and_gtc_orders_stay() {
    let mut v = PaperVenue::new(VenueConfig::default()).unwrap();
    v.on_market_data(&book3());
    v.on_order(&limit(1, Side::Buy, TimeInForce::Day, "1", "90"), ts(1));
    v.on_order(&limit(2, Side::Buy, TimeInForce::Gtc, "1", "90"), ts(1));
    v.on_order(
        &order(
            3,
            Side::Sell,
            OrderType::Stop,
            TimeInForce::Day,
            "1",
            None,
            Some("50"),
        ),
        ts(1),
    );
    let out = v.expire_day_orders(ts(86_400));
    let expired: Vec<(u64, String)> = out
        .iter()
        .map(|e| match e {
            Event::OrderExpired {
                order_id, reason, ..
            } => (order_id.0, reason.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        expired,
        [(1, "day_end".to_string()), (3, "day_end".to_string())]
    );
    let left: Vec<u64> = v.resting_orders().map(|r| r.order.order_id.0).collect();
    assert_eq!(left, [2]);
    assert!(!v.cancel(OrderId(1)));
    assert!(v.cancel(OrderId(2)));
}

#[test]
fn latency_shifts_timestamps_and_hides_earlier_market_data() {
    let cfg = VenueConfig {
        latency_ns: 5_000_000_000,
        ..VenueConfig::default()
    };
    let mut v = PaperVenue::new(cfg).unwrap();
    v.on_market_data(&book3());
    let out = v.on_order(&market(1, Side::Buy, "1"), ts(100));
    assert!(out.iter().all(|e| e.ts() == ts(105)), "{out:?}");
    v.on_order(&limit(2, Side::Buy, TimeInForce::Gtc, "1", "99.5"), ts(100));
    // A print stamped before the order reached the venue cannot fill it.
    assert!(v.on_market_data(&trade("99", "1", 104)).is_empty());
    let out = v.on_market_data(&trade("99", "1", 106));
    assert_eq!(
        fill_rows(&out),
        [(2, "1".into(), "99.5".into(), "0".into(), Maker)]
    );
    assert_eq!(out[0].ts(), ts(106));
}

#[test]
fn fill_ids_continue_from_the_configured_or_set_value() {
    let cfg = VenueConfig {
        first_fill_id: 500,
        ..VenueConfig::default()
    };
    let mut v = PaperVenue::new(cfg).unwrap();
    v.on_market_data(&book3());
    let out = v.on_order(&market(1, Side::Buy, "2"), ts(1));
    let ids: Vec<u64> = fills(&out).iter().map(|f| f.fill_id.0).collect();
    assert_eq!(ids, [500, 501]);
    v.set_next_fill_id(model::FillId(900));
    let out = v.on_order(&market(2, Side::Sell, "1"), ts(2));
    assert_eq!(fills(&out)[0].fill_id.0, 900);
    assert_eq!(v.next_fill_id().0, 901);
}

#[test]
fn invalid_configs_are_refused() {
    for cfg in [
        VenueConfig {
            latency_ns: -1,
            ..VenueConfig::default()
        },
        VenueConfig {
            market_slippage_bps: dec!(10000),
            ..VenueConfig::default()
        },
        VenueConfig {
            first_fill_id: 0,
            ..VenueConfig::default()
        },
        fees("0", "10001"),
    ] {
        assert!(PaperVenue::new(cfg).is_err());
    }
}

#[test]
fn quote_overlays_a_known_book_top() {
    let mut v = PaperVenue::new(VenueConfig::default()).unwrap();
    v.on_market_data(&book3());
    // Ask 100 is gone (better than the quoted 101), 101 now shows 0.5, deeper levels stay.
    v.on_market_data(&quote("99", "4", "101", "0.5", 11));
    let m = v.market(&inst()).unwrap();
    let asks: Vec<(String, String)> = m
        .asks()
        .map(|l| (l.price.to_string(), l.quantity.to_string()))
        .collect();
    assert_eq!(
        asks,
        [("101".into(), "0.5".into()), ("102".into(), "3".into())]
    );
    assert_eq!(m.best_bid().unwrap().quantity, q("4"));
    assert_eq!(m.mid(), Some(dec!(100)));
}
