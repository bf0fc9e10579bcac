//! The monitoring service (port 8113): it scrapes every service's `/metrics`, keeps recent
//! history, evaluates alert rules and says what it found: to a webhook in Alertmanager's format,
//! at `GET /api/v1/alerts` in Prometheus' shape, and on a status page at `GET /`.
//!
//! The core is pure and tested on its own: [`exposition`] (the text format), [`history`] (ring
//! buffers per series, bounded), [`rules`] (rule files and their evaluation), [`alerts`] (alert
//! states and both answer formats), [`page`] (the status page with its SVG charts). This file
//! is the thin shell: the scrape loop, the webhook client, the shared state.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use telemetry::Metrics;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod alerts;
pub mod exposition;
pub mod history;
mod http;
pub mod page;
pub mod rules;

pub use http::router;

use alerts::Alerts;
use exposition::Labels;
use history::{History, Limits, Millis};
use rules::RuleFile;

/// The OpenAPI document of the routes, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the monitor is told to do (the `monitoring` config section, resolved).
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    pub timeout: Duration,
    /// How much history is kept (charts, rule windows).
    pub history: Duration,
    pub rules: RuleFile,
    pub webhook_url: Option<String>,
    pub repeat: Duration,
    /// Where people open the status page (links in alerts).
    pub external_url: String,
}

impl Settings {
    /// Reads `monitoring.rules_file` (the built-in rules without one).
    pub fn from_config(
        c: &config::MonitoringSection,
        external_url: String,
    ) -> Result<Settings, MonitorError> {
        let rules = match &c.rules_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| MonitorError::Rules {
                    path: path.display().to_string(),
                    source,
                })?;
                RuleFile::parse(&text, &path.display().to_string())?
            }
            None => RuleFile::defaults(),
        };
        Ok(Settings {
            interval: Duration::from_secs(c.scrape_interval_secs.max(1)),
            timeout: Duration::from_secs(c.scrape_timeout_secs.max(1)),
            history: Duration::from_secs(c.history_minutes.max(1) * 60),
            rules,
            webhook_url: c.webhook_url.clone(),
            repeat: Duration::from_secs(c.repeat_interval_minutes.max(1) * 60),
            external_url: c
                .external_url
                .clone()
                .unwrap_or(external_url)
                .trim_end_matches('/')
                .to_owned(),
        })
    }
}

/// A service to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    /// `http://host:port/metrics`.
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("reading the rules file {path}: {source}")]
    Rules {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    BadRules(#[from] rules::RulesError),
    #[error("the HTTP client: {0}")]
    Client(String),
}

/// How one target answered its last scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    pub service: String,
    pub url: String,
    pub up: bool,
    /// When it was last scraped (ms since the epoch); `None` before the first round.
    pub scraped_at: Option<Millis>,
    pub duration: Duration,
    pub error: Option<String>,
    pub samples: usize,
}

/// Everything the routes read.
pub(crate) struct State {
    pub(crate) history: History,
    pub(crate) alerts: Alerts,
    pub(crate) targets: Vec<TargetStatus>,
    pub(crate) rules: RuleFile,
    pub(crate) settings: Settings,
    /// When the rules were last evaluated.
    pub(crate) evaluated_at: Option<Millis>,
}

/// The running monitor. Cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    state: Arc<Mutex<State>>,
}

impl Monitor {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The targets and how they last answered.
    pub fn targets(&self) -> Vec<TargetStatus> {
        self.lock().targets.clone()
    }
}

/// The series the status page draws, kept besides what the rules read.
pub const CHART_SERIES: [&str; 3] = [
    "trade2026_order_ack_seconds_count",
    "trade2026_order_ack_seconds_bucket",
    "trade2026_consumer_lag_events",
];

/// The synthetic series of scrape outcomes: 1 when the target answered, 0 when not.
pub const UP: &str = "up";

/// Series kept at most (each ring holds the history window).
const MAX_SERIES: usize = 20_000;

/// The monitor's own series, on its port's `/metrics`.
#[derive(Clone)]
struct OwnMetrics {
    scrapes: Family<telemetry::Labels, Counter>,
    deliveries: Family<telemetry::Labels, Counter>,
    alerts: Family<telemetry::Labels, Gauge>,
    series: Gauge,
}

impl OwnMetrics {
    fn register(m: &Metrics) -> OwnMetrics {
        let own = OwnMetrics {
            scrapes: Family::default(),
            deliveries: Family::default(),
            alerts: Family::default(),
            series: Gauge::default(),
        };
        m.register(
            "monitoring_scrapes",
            "Scrapes of each target, by service and outcome (ok, error)",
            own.scrapes.clone(),
        );
        m.register(
            "monitoring_webhook_deliveries",
            "Alert notifications POSTed to the webhook, by outcome (ok, error)",
            own.deliveries.clone(),
        );
        m.register(
            "monitoring_alerts",
            "Alerts the rules raise now, by state (pending, firing)",
            own.alerts.clone(),
        );
        m.register(
            "monitoring_series",
            "Series held in the monitor's history",
            own.series.clone(),
        );
        own
    }
}

fn now_ms() -> Millis {
    model::Timestamp::now().as_nanos() / 1_000_000
}

