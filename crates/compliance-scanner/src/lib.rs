//! The compliance scanner (port 8111): the `surveillance` detectors driven live over the
//! platform's event stream.
//!
//! Two journal consumers on the shared runtime:
//!
//! - **the scanner** ([`ScanState`], a snapshot consumer named [`SCANNER`]): market data, orders
//!   and fills -> interchange records -> the detectors. Each alert is published as
//!   `compliance_alert` on `alerts.compliance` (the runtime makes it durable before the
//!   scanner's position moves past the batch that raised it). A restart loads the newest
//!   snapshot and replays only the journal tail after it.
//! - **the alert store** ([`StoreWriter`] over [`alerts::AlertWriter`], named [`ALERT_STORE`]):
//!   every alert and acknowledgement into `<data_dir>/alerts.db`, which `GET /alerts` pages
//!   through. Nothing about past alerts is held in memory.
//!
//! **No alert twice.** The detectors are deterministic, so replaying the tail after a snapshot
//! raises again the alerts journaled after that snapshot. Before the scanner starts, the store
//! catches up with the journal as it is then, so it knows every alert journaled before this
//! start; the scanner is told those journaled after its snapshot
//! (`Scanner::with_known_alerts`) and checks the store before publishing any alert. The
//! detectors themselves drop a repeat of an alert they raised in this run for as long as their
//! rules could raise it (`Scanner::dedupe_horizon`). A pattern completed before a crash whose
//! alert never reached the journal is raised during the replay: none lost, none repeated.
//!
//! **Memory.** The scanner's state is bounded by event-time windows (the `surveillance` crate
//! docs list each bound) and the exporter's by open orders; [`ScanState::stats`] reports the
//! sizes. Alerts live in SQLite only.

mod http;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alerts::{AlertStore, AlertWriter, AlertsError};
use journal::{Bus, Delivery, JournalError};
use model::Event;
use runtime::{
    Consumer, ConsumerHandle, Runner, RuntimeError, SnapshotPolicy, SnapshotStore, Spec,
    StoredPosition,
};
use surveillance::Params;
use telemetry::Metrics;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use telemetry::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use http::{AlertsApi, routes};

/// The OpenAPI document of the routes, served at `/openapi.json` (see `runtime::openapi`).
pub const OPENAPI: &str = include_str!("openapi.json");
pub use state::{ScanState, ScanStats};

/// The scanner's durable consumer name (and snapshot folder).
pub const SCANNER: &str = "compliance-scanner";
/// The alert store writer's durable consumer name.
pub const ALERT_STORE: &str = "compliance-alerts";
/// What the scanner reads: the market data and order flow its detectors need, and its own
/// alerts (to time how long they took to become durable).
pub const SCANNER_FILTER: &str = "md.quote.> md.trade.> orders.* fills.* alerts.compliance";
/// How often the wall clock advances time-driven detection once caught up.
const CLOCK: Duration = Duration::from_millis(100);
/// Most alerts journaled after the scanner's snapshot that it is told about at restart (the
/// store check covers any beyond: this only bounds the memory of a restart).
const MAX_KNOWN_AT_RESTART: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("surveillance parameters: {0}")]
    Params(#[from] surveillance::SurveillanceError),
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("alert does not encode: {0}")]
    Encode(String),
    #[error("the alert store stopped before it caught up with the journal: {0}")]
    StoreStopped(String),
    #[error("shut down while the alert store was catching up")]
    Cancelled,
}

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ScannerConfig {
    pub params: Params,
    /// Beneficial owner per account (accounts not listed are their own owner).
    pub account_owners: HashMap<String, String>,
}

impl ScannerConfig {
    /// What shapes the scanner's state: a snapshot taken under another fingerprint is not used.
    pub fn fingerprint(&self) -> String {
        let owners: BTreeMap<&String, &String> = self.account_owners.iter().collect();
        runtime::fingerprint(&(&self.params, owners))
    }
}

/// The alert store's writer, keeping the `compliance_alerts` gauge equal to the stored count.
pub struct StoreWriter {
    inner: AlertWriter,
    count: Gauge,
}

impl StoreWriter {
    pub fn new(inner: AlertWriter, count: Gauge) -> StoreWriter {
        count.set(i64::try_from(inner.count()).unwrap_or(i64::MAX));
        StoreWriter { inner, count }
    }

    pub fn writer(&self) -> &AlertWriter {
        &self.inner
    }
}

impl Consumer for StoreWriter {
    type Error = AlertsError;

