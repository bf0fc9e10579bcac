//! The gateway service (port 8099): the platform's REST front door.
//!
//! So far it serves market data (`GET /marketdata/{symbol}`: the last quote and trade the
//! platform has seen); order entry arrives with the trading-path issue.

mod market;

pub use market::{MarketCache, MarketSnapshot};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use telemetry::http::ApiError;

/// Everything the gateway's handlers share.
#[derive(Clone)]
pub struct Gateway {
    pub market: MarketCache,
}

/// The gateway's own routes (merge with `telemetry::service_router` for /health and /metrics).
pub fn router(gw: Gateway) -> Router {
    Router::new()
        .route("/marketdata", get(list_symbols))
        .route("/marketdata/{symbol}", get(market_data))
        .with_state(gw)
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
            format!("symbol {symbol:?} has no market data; GET /marketdata lists the known symbols"),
        )
    })
}
