//! The load generator against an in-process mock gateway whose answer depends on the account:
//! bench-0 -> 201, bench-1 -> 422 price_collar, bench-2 -> 422 order_rate, bench-3 -> 404,
//! bench-4 -> 500. The mock also checks every body is a valid order of the requested kind
//! (400 `bad_test_order` otherwise), so counts only add up if the loader sends what it should.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use loadgen::{BenchOptions, LoadError, Mode, OrderKind};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[derive(Default)]
struct Seen {
    buys: AtomicU64,
    sells: AtomicU64,
}

async fn marketdata(Path(symbol): Path<String>) -> Json<Value> {
    Json(
        json!({"symbol": symbol, "quote": {"bid": "44999", "ask": "45001", "mid": "45000", "spread": "2"}}),
    )
}

fn valid(order: &Value) -> bool {
    let side = order["side"].as_str();
    let shape = match order["type"].as_str() {
        Some("limit") => {
            order["time_in_force"] == "ioc"
                && match side {
                    // 1% away from the mock's mid of 45000.
                    Some("buy") => order["price"] == "44550",
                    Some("sell") => order["price"] == "45450",
                    _ => false,
                }
        }
        Some("market") => order.get("price").is_none() && matches!(side, Some("buy" | "sell")),
        _ => false,
    };
    shape && order["symbol"] == "BTCUSDT" && order["quantity"] == "0.001"
}

async fn submit(
    State(seen): State<Arc<Seen>>,
    Json(order): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !valid(&order) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "bad_test_order", "message": order.to_string()}})),
        );
    }
    match order["side"].as_str() {
        Some("buy") => seen.buys.fetch_add(1, Ordering::Relaxed),
        _ => seen.sells.fetch_add(1, Ordering::Relaxed),
    };
    let reject = |code: &str| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": {"code": code, "message": "no"}, "order": {}})),
        )
    };
    match order["account"].as_str() {
        Some("bench-0") => (StatusCode::CREATED, Json(json!({"order_id": 1}))),
        Some("bench-1") => reject("price_collar"),
        Some("bench-2") => reject("order_rate"),
        Some("bench-3") => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "account_not_found"}})),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": "internal"}})),
        ),
    }
}

async fn mock() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/marketdata/{symbol}", get(marketdata))
        .route("/orders", post(submit))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

fn opts(url: String, mode: Mode, duration_ms: u64, accounts: usize) -> BenchOptions {
    BenchOptions {
        url,
        mode,
        duration: Duration::from_millis(duration_ms),
        connections: 3,
        accounts,
        ..BenchOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_every_outcome_and_sends_the_schedule() {
    let (url, seen) = mock().await;
    // 400 orders/s for 0.5 s = 200 orders, 50 per account.
    let report = loadgen::run(opts(url, Mode::Open { rate: 400 }, 500, 4))
        .await
        .unwrap();
    assert_eq!(report.scheduled, Some(200));
    assert_eq!(report.sent, 200);
    assert_eq!(report.acked, 50);
    assert_eq!(report.rejected, 100);
    assert_eq!(report.rejected_by_code["price_collar"], 50);
    assert_eq!(report.rejected_by_code["order_rate"], 50);
    assert_eq!(
        report.client_errors, 50,
        "only bench-3's 404s, no bad_test_order"
    );
    assert_eq!(report.server_errors, 0);
    assert_eq!(report.transport_errors, 0);
    assert!(!report.failed);
    // Every answered request has a latency, from schedule and from the send.
    assert_eq!(report.latency_us.count, 200);
    assert_eq!(report.service_us.count, 200);
    assert_eq!(report.send_lag_us.map(|p| p.count), Some(200));
    assert!(report.latency_us.max >= report.latency_us.p50);
    // Each account alternates sides: 25 buys and 25 sells each.
    assert_eq!(seen.buys.load(Ordering::Relaxed), 100);
    assert_eq!(seen.sells.load(Ordering::Relaxed), 100);
    let text = report.to_string();
    assert!(text.contains("order_rate=50 price_collar=50"), "{text}");
    assert!(text.ends_with("result: ok"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_fails_the_run() {
    let (url, _) = mock().await;
    let mut o = opts(url, Mode::Open { rate: 500 }, 100, 5);
    o.order = OrderKind::Market;
    let report = loadgen::run(o).await.unwrap();
    // 50 orders over 5 accounts: bench-4 answers 500 to its 10.
    assert_eq!(report.sent, 50);
    assert_eq!(report.server_errors, 10);
    assert_eq!(report.acked, 10);
    assert_eq!(report.transport_errors, 0);
    assert!(report.failed);
    assert!(
        report.error_samples[0].starts_with("500"),
        "{:?}",
        report.error_samples
    );
    assert!(
        report
            .to_string()
            .contains("result: FAILED (0 transport errors, 10 5xx)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_sends_back_to_back_and_accounts_for_every_order() {
    let (url, _) = mock().await;
    let report = loadgen::run(opts(url, Mode::Closed, 200, 1)).await.unwrap();
    assert_eq!(report.mode, "closed-loop");
    assert!(report.sent > 0);
    assert_eq!(
        report.acked, report.sent,
        "bench-0 only: everything is acked"
    );
    assert_eq!(report.service_us.count, report.sent);
    assert_eq!(report.latency_us, report.service_us);
    assert!(report.send_lag_us.is_none());
    assert!(!report.failed);
    // The JSON form round-trips.
    let json = serde_json::to_string(&report).unwrap();
    let back: loadgen::BenchReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.sent, report.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_a_transport_error() {
    // A server that reads the request and hangs up without answering.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    let mut o = opts(format!("http://{addr}"), Mode::Open { rate: 100 }, 100, 2);
    o.order = OrderKind::Market;
    let report = loadgen::run(o).await.unwrap();
    assert_eq!(report.sent, 10);
    assert_eq!(report.transport_errors, 10);
    assert_eq!(report.acked, 0);
    assert!(report.failed);
    assert!(!report.error_samples.is_empty());
    assert!(
        report
            .to_string()
            .contains("result: FAILED (10 transport errors, 0 5xx)")
    );
}

#[tokio::test]
async fn no_server_is_an_error_before_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut o = opts(format!("http://{addr}"), Mode::Closed, 100, 1);
    o.order = OrderKind::Market;
    let err = loadgen::run(o).await.unwrap_err();
    assert!(matches!(err, LoadError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn bad_options_are_refused() {
    let mut o = BenchOptions {
        connections: 0,
        ..BenchOptions::default()
    };
    assert!(matches!(
        loadgen::run(o.clone()).await,
        Err(LoadError::InvalidOption(_))
    ));
    o.connections = 1;
    o.quantity = Decimal::ZERO;
    assert!(matches!(
        loadgen::run(o.clone()).await,
        Err(LoadError::InvalidOption(_))
    ));
    o.quantity = Decimal::ONE;
    o.url = "https://127.0.0.1:1".to_string();
    assert!(matches!(loadgen::run(o).await, Err(LoadError::Url { .. })));
}
