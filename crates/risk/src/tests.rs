use std::collections::HashSet;

use model::{
    AccountId, ClientOrderId, Decimal, Event, InstrumentId, Order, OrderId, OrderStatus, OrderType,
    Price, Quantity, Side, Symbol, TimeInForce, Timestamp, Venue,
};
use rust_decimal_macros::dec;

use crate::{
    LimitSet, LimitsChange, RejectCode, RiskContext, RiskEngine, RiskError, RiskLimits, Scope,
    Setting,
};

const LIMITS_YAML: &str = r#"
defaults:
  max_order_quantity: 10
  max_order_notional: "1000"
  price_collar_pct: 5
  max_position: 20
  max_gross_exposure: 5000
  max_open_orders: 3
  max_orders_per_sec: 1000
  daily_loss_limit: 500
symbols:
  LUNAUSDT:
    restricted: true
"#;

fn limits() -> RiskLimits {
    serde_yaml_ng::from_str(LIMITS_YAML).unwrap()
}

fn engine() -> RiskEngine {
    RiskEngine::new(limits()).unwrap()
}

fn acct(s: &str) -> AccountId {
    AccountId::new(s).unwrap()
}

fn inst(symbol: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(symbol).unwrap())
}

fn px(d: Decimal) -> Price {
    Price::new(d).unwrap()
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A pending order of account `a` on BTCUSDT at t = 1 s.
fn order(
    side: Side,
    t: OrderType,
    qty: Decimal,
    price: Option<Decimal>,
    stop: Option<Decimal>,
) -> Order {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Order::new(
        OrderId(id),
        ClientOrderId::new(format!("c{id}")).unwrap(),
        acct("a"),
        inst("BTCUSDT"),
        side,
        t,
        TimeInForce::Gtc,
        Quantity::new(qty).unwrap(),
        price.map(px),
        stop.map(px),
        Timestamp::from_secs(1),
    )
    .unwrap()
}

fn limit(side: Side, qty: Decimal, price: Decimal) -> Order {
    order(side, OrderType::Limit, qty, Some(price), None)
}

fn market(side: Side, qty: Decimal) -> Order {
    order(side, OrderType::Market, qty, None, None)
}

fn resting(mut o: Order) -> Order {
    o.status = OrderStatus::Accepted;
    o
}

/// Mid 100, bid 99.9, ask 100.1, flat, no open orders, no P&L.
fn ctx<'a>() -> RiskContext<'a> {
    RiskContext {
        mid: Some(dec!(100)),
        best_bid: Some(px(dec!(99.9))),
        best_ask: Some(px(dec!(100.1))),
        ..RiskContext::default()
    }
}

struct Case<'a> {
    name: &'static str,
    order: Order,
    ctx: RiskContext<'a>,
    expect: Option<RejectCode>,
}

fn case<'a>(
    name: &'static str,
    order: Order,
    ctx: RiskContext<'a>,
    expect: Option<RejectCode>,
) -> Case<'a> {
    Case {
        name,
        order,
        ctx,
        expect,
    }
}

