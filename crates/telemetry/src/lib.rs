//! Observability shared by every trade2026 service: `tracing` set-up, one Prometheus registry per
//! service ([`Metrics`]), and the HTTP error contract ([`http`]). The runtime's HTTP host serves
//! a service's registry at `/metrics` on its port.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use serde::{Deserialize, Serialize};

pub mod freshness;
pub mod histogram;
pub mod http;
pub mod process;
pub mod redact;

pub use histogram::{AtomicHistogram, SampledCounter};
pub use prometheus_client;

/// Log output: readable text for a terminal or one JSON object per line for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Keeps the thread that writes the terminal log; dropping it writes out every queued line
/// (keep it until the process is about to exit).
#[must_use = "dropping the guard stops the terminal log"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Install the global `tracing` subscriber. `filter` uses `RUST_LOG` syntax (`info`,
/// `gateway=debug`); `RUST_LOG` in the environment wins. Safe to call twice (the second is a no-op).
pub fn init_tracing(format: LogFormat, filter: &str) -> LogGuard {
    init_tracing_with(format, filter, Vec::new())
}

/// A layer installed next to the terminal's (the logger's capture layer). It carries its own
/// filter: the terminal's `filter` does not limit what it sees.
pub type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The targets of the per-order log lines: the gateway's acceptances and rejections and the
/// engine's lifecycle lines (fills, cancels, expiries, stop triggers). Every `info` event of these
/// modules is such a line; their warnings and errors are not.
pub const ORDER_LINE_TARGETS: [&str; 2] = ["gateway::orders", "engine::lifecycle"];

/// The terminal's filter (`RUST_LOG` syntax) for `level`: without `order_lines`, the per-order
/// lines ([`ORDER_LINE_TARGETS`]) show only at `warn` and above. A line per order on the terminal
/// is unreadable at hundreds of orders a second, and formatting it on the HTTP workers plus
/// writing it cost the closed loop ~10% of its throughput (docs/BENCHMARKS.md); the logger keeps
/// every line through its own layer, whatever this filter says.
pub fn terminal_filter(level: &str, order_lines: bool) -> String {
    if order_lines {
        return level.to_owned();
    }
    let mut filter = level.to_owned();
    for target in ORDER_LINE_TARGETS {
        filter.push_str(&format!(",{target}=warn"));
    }
    filter
}

/// Lines queued for the terminal log's writer before a logging thread waits for it.
const TERMINAL_QUEUE_LINES: usize = 65_536;

/// [`init_tracing`] plus `extra` layers, each with its own filter.
///
/// The terminal log (stderr) is written by a thread of its own in buffered batches: the order
/// path logs a line per order, and a `write(2)` per line on the HTTP workers was ~5% of their
/// CPU in the closed loop. A full queue makes the logging thread wait (no line is dropped).
pub fn init_tracing_with(format: LogFormat, filter: &str, extra: Vec<ExtraLayer>) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    // Colours only for a person at a terminal: escape codes in a log file or a pipe are noise
    // to the reader and cost formatting on every line.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(TERMINAL_QUEUE_LINES)
        .thread_name("log-terminal")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let terminal = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(writer);
    let terminal: ExtraLayer = match format {
        LogFormat::Json => terminal
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => terminal.with_filter(filter).boxed(),
    };
    let mut layers = vec![terminal];
    layers.extend(extra);
    match tracing_subscriber::registry().with(layers).try_init() {
        Ok(()) => LogGuard {
            _writer: Some(guard),
        },
        // A subscriber was already installed: this writer is not used.
        Err(_) => LogGuard { _writer: None },
    }
}

/// Label set used by metric families: a list of `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// A family of [`AtomicHistogram`]s, one per label set.
pub type HistogramFamily = Family<Labels, AtomicHistogram, fn() -> AtomicHistogram>;

type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// One service's metrics registry: what its port's `/metrics` shows. Every registry has the
/// HTTP host's series (responses, refusals, request durations) and the process's (RSS, CPU,
/// threads, descriptors, start time); a service registers its own series on top
/// ([`Metrics::register`]). Cheap to clone; every clone shares the same registry.
///
/// The journal and feed series are registered only by [`Metrics::new`] (the registry of the
/// service that hosts the journal and the feeds: the gateway in `up`); a [`Metrics::service`]
/// registry has the fields too, but what is recorded there is never shown.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
    /// Run before each render, to read values that are sampled rather than counted (consumer
    /// lag, snapshot age, feed silence).
    hooks: Arc<RwLock<Vec<ScrapeHook>>>,
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
    /// Order books whose venue checksum (or sequence) did not match, by exchange.
    pub feed_checksum_mismatches: Family<Labels, Counter>,
    /// HTTP responses by service, route and status code.
    pub http_responses: Family<Labels, Counter>,
    /// Requests and connections the HTTP host refused to protect the service, by reason.
    pub http_refused: Family<Labels, Counter>,
    /// Time from the request reaching the host to its response, by service, method, route and
    /// status.
    pub http_request_seconds: HistogramFamily,
    process: ProcessGauges,
}