/// Starts the scrape loop over `targets`; the returned monitor serves the routes.
pub fn start(
    settings: Settings,
    targets: Vec<Target>,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(Monitor, JoinHandle<()>), MonitorError> {
    let points = (settings.history.as_millis() / settings.interval.as_millis().max(1)) as usize + 2;
    let mut keep: HashSet<String> = settings.rules.metric_names().into_iter().collect();
    keep.extend(CHART_SERIES.iter().map(|s| (*s).to_owned()));
    keep.insert(UP.to_owned());
    let history = History::new(
        Limits {
            window_ms: settings.history.as_millis() as Millis,
            points,
            max_series: MAX_SERIES,
        },
        Some(keep),
    );
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .build()
        .map_err(|e| MonitorError::Client(e.to_string()))?;
    let monitor = Monitor {
        state: Arc::new(Mutex::new(State {
            history,
            alerts: Alerts::new(),
            targets: targets
                .iter()
                .map(|t| TargetStatus {
                    service: t.service.clone(),
                    url: t.url.clone(),
                    up: false,
                    scraped_at: None,
                    duration: Duration::ZERO,
                    error: None,
                    samples: 0,
                })
                .collect(),
            rules: settings.rules.clone(),
            settings,
            evaluated_at: None,
        })),
    };
    let own = OwnMetrics::register(metrics);
    let task = tokio::spawn(run(monitor.clone(), targets, client, own, shutdown));
    Ok((monitor, task))
}

async fn run(
    monitor: Monitor,
    targets: Vec<Target>,
    client: reqwest::Client,
    own: OwnMetrics,
    shutdown: CancellationToken,
) {
    let interval = monitor.lock().settings.interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        round(&monitor, &targets, &client, &own).await;
    }
}

/// One scrape of `target`: its samples, or why not.
async fn scrape(
    client: &reqwest::Client,
    target: &Target,
) -> (Duration, Result<Vec<exposition::Sample>, String>) {
    let started = Instant::now();
    let result = async {
        let response = client
            .get(&target.url)
            .send()
            .await
            .map_err(|e| format!("no answer: {}", error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading the answer: {}", error_chain(&e)))?;
        exposition::parse(&text).map_err(|e| format!("not in the text format: {e}"))
    }
    .await;
    (started.elapsed(), result)
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Scrapes every target, records, evaluates the rules, then delivers what is due.
async fn round(monitor: &Monitor, targets: &[Target], client: &reqwest::Client, own: &OwnMetrics) {
    // Side by side: a slow target does not delay the others.
    let results = futures_util::future::join_all(targets.iter().map(|t| scrape(client, t))).await;
    let now = now_ms();
    let (payloads, webhook) = {
        let mut guard = monitor.lock();
        let state = &mut *guard;
        for (target, (took, result)) in targets.iter().zip(results) {
            let up = result.is_ok();
            let status = state
                .targets
                .iter_mut()
                .find(|s| s.service == target.service && s.url == target.url);
            let outcome = if up { "ok" } else { "error" };
            own.scrapes
                .get_or_create(&vec![
                    ("service", target.service.clone()),
                    ("outcome", outcome.to_owned()),
                ])
                .inc();
            let (samples, error) = match result {
                Ok(samples) => (samples, None),
                Err(e) => {
                    tracing::debug!(service = %target.service, error = %e, "scrape failed");
                    (Vec::new(), Some(e))
                }
            };
            if let Some(s) = status {
                s.up = up;
                s.scraped_at = Some(now);
                s.duration = took;
                s.samples = samples.len();
                s.error = error;
            }
            state.history.record(&target.service, now, samples);
            let labels: Labels = [("service".to_owned(), target.service.clone())].into();
            state
                .history
                .push(UP.to_owned(), labels, now, if up { 1.0 } else { 0.0 });
        }
        state.history.prune(now);
        let stale = 3 * state.settings.interval.as_millis() as Millis;
        for rule in state.rules.rules() {
            let values = rules::eval(&rule.expr, &state.history, now, stale);
            state.alerts.evaluate(rule, &values, now);
        }
        state.evaluated_at = Some(now);
        own.series.set(state.history.len() as i64);
        for s in ["pending", "firing"] {
            let n = state
                .alerts
                .active()
                .filter(|a| {
                    matches!(
                        (a.state, s),
                        (alerts::State::Pending, "pending") | (alerts::State::Firing, "firing")
                    )
                })
                .count();
            own.alerts
                .get_or_create(&vec![("state", s.to_owned())])
                .set(n as i64);
        }
        match state.settings.webhook_url.clone() {
            Some(url) => (
                state.alerts.due(
                    now,
                    state.settings.repeat.as_millis() as Millis,
                    "trade2026-monitoring",
                    &state.settings.external_url,
                ),
                Some(url),
            ),
            None => {
                state.alerts.forget_deliveries();
                (Vec::new(), None)
            }
        }
    };
    let Some(url) = webhook else { return };
    for payload in payloads {
        let delivered = client
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&payload).unwrap_or_default())
            .send()
            .await
            .map_err(|e| error_chain(&e))
            .and_then(|r| {
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("answered {}", r.status()))
                }
            });
        let outcome = match delivered {
            Ok(()) => {
                monitor.lock().alerts.delivered(payload.alertname(), now);
                "ok"
            }
            Err(e) => {
                // Kept as due: the next round sends it again.
                tracing::warn!(webhook = %url, alert = payload.alertname(), error = %e, "alert webhook failed");
                "error"
            }
        };
        own.deliveries
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }
}
