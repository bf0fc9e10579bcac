//! The routes: the status page, the alerts in Prometheus' shape, the OpenAPI document. The host
//! adds `/health`, `/metrics` and the JSON 404. No key is needed: like `/metrics`, the page shows
//! service health and latencies, never an account's data (and the listener is loopback unless
//! `services.host` says otherwise).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runtime::http::ApiError;

use crate::alerts::AlertsResponse;
use crate::{Monitor, now_ms};

/// The routes of `monitor`.
pub fn router(monitor: Monitor) -> Router {
    let doc = runtime::openapi::Document::new(crate::OPENAPI);
    Router::new()
        .route("/", get(status_page))
        .route("/api/v1/alerts", get(alerts))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    match doc {
                        Ok(d) => runtime::openapi::response(d.value()),
                        Err(e) => ApiError::internal(e).into_response(),
                    }
                }
            }),
        )
        .with_state(monitor)
}

async fn status_page(State(monitor): State<Monitor>) -> Response {
    let html = crate::page::render(&monitor.lock(), now_ms());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// Prometheus' `GET /api/v1/alerts`: pending and firing alerts.
async fn alerts(State(monitor): State<Monitor>) -> Response {
    let body = AlertsResponse::of(monitor.lock().alerts.active());
    axum::Json(body).into_response()
}
