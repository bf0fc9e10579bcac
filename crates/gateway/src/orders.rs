//! Order entry and the trading views: orders, fills, positions, the execution-report stream and
//! the risk admin endpoints.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::{EngineError, Outcome, QueryAnswer};
use futures_util::{Stream, StreamExt};
use model::{
    AccountId, ClientOrderId, InstrumentId, Order, OrderId, OrderStatus, OrderType, Price,
    Quantity, Side, Symbol, TimeInForce, Timestamp,
};
use oms::{NewOrder, OrderFilter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use telemetry::http::{ApiError, ErrorDetail};

use crate::Gateway;
use auth::{Principal, Role};

/// `POST /orders` body. Numbers may be JSON numbers or strings; both are kept exact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Optional when the API key covers exactly one account.
    pub account: Option<AccountId>,
    pub symbol: String,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub quantity: Quantity,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub time_in_force: Option<TimeInForce>,
    pub client_order_id: Option<ClientOrderId>,
}

/// An order as the API shows it: the model's order plus its symbol and what is left to fill.
#[derive(Debug, Serialize)]
pub struct OrderView {
    #[serde(flatten)]
    pub order: Order,
    pub symbol: String,
    pub leaves_quantity: Quantity,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        OrderView {
            symbol: order.instrument.symbol.to_string(),
            leaves_quantity: order.leaves_quantity(),
            order,
        }
    }
}

#[derive(Serialize)]
struct RejectBody {
    error: ErrorDetail,
    order: OrderView,
}

/// Parse a JSON body; the error names the offending field.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {msg}"),
            ),
            serde_json::error::Category::Data if msg.starts_with("unknown field") => {
                ApiError::bad_request("unknown_field", msg)
            }
            serde_json::error::Category::Data if msg.starts_with("missing field") => {
                ApiError::bad_request("missing_field", msg)
            }
            serde_json::error::Category::Data => {
                ApiError::unprocessable("invalid_field", format!("{path}: {msg}"))
            }
        }
    })
}

fn engine_error(e: EngineError) -> ApiError {
    let code = e.code();
    if e.is_client_error() {
        let status = if code == "order_not_found" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::CONFLICT
        };
        ApiError::new(status, code, e.to_string())
    } else {
        tracing::error!(error = %e, "engine failure");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
    }
}

fn parse_account(s: &str) -> Result<AccountId, ApiError> {
    AccountId::new(s).map_err(|e| ApiError::unprocessable("invalid_field", e.to_string()))
}

/// The account a request acts on: the named one if the key covers it, else the key's only one.
fn resolve_account(p: &Principal, named: Option<AccountId>) -> Result<AccountId, ApiError> {
    match named {
        Some(a) if p.sees(&a) => Ok(a),
        // Do not reveal whether an account the key does not cover exists.
        Some(a) => Err(ApiError::not_found(
            "account_not_found",
            format!("no account {a} for this API key"),
        )),
        None => p.default_account().cloned().ok_or_else(|| {
            ApiError::bad_request(
                "missing_field",
                "missing field `account` (this API key covers several accounts)",
            )
        }),
    }
}

