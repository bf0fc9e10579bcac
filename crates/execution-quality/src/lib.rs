//! The execution-quality service (port 8110): the `execq` engine fed live from the journal,
//! with memory that follows the live orders, not history.
//!
//! - [`QualityConsumer`] is a snapshotted runtime consumer (`orders.* fills.* md.quote.>
//!   md.trade.>`): journal events become interchange records ([`interchange::Exporter`]) and
//!   feed an [`execq::ExecQuality`] with eviction on. A restart loads the newest snapshot and
//!   replays only the journal tail after it.
//! - An order whose row can change only by its realized-spread lookups (the late-fill grace,
//!   `late_fill_grace_ms`, 5 s by default, has passed since it ended) leaves the engine's full
//!   state and its row is written to the row store, `<data_dir>/execution_quality.db`
//!   ([`store`]); when its last lookup resolves (up to the longest horizon, 5 minutes by
//!   default, after its last fill) the engine's update completes that row. Both inside the same
//!   `apply` (see [`consumer`] for why that order of events makes snapshots and rows agree).
//! - Prometheus: histograms per fill / order completion (labelled by symbol and order class),
//!   fill-rate gauges refreshed every [`GAUGE_REFRESH`] from the engine's running aggregates.
//! - HTTP ([`router`]): `/quality`, `/quality/orders/{id}`, `/reports/rule605`, answered from
//!   the stored rows plus what the engine still holds (rows of working and just-ended orders,
//!   views of stored rows whose lookups still wait), equal to the batch report.
//!
//! Memory: the engine holds working orders and orders ended within the late-fill grace in full
//! (a few KiB each), orders ended within the longest realized-spread horizon as a compact
//! record (a few hundred bytes with their waiting fills), the exporter holds open orders, and
//! the running aggregates hold one entry per account, symbol, order class, size bucket,
//! liquidity flag and time window. Every per-order row of the past is in SQLite.

pub mod consumer;
mod http;
mod metrics;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use journal::Bus;
use runtime::{ConsumerHandle, Runner, RuntimeError, SnapshotPolicy, SnapshotStore, Spec};
use telemetry::Metrics;
use tokio::task::JoinHandle;

pub use consumer::{FILTER, NAME, QualityConsumer};
pub use http::router;

/// The OpenAPI document of the routes, served at `/openapi.json` (see `runtime::openapi`).
pub const OPENAPI: &str = include_str!("openapi.json");
pub use metrics::QualityMetrics;
pub use store::{DB_FILE, RowQuery, RowReader, RowWriter};

#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("execution quality: {0}")]
    Execq(#[from] execq::ExecqError),
    #[error("execution-quality store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "execution-quality store {path} has schema version {found}; this build reads up to {supported}"
    )]
    Schema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("execution quality: no row store attached")]
    NoRowStore,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// How often the fill-rate gauges are refreshed from the running aggregates.
pub const GAUGE_REFRESH: Duration = Duration::from_secs(15);
/// How long a report waits for the consumer to reach the journal's head
/// ([`QualityHandle::catch_up`]); as the gateway's order reads.
pub const READ_BARRIER: Duration = Duration::from_secs(2);

/// The configuration that shapes the consumer's state: the parameters, and the layout
/// versions of the engine and exporter snapshots inside it. A snapshot taken under another
/// fingerprint is not loaded (the runtime replays instead).
pub fn fingerprint(params: &execq::Params) -> String {
    runtime::fingerprint(&(
        params,
        execq::SNAPSHOT_VERSION,
        interchange::Exporter::SNAPSHOT_VERSION,
    ))
}

/// The running service, for the router and `/health`: the consumer's state (held orders,
/// running aggregates), the row store, and the engine's parameters. Cheap to clone.
#[derive(Clone)]
pub struct QualityHandle {
    consumer: ConsumerHandle<QualityConsumer>,
    rows: RowReader,
    params: Arc<execq::Params>,
    updater: Arc<execq::RowUpdater>,
}

impl QualityHandle {
    /// The consumer (a `runtime::Probe` for `/health`, and a read barrier).
    pub fn consumer(&self) -> &ConsumerHandle<QualityConsumer> {
        &self.consumer
    }

    /// Waits until the consumer has applied everything durable when it is called, so a report
    /// includes every order acknowledged before the request (the consumer folds in batches of
    /// up to [`runtime::STORE_LINGER`], which the wait cuts short). A consumer still behind
    /// after [`READ_BARRIER`] is logged, and the report shows what it has applied.
    pub async fn catch_up(&self) {
        if let Err(lag) = self.consumer.caught_up(READ_BARRIER).await {
            tracing::warn!(%lag, "execution quality behind the journal; the report may miss recent orders");
        }
    }

    pub fn rows(&self) -> &RowReader {
        &self.rows
    }

    pub fn params(&self) -> &execq::Params {
        &self.params
    }

    /// Brings stored rows up to date with the engine's views and updates.
    pub fn updater(&self) -> &execq::RowUpdater {
        &self.updater
    }
}

/// A task the platform watches, by name.
pub type Tasks = Vec<(&'static str, JoinHandle<Result<(), RuntimeError>>)>;

/// Where the row store of a data directory lives.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// Starts the consumer on `runner`: restores the newest snapshot under
/// `<data_dir>/snapshots/execution-quality` (or starts empty), replays the journal tail, then
/// follows the journal. Fails on parameters that cannot evict orders (`is_end_price:
/// end_of_data_mid`), which would make memory grow with history.
pub async fn start<B: Bus>(
    runner: &Runner<B>,
    data_dir: &Path,
    params: execq::Params,
    metrics: &Metrics,
    policy: SnapshotPolicy,
) -> Result<(QualityHandle, Tasks), QualityError> {
    let db = db_path(data_dir);
    let init = QualityConsumer::new(params.clone(), &db)?;
    let writer = RowWriter::open(&db)?;
    let snapshots = SnapshotStore::open(&data_dir.join("snapshots"), NAME, policy.keep)?;
    let fp = fingerprint(&params);
    let mut restored = runtime::restore(&snapshots, &fp, runner.bus().last_seq(), || init)?;
    restored
        .state
        .attach(writer, Some(QualityMetrics::register(metrics)));
    // Every report waits for the consumer (`QualityHandle::catch_up`).
    let spec = Spec::new(NAME, FILTER)
        .with_tick(GAUGE_REFRESH)
        .read_through_wait();
    let (consumer, task) = runner
        .start_restored(spec, snapshots, policy, fp, restored)
        .await?;
    let handle = QualityHandle {
        consumer,
        rows: RowReader::new(&db),
        updater: Arc::new(execq::RowUpdater::new(&params)?),
        params: Arc::new(params),
    };
    Ok((handle, vec![(NAME, task)]))
}
