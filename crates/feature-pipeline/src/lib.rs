//! The feature pipeline (port 6566).
//!
//! A journal consumer like every service: it replays the journal into a `features` engine and
//! follows it. Changed rows land in the embedded online store at once (streaming mode) and, when
//! a Redis/Valkey online store is configured, are pushed there in Feast's byte layout plus a JSON
//! document per entity. A scheduled materialization (every `materialization.interval_minutes`)
//! rewrites every current row, so the online store catches up after any outage. A Redis outage
//! keeps the rows pending and retries with backoff; nothing is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use feast_store::{OnlineRow, OnlineStoreWriter, OnlineValue};
use features::{FeatureEngine, FeatureRow, FeatureValue};
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::Timestamp;
use serde::Serialize;
use telemetry::Metrics;
use telemetry::http::ApiError;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("online store: {0}")]
    OnlineStore(#[from] feast_store::FeastStoreError),
}

/// Pipeline settings (from the feast-pipeline config file).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Feast project name (the Redis keys carry it).
    pub project: String,
    /// `feast.online_store.connection_string` (`valkey:6379`, `redis://...`); `None` = embedded only.
    pub online_store: Option<String>,
    /// Full rewrite of every row to the online store this often.
    pub materialize_every: Duration,
    /// A view whose newest materialized value is older than this is flagged stale.
    pub stale_after: Duration,
}

/// The latest row per (view, entity); a newer event time always wins.
#[derive(Clone, Default)]
pub struct OnlineCache {
    rows: Arc<RwLock<HashMap<(&'static str, String), FeatureRow>>>,
}

impl OnlineCache {
    fn upsert(&self, rows: &[FeatureRow]) {
        let mut map = self.rows.write().unwrap_or_else(|e| e.into_inner());
        for r in rows {
            match map.get(&(r.view, r.entity.clone())) {
                Some(old) if old.event_ts > r.event_ts => {}
                _ => {
                    map.insert((r.view, r.entity.clone()), r.clone());
                }
            }
        }
    }

    pub fn get(&self, view: &str, entity: &str) -> Option<FeatureRow> {
        let map = self.rows.read().unwrap_or_else(|e| e.into_inner());
        let view = features::view(view)?.name;
        map.get(&(view, entity.to_string())).cloned()
    }