/// The process series, refreshed from `/proc` on every render.
#[derive(Clone, Default)]
struct ProcessGauges {
    resident_memory_bytes: Gauge,
    cpu_seconds: SampledCounter,
    start_time_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    open_fds: Gauge,
    threads: Gauge,
}

impl ProcessGauges {
    fn register(&self, registry: &mut Registry) {
        // Prometheus' conventional process metric names (client libraries use them), so
        // dashboards and the soak benchmark find trade2026_process_resident_memory_bytes.
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes (VmRSS), read when /metrics is rendered",
            self.resident_memory_bytes.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent by the process, in seconds",
            self.cpu_seconds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the unix epoch, in seconds",
            self.start_time_seconds.clone(),
        );
        registry.register(
            "process_open_fds",
            "File descriptors the process has open",
            self.open_fds.clone(),
        );
        registry.register(
            "process_threads",
            "OS threads of the process",
            self.threads.clone(),
        );
    }

    /// Where a figure cannot be read (not Linux) its series keeps its last value (0).
    fn refresh(&self) {
        let f = process::figures();
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(v) = f.resident_memory_bytes {
            self.resident_memory_bytes.set(int(v));
        }
        if let Some(v) = f.cpu_seconds {
            self.cpu_seconds.set(v);
        }
        if let Some(v) = f.start_time_seconds {
            self.start_time_seconds.set(v);
        }
        if let Some(v) = f.open_fds {
            self.open_fds.set(int(v));
        }
        if let Some(v) = f.threads {
            self.threads.set(int(v));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP, process, journal and feed series: for the service that hosts
    /// the journal and the feeds (the gateway in `up`), and for tests.
    pub fn new() -> Self {
        let m = Self::service();
        m.register(
            "journal_events_appended",
            "Events appended to the journal, by kind",
            m.events_appended.clone(),
        );
        m.register(
            "journal_append_latency_seconds",
            "Time from append to durable acknowledgement of a batch of feed events",
            m.journal_append_seconds.clone(),
        );
        m.register(
            "feed_messages",
            "Market-data feed messages received, by exchange and kind",
            m.feed_messages.clone(),
        );
        m.register(
            "feed_parse_errors",
            "Market-data messages that failed to parse, by exchange",
            m.feed_parse_errors.clone(),
        );
        m.register(
            "feed_connects",
            "Market-data feed connection attempts, by exchange and outcome",
            m.feed_connects.clone(),
        );
        m.register(
            "feed_checksum_mismatches",
            "Order books that failed the venue's checksum or sequence check (the feed resubscribes), by exchange",
            m.feed_checksum_mismatches.clone(),
        );
        m
    }

    /// A service's registry: the HTTP host's and the process's series only.
    pub fn service() -> Self {
        let mut registry = Registry::with_prefix("trade2026");
        let http_responses = Family::<Labels, Counter>::default();
        let http_refused = Family::<Labels, Counter>::default();
        let http_request_seconds: HistogramFamily =
            Family::new_with_constructor(AtomicHistogram::http);
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
        registry.register(
            "http_request_duration_seconds",
            "Time from a request reaching the HTTP host to its response head, by service, method, route and status",
            http_request_seconds.clone(),
        );
        let build_info = Family::<Labels, Gauge>::default();
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the version of trade2026 in its label",
            build_info,
        );
        let process = ProcessGauges::default();
        process.register(&mut registry);
        Metrics {
            registry: Arc::new(RwLock::new(registry)),
            hooks: Arc::new(RwLock::new(Vec::new())),
            events_appended: Family::default(),
            journal_append_seconds: Histogram::new(exponential_buckets(10e-6, 2.0, 16)),
            feed_messages: Family::default(),
            feed_parse_errors: Family::default(),
            feed_connects: Family::default(),
            feed_checksum_mismatches: Family::default(),
            http_responses,
            http_refused,
            http_request_seconds,
            process,
        }
    }

    /// Register a service's own metric in this registry. `name` gets the `trade2026_` prefix
    /// (and `_total` for a counter); `help` is what `# HELP` says.
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

    /// An [`AtomicHistogram`] over `bounds` registered under `name`.
    pub fn histogram(&self, name: &str, help: &str, bounds: &'static [f64]) -> AtomicHistogram {
        let h = AtomicHistogram::new(bounds);
        self.register(name, help, h.clone());
        h
    }

    /// Runs `hook` before every render: for series sampled at scrape time (a lag, an age).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(hook));
    }

    /// The registry in the Prometheus text exposition format (version 0.0.4, what
    /// `promtool check metrics` and every Prometheus server read). Sampled figures (process,
    /// hooks) are read first.
    pub fn render(&self) -> String {
        self.process.refresh();
        for hook in self.hooks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            hook();
        }
        let mut out = String::new();
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const METRICS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    /// Which of `events` (target, level) a subscriber with the terminal's filter lets through.
    fn shown(filter: &str, events: &[(&'static str, tracing::Level)]) -> Vec<String> {
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Clone, Default)]
        struct Seen(Arc<std::sync::Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let m = e.metadata();
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", m.target(), m.level()));
            }
        }
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(filter))
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            for (target, level) in events {
                // `target:` must be a constant: one call site per case.
                match (*target, *level) {
                    ("gateway::orders", tracing::Level::INFO) => {
                        tracing::info!(target: "gateway::orders", "order accepted")
                    }
                    ("gateway::orders", tracing::Level::ERROR) => {
                        tracing::error!(target: "gateway::orders", "engine failure")
                    }
                    ("engine::lifecycle", tracing::Level::INFO) => {
                        tracing::info!(target: "engine::lifecycle", "order filled")
                    }
                    ("gateway", tracing::Level::INFO) => {
                        tracing::info!(target: "gateway", "gateway listening")
                    }
                    other => panic!("no call site for {other:?}"),
                }
            }
        });
        seen.0.lock().unwrap().clone()
    }

    #[test]
    fn the_terminal_hides_per_order_lines_unless_asked_and_keeps_their_errors() {
        use tracing::Level;
        let events = [
            ("gateway::orders", Level::INFO),
            ("engine::lifecycle", Level::INFO),
            ("gateway::orders", Level::ERROR),
            ("gateway", Level::INFO),
        ];
        assert_eq!(
            shown(&terminal_filter("info", false), &events),
            ["gateway::orders ERROR", "gateway INFO"]
        );
        assert_eq!(
            shown(&terminal_filter("info", true), &events),
            [
                "gateway::orders INFO",
                "engine::lifecycle INFO",
                "gateway::orders ERROR",
                "gateway INFO"
            ]
        );
        // A quieter level stays quieter for every target.
        assert_eq!(
            shown(&terminal_filter("error", false), &events),
            ["gateway::orders ERROR"]
        );
    }

    #[test]
    fn metrics_render_in_prometheus_text_with_the_process_memory() {
        let m = Metrics::new();
        m.events_appended
            .get_or_create(&vec![("kind", "quote".to_string())])
            .inc_by(3);
        let text = m.render();
        // Prometheus text 0.0.4: HELP and TYPE name the counter's sample, `_total` included.
        assert!(
            text.contains(
                "# HELP trade2026_journal_events_appended_total Events appended to the journal, by kind.\n\
                 # TYPE trade2026_journal_events_appended_total counter\n\
                 trade2026_journal_events_appended_total{kind=\"quote\"} 3\n"
            ),
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
        assert!(!text.contains("# EOF"), "not OpenMetrics: {text}");
        #[cfg(target_os = "linux")]
        {
            let value = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .unwrap_or_else(|| panic!("{name} in {text}"))
                    .parse()
                    .unwrap()
            };
            assert!(value("trade2026_process_resident_memory_bytes") > f64::from(1 << 20));
            assert!(value("trade2026_process_threads") >= 1.0);
            assert!(value("trade2026_process_start_time_seconds") > 1.577e9);
            assert!(value("trade2026_process_cpu_seconds_total") >= 0.0);
        }
    }

    #[test]
    fn a_service_registry_shows_its_own_series_and_not_the_pipelines() {
        let m = Metrics::service();
        m.events_appended
            .get_or_create(&vec![("kind", "quote".to_string())])
            .inc();
        let lag = m.gauge("widget_lag_events", "Widgets behind");
        lag.set(7);
        let h = m.histogram("widget_seconds", "Widget time", histogram::LATENCY_BUCKETS);
        h.observe(0.0015);
        let text = m.render();
        assert!(!text.contains("journal_events_appended"), "{text}");
        assert!(text.contains("trade2026_widget_lag_events 7\n"), "{text}");
        assert!(
            text.contains("trade2026_widget_seconds_bucket{le=\"0.001\"} 0\n")
                && text.contains("trade2026_widget_seconds_bucket{le=\"0.0015\"} 1\n")
                && text.contains("trade2026_widget_seconds_bucket{le=\"+Inf\"} 1\n")
                && text.contains("trade2026_widget_seconds_count 1\n"),
            "{text}"
        );
        assert!(text.contains("trade2026_build_info{version=\""), "{text}");
    }

    #[test]
    fn scrape_hooks_run_before_each_render() {
        let m = Metrics::service();
        let g = m.gauge("renders", "Renders so far");
        let counted = g.clone();
        m.on_scrape(move || {
            counted.inc();
        });
        m.render();
        assert!(m.render().contains("trade2026_renders 2\n"));
    }

    #[test]
    fn http_durations_are_histograms_by_label() {
        let m = Metrics::service();
        m.http_request_seconds
            .get_or_create(&vec![
                ("service", "gateway".to_owned()),
                ("method", "POST".to_owned()),
                ("route", "/orders".to_owned()),
                ("status", "201".to_owned()),
            ])
            .observe(0.002);
        let text = m.render();
        assert!(
            text.contains(
                "trade2026_http_request_duration_seconds_bucket{service=\"gateway\",method=\"POST\",route=\"/orders\",status=\"201\",le=\"0.0025\"} 1\n"
            ),
            "{text}"
        );
    }
}
