//! `trade2026 run <service>`: one service in this process, over NATS JetStream.
//!
//! The core (gateway + engine + journal) stays the one sequencer: it journals orders and the
//! market data `marketdata` sends over the ingest stream, and its outbox publishes every
//! committed event to the event stream (stream sequence = journal sequence). Every other
//! service is a consumer of that stream, built from the same parts as in `up`
//! (the `parts` module), with its own data dir. The gateway and the engine share a process
//! because an order's acknowledgement waits for its journal commit: a network hop between them
//! would sit inside every order's latency and add a second place where an order can be lost.

use std::str::FromStr;
use std::time::{Duration, Instant};

use bus_nats::{Ingest, IngestPublisher, IngestSpec, NatsBus, Outbox, StreamSpec};
use config::Config;
use journal::StartAt;
use model::Event;
use telemetry::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::parts::{self, Ctx, Running};
use crate::services::{FEED_CHANNEL, start_feeds};
use crate::{FeedSpec, Options, PlatformError};

pub use runtime::Partition;

/// The services `run` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Core,
    Marketdata,
    Sinks,
    Ptrc,
    ExecutionQuality,
    ComplianceScanner,
    FeaturePipeline,
    Logger,
    Monitoring,
}

impl Service {
    pub const ALL: [Service; 9] = [
        Service::Core,
        Service::Marketdata,
        Service::Sinks,
        Service::Ptrc,
        Service::ExecutionQuality,
        Service::ComplianceScanner,
        Service::FeaturePipeline,
        Service::Logger,
        Service::Monitoring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Core => "core",
            Service::Marketdata => "marketdata",
            Service::Sinks => "sinks",
            Service::Ptrc => "ptrc",
            Service::ExecutionQuality => "execution-quality",
            Service::ComplianceScanner => "compliance-scanner",
            Service::FeaturePipeline => "feature-pipeline",
            Service::Logger => "logger",
            Service::Monitoring => "monitoring",
        }
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Service, String> {
        let wanted = s.trim().replace('_', "-");
        Service::ALL
            .into_iter()
            .find(|svc| svc.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown service {s:?}; one of: {}",
                    Service::ALL.map(Service::as_str).join(", ")
                )
            })
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Starts `service` alone, over the NATS server of `nats.url`; with `partition` (`i/N`, only
/// for [`partition_allowed`] services) as replica `i` of `N`.
pub async fn run(
    mut cfg: Config,
    service: Service,
    partition: Option<Partition>,
    opts: Options,
    shutdown: CancellationToken,
) -> Result<Running, PlatformError> {
    partition_allowed(service, partition)?;
    if let Some(p) = partition {
        // Each replica keeps its stores and snapshots apart, even when replicas are given the
        // same --data-dir, and a replica of another N (another share) starts afresh; the key
        // file stays the cluster's.
        cfg.platform.keys_file = Some(cfg.keys_path());
        cfg.platform.data_dir = cfg
            .platform
            .data_dir
            .join(format!("partition-{}", p.label()));
    }
    let mut ctx = Ctx::new(cfg, opts.insecure_dev, shutdown.clone())?;
    let client = connect(&ctx.cfg).await?;
    let streams = stream_specs(&ctx.cfg);
    let replica = partition.map_or_else(String::new, |p| format!(" (replica {p})"));
    let mut header = vec![format!(
        "trade2026 {} {service}{replica} is up  (NATS {}, stream {})",
        env!("CARGO_PKG_VERSION"),
        telemetry::redact::connection_string(&ctx.cfg.nats.url),
        ctx.cfg.nats.stream
    )];
    header.push(format!("  data dir     {}", ctx.data_dir.display()));
    let mut footer = Vec::new();
    let mut running_journal = None;
    let mut gateway_addr = None;
    match service {
        Service::Core => {
            let j = parts::open_journal(&ctx)?;
            header[1].push_str(&format!(
                "  (journal {} events, last seq {})",
                j.recovery.events, j.recovery.last_seq
            ));
            let outbox = Outbox::new(client.clone(), streams.events.clone(), j.journal.clone())
                .await
                .map_err(|e| nats_error(&ctx.cfg, "nats.stream", e))?;
            let published = outbox.published();
            ctx.tasks.push((
                "outbox",
                tokio::spawn({
                    let shutdown = shutdown.clone();
                    async move {
                        outbox
                            .run(shutdown)
                            .await
                            .map_err(|e| PlatformError::Task(format!("outbox: {e}")))
                    }
                }),
            ));
            let ingest = Ingest::new(client.clone(), streams.ingest.clone(), j.journal.clone())
                .await
                .map_err(|e| nats_error(&ctx.cfg, "nats.ingest_stream", e))?;
            ctx.tasks.push((
                "ingest",
                tokio::spawn({
                    let shutdown = shutdown.clone();
                    async move {
                        ingest
                            .run(shutdown)
                            .await
                            .map_err(|e| PlatformError::Task(format!("ingest: {e}")))
                    }
                }),
            ));
            let market = gateway::MarketCache::default();
            parts::journal_market_cache(&mut ctx, &j, &market)?;
            // /health says how far NATS is behind the journal (orders are acknowledged
            // whatever NATS does; consumers elsewhere see them once the outbox caught up).
            let journal = j.journal.clone();
            let nats_state = client.clone();
            let nats_health: runtime::http::HealthSection = std::sync::Arc::new(move || {
                let published = *published.borrow();
                let last = journal.last_seq();
                serde_json::json!({
                    "connected": nats_state.connection_state()
                        == async_nats::connection::State::Connected,
                    "published_seq": published,
                    "journal_seq": last,
                    "behind": last.saturating_sub(published),
                })
            });
            let (addr, _reads) =
                parts::gateway(&mut ctx, &j, market, vec![], vec![("nats", nats_health)]).await?;
            gateway_addr = Some(addr);
            footer.push(format!(
                "  outbox       journal -> NATS stream {} ({}.>); market data in from {} ({}.>)",
                streams.events.stream,
                streams.events.prefix,
                streams.ingest.stream,
                streams.ingest.prefix
            ));
            footer.push(api_key_hint(&ctx));
            running_journal = Some(j.journal);
        }
        Service::Marketdata => {
            let metrics = Metrics::service();
            let (tx, rx) = mpsc::channel::<Event>(FEED_CHANNEL);
            let silence = crate::feed_metrics::FeedSilence::register(&metrics);
            let freshness = telemetry::freshness::Freshness::new();
            let lines = start_feeds(&mut ctx, opts.feeds, &freshness, &silence, tx, &metrics)?;
            let publisher = IngestPublisher::new(client.clone(), streams.ingest.clone())
                .await
                .map_err(|e| nats_error(&ctx.cfg, "nats.ingest_stream", e))?;
            ctx.tasks.push((
                "ingest-publisher",
                tokio::spawn({
                    let shutdown = shutdown.clone();
                    async move {
                        publisher
                            .run(rx, shutdown)
                            .await
                            .map(|n| tracing::info!(events = n, "market data published"))
                            .map_err(|e| PlatformError::Task(format!("marketdata: {e}")))
                    }
                }),
            ));
            for line in lines {
                ctx.line(format!("  feed         {line}"));
            }
            ctx.line(format!(
                "  publishes    normalized market data -> NATS stream {} ({}.>), journaled by the core",
                streams.ingest.stream, streams.ingest.prefix
            ));
        }
        consumer => {
            // A replica's durable consumers are its own: two replicas sharing one would each
            // get part of the stream, not their share of the keys.
            let namespace = match partition {
                Some(p) => format!("{consumer}-{}", p.label()),
                None => consumer.as_str().to_owned(),
            };
            let bus = consumer_bus(&ctx.cfg, &client, &streams)
                .await?
                .with_namespace(&namespace);
            let metrics = Metrics::service();
            let mut runner = runtime::Runner::new(
                bus.clone(),
                runtime::ConsumerMetrics::register(&metrics),
                shutdown.clone(),
            );
            if let Some(p) = partition {
                runner = runner.partitioned(runtime::Partitioning::new(
                    p,
                    runtime::partition::owner_key(
                        ctx.cfg.compliance_scanner.account_owners.clone(),
                        &ctx.cfg.surveillance.related_owner_groups,
                    ),
                ));
                ctx.line(format!(
                    "  partition    replica {p}: orders, fills and alerts of the owner groups hashing to {} of {} (market data: all)",
                    p.index(),
                    p.count()
                ));
            }
            start_consumer(&mut ctx, consumer, &bus, &runner, opts.log_intake).await?;
        }
    }
    let mut running = Running::new(ctx, header, footer);
    running.journal = running_journal;
    running.gateway_addr = gateway_addr;
    Ok(running)
}

/// A consumer service over the NATS event stream.
async fn start_consumer(
    ctx: &mut Ctx,
    service: Service,
    bus: &NatsBus,
    runner: &runtime::Runner<NatsBus>,
    log_intake: Option<logger::Intake>,
) -> Result<(), PlatformError> {
    match service {
        Service::Sinks => {
            let store_path = ctx.cfg.marketdata_path();
            let (_, task) = runner
                .start_stored(
                    runtime::Spec::new("sink-ticks", sinks::TickStore::FILTER),
                    sinks::TickStore::open(&store_path)?,
                )
                .await?;
            ctx.runtime_task("sinks", task);
            ctx.line(format!(
                "  sinks        ticks + alt series -> {}",
                store_path.display()
            ));
            // The analytics store: quotes, trades, orders and fills in ClickHouse, exactly
            // once. Unreachable or refusing at start: the error names clickhouse.http_url.
            let wait = Duration::from_secs(ctx.cfg.nats.connect_timeout_secs.max(1));
            let sink = clickhouse_sink::ClickHouseSink::connect(&ctx.cfg.clickhouse, wait)
                .await?
                .with_shutdown(ctx.shutdown.clone());
            let (_, task) = runner
                .start_stored(clickhouse_sink::ClickHouseSink::spec(), sink)
                .await?;
            ctx.runtime_task("clickhouse-sink", task);
            ctx.line(format!(
                "  clickhouse   quotes, trades, orders, fills -> {} database {}",
                telemetry::redact::connection_string(&ctx.cfg.clickhouse.http_url),
                ctx.cfg.clickhouse.database
            ));
        }
        Service::Ptrc => {
            // ptrc's own copies of what `up` shares with the gateway: the blotter (fills for
            // P&L and tax), the market-data store (VaR history) and the last marks.
            let blotter_path = ctx.data_dir.join("blotter.db");
            let (_, blotter_task) = runner
                .start_stored(
                    runtime::Spec::new("blotter", blotter::BlotterWriter::FILTER)
                        .with_tick(Duration::from_secs(60)),
                    blotter::BlotterWriter::open(
                        &blotter_path,
                        ctx.cfg.gateway.idempotency_window_secs,
                    )?,
                )
                .await?;
            ctx.runtime_task("blotter", blotter_task);
            let store_path = ctx.cfg.marketdata_path();
            let (_, sinks_task) = runner
                .start_stored(
                    runtime::Spec::new("sink-ticks", sinks::TickStore::FILTER),
                    sinks::TickStore::open(&store_path)?,
                )
                .await?;
            ctx.runtime_task("sinks", sinks_task);
            let market = gateway::MarketCache::default();
            let recent = parts::recent_start(journal::Bus::last_seq(bus), 1);
            let sub = journal::Bus::subscribe(bus, "ptrc-marks", "md.>", StartAt::Sequence(recent))
                .await?;
            ctx.tasks.push((
                "ptrc-marks",
                tokio::spawn(parts::feed_market_cache(
                    sub,
                    market.clone(),
                    true,
                    ctx.shutdown.clone(),
                )),
            ));
            parts::ptrc(
                ctx,
                runner,
                parts::PtrcInputs {
                    marks: market,
                    history: sinks::TickStore::open(&store_path)?,
                    blotter: blotter::Blotter::open(&blotter_path),
                },
            )
            .await?;
        }
        Service::ExecutionQuality => {
            parts::execution_quality(ctx, runner).await?;
        }
        Service::ComplianceScanner => {
            parts::compliance_scanner(ctx, runner).await?;
        }
        Service::FeaturePipeline => {
            parts::feature_pipeline(ctx, runner).await?;
        }
        Service::Logger => {
            let intake =
                log_intake.unwrap_or_else(|| logger::Intake::new(logger::capture::DEFAULT_QUEUE));
            parts::logger(ctx, runner, intake).await?;
        }
        Service::Monitoring => {
            parts::monitoring(ctx, &[]).await?;
        }
        Service::Core | Service::Marketdata => unreachable!("started by run"),
    }
    Ok(())
}

/// The two streams, from `nats.*`.
struct Streams {
    events: StreamSpec,
    ingest: IngestSpec,
}

fn stream_specs(cfg: &Config) -> Streams {
    Streams {
        events: StreamSpec {
            stream: cfg.nats.stream.clone(),
            prefix: cfg.nats.prefix.clone(),
            ..StreamSpec::default()
        },
        ingest: IngestSpec {
            stream: cfg.nats.ingest_stream.clone(),
            prefix: cfg.nats.ingest_prefix.clone(),
            ..IngestSpec::default()
        },
    }
}

/// Connects to `nats.url` within `nats.connect_timeout_secs`, or fails naming the setting.
async fn connect(cfg: &Config) -> Result<async_nats::Client, PlatformError> {
    if cfg.nats.prefix == cfg.nats.ingest_prefix
        || cfg
            .nats
            .ingest_prefix
            .starts_with(&format!("{}.", cfg.nats.prefix))
    {
        return Err(PlatformError::Setting {
            setting: "nats.ingest_prefix",
            reason: format!(
                "{:?} lies inside nats.prefix {:?}: the event stream would capture market data \
                 before the core journaled it",
                cfg.nats.ingest_prefix, cfg.nats.prefix
            ),
        });
    }
    let timeout = Duration::from_secs(cfg.nats.connect_timeout_secs.max(1));
    let url = &cfg.nats.url;
    let attempt = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .connect(url.as_str());
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(nats_error(cfg, "nats.url", e)),
        Err(_) => Err(nats_error(
            cfg,
            "nats.url",
            format!("no answer within {} s", timeout.as_secs()),
        )),
    }
}

