//! `GET /alerts` (paged) and `POST /alerts/{key}/ack`, for compliance and admin keys. A key
//! limited to some accounts sees, and may acknowledge, only the alerts all of whose accounts it
//! covers (`runtime::Scope::covers_all`: an alert across two accounts shows both accounts'
//! orders); any other alert is answered exactly like a missing one.

use std::time::Duration;

use alerts::{AlertQuery, AlertStore, Page, StoredAlert};
use auth::{ApiKeys, Role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use journal::Bus;
use model::{Event, Timestamp};
use runtime::http::{ApiError, parse_json_or_default};
use runtime::{Caller, ConsumerHandle, Params, Scope};
use serde::Deserialize;

use crate::StoreWriter;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// How long an acknowledgement waits for the store to show it (it is durable already).
const ACK_VISIBLE_WITHIN: Duration = Duration::from_secs(5);

/// What the alert routes need.
pub struct AlertsApi<B: Bus> {
    pub alerts: AlertStore,
    /// The store's writer: an acknowledgement answers once the store shows it.
    pub writer: ConsumerHandle<StoreWriter>,
    /// Where acknowledgements are journaled.
    pub bus: B,
    pub keys: ApiKeys,
}

impl<B: Bus> Clone for AlertsApi<B> {
    fn clone(&self) -> Self {
        AlertsApi {
            alerts: self.alerts.clone(),
            writer: self.writer.clone(),
            bus: self.bus.clone(),
            keys: self.keys.clone(),
        }
    }
}

impl<B: Bus> FromRef<AlertsApi<B>> for ApiKeys {
    fn from_ref(api: &AlertsApi<B>) -> ApiKeys {
        api.keys.clone()
    }
}

/// The routes; the host adds `/health`, `/metrics` and the JSON 404.
pub fn routes<B: Bus>(api: AlertsApi<B>) -> Router {
    Router::new()
        .route("/openapi.json", runtime::openapi::route(crate::OPENAPI))
        .route("/alerts", get(list_alerts::<B>))
        .route("/alerts/{key}/ack", post(ack_alert::<B>))
        .with_state(api)
}

const REVIEWERS: &[Role] = &[Role::Compliance, Role::Admin];

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "alert_store_unavailable",
        e.to_string(),
    )
}

/// Runs a store read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, alerts::AlertsError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(store_error)?
        .map_err(store_error)
}

/// An alert as listed: the detector's alert plus its place in the journal and review state.
fn listed(a: StoredAlert) -> serde_json::Value {
    let mut map = match a.alert {
        serde_json::Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("alert".into(), other);
            m
        }
    };
    map.insert("journal_seq".into(), a.journal_seq.into());
    map.insert(
        "acknowledged_by".into(),
        a.acknowledged_by
            .map_or(serde_json::Value::Null, Into::into),
    );
    map.insert(
        "acknowledged_at".into(),
        serde_json::to_value(a.acknowledged_at).unwrap_or(serde_json::Value::Null),
    );
    serde_json::Value::Object(map)
}

/// Whether the key's scope covers an alert (the one scope rule for records of several
/// accounts).
fn visible(scope: &Scope, alert: &StoredAlert) -> bool {
    scope.covers_all(alert.accounts.iter().map(String::as_str))
}

/// `GET /alerts?owner=&type=&account=&from=&to=&limit=&cursor=&order=asc|desc` (oldest first
/// by default): `{"alerts":[...]}`, the next page in `Link` and `X-Next-Cursor`.
async fn list_alerts<B: Bus>(
    State(api): State<AlertsApi<B>>,
    caller: Caller,
    p: Params,
) -> Result<Response, ApiError> {
    caller.require(REVIEWERS, "alerts")?;
    p.allow(&[
        "owner", "type", "account", "from", "to", "limit", "cursor", "order",
    ])?;
    // `account=` narrows the listing to the alerts involving it; what the key may see is
    // decided on each alert against everything the key covers.
    let named = caller.read_scope(p.get("account"))?;
    let scope = caller.scope();
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
    let query = AlertQuery {
        owner: p.get("owner").map(str::to_owned),
        rule: p.get("type").map(str::to_owned),
        accounts: named.accounts(),
        from: p.time("from")?,
        to: p.time("to")?,
        cursor,
        limit: p.limit(DEFAULT_LIMIT, MAX_LIMIT)?,
        newest_first: p.choice("order", &["asc", "desc"])?.unwrap_or("asc") == "desc",
    };
    let store = api.alerts.clone();
    let page = blocking(move || match scope {
        Scope::All => store.page(&query),
        scope => store.page_filtered(&query, |a| visible(&scope, a)),
    })
    .await?;
    Ok(paged("/alerts", &p, page))
}

/// The page as `{"alerts":[...]}`, with the next page in `Link` (RFC 8288) and `X-Next-Cursor`.
fn paged(path: &str, p: &Params, page: Page<StoredAlert>) -> Response {
    let items: Vec<serde_json::Value> = page.items.into_iter().map(listed).collect();
    let mut res = axum::Json(serde_json::json!({ "alerts": items })).into_response();
    if let Some(next) = page.next_cursor {
        p.link_next_page(&mut res, path, &next.to_string());
    }
    res
}

/// The body of an acknowledgement: nothing yet (an empty body or `{}`), and nothing unknown.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {}

/// `POST /alerts/{key}/ack`: journals the acknowledgement and answers once the store shows it.
async fn ack_alert<B: Bus>(
    State(api): State<AlertsApi<B>>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    caller.require(REVIEWERS, "acknowledging an alert")?;
    let AckBody {} = parse_json_or_default(&body)?;
    let scope = caller.scope();
    let store = api.alerts.clone();
    let lookup = key.clone();
    let alert = blocking(move || store.get(&lookup)).await?;
    if !alert.as_ref().is_some_and(|a| visible(&scope, a)) {
        return Err(ApiError::not_found(
            "alert_not_found",
            format!("no alert with key {key:?}"),
        ));
    }
    let by = caller.principal().key_id.clone();
    let seq = api
        .bus
        .publish(Event::AlertAcknowledged {
            key: key.clone(),
            by: by.clone(),
            ts: Timestamp::now(),
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                e.to_string(),
            )
        })?;
    // Durable now; a listing right after this answer shows it.
    if let Err(lag) = api.writer.wait_for(seq, ACK_VISIBLE_WITHIN).await {
        tracing::warn!(%lag, "acknowledgement journaled; the alert store shows it later");
    }
    Ok(axum::Json(
        serde_json::json!({ "key": key, "acknowledged_by": by, "journal_seq": seq }),
    ))
}
