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

#[test]
fn ptrc_commands_on_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Textbook perpetual inventory (spec rule 21): 10 @ 91, 15 @ 106, sell 20, 20 @ 115,
    // 10 @ 119, sell 23. FIFO cost of the 43 units sold = 10x91 + 15x106 + 18x115 = 4,570.
    let trades = write(
        "trades.csv",
        "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,XYZ,buy,10,91,0\n2024-01-05,A,XYZ,buy,15,106,0\n2024-01-08,A,XYZ,sell,20,120,0\n2024-01-10,A,XYZ,buy,20,115,0\n2024-01-12,A,XYZ,buy,10,119,0\n2024-01-15,A,XYZ,sell,23,120,0\n",
    );
    let out = bin()
        .args(["ptrc", "pnl", "--method", "FIFO", "--trades"])
        .arg(&trades)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let xyz = &v["accounts"][0]["symbols"][0];
    // Proceeds 43 x 120 = 5,160 minus FIFO cost 4,570 = 590 realized; 12 units left.
    assert_eq!(xyz["realized_pnl"], "590");
    assert_eq!(xyz["position_qty"], "12");
    let out = bin()
        .args(["ptrc", "pnl", "--method", "LIFO", "--trades"])
        .arg(&trades)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // LIFO cost 4,730 -> realized 430.
    assert_eq!(v["accounts"][0]["symbols"][0]["realized_pnl"], "430");
    let out = bin()
        .args(["ptrc", "pnl", "--format", "html", "--trades"])
        .arg(&trades)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));

    // IRS Publication 550, Wash Sales Example 1: bought 100 shares for $1,000, sold them for
    // $750, bought 100 shares within 30 days for $800: the $250 loss is disallowed and the new
    // shares' basis is $1,050.
    let wash = write(
        "wash.csv",
        "ts,account,symbol,side,qty,price,fee\n2023-01-03,A,XYZ,buy,100,10,0\n2023-06-01,A,XYZ,sell,100,7.5,0\n2023-06-15,A,XYZ,buy,100,8,0\n",
    );
    let out = bin()
        .args(["ptrc", "tax", "--year", "2023", "--trades"])
        .arg(&wash)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &v["rows"][0];
    // Money is reported to the cent.
    assert_eq!(row["proceeds"], "750.00");
    assert_eq!(row["cost_basis"], "1000.00");
    assert_eq!(row["adjustment_code"], "W");
    assert_eq!(row["adjustment"], "250.00");
    assert_eq!(row["gain_loss"], "0.00");
    let out = bin()
        .args([
            "ptrc", "tax", "--year", "2023", "--format", "csv", "--trades",
        ])
        .arg(&wash)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(",W,"),
        "Form 8949 layout"
    );

    // VaR and stress on a small price file.
    let positions = write("positions.csv", "symbol,qty\nXYZ,100\n");
    let mut prices = String::from("date,symbol,close\n");
    let closes = [
        100.0, 101.0, 99.0, 102.0, 98.0, 97.0, 103.0, 104.0, 100.0, 96.0, 99.0, 101.0,
    ];
    for (i, c) in closes.iter().enumerate() {
        prices.push_str(&format!("2024-01-{:02},XYZ,{c}\n", i + 1));
    }
    let prices = write("prices.csv", &prices);
    for method in ["historical", "parametric", "ewma", "montecarlo"] {
        let out = bin()
            .args([
                "ptrc",
                "var",
                "--confidence",
                "0.9",
                "--method",
                method,
                "--positions",
            ])
            .arg(&positions)
            .arg("--prices")
            .arg(&prices)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let var: f64 = v["var"].as_str().unwrap().parse().unwrap();
        let es: f64 = v["expected_shortfall"].as_str().unwrap().parse().unwrap();
        assert!(var > 0.0 && es >= var, "{method}: {v}");
        assert_eq!(v["horizon_days"], 1);
    }
    let out = bin()
        .args([
            "ptrc",
            "var",
            "--confidence",
            "0.9",
            "--backtest",
            "5",
            "--positions",
        ])
        .arg(&positions)
        .arg("--prices")
        .arg(&prices)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["backtest"]["kupiec_p_value"].is_number(), "{v}");
    assert!(v["backtest"]["exceptions"].is_number(), "{v}");
    let out = bin()
        .args(["ptrc", "stress", "--shock", "XYZ=-20%", "--positions"])
        .arg(&positions)
        .arg("--prices")
        .arg(&prices)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 100 x last close 101 x -20% = -2,020.
    assert_eq!(v["total_pnl"], "-2020.00", "{v}");

    let bad = write(
        "bad.csv",
        "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,XYZ,buy,ten,1,0\n",
    );
    let out = bin()
        .args(["ptrc", "pnl", "--trades"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv:2: column \"qty\""));
    let short = write(
        "short.csv",
        "ts,account,symbol,side,qty,price,fee\n2024-01-02,A,XYZ,sell,1,1,0\n",
    );
    let out = bin()
        .args(["ptrc", "pnl", "--long-only", "--trades"])
        .arg(&short)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("short.csv:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The terminal log is written by a thread of its own: a line logged just before `up` fails is
/// still written, before the error line, and without colour codes when stderr is not a terminal.
#[test]
fn up_writes_its_last_log_lines_before_the_error_and_without_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.yaml");
    std::fs::write(&config, "platform:\n  log_levle: info\n").unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let out = bin()
        .args(["up", "--insecure-dev", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&not_a_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = err
        .find("unknown key platform.log_levle")
        .unwrap_or_else(|| panic!("the config warning is missing: {err}"));
    let error = err
        .find("trade2026: error: creating data directory")
        .unwrap_or_else(|| panic!("the error is missing: {err}"));
    assert!(warning < error, "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped log: {err:?}"
    );
}
