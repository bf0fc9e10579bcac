//! The gateway's HTTP contract, end to end through the real engine and journal (in a temp dir):
//! the plan's order body, error bodies naming fields, API-key scoping, idempotency, cancels,
//! fills and positions, and a property test that no request body gets a 5xx.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::{Accounts, AllMarker, ApiKeys, Gateway, MarketCache, Role};
use model::{
    AccountId, BookLevel, BookSnapshot, Event, InstrumentId, Price, Quantity, Quote, Side, Symbol,
    Timestamp, TradeTick, Venue,
};
use serde_json::{Value, json};
use tower::ServiceExt;

fn inst(sym: &str) -> InstrumentId {
    InstrumentId::new(Venue::new("sim").unwrap(), Symbol::new(sym).unwrap())
}

fn level(p: &str, q: &str) -> BookLevel {
    BookLevel {
        price: Price::parse(p).unwrap(),
        quantity: Quantity::parse(q).unwrap(),
    }
}

/// BTCUSDT quoted 44999.9 / 45000.1 with a three-level book, and one print.
fn market_events() -> Vec<Event> {
    let ts = Timestamp::from_millis(1_700_000_000_000);
    vec![
        Event::BookSnapshot(BookSnapshot {
            instrument: inst("BTCUSDT"),
            bids: vec![
                level("44999.9", "1"),
                level("44999.0", "2"),
                level("44998.0", "5"),
            ],
            asks: vec![
                level("45000.1", "0.5"),
                level("45001.0", "1"),
                level("45002.0", "5"),
            ],
            sequence: Some(1),
            ts,
        }),
        Event::Quote(Quote {
            instrument: inst("BTCUSDT"),
            bid: Price::parse("44999.9").unwrap(),
            bid_size: Quantity::parse("1").unwrap(),
            ask: Price::parse("45000.1").unwrap(),
            ask_size: Quantity::parse("0.5").unwrap(),
            ts,
        }),
        Event::Trade(TradeTick {
            instrument: inst("BTCUSDT"),
            price: Price::parse("45000.1").unwrap(),
            quantity: Quantity::parse("0.01").unwrap(),
            aggressor: Some(Side::Buy),
            trade_id: "1".into(),
            ts,
        }),
    ]
}

