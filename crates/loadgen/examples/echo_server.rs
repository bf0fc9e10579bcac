//! A bare axum JSON echo: the ceiling our HTTP stack can reach on this machine, to compare the
//! trading path against (`wrk` and `trade2026 bench orders` both point at it).
//!
//! `cargo run --release -p loadgen --example echo_server -- [port] [--journal DIR]` (default
//! port 8098). `POST /` and `POST /orders` parse the JSON body and send it back;
//! `GET /marketdata/{symbol}` answers a fixed quote so the loader's `ioc-limit` mode can start.
//! Worker threads: TOKIO_WORKER_THREADS.
//!
//! With `--journal DIR` it is the *durable* echo: each `POST /orders` first appends an order's
//! batch (3 events, as the engine journals an IOC order's acceptance, expiry and its report) to
//! a fresh journal under `DIR` and answers once that batch is fsynced. That is the least an
//! acknowledged order costs on this machine (HTTP plus one group commit, no trading logic and no
//! consumers): the ceiling the order path's latency at 1000/s is read against.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use journal::Journal;
use journal::sample::trade;
use serde_json::{Value, json};

/// Events per acknowledged order in the durable mode.
const EVENTS_PER_ORDER: i64 = 3;

#[derive(Clone, Default)]
struct Durable {
    journal: Option<Arc<Journal>>,
    next: Arc<AtomicI64>,
}

async fn echo(
    State(durable): State<Durable>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    if let Some(journal) = &durable.journal {
        let n = durable.next.fetch_add(EVENTS_PER_ORDER, Ordering::Relaxed);
        let events = (n..n + EVENTS_PER_ORDER).map(trade).collect();
        let failed = |e: journal::JournalError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        journal
            .enqueue_batch(events)
            .map_err(failed)?
            .await
            .map_err(failed)?;
    }
    Ok(Json(body))
}

async fn marketdata(Path(symbol): Path<String>) -> Json<Value> {
    Json(
        json!({"symbol": symbol, "quote": {"bid": "44999", "ask": "45001", "mid": "45000", "spread": "2"}}),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port: u16 = 8098;
    let mut journal_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--journal" => journal_dir = Some(args.next().ok_or("--journal needs a directory")?),
            p => port = p.parse().map_err(|_| format!("bad port {p:?}"))?,
        }
    }
    // Kept until exit: the journal lives in a fresh directory removed afterwards.
    let dir = journal_dir.map(tempfile::tempdir_in).transpose()?;
    let durable = Durable {
        journal: match &dir {
            Some(d) => Some(Arc::new(Journal::open(&d.path().join("events.db"))?.0)),
            None => None,
        },
        next: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/", post(echo))
        .route("/orders", post(echo))
        .route("/marketdata/{symbol}", get(marketdata))
        .with_state(durable.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mode = if durable.journal.is_some() {
        "durable echo"
    } else {
        "echo"
    };
    println!("{mode} server on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        // Stops on SIGINT or SIGTERM (what scripts send), so the journal's directory goes too.
        .with_graceful_shutdown(async {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                },
                Err(_) => drop(tokio::signal::ctrl_c().await),
            }
        })
        .await?;
    Ok(())
}
