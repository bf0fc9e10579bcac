//! The offline commands, run as a user would: real fixture files in, NDJSON out, clear errors
//! and nonzero exits on bad input.

mod common;

use common::{bin, fixture};

#[test]
fn md_normalize_handles_every_fixture_file() {
    let Some(root) = fixture("marketdata") else {
        return;
    };
    // Folder -> exchange name, and the symbol of REST documents that do not name their symbol.
    let folders = [
        ("binance-spot", "binance", "BTCUSDT"),
        ("binance-usdm", "binance-futures", "BTCUSDT"),
        ("coinbase", "coinbase", "BTC-USD"),
        ("kraken", "kraken", "XBTUSDT"),
        ("bybit", "bybit", "XRPUSDT"),
        ("okx", "okx", "BTC-USDT"),
    ];
    let mut files = 0;
    for (folder, exchange, symbol) in folders {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.display().to_string();
            let mut cmd = bin();
            cmd.args(["md", "normalize", "--exchange", exchange, "--file"])
                .arg(&path);
            if path.extension().is_some_and(|e| e == "json") {
                cmd.args(["--symbol", symbol]);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{rel}: {stderr}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let events: Vec<model::Event> = stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{rel}: {e}: {l}")))
                .collect();
            assert!(!events.is_empty(), "{rel}: no events");
            assert!(
                events
                    .iter()
                    .all(|e| e.instrument().is_some_and(|i| i.venue.as_str() == exchange)),
                "{rel}: every event names its instrument on venue {exchange}"
            );
            files += 1;
        }
    }
    assert_eq!(files, 32, "every market-data fixture file was normalized");
}