struct Harness {
    app: Router,
    journal: journal::Journal,
    trader_key: String,
    other_key: String,
    compliance_key: String,
    admin_key: String,
    _dir: tempfile::TempDir,
    _shutdown: tokio_util::sync::CancellationToken,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = journal::Journal::open(&dir.path().join("journal")).unwrap();
    let market = MarketCache::default();
    let events = market_events();
    for e in &events {
        market.apply(e);
    }
    journal.append_batch(events).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runner = runtime::Runner::new(
        journal::InProcessBus::new(journal.clone()),
        runtime::ConsumerMetrics::register(&telemetry::Metrics::new()),
        shutdown.clone(),
    );
    let core = gateway::start_core(
        gateway::CoreSpec {
            journal: journal.clone(),
            engine: engine::EngineConfig::default(),
            data_dir: dir.path().to_owned(),
            idempotency_window_secs: 3600,
            gauges: engine::EngineGauges::default(),
        },
        &runner,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let keys = ApiKeys::in_memory();
    let acct = |a: &str| Accounts::Some([AccountId::new(a).unwrap()].into());
    let trader_key = keys.create(Role::Trader, acct("test_account")).unwrap();
    let other_key = keys.create(Role::Trader, acct("other_account")).unwrap();
    let compliance_key = keys
        .create(Role::Compliance, Accounts::All(AllMarker::All))
        .unwrap();
    let admin_key = keys
        .create(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let app = gateway::router(Gateway {
        market,
        engine: core.engine,
        keys,
        reads: core.reads,
        shutdown: shutdown.clone(),
        streams: gateway::StreamSlots::new(8, 2, telemetry::Metrics::new()),
    });
    Harness {
        app,
        journal,
        trader_key,
        other_key,
        compliance_key,
        admin_key,
        _dir: dir,
        _shutdown: shutdown,
    }
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(Body::from(body.unwrap_or("").to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

const PLAN_ORDER: &str = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":0.1,"price":45000.0}"#;

#[tokio::test]
async fn the_plans_order_body_works_as_written() {
    let h = harness().await;
    let (status, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "accepted");
    assert_eq!(v["quantity"], "0.1", "0.1 stays exactly 0.1");
    assert_eq!(v["price"], "45000");
    assert_eq!(v["filled_quantity"], "0");
    assert_eq!(
        v["leaves_quantity"], "0.1",
        "a resting order's whole quantity is working"
    );
    assert_eq!(v["avg_fill_price"], Value::Null);
    assert_eq!(v["time_in_force"], "gtc");
    assert_eq!(v["symbol"], "BTCUSDT");
    assert!(v["order_id"].as_u64().is_some() && v["client_order_id"].is_string());
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));

    let id = v["order_id"].as_u64().unwrap();
    let (status, got) = call(
        &h.app,
        "GET",
        &format!("/orders/{id}"),
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["status"], "accepted");
}

#[tokio::test]
async fn a_market_buy_walks_the_book_and_shows_up_in_fills_and_positions() {
    let h = harness().await;
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"1"}"#;
    let (status, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "filled");
    assert_eq!(v["leaves_quantity"], "0");
    // 0.5 @ 45000.1 + 0.5 @ 45001.0 = 45000.55 average.
    assert_eq!(v["avg_fill_price"], "45000.55");

    let (_, fills) = call(
        &h.app,
        "GET",
        "/fills?symbol=BTCUSDT&order=asc",
        Some(&h.trader_key),
        None,
    )
    .await;
    let fills = fills.as_array().unwrap();
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[0]["price"], "45000.1");
    assert_eq!(fills[0]["quantity"], "0.5");
    assert_eq!(fills[0]["liquidity"], "taker");
    assert_eq!(fills[1]["price"], "45001");

    let (_, pos) = call(&h.app, "GET", "/positions", Some(&h.trader_key), None).await;
    let pos = &pos.as_array().unwrap()[0];
    assert_eq!(pos["account"], "test_account");
    assert_eq!(pos["avg_price"], "45000.55");
    assert_eq!(
        pos["net_qty"].as_str().unwrap().parse::<f64>().unwrap(),
        1.0
    );
}

#[tokio::test]
async fn repeated_client_order_id_returns_the_original_order() {
    let h = harness().await;
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"sell","type":"limit","quantity":"0.2","price":"45010","client_order_id":"my-1"}"#;
    let (s1, first) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    let (s2, second) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first["order_id"], second["order_id"]);
    let (_, all) = call(&h.app, "GET", "/orders", Some(&h.trader_key), None).await;
    assert_eq!(all.as_array().unwrap().len(), 1, "never a second order");
}

#[tokio::test]
async fn risk_rejections_answer_422_with_the_code_and_the_rejected_order() {
    let h = harness().await;
    // 10% above the mid: outside the default 5% collar.
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.1","price":"49500"}"#;
    let (status, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "price_collar");
    assert!(v["error"]["message"].as_str().unwrap().contains('%'), "{v}");
    assert_eq!(v["order"]["status"], "rejected");
    assert_eq!(
        v["order"]["leaves_quantity"], "0",
        "a rejected order has nothing working"
    );
}

