//! Order entry and the trading views: orders, fills, positions, the execution-report stream and
//! the risk admin endpoints.
//!
//! Orders go to the engine; every read comes from the blotter and the positions view, which
//! are written from the journal after commit: off the engine task (a big read never stalls
//! trading) and durable (a read never shows what a crash could take back). A read first waits
//! until those views include everything durable when it arrived, so a client reads its own
//! acknowledged orders.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use blotter::{FillQuery, OrderQuery, Page, StatusFilter};
use engine::{EngineError, Outcome, QueryAnswer};
use model::{
    AccountId, ClientOrderId, InstrumentId, Order, OrderId, OrderStatus, OrderType, Price,
    Quantity, Side, Symbol, TimeInForce,
};
use oms::NewOrder;
use runtime::http::ApiError;
use runtime::{Caller, Params, Scope, parse_json};
use serde::{Deserialize, Serialize};
use telemetry::http::ErrorDetail;

use crate::{Gateway, Shared};
use auth::Role;

/// How long a read waits for the read store to include what was durable when it arrived.
const READ_BARRIER: Duration = Duration::from_secs(2);
/// Page size when a listing names none, and the most a page may hold.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// `POST /orders` body. Numbers may be JSON numbers or strings; both are kept exact.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Optional when the API key covers exactly one account.
    pub account: Option<String>,
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

fn store_error(e: blotter::BlotterError) -> ApiError {
    tracing::error!(error = %e, "blotter read failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "read_store_unavailable",
        "the order history store cannot be read right now; retry shortly",
    )
}

/// Runs a blotter read on the blocking pool.
async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, blotter::BlotterError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
        .map_err(store_error)
}

/// Waits until the blotter includes everything durable when the request arrived.
async fn orders_barrier(gw: &Gateway) -> Result<(), ApiError> {
    gw.reads
        .blotter_writer
        .caught_up(READ_BARRIER)
        .await
        .map_err(behind)
}

fn behind(lag: runtime::Lagging) -> ApiError {
    tracing::warn!(%lag, "read store behind the journal");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "read_store_behind",
        format!("the read store is catching up with the journal ({lag}); retry shortly"),
    )
}

fn order_not_found(id: &str) -> ApiError {
    ApiError::not_found("order_not_found", format!("no order {id:?}"))
}

