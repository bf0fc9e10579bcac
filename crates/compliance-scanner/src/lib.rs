//! The compliance scanner (port 8111): the `surveillance` detectors driven live over the
//! platform's event stream.
//!
//! The scanner is a bus consumer like every other service. Each alert is journaled as
//! `compliance_alert` (so it is published on `alerts.compliance`, logged and durable) before it
//! is listed at `GET /alerts`. On restart the scanner first collects the keys of the alerts
//! already journaled, then replays the stream from the beginning to rebuild its state: a
//! pattern completed before the crash whose alert never reached the journal is raised now, and
//! none is raised twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use auth::{ApiKeys, Role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use interchange::Exporter;
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::{Event, Timestamp};
use serde::Serialize;
use surveillance::{Alert, Params, Scanner};
use telemetry::Metrics;
use telemetry::http::ApiError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("surveillance parameters: {0}")]
    Params(#[from] surveillance::SurveillanceError),
}

/// An alert as listed: the detector's alert plus its review state.
#[derive(Debug, Clone, Serialize)]
pub struct ListedAlert {
    #[serde(flatten)]
    pub alert: serde_json::Value,
    pub journal_seq: u64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
}

/// Alerts known to the service, by key.
#[derive(Clone, Default)]
pub struct AlertStore {
    inner: Arc<RwLock<BTreeMap<String, ListedAlert>>>,
}

impl AlertStore {
    fn apply(&self, seq: u64, event: &Event) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::ComplianceAlert { key, alert, .. } => {
                map.entry(key.clone()).or_insert_with(|| ListedAlert {
                    alert: alert.clone(),
                    journal_seq: seq,
                    acknowledged_by: None,
                    acknowledged_at: None,
                });
            }
            Event::AlertAcknowledged { key, by, ts } => {
                if let Some(a) = map.get_mut(key) {
                    a.acknowledged_by = Some(by.clone());
                    a.acknowledged_at = Some(*ts);
                }
            }
            _ => {}
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Alerts matching the filter, oldest first.
    pub fn list(
        &self,
        owner: Option<&str>,
        rule: Option<&str>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Vec<ListedAlert> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ListedAlert> = map
            .values()
            .filter(|a| owner.is_none_or(|o| a.alert["owner"] == o))
            .filter(|a| rule.is_none_or(|r| a.alert["type"] == r))
            .filter(|a| {
                let ts = a.alert["ts"]
                    .as_str()
                    .and_then(|t| Timestamp::parse_rfc3339(t).ok());
                ts.is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e))
            })
            .cloned()
            .collect();
        out.sort_by_key(|a| a.journal_seq);
        out
    }
}

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ScannerConfig {
    pub params: Params,
    /// Beneficial owner per account (accounts not listed are their own owner).
    pub account_owners: HashMap<String, String>,
}

/// The running scanner: its alert store (for HTTP) and its task.
pub struct ScannerService {
    pub alerts: AlertStore,
    pub task: JoinHandle<Result<(), ScannerError>>,
}

