use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use config::Config;
use feeds::synthetic::{SyntheticMarket, SyntheticSpec};
use journal::{InProcessBus, Journal, StartAt, Subscription};
use model::{Event, Timestamp};
use telemetry::Metrics;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{FeedSpec, PlatformError};

/// What to run besides the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Market-data sources; empty means what `feed.mode` says (the synthetic market by default).
    pub feeds: Vec<FeedSpec>,
    /// Accept gateway requests without an API key, as admin (never on a shared machine).
    pub insecure_dev: bool,
    /// The queue the process's `tracing` capture layer feeds (installed before the platform
    /// starts); the logger service writes what it holds. `None`: the logger takes only pushes.
    pub log_intake: Option<logger::Intake>,
}

/// A started platform. Cancel the shutdown token, then await [`Running::stopped`].
pub struct Running {
    banner: String,
    gateway_addr: SocketAddr,
    journal: Journal,
    publisher: JoinHandle<Result<u64, PlatformError>>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), PlatformError>>)>,
    /// The dev key for `test_account` created at start (shown once).
    pub dev_key: String,
    /// The dev admin key created at start (shown once).
    pub admin_key: String,
}

/// Events waiting between the feeds and the journal. Large enough to absorb a burst while a
/// group commit is in flight; a full channel slows the feeds down rather than dropping data.
const FEED_CHANNEL: usize = 65_536;
const PUBLISH_BATCH: usize = 4_096;

