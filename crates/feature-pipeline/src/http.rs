//! The HTTP routes on 6566: Feast's feature-server API, one row as plain JSON, and the status.
//! `/health`, `/metrics` and the JSON 404 come from the runtime's host.

use std::collections::HashMap;

use auth::ApiKeys;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::routing::{get, post};
use features::{FeatureRow, FeatureValue, FeatureView};
use model::Timestamp;
use runtime::http::ApiError;
use runtime::{Caller, Params};

use crate::FeatureService;

/// Most entity rows one `get-online-features` request may ask for: rows are computed under the
/// consumer's lock, so one request must not hold it for long.
pub const MAX_ENTITY_ROWS: usize = 10_000;

#[derive(Clone)]
struct Http {
    svc: FeatureService,
    keys: ApiKeys,
}

impl FromRef<Http> for ApiKeys {
    fn from_ref(h: &Http) -> ApiKeys {
        h.keys.clone()
    }
}

/// `POST /get-online-features` (Feast's feature-server API), `GET /features/{view}/{entity}`,
/// `GET /status`.
pub fn router(svc: FeatureService, keys: ApiKeys) -> Router {
    Router::new()
        .route("/openapi.json", runtime::openapi::route(crate::OPENAPI))
        .route("/get-online-features", post(get_online_features))
        .route("/features/{view}/{entity}", get(one_row))
        .route("/status", get(status))
        .with_state(Http { svc, keys })
}

/// Market features are public market data and need no key; account-keyed views (orders,
/// positions) need a key, and only the accounts it covers are visible.
fn is_public(view: &FeatureView) -> bool {
    view.entity == "symbol"
}

/// The account an account-keyed entity belongs to (`acct` or `acct|SYMBOL.venue`).
fn account_of(entity: &str) -> &str {
    entity.split('|').next().unwrap_or(entity)
}

