use std::time::{Duration, Instant};

use config::Config;
use feeds::synthetic::{SyntheticMarket, SyntheticSpec};
use journal::Journal;
use model::{Event, Timestamp};
use telemetry::Metrics;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::parts::{self, Ctx, Running};
use crate::{FeedSpec, PlatformError};

/// What to run besides the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Market-data sources; empty means what `feed.mode` says (the synthetic market by default).
    pub feeds: Vec<FeedSpec>,
    /// Accept requests without an API key, as admin (never on a shared machine).
    pub insecure_dev: bool,
    /// The queue the process's `tracing` capture layer feeds (installed before the platform
    /// starts); the logger service writes what it holds. `None`: the logger takes only pushes.
    pub log_intake: Option<logger::Intake>,
}

/// Events waiting between the feeds and the journal. Large enough to absorb a burst while a
/// group commit is in flight; a full channel slows the feeds down rather than dropping data.
pub(crate) const FEED_CHANNEL: usize = 65_536;
const PUBLISH_BATCH: usize = 4_096;

/// `trade2026 up`: every service in this process over the in-process bus.
pub async fn start(
    cfg: Config,
    opts: Options,
    shutdown: CancellationToken,
) -> Result<Running, PlatformError> {
    let mut ctx = Ctx::new(cfg, opts.insecure_dev, shutdown.clone())?;
    let j = parts::open_journal(&ctx)?;

    // --- feeds -> publisher -> journal ------------------------------------------------------
    let (tx, rx) = mpsc::channel::<Event>(FEED_CHANNEL);
    let silence = crate::feed_metrics::FeedSilence::register(&j.metrics);
    let publisher = tokio::spawn(publish(
        j.journal.clone(),
        rx,
        j.metrics.clone(),
        silence.clone(),
    ));
    // Live feeds record when they last delivered; /marketdata and the gateway's /health show it.
    let freshness = telemetry::freshness::Freshness::new();
    let feed_lines = start_feeds(&mut ctx, opts.feeds, &freshness, &silence, tx, &j.metrics)?;

    // --- consumers ---------------------------------------------------------------------------
    let store_path = ctx.cfg.marketdata_path();
    let (sinks_handle, sinks_task) = j
        .runner
        .start_stored(
            runtime::Spec::new("sink-ticks", sinks::TickStore::FILTER),
            sinks::TickStore::open(&store_path)?,
        )
        .await?;
    ctx.runtime_task("sinks", sinks_task);

    let market = gateway::MarketCache::with_freshness(freshness);
    parts::journal_market_cache(&mut ctx, &j, &market)?;

    // --- trading engine + gateway + API keys ----------------------------------------------------
    let (gateway_addr, reads) = parts::gateway(
        &mut ctx,
        &j,
        market.clone(),
        vec![Box::new(sinks_handle)],
        vec![],
    )
    .await?;
    let dev_account =
        model::AccountId::new(ctx.cfg.gateway.default_account.clone()).map_err(|e| {
            PlatformError::FeedSpec {
                spec: "gateway.default_account".into(),
                reason: e.to_string(),
            }
        })?;
    let dev_key = ctx.keys.create_ephemeral(
        gateway::Role::Trader,
        gateway::Accounts::Some([dev_account.clone()].into()),
    )?;
    let admin_key = ctx.keys.create_ephemeral(
        gateway::Role::Admin,
        gateway::Accounts::All(gateway::AllMarker::All),
    )?;
    ctx.line(format!(
        "  api key      {dev_key}   (trader, account {dev_account})"
    ));
    ctx.line(format!("  admin key    {admin_key}   (admin: /admin/risk)"));
    if !ctx.keyless.is_empty() {
        ctx.line(
            "  WARNING      --insecure-dev: requests without a key are accepted as admin".into(),
        );
    }

    // --- services on their own ports -------------------------------------------------------------
    let ptrc_addr = parts::ptrc(
        &mut ctx,
        &j.runner,
        parts::PtrcInputs {
            marks: market,
            history: sinks::TickStore::open(&store_path)?,
            blotter: reads.blotter.clone(),
        },
    )
    .await?;
    let features_addr = parts::feature_pipeline(&mut ctx, &j.runner).await?;
    let quality_addr = parts::execution_quality(&mut ctx, &j.runner).await?;
    let scanner_addr = parts::compliance_scanner(&mut ctx, &j.runner).await?;
    let logger_addr = parts::logger(
        &mut ctx,
        &j.runner,
        opts.log_intake
            .clone()
            .unwrap_or_else(|| logger::Intake::new(logger::capture::DEFAULT_QUEUE)),
    )
    .await?;
    // --- monitoring: scrapes every port above, itself and `monitoring.targets` ----------------
    let scraped = [
        ("gateway", gateway_addr),
        ("ptrc", ptrc_addr),
        ("feature_pipeline", features_addr),
        ("execution_quality", quality_addr),
        ("compliance_scanner", scanner_addr),
        ("logger", logger_addr),
    ];
    parts::monitoring(&mut ctx, &scraped).await?;
    ctx.line(format!(
        "  sinks        ticks + alt series -> {}",
        store_path.display()
    ));

    let mut header = vec![
        format!("trade2026 {} is up", env!("CARGO_PKG_VERSION")),
        format!(
            "  data dir     {}  (journal {} events, last seq {})",
            ctx.data_dir.display(),
            j.recovery.events,
            j.recovery.last_seq
        ),
    ];
    header.extend(
        feed_lines
            .into_iter()
            .map(|l| format!("  feed         {l}")),
    );
    let mut running = Running::new(ctx, header, vec![]);
    running.gateway_addr = Some(gateway_addr);
    running.journal = Some(j.journal);
    running.publisher = Some(publisher);
    running.dev_key = Some(dev_key);
    running.admin_key = Some(admin_key);
    Ok(running)
}

/// Starts the market-data sources (`feeds`, or what `feed.mode` says) sending into `tx`;
/// returns a line describing each. The channel closes when every feed has stopped.
pub(crate) fn start_feeds(
    ctx: &mut Ctx,
    feeds: Vec<FeedSpec>,
    freshness: &telemetry::freshness::Freshness,
    silence: &crate::feed_metrics::FeedSilence,
    tx: mpsc::Sender<Event>,
    metrics: &Metrics,
) -> Result<Vec<String>, PlatformError> {
    let cfg = &ctx.cfg;
    let feed_specs = if !feeds.is_empty() {
        feeds
    } else if cfg.feed.mode == config::FeedMode::Live {
        live_specs_from_config(cfg)?
    } else {
        vec![FeedSpec::Synthetic]
    };
    let mut lines = Vec::new();
    let mut tasks = Vec::new();
    for spec in feed_specs {
        match &spec {
            FeedSpec::Synthetic => silence.expect(feeds::synthetic::SIM_VENUE),
            FeedSpec::Live(live) => silence.expect(live.exchange.as_str()),
            FeedSpec::Replay { .. } => {}
        }
        lines.push(match &spec {
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
                cfg,
                freshness,
                tx.clone(),
                metrics.clone(),
                ctx.shutdown.clone(),
            )?,
        ));
    }
    ctx.tasks.extend(tasks);
    Ok(lines)
}

pub(crate) fn live_specs_from_config(cfg: &Config) -> Result<Vec<FeedSpec>, PlatformError> {
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