pub async fn submit(
    State(gw): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: OrderRequest = parse_json(&body)?;
    let account = caller.write_account(req.account.as_deref())?;
    let instrument = instrument_for(&gw, &req.symbol)?;
    Order::check_shape(req.order_type, req.quantity, req.price, req.stop_price)
        .map_err(|e| ApiError::unprocessable("invalid_order", e.to_string()))?;
    // A client order id older than the engine remembers is found in the durable index.
    if let Some(coid) = &req.client_order_id {
        let (b, a, c) = (
            gw.reads.blotter.clone(),
            account.to_string(),
            coid.to_string(),
        );
        if let Some(original) = read(move || b.order_by_client_id(&a, &c)).await? {
            return Ok(replay_response(original));
        }
    }
    let mut new = NewOrder {
        account: account.clone(),
        client_order_id: req.client_order_id,
        instrument,
        side: req.side,
        order_type: req.order_type,
        time_in_force: req.time_in_force.unwrap_or_default(),
        quantity: req.quantity,
        price: req.price,
        stop_price: req.stop_price,
        not_a_duplicate_of: None,
    };
    let submit = |new: NewOrder| async {
        gw.engine.submit(new).await.map_err(|e| match e {
            // Shape errors the gateway missed are still the caller's fault.
            EngineError::Oms(oms::OmsError::InvalidOrder(m)) => {
                ApiError::unprocessable("invalid_order", m.to_string())
            }
            other => engine_error(other),
        })
    };
    let mut outcome = submit(new.clone()).await?;
    if let Outcome::DuplicateOf(id) = outcome {
        // The engine remembers the id by digest only: check the stored order is this account's
        // order with this client order id; if not (two ids sharing a digest) it is a new order.
        orders_barrier(&gw).await?;
        let b = gw.reads.blotter.clone();
        let stored = read(move || b.order(id.0)).await?;
        match stored {
            Some(o)
                if o.account == new.account
                    && Some(&o.client_order_id) == new.client_order_id.as_ref() =>
            {
                return Ok(replay_response(o));
            }
            _ => {
                new.not_a_duplicate_of = Some(id);
                outcome = submit(new).await?;
            }
        }
    }
    Ok(match outcome {
        Outcome::Accepted(order) => {
            tracing::info!(order_id = order.order_id.0, account = %order.account, symbol = %order.instrument.symbol, status = ?order.status, "order accepted");
            (StatusCode::CREATED, Json(OrderView::from(order))).into_response()
        }
        Outcome::Duplicate(order) => replay_response(order),
        Outcome::DuplicateOf(id) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_client_order_id",
                format!("this client order id was used by order {id}"),
            ));
        }
        Outcome::Rejected {
            order,
            code,
            message,
        } => {
            tracing::info!(order_id = order.order_id.0, account = %order.account, symbol = %order.instrument.symbol, code = %code, "order rejected");
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

/// The original order of a repeated client order id: 200 with `idempotent-replay: true`.
fn replay_response(order: Order) -> Response {
    (
        StatusCode::OK,
        [("idempotent-replay", "true")],
        Json(OrderView::from(order)),
    )
        .into_response()
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
        .map_err(|_| order_not_found(s))
}

/// The order if the caller may see it (another account's order is a 404, like a missing one).
async fn visible_order(gw: &Gateway, caller: &Caller, id: &str) -> Result<Order, ApiError> {
    let order_id = parse_order_id(id)?;
    orders_barrier(gw).await?;
    let b = gw.reads.blotter.clone();
    match read(move || b.order(order_id.0)).await? {
        Some(o) if caller.sees(o.account.as_str()) => Ok(o),
        _ => Err(order_not_found(id)),
    }
}

pub async fn get_order(
    State(gw): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    visible_order(&gw, &caller, &id)
        .await
        .map(|o| Json(o.into()))
}

pub async fn cancel_order(
    State(gw): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = visible_order(&gw, &caller, &id).await?;
    if caller.role() == Role::Compliance {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key cannot cancel orders",
        ));
    }
    if let Some(e) = terminal_error(&order) {
        return Err(e);
    }
    let order = gw
        .engine
        .cancel(order.account, order.order_id)
        .await
        .map_err(engine_error)?;
    Ok(Json(order.into()))
}

/// A cancel of a finished order: 409 with the same codes the OMS uses.
fn terminal_error(o: &Order) -> Option<ApiError> {
    let code = match o.status {
        OrderStatus::Filled => "order_already_filled",
        OrderStatus::Canceled => "order_already_canceled",
        OrderStatus::Rejected => "order_already_rejected",
        OrderStatus::Expired => "order_already_expired",
        OrderStatus::PendingNew | OrderStatus::Accepted | OrderStatus::PartiallyFilled => {
            return None;
        }
    };
    Some(ApiError::new(
        StatusCode::CONFLICT,
        code,
        format!("order {} is already {}", o.order_id, o.status.as_str()),
    ))
}

/// `order=asc|desc` (default newest first) and `cursor`.
fn direction_and_cursor(p: &Params) -> Result<(bool, Option<u64>), ApiError> {
    let newest_first = p.choice("order", &["asc", "desc"])?.unwrap_or("desc") == "desc";
    let cursor = p
        .get("cursor")
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!("cursor: {c:?} is not a cursor from a previous page"),
                )
            })
        })
        .transpose()?;
    Ok((newest_first, cursor))
}

fn scope_accounts(scope: &Scope) -> Option<Vec<String>> {
    scope.accounts()
}

