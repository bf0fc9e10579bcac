//! Issue 4 end to end: orders sent through the gateway show up in execution quality (8110) as
//! JSON and metrics, and a wash round trip driven through the gateway raises an alert on the
//! compliance scanner (8111).

mod common;

use std::time::{Duration, Instant};

use common::{Platform, http, http_get};
use serde_json::Value;

fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn gateway_orders_reach_execution_quality_and_a_wash_round_trip_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &["--insecure-dev"]);
    poll("market data", || {
        (http_get(p.gateway, "/marketdata/BTCUSDT").0 == 200).then_some(())
    });
    // Let the quote settle into the engine's venue.
    std::thread::sleep(Duration::from_millis(200));

    let buy =
        r#"{"account":"washer","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let sell = r#"{"account":"washer","symbol":"BTCUSDT","side":"sell","type":"market","quantity":"0.01"}"#;
    let (status, body) = http(p.gateway, "POST", "/orders", Some(buy));
    assert_eq!(status, 201, "{body}");
    let buy_id = serde_json::from_str::<Value>(&body).unwrap()["order_id"].to_string();
    let (status, body) = http(p.gateway, "POST", "/orders", Some(sell));
    assert_eq!(status, 201, "{body}");

    let order: Value = poll("the order in execution quality", || {
        let (status, body) = http_get(p.quality, &format!("/quality/orders/{buy_id}"));
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    });
    assert_eq!(order["account"], "washer");
    assert_eq!(order["symbol"], "BTCUSDT");
    assert_eq!(order["order_class"], "market");
    assert!(order["receipt_mid"].is_string(), "{order}");
    assert_eq!(order["fill_rate"], "1", "{order}");

    let (status, body) = http_get(p.quality, "/quality?account=washer");
    assert_eq!(status, 200);
    let q: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(q["aggregates"]["overall"]["orders"], 2, "{q}");

    let (_, metrics) = http_get(p.quality, "/metrics");
    assert!(
        metrics.contains("trade2026_execq_effective_spread_bps_bucket{")
            && metrics.contains("symbol=\"BTCUSDT\""),
        "{metrics}"
    );

    let month = &order["receipt_ts"].as_str().unwrap()[..7];
    let (status, html) = http_get(
        p.quality,
        &format!("/reports/rule605?month={month}&format=html"),
    );
    assert_eq!(status, 200);
    assert!(html.contains("<svg"), "the Rule 605 page has charts");
    let (status, _) = http_get(p.quality, "/reports/rule605?month=2026-13");
    assert_eq!(status, 422);

    let alerts: Vec<Value> = poll("a WASH_TRADE alert", || {
        let (status, body) = http_get(p.scanner, "/alerts?type=WASH_TRADE");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let list = v["alerts"].as_array().unwrap().clone();
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(alerts[0]["owner"], "washer");
    assert_eq!(alerts[0]["subtype"], "round_trip");
    p.stop();
}
