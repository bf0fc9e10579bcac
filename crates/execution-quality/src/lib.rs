//! The execution-quality service (port 8110): the `execq` engine fed live from the journal.
//!
//! Like every consumer it rebuilds its state by replaying the journal from the beginning, then
//! follows it. Per-fill and per-order observations feed Prometheus histograms labelled by symbol
//! and order class only (no order ids: label cardinality stays bounded); fill-rate gauges are
//! refreshed every 15 seconds while data flows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use execq::{ExecQuality, Metric, Params, ReportFilter};
use interchange::Exporter;
use journal::{InProcessBus, Journal, JournalError, StartAt, Subscription};
use model::Timestamp;
use telemetry::Metrics;
use telemetry::http::ApiError;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use telemetry::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("execution-quality parameters: {0}")]
    Params(#[from] execq::ExecqError),
}

type Labels = Vec<(&'static str, String)>;

/// The Prometheus series of this service.
#[derive(Clone)]
struct QualityMetrics {
    slippage_bps: Family<Labels, Histogram, fn() -> Histogram>,
    time_to_fill_ms: Family<Labels, Histogram, fn() -> Histogram>,
    effective_spread_bps: Family<Labels, Histogram, fn() -> Histogram>,
    fill_rate_by_symbol: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    fill_rate_by_class: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

fn bps_histogram() -> Histogram {
    // -50 .. +50 bps in 5-bps steps: costs and improvements both land in range.
    Histogram::new((-10..=10).map(|i| f64::from(i) * 5.0))
}

fn ms_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 20))
}

impl QualityMetrics {
    fn register(metrics: &Metrics) -> QualityMetrics {
        let m = QualityMetrics {
            slippage_bps: Family::new_with_constructor(bps_histogram),
            time_to_fill_ms: Family::new_with_constructor(ms_histogram),
            effective_spread_bps: Family::new_with_constructor(bps_histogram),
            fill_rate_by_symbol: Family::default(),
            fill_rate_by_class: Family::default(),
        };
        metrics.register(
            "execq_arrival_slippage_bps",
            "Arrival-price slippage per completed order, bps (positive = cost), by symbol and order class",
            m.slippage_bps.clone(),
        );
        metrics.register(
            "execq_time_to_first_fill_ms",
            "Receipt to first fill per order, ms, by symbol and order class",
            m.time_to_fill_ms.clone(),
        );
        metrics.register(
            "execq_effective_spread_bps",
            "Effective spread per fill, bps of the receipt mid, by symbol and order class",
            m.effective_spread_bps.clone(),
        );
        metrics.register(
            "execq_fill_rate_by_symbol",
            "Shares executed / shares ordered, by symbol",
            m.fill_rate_by_symbol.clone(),
        );
        metrics.register(
            "execq_fill_rate_by_order_class",
            "Shares executed / shares ordered, by order class",
            m.fill_rate_by_class.clone(),
        );
        m
    }

    fn observe(&self, o: &execq::Observation) {
        let labels = vec![
            ("symbol", o.symbol.clone()),
            ("order_class", o.order_class.as_str().to_string()),
        ];
        match o.metric {
            Metric::ArrivalCostBps => self.slippage_bps.get_or_create(&labels).observe(o.value),
            Metric::TimeToFirstFillMs => {
                self.time_to_fill_ms.get_or_create(&labels).observe(o.value)
            }
            Metric::EffectiveSpreadBps => self
                .effective_spread_bps
                .get_or_create(&labels)
                .observe(o.value),
            _ => {}
        }
    }

    fn refresh_gauges(&self, engine: &ExecQuality) {
        let report = engine.report();
        let rate = |s: &execq::Stats| s.fill_rate.and_then(|d| d.to_string().parse::<f64>().ok());
        for (symbol, stats) in &report.aggregates.by_symbol {
            if let Some(r) = rate(stats) {
                self.fill_rate_by_symbol
                    .get_or_create(&vec![("symbol", symbol.clone())])
                    .set(r);
            }
        }
        for (class, stats) in &report.aggregates.by_order_class {
            if let Some(r) = rate(stats) {
                self.fill_rate_by_class
                    .get_or_create(&vec![("order_class", class.clone())])
                    .set(r);
            }
        }
    }
}

/// The shared engine the HTTP handlers read.
#[derive(Clone)]
pub struct QualityState {
    engine: Arc<Mutex<ExecQuality>>,
}

/// What the routes share: the engine and the API keys (a trader reads only its accounts).
#[derive(Clone)]
struct Http {
    state: QualityState,
    keys: auth::ApiKeys,
}

