//! The gateway service (port 8099): the platform's REST front door.
//!
//! Order entry (`POST /orders`), order/fill/position views, a live stream of execution reports
//! (server-sent events), market data, and the risk admin endpoints. Every route is described in
//! `openapi.json`, served at `/openapi.json`. Errors are `{"error":{"code","message"}}`.

mod market;
pub mod orders;

pub use auth::{Accounts, AllMarker, ApiKeys, Principal, Role};
pub use market::{MarketCache, MarketSnapshot};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use telemetry::http::ApiError;

/// The OpenAPI 3 description of every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Everything the gateway's handlers share.
#[derive(Clone)]
pub struct Gateway {
    pub market: MarketCache,
    pub engine: engine::Engine,
    pub keys: ApiKeys,
    /// Ends long-lived responses (the execution-report stream) at shutdown, so a connected
    /// client cannot keep the process from stopping.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The gateway's own routes (merge with `telemetry::service_router` for /health and /metrics).
pub fn router(gw: Gateway) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/marketdata", get(list_symbols))
        .route("/marketdata/{symbol}", get(market_data))
        .route("/orders", post(orders::submit).get(orders::list_orders))
        .route(
            "/orders/{id}",
            get(orders::get_order).delete(orders::cancel_order),
        )
        .route("/fills", get(orders::list_fills))
        .route("/positions", get(orders::list_positions))
        .route("/stream", get(orders::stream))
        .route(
            "/admin/risk",
            get(orders::risk_limits).post(orders::change_risk),
        )
        .fallback(telemetry::http::fallback)
        .with_state(gw)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn list_symbols(State(gw): State<Gateway>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "symbols": gw.market.symbols() }))
}

async fn market_data(
    State(gw): State<Gateway>,
    Path(symbol): Path<String>,
) -> Result<axum::Json<MarketSnapshot>, ApiError> {
    gw.market.snapshot(&symbol).map(axum::Json).ok_or_else(|| {
        ApiError::not_found(
            "unknown_symbol",
            format!(
                "symbol {symbol:?} has no market data; GET /marketdata lists the known symbols"
            ),
        )
    })
}