#[test]
fn every_check_has_a_passing_and_a_failing_case() {
    use RejectCode::*;
    let resting_sell = resting(limit(Side::Sell, dec!(1), dec!(101)));
    let resting_sell_stop = resting(order(
        Side::Sell,
        OrderType::Stop,
        dec!(1),
        None,
        Some(dec!(99)),
    ));
    let mut other_account = resting(limit(Side::Sell, dec!(1), dec!(99)));
    other_account.account = acct("b");
    let mut other_instrument = resting(limit(Side::Sell, dec!(1), dec!(99)));
    other_instrument.instrument = inst("ETHUSDT");
    let resting_buy = resting(limit(Side::Buy, dec!(1), dec!(99)));
    let own = [&resting_sell, &resting_sell_stop];
    let others = [&other_account, &other_instrument, &resting_buy];
    let no_data = RiskContext::default();
    let luna = {
        let mut o = limit(Side::Buy, dec!(1), dec!(100));
        o.instrument = inst("LUNAUSDT");
        o
    };

    let cases = vec![
        case(
            "quantity at the limit",
            limit(Side::Buy, dec!(10), dec!(99)),
            ctx(),
            None,
        ),
        case(
            "quantity above the limit",
            limit(Side::Buy, dec!(10.0001), dec!(99)),
            ctx(),
            Some(MaxOrderQuantity),
        ),
        case(
            "notional at the limit",
            limit(Side::Buy, dec!(10), dec!(100)),
            ctx(),
            None,
        ),
        case(
            "notional above the limit",
            limit(Side::Buy, dec!(10), dec!(100.01)),
            ctx(),
            Some(MaxOrderNotional),
        ),
        // 9.99 x ask 100.1 = 999.999 passes; 10 x 100.1 = 1001 fails although 10 x mid = 1000.
        case(
            "market notional at the far touch passes",
            market(Side::Buy, dec!(9.99)),
            ctx(),
            None,
        ),
        case(
            "market notional uses the ask, not the mid",
            market(Side::Buy, dec!(10)),
            ctx(),
            Some(MaxOrderNotional),
        ),
        case(
            "stop notional uses the stop price",
            order(
                Side::Sell,
                OrderType::Stop,
                dec!(10),
                None,
                Some(dec!(100.5)),
            ),
            ctx(),
            Some(MaxOrderNotional),
        ),
        case(
            "buy exactly 5% above mid",
            limit(Side::Buy, dec!(1), dec!(105)),
            ctx(),
            None,
        ),
        case(
            "buy beyond the collar",
            limit(Side::Buy, dec!(1), dec!(105.01)),
            ctx(),
            Some(PriceCollar),
        ),
        case(
            "sell beyond the collar",
            limit(Side::Sell, dec!(1), dec!(94.99)),
            ctx(),
            Some(PriceCollar),
        ),
        case(
            "stop-limit within the collar of its stop",
            order(
                Side::Buy,
                OrderType::StopLimit,
                dec!(1),
                Some(dec!(125)),
                Some(dec!(120)),
            ),
            ctx(),
            None,
        ),
        case(
            "stop-limit beyond the collar of its stop",
            order(
                Side::Buy,
                OrderType::StopLimit,
                dec!(1),
                Some(dec!(127)),
                Some(dec!(120)),
            ),
            ctx(),
            Some(PriceCollar),
        ),
        case(
            "market order without any market data",
            market(Side::Buy, dec!(1)),
            no_data,
            Some(NoMarketData),
        ),
        case(
            "limit order without a mid while the collar is on",
            limit(Side::Buy, dec!(1), dec!(100)),
            no_data,
            Some(NoMarketData),
        ),
        case(
            "mid derived from bid and ask",
            limit(Side::Buy, dec!(1), dec!(100)),
            RiskContext { mid: None, ..ctx() },
            None,
        ),
        case(
            "stop order needs no market data",
            order(Side::Buy, OrderType::Stop, dec!(1), None, Some(dec!(100))),
            no_data,
            None,
        ),
        case(
            "open orders below the limit",
            limit(Side::Buy, dec!(1), dec!(100)),
            RiskContext {
                open_orders: 2,
                ..ctx()
            },
            None,
        ),
        case(
            "open orders at the limit",
            limit(Side::Buy, dec!(1), dec!(100)),
            RiskContext {
                open_orders: 3,
                ..ctx()
            },
            Some(MaxOpenOrders),
        ),
        case(
            "position reaches the limit",
            limit(Side::Buy, dec!(5), dec!(100)),
            RiskContext {
                position: dec!(15),
                ..ctx()
            },
            None,
        ),
        case(
            "position beyond the limit",
            limit(Side::Buy, dec!(5.1), dec!(99)),
            RiskContext {
                position: dec!(15),
                ..ctx()
            },
            Some(MaxPosition),
        ),
        case(
            "short position beyond the limit",
            limit(Side::Sell, dec!(6), dec!(100)),
            RiskContext {
                position: dec!(-15),
                ..ctx()
            },
            Some(MaxPosition),
        ),
        case(
            "reducing an oversized position passes",
            limit(Side::Sell, dec!(1), dec!(100)),
            RiskContext {
                position: dec!(25),
                ..ctx()
            },
            None,
        ),
        case(
            "gross exposure reaches the limit",
            limit(Side::Buy, dec!(10), dec!(100)),
            RiskContext {
                gross_exposure: dec!(4000),
                ..ctx()
            },
            None,
        ),
        case(
            "gross exposure beyond the limit",
            limit(Side::Buy, dec!(10), dec!(100)),
            RiskContext {
                gross_exposure: dec!(4000.01),
                ..ctx()
            },
            Some(MaxGrossExposure),
        ),
        case(
            "reducing exposure passes above the limit",
            limit(Side::Sell, dec!(5), dec!(100)),
            RiskContext {
                gross_exposure: dec!(9000),
                position: dec!(10),
                ..ctx()
            },
            None,
        ),
        case(
            "buy limit at the own resting sell",
            limit(Side::Buy, dec!(1), dec!(101)),
            RiskContext {
                resting_orders: &own,
                ..ctx()
            },
            Some(SelfTrade),
        ),
        case(
            "buy limit below the own resting sell",
            limit(Side::Buy, dec!(1), dec!(100.99)),
            RiskContext {
                resting_orders: &own,
                ..ctx()
            },
            None,
        ),
        case(
            "market buy against the own resting sell",
            market(Side::Buy, dec!(1)),
            RiskContext {
                resting_orders: &own,
                ..ctx()
            },
            Some(SelfTrade),
        ),
        case(
            "other account, other instrument, same side do not self-trade",
            market(Side::Buy, dec!(1)),
            RiskContext {
                resting_orders: &others,
                ..ctx()
            },
            None,
        ),
        case("restricted symbol", luna, ctx(), Some(RestrictedSymbol)),
        case(
            "daily loss just inside the limit",
            limit(Side::Buy, dec!(1), dec!(100)),
            RiskContext {
                daily_pnl: dec!(-499.99),
                ..ctx()
            },
            None,
        ),
        case(
            "daily loss at the limit",
            limit(Side::Buy, dec!(1), dec!(100)),
            RiskContext {
                daily_pnl: dec!(-500),
                ..ctx()
            },
            Some(DailyLossLimit),
        ),
    ];
    let mut seen_fail = HashSet::new();
    for c in cases {
        let got = engine().check(&c.order, &c.ctx);
        match (c.expect, got) {
            (None, Ok(())) => {}
            (Some(code), Err(r)) => {
                assert_eq!(r.code, code, "case {:?}: {}", c.name, r.message);
                assert!(!r.message.is_empty(), "case {:?}", c.name);
                seen_fail.insert(code);
            }
            (want, got) => panic!("case {:?}: expected {want:?}, got {got:?}", c.name),
        }
    }
    // Order rate and kill switch have their own tests; every other code failed above.
    let missing: Vec<_> = RejectCode::ALL
        .iter()
        .filter(|c| {
            !seen_fail.contains(c) && !matches!(c, RejectCode::OrderRate | RejectCode::KillSwitch)
        })
        .collect();
    assert!(missing.is_empty(), "no failing case for {missing:?}");
}

