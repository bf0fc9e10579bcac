//! The services as parts: each starts one service's consumers over a [`Bus`] and serves its
//! port. `up` starts them all over the in-process bus; `run <service>` starts one over NATS.
//! Both go through these functions, so a service is wired in exactly one place.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use config::Config;
use journal::{Bus, Journal, Subscription};
use telemetry::Metrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::PlatformError;

pub(crate) type Task = (&'static str, JoinHandle<Result<(), PlatformError>>);

/// What every part started in one process shares, and what it leaves behind: its tasks and
/// its lines of the banner.
pub(crate) struct Ctx {
    pub cfg: Config,
    pub data_dir: PathBuf,
    pub policy: runtime::SnapshotPolicy,
    pub keys: auth::ApiKeys,
    pub shutdown: CancellationToken,
    pub tasks: Vec<Task>,
    pub banner: Vec<String>,
    /// Appended to every port's banner line under `--insecure-dev`.
    pub keyless: &'static str,
}

impl Ctx {
    /// Opens the data dir and the API keys every port checks.
    pub fn new(
        cfg: Config,
        insecure_dev: bool,
        shutdown: CancellationToken,
    ) -> Result<Ctx, PlatformError> {
        check_insecure_dev(&cfg, insecure_dev)?;
        let data_dir = cfg.platform.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| PlatformError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let keys = auth::ApiKeys::open(&cfg.keys_path())?.with_insecure_dev(insecure_dev);
        if insecure_dev {
            tracing::warn!(
                "INSECURE DEV MODE: every port accepts requests WITHOUT an API key and treats them as admin. \
                 Never run this on a shared machine or a public interface."
            );
        }
        let policy = runtime::SnapshotPolicy {
            every_events: cfg.platform.snapshots.every_events.max(1),
            every: Duration::from_secs(cfg.platform.snapshots.every_secs.max(1)),
            keep: cfg.platform.snapshots.keep.max(1),
        };
        Ok(Ctx {
            cfg,
            data_dir,
            policy,
            keys,
            shutdown,
            tasks: Vec::new(),
            banner: Vec::new(),
            // Under --insecure-dev every port says on its own line that it takes requests
            // without a key.
            keyless: if insecure_dev {
                "   [KEYLESS: no API key needed, every request is admin]"
            } else {
                ""
            },
        })
    }

    pub fn line(&mut self, line: String) {
        self.banner.push(line);
    }

    /// A runtime consumer's task as a platform task.
    pub fn runtime_task(
        &mut self,
        name: &'static str,
        task: JoinHandle<Result<(), runtime::RuntimeError>>,
    ) {
        self.tasks.push((name, runtime_task(name, task)));
    }

    /// Bind `service`'s configured port and serve `routes` with `/health` (reporting the
    /// readiness of `probes`: 503 until they caught up, plus `sections`), `/metrics` and the
    /// JSON 404, until shutdown.
    pub async fn serve(
        &mut self,
        service: &'static str,
        host: runtime::http::Host,
        routes: axum::Router,
        metrics: &Metrics,
    ) -> SocketAddr {
        let local = host.addr();
        let task = host.serve(routes, metrics.clone(), self.shutdown.clone());
        self.runtime_task(service, task);
        local
    }

    /// The listener of `service` on its configured port, with the configured limits.
    pub async fn bind(&self, service: &'static str) -> Result<runtime::http::Host, PlatformError> {
        let port = self.cfg.service_port(service).unwrap_or(0);
        Ok(
            runtime::http::Host::bind(service, &self.cfg.services.host, port)
                .await?
                .limits(http_limits(&self.cfg.services.http)),
        )
    }
}

/// A service's own metrics registry, and the runner whose consumers report there.
pub(crate) fn service_registry<B: Bus>(
    runner: &runtime::Runner<B>,
) -> (Metrics, runtime::Runner<B>) {
    let metrics = Metrics::service();
    let runner = runner.with_metrics(runtime::ConsumerMetrics::register(&metrics));
    (metrics, runner)
}

/// Execution quality on its port (8110).
pub(crate) async fn execution_quality<B: Bus>(
    ctx: &mut Ctx,
    runner: &runtime::Runner<B>,
) -> Result<SocketAddr, PlatformError> {
    let (metrics, runner) = service_registry(runner);
    let (quality, tasks) = execution_quality::start(
        &runner,
        &ctx.data_dir,
        ctx.cfg.execution_quality.clone(),
        &metrics,
        ctx.policy,
    )
    .await?;
    for (name, task) in tasks {
        ctx.tasks.push((
            name,
            tokio::spawn(async move {
                match task.await {
                    Ok(r) => r.map_err(|e| PlatformError::Task(format!("execution quality: {e}"))),
                    Err(e) => Err(PlatformError::Task(format!("execution quality: {e}"))),
                }
            }),
        ));
    }
    let host = ctx
        .bind("execution_quality")
        .await?
        .probe(quality.consumer().clone());
    let routes = execution_quality::router(quality, ctx.keys.clone());
    let addr = ctx.serve("execution_quality", host, routes, &metrics).await;
    let line = format!(
        "  exec quality http://{addr}   GET /quality /quality/orders/{{id}} /reports/rule605?month=YYYY-MM /metrics{}",
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// The compliance scanner on its port (8111).
pub(crate) async fn compliance_scanner<B: Bus>(
    ctx: &mut Ctx,
    runner: &runtime::Runner<B>,
) -> Result<SocketAddr, PlatformError> {
    let (metrics, runner) = service_registry(runner);
    let scanner = compliance_scanner::start(
        &runner,
        &ctx.data_dir,
        compliance_scanner::ScannerConfig {
            params: ctx.cfg.surveillance.clone(),
            account_owners: ctx
                .cfg
                .compliance_scanner
                .account_owners
                .clone()
                .into_iter()
                .collect(),
        },
        ctx.policy,
        &metrics,
        ctx.shutdown.clone(),
    )
    .await?;
    let routes = scanner.router(ctx.keys.clone());
    let host = ctx
        .bind("compliance_scanner")
        .await?
        .probe(scanner.writer.clone())
        .probe(scanner.scanner.clone());
    for (name, task) in scanner.tasks {
        ctx.runtime_task(name, task);
    }
    let addr = ctx
        .serve("compliance_scanner", host, routes, &metrics)
        .await;
    let line = format!(
        "  compliance   http://{addr}   GET /alerts, POST /alerts/{{key}}/ack (compliance or admin key){}",
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// What ptrc reads besides its own consumers: marks, price history and the fills.
pub(crate) struct PtrcInputs {
    pub marks: gateway::MarketCache,
    pub history: sinks::TickStore,
    pub blotter: blotter::Blotter,
}

/// ptrc (P&L, tax, risk, compliance reports) on its port (8109).
pub(crate) async fn ptrc<B: Bus>(
    ctx: &mut Ctx,
    runner: &runtime::Runner<B>,
    inputs: PtrcInputs,
) -> Result<SocketAddr, PlatformError> {
    let cfg = &ctx.cfg;
    let report_store = match &cfg.seaweedfs.s3_endpoint {
        Some(endpoint) => {
            reports::ReportStore::s3(endpoint, &cfg.seaweedfs.bucket, &cfg.seaweedfs.prefix)?
        }
        None => reports::ReportStore::local(&ctx.data_dir.join("reports"))?,
    };
    let report_target = report_store.target().to_string();
    let settings = ptrc_service::Settings {
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
    let (metrics, runner) = service_registry(runner);
    let marks = inputs.marks;
    // P&L books (snapshots + journal tail), its own alert store; history from the blotter.
    let started = ptrc_service::start(
        &runner,
        &ctx.data_dir,
        ctx.policy,
        ptrc_service::Inputs {
            marks: std::sync::Arc::new(move |symbol: &str| marks.mid(symbol)),
            history: Some(inputs.history),
            blotter: inputs.blotter,
            reports: report_store,
            keys: ctx.keys.clone(),
        },
        settings,
    )
    .await?;
    let host = ctx.bind("ptrc").await?.probes(started.service.probes());
    for (name, task) in started.tasks {
        ctx.runtime_task(name, task);
    }
    let addr = ctx
        .serve(
            "ptrc",
            host,
            ptrc_service::router(started.service),
            &metrics,
        )
        .await;
    let line = format!(
        "  ptrc         http://{addr}   POST /pnl/compute /tax/1099b /risk/var /risk/stress /compliance/scan, GET /reports  (reports -> {report_target}){}",
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// The feature pipeline on its port (6566).
pub(crate) async fn feature_pipeline<B: Bus>(
    ctx: &mut Ctx,
    runner: &runtime::Runner<B>,
) -> Result<SocketAddr, PlatformError> {
    let online_store = ctx.cfg.feast.online_store.connection_string.clone();
    let (metrics, runner) = service_registry(runner);
    let (service, task) = feature_pipeline::start(
        &runner,
        &ctx.data_dir,
        ctx.policy,
        feature_pipeline::PipelineConfig {
            project: "trade2026".to_string(),
            online_store: online_store.clone(),
            materialize_every: Duration::from_secs(
                u64::from(ctx.cfg.materialization.interval_minutes.max(1)) * 60,
            ),
            stale_after: Duration::from_secs(
                u64::from(ctx.cfg.materialization.freshness_bound_minutes.max(1)) * 60,
            ),
            engine: feature_pipeline::EngineParams::default(),
        },
        &metrics,
        ctx.shutdown.clone(),
    )
    .await?;
    ctx.tasks.push((
        "feature-pipeline",
        tokio::spawn(async move {
            match task.await {
                Ok(r) => r.map_err(|e| PlatformError::Task(format!("feature pipeline: {e}"))),
                Err(e) => Err(PlatformError::Task(format!("feature pipeline: {e}"))),
            }
        }),
    ));
    let host = ctx
        .bind("feature_pipeline")
        .await?
        .probe(service.consumer().clone());
    let routes = feature_pipeline::router(service, ctx.keys.clone());
    let addr = ctx.serve("feature_pipeline", host, routes, &metrics).await;
    let line = format!(
        "  features     http://{addr}   POST /get-online-features, GET /features/{{view}}/{{entity}} /status  (online store: {}){}",
        online_store
            .as_deref()
            .map_or_else(|| "embedded".into(), telemetry::redact::connection_string),
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// The logger on its port (8112): the lines of this process (`intake`), pushed lines, and
/// order timelines indexed from the bus.
pub(crate) async fn logger<B: Bus>(
    ctx: &mut Ctx,
    runner: &runtime::Runner<B>,
    intake: logger::Intake,
) -> Result<SocketAddr, PlatformError> {
    let (metrics, runner) = service_registry(runner);
    let logs = logger::start(
        &runner,
        &ctx.data_dir,
        intake,
        logger::LoggerConfig {
            retention: logger::Retention {
                max_age_ms: i64::from(ctx.cfg.logger.retention_days) * 86_400_000,
                max_bytes: ctx.cfg.logger.max_bytes,
            },
        },
        &metrics,
        ctx.shutdown.clone(),
    )
    .await?;
    let routes = logs.router(
        ctx.keys.clone(),
        ctx.cfg.services.http.max_streams,
        ctx.shutdown.clone(),
    );
    let host = ctx
        .bind("logger")
        .await?
        .probe(logs.index.clone())
        .accept_body("/loki/api/v1/push", "application/x-protobuf")
        .accept_body("/logs", "application/x-ndjson");
    for (name, task) in logs.tasks {
        ctx.runtime_task(name, task);
    }
    let addr = ctx.serve("logger", host, routes, &metrics).await;
    let line = format!(
        "  logger       http://{addr}   GET /logs /logs/tail /orders/{{id}}/timeline, POST /loki/api/v1/push /logs  (lines -> {}){}",
        ctx.data_dir.join(logger::FILE_NAME).display(),
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// Monitoring on its port (8113): scrapes `services` (name, address), itself and
/// `monitoring.targets`.
pub(crate) async fn monitoring(
    ctx: &mut Ctx,
    services: &[(&str, SocketAddr)],
) -> Result<SocketAddr, PlatformError> {
    let host = ctx.bind("monitoring").await?;
    let addr = host.addr();
    let mut targets: Vec<monitoring::Target> = services
        .iter()
        .chain([("monitoring", addr)].iter())
        .map(|(service, a)| monitoring::Target {
            service: (*service).to_owned(),
            url: format!("http://{a}/metrics"),
        })
        .collect();
    targets.extend(
        ctx.cfg
            .monitoring
            .targets
            .iter()
            .map(|t| monitoring::Target {
                service: t.service.clone(),
                url: t.url.clone(),
            }),
    );
    let watched = targets.len();
    let settings =
        monitoring::Settings::from_config(&ctx.cfg.monitoring, format!("http://{addr}"))?;
    let metrics = Metrics::service();
    let (monitor, scraper) = monitoring::start(settings, targets, &metrics, ctx.shutdown.clone())?;
    ctx.serve("monitoring", host, monitoring::router(monitor), &metrics)
        .await;
    ctx.tasks.push((
        "monitoring-scraper",
        tokio::spawn(async move {
            scraper
                .await
                .map_err(|e| PlatformError::Task(format!("monitoring scraper: {e}")))
        }),
    ));
    let line = format!(
        "  monitoring   http://{addr}   GET / (status page) /api/v1/alerts  ({watched} targets, alerts -> {}){}",
        ctx.cfg.monitoring.webhook_url.as_deref().map_or_else(
            || "/api/v1/alerts only".into(),
            telemetry::redact::connection_string
        ),
        ctx.keyless
    );
    ctx.line(line);
    Ok(addr)
}

/// Keep a last-quote/last-trade cache current from a market-data subscription; a durable
/// subscription (`ack`) acks as it goes, so the bus keeps nothing pending for it.
pub(crate) async fn feed_market_cache<S: Subscription>(
    mut sub: S,
    market: gateway::MarketCache,
    ack: bool,
    shutdown: CancellationToken,
) -> Result<(), PlatformError> {
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            b = sub.next_batch(1024) => b?,
        };
        for d in &batch {
            market.apply(&d.event);
        }
        if ack && let Some(last) = batch.last() {
            sub.ack(last.seq).await?;
        }
    }
}

/// A runtime consumer's task as a platform task.
pub(crate) fn runtime_task(
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

/// A started platform, or one service of it. Cancel the shutdown token, then await
/// [`Running::stopped`].
pub struct Running {
    pub(crate) banner: String,
    pub(crate) gateway_addr: Option<SocketAddr>,
    /// The journal, in the process that holds it (`up`, `run core`).
    pub(crate) journal: Option<Journal>,
    /// What moves events into the journal (the feeds' publisher in `up`); its count of events.
    pub(crate) publisher: Option<JoinHandle<Result<u64, PlatformError>>>,
    pub(crate) tasks: Vec<Task>,
    /// The dev key for `test_account` created at start (shown once; `up` only).
    pub dev_key: Option<String>,
    /// The dev admin key created at start (shown once; `up` only).
    pub admin_key: Option<String>,
}

impl Running {
    /// Wraps the started parts: the first task to fail cancels `shutdown`, so a service that
    /// dies never leaves the others serving (health 200, every order a 503).
    pub(crate) fn new(ctx: Ctx, header: Vec<String>, footer: Vec<String>) -> Running {
        let mut banner = String::new();
        for line in header.iter().chain(&ctx.banner).chain(&footer) {
            let _ = writeln!(banner, "{line}");
        }
        let _ = write!(banner, "Press Ctrl-C to stop.");
        let tasks = ctx
            .tasks
            .into_iter()
            .map(|(name, task)| {
                let token = ctx.shutdown.clone();
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
        Running {
            banner,
            gateway_addr: None,
            journal: None,
            publisher: None,
            tasks,
            dev_key: None,
            admin_key: None,
        }
    }

    /// The lines `trade2026 up` / `run` print: what runs where.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway_addr
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
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
        let published = match self.publisher {
            Some(p) => match p.await {
                Ok(r) => Some(r?),
                Err(e) => return Err(PlatformError::Task(format!("publisher: {e}"))),
            },
            None => None,
        };
        let journal = match &self.journal {
            Some(j) => {
                let last = j.last_seq();
                j.shutdown()?;
                Some(last)
            }
            None => None,
        };
        if let Some(e) = first_error {
            return Err(e);
        }
        let drained = started.elapsed().as_millis();
        Ok(match (published, journal) {
            (Some(p), Some(last)) => {
                format!("{p} events journaled this run, last seq {last}, drained in {drained} ms")
            }
            (None, Some(last)) => format!("journal last seq {last}, drained in {drained} ms"),
            _ => format!("drained in {drained} ms"),
        })
    }
}

/// The core's journal, opened: the bus over it and the runner of its in-process consumers.
pub(crate) struct Journaled {
    pub journal: Journal,
    pub recovery: journal::RecoveryReport,
    pub bus: journal::InProcessBus,
    pub runner: runtime::Runner<journal::InProcessBus>,
    /// The gateway's registry, which also holds the journal's, the feeds' and the engine's
    /// series (in `up` the gateway's process hosts them).
    pub metrics: Metrics,
}

/// Opens the journal (the one sequencer's truth) with its in-process bus.
pub(crate) fn open_journal(ctx: &Ctx) -> Result<Journaled, PlatformError> {
    let metrics = Metrics::new();
    let path = ctx.cfg.journal_path();
    let (journal, recovery) = Journal::open(&path)?;
    tracing::info!(path = %path.display(), ?recovery, "journal open");
    let bus = journal::InProcessBus::new(journal.clone());
    // Every journal consumer runs through this one runner (restart, checkpoints, metrics), on
    // the background runtime: below the order path this process also runs.
    let runner = runtime::Runner::new(
        bus.clone(),
        runtime::ConsumerMetrics::register(&metrics),
        ctx.shutdown.clone(),
    )
    .in_background();
    Ok(Journaled {
        journal,
        recovery,
        bus,
        runner,
        metrics,
    })
}

/// The trading core (engine restored from its snapshot + tail, blotter, positions view) and
/// the gateway on its port (8099). `probes` and `sections` join the gateway's `/health`.
pub(crate) async fn gateway(
    ctx: &mut Ctx,
    j: &Journaled,
    market: gateway::MarketCache,
    probes: Vec<Box<dyn runtime::Probe>>,
    sections: Vec<(&'static str, runtime::http::HealthSection)>,
) -> Result<(SocketAddr, gateway::Reads), PlatformError> {
    let cfg = &ctx.cfg;
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
        snapshots: ctx.policy,
    };
    let core = gateway::start_core(
        gateway::CoreSpec {
            journal: j.journal.clone(),
            engine: engine_config,
            data_dir: ctx.data_dir.clone(),
            idempotency_window_secs: cfg.gateway.idempotency_window_secs,
            gauges: engine::EngineGauges::register(&j.metrics),
        },
        &j.runner,
        ctx.shutdown.clone(),
    )
    .await?;
    let reads = core.reads.clone();
    for (name, task) in core.tasks {
        ctx.tasks.push((
            name,
            tokio::spawn(async move {
                match task.await {
                    Ok(r) => r.map_err(|e| PlatformError::Task(format!("{name}: {e}"))),
                    Err(e) => Err(PlatformError::Task(format!("{name}: {e}"))),
                }
            }),
        ));
    }
    let feeds_health = market.clone();
    let routes = gateway::router(gateway::Gateway {
        market,
        engine: core.engine,
        keys: ctx.keys.clone(),
        reads: reads.clone(),
        shutdown: ctx.shutdown.clone(),
        streams: gateway::StreamSlots::new(
            ctx.cfg.services.http.max_streams,
            ctx.cfg.services.http.max_streams_per_key,
            j.metrics.clone(),
        ),
    });
    let mut host = ctx
        .bind("gateway")
        .await?
        .probe(core.snapshotter.clone())
        .probe(reads.blotter_writer.clone())
        .probe(reads.positions.clone())
        .probes(probes)
        .health_section(
            "feeds",
            std::sync::Arc::new(move || feeds_health.feeds_health()),
        );
    for (key, section) in sections {
        host = host.health_section(key, section);
    }
    let addr = ctx.serve("gateway", host, routes, &j.metrics).await;
    let line = format!(
        "  gateway      http://{addr}   POST /orders, GET /orders /fills /positions /marketdata/{{symbol}} /stream /openapi.json{}",
        ctx.keyless
    );
    ctx.line(line);
    Ok((addr, reads))
}

/// Keeps `market` (the gateway's last quotes and trades) current from the journal, starting
/// with its recent market data.
pub(crate) fn journal_market_cache(
    ctx: &mut Ctx,
    j: &Journaled,
    market: &gateway::MarketCache,
) -> Result<(), PlatformError> {
    let recent = recent_start(j.journal.last_seq(), j.journal.first_seq());
    let sub = j
        .bus
        .subscribe_ephemeral("md.>", journal::StartAt::Sequence(recent))?;
    ctx.tasks.push((
        "gateway-market",
        tokio::spawn(feed_market_cache(
            sub,
            market.clone(),
            false,
            ctx.shutdown.clone(),
        )),
    ));
    Ok(())
}

/// The last 50 000 events of the journal, or what it still holds after an archive: where a
/// market cache starts reading.
pub(crate) fn recent_start(last: u64, first: u64) -> u64 {
    (last.saturating_sub(50_000) + 1).max(first)
}