/// A page as a JSON array, with the next page in `Link` (RFC 8288) and `X-Next-Cursor`.
fn paged<T: Serialize>(path: &str, p: &Params, page: Page<T>) -> Response {
    let mut res = Json(page.items).into_response();
    if let Some(next) = page.next_cursor {
        p.link_next_page(&mut res, path, &next.to_string());
    }
    res
}

/// `symbol=` of a listing, in any case: 422 unless it could name a symbol.
fn symbol_filter(p: &Params) -> Result<Option<String>, ApiError> {
    p.get("symbol")
        .map(|s| {
            Symbol::new(s.to_ascii_uppercase())
                .map(|s| s.to_string())
                .map_err(|e| ApiError::unprocessable("invalid_field", format!("symbol: {e}")))
        })
        .transpose()
}

/// `GET /orders?account=&status=&symbol=&from=&to=&limit=&cursor=&order=`
pub async fn list_orders(
    State(gw): State<Shared>,
    caller: Caller,
    p: Params,
) -> Result<Response, ApiError> {
    p.allow(&[
        "account", "status", "symbol", "from", "to", "limit", "cursor", "order",
    ])?;
    let scope = caller.read_scope(p.get("account"))?;
    let status = p
        .get("status")
        .map(|s| {
            StatusFilter::parse(s).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!(
                        "status: {s:?} is not one of open, closed, pending_new, accepted, partially_filled, filled, canceled, rejected, expired"
                    ),
                )
            })
        })
        .transpose()?;
    let symbol = symbol_filter(&p)?;
    let (newest_first, cursor) = direction_and_cursor(&p)?;
    let q = OrderQuery {
        accounts: scope_accounts(&scope),
        status,
        symbol,
        from: p.time("from")?,
        to: p.time("to")?,
        cursor,
        limit: p.limit(DEFAULT_LIMIT, MAX_LIMIT)?,
        newest_first,
    };
    orders_barrier(&gw).await?;
    let b = gw.reads.blotter.clone();
    let page = read(move || b.orders(&q)).await?;
    let page = Page {
        items: page.items.into_iter().map(OrderView::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(paged("/orders", &p, page))
}

/// `GET /fills?account=&symbol=&order_id=&from=&to=&limit=&cursor=&order=` (`since` is the
/// older name of `from`).
pub async fn list_fills(
    State(gw): State<Shared>,
    caller: Caller,
    p: Params,
) -> Result<Response, ApiError> {
    p.allow(&[
        "account", "symbol", "order_id", "from", "to", "since", "limit", "cursor", "order",
    ])?;
    let scope = caller.read_scope(p.get("account"))?;
    let order_id = p
        .get("order_id")
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                ApiError::unprocessable(
                    "invalid_field",
                    format!("order_id: {s:?} is not an order id"),
                )
            })
        })
        .transpose()?;
    let (newest_first, cursor) = direction_and_cursor(&p)?;
    let from = match p.time("from")? {
        Some(t) => Some(t),
        None => p.time("since")?,
    };
    let q = FillQuery {
        accounts: scope_accounts(&scope),
        symbol: symbol_filter(&p)?,
        order_id,
        from,
        to: p.time("to")?,
        cursor,
        limit: p.limit(DEFAULT_LIMIT, MAX_LIMIT)?,
        newest_first,
    };
    orders_barrier(&gw).await?;
    let b = gw.reads.blotter.clone();
    let page = read(move || b.fills(&q)).await?;
    Ok(paged("/fills", &p, page))
}

/// `GET /positions?account=`: net quantity, average price and P&L marked to the latest mid.
pub async fn list_positions(
    State(gw): State<Shared>,
    caller: Caller,
    p: Params,
) -> Result<Json<Vec<positions::Position>>, ApiError> {
    p.allow(&["account"])?;
    let scope = caller.read_scope(p.get("account"))?;
    gw.reads
        .positions
        .caught_up(READ_BARRIER)
        .await
        .map_err(behind)?;
    let accounts: Option<Vec<AccountId>> = match scope {
        Scope::All => None,
        Scope::Accounts(set) => Some(set.into_iter().collect()),
    };
    Ok(Json(
        gw.reads.positions.read(|v| v.list(accounts.as_deref())),
    ))
}

