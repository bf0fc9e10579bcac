//! Observability shared by every trade2026 service: `tracing` set-up, one Prometheus registry for
//! the process, and the HTTP error contract ([`http`]). The runtime's HTTP host serves the
//! registry at `/metrics` on every port.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use serde::{Deserialize, Serialize};

pub mod http;
pub mod process;
pub mod redact;

pub use prometheus_client;

/// Log output: readable text for a terminal or one JSON object per line for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Install the global `tracing` subscriber. `filter` uses `RUST_LOG` syntax (`info`,
/// `gateway=debug`); `RUST_LOG` in the environment wins. Safe to call twice (the second is a no-op).
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Label set used by metric families: a list of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// The process-wide metrics. Cheap to clone; every clone shares the same counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    /// Events appended to the journal, by kind.
    pub events_appended: Family<Labels, Counter>,
    /// Time from `append` call to durable acknowledgement.
    pub journal_append_seconds: Histogram,
    /// Raw messages received from market-data feeds, by exchange and kind.
    pub feed_messages: Family<Labels, Counter>,
    /// Feed messages that failed to parse, by exchange.
    pub feed_parse_errors: Family<Labels, Counter>,
    /// Feed (re)connections, by exchange and outcome.
    pub feed_connects: Family<Labels, Counter>,
    /// HTTP responses by service, route and status code.
    pub http_responses: Family<Labels, Counter>,
    /// Requests and connections the HTTP host refused to protect the service, by reason.
    pub http_refused: Family<Labels, Counter>,
    /// Resident set size, refreshed from `/proc/self/status` on every [`Metrics::render`].
    resident_memory_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("trade2026");
        let events_appended = Family::<Labels, Counter>::default();
        let journal_append_seconds = Histogram::new(exponential_buckets(10e-6, 2.0, 16));
        let feed_messages = Family::<Labels, Counter>::default();
        let feed_parse_errors = Family::<Labels, Counter>::default();
        let feed_connects = Family::<Labels, Counter>::default();
        let http_responses = Family::<Labels, Counter>::default();
        let http_refused = Family::<Labels, Counter>::default();
        registry.register(
            "journal_events_appended",
            "Events appended to the journal, by kind",
            events_appended.clone(),
        );
        registry.register(
            "journal_append_latency_seconds",
            "Time from append to durable acknowledgement",
            journal_append_seconds.clone(),
        );
        registry.register(
            "feed_messages",
            "Market-data feed messages received, by exchange and kind",
            feed_messages.clone(),
        );
        registry.register(
            "feed_parse_errors",
            "Market-data messages that failed to parse, by exchange",
            feed_parse_errors.clone(),
        );
        registry.register(
            "feed_connects",
            "Market-data feed connection attempts, by exchange and outcome",
            feed_connects.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses, by service, route and status",
            http_responses.clone(),
        );
        registry.register(
            "http_refused",
            "Requests and connections refused by the HTTP host (rate limits, caps, timeouts, origin and media-type checks), by service and reason",
            http_refused.clone(),
        );
        // Prometheus' conventional process metric name (node and client libraries use it), so
        // existing dashboards and the soak benchmark find it as trade2026_process_resident_memory_bytes.
        let resident_memory_bytes = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes (VmRSS), read when /metrics is rendered",
            resident_memory_bytes.clone(),
        );
        Metrics {
            registry: Arc::new(RwLock::new(registry)),
            events_appended,
            journal_append_seconds,
            feed_messages,
            feed_parse_errors,
            feed_connects,
            http_responses,
            http_refused,
            resident_memory_bytes,
        }
    }

    /// Register a service's own metric in the shared registry.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// A gauge registered under `name`, for quick service-level values.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let g = Gauge::default();
        self.register(name, help, g.clone());
        g
    }

    /// The registry in Prometheus text exposition format. Process figures are read here, at
    /// scrape time; where they cannot be read (not Linux) the gauge keeps its last value (0).
    pub fn render(&self) -> String {
        if let Some(bytes) = process::resident_memory_bytes() {
            self.resident_memory_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_in_prometheus_text_with_the_process_memory() {
        let m = Metrics::new();
        m.events_appended
            .get_or_create(&vec![("kind", "quote".to_string())])
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains("trade2026_journal_events_appended_total{kind=\"quote\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE trade2026_journal_append_latency_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE trade2026_process_resident_memory_bytes gauge"),
            "{text}"
        );
        #[cfg(target_os = "linux")]
        {
            let rss: i64 = text
                .lines()
                .find_map(|l| l.strip_prefix("trade2026_process_resident_memory_bytes "))
                .expect("the RSS sample line")
                .parse()
                .unwrap();
            assert!(rss > 1 << 20, "{text}");
        }
    }
}