pub async fn start(
    cfg: Config,
    opts: Options,
    shutdown: CancellationToken,
) -> Result<Running, PlatformError> {
    check_insecure_dev(&cfg, opts.insecure_dev)?;
    let data_dir = cfg.platform.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| PlatformError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    // One metrics registry per service (each port's /metrics shows its own): this one is the
    // gateway's, which in `up` also hosts the journal, the feeds and the engine.
    let metrics = Metrics::new();

    let journal_path = cfg.journal_path();
    let (journal, recovery) = Journal::open(&journal_path)?;
    tracing::info!(path = %journal_path.display(), ?recovery, "journal open");
    let bus = InProcessBus::new(journal.clone());
    // Every journal consumer runs through this one runner (restart, checkpoints, metrics).
    let runner = runtime::Runner::new(
        bus.clone(),
        runtime::ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );

    let mut tasks: Vec<(&'static str, JoinHandle<Result<(), PlatformError>>)> = Vec::new();

    // --- feeds -> publisher -> journal ------------------------------------------------------
    let (tx, rx) = mpsc::channel::<Event>(FEED_CHANNEL);
    let silence = crate::feed_metrics::FeedSilence::register(&metrics);
    let publisher = tokio::spawn(publish(
        journal.clone(),
        rx,
        metrics.clone(),
        silence.clone(),
    ));
    let feed_specs = if !opts.feeds.is_empty() {
        opts.feeds
    } else if cfg.feed.mode == config::FeedMode::Live {
        live_specs_from_config(&cfg)?
    } else {
        vec![FeedSpec::Synthetic]
    };
    // Live feeds record when they last delivered; /marketdata and the gateway's /health show it.
    let freshness = telemetry::freshness::Freshness::new();
    let mut feed_lines = Vec::new();
    for spec in feed_specs {
        match &spec {
            FeedSpec::Synthetic => silence.expect(feeds::synthetic::SIM_VENUE),
            FeedSpec::Live(live) => silence.expect(live.exchange.as_str()),
            FeedSpec::Replay { .. } => {}
        }
        feed_lines.push(match &spec {
            FeedSpec::Synthetic => format!(
                "synthetic market, seed {} ({})",
                cfg.feed.synthetic.seed,
                cfg.feed
                    .synthetic
                    .symbols
                    .iter()
                    .map(|s| s.symbol.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.describe(),
        });
        tasks.push((
            "feed",
            spawn_feed(
                spec,
                &cfg,
                &freshness,
                tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            )?,
        ));
    }
    // The publisher ends when every feed has dropped its sender.
    drop(tx);

    // --- consumers ---------------------------------------------------------------------------
    let store_path = cfg.marketdata_path();
    let (sinks_handle, sinks_task) = runner
        .start_stored(
            runtime::Spec::new("sink-ticks", sinks::TickStore::FILTER),
            sinks::TickStore::open(&store_path)?,
        )
        .await?;
    tasks.push(("sinks", runtime_task("sinks", sinks_task)));

    let market = gateway::MarketCache::with_freshness(freshness);
    // The last 50 000 events, or what the journal still holds after an archive.
    let recent = (journal.last_seq().saturating_sub(50_000) + 1).max(journal.first_seq());
    tasks.push((
        "gateway-market",
        tokio::spawn(feed_market_cache(
            bus.clone(),
            market.clone(),
            recent,
            shutdown.clone(),
        )),
    ));

    // --- trading engine + API keys ------------------------------------------------------------
    let snapshot_policy = runtime::SnapshotPolicy {
        every_events: cfg.platform.snapshots.every_events.max(1),
        every: Duration::from_secs(cfg.platform.snapshots.every_secs.max(1)),
        keep: cfg.platform.snapshots.keep.max(1),
    };
    let engine_config = engine::EngineConfig {
        core: engine::CoreConfig {
            risk: cfg.risk.clone(),
            venue: cfg.venue.clone(),
            retention: cfg.engine.retention,
        },
        day_session_end_utc: cfg
            .engine
            .day_session_end_utc
            .as_deref()
            .and_then(config::parse_hh_mm)
            .and_then(|(h, m)| chrono::NaiveTime::from_hms_opt(h, m, 0)),
        snapshots: snapshot_policy,
    };
    let core = gateway::start_core(
        gateway::CoreSpec {
            journal: journal.clone(),
            engine: engine_config,
            data_dir: data_dir.clone(),
            idempotency_window_secs: cfg.gateway.idempotency_window_secs,
            gauges: engine::EngineGauges::register(&metrics),
        },
        &runner,
        shutdown.clone(),
    )
    .await?;
    let core_reads = core.reads.clone();
    for (name, task) in core.tasks {
        tasks.push((
            name,
            tokio::spawn(async move {
                match task.await {
                    Ok(r) => r.map_err(|e| PlatformError::Task(format!("{name}: {e}"))),
                    Err(e) => Err(PlatformError::Task(format!("{name}: {e}"))),
                }
            }),
        ));
    }
    let keys_path = data_dir.join("api_keys.json");
    let keys = gateway::ApiKeys::open(&keys_path)?.with_insecure_dev(opts.insecure_dev);
    let dev_account = model::AccountId::new(cfg.gateway.default_account.clone()).map_err(|e| {
        PlatformError::FeedSpec {
            spec: "gateway.default_account".into(),
            reason: e.to_string(),
        }
    })?;
    let dev_key = keys.create_ephemeral(
        gateway::Role::Trader,
        gateway::Accounts::Some([dev_account.clone()].into()),
    )?;
    let admin_key = keys.create_ephemeral(
        gateway::Role::Admin,
        gateway::Accounts::All(gateway::AllMarker::All),
    )?;
    if opts.insecure_dev {
        tracing::warn!(
            "INSECURE DEV MODE: the gateway accepts requests WITHOUT an API key and treats them as admin. \
             Never run this on a shared machine or a public interface."
        );
    }

    // --- services on their own ports -------------------------------------------------------------
    let (quality_metrics, quality_runner) = service_registry(&runner);
    let (quality, quality_tasks) = execution_quality::start(
        &quality_runner,
        &data_dir,
        cfg.execution_quality.clone(),
        &quality_metrics,
        snapshot_policy,
    )
    .await?;
    for (name, task) in quality_tasks {
        tasks.push((
            name,
            tokio::spawn(async move {
                match task.await {
                    Ok(r) => r.map_err(|e| PlatformError::Task(format!("execution quality: {e}"))),
                    Err(e) => Err(PlatformError::Task(format!("execution quality: {e}"))),
                }
            }),
        ));
    }
    let (scanner_metrics, scanner_runner) = service_registry(&runner);
    let scanner = compliance_scanner::start(
        &scanner_runner,
        &data_dir,
        compliance_scanner::ScannerConfig {
            params: cfg.surveillance.clone(),
            account_owners: cfg
                .compliance_scanner
                .account_owners
                .clone()
                .into_iter()
                .collect(),
        },
        snapshot_policy,
        &scanner_metrics,
        shutdown.clone(),
    )
    .await?;
    let scanner_routes = scanner.router(keys.clone());
    let scanner_probes: Vec<Box<dyn runtime::Probe>> = vec![
        Box::new(scanner.writer.clone()),
        Box::new(scanner.scanner.clone()),
    ];
    for (name, task) in scanner.tasks {
        tasks.push((name, runtime_task(name, task)));
    }

    let report_store = match &cfg.seaweedfs.s3_endpoint {
        Some(endpoint) => {
            reports::ReportStore::s3(endpoint, &cfg.seaweedfs.bucket, &cfg.seaweedfs.prefix)?
        }
        None => reports::ReportStore::local(&data_dir.join("reports"))?,
    };
    let report_target = report_store.target().to_string();
    let marks_cache = market.clone();
    let ptrc_settings = ptrc_service::Settings {
        default_method: cfg
            .modules
            .pnl
            .default_method
            .as_str()
            .parse()
            .unwrap_or(ptrc::pnl::Method::Fifo),
        tax: ptrc::tax::TaxSettings {
            wash_sale_window_days: cfg.modules.tax.wash_sale_window_days,
            ..Default::default()
        },
        var_confidence: cfg
            .modules
            .risk
            .var_confidence
            .to_string()
            .parse()
            .unwrap_or(0.99),
        account_owners: cfg
            .compliance_scanner
            .account_owners
            .clone()
            .into_iter()
            .collect(),
        limits: ptrc_service::Limits::default(),
    };
    // P&L books (snapshots + journal tail), its own alert store; history from the blotter.
    let (ptrc_metrics, ptrc_runner) = service_registry(&runner);
    let ptrc = ptrc_service::start(
        &ptrc_runner,
        &data_dir,
        snapshot_policy,
        ptrc_service::Inputs {
            marks: std::sync::Arc::new(move |symbol: &str| marks_cache.mid(symbol)),
            history: Some(sinks::TickStore::open(&store_path)?),
            blotter: core_reads.blotter.clone(),
            reports: report_store,
            keys: keys.clone(),
        },
        ptrc_settings,
    )
    .await?;
    let ptrc_probes = ptrc.service.probes();
    let ptrc_svc = ptrc.service;
    for (name, task) in ptrc.tasks {
        tasks.push((name, runtime_task(name, task)));
    }

    let online_store = cfg.feast.online_store.connection_string.clone();
    let (features_metrics, features_runner) = service_registry(&runner);
    let (feature_svc, feature_task) = feature_pipeline::start(
        &features_runner,
        &data_dir,
        snapshot_policy,
        feature_pipeline::PipelineConfig {
            project: "trade2026".to_string(),
            online_store: online_store.clone(),
            materialize_every: Duration::from_secs(
                u64::from(cfg.materialization.interval_minutes.max(1)) * 60,
            ),
            stale_after: Duration::from_secs(
                u64::from(cfg.materialization.freshness_bound_minutes.max(1)) * 60,
            ),
            engine: feature_pipeline::EngineParams::default(),
        },
        &features_metrics,
        shutdown.clone(),
    )
    .await?;
    tasks.push((
        "feature-pipeline",
        tokio::spawn(async move {
            match feature_task.await {
                Ok(r) => r.map_err(|e| PlatformError::Task(format!("feature pipeline: {e}"))),
                Err(e) => Err(PlatformError::Task(format!("feature pipeline: {e}"))),
            }
        }),
    ));

    // --- HTTP ports ------------------------------------------------------------------------
    let feeds_health = market.clone();
    let gateway_app = gateway::router(gateway::Gateway {
        market,
        engine: core.engine,
        keys: keys.clone(),
        reads: core_reads.clone(),
        shutdown: shutdown.clone(),
        streams: gateway::StreamSlots::new(
            cfg.services.http.max_streams,
            cfg.services.http.max_streams_per_key,
            metrics.clone(),
        ),
    });
    let gateway_addr = serve_host(
        &cfg,
        &mut tasks,
        "gateway",
        gateway_app,
        &metrics,
        &shutdown,
        vec![
            Box::new(core.snapshotter.clone()),
            Box::new(core_reads.blotter_writer.clone()),
            Box::new(core_reads.positions.clone()),
            Box::new(sinks_handle),
        ],
        vec![(
            "feeds",
            std::sync::Arc::new(move || feeds_health.feeds_health()),
        )],
    )
    .await?;
    let ptrc_addr = serve_with(
        &cfg,
        &mut tasks,
        "ptrc",
        ptrc_service::router(ptrc_svc),
        &ptrc_metrics,
        &shutdown,
        ptrc_probes,
    )
    .await?;
    let feature_probe: Vec<Box<dyn runtime::Probe>> =
        vec![Box::new(feature_svc.consumer().clone())];
    let features_addr = serve_with(
        &cfg,
        &mut tasks,
        "feature_pipeline",
        feature_pipeline::router(feature_svc, keys.clone()),
        &features_metrics,
        &shutdown,
        feature_probe,
    )
    .await?;
    let quality_addr = serve_with(
        &cfg,
        &mut tasks,
        "execution_quality",
        execution_quality::router(quality.clone(), keys.clone()),
        &quality_metrics,
        &shutdown,
        vec![Box::new(quality.consumer().clone())],
    )
    .await?;
    let scanner_addr = serve_with(
        &cfg,
        &mut tasks,
        "compliance_scanner",
        scanner_routes,
        &scanner_metrics,
        &shutdown,
        scanner_probes,
    )
    .await?;

    // --- logger: every service's lines, pushed lines, order timelines --------------------------
    let (logger_metrics, logger_runner) = service_registry(&runner);
    let logs = logger::start(
        &logger_runner,
        &data_dir,
        opts.log_intake
            .clone()
            .unwrap_or_else(|| logger::Intake::new(logger::capture::DEFAULT_QUEUE)),
        logger::LoggerConfig {
            retention: logger::Retention {
                max_age_ms: i64::from(cfg.logger.retention_days) * 86_400_000,
                max_bytes: cfg.logger.max_bytes,
            },
        },
        &logger_metrics,
        shutdown.clone(),
    )
    .await?;
    let logger_routes = logs.router(
        keys.clone(),
        cfg.services.http.max_streams,
        shutdown.clone(),
    );
    let logger_host = runtime::http::Host::bind(
        "logger",
        &cfg.services.host,
        cfg.service_port("logger").unwrap_or(0),
    )
    .await?
    .limits(http_limits(&cfg.services.http))
    .probe(logs.index.clone())
    .accept_body("/loki/api/v1/push", "application/x-protobuf")
    .accept_body("/logs", "application/x-ndjson");
    let logger_addr = logger_host.addr();
    tasks.push((
        "logger",
        runtime_task(
            "logger",
            logger_host.serve(logger_routes, logger_metrics, shutdown.clone()),
        ),
    ));
    for (name, task) in logs.tasks {
        tasks.push((name, runtime_task(name, task)));
    }

    // --- monitoring: scrapes every port above, itself and `monitoring.targets` ----------------
    let scraped = [
        ("gateway", gateway_addr),
        ("ptrc", ptrc_addr),
        ("feature_pipeline", features_addr),
        ("execution_quality", quality_addr),
        ("compliance_scanner", scanner_addr),
        ("logger", logger_addr),
    ];
    let (monitoring_addr, watched) =
        start_monitoring(&cfg, &mut tasks, &scraped, &shutdown).await?;

    // Under --insecure-dev every port says on its own line that it takes requests without a key.
    let keyless = if opts.insecure_dev {
        "   [KEYLESS: no API key needed, every request is admin]"
    } else {
        ""
    };
    let mut banner = String::new();
    let _ = writeln!(banner, "trade2026 {} is up", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(
        banner,
        "  data dir     {}  (journal {} events, last seq {})",
        data_dir.display(),
        recovery.events,
        recovery.last_seq
    );
    for line in feed_lines {
        let _ = writeln!(banner, "  feed         {line}");
    }
    let _ = writeln!(
        banner,
        "  gateway      http://{gateway_addr}   POST /orders, GET /orders /fills /positions /marketdata/{{symbol}} /stream /openapi.json{keyless}"
    );
    let _ = writeln!(
        banner,
        "  api key      {dev_key}   (trader, account {dev_account})"
    );
    let _ = writeln!(banner, "  admin key    {admin_key}   (admin: /admin/risk)");
    if opts.insecure_dev {
        let _ = writeln!(
            banner,
            "  WARNING      --insecure-dev: requests without a key are accepted as admin"
        );
    }
    let _ = writeln!(
        banner,
        "  ptrc         http://{ptrc_addr}   POST /pnl/compute /tax/1099b /risk/var /risk/stress /compliance/scan, GET /reports  (reports -> {report_target}){keyless}"
    );
    let _ = writeln!(
        banner,
        "  features     http://{features_addr}   POST /get-online-features, GET /features/{{view}}/{{entity}} /status  (online store: {}){keyless}",
        online_store
            .as_deref()
            .map_or_else(|| "embedded".into(), telemetry::redact::connection_string)
    );
    let _ = writeln!(
        banner,
        "  exec quality http://{quality_addr}   GET /quality /quality/orders/{{id}} /reports/rule605?month=YYYY-MM /metrics{keyless}"
    );
    let _ = writeln!(
        banner,
        "  compliance   http://{scanner_addr}   GET /alerts, POST /alerts/{{key}}/ack (compliance or admin key){keyless}"
    );
    let _ = writeln!(
        banner,
        "  logger       http://{logger_addr}   GET /logs /logs/tail /orders/{{id}}/timeline, POST /loki/api/v1/push /logs  (lines -> {}){keyless}",
        data_dir.join(logger::FILE_NAME).display()
    );
    let _ = writeln!(
        banner,
        "  monitoring   http://{monitoring_addr}   GET / (status page) /api/v1/alerts  ({watched} targets, alerts -> {}){keyless}",
        cfg.monitoring.webhook_url.as_deref().map_or_else(
            || "/api/v1/alerts only".into(),
            telemetry::redact::connection_string
        )
    );
    let _ = writeln!(
        banner,
        "  sinks        ticks + alt series -> {}",
        store_path.display()
    );
    let _ = write!(banner, "Press Ctrl-C to stop.");

    // A service that dies must not leave the others serving (health 200, every order a 503):
    // the first task to fail cancels the shutdown token, and `up` exits with its error.
    let tasks = tasks
        .into_iter()
        .map(|(name, task)| {
            let token = shutdown.clone();
            let watched = tokio::spawn(async move {
                let result = match task.await {
                    Ok(r) => r,
                    Err(e) => Err(PlatformError::Task(format!("{name}: {e}"))),
                };
                if let Err(e) = &result {
                    tracing::error!(task = name, error = %e, "a platform task failed; shutting down");
                    token.cancel();
                }
                result
            });
            (name, watched)
        })
        .collect();

    Ok(Running {
        banner,
        gateway_addr,
        journal,
        publisher,
        tasks,
        dev_key,
        admin_key,
    })
}

/// Bind `service`'s configured port and serve `routes` with `/health` (reporting the readiness
/// of `probes`: 503 until they caught up), `/metrics` and the JSON 404, until shutdown.
async fn serve_with(
    cfg: &Config,
    tasks: &mut Vec<(&'static str, JoinHandle<Result<(), PlatformError>>)>,
    service: &'static str,
    routes: axum::Router,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    probes: Vec<Box<dyn runtime::Probe>>,
) -> Result<SocketAddr, PlatformError> {
    serve_host(
        cfg,
        tasks,
        service,
        routes,
        metrics,
        shutdown,
        probes,
        vec![],
    )
    .await
}

/// [`serve_with`], with `sections` added to `/health` (the gateway's feed freshness).
#[allow(clippy::too_many_arguments)]
async fn serve_host(
    cfg: &Config,
    tasks: &mut Vec<(&'static str, JoinHandle<Result<(), PlatformError>>)>,
    service: &'static str,
    routes: axum::Router,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    probes: Vec<Box<dyn runtime::Probe>>,
    sections: Vec<(&'static str, runtime::http::HealthSection)>,
) -> Result<SocketAddr, PlatformError> {
    let port = cfg.service_port(service).unwrap_or(0);
    let mut host = runtime::http::Host::bind(service, &cfg.services.host, port)
        .await?
        .limits(http_limits(&cfg.services.http))
        .probes(probes);
    for (key, section) in sections {
        host = host.health_section(key, section);
    }
    let local = host.addr();
    let task = host.serve(routes, metrics.clone(), shutdown.clone());
    tasks.push((service, runtime_task(service, task)));
    Ok(local)
}

/// Binds the monitoring port and starts the monitor over `services` (name, address), itself
/// and the configured targets. Returns its address and how many targets it watches.
async fn start_monitoring(
    cfg: &Config,
    tasks: &mut Vec<(&'static str, JoinHandle<Result<(), PlatformError>>)>,
    services: &[(&str, SocketAddr)],
    shutdown: &CancellationToken,
) -> Result<(SocketAddr, usize), PlatformError> {
    let host = runtime::http::Host::bind(
        "monitoring",
        &cfg.services.host,
        cfg.service_port("monitoring").unwrap_or(0),
    )
    .await?
    .limits(http_limits(&cfg.services.http));
    let addr = host.addr();
    let mut targets: Vec<monitoring::Target> = services
        .iter()
        .chain([("monitoring", addr)].iter())
        .map(|(service, a)| monitoring::Target {
            service: (*service).to_owned(),
            url: format!("http://{a}/metrics"),
        })
        .collect();
    targets.extend(cfg.monitoring.targets.iter().map(|t| monitoring::Target {
        service: t.service.clone(),
        url: t.url.clone(),
    }));
    let watched = targets.len();
    let settings = monitoring::Settings::from_config(&cfg.monitoring, format!("http://{addr}"))?;
    let metrics = Metrics::service();
    let (monitor, scraper) = monitoring::start(settings, targets, &metrics, shutdown.clone())?;
    tasks.push((
        "monitoring",
        runtime_task(
            "monitoring",
            host.serve(monitoring::router(monitor), metrics, shutdown.clone()),
        ),
    ));
    tasks.push((
        "monitoring-scraper",
        tokio::spawn(async move {
            scraper
                .await
                .map_err(|e| PlatformError::Task(format!("monitoring scraper: {e}")))
        }),
    ));
    Ok((addr, watched))
}

/// A service's own metrics registry, and the runner whose consumers report there.
fn service_registry(
    runner: &runtime::Runner<InProcessBus>,
) -> (Metrics, runtime::Runner<InProcessBus>) {
    let metrics = Metrics::service();
    let runner = runner.with_metrics(runtime::ConsumerMetrics::register(&metrics));
    (metrics, runner)
}

/// The listener limits of `services.http`.
pub fn http_limits(h: &config::HttpConfig) -> runtime::http::HttpLimits {
    runtime::http::HttpLimits {
        max_connections: h.max_connections,
        max_in_flight: h.max_in_flight,
        request_timeout: Duration::from_secs(h.request_timeout_secs),
        idle_timeout: Duration::from_secs(h.idle_timeout_secs),
        max_body_bytes: h.max_body_bytes,
        rate_per_key: runtime::http::RateLimits {
            trader: h.rate_per_key.trader,
            compliance: h.rate_per_key.compliance,
            admin: h.rate_per_key.admin,
        },
        rate_limit_penalty: Duration::from_millis(h.rate_limit_penalty_ms),
        allowed_origins: h.allowed_origins.clone(),
        allowed_hosts: h.allowed_hosts.clone(),
    }
}

/// `--insecure-dev` makes every port keyless admin: only a listener that nothing but this
/// machine can reach may run that way.
pub fn check_insecure_dev(cfg: &Config, insecure_dev: bool) -> Result<(), PlatformError> {
    let host = cfg.services.host.trim();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if insecure_dev && !loopback {
        return Err(PlatformError::InsecureDevNotLoopback {
            host: host.to_owned(),
        });
    }
    Ok(())
}

fn live_specs_from_config(cfg: &Config) -> Result<Vec<FeedSpec>, PlatformError> {
    cfg.feed
        .live
        .instruments
        .iter()
        .map(|spec| {
            let text = match cfg.feed.live.ws_urls.get(&spec.venue) {
                Some(url) => format!("{spec}@{url}"),
                None => spec.to_string(),
            };
            FeedSpec::parse(&text, feeds::replay::Speed::Max)
        })
        .collect()
}

impl Running {
    /// The lines `trade2026 up` prints: what runs where.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway_addr
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Wait for every task to finish after the shutdown token was cancelled, then flush and close
    /// the journal. Returns a one-line summary.
    pub async fn stopped(self) -> Result<String, PlatformError> {
        let started = Instant::now();
        let mut first_error = None;
        for (name, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "task failed");
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(PlatformError::Task(format!("{name}: {e}")));
                }
            }
        }
        let published = match self.publisher.await {
            Ok(r) => r?,
            Err(e) => return Err(PlatformError::Task(format!("publisher: {e}"))),
        };
        let last = self.journal.last_seq();
        self.journal.shutdown()?;
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(format!(
            "{published} events journaled this run, last seq {last}, drained in {} ms",
            started.elapsed().as_millis()
        ))
    }
}

/// Move events from the feeds into the journal in group-committed batches.
async fn publish(
    journal: Journal,
    mut rx: mpsc::Receiver<Event>,
    metrics: Metrics,
    silence: crate::feed_metrics::FeedSilence,
) -> Result<u64, PlatformError> {
    let mut buf = Vec::with_capacity(PUBLISH_BATCH);
    let mut total = 0u64;
    while rx.recv_many(&mut buf, PUBLISH_BATCH).await > 0 {
        let batch = std::mem::take(&mut buf);
        silence.batch(&metrics, &batch);
        let n = batch.len() as u64;
        let t0 = Instant::now();
        journal.append_batch(batch).await?;
        metrics
            .journal_append_seconds
            .observe(t0.elapsed().as_secs_f64());
        total += n;
    }
    Ok(total)
}

fn spawn_feed(
    spec: FeedSpec,
    cfg: &Config,
    freshness: &telemetry::freshness::Freshness,
    tx: mpsc::Sender<Event>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<JoinHandle<Result<(), PlatformError>>, PlatformError> {
    Ok(match spec {
        FeedSpec::Synthetic => {
            let syn = &cfg.feed.synthetic;
            let specs = syn
                .symbols
                .iter()
                .map(|s| {
                    let mut spec = SyntheticSpec::for_symbol(s.symbol.as_str()).map_err(|e| {
                        PlatformError::FeedSpec {
                            spec: s.symbol.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                    spec.start_price = s.start_price.get();
                    Ok(spec)
                })
                .collect::<Result<Vec<_>, PlatformError>>()?;
            let mut market =
                SyntheticMarket::new(syn.seed, specs).map_err(|e| PlatformError::FeedSpec {
                    spec: "synthetic".into(),
                    reason: e.to_string(),
                })?;
            let period = Duration::from_millis(syn.tick_interval_ms.max(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    for event in market.step(Timestamp::now()) {
                        metrics
                            .feed_messages
                            .get_or_create(&vec![
                                ("exchange", "sim".into()),
                                ("kind", event.kind().as_str().into()),
                            ])
                            .inc();
                        if tx.send(event).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            })
        }
        FeedSpec::Live(spec) => {
            let options = feeds::live::LiveOptions {
                idle_timeout: Duration::from_secs(cfg.feed.live.idle_timeout_secs.max(1)),
                freshness: freshness.clone(),
                ..feeds::live::LiveOptions::default()
            };
            tokio::spawn(async move {
                feeds::live::run(spec, options, tx, metrics, shutdown)
                    .await
                    .map_err(PlatformError::from)
            })
        }
        FeedSpec::Replay { path, speed } => {
            let events = feeds::replay::read_events(&path)?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => Ok(()),
                    r = feeds::replay::replay(events, speed, &tx) => {
                        let n = r?;
                        tracing::info!(events = n, path = %path.display(), "replay finished");
                        Ok(())
                    }
                }
            })
        }
    })
}

/// A runtime consumer's task as a platform task.
fn runtime_task(
    name: &'static str,
    task: JoinHandle<Result<(), runtime::RuntimeError>>,
) -> JoinHandle<Result<(), PlatformError>> {
    tokio::spawn(async move {
        match task.await {
            Ok(r) => r.map_err(PlatformError::from),
            Err(e) => Err(PlatformError::Task(format!("{name}: {e}"))),
        }
    })
}

/// Keep the gateway's last-quote/last-trade cache current.
async fn feed_market_cache(
    bus: InProcessBus,
    market: gateway::MarketCache,
    from: u64,
    shutdown: CancellationToken,
) -> Result<(), PlatformError> {
    let mut sub = bus.subscribe_ephemeral("md.>", StartAt::Sequence(from))?;
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            b = sub.next_batch(1024) => b?,
        };
        for d in &batch {
            market.apply(&d.event);
        }
    }
}
