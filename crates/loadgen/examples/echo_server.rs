//! A bare axum JSON echo: the ceiling our HTTP stack can reach on this machine, to compare the
//! trading path against (`wrk` and `trade2026 bench orders` both point at it).
//!
//! `cargo run --release -p loadgen --example echo_server -- [port]` (default 8098). `POST /` and
//! `POST /orders` parse the JSON body and send it back; `GET /marketdata/{symbol}` answers a
//! fixed quote so the loader's `ioc-limit` mode can start. Worker threads: TOKIO_WORKER_THREADS.

use axum::Json;
use axum::extract::Path;
use axum::routing::{get, post};
use serde_json::{Value, json};

async fn echo(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}

async fn marketdata(Path(symbol): Path<String>) -> Json<Value> {
    Json(
        json!({"symbol": symbol, "quote": {"bid": "44999", "ask": "45001", "mid": "45000", "spread": "2"}}),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad port {p:?}"))
        })?,
        None => 8098,
    };
    let app = axum::Router::new()
        .route("/", post(echo))
        .route("/orders", post(echo))
        .route("/marketdata/{symbol}", get(marketdata));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("echo server on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