pub async fn submit(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    let req: OrderRequest = parse_body(&body)?;
    let account = resolve_account(&principal, req.account)?;
    if !principal.can_trade(&account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key cannot place orders",
        ));
    }
    let instrument = instrument_for(&gw, &req.symbol)?;
    Order::check_shape(req.order_type, req.quantity, req.price, req.stop_price)
        .map_err(|e| ApiError::unprocessable("invalid_order", e.to_string()))?;
    let new = NewOrder {
        account: account.clone(),
        client_order_id: req.client_order_id,
        instrument,
        side: req.side,
        order_type: req.order_type,
        time_in_force: req.time_in_force.unwrap_or_default(),
        quantity: req.quantity,
        price: req.price,
        stop_price: req.stop_price,
    };
    let outcome = gw.engine.submit(new).await.map_err(|e| match e {
        // Shape errors the gateway missed are still the caller's fault.
        EngineError::Oms(oms::OmsError::InvalidOrder(m)) => {
            ApiError::unprocessable("invalid_order", m.to_string())
        }
        other => engine_error(other),
    })?;
    Ok(match outcome {
        Outcome::Accepted(order) => {
            tracing::info!(order_id = %order.order_id, account = %order.account, status = ?order.status, "order accepted");
            (StatusCode::CREATED, Json(OrderView::from(order))).into_response()
        }
        Outcome::Duplicate(order) => (
            StatusCode::OK,
            [("idempotent-replay", "true")],
            Json(OrderView::from(order)),
        )
            .into_response(),
        Outcome::Rejected {
            order,
            code,
            message,
        } => {
            tracing::info!(order_id = %order.order_id, account = %order.account, code = %code, "order rejected");
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(RejectBody {
                    error: ErrorDetail { code, message },
                    order: OrderView::from(order),
                }),
            )
                .into_response()
        }
    })
}

/// The instrument for a symbol the platform has market data for.
fn instrument_for(gw: &Gateway, symbol: &str) -> Result<InstrumentId, ApiError> {
    let unknown = || {
        ApiError::unprocessable(
            "unknown_symbol",
            format!("symbol: {symbol:?} is not traded here; GET /marketdata lists the symbols"),
        )
    };
    let symbol = Symbol::new(symbol.to_ascii_uppercase()).map_err(|_| unknown())?;
    gw.market.instrument(symbol.as_str()).ok_or_else(unknown)
}

fn parse_order_id(s: &str) -> Result<OrderId, ApiError> {
    s.parse::<u64>()
        .map(OrderId)
        .map_err(|_| ApiError::not_found("order_not_found", format!("no order {s:?}")))
}

pub async fn get_order(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    let id = parse_order_id(&id)?;
    let answer = gw
        .engine
        .query(engine::Query::Order { account: None, id })
        .await
        .map_err(engine_error)?;
    match answer {
        QueryAnswer::Order(Some(order)) if principal.sees(&order.account) => Ok(Json(order.into())),
        _ => Err(ApiError::not_found(
            "order_not_found",
            format!("no order {id}"),
        )),
    }
}

pub async fn cancel_order(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    let id = parse_order_id(&id)?;
    let QueryAnswer::Order(Some(order)) = gw
        .engine
        .query(engine::Query::Order { account: None, id })
        .await
        .map_err(engine_error)?
    else {
        return Err(ApiError::not_found(
            "order_not_found",
            format!("no order {id}"),
        ));
    };
    if !principal.sees(&order.account) {
        return Err(ApiError::not_found(
            "order_not_found",
            format!("no order {id}"),
        ));
    }
    if !principal.can_trade(&order.account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key cannot cancel orders",
        ));
    }
    let order = gw
        .engine
        .cancel(order.account, id)
        .await
        .map_err(engine_error)?;
    Ok(Json(order.into()))
}

fn account_param(
    p: &Principal,
    q: &HashMap<String, String>,
) -> Result<Option<AccountId>, ApiError> {
    match q.get("account") {
        Some(a) => resolve_account(p, Some(parse_account(a)?)).map(Some),
        None => match p.account_filter() {
            None => Ok(None),
            Some(_) => resolve_account(p, None).map(Some),
        },
    }
}

pub async fn list_orders(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["account", "status", "symbol"])?;
    let account = account_param(&principal, &q)?;
    let status = q
        .get("status")
        .map(|s| {
            serde_json::from_value::<OrderStatus>(serde_json::Value::String(s.clone())).map_err(|_| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!("status: {s:?} is not one of pending_new, accepted, partially_filled, filled, canceled, rejected, expired"),
                )
            })
        })
        .transpose()?;
    let symbol = q
        .get("symbol")
        .map(|s| {
            Symbol::new(s.to_ascii_uppercase())
                .map_err(|e| ApiError::unprocessable("invalid_field", e.to_string()))
        })
        .transpose()?;
    let filter = OrderFilter {
        account,
        status,
        symbol,
        open_only: false,
    };
    match gw
        .engine
        .query(engine::Query::Orders(filter))
        .await
        .map_err(engine_error)?
    {
        QueryAnswer::Orders(orders) => Ok(Json(orders.into_iter().map(OrderView::from).collect())),
        _ => Err(ApiError::internal("unexpected engine answer")),
    }
}