pub async fn risk_limits(
    State(gw): State<Shared>,
    caller: Caller,
) -> Result<Json<risk::RiskLimits>, ApiError> {
    caller.require(&[Role::Admin], "this endpoint")?;
    caller.require_all_accounts("risk administration")?;
    match gw
        .engine
        .query(engine::Query::RiskLimits)
        .await
        .map_err(engine_error)?
    {
        QueryAnswer::RiskLimits(l) => Ok(Json(*l)),
        QueryAnswer::MarketDataApplied(_) => Err(ApiError::internal("unexpected engine answer")),
    }
}

/// `POST /admin/risk`: a `LimitsChange` (`{"op":"set_limits",...}`, `{"op":"reset_kill_switch",...}`).
pub async fn change_risk(
    State(gw): State<Shared>,
    caller: Caller,
    _headers: HeaderMap,
    body: Bytes,
) -> Result<Json<model::Event>, ApiError> {
    caller.require(&[Role::Admin], "this endpoint")?;
    // Limits and kill switches name any account (and the defaults cover them all).
    caller.require_all_accounts("risk administration")?;
    let change: risk::LimitsChange = parse_json(&body)?;
    limit_sets_are_objects(&body)?;
    let by = caller.principal().key_id.clone();
    let event = gw
        .engine
        .change_risk(change, by.clone())
        .await
        .map_err(|e| match e {
            // Asking to lift a kill switch that is not engaged conflicts with the state.
            EngineError::Risk(r @ risk::RiskError::KillSwitchNotEngaged(_)) => {
                ApiError::new(StatusCode::CONFLICT, r.code(), r.to_string())
            }
            EngineError::Risk(r) => ApiError::unprocessable("invalid_risk_limits", r.to_string()),
            other => engine_error(other),
        })?;
    tracing::warn!(by = %by, "risk limits changed");
    Ok(Json(event))
}

/// A risk change's `op` is a string and its scope and limit sets are JSON objects.
/// (`LimitsChange` is an internally tagged enum: serde would also take a variant's index as
/// the tag, and reads the structs inside through its own buffer, which takes an array of their
/// fields too.)
fn limit_sets_are_objects(body: &[u8]) -> Result<(), ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
    if !v.get("op").is_some_and(serde_json::Value::is_string) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "op: must be one of set_limits, replace_limits, replace_all, engage_kill_switch, reset_kill_switch",
        ));
    }
    let mut sets: Vec<(String, &serde_json::Value)> = Vec::new();
    for key in ["scope", "limits"] {
        if let Some(x) = v.get(key) {
            sets.push((key.to_owned(), x));
        }
    }
    if v.get("op").and_then(|o| o.as_str()) == Some("replace_all") {
        let limits = v.get("limits");
        if let Some(d) = limits.and_then(|l| l.get("defaults")) {
            sets.push(("limits.defaults".into(), d));
        }
        for (map, depth) in [("accounts", 1), ("symbols", 1), ("account_symbols", 2)] {
            let Some(m) = limits.and_then(|l| l.get(map)) else {
                continue;
            };
            sets.push((format!("limits.{map}"), m));
            for (k, x) in m.as_object().into_iter().flatten() {
                sets.push((format!("limits.{map}.{k}"), x));
                if depth == 2 {
                    for (k2, y) in x.as_object().into_iter().flatten() {
                        sets.push((format!("limits.{map}.{k}.{k2}"), y));
                    }
                }
            }
        }
    }
    match sets.into_iter().find(|(_, x)| !x.is_object()) {
        Some((path, _)) => Err(ApiError::unprocessable(
            "invalid_field",
            format!("{path}: must be a JSON object"),
        )),
        None => Ok(()),
    }
}
