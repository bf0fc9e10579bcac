//! The soak against an in-process mock gateway that plays the real one's answers for each kind
//! of the mix and checks every request: a market order fills (201 filled), an IOC limit 1% away
//! expires (201 expired), a GTC limit 2% away rests (201 accepted, remembered as open), a limit
//! 50% away is refused (422 price_collar), `DELETE /orders/{id}` cancels an open order (200) and
//! answers 409 for anything else; any other body is a 400 `bad_test_order`. Like the real risk
//! engine, a market order of an account with an open resting order is refused (422 self_trade). `/metrics` serves
//! an RSS gauge that grows by 1 MB per scrape. Counts only add up if the loader sends exactly
//! the documented mix and cancels only orders that rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use loadgen::Mode;
use loadgen::soak::{self, SoakKind, SoakOptions};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Default)]
struct Mock {
    next_id: AtomicU64,
    /// Open (resting) orders: id -> account.
    open: Mutex<HashMap<u64, String>>,
    /// Net position per account from market orders, in units of the order quantity.
    positions: Mutex<HashMap<String, i64>>,
    scrapes: AtomicU64,
    bad_reads: AtomicU64,
}

type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, code: &str) -> Answer {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
}

async fn marketdata(Path(symbol): Path<String>) -> Json<Value> {
    Json(json!({"symbol": symbol, "quote": {"bid": "44999", "ask": "45001", "mid": "45000"}}))
}

async fn submit(State(m): State<Arc<Mock>>, Json(o): Json<Value>) -> Answer {
    let id = m.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let account = o["account"].as_str().unwrap_or_default().to_string();
    if o["symbol"] != "BTCUSDT" || o["quantity"] != "0.001" || !account.starts_with("bench-") {
        return error(StatusCode::BAD_REQUEST, "bad_test_order");
    }
    let buy = match o["side"].as_str() {
        Some("buy") => true,
        Some("sell") => false,
        _ => return error(StatusCode::BAD_REQUEST, "bad_test_order"),
    };
    let created = |status: &str| {
        (
            StatusCode::CREATED,
            Json(json!({"order_id": id, "status": status, "account": account})),
        )
    };
    let price = o["price"].as_str();
    let tif = o["time_in_force"].as_str();
    match (o["type"].as_str(), tif, price) {
        (Some("market"), None, None) => {
            if m.open.lock().unwrap().values().any(|a| *a == account) {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "self_trade");
            }
            *m.positions
                .lock()
                .unwrap()
                .entry(account.clone())
                .or_insert(0) += if buy { 1 } else { -1 };
            created("filled")
        }
        (Some("limit"), Some("ioc"), Some(p)) if p == if buy { "44550" } else { "45450" } => {
            created("expired")
        }
        (Some("limit"), Some("gtc"), Some(p))
            if p == if buy { "44100" } else { "45900" } && account.ends_with("-maker") =>
        {
            m.open.lock().unwrap().insert(id, account.clone());
            created("accepted")
        }
        (Some("limit"), Some("ioc"), Some(p)) if p == if buy { "22500" } else { "67500" } => {
            error(StatusCode::UNPROCESSABLE_ENTITY, "price_collar")
        }
        _ => error(StatusCode::BAD_REQUEST, "bad_test_order"),
    }
}

async fn cancel(State(m): State<Arc<Mock>>, Path(id): Path<u64>) -> Answer {
    match m.open.lock().unwrap().remove(&id) {
        Some(_) => (
            StatusCode::OK,
            Json(json!({"order_id": id, "status": "canceled"})),
        ),
        None => error(StatusCode::CONFLICT, "order_already_canceled"),
    }
}

async fn list(State(m): State<Arc<Mock>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    if q.get("limit").map(String::as_str) != Some("100") || q.len() != 1 {
        m.bad_reads.fetch_add(1, Ordering::Relaxed);
    }
    Json(json!([]))
}

async fn metrics(State(m): State<Arc<Mock>>) -> String {
    let n = m.scrapes.fetch_add(1, Ordering::Relaxed);
    format!(
        "# TYPE trade2026_process_resident_memory_bytes gauge\n\
         trade2026_process_resident_memory_bytes {}\n",
        100_000_000 + n * 1_000_000
    )
}

async fn mock() -> (String, Arc<Mock>) {
    let m = Arc::new(Mock::default());
    let app = axum::Router::new()
        .route("/marketdata/{symbol}", get(marketdata))
        .route("/orders", post(submit).get(list))
        .route("/orders/{id}", delete(cancel))
        .route("/fills", get(list))
        .route("/metrics", get(metrics))
        .with_state(m.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), m)
}

fn opts(url: String, mode: Mode, duration_ms: u64, accounts: usize) -> SoakOptions {
    SoakOptions {
        url,
        mode,
        duration: Duration::from_millis(duration_ms),
        connections: 3,
        accounts,
        sample_every: Duration::from_millis(100),
        warmup: Duration::ZERO,
        mid_refresh: Duration::from_millis(100),
        ..SoakOptions::default()
    }
}

