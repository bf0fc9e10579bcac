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

    // No polling: every report waits for execution quality to apply what was acknowledged
    // before it (its read barrier), so the first read already has both orders.
    let (status, body) = http_get(p.quality, &format!("/quality/orders/{buy_id}"));
    assert_eq!(status, 200, "{body}");
    let order: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(order["account"], "washer");
    assert_eq!(order["symbol"], "BTCUSDT");
    assert_eq!(order["order_class"], "market");
    assert!(order["receipt_mid"].is_string(), "{order}");
    assert_eq!(order["fill_rate"], "1", "{order}");
    let (status, body) = http_get(p.quality, "/quality?account=washer");
    assert_eq!(status, 200, "{body}");
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

#[test]
fn the_plans_pnl_compute_works_after_fills_and_reports_persist_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &["--insecure-dev"]);
    poll("market data", || {
        (http_get(p.gateway, "/marketdata/BTCUSDT").0 == 200).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    for body in [
        r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.02"}"#,
        r#"{"account":"test_account","symbol":"BTCUSDT","side":"sell","type":"market","quantity":"0.01"}"#,
    ] {
        let (status, body) = http(p.gateway, "POST", "/orders", Some(body));
        assert_eq!(status, 201, "{body}");
    }
    let (_, fills) = http_get(p.gateway, "/fills?account=test_account");
    let fills: Vec<Value> = serde_json::from_str(&fills).unwrap();
    assert!(!fills.is_empty());

    // The plan's call, as written.
    let report: Value = poll("fills in ptrc", || {
        let (status, body) = http(
            p.ptrc,
            "POST",
            "/pnl/compute",
            Some(r#"{"account": "test_account", "method": "FIFO"}"#),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        (v["accounts"][0]["symbols"][0]["position_qty"] == "0.01").then_some(v)
    });
    let sym = &report["accounts"][0]["symbols"][0];
    assert_eq!(sym["symbol"], "BTCUSDT");
    assert_eq!(report["method"], "FIFO");
    assert!(
        sym["realized_pnl"].is_string() && sym["unrealized_pnl"].is_string(),
        "{sym}"
    );
    let (status, _) = http(
        p.ptrc,
        "POST",
        "/pnl/compute",
        Some(r#"{"account":"test_account"}"#),
    );
    assert_eq!(status, 200, "method is optional");
    let (status, v) = http(
        p.ptrc,
        "POST",
        "/pnl/compute",
        Some(r#"{"account":"test_account","method":"MAGIC"}"#),
    );
    assert_eq!(status, 422, "{v}");

    // Saved reports of each kind, listed and read back in each format.
    let mut ids = Vec::new();
    let year = &fills[0]["ts"].as_str().unwrap()[..4];
    let prices: Vec<String> = [100, 101, 99, 102, 98, 97, 103, 104, 100, 96, 99, 101]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"{{"date":"2024-01-{:02}","symbol":"XYZ","close":{c}}}"#,
                i + 1
            )
        })
        .collect();
    let risk_inputs = format!(
        r#""positions":{{"XYZ":"100"}},"prices":[{}]"#,
        prices.join(",")
    );
    for (path, body) in [
        (
            "/pnl/compute",
            r#"{"account":"test_account","save":true}"#.to_string(),
        ),
        (
            "/tax/1099b",
            format!(r#"{{"account":"test_account","year":{year},"save":true}}"#),
        ),
        (
            "/risk/var",
            format!(r#"{{{risk_inputs},"method":"parametric","confidence":0.95,"save":true}}"#),
        ),
        (
            "/risk/stress",
            format!(r#"{{{risk_inputs},"shocks":["XYZ=-20%"],"save":true}}"#),
        ),
        ("/compliance/scan", r#"{"save":true}"#.to_string()),
    ] {
        let (status, body) = http(p.ptrc, "POST", path, Some(&body));
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        ids.push(
            v["report_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {v}"))
                .to_string(),
        );
    }
    let (_, list) = http_get(p.ptrc, "/reports");
    let list: Value = serde_json::from_str(&list).unwrap();
    for id in &ids {
        assert!(
            list["reports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| &r["id"] == id),
            "{id} not listed"
        );
        let (status, json) = http_get(p.ptrc, &format!("/reports/{id}?format=json"));
        assert_eq!(status, 200);
        serde_json::from_str::<Value>(&json).unwrap();
        let (status, csv) = http_get(p.ptrc, &format!("/reports/{id}?format=csv"));
        assert_eq!(status, 200);
        assert!(csv.lines().count() >= 1);
    }
    for id in &ids {
        let (status, html) = http_get(p.ptrc, &format!("/reports/{id}?format=html"));
        assert_eq!(status, 200);
        assert!(
            html.contains("<svg") && !html.contains("<script"),
            "{id}: self-contained page with charts"
        );
    }
    assert!(
        dir.path()
            .join("reports")
            .join(&ids[0])
            .join("report.html")
            .is_file(),
        "persisted under the data dir"
    );
    let (status, _) = http_get(p.ptrc, "/reports/nope");
    assert_eq!(status, 404);
    p.stop();
}

#[test]
fn api_keys_scope_every_service() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    let (trader, admin) = (p.trader_key.clone(), p.admin_key.clone());
    assert!(trader.starts_with("t26_") && admin.starts_with("t26_"));
    poll("market data", || {
        (http_get(p.gateway, "/marketdata/BTCUSDT").0 == 200).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    let buy = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, _) = http(p.gateway, "POST", "/orders", Some(buy));
    assert_eq!(status, 401, "no key, no order");
    let (status, body) = common::http_as(p.gateway, &trader, "POST", "/orders", Some(buy));
    assert_eq!(status, 201, "{body}");
    let other = r#"{"account":"someone_else","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, body) = common::http_as(p.gateway, &admin, "POST", "/orders", Some(other));
    assert_eq!(status, 201, "{body}");

    // Execution quality: a trader sees its own account only; Rule 605 needs compliance/admin.
    let (status, _) = http_get(p.quality, "/quality");
    assert_eq!(status, 401);
    poll("quality", || {
        (common::http_as(p.quality, &trader, "GET", "/quality", None).0 == 200).then_some(())
    });
    let (status, _) = common::http_as(
        p.quality,
        &trader,
        "GET",
        "/quality?account=someone_else",
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = common::http_as(
        p.quality,
        &trader,
        "GET",
        "/reports/rule605?month=2026-01",
        None,
    );
    assert_eq!(status, 403);
    let (status, _) = common::http_as(
        p.quality,
        &admin,
        "GET",
        "/reports/rule605?month=2026-01",
        None,
    );
    assert_eq!(status, 200);

    // Features: market data is public; another account's positions are not found.
    let (status, _) = http_get(p.features, "/features/market_features/BTCUSDT");
    assert!(status == 200 || status == 404, "public read: {status}");
    poll("position features", || {
        (common::http_as(
            p.features,
            &admin,
            "GET",
            "/features/position_features/someone_else",
            None,
        )
        .0 == 200)
            .then_some(())
    });
    let (status, _) = common::http_as(
        p.features,
        &trader,
        "GET",
        "/features/position_features/someone_else",
        None,
    );
    assert_eq!(
        status, 404,
        "a trader cannot read another account's positions"
    );
    let (status, _) = http_get(p.features, "/features/position_features/someone_else");
    assert_eq!(status, 401);

    // ptrc reports: a trader lists and reads its own reports, not owner-wide ones.
    poll("fills in ptrc", || {
        let (s, b) = common::http_as(
            p.ptrc,
            &trader,
            "POST",
            "/pnl/compute",
            Some(r#"{"account":"test_account","save":true}"#),
        );
        (s == 200 && b.contains("BTCUSDT")).then_some(())
    });
    let (status, body) = common::http_as(
        p.ptrc,
        &admin,
        "POST",
        "/compliance/scan",
        Some(r#"{"save":true}"#),
    );
    assert_eq!(status, 200, "{body}");
    let scan_id = serde_json::from_str::<Value>(&body).unwrap()["report_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = common::http_as(p.ptrc, &trader, "GET", "/reports", None);
    let list: Value = serde_json::from_str(&list).unwrap();
    let ids: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().any(|i| i.starts_with("pnl-")), "{ids:?}");
    assert!(
        !ids.contains(&scan_id.as_str()),
        "owner-wide reports are hidden from a trader"
    );
    let (status, _) = common::http_as(p.ptrc, &trader, "GET", &format!("/reports/{scan_id}"), None);
    assert_eq!(status, 404);
    let (status, _) = common::http_as(p.ptrc, &admin, "GET", &format!("/reports/{scan_id}"), None);
    assert_eq!(status, 200);
    p.stop();
}