#[tokio::test]
async fn bad_requests_get_4xx_json_errors_naming_the_field() {
    let h = harness().await;
    let cases: &[(&str, u16, &str, &str)] = &[
        ("{not json", 400, "malformed_json", ""),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":1,"price":1,"colour":"red"}"#,
            400,
            "unknown_field",
            "colour",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","price":1}"#,
            400,
            "missing_field",
            "quantity",
        ),
        (
            r#"{"account":"test_account","symbol":"NOPE","side":"buy","type":"limit","quantity":1,"price":1}"#,
            422,
            "unknown_symbol",
            "NOPE",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":0,"price":45000}"#,
            422,
            "invalid_order",
            "quantity",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":-1,"price":45000}"#,
            422,
            "invalid_field",
            "quantity",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"NaN","price":45000}"#,
            422,
            "invalid_field",
            "quantity",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":1e300,"price":45000}"#,
            422,
            "invalid_field",
            "quantity",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":1}"#,
            422,
            "invalid_order",
            "price",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"up","type":"limit","quantity":1,"price":1}"#,
            422,
            "invalid_field",
            "side",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":1,"price":1,"time_in_force":"forever"}"#,
            422,
            "invalid_field",
            "time_in_force",
        ),
        (
            r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":1,"price":-5}"#,
            422,
            "invalid_field",
            "price",
        ),
    ];
    for (body, status, code, mentions) in cases {
        let (s, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
        assert_eq!(s.as_u16(), *status, "{body} -> {v}");
        assert_eq!(v["error"]["code"], *code, "{body} -> {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(mentions),
            "{body} -> {v}"
        );
    }
    let (s, v) = call(
        &h.app,
        "GET",
        "/orders?colour=red",
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (400, Some("unknown_parameter"))
    );
    let (s, v) = call(
        &h.app,
        "GET",
        "/orders?status=bogus",
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (422, Some("invalid_field"))
    );
    let (s, v) = call(&h.app, "GET", "/nowhere", Some(&h.trader_key), None).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn api_keys_see_and_touch_only_their_accounts() {
    let h = harness().await;
    let (status, _) = call(&h.app, "POST", "/orders", None, Some(PLAN_ORDER)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &h.app,
        "POST",
        "/orders",
        Some("t26_nope"),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    let id = v["order_id"].as_u64().unwrap();
    // Another account's key: 404, as if the order did not exist.
    let (status, v) = call(
        &h.app,
        "GET",
        &format!("/orders/{id}"),
        Some(&h.other_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = call(
        &h.app,
        "DELETE",
        &format!("/orders/{id}"),
        Some(&h.other_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.other_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "cannot trade on an account it does not cover"
    );
    let (_, list) = call(&h.app, "GET", "/orders", Some(&h.other_key), None).await;
    assert_eq!(list, json!([]));

    // Compliance reads everything but cannot trade; only admin changes risk limits.
    let (status, _) = call(
        &h.app,
        "GET",
        &format!("/orders/{id}"),
        Some(&h.compliance_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.compliance_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&h.app, "GET", "/admin/risk", Some(&h.trader_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_ioc_partly_filled_leaves_nothing_working() {
    let h = harness().await;
    // The book offers 1.5 up to 45001: an IOC for 2 at 45001 fills 1.5 and the rest expires; it is
    // not left open (FIX LeavesQty 0 once the order is done).
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"2","price":"45001","time_in_force":"ioc"}"#;
    let (status, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["filled_quantity"], "1.5", "{v}");
    assert_eq!(v["status"], "expired", "{v}");
    assert_eq!(v["leaves_quantity"], "0", "{v}");
    let id = v["order_id"].as_u64().unwrap();
    let (_, got) = call(
        &h.app,
        "GET",
        &format!("/orders/{id}"),
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(got["leaves_quantity"], "0", "{got}");
    assert_eq!(got["status"], v["status"], "{got}");
}

#[tokio::test]
async fn cancel_lifecycle_and_cancel_of_a_filled_order() {
    let h = harness().await;
    let (_, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    let id = v["order_id"].as_u64().unwrap();
    let (status, v) = call(
        &h.app,
        "DELETE",
        &format!("/orders/{id}"),
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "canceled");
    assert_eq!(
        v["leaves_quantity"], "0",
        "a canceled order has nothing working"
    );
    let (status, v) = call(
        &h.app,
        "DELETE",
        &format!("/orders/{id}"),
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "order_already_canceled");

    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.1"}"#;
    let (_, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(v["status"], "filled");
    let id = v["order_id"].as_u64().unwrap();
    let (status, v) = call(
        &h.app,
        "DELETE",
        &format!("/orders/{id}"),
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "order_already_filled");
    let (status, _) = call(
        &h.app,
        "DELETE",
        "/orders/999999",
        Some(&h.trader_key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_changes_risk_limits_at_run_time() {
    let h = harness().await;
    let change = r#"{"op":"set_limits","scope":{"account":"test_account"},"limits":{"max_order_quantity":"0.05"}}"#;
    let (status, v) = call(
        &h.app,
        "POST",
        "/admin/risk",
        Some(&h.admin_key),
        Some(change),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "config_changed");
    let (status, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "max_order_quantity");
    let (status, v) = call(
        &h.app,
        "POST",
        "/admin/risk",
        Some(&h.admin_key),
        Some(r#"{"op":"fly"}"#),
    )
    .await;
    assert_eq!(status.as_u16() / 100, 4, "{v}");
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let h = harness().await;
    let (status, spec) = call(&h.app, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/orders",
        "/orders/{id}",
        "/fills",
        "/positions",
        "/stream",
        "/marketdata",
        "/marketdata/{symbol}",
        "/admin/risk",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "openapi.json lacks {p}");
    }
    // And the router serves each documented path (no 404 from the fallback).
    for p in paths
        .keys()
        .filter(|p| !p.contains('{') && *p != "/health" && *p != "/metrics" && *p != "/stream")
    {
        let (status, _) = call(&h.app, "GET", p, Some(&h.admin_key), None).await;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{p} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn market_data_answers_last_quote_and_trade() {
    let h = harness().await;
    let (status, v) = call(&h.app, "GET", "/marketdata/BTCUSDT", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["quote"]["bid"], "44999.9");
    assert_eq!(v["quote"]["ask"], "45000.1");
    assert_eq!(v["quote"]["mid"], "45000");
    assert_eq!(v["quote"]["spread"], "0.2");
    assert_eq!(v["trade"]["price"], "45000.1");
    assert_eq!(v["trade"]["aggressor"], "buy");
    let (status, _) = call(&h.app, "GET", "/marketdata/btcusdt", None, None).await;
    assert_eq!(status, StatusCode::OK, "lower-case symbols are accepted");
    let (status, v) = call(&h.app, "GET", "/marketdata/NOPE", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_symbol");
}

mod property_tests {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = (String, Value)> {
        let value = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[ -~]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("0.1"),
                Just("-1"),
                Just("1e30"),
                Just("NaN"),
                Just("45000"),
                Just("")
            ]
            .prop_map(|s| Value::String(s.into())),
            prop_oneof![
                Just("buy"),
                Just("sell"),
                Just("limit"),
                Just("market"),
                Just("stop"),
                Just("stop_limit"),
                Just("gtc"),
                Just("ioc"),
                Just("fok"),
                Just("day"),
                Just("BTCUSDT"),
                Just("test_account")
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        let key = prop_oneof![
            Just("account"),
            Just("symbol"),
            Just("side"),
            Just("type"),
            Just("quantity"),
            Just("price"),
            Just("stop_price"),
            Just("time_in_force"),
            Just("client_order_id"),
            Just("extra")
        ];
        (key.prop_map(String::from), value)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn no_order_body_gets_a_5xx(fields in proptest::collection::vec(field(), 0..9), raw in proptest::option::of("[ -~]{0,40}")) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let h = harness().await;
                let body = match &raw {
                    Some(r) => r.clone(),
                    None => Value::Object(fields.into_iter().collect()).to_string(),
                };
                let (status, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(&body)).await;
                prop_assert!(status.as_u16() < 500, "{body} -> {status} {v}");
                if status.is_client_error() {
                    prop_assert!(v["error"]["code"].is_string(), "{body} -> {v}");
                }
                Ok(())
            })?;
        }
    }
}

/// Fuzz target (issue 10): mutants of real request bodies against every route that takes a body,
/// through the real engine: never a 5xx, every 4xx in the JSON error shape.
#[test]
fn fuzz_request_bodies_never_get_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(harness());
    let seeds: Vec<Vec<u8>> = [
        PLAN_ORDER,
        r#"{"account":"test_account","symbol":"BTCUSDT","side":"sell","type":"stop_limit","quantity":"0.5","price":"44000","stop_price":"44100","time_in_force":"day","client_order_id":"c-1"}"#,
        r#"{"symbol":"ETHUSDT","side":"buy","type":"market","quantity":1e-3,"time_in_force":"ioc"}"#,
        r#"{"op":"set_limits","scope":{"account":"test_account"},"limits":{"max_order_quantity":"5","max_order_notional":"1000000","price_collar_pct":"5","max_position":"100"}}"#,
        r#"{"op":"set_limits","scope":{"symbol":"BTCUSDT"},"limits":{"max_order_quantity":null}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzzing::run("gateway-bodies", &seeds, |input| {
        let body = String::from_utf8_lossy(input);
        for (path, key) in [("/orders", &h.trader_key), ("/admin/risk", &h.admin_key)] {
            let (status, v) = rt.block_on(call(&h.app, "POST", path, Some(key), Some(&body)));
            assert!(status.as_u16() < 500, "{path} {body} -> {status} {v}");
            if status.is_client_error() {
                assert!(v["error"]["code"].is_string(), "{path} {body} -> {v}");
            }
        }
    });
}

/// Ids of the orders `GET /orders` lists for `key`.
async fn listed(h: &Harness, key: &str) -> Vec<u64> {
    let (status, v) = call(&h.app, "GET", "/orders?order=asc", Some(key), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_commit_shows_nothing_early_and_a_repeat_waits_for_the_original() {
    let h = harness().await;
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.1","price":"45000","client_order_id":"slow-1"}"#;
    h.journal.inject_fault(journal::Fault::DelayCommits(
        std::time::Duration::from_millis(400),
    ));
    let started = std::time::Instant::now();
    let original = {
        let app = h.app.clone();
        let key = h.trader_key.clone();
        tokio::spawn(async move {
            let r = call(&app, "POST", "/orders", Some(&key), Some(body)).await;
            (r, started.elapsed())
        })
    };
    // The engine has decided the order, but it is not on disk: no read may show it...
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        listed(&h, &h.trader_key).await.is_empty(),
        "an order that is not durable was listed"
    );
    // ...and a repeat of its client order id is answered only once the original is durable.
    let repeat = {
        let app = h.app.clone();
        let key = h.trader_key.clone();
        tokio::spawn(async move {
            let r = call(&app, "POST", "/orders", Some(&key), Some(body)).await;
            (r, started.elapsed())
        })
    };
    let ((status, first), first_at) = original.await.unwrap();
    let ((again_status, again), again_at) = repeat.await.unwrap();
    h.journal.inject_fault(journal::Fault::None);
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(again_status, StatusCode::OK, "{again}");
    assert_eq!(again["order_id"], first["order_id"]);
    // The original cannot be durable before the injected 400 ms: neither answer may come sooner.
    let durable_at = std::time::Duration::from_millis(390);
    assert!(first_at >= durable_at, "original answered at {first_at:?}");
    assert!(
        again_at >= durable_at,
        "the repeat answered at {again_at:?}, before the original was durable"
    );
    assert_eq!(
        listed(&h, &h.trader_key).await,
        vec![first["order_id"].as_u64().unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_a_503_and_leaves_no_trace() {
    let h = harness().await;
    let (status, kept) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    // The read store has the durable order before the failure: a failed commit stops the
    // platform, and its consumers with it, however far they had got.
    let kept_id = kept["order_id"].as_u64().unwrap();
    assert_eq!(listed(&h, &h.trader_key).await, vec![kept_id]);
    h.journal.inject_fault(journal::Fault::FailNextCommit);
    let (status, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["error"]["code"].is_string());
    assert!(
        v.get("order_id").is_none(),
        "no id is shown for an order that is not durable"
    );
    // Only the durable order is listed; the engine stops taking orders.
    assert_eq!(listed(&h, &h.trader_key).await, vec![kept_id]);
    let (status, _) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// Opens `/stream` with an optional `Last-Event-ID`; returns the status and the body's frames.
async fn open_stream(
    h: &Harness,
    key: &str,
    last_event_id: Option<&str>,
) -> (StatusCode, futures_util::stream::BoxStream<'static, String>) {
    use futures_util::StreamExt;
    let mut req = Request::builder()
        .method("GET")
        .uri("/stream")
        .header("authorization", format!("Bearer {key}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = h
        .app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let frames = res
        .into_body()
        .into_data_stream()
        .map(|chunk| String::from_utf8_lossy(&chunk.unwrap()).into_owned())
        .boxed();
    (status, frames)
}

/// The `(id, event)` of report frames until one with id `until` (or a 5 s wait) was seen.
async fn reports_until(
    frames: &mut futures_util::stream::BoxStream<'static, String>,
    until: u64,
) -> Vec<(u64, String)> {
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.last().is_none_or(|(id, _)| *id < until) {
        let Ok(Some(text)) = tokio::time::timeout_at(deadline, frames.next()).await else {
            break;
        };
        for frame in text.split("\n\n").filter(|f| f.contains("id:")) {
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            let id = field("id:").unwrap().parse().unwrap();
            seen.push((id, field("event:").unwrap_or_default()));
        }
    }
    seen
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_without_gaps_or_repeats() {
    let h = harness().await;
    let order = |price: &str| {
        format!(
            r#"{{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.1","price":"{price}"}}"#
        )
    };
    for price in ["44000", "44001"] {
        let (s, v) = call(
            &h.app,
            "POST",
            "/orders",
            Some(&h.trader_key),
            Some(&order(price)),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // Another account's order must never reach this key's stream.
    let other = r#"{"account":"other_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.1","price":"44002"}"#;
    let (s, _) = call(&h.app, "POST", "/orders", Some(&h.other_key), Some(other)).await;
    assert_eq!(s, StatusCode::CREATED);
    let head = h.journal.last_seq();

    // From the start: every report of test_account, in journal order.
    let (status, mut frames) = open_stream(&h, &h.trader_key, Some("0")).await;
    assert_eq!(status, StatusCode::OK);
    let all = reports_until(&mut frames, head).await;
    assert!(
        all.len() >= 4,
        "two orders, each submitted and accepted: {all:?}"
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in order: {all:?}");
    let records = h.journal.read_from(1, 1000).unwrap();
    let account_of = |seq: u64| {
        let r = records.iter().find(|r| r.seq == seq).unwrap();
        engine::ExecutionReport {
            seq,
            event: r.event.clone(),
        }
        .account()
        .map(|a| a.to_string())
    };
    assert!(
        all.iter()
            .all(|(id, _)| account_of(*id).as_deref() == Some("test_account")),
        "{all:?}"
    );
    drop(frames);

    // Resume after the first report: the rest of the backlog, then live reports, once each.
    let first = all[0].0;
    let (_, mut frames) = open_stream(&h, &h.trader_key, Some(&first.to_string())).await;
    let backlog = reports_until(&mut frames, all.last().unwrap().0).await;
    assert_eq!(
        backlog,
        all[1..].to_vec(),
        "exactly the reports after {first}"
    );
    let (s, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(&order("44003")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let live = reports_until(&mut frames, h.journal.last_seq()).await;
    assert!(!live.is_empty(), "the new order's reports arrive live");
    assert!(
        live.iter().all(|(id, _)| *id > head),
        "no repeats: {live:?}"
    );
    assert!(
        live.iter().any(|(_, kind)| kind == "order_accepted"),
        "{live:?}"
    );
}

#[tokio::test]
async fn streams_are_capped_per_key_and_a_bad_last_event_id_is_a_400() {
    let h = harness().await;
    let (status, _) = open_stream(&h, &h.trader_key, Some("seven")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The harness allows 2 streams per key.
    let (s1, keep1) = open_stream(&h, &h.trader_key, None).await;
    let (s2, keep2) = open_stream(&h, &h.trader_key, None).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    let (s3, _) = open_stream(&h, &h.trader_key, None).await;
    assert_eq!(s3, StatusCode::TOO_MANY_REQUESTS);
    let (other, _keep3) = open_stream(&h, &h.other_key, None).await;
    assert_eq!(other, StatusCode::OK, "another key has its own allowance");
    drop((keep1, keep2));
    let (again, _) = open_stream(&h, &h.trader_key, None).await;
    assert_eq!(
        again,
        StatusCode::OK,
        "a closed stream gives its place back"
    );
}

/// Found by the body fuzz target: a stop price near zero made the collar's percentage overflow
/// and stopped the engine.
#[tokio::test]
async fn a_stop_price_near_zero_is_a_collar_reject_not_a_stopped_engine() {
    let h = harness().await;
    let body = r#"{"account":"test_account","symbol":"BTCUSDT","side":"sell","type":"stop_limit","quantity":"0.5","price":"44000","stop_price":"0.0000000000000000000000000001"}"#;
    let (status, v) = call(&h.app, "POST", "/orders", Some(&h.trader_key), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "price_collar", "{v}");
    let (status, v) = call(
        &h.app,
        "POST",
        "/orders",
        Some(&h.trader_key),
        Some(PLAN_ORDER),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the engine still runs: {v}");
}
