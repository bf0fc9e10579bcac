//! `trade2026 up` as a user runs it: it starts, prints what runs where, answers on its port with
//! moving synthetic prices, and stops cleanly on SIGTERM with every event on disk.

mod common;

use std::time::{Duration, Instant};

use common::{Platform, http_get};

fn quote_ts(addr: std::net::SocketAddr) -> Option<(String, String)> {
    let (status, body) = http_get(addr, "/marketdata/BTCUSDT");
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    Some((
        v["quote"]["ts"].as_str()?.to_string(),
        v["quote"]["mid"].as_str()?.to_string(),
    ))
}

#[test]
fn up_serves_moving_prices_and_stops_cleanly_with_everything_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    assert!(p.banner[0].starts_with("trade2026 "), "{:?}", p.banner);
    assert!(
        p.banner.iter().any(|l| l.contains("synthetic market")),
        "{:?}",
        p.banner
    );

    let (status, body) = common::health_when_ready(p.gateway);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(q) = quote_ts(p.gateway) {
            break q;
        }
        assert!(Instant::now() < deadline, "no BTCUSDT quote within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(600));
    let second = quote_ts(p.gateway).unwrap();
    assert!(
        second.0 > first.0,
        "quote timestamp did not advance: {first:?} -> {second:?}"
    );

    let (status, body) = http_get(p.gateway, "/marketdata/NOSUCH");
    assert_eq!(status, 404);
    assert!(body.contains("\"code\":\"unknown_symbol\""), "{body}");

    let (_, metrics) = http_get(p.gateway, "/metrics");
    assert!(
        metrics.contains("trade2026_journal_events_appended_total{kind=\"quote\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trade2026_journal_append_latency_seconds_count"),
        "{metrics}"
    );

    let rest = p.stop();
    let line = rest
        .lines()
        .find(|l| l.contains("stopped cleanly"))
        .expect(&rest);
    let last: u64 = line
        .split("last seq ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .expect(line);
    assert!(last > 10, "{line}");

    // Everything acknowledged is in the journal, in order, readable after the stop.
    let (journal, report) = journal::Journal::open(&dir.path().join("journal")).unwrap();
    assert_eq!(report.last_seq, last);
    let records = journal.read_from(1, usize::MAX).unwrap();
    assert_eq!(records.len() as u64, last);
    assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    journal.shutdown().unwrap();
    drop(journal);

    // A restart replays the same journal and carries on after it.
    let p = Platform::start(dir.path(), &[]);
    assert!(
        p.banner
            .iter()
            .any(|l| l.contains(&format!("last seq {last}"))),
        "{:?}",
        p.banner
    );
    p.stop();
}

#[test]
fn journal_export_writes_the_interchange_format_of_platform_history() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &["--insecure-dev"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while quote_ts(p.gateway).is_none() {
        assert!(Instant::now() < deadline, "no market data");
        std::thread::sleep(Duration::from_millis(20));
    }
    let order = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, body) = common::http(p.gateway, "POST", "/orders", Some(order));
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let order_id = v["order_id"].to_string();
    p.stop();

    let out = common::bin()
        .args(["journal", "export", "--format", "ndjson", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("quote") && kinds.contains("order_new") && kinds.contains("fill"),
        "{kinds:?}"
    );
    let new = records.iter().find(|r| r["kind"] == "order_new").unwrap();
    assert_eq!(new["order_id"].as_str(), Some(order_id.as_str()));
    assert_eq!(new["account"], "test_account");
    assert_eq!(new["qty"], "0.01");
    assert_eq!(new["order_type"], "market");
    let filled: f64 = records
        .iter()
        .filter(|r| r["kind"] == "fill" && r["order_id"].as_str() == Some(order_id.as_str()))
        .map(|r| r["qty"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        (filled - 0.01).abs() < 1e-12,
        "fills of the order sum to its quantity: {filled}"
    );

    let out = common::bin()
        .args(["journal", "export", "--data-dir", "/no/such/dir"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no journal"));
}