/// The consumer's bus: the event stream (waiting up to `nats.connect_timeout_secs` for the
/// core to create it), answering through the ingest stream.
async fn consumer_bus(
    cfg: &Config,
    client: &async_nats::Client,
    streams: &Streams,
) -> Result<NatsBus, PlatformError> {
    let deadline = Instant::now() + Duration::from_secs(cfg.nats.connect_timeout_secs.max(1));
    let bus = loop {
        match NatsBus::connect(client.clone(), streams.events.clone()).await {
            Ok(bus) => break bus,
            Err(e) if Instant::now() >= deadline => {
                return Err(nats_error(cfg, "nats.stream", e));
            }
            Err(e) => {
                tracing::info!(error = %e, "waiting for the core's stream");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let publisher = IngestPublisher::new(client.clone(), streams.ingest.clone())
        .await
        .map_err(|e| nats_error(cfg, "nats.ingest_stream", e))?;
    Ok(bus.with_ingest(publisher))
}

fn nats_error(cfg: &Config, setting: &'static str, e: impl std::fmt::Display) -> PlatformError {
    let value = match setting {
        "nats.url" => telemetry::redact::connection_string(&cfg.nats.url),
        "nats.stream" => cfg.nats.stream.clone(),
        "nats.ingest_stream" => cfg.nats.ingest_stream.clone(),
        _ => String::new(),
    };
    PlatformError::Setting {
        setting,
        reason: format!("{value}: {e}"),
    }
}

fn api_key_hint(ctx: &Ctx) -> String {
    if ctx.keyless.is_empty() {
        format!(
            "  api keys     {} (every service of the cluster reads it; create one with `trade2026 keys create --keys-file {} --role trader --accounts ACCOUNT`)",
            ctx.cfg.keys_path().display(),
            ctx.cfg.keys_path().display()
        )
    } else {
        "  WARNING      --insecure-dev: requests without a key are accepted as admin".into()
    }
}

/// The services that run as partitioned replicas: their state is grouped by owner (the
/// compliance scanner's detectors, ptrc's books, blotter, per-owner tax lots and alerts).
/// The feature pipeline is not one of them: its rows are computed as of one event-time
/// watermark over every event, and position features take marks of every symbol, so a replica
/// holding some symbols or accounts would serve other values than one pipeline.
pub fn partition_allowed(
    service: Service,
    partition: Option<Partition>,
) -> Result<(), PlatformError> {
    match (service, partition) {
        (_, None) | (Service::ComplianceScanner | Service::Ptrc, Some(_)) => Ok(()),
        (other, Some(p)) => Err(PlatformError::Setting {
            setting: "--partition",
            reason: format!(
                "{p}: only compliance-scanner and ptrc run as partitioned replicas, not {other}{}",
                if other == Service::FeaturePipeline {
                    " (its rows are computed as of one event-time watermark over every symbol and account)"
                } else {
                    ""
                }
            ),
        }),
    }
}

/// Feeds given on the command line only make sense for `marketdata` (and `up`).
pub fn feeds_allowed(service: Service, feeds: &[FeedSpec]) -> Result<(), PlatformError> {
    if !feeds.is_empty() && service != Service::Marketdata {
        return Err(PlatformError::Setting {
            setting: "--feed",
            reason: format!(
                "market data enters a cluster through `run marketdata`, not `run {service}`"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_round_trip_and_unknown_names_list_the_choices() {
        for s in Service::ALL {
            assert_eq!(s.as_str().parse::<Service>(), Ok(s));
        }
        assert_eq!("execution_quality".parse(), Ok(Service::ExecutionQuality));
        let err = "gatway".parse::<Service>().unwrap_err();
        let half = Some(Partition::new(0, 2).unwrap());
        assert!(partition_allowed(Service::ComplianceScanner, half).is_ok());
        assert!(partition_allowed(Service::Ptrc, half).is_ok());
        for s in Service::ALL {
            assert!(partition_allowed(s, None).is_ok());
        }
        let refused = partition_allowed(Service::FeaturePipeline, half)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--partition") && refused.contains("feature-pipeline"),
            "{refused}"
        );
        assert!(
            err.contains("gatway") && err.contains("compliance-scanner"),
            "{err}"
        );
    }
}