#[test]
fn md_normalize_rejects_bad_input_with_a_message_and_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"e\":\"trade\",\"s\":\"BTCUSDT\",\"p\":\"abc\"}\n").unwrap();
    let out = bin()
        .args(["md", "normalize", "--exchange", "binance", "--file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trade2026: error:") && err.contains("binance"),
        "{err}"
    );

    let out = bin()
        .args(["md", "normalize", "--exchange", "nasdaq", "--file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nasdaq") && err.contains("binance-futures"),
        "lists valid names: {err}"
    );

    let out = bin()
        .args([
            "md",
            "normalize",
            "--exchange",
            "binance",
            "--file",
            "/no/such/file",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file"));
}

#[test]
fn md_replay_as_fast_as_possible_reproduces_the_normalized_events() {
    let Some(path) = fixture("marketdata/okx/cryptofeed_OKX.ws.1.0") else {
        return;
    };
    let normalized = bin()
        .args(["md", "normalize", "--exchange", "okx", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(normalized.status.success());
    let replayed = bin()
        .args(["md", "replay", "--exchange", "okx", "--speed", "max"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(
        String::from_utf8(replayed.stdout).unwrap(),
        String::from_utf8(normalized.stdout).unwrap()
    );
}

#[test]
fn config_check_reports_unknown_keys_and_wrong_types() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ptrc.yaml");
    std::fs::write(&file, "modules:\n  tax:\n    wash_sale_windw_days: 30\n").unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("modules.tax.wash_sale_windw_days"));

    std::fs::write(&file, "modules:\n  risk:\n    var_confidence: high\n").unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ptrc.yaml") && err.contains("modules.risk.var_confidence"),
        "{err}"
    );
}

/// Quote 10.00 / 10.02 (mid 10.01); a market buy of 100 fills at 10.02 and a market sell of 100
/// at 10.00; the same owner's two accounts also print against each other (one trade id).
const EVENTS: &str = r#"{"ts":"2024-03-04T14:30:00Z","kind":"quote","symbol":"XYZ","bid":"10.00","ask":"10.02","bid_size":500,"ask_size":500}
{"ts":"2024-03-04T14:30:01Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":null,"order_id":"b1","order_type":"market","tif":"day"}
{"ts":"2024-03-04T14:30:01.250Z","kind":"fill","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":"10.02","order_id":"b1","fill_id":"f1","trade_id":"t1","liquidity":"taker"}
{"ts":"2024-03-04T14:30:02Z","kind":"order_new","account":"A2","owner":"O1","symbol":"XYZ","side":"sell","qty":100,"price":null,"order_id":"s1","order_type":"market","tif":"day"}
{"ts":"2024-03-04T14:30:02.500Z","kind":"fill","account":"A2","owner":"O1","symbol":"XYZ","side":"sell","qty":100,"price":"10.00","order_id":"s1","fill_id":"f2","trade_id":"t2","liquidity":"taker"}
{"ts":"2024-03-04T14:30:03Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":10,"price":"10.01","order_id":"w1","order_type":"limit","tif":"day"}
{"ts":"2024-03-04T14:30:03Z","kind":"order_new","account":"A2","owner":"O1","symbol":"XYZ","side":"sell","qty":10,"price":"10.01","order_id":"w2","order_type":"limit","tif":"day"}
{"ts":"2024-03-04T14:30:04Z","kind":"fill","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":10,"price":"10.01","order_id":"w1","fill_id":"f3","trade_id":"t3","liquidity":"maker"}
{"ts":"2024-03-04T14:30:04Z","kind":"fill","account":"A2","owner":"O1","symbol":"XYZ","side":"sell","qty":10,"price":"10.01","order_id":"w2","fill_id":"f4","trade_id":"t3","liquidity":"taker"}
{"ts":"2024-03-04T14:40:00Z","kind":"quote","symbol":"XYZ","bid":"10.00","ask":"10.02","bid_size":500,"ask_size":500}
"#;

#[test]
fn execq_and_surveil_run_on_an_event_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, EVENTS).unwrap();

    let out = bin()
        .args(["execq", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b1 = &v["orders"]["b1"];
    // Buy at the offer: effective spread 2 x (10.02 - 10.01) = 0.02, E/Q = 0.02 / 0.02 = 1,
    // arrival cost (10.02 - 10.01) / 10.01 x 1e4 = 9.99 bps.
    assert_eq!(b1["receipt_mid"], "10.01");
    assert_eq!(b1["order_class"], "market");
    assert_eq!(b1["avg_effective_spread"], "0.02");
    assert_eq!(b1["eq_ratio"], "1");
    assert_eq!(b1["fill_rate"], "1");
    assert!(
        b1["arrival_cost_bps"].as_str().unwrap().starts_with("9.99"),
        "{b1}"
    );
    assert_eq!(b1["time_to_first_fill_ms"], 250);
    // The sell at the bid costs the same, with the sign convention positive = cost.
    assert!(
        v["orders"]["s1"]["arrival_cost_bps"]
            .as_str()
            .unwrap()
            .starts_with("9.99")
    );

    let out = bin()
        .args(["execq", "--format", "html", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    let out = bin()
        .args(["execq", "--format", "csv", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .contains("order_id")
    );

    let out = bin()
        .args(["surveil", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alerts = v["alerts"].as_array().unwrap();
    let self_match = alerts
        .iter()
        .find(|a| a["type"] == "WASH_TRADE" && a["subtype"] == "cross_account_same_owner")
        .unwrap_or_else(|| panic!("no self-match alert in {v}"));
    assert_eq!(self_match["owner"], "O1");
    assert_eq!(self_match["accounts"], serde_json::json!(["A1", "A2"]));
    // Re-running gives the same keys.
    let again = bin()
        .args(["surveil", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    assert_eq!(again.stdout, out.stdout);

    let params = dir.path().join("p.yaml");
    std::fs::write(&params, "wash_windw_ms: 5\n").unwrap();
    let out = bin()
        .args(["surveil", "--events"])
        .arg(&events)
        .arg("--params")
        .arg(&params)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wash_windw_ms"));

    let bad = dir.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        format!("{}\n{{\"ts\":\"nope\"}}\n", EVENTS.lines().next().unwrap()),
    )
    .unwrap();
    let out = bin()
        .args(["execq", "--events"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.ndjson:2:"));
}