#[test]
fn reject_messages_name_the_limit_the_value_and_the_scope() {
    let r = engine()
        .check(&limit(Side::Buy, dec!(12), dec!(100)), &ctx())
        .unwrap_err();
    assert_eq!(
        r.message,
        "order quantity 12 exceeds max_order_quantity 10 (defaults)"
    );
    let r = engine()
        .check(&limit(Side::Buy, dec!(1), dec!(110)), &ctx())
        .unwrap_err();
    assert_eq!(
        r.message,
        "limit price 110 is 10% from the mid 100, beyond price_collar_pct 5 (defaults)"
    );
    assert_eq!(r.to_string(), format!("price_collar: {}", r.message));
}

#[test]
fn most_specific_scope_wins() {
    let yaml = r#"
defaults: { max_order_quantity: 100 }
accounts: { a: { max_order_quantity: 50 }, b: { max_order_quantity: 40 } }
symbols: { BTCUSDT: { max_order_quantity: 20 }, ETHUSDT: { max_order_quantity: ~ } }
account_symbols: { a: { BTCUSDT: { max_order_quantity: 5 }, XRPUSDT: { max_order_quantity: ~ } } }
"#;
    let limits: RiskLimits = serde_yaml_ng::from_str(yaml).unwrap();
    let eng = RiskEngine::new(limits).unwrap();
    let eff = |a: &str, s: &str| {
        eng.effective_limits(&acct(a), &Symbol::new(s).unwrap())
            .max_order_quantity
    };
    let cases = [
        (
            "account+symbol beats symbol and account",
            "a",
            "BTCUSDT",
            Some(dec!(5)),
        ),
        ("symbol beats account", "b", "BTCUSDT", Some(dec!(20))),
        ("account beats defaults", "a", "SOLUSDT", Some(dec!(50))),
        ("defaults beat built-in", "c", "SOLUSDT", Some(dec!(100))),
        ("null at symbol turns the limit off", "a", "ETHUSDT", None),
        (
            "null at account+symbol turns the limit off",
            "a",
            "XRPUSDT",
            None,
        ),
    ];
    for (name, a, s, want) in cases {
        assert_eq!(eff(a, s), want, "case {name}");
    }
    // Other limits still come from the built-in defaults.
    let e = eng.effective_limits(&acct("a"), &Symbol::new("BTCUSDT").unwrap());
    assert_eq!(e.price_collar_pct, Some(dec!(5)));
    assert_eq!(e.max_open_orders, Some(1000));
    assert!(!e.restricted);
    // And the check uses the resolved value, naming where it came from.
    let mut eng = eng;
    let r = eng
        .check(&limit(Side::Buy, dec!(6), dec!(100)), &ctx())
        .unwrap_err();
    assert_eq!(
        r.message,
        "order quantity 6 exceeds max_order_quantity 5 (account+symbol)"
    );
}

