//! `up` with a live feed from a local WebSocket server that replays a real Binance capture and
//! then goes silent: the gateway's `/marketdata`, `/marketdata/{symbol}` and `/health` say the
//! data is fresh, then stale after the idle timeout (the feed reconnects), then fresh again once
//! data resumes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Platform, fixture, http_get};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// A `ws://` server on a free port: the first connection gets the first messages and then
/// silence (without reading, so pings go unanswered); later ones wait for `resume` and then
/// send a message every 50 ms.
fn silent_then_resuming_server(messages: Vec<String>, resume: Arc<AtomicBool>) -> u16 {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            for n in 0.. {
                let (tcp, _) = listener.accept().await.unwrap();
                let (messages, resume) = (messages.clone(), resume.clone());
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    if n == 0 {
                        for m in &messages[..10] {
                            ws.send(Message::text(m.clone())).await.unwrap();
                        }
                        std::future::pending::<()>().await;
                    }
                    while !resume.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let (mut write, mut read) = ws.split();
                    tokio::spawn(async move { while read.next().await.is_some() {} });
                    for m in messages.iter().cycle() {
                        if write.send(Message::text(m.clone())).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            }
        });
    });
    port_rx.recv().unwrap()
}

fn json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls until `cond` holds on `GET path`; fails after two minutes (a bound, not a measure).
fn until(
    addr: std::net::SocketAddr,
    path: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..1200 {
        let v = json(addr, path);
        if cond(&v) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}: {}", json(addr, path));
}

#[test]
fn live_feed_freshness_shows_in_marketdata_and_health() {
    let Some(path) = fixture("marketdata/binance-spot/cryptofeed_BINANCE.ws.1.0") else {
        return;
    };
    let messages: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"stream\":\"nknusdt@bookTicker"))
        .filter_map(|l| l.split_once(": ").map(|(_, m)| m.to_owned()))
        .collect();
    assert!(messages.len() > 20);
    let resume = Arc::new(AtomicBool::new(false));
    let port = silent_then_resuming_server(messages, resume.clone());

    let dir = tempfile::tempdir().unwrap();
    let feed = format!("binance:NKNUSDT@ws://127.0.0.1:{port}/stream");
    let p = Platform::start_with_env(
        dir.path(),
        &["--feed", &feed],
        &[("TRADE2026_FEED__LIVE__IDLE_TIMEOUT_SECS", "1".to_owned())],
    );
    let symbol_stale = |v: &serde_json::Value| v["feeds"][0]["symbols"][0]["stale"].clone();

    // Data arrives: fresh everywhere.
    let v = until(p.gateway, "/marketdata", "fresh data", |v| {
        symbol_stale(v) == false && v["symbols"] == serde_json::json!(["NKNUSDT"])
    });
    assert_eq!(v["feeds"][0]["source"], "binance:NKNUSDT");
    assert_eq!(v["feeds"][0]["idle_timeout_ms"], 1000);
    let snapshot = json(p.gateway, "/marketdata/NKNUSDT");
    assert!(snapshot["quote"]["bid"].is_string(), "{snapshot}");

    // Silence: the connection is replaced after the idle timeout and the data is stale.
    let v = until(
        p.gateway,
        "/marketdata",
        "stale data after a reconnect",
        |v| symbol_stale(v) == true && v["feeds"][0]["connects"].as_u64() >= Some(2),
    );
    assert!(
        v["feeds"][0]["symbols"][0]["last_data_ms_ago"].as_u64() >= Some(1000),
        "{v}"
    );
    assert_eq!(json(p.gateway, "/marketdata/NKNUSDT")["stale"], true);
    let health = json(p.gateway, "/health");
    assert_eq!(
        health["status"], "ok",
        "freshness informs, readiness is the consumers': {health}"
    );
    assert_eq!(health["feeds"][0]["symbols"][0]["stale"], true, "{health}");

    // Data again: fresh again.
    resume.store(true, Ordering::Release);
    until(p.gateway, "/marketdata", "fresh data again", |v| {
        symbol_stale(v) == false
    });
    assert_eq!(json(p.gateway, "/marketdata/NKNUSDT")["stale"], false);
    until(p.gateway, "/health", "fresh data in /health", |v| {
        v["feeds"][0]["symbols"][0]["stale"] == false
    });
    p.stop();
}