    fn all(&self) -> Vec<FeatureRow> {
        self.rows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn newest_per_view(&self) -> HashMap<&'static str, (Timestamp, usize)> {
        let mut out: HashMap<&'static str, (Timestamp, usize)> = HashMap::new();
        for r in self.rows.read().unwrap_or_else(|e| e.into_inner()).values() {
            let e = out.entry(r.view).or_insert((r.event_ts, 0));
            e.0 = e.0.max(r.event_ts);
            e.1 += 1;
        }
        out
    }
}

/// What `GET /status` reports per view.
#[derive(Debug, Clone, Serialize)]
pub struct ViewStatus {
    pub entities: usize,
    pub newest_event_ts: Option<Timestamp>,
    /// Age of the newest materialized value, seconds.
    pub freshness_seconds: Option<f64>,
    pub stale: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStatus {
    pub configured: Option<String>,
    pub pending_rows: usize,
    pub write_failures: u64,
    pub last_error: Option<String>,
    pub rows_written: u64,
}

#[derive(Clone, Default)]
struct Status {
    views: Arc<Mutex<HashMap<&'static str, ViewStatus>>>,
    store: Arc<Mutex<StoreStatus>>,
}

/// The running pipeline, for the HTTP routes.
#[derive(Clone)]
pub struct FeatureService {
    pub cache: OnlineCache,
    status: Status,
    stale_after: Duration,
}

#[derive(Clone)]
struct PipelineMetrics {
    freshness: Family<Vec<(&'static str, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>,
    stale: Family<Vec<(&'static str, String)>, Gauge>,
    write_failures: Counter,
    rows_written: Counter,
}

impl PipelineMetrics {
    fn register(m: &Metrics) -> PipelineMetrics {
        let p = PipelineMetrics {
            freshness: Family::default(),
            stale: Family::default(),
            write_failures: Counter::default(),
            rows_written: Counter::default(),
        };
        m.register(
            "feature_freshness_seconds",
            "Age of the newest materialized value per feature view",
            p.freshness.clone(),
        );
        m.register(
            "feature_view_stale",
            "1 when a feature view is older than the freshness bound",
            p.stale.clone(),
        );
        m.register(
            "feature_online_store_write_failures",
            "Failed writes to the Redis/Valkey online store (retried)",
            p.write_failures.clone(),
        );
        m.register(
            "feature_online_store_rows_written",
            "Rows written to the Redis/Valkey online store",
            p.rows_written.clone(),
        );
        p
    }
}

/// Entities as users name them: market features are keyed by the bare symbol (`BTCUSDT`, as in
/// the plan's `feast:market_features:BTCUSDT`), not the engine's `SYMBOL.venue`. When several
/// venues carry one symbol, the most recent row wins.
pub fn public_rows(mut rows: Vec<FeatureRow>) -> Vec<FeatureRow> {
    for r in &mut rows {
        if features::view(r.view).is_some_and(|v| v.entity == "symbol")
            && let Some((symbol, venue)) = r.entity.rsplit_once('.')
            && !venue.is_empty()
            && venue
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            r.entity = symbol.to_string();
        }
    }
    rows
}

/// A feature row in the online writer's form.
pub fn online_row(row: &FeatureRow) -> Option<OnlineRow> {
    let view = features::view(row.view)?;
    Some(OnlineRow {
        view: row.view.to_string(),
        join_key: view.entity.to_string(),
        entity: row.entity.clone(),
        event_ts: row.event_ts,
        values: row
            .values
            .iter()
            .map(|(name, v)| {
                let v = match v {
                    FeatureValue::F64(x) => OnlineValue::F64(*x),
                    FeatureValue::I64(x) => OnlineValue::I64(*x),
                    FeatureValue::Str(s) => OnlineValue::Str(s.clone()),
                    FeatureValue::Null => OnlineValue::Null,
                };
                (name.to_string(), v)
            })
            .collect(),
    })
}

/// Start the pipeline over the journal.
pub fn start(
    journal: Journal,
    config: PipelineConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(FeatureService, JoinHandle<Result<(), PipelineError>>), PipelineError> {
    let writer = match &config.online_store {
        Some(url) => Some(OnlineStoreWriter::new(
            url,
            feast_store::WriterOptions::default(),
        )?),
        None => None,
    };
    let svc = FeatureService {
        cache: OnlineCache::default(),
        status: Status::default(),
        stale_after: config.stale_after,
    };
    svc.status
        .store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .configured = config.online_store.clone();
    let sub = InProcessBus::new(journal).subscribe_ephemeral(">", StartAt::Beginning)?;
    let task = tokio::spawn(run(
        sub,
        writer,
        config,
        svc.clone(),
        PipelineMetrics::register(&metrics),
        shutdown,
    ));
    Ok((svc, task))
}

async fn run(
    mut sub: journal::InProcessSubscription,
    writer: Option<OnlineStoreWriter>,
    config: PipelineConfig,
    svc: FeatureService,
    m: PipelineMetrics,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let mut engine = FeatureEngine::new(features::EngineParams::default());
    // Rows waiting for the online store: the latest per (view, entity), so a long outage costs
    // memory bounded by the number of entities, not by the number of events.
    let mut pending: HashMap<(&'static str, String), FeatureRow> = HashMap::new();
    let mut materialized: HashMap<&'static str, Timestamp> = HashMap::new();
    let mut flush = tokio::time::interval(Duration::from_millis(100));
    let mut full = tokio::time::interval(config.materialize_every);
    let mut backoff = Duration::from_millis(200);
    let mut next_attempt = Instant::now();
    let mut dirty = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            d = sub.next() => {
                match d {
                    Ok(d) => {
                        engine.on_event(&d.event);
                        dirty = true;
                    }
                    Err(JournalError::Closed) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            _ = full.tick() => {
                // Scheduled materialization: every entity is recomputed as of the latest event
                // (quiet entities' windows move on too: an hour-old order leaves `orders_1h`),
                // and every current row goes out to the online store again.
                // Event time, not the wall clock: windows advance with the journal, so a
                // replayed history gives the same values and live rows are never older than
                // these.
                if let Some(as_of) = engine.watermark() {
                    let rows: Vec<FeatureRow> = features::views()
                        .iter()
                        .flat_map(|v| engine.entities(v.name).into_iter().map(move |e| (v.name, e)))
                        .filter_map(|(v, e)| engine.row(v, &e, as_of))
                        .collect();
                    svc.cache.upsert(&public_rows(rows));
                }
                if writer.is_some() {
                    for r in svc.cache.all() {
                        pending.insert((r.view, r.entity.clone()), r);
                    }
                }
            }
            _ = flush.tick() => {
                if std::mem::take(&mut dirty) {
                    let rows = public_rows(engine.changed_rows());
                    svc.cache.upsert(&rows);
                    if writer.is_some() {
                        for r in rows {
                            pending.insert((r.view, r.entity.clone()), r);
                        }
                    }
                }
                if let Some(w) = &writer
                    && !pending.is_empty()
                    && Instant::now() >= next_attempt
                {
                    let rows: Vec<OnlineRow> = pending.values().filter_map(online_row).collect();
                    match w.write(&config.project, &rows).await {
                        Ok(stats) => {
                            for r in pending.values() {
                                let e = materialized.entry(r.view).or_insert(r.event_ts);
                                *e = (*e).max(r.event_ts);
                            }
                            pending.clear();
                            backoff = Duration::from_millis(200);
                            m.rows_written.inc_by(stats.written);
                            let mut st = svc.status.store.lock().unwrap_or_else(|e| e.into_inner());
                            st.rows_written += stats.written;
                            st.last_error = None;
                        }
                        Err(e) => {
                            m.write_failures.inc();
                            tracing::warn!(error = %e, pending = pending.len(), retry_in_ms = backoff.as_millis() as u64, "online store write failed; retrying");
                            next_attempt = Instant::now() + backoff;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            let mut st = svc.status.store.lock().unwrap_or_else(|e| e.into_inner());
                            st.write_failures += 1;
                            st.last_error = Some(e.to_string());
                        }
                    }
                }
                svc.status.store.lock().unwrap_or_else(|e| e.into_inner()).pending_rows = pending.len();
                update_freshness(&svc, &m, writer.is_some().then_some(&materialized));
            }
        }
    }
}

/// Freshness per view: the age of the newest materialized value (the embedded store counts as
/// materialized the moment a row is computed).
fn update_freshness(
    svc: &FeatureService,
    m: &PipelineMetrics,
    materialized: Option<&HashMap<&'static str, Timestamp>>,
) {
    let now = Timestamp::now();
    let newest = svc.cache.newest_per_view();
    let mut views = svc.status.views.lock().unwrap_or_else(|e| e.into_inner());
    for v in features::views() {
        let (computed, entities) = newest
            .get(v.name)
            .copied()
            .map_or((None, 0), |(t, n)| (Some(t), n));
        let newest_ts = match materialized {
            Some(mat) => mat.get(v.name).copied(),
            None => computed,
        };
        let freshness = newest_ts.map(|t| (now.as_nanos() - t.as_nanos()).max(0) as f64 / 1e9);
        let stale = freshness.is_none_or(|f| f > svc.stale_after.as_secs_f64());
        if let Some(f) = freshness {
            m.freshness
                .get_or_create(&vec![("view", v.name.to_string())])
                .set(f);
        }
        m.stale
            .get_or_create(&vec![("view", v.name.to_string())])
            .set(i64::from(stale));
        views.insert(
            v.name,
            ViewStatus {
                entities,
                newest_event_ts: newest_ts,
                freshness_seconds: freshness,
                stale,
            },
        );
    }
}

/// `POST /get-online-features` (Feast's feature-server API), `GET /features/{view}/{entity}`,
/// `GET /status`.
pub fn router(svc: FeatureService, keys: auth::ApiKeys) -> Router {
    Router::new()
        .route("/get-online-features", post(get_online_features))
        .route("/features/{view}/{entity}", get(one_row))
        .route("/status", get(status))
        .fallback(telemetry::http::fallback)
        .with_state(Http { svc, keys })
}

#[derive(Clone)]
struct Http {
    svc: FeatureService,
    keys: auth::ApiKeys,
}

/// Market features are public market data; account-keyed views (orders, positions) need an
/// API key that covers the account, and another account's entity is simply not found.
fn visible(
    h: &Http,
    headers: &HeaderMap,
    view: &features::FeatureView,
    entity: &str,
) -> Result<bool, ApiError> {
    if view.entity == "symbol" {
        return Ok(true);
    }
    let p = h.keys.authenticate(headers)?;
    let account = entity.split('|').next().unwrap_or(entity);
    Ok(model::AccountId::new(account).is_ok_and(|a| p.sees(&a)))
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let svc = &h.svc;
    let req: OnlineRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", e.to_string())
        } else {
            ApiError::unprocessable("invalid_field", e.to_string())
        }
    })?;
    let [(join_key, entity_values)] = <[(String, Vec<serde_json::Value>); 1]>::try_from(
        req.entities.into_iter().collect::<Vec<_>>(),
    )
    .map_err(|_| {
        ApiError::unprocessable(
            "invalid_field",
            "entities: exactly one join key is supported (symbol or account)",
        )
    })?;
    let entities: Vec<String> = entity_values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    let mut wanted = Vec::new();
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
        for e in &entities {
            let found = if visible(&h, &headers, view, e)? {
                svc.cache
                    .get(view.name, e)
                    .and_then(|r| r.get(feature).cloned().map(|v| (v, r.event_ts)))
            } else {
                None
            };
            match found {
                Some((v, ts)) => {
                    statuses.push(if v.is_null() { "NULL_VALUE" } else { "PRESENT" });
                    values.push(value_json(&v));
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
    headers: HeaderMap,
    Path((view, entity)): Path<(String, String)>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let Some(def) = features::view(&view) else {
        return Err(ApiError::not_found(
            "unknown_feature_view",
            format!("no feature view {view:?}"),
        ));
    };
    let row = visible(&h, &headers, def, &entity)?
        .then(|| h.svc.cache.get(&view, &entity))
        .flatten()
        .ok_or_else(|| {
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

async fn status(State(h): State<Http>) -> axum::Json<serde_json::Value> {
    let svc = h.svc;
    let views = svc
        .status
        .views
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let store = svc
        .status
        .store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    axum::Json(serde_json::json!({
        "stale_after_seconds": svc.stale_after.as_secs(),
        "views": views,
        "online_store": store,
    }))
}
