//! Memory and restart work stay bounded under load (counts, never timings): after a few
//! thousand orders with a short retention and a small snapshot interval, the engine holds only
//! its open orders plus the retained ones, every consumer's events since its last snapshot stay
//! below the interval, and the paged listing still sees every order.

mod common;

use std::time::{Duration, Instant};

use common::{Platform, http, http_get};
use serde_json::Value;

/// A sample of `name` (no labels) from Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

const EVERY_EVENTS: u64 = 400;
const MAX_TERMINAL: u64 = 50;
/// A consumer reads at most this many events per batch, and checks for a snapshot after each.
const BATCH: u64 = 1_024;

#[test]
fn a_short_load_keeps_held_orders_and_unsnapshotted_events_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "TRADE2026_PLATFORM__SNAPSHOTS__EVERY_EVENTS",
            EVERY_EVENTS.to_string(),
        ),
        (
            "TRADE2026_ENGINE__RETENTION__TERMINAL_ORDER_SECS",
            "1".to_string(),
        ),
        (
            "TRADE2026_ENGINE__RETENTION__MAX_TERMINAL_ORDERS",
            MAX_TERMINAL.to_string(),
        ),
        (
            "TRADE2026_ENGINE__RETENTION__MAX_CLIENT_ORDER_IDS",
            "200".to_string(),
        ),
    ];
    let p = Platform::start_with_env(dir.path(), &["--insecure-dev"], &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(p.gateway, "/marketdata/BTCUSDT").0 != 200 {
        assert!(Instant::now() < deadline, "no market data");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut sent = 0u64;
    for i in 0..3_000u64 {
        let side = if i % 2 == 0 { "buy" } else { "sell" };
        let body = format!(
            r#"{{"account":"acct-{}","symbol":"BTCUSDT","side":"{side}","type":"market","quantity":"0.001","client_order_id":"c{i}"}}"#,
            i % 8
        );
        let (status, body) = http(p.gateway, "POST", "/orders", Some(&body));
        assert!(status == 201 || status == 422, "{status}: {body}");
        sent += 1;
    }
    // Let the gauges (refreshed every 250 ms) and the consumers catch up.
    std::thread::sleep(Duration::from_millis(600));

    let (_, text) = http_get(p.gateway, "/metrics");
    let held = metric(&text, "trade2026_engine_orders_held").expect("orders held gauge");
    let open = metric(&text, "trade2026_engine_open_orders").expect("open orders gauge");
    let ids = metric(&text, "trade2026_engine_client_order_ids").expect("client ids gauge");
    assert!(
        held <= open + MAX_TERMINAL as f64,
        "held {held}, open {open}"
    );
    assert!(ids <= open + 200.0, "client ids {ids}");

    let (_, health) = http_get(p.gateway, "/health");
    let health: Value = serde_json::from_str(&health).unwrap();
    let consumers = health["consumers"].as_array().unwrap();
    assert!(!consumers.is_empty());
    for c in consumers {
        let since = c["events_since_snapshot"].as_u64().unwrap();
        assert!(
            since <= EVERY_EVENTS + BATCH,
            "{}: {since} events since its last snapshot",
            c["consumer"]
        );
    }
    let engine = consumers
        .iter()
        .find(|c| c["consumer"] == "engine")
        .expect("the engine's snapshotter reports");
    assert!(
        engine["snapshot_seq"].as_u64().unwrap() > 0,
        "snapshots were written"
    );

    // History is not lost to the retention: every order is in the blotter.
    let orders = common::get_all(p.gateway, "/orders", "order_id");
    assert_eq!(orders.len() as u64, sent);
    p.stop();
}