#[test]
fn restriction_can_be_lifted_for_one_account() {
    let yaml = "symbols: { BTCUSDT: { restricted: true } }\naccount_symbols: { a: { BTCUSDT: { restricted: false } } }";
    let mut eng = RiskEngine::new(serde_yaml_ng::from_str(yaml).unwrap()).unwrap();
    assert!(
        eng.check(&limit(Side::Buy, dec!(1), dec!(100)), &ctx())
            .is_ok()
    );
    let mut o = limit(Side::Buy, dec!(1), dec!(100));
    o.account = acct("b");
    assert_eq!(
        eng.check(&o, &ctx()).unwrap_err().code,
        RejectCode::RestrictedSymbol
    );
}

#[test]
fn invalid_limits_are_refused() {
    let cases = [
        (
            "negative quantity",
            "defaults: { max_order_quantity: -1 }",
            "invalid_limit",
        ),
        (
            "account-wide limit at symbol scope",
            "symbols: { BTCUSDT: { max_open_orders: 5 } }",
            "account_wide_limit_at_symbol_scope",
        ),
        (
            "account-wide limit at account+symbol scope",
            "account_symbols: { a: { BTCUSDT: { daily_loss_limit: 5 } } }",
            "account_wide_limit_at_symbol_scope",
        ),
    ];
    for (name, yaml, code) in cases {
        let limits: RiskLimits = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(
            RiskEngine::new(limits).unwrap_err().code(),
            code,
            "case {name}"
        );
    }
}

#[test]
fn daily_loss_engages_the_kill_switch_until_an_admin_resets_it() {
    let mut eng = engine();
    let a = acct("a");
    let ok = limit(Side::Buy, dec!(1), dec!(100));
    let losing = RiskContext {
        daily_pnl: dec!(-600),
        ..ctx()
    };
    let r = eng.check(&ok, &losing).unwrap_err();
    assert_eq!(r.code, RejectCode::DailyLossLimit);
    assert!(
        r.message.contains("-600") && r.message.contains("500"),
        "{}",
        r.message
    );
    // Even with the loss recovered, every order is blocked now.
    let r = eng.check(&ok, &ctx()).unwrap_err();
    assert_eq!(r.code, RejectCode::KillSwitch);
    // Other accounts trade on.
    let mut other = ok.clone();
    other.account = acct("b");
    assert!(eng.check(&other, &ctx()).is_ok());
    let ev = eng
        .reset_kill_switch(&a, "admin", Timestamp::from_secs(2))
        .unwrap();
    assert!(eng.kill_switch(&a).is_none());
    assert_eq!(
        serde_json::to_value(&ev).unwrap()["change"],
        serde_json::json!({"op": "reset_kill_switch", "account": "a"})
    );
    assert!(eng.check(&ok, &ctx()).is_ok());
    assert_eq!(
        eng.reset_kill_switch(&a, "admin", Timestamp::from_secs(3))
            .unwrap_err()
            .code(),
        "kill_switch_not_engaged"
    );
}

