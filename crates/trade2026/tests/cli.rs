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