/// Start the scanner over `journal`.
pub fn start(
    journal: Journal,
    config: ScannerConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<ScannerService, ScannerError> {
    let alerts = AlertStore::default();
    // Pass 1: what was already raised (and acknowledged) before this start.
    let bus = InProcessBus::new(journal.clone());
    let history_end = journal.last_seq();
    let mut next = 1;
    while next <= history_end {
        let records = journal.read_from(next, 10_000)?;
        let Some(last) = records.last().map(|r| r.seq) else {
            break;
        };
        for r in &records {
            alerts.apply(r.seq, &r.event);
        }
        next = last + 1;
    }
    let known: Vec<String> = alerts
        .inner
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    let scanner = Scanner::new(config.params.clone())?.with_known_keys(known);
    let alert_count = metrics.gauge("compliance_alerts", "Compliance alerts raised (all time)");
    alert_count.set(alerts.len() as i64);
    let latency = telemetry::prometheus_client::metrics::histogram::Histogram::new(
        telemetry::prometheus_client::metrics::histogram::exponential_buckets(1e-4, 2.0, 14),
    );
    metrics.register(
        "compliance_alert_latency_seconds",
        "Time from the journaling of the event that completed a pattern to the alert being durable",
        latency.clone(),
    );
    let sub = bus.subscribe_ephemeral(">", StartAt::Beginning)?;
    let task = tokio::spawn(run(
        journal,
        sub,
        scanner,
        config,
        alerts.clone(),
        (alert_count, latency),
        history_end,
        shutdown,
    ));
    Ok(ScannerService { alerts, task })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    journal: Journal,
    mut sub: journal::InProcessSubscription,
    mut scanner: Scanner,
    config: ScannerConfig,
    alerts: AlertStore,
    (alert_count, latency): (
        telemetry::prometheus_client::metrics::gauge::Gauge,
        telemetry::prometheus_client::metrics::histogram::Histogram,
    ),
    history_end: u64,
    shutdown: CancellationToken,
) -> Result<(), ScannerError> {
    let mut exporter = Exporter::new();
    let mut clock = tokio::time::interval(Duration::from_millis(100));
    // While replaying history, time is the records' time: the wall clock must not fire
    // deadlines (settle windows, session closes) before the records that complete them.
    let mut seen: u64 = 0;
    loop {
        let (found, completed_at) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            // Time-driven patterns (a session close, a settle window) complete without an event.
            _ = clock.tick(), if seen >= history_end => (scanner.advance_to(Timestamp::now()), Instant::now()),
            d = sub.next() => {
                let d = match d {
                    Ok(d) => d,
                    Err(JournalError::Closed) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let started = Instant::now();
                seen = d.seq;
                alerts.apply(d.seq, &d.event);
                let Some(mut record) = exporter.export(&d.event) else { continue };
                if let Some(account) = &record.account {
                    record.owner = config.account_owners.get(account).cloned();
                }
                (scanner.on_record(&record), started)
            }
        };
        for alert in found {
            raise(&journal, &alerts, alert).await?;
            alert_count.set(alerts.len() as i64);
            latency.observe(completed_at.elapsed().as_secs_f64());
        }
    }
}

/// Journal an alert (idempotent by key) and make it visible.
async fn raise(journal: &Journal, alerts: &AlertStore, alert: Alert) -> Result<(), ScannerError> {
    if alerts.contains(&alert.key) {
        return Ok(());
    }
    let value = serde_json::to_value(&alert).unwrap_or_default();
    let event = Event::ComplianceAlert {
        key: alert.key.clone(),
        rule: alert.rule.as_str().to_string(),
        alert: value,
        ts: alert.ts,
    };
    let seq = journal.append(event.clone()).await?;
    alerts.apply(seq, &event);
    tracing::warn!(
        rule = alert.rule.as_str(),
        subtype = %alert.subtype,
        owner = %alert.owner,
        symbol = %alert.symbol,
        key = %alert.key,
        "compliance alert"
    );
    Ok(())
}

#[derive(Clone)]
struct Http {
    alerts: AlertStore,
    keys: ApiKeys,
    journal: Journal,
}

/// `GET /alerts`, `POST /alerts/{key}/ack` (compliance and admin keys).
pub fn router(alerts: AlertStore, keys: ApiKeys, journal: Journal) -> Router {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/alerts/{key}/ack", post(ack_alert))
        .fallback(telemetry::http::fallback)
        .with_state(Http {
            alerts,
            keys,
            journal,
        })
}

fn reviewer(h: &Http, headers: &HeaderMap) -> Result<auth::Principal, ApiError> {
    let p = h.keys.authenticate(headers)?;
    if matches!(p.role, Role::Compliance | Role::Admin) {
        Ok(p)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "alerts need a compliance or admin API key",
        ))
    }
}

async fn list_alerts(
    State(h): State<Http>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let p = reviewer(&h, &headers)?;
    telemetry::http::check_params(&q, &["owner", "type", "from", "to"])?;
    let time = |name: &str| {
        q.get(name)
            .map(|s| {
                Timestamp::parse_rfc3339(s)
                    .map_err(|e| ApiError::unprocessable("invalid_field", format!("{name}: {e}")))
            })
            .transpose()
    };
    let (from, to) = (time("from")?, time("to")?);
    let mut list = h.alerts.list(
        q.get("owner").map(String::as_str),
        q.get("type").map(String::as_str),
        from,
        to,
    );
    // A compliance key limited to some accounts sees the alerts that involve them.
    if let Some(allowed) = p.account_filter() {
        list.retain(|a| {
            a.alert["accounts"].as_array().is_some_and(|accts| {
                accts.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|s| allowed.iter().any(|id| id.as_str() == s))
                })
            })
        });
    }
    Ok(axum::Json(serde_json::json!({ "alerts": list })))
}

async fn ack_alert(
    State(h): State<Http>,
    headers: HeaderMap,
    Path(key): Path<String>,
    _body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let p = reviewer(&h, &headers)?;
    if !h.alerts.contains(&key) {
        return Err(ApiError::not_found(
            "alert_not_found",
            format!("no alert with key {key:?}"),
        ));
    }
    let event = Event::AlertAcknowledged {
        key: key.clone(),
        by: p.key_id.clone(),
        ts: Timestamp::now(),
    };
    let seq = h.journal.append(event.clone()).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "journal_unavailable",
            e.to_string(),
        )
    })?;
    h.alerts.apply(seq, &event);
    Ok(axum::Json(
        serde_json::json!({ "key": key, "acknowledged_by": p.key_id, "journal_seq": seq }),
    ))
}