impl QualityState {
    fn with<T>(&self, f: impl FnOnce(&ExecQuality) -> T) -> T {
        f(&self.engine.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub struct QualityService {
    pub state: QualityState,
    pub task: JoinHandle<Result<(), QualityError>>,
}

/// Replay the journal into a fresh engine and follow it.
pub fn start(
    journal: Journal,
    params: Params,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<QualityService, QualityError> {
    let mut engine = ExecQuality::new(params)?;
    engine.set_observations(true);
    let state = QualityState {
        engine: Arc::new(Mutex::new(engine)),
    };
    let m = QualityMetrics::register(&metrics);
    let sub = InProcessBus::new(journal).subscribe_ephemeral(">", StartAt::Beginning)?;
    let task = tokio::spawn(run(sub, state.clone(), m, shutdown));
    Ok(QualityService { state, task })
}

async fn run(
    mut sub: journal::InProcessSubscription,
    state: QualityState,
    m: QualityMetrics,
    shutdown: CancellationToken,
) -> Result<(), QualityError> {
    let mut exporter = Exporter::new();
    // Fill-rate gauges need a full report (a pass over every order): refresh them rarely, so
    // the cost stays off the order path under load. Histograms update per observation.
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut dirty = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                if std::mem::take(&mut dirty) {
                    state.with(|e| m.refresh_gauges(e));
                }
            }
            d = sub.next() => {
                let d = match d {
                    Ok(d) => d,
                    Err(JournalError::Closed) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let Some(record) = exporter.export(&d.event) else { continue };
                let observations = {
                    let mut engine = state.engine.lock().unwrap_or_else(|e| e.into_inner());
                    engine.on_record(&record);
                    engine.drain_observations()
                };
                for o in &observations {
                    m.observe(o);
                }
                dirty |= !matches!(record.kind, interchange::Kind::Quote | interchange::Kind::Trade);
            }
        }
    }
}

/// `GET /quality`, `GET /quality/orders/{id}`, `GET /reports/rule605?month=YYYY-MM&format=`.
pub fn router(state: QualityState, keys: auth::ApiKeys) -> Router {
    Router::new()
        .route("/quality", get(quality))
        .route("/quality/orders/{id}", get(order))
        .route("/reports/rule605", get(rule605))
        .fallback(telemetry::http::fallback)
        .with_state(Http { state, keys })
}

async fn quality(
    State(h): State<Http>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = h.keys.authenticate(&headers)?;
    telemetry::http::check_params(&q, &["account", "symbol", "from", "to"])?;
    let time = |name: &str| {
        q.get(name)
            .map(|v| {
                Timestamp::parse_rfc3339(v)
                    .map_err(|e| ApiError::unprocessable("invalid_field", format!("{name}: {e}")))
            })
            .transpose()
    };
    let account =
        match (q.get("account"), p.account_filter()) {
            (Some(a), _) => {
                let visible = model::AccountId::new(a.as_str()).is_ok_and(|id| p.sees(&id));
                if !visible {
                    return Err(ApiError::not_found(
                        "account_not_found",
                        format!("no account {a} for this API key"),
                    ));
                }
                Some(a.clone())
            }
            (None, None) => None,
            (None, Some(_)) => Some(p.default_account().map(ToString::to_string).ok_or_else(
                || ApiError::bad_request("missing_field", "missing query parameter `account`"),
            )?),
        };
    let filter = ReportFilter {
        account,
        symbol: q.get("symbol").map(|s| s.to_ascii_uppercase()),
        from: time("from")?,
        to: time("to")?,
    };
    let report = h.state.with(|e| e.report_filtered(&filter));
    Ok(axum::Json(report).into_response())
}

async fn order(
    State(h): State<Http>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = h.keys.authenticate(&headers)?;
    let not_found = || {
        ApiError::not_found(
            "order_not_found",
            format!("no order {id:?} seen by execution quality"),
        )
    };
    let o = h.state.with(|e| e.order(&id)).ok_or_else(not_found)?;
    let visible = match (&o.account, p.account_filter()) {
        (_, None) => true,
        (Some(a), Some(_)) => model::AccountId::new(a.as_str()).is_ok_and(|acct| p.sees(&acct)),
        (None, Some(_)) => false,
    };
    if !visible {
        return Err(not_found());
    }
    Ok(axum::Json(o).into_response())
}

async fn rule605(
    State(h): State<Http>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = h.keys.authenticate(&headers)?;
    if p.account_filter().is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the Rule 605 report covers every account: it needs a compliance or admin key",
        ));
    }
    telemetry::http::check_params(&q, &["month", "format"])?;
    let month = q.get("month").ok_or_else(|| {
        ApiError::bad_request("missing_field", "missing query parameter `month` (YYYY-MM)")
    })?;
    let report = h.state.with(|e| e.report());
    let r = execq::rule605(&report, month)
        .map_err(|e| ApiError::unprocessable("invalid_field", format!("month: {e}")))?;
    Ok(
        match q.get("format").map(String::as_str).unwrap_or("json") {
            "json" => axum::Json(r).into_response(),
            "csv" => (
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                execq::rule605_to_csv(&r),
            )
                .into_response(),
            "html" => (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                execq::rule605_to_html(&r),
            )
                .into_response(),
            other => {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    format!("format: {other:?} is not one of json, csv, html"),
                ));
            }
        },
    )
}
