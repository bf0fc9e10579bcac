//! Issue 6 end to end: with a Redis online store configured, `up` serves fresh features on 6566
//! (Feast's feature-server API and a plain JSON read) and writes the plan's
//! `feast:market_features:BTCUSDT` document into Redis.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Platform, http, http_get};
use serde_json::Value;

/// `GET key` over RESP, enough for a test without a client library.
fn redis_get(addr: &str, key: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).ok()?;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = Vec::new();
    loop {
        let n = s.read(&mut buf).ok()?;
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.starts_with("$-1") {
            return None;
        }
        if let Some((head, rest)) = text.split_once("\r\n") {
            let len: usize = head.trim_start_matches('$').parse().ok()?;
            if rest.len() >= len {
                return Some(rest[..len].to_string());
            }
        }
        if n == 0 {
            return None;
        }
    }
}

fn redis_addr() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    if std::net::TcpStream::connect(&addr).is_ok() {
        return Some(addr);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Redis at {url} is required under CI"
    );
    eprintln!("skipping: no Redis at {url}");
    None
}

#[test]
fn features_are_served_on_6566_and_materialized_to_redis() {
    let Some(redis) = redis_addr() else { return };
    let dir = tempfile::tempdir().unwrap();
    let started = model::Timestamp::now();
    let p = Platform::start_with_env(
        dir.path(),
        &["--insecure-dev"],
        &[("TRADE2026_ONLINE_STORE", format!("redis://{redis}"))],
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let row: Value = loop {
        let (status, body) = http_get(p.features, "/features/market_features/BTCUSDT");
        if status == 200 {
            break serde_json::from_str(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no market features: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(row["values"]["last_price"].as_f64().unwrap() > 0.0, "{row}");
    assert!(row["values"]["mid"].as_f64().unwrap() > 0.0, "{row}");

    let (status, body) = http(
        p.features,
        "POST",
        "/get-online-features",
        Some(
            r#"{"features":["market_features:mid","market_features:spread_bps"],"entities":{"symbol":["BTCUSDT","NOPE"]}}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["metadata"]["feature_names"],
        serde_json::json!(["symbol", "mid", "spread_bps"])
    );
    assert_eq!(v["results"][1]["statuses"][0], "PRESENT");
    assert_eq!(v["results"][1]["statuses"][1], "NOT_FOUND");
    assert!(v["results"][1]["values"][0].as_f64().unwrap() > 0.0);
    let (status, _) = http(
        p.features,
        "POST",
        "/get-online-features",
        Some(r#"{"features":["nope:x"],"entities":{"symbol":["BTCUSDT"]}}"#),
    );
    assert_eq!(status, 422);

    // The plan's check: GET feast:market_features:BTCUSDT returns fresh JSON.
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc: Value = loop {
        if let Some(text) = redis_get(&redis, "feast:market_features:BTCUSDT") {
            let v: Value = serde_json::from_str(&text).unwrap();
            let ts = v["event_ts"]
                .as_str()
                .map(|t| model::Timestamp::parse_rfc3339(t).unwrap());
            if ts.is_some_and(|t| t >= started) {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no fresh feast:market_features:BTCUSDT in Redis"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(doc.to_string().contains("last_price"), "{doc}");

    let (status, body) = http_get(p.features, "/status");
    assert_eq!(status, 200);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["views"]["market_features"]["stale"], false, "{s}");
    assert!(
        s["online_store"]["rows_written"].as_u64().unwrap() > 0,
        "{s}"
    );
    let (_, metrics) = http_get(p.features, "/metrics");
    assert!(
        metrics.contains("trade2026_feature_freshness_seconds{view=\"market_features\"}"),
        "{metrics}"
    );
    p.stop();

    // Offline: point-in-time history from the journal, materialization, the Feast repo.
    let entities = dir.path().join("entities.csv");
    std::fs::write(
        &entities,
        format!(
            "entity,ts\nBTCUSDT,2000-01-01T00:00:00Z\nBTCUSDT,{}\n",
            model::Timestamp::now()
        ),
    )
    .unwrap();
    let out = common::bin()
        .args([
            "features",
            "history",
            "--view",
            "market_features",
            "--entities",
        ])
        .arg(&entities)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].contains("last_price"), "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "last_price").unwrap();
    assert_eq!(
        lines[1].split(',').nth(col),
        Some(""),
        "nothing is known in 2000: no leakage from the future"
    );
    assert!(
        lines[2]
            .split(',')
            .nth(col)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0,
        "{csv}"
    );

    let out = common::bin()
        .args(["features", "materialize", "--once", "--data-dir"])
        .arg(dir.path())
        .env("TRADE2026_ONLINE_STORE", format!("redis://{redis}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("materialized"));

    let repo = dir.path().join("feast_repo");
    let out = common::bin()
        .args(["features", "init-feast-repo"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = std::fs::read_to_string(repo.join("feature_store.yaml")).unwrap();
    assert!(
        yaml.contains("entity_key_serialization_version: 3"),
        "{yaml}"
    );
    let py = std::fs::read_to_string(repo.join("features.py")).unwrap();
    assert!(
        py.contains("market_features") && py.contains("last_price"),
        "{py}"
    );
}