#[test]
fn kill_switch_is_rebuilt_from_the_journal() {
    let a = acct("a");
    let rejected = Event::OrderRejected {
        order_id: OrderId(1),
        account: a.clone(),
        code: "daily_loss_limit".into(),
        message: "daily P&L -600 reached daily_loss_limit 500".into(),
        ts: Timestamp::from_secs(1),
    };
    let mut live = engine();
    let admin_engage = live
        .update_limits(
            LimitsChange::EngageKillSwitch {
                account: acct("b"),
                reason: "manual".into(),
            },
            "admin",
            Timestamp::from_secs(1),
        )
        .unwrap();
    let mut replayed = engine();
    // Through JSON, as the journal stores it.
    for e in [&rejected, &admin_engage] {
        let e: Event = serde_json::from_str(&serde_json::to_string(e).unwrap()).unwrap();
        replayed.apply(&e).unwrap();
    }
    assert_eq!(
        replayed.kill_switch(&a).unwrap().since,
        Timestamp::from_secs(1)
    );
    assert_eq!(replayed.kill_switch(&acct("b")).unwrap().reason, "manual");
    let blocked = replayed
        .check(&limit(Side::Buy, dec!(1), dec!(100)), &ctx())
        .unwrap_err();
    assert_eq!(blocked.code, RejectCode::KillSwitch);
    let reset = replayed
        .reset_kill_switch(&a, "admin", Timestamp::from_secs(5))
        .unwrap();
    let mut again = engine();
    for e in [&rejected, &admin_engage, &reset] {
        again.apply(e).unwrap();
    }
    assert!(again.kill_switch(&a).is_none());
    assert!(again.kill_switch(&acct("b")).is_some());
}

#[test]
fn order_rate_is_a_sliding_one_second_window_on_order_timestamps() {
    let mut limits = limits();
    limits.defaults.max_orders_per_sec = Setting::Set(3);
    limits.defaults.max_open_orders = Setting::Off;
    let mut eng = RiskEngine::new(limits).unwrap();
    let at = |nanos: i64| {
        let mut o = limit(Side::Buy, dec!(1), dec!(100));
        o.created_at = Timestamp::from_nanos(nanos);
        o
    };
    let s = 1_000_000_000;
    let steps: [(&str, i64, bool); 8] = [
        ("first", 0, true),
        ("second", s / 2, true),
        ("third, 1 ns before the first leaves", s - 1, true),
        ("fourth within the second", s - 1, false),
        ("rejected orders are not counted", s - 1, false),
        ("exactly 1 s after the first: it left the window", s, true),
        ("window full again", s, false),
        ("1.5 s: the 0.5 s order left", s + s / 2, true),
    ];
    for (name, t, pass) in steps {
        let got = eng.check(&at(t), &ctx());
        match got {
            Ok(()) => assert!(pass, "step {name:?} passed"),
            Err(r) => {
                assert!(!pass, "step {name:?}: {r}");
                assert_eq!(r.code, RejectCode::OrderRate, "step {name:?}");
                assert!(r.message.contains("max_orders_per_sec 3"), "{}", r.message);
            }
        }
    }
    // Accounts have separate windows.
    let mut b = at(s + s / 2);
    b.account = acct("b");
    assert!(eng.check(&b, &ctx()).is_ok());
}