    fn apply(&mut self, batch: &[Delivery], out: &mut Vec<Event>) -> Result<(), AlertsError> {
        self.inner.apply(batch, out)?;
        self.count
            .set(i64::try_from(self.inner.count()).unwrap_or(i64::MAX));
        Ok(())
    }
}

impl StoredPosition for StoreWriter {
    fn stored_position(&self) -> Result<u64, AlertsError> {
        self.inner.stored_position()
    }
}

/// The running service: its alert store, its two consumers and their tasks.
pub struct ScannerService<B: Bus> {
    pub alerts: AlertStore,
    pub writer: ConsumerHandle<StoreWriter>,
    pub scanner: ConsumerHandle<ScanState>,
    pub bus: B,
    /// `(name, task)` of each consumer.
    pub tasks: Vec<(&'static str, JoinHandle<Result<(), RuntimeError>>)>,
}

impl<B: Bus> ScannerService<B> {
    /// The HTTP routes, answering from this service's store.
    pub fn router(&self, keys: auth::ApiKeys) -> axum::Router {
        routes(AlertsApi {
            alerts: self.alerts.clone(),
            writer: self.writer.clone(),
            bus: self.bus.clone(),
            keys,
        })
    }
}

/// Starts the service over `runner`'s bus: the alert store (`<data_dir>/alerts.db`) catches up
/// with the journal first, then the scanner resumes from its newest snapshot
/// (`<data_dir>/snapshots/compliance-scanner`) plus the journal tail.
pub async fn start<B: Bus>(
    runner: &Runner<B>,
    data_dir: &Path,
    config: ScannerConfig,
    policy: SnapshotPolicy,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<ScannerService<B>, ScannerError> {
    let fresh = ScanState::new(&config)?;
    let count = metrics.gauge("compliance_alerts", "Compliance alerts raised (all time)");
    let latency = Histogram::new(exponential_buckets(1e-4, 2.0, 14));
    metrics.register(
        "compliance_alert_latency_seconds",
        "Time from the journaling of the event that completed a pattern to the alert being durable",
        latency.clone(),
    );

    let store_path = data_dir.join(alerts::FILE_NAME);
    let store = AlertStore::open(&store_path)?;
    let (writer, mut writer_task) = runner
        .start_stored(
            Spec::new(ALERT_STORE, alerts::FILTER),
            StoreWriter::new(AlertWriter::open(&store_path)?, count),
        )
        .await?;

    // Every alert journaled before this start must be in the store before the scanner may
    // publish: that is how a replayed alert is recognised.
    let head = runner.bus().last_seq();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Err(ScannerError::Cancelled),
            done = &mut writer_task => {
                let why = match done {
                    Ok(Ok(())) => "it stopped".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(ScannerError::StoreStopped(why));
            }
            reached = writer.wait_for(head, Duration::from_secs(10)) => match reached {
                Ok(()) => break,
                Err(lag) => tracing::info!(%lag, "alert store catching up with the journal"),
            },
        }
    }

    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"), SCANNER, policy.keep)?;
    let fingerprint = config.fingerprint();
    let mut restored =
        runtime::restore(&snapshots, &fingerprint, runner.bus().last_seq(), || fresh)?;
    // Without a snapshot the replay starts from the beginning, where the store check alone
    // recognises old alerts; telling the detectors about every alert ever would cost memory.
    let known = if restored.position > 0 {
        let after = restored.position;
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.raised_after(after, MAX_KNOWN_AT_RESTART))
            .await
            .map_err(|e| ScannerError::StoreStopped(e.to_string()))??
    } else {
        Vec::new()
    };
    let state = std::mem::replace(&mut restored.state, ScanState::new(&config)?);
    restored.state = state
        .with_known_alerts(known)
        .with_store(store.clone())
        .with_latency(latency);
    let caught_up = restored.state.caught_up_flag();
    let (scanner, scanner_task) = runner
        .start_restored(
            Spec::new(SCANNER, SCANNER_FILTER).with_tick(CLOCK),
            snapshots,
            policy,
            fingerprint,
            restored,
        )
        .await?;

    // The wall clock may drive detection only once the replay is over.
    let watched = scanner.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CLOCK);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {
                    if watched.is_ready() {
                        caught_up.store(true, Ordering::Release);
                        return;
                    }
                }
            }
        }
    });

    Ok(ScannerService {
        alerts: store,
        writer,
        scanner,
        bus: runner.bus().clone(),
        tasks: vec![(ALERT_STORE, writer_task), (SCANNER, scanner_task)],
    })
}