fn value_json(v: &FeatureValue) -> serde_json::Value {
    match v {
        FeatureValue::F64(x) => serde_json::json!(x),
        FeatureValue::I64(x) => serde_json::json!(x),
        FeatureValue::Str(s) => serde_json::json!(s),
        FeatureValue::Null => serde_json::Value::Null,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlineRequest {
    features: Vec<String>,
    entities: HashMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    full_feature_names: bool,
}

/// Answered in Feast's response shape: `metadata.feature_names` (the join key first) and one
/// `results` entry per name with `values`, `statuses` and `event_timestamps` per entity row.
async fn get_online_features(
    State(h): State<Http>,
    caller: Result<Caller, ApiError>,
    params: Params,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    params.allow(&[])?;
    let req: OnlineRequest = runtime::parse_json(&body)?;
    let [(join_key, entity_values)] = <[(String, Vec<serde_json::Value>); 1]>::try_from(
        req.entities.into_iter().collect::<Vec<_>>(),
    )
    .map_err(|_| {
        ApiError::unprocessable(
            "invalid_field",
            "entities: exactly one join key is supported (symbol or account)",
        )
    })?;
    if entity_values.len() > MAX_ENTITY_ROWS {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!(
                "entities: {} rows asked, at most {MAX_ENTITY_ROWS} per request",
                entity_values.len()
            ),
        ));
    }
    let entities: Vec<String> = entity_values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    let mut wanted: Vec<(&'static FeatureView, &str)> = Vec::new();
    for f in &req.features {
        let (view_name, feature) = f.split_once(':').ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_field",
                format!("features: {f:?} is not view:feature"),
            )
        })?;
        let view = features::view(view_name).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_feature_view",
                format!("features: no view {view_name:?}"),
            )
        })?;
        if view.feature(feature).is_none() {
            return Err(ApiError::unprocessable(
                "unknown_feature",
                format!("features: {view_name} has no feature {feature:?}"),
            ));
        }
        if view.entity != join_key {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!(
                    "features: {view_name} is keyed by {:?}, the request by {join_key:?}",
                    view.entity
                ),
            ));
        }
        wanted.push((view, feature));
    }
    // A key is needed only to read account-keyed rows; another account's row is NOT_FOUND.
    let needs_key = !entities.is_empty() && wanted.iter().any(|(v, _)| !is_public(v));
    let caller = if needs_key { Some(caller?) } else { None };
    let visible: Vec<bool> = entities
        .iter()
        .map(|e| caller.as_ref().is_none_or(|c| c.sees(account_of(e))))
        .collect();

    // Each (view, entity) row once, all under one short read of the state (one watermark).
    let mut views: Vec<&'static str> = wanted.iter().map(|(v, _)| v.name).collect();
    views.sort_unstable();
    views.dedup();
    let rows: HashMap<&'static str, Vec<Option<FeatureRow>>> = h.svc.consumer().read(|s| {
        views
            .iter()
            .map(|view| {
                let rows = entities
                    .iter()
                    .zip(&visible)
                    .map(|(e, ok)| ok.then(|| s.row(view, e)).flatten())
                    .collect();
                (*view, rows)
            })
            .collect()
    });

    let mut names = vec![join_key.clone()];
    let epoch = Timestamp::from_nanos(0).to_string();
    let mut results = vec![serde_json::json!({
        "values": entity_values,
        "statuses": vec!["PRESENT"; entities.len()],
        "event_timestamps": vec![epoch.clone(); entities.len()],
    })];
    for (view, feature) in wanted {
        names.push(if req.full_feature_names {
            format!("{}__{feature}", view.name)
        } else {
            feature.to_string()
        });
        let (mut values, mut statuses, mut stamps) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows.get(view.name).into_iter().flatten() {
            match row
                .as_ref()
                .and_then(|r| r.get(feature).map(|v| (v, r.event_ts)))
            {
                Some((v, ts)) => {
                    statuses.push(if v.is_null() { "NULL_VALUE" } else { "PRESENT" });
                    values.push(value_json(v));
                    stamps.push(ts.to_string());
                }
                None => {
                    statuses.push("NOT_FOUND");
                    values.push(serde_json::Value::Null);
                    stamps.push(epoch.clone());
                }
            }
        }
        results.push(serde_json::json!({ "values": values, "statuses": statuses, "event_timestamps": stamps }));
    }
    Ok(axum::Json(
        serde_json::json!({ "metadata": { "feature_names": names }, "results": results }),
    ))
}

async fn one_row(
    State(h): State<Http>,
    caller: Result<Caller, ApiError>,
    params: Params,
    Path((view, entity)): Path<(String, String)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    params.allow(&[])?;
    let Some(def) = features::view(&view) else {
        return Err(ApiError::not_found(
            "unknown_feature_view",
            format!("no feature view {view:?}"),
        ));
    };
    if !is_public(def) {
        // The one scope rule: an account the key does not cover is not found; neither is an
        // entity that cannot name an account.
        caller?
            .read_scope(Some(account_of(&entity)))
            .map_err(|e| match e.status.as_u16() {
                422 => ApiError::not_found(
                    "entity_not_found",
                    format!("no {view} values for {entity:?}"),
                ),
                _ => e,
            })?;
    }
    let row = h.svc.row(&view, &entity).ok_or_else(|| {
        ApiError::not_found(
            "entity_not_found",
            format!("no {view} values for {entity:?} yet"),
        )
    })?;
    let values: serde_json::Map<String, serde_json::Value> = row
        .values
        .iter()
        .map(|(n, v)| (n.to_string(), value_json(v)))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "view": row.view, "entity": row.entity, "event_ts": row.event_ts, "values": values,
    })))
}

async fn status(
    State(h): State<Http>,
    params: Params,
) -> Result<axum::Json<crate::PipelineStatus>, ApiError> {
    params.allow(&[])?;
    Ok(axum::Json(h.svc.status(Timestamp::now())))
}