pub async fn list_fills(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<model::Fill>>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["account", "symbol", "since"])?;
    let account = account_param(&principal, &q)?;
    let since = q
        .get("since")
        .map(|s| {
            Timestamp::parse_rfc3339(s)
                .map_err(|e| ApiError::unprocessable("invalid_field", format!("since: {e}")))
        })
        .transpose()?;
    let symbol = q.get("symbol").map(|s| s.to_ascii_uppercase());
    match gw
        .engine
        .query(engine::Query::Fills {
            account,
            symbol,
            since,
        })
        .await
        .map_err(engine_error)?
    {
        QueryAnswer::Fills(fills) => Ok(Json(fills)),
        _ => Err(ApiError::internal("unexpected engine answer")),
    }
}

pub async fn list_positions(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<positions::Position>>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["account"])?;
    let account = account_param(&principal, &q)?;
    match gw
        .engine
        .query(engine::Query::Positions { account })
        .await
        .map_err(engine_error)?
    {
        QueryAnswer::Positions(p) => Ok(Json(p)),
        _ => Err(ApiError::internal("unexpected engine answer")),
    }
}

/// `GET /stream?account=`: durable execution reports as server-sent events.
pub async fn stream(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["account"])?;
    let account = account_param(&principal, &q)?;
    let allowed = principal.clone();
    let reports =
        tokio_stream::wrappers::BroadcastStream::new(gw.engine.reports()).filter_map(move |r| {
            let keep = match &r {
                Ok(report) => report.account().is_some_and(|a| {
                    allowed.sees(a) && account.as_ref().is_none_or(|want| want == a)
                }),
                // A slow client missed reports: tell it, so it can re-read state.
                Err(_) => true,
            };
            let item = keep.then(|| {
                Ok(match r {
                    Ok(report) => SseEvent::default()
                        .event(report.event.kind().as_str())
                        .id(report.seq.to_string())
                        .json_data(&report)
                        .unwrap_or_else(|_| SseEvent::default().comment("unserializable report")),
                    Err(e) => SseEvent::default().event("lagged").data(e.to_string()),
                })
            });
            std::future::ready(item)
        });
    let stop = gw.shutdown.clone().cancelled_owned();
    Ok(Sse::new(reports.take_until(stop)).keep_alive(KeepAlive::default()))
}

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this endpoint needs an admin API key",
        ))
    }
}

pub async fn risk_limits(
    State(gw): State<Gateway>,
    headers: HeaderMap,
) -> Result<Json<risk::RiskLimits>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    require_admin(&principal)?;
    match gw
        .engine
        .query(engine::Query::RiskLimits)
        .await
        .map_err(engine_error)?
    {
        QueryAnswer::RiskLimits(l) => Ok(Json(*l)),
        _ => Err(ApiError::internal("unexpected engine answer")),
    }
}

/// `POST /admin/risk`: a `LimitsChange` (`{"op":"set_limits",...}`, `{"op":"reset_kill_switch",...}`).
pub async fn change_risk(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<model::Event>, ApiError> {
    let principal = gw.keys.authenticate(&headers)?;
    require_admin(&principal)?;
    let change: risk::LimitsChange = parse_body(&body)?;
    let event = gw
        .engine
        .change_risk(change, principal.key_id.clone())
        .await
        .map_err(|e| match e {
            EngineError::Risk(r) => ApiError::unprocessable("invalid_risk_limits", r.to_string()),
            other => engine_error(other),
        })?;
    tracing::warn!(by = %principal.key_id, "risk limits changed");
    Ok(Json(event))
}