fn kind(r: &soak::SoakReport, k: SoakKind) -> &soak::KindReport {
    &r.kinds[&k]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_sends_the_documented_mix_and_cancels_only_resting_orders() {
    let (url, m) = mock().await;
    // 400 steps/s for 0.5 s = 200 steps over 2 accounts = 5 cycles of 20 visits each.
    let mut o = opts(url, Mode::Open { rate: 400 }, 500, 2);
    o.reads_per_sec = 40;
    let r = soak::run(o).await.unwrap();
    assert_eq!(r.scheduled, Some(200));
    assert_eq!(kind(&r, SoakKind::Market).sent, 80);
    assert_eq!(
        kind(&r, SoakKind::Market).outcomes,
        [("201 filled".to_string(), 80)].into()
    );
    assert_eq!(
        kind(&r, SoakKind::IocLimit).outcomes,
        [("201 expired".to_string(), 40)].into()
    );
    assert_eq!(
        kind(&r, SoakKind::Reject).outcomes,
        [("422 price_collar".to_string(), 20)].into()
    );
    assert_eq!(kind(&r, SoakKind::Reject).client_errors, 20);
    // 30 resting slots; a cancel slot finding nothing is skipped, so the two add up to 30 and
    // every cancel sent hit an open order (no 409).
    let rests = kind(&r, SoakKind::Resting);
    let cancels = kind(&r, SoakKind::Cancel);
    assert_eq!(rests.sent + r.resting.rests_replaced, 30);
    assert_eq!(rests.outcomes.get("201 accepted"), Some(&rests.sent));
    assert_eq!(
        cancels.sent + r.resting.cancels_skipped,
        30 + r.resting.rests_replaced
    );
    assert!(cancels.sent > 0);
    assert_eq!(cancels.outcomes.get("200 canceled"), Some(&cancels.sent));
    assert_eq!(r.sent + r.resting.cancels_skipped, 200);
    assert_eq!(r.sent, r.kinds.values().map(|k| k.sent).sum::<u64>());
    // What was still resting was cancelled after the run: nothing is left open.
    assert_eq!(r.resting.open_at_end, r.resting.cleanup_cancelled);
    assert_eq!(r.resting.cleanup_failed, 0);
    assert!(m.open.lock().unwrap().is_empty());
    // 5 cycles of 8 market orders alternating sides: every account is flat.
    assert!(m.positions.lock().unwrap().values().all(|p| *p == 0));
    assert_eq!((r.server_errors, r.transport_errors), (0, 0));
    assert!(!r.failed, "{r}");

    let reads = r.reads.as_ref().unwrap();
    assert_eq!((reads.scheduled, reads.sent, reads.ok), (20, 20, 20));
    assert_eq!(reads.by_path["/orders?limit=100"].sent, 10);
    assert_eq!(reads.by_path["/fills?limit=100"].sent, 10);
    assert_eq!(reads.latency_us.count, 20);
    assert_eq!(m.bad_reads.load(Ordering::Relaxed), 0);

    // The gauge grows 1 MB per scrape: samples in scrape order, peak = last, positive slope.
    let mem = &r.memory;
    assert!(mem.samples.len() >= 2, "{:?}", mem.samples);
    assert_eq!(mem.sample_errors, 0);
    for (k, s) in mem.samples.iter().enumerate() {
        assert_eq!(s.rss_bytes, 100_000_000 + k as u64 * 1_000_000);
    }
    assert_eq!(mem.peak_bytes, mem.samples.last().map(|s| s.rss_bytes));
    assert!(mem.slope_mb_per_min.unwrap() > 0.0);
    assert_eq!(r.start_mid, "45000");
    assert_eq!(r.end_mid, "45000");

    let text = r.to_string();
    assert!(
        text.contains("mix per account: market 8/20 (40%)"),
        "{text}"
    );
    assert!(text.contains("422 price_collar=20"), "{text}");
    assert!(text.contains("/fills?limit=100"), "{text}");
    assert!(text.ends_with("result: ok"), "{text}");
    // The JSON form round-trips (floats to within printing, so compare the exact parts).
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kinds"]["ioc-limit"]["outcomes"]["201 expired"], 40);
    let back: soak::SoakReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.memory.samples, r.memory.samples);
    assert_eq!(back.resting, r.resting);
    for k in SoakKind::ALL {
        assert_eq!(kind(&back, k).outcomes, kind(&r, k).outcomes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_runs_every_kind_without_errors() {
    let (url, m) = mock().await;
    let r = soak::run(opts(url, Mode::Closed, 300, 1)).await.unwrap();
    assert_eq!(r.mode, "closed-loop");
    assert!(r.send_lag_us.is_none());
    for k in SoakKind::ALL {
        assert!(kind(&r, k).sent > 0, "{k:?} never sent: {r}");
    }
    let cancels = kind(&r, SoakKind::Cancel);
    assert_eq!(cancels.outcomes.get("200 canceled"), Some(&cancels.sent));
    assert!(r.reads.is_none());
    assert!(!r.failed, "{r}");
    assert!(r.memory.samples.len() >= 2);
    assert!(m.open.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_gateway_without_the_gauge_is_reported_not_fatal() {
    // The mock's /metrics is replaced by one without the RSS line.
    let app = axum::Router::new()
        .route("/marketdata/{symbol}", get(marketdata))
        .route(
            "/orders",
            post(|| async {
                (
                    StatusCode::CREATED,
                    Json(json!({"order_id": 1, "status": "filled"})),
                )
            }),
        )
        .route("/metrics", get(|| async { "trade2026_up 1\n" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let r = soak::run(opts(
        format!("http://{addr}"),
        Mode::Open { rate: 100 },
        100,
        1,
    ))
    .await
    .unwrap();
    assert!(r.memory.samples.is_empty());
    assert!(r.memory.sample_errors >= 2);
    assert_eq!(r.memory.peak_bytes, None);
    assert!(
        r.error_samples
            .iter()
            .any(|e| e.contains("no trade2026_process_resident_memory_bytes")),
        "{:?}",
        r.error_samples
    );
}