#[test]
fn limit_changes_are_journaled_validated_and_replayable() {
    let mut live = engine();
    let ts = Timestamp::from_secs(9);
    let scope = Scope {
        account: None,
        symbol: Some(Symbol::new("BTCUSDT").unwrap()),
    };
    let change = LimitsChange::SetLimits {
        scope: scope.clone(),
        limits: LimitSet {
            max_order_quantity: Setting::Set(dec!(2)),
            max_position: Setting::Off,
            ..LimitSet::default()
        },
    };
    let ev = live.update_limits(change, "ops", ts).unwrap();
    let Event::ConfigChanged {
        by,
        section,
        change,
        ..
    } = &ev
    else {
        panic!("{ev:?}")
    };
    assert_eq!((by.as_str(), section.as_str()), ("ops", "risk"));
    assert_eq!(
        *change,
        serde_json::json!({"op": "set_limits", "scope": {"symbol": "BTCUSDT"},
            "limits": {"max_order_quantity": "2", "max_position": null}})
    );
    let r = live
        .check(&limit(Side::Buy, dec!(3), dec!(100)), &ctx())
        .unwrap_err();
    assert_eq!(
        r.message,
        "order quantity 3 exceeds max_order_quantity 2 (symbol)"
    );
    assert_eq!(
        live.effective_limits(&acct("a"), &Symbol::new("BTCUSDT").unwrap())
            .max_position,
        None
    );
    // A merge keeps what it does not mention.
    let ev2 = live
        .update_limits(
            serde_json::from_value(
                serde_json::json!({"op": "set_limits", "scope": {"symbol": "BTCUSDT"},
                "limits": {"price_collar_pct": 1}}),
            )
            .unwrap(),
            "ops",
            ts,
        )
        .unwrap();
    let set = live.limits().at(&scope).unwrap();
    assert_eq!(set.max_order_quantity, Setting::Set(dec!(2)));
    assert_eq!(set.price_collar_pct, Setting::Set(dec!(1)));

    // Refused changes change nothing.
    let before = live.limits().clone();
    let bad = [
        (
            "negative",
            serde_json::json!({"op": "set_limits", "limits": {"max_order_notional": "-1"}}),
            "invalid_limit",
        ),
        (
            "account-wide at symbol",
            serde_json::json!({"op": "replace_limits", "scope": {"symbol": "X"}, "limits": {"max_orders_per_sec": 1}}),
            "account_wide_limit_at_symbol_scope",
        ),
    ];
    for (name, json, code) in bad {
        let change: LimitsChange = serde_json::from_value(json).unwrap();
        assert_eq!(
            live.update_limits(change, "ops", ts).unwrap_err().code(),
            code,
            "case {name}"
        );
        assert_eq!(live.limits(), &before, "case {name}");
    }

    // Replay rebuilds the same limits; other sections and events are ignored.
    let mut replayed = engine();
    let other = Event::ConfigChanged {
        by: "ops".into(),
        section: "feeds".into(),
        change: serde_json::json!({"anything": 1}),
        ts,
    };
    for e in [&ev, &other, &ev2] {
        replayed.apply(e).unwrap();
    }
    assert_eq!(replayed.limits(), live.limits());
    let corrupt = Event::ConfigChanged {
        by: "ops".into(),
        section: "risk".into(),
        change: serde_json::json!({"op": "explode"}),
        ts,
    };
    assert!(matches!(
        replayed.apply(&corrupt),
        Err(RiskError::BadChange(_))
    ));

    // Replacing a scope with an empty set removes the override.
    live.update_limits(
        LimitsChange::ReplaceLimits {
            scope: scope.clone(),
            limits: LimitSet::default(),
        },
        "ops",
        ts,
    )
    .unwrap();
    assert!(live.limits().at(&scope).is_none());
    assert!(
        live.check(&limit(Side::Buy, dec!(3), dec!(100)), &ctx())
            .is_ok()
    );
}

#[test]
fn limits_round_trip_through_yaml_and_builtin_defaults_apply_when_unset() {
    let l = limits();
    assert_eq!(l.defaults.max_order_notional, Setting::Set(dec!(1000)));
    let yaml = serde_yaml_ng::to_string(&l).unwrap();
    let back: RiskLimits = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(back, l);
    let empty: RiskLimits = serde_yaml_ng::from_str("{}").unwrap();
    let eng = RiskEngine::new(empty).unwrap();
    let e = eng.effective_limits(&acct("a"), &Symbol::new("BTCUSDT").unwrap());
    assert_eq!(e.price_collar_pct, Some(dec!(5)));
    assert_eq!(e.max_open_orders, Some(1000));
    assert_eq!(e.max_orders_per_sec, Some(1000));
    assert_eq!(e.daily_loss_limit, Some(dec!(100000)));
}

#[test]
fn reject_codes_are_stable_snake_case_and_documented() {
    assert_eq!(RejectCode::ALL.len(), 12);
    let names: HashSet<&str> = RejectCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), 12);
    for c in RejectCode::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        assert_eq!(
            serde_json::from_value::<RejectCode>(c.as_str().into()).unwrap(),
            c
        );
        assert!(c.description().ends_with('.'), "{c}");
    }
    assert_eq!(RejectCode::PriceCollar.as_str(), "price_collar");
    assert_eq!(RejectCode::NoMarketData.to_string(), "no_market_data");
}
