//! The feature pipeline (port 6566).
//!
//! A journal consumer on the shared runtime ([`runtime::Snapshot`]): [`FeatureState`] folds every
//! event into a `features` engine and is snapshotted, so a restart loads the newest snapshot and
//! replays only the journal tail after it.
//!
//! - **Embedded online store.** Rows are computed on demand, as of the engine's watermark (the
//!   latest event time folded), and served with Feast's feature-server API. Nothing is kept per
//!   row: the state is the engine (bounded by its windows, see the `features` crate docs) plus
//!   one entry per market instrument and per public symbol.
//! - **Redis/Valkey** (when configured). Every event's changed rows, as of the watermark right
//!   after it, are staged in an [`Outbox`] (the newest row per view and entity, so an outage
//!   costs memory bounded by the entities) and written every 100 ms in Feast's byte layout plus
//!   a JSON document per entity, newest-wins. A full pass every `materialize_every`, and once as
//!   soon as the consumer has caught up at start, rewrites every row, so the store catches up after any outage or restart. Rows
//!   depend only on the journal prefix, not on batching, so a replayed tail stages the same
//!   rows again and Redis skips them (equal event times are not newer). A store outage keeps
//!   the rows staged and retries with backoff; nothing is dropped.
//! - **Freshness**: per view, the age of the newest materialized value, in `GET /status` and the
//!   `feature_freshness_seconds` / `feature_view_stale` metrics.
//!
//! Known limit: a late event (older than the watermark) or one stamped with the watermark's own
//! time changes rows without moving their event time. Redis keeps the row it already holds for
//! that time (newest-wins skips equal times, as Feast does) until the entity changes again, or a full
//! pass runs, at a later watermark; the embedded store serves the new values at once.

mod http;
mod materialize;
mod outbox;
mod state;

use std::path::Path;
use std::time::Duration;

use feast_store::{OnlineRow, OnlineStoreWriter, OnlineValue};
use features::{FeatureRow, FeatureValue};
use journal::Bus;
use model::Timestamp;
use runtime::{ConsumerHandle, Runner, SnapshotPolicy, SnapshotStore, Spec};
use telemetry::Metrics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use features::EngineParams;
pub use http::{MAX_ENTITY_ROWS, router};

/// The OpenAPI document of the routes, served at `/openapi.json` (see `runtime::openapi`).
pub const OPENAPI: &str = include_str!("openapi.json");
pub use materialize::{PipelineStatus, StoreStatus, ViewStatus};
pub use outbox::Outbox;
pub use state::{FeatureState, Recency, StateCounts, public_symbol};

use materialize::{Materializer, PipelineMetrics, SharedStatus};

/// The durable consumer name (also the snapshot folder and the metrics label).
pub const CONSUMER: &str = "feature-pipeline";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The online-store address does not parse (shown with its password redacted).
    #[error("online store {store}: {reason}")]
    OnlineStoreAddress { store: String, reason: String },
    #[error("online store: {0}")]
    OnlineStore(#[from] feast_store::FeastStoreError),
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
}

/// Pipeline settings (from the feast-pipeline config file).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Feast project name (the Redis keys carry it).
    pub project: String,
    /// `feast.online_store.connection_string` (`valkey:6379`, `redis://...`); `None` = embedded only.
    pub online_store: Option<String>,
    /// Full rewrite of every row to the online store this often.
    pub materialize_every: Duration,
    /// A view whose newest materialized value is older than this is flagged stale.
    pub stale_after: Duration,
    /// The engine's tunables: they shape the state, so they are the snapshot's fingerprint.
    pub engine: EngineParams,
}

/// The running pipeline, for the HTTP routes and for `/health` (`consumer()` is a probe).
#[derive(Clone)]
pub struct FeatureService {
    consumer: ConsumerHandle<FeatureState>,
    outbox: Outbox,
    status: SharedStatus,
    online_store: Option<String>,
    stale_after: Duration,
}

impl FeatureService {
    /// The consumer: its state (briefly, under its lock), position and readiness.
    pub fn consumer(&self) -> &ConsumerHandle<FeatureState> {
        &self.consumer
    }

    /// The row served for (`view`, `entity`), as of the latest event time folded.
    pub fn row(&self, view: &str, entity: &str) -> Option<FeatureRow> {
        self.consumer.read(|s| s.row(view, entity))
    }

    /// Rows staged for the online store and not yet written.
    pub fn pending_rows(&self) -> usize {
        self.outbox.len()
    }

    /// What `GET /status` shows at wall-clock `now`.
    pub fn status(&self, now: Timestamp) -> PipelineStatus {
        let views = materialize::view_status(
            &self.consumer,
            &self.status,
            self.online_store.is_some(),
            self.stale_after,
            now,
        );
        let mut online_store = self.status.lock().store.clone();
        online_store.configured = self
            .online_store
            .as_deref()
            .map(telemetry::redact::connection_string);
        online_store.pending_rows = self.outbox.len();
        PipelineStatus {
            stale_after_seconds: self.stale_after.as_secs(),
            views,
            online_store,
        }
    }
}

/// Starts the pipeline: restores [`FeatureState`] from its newest snapshot under
/// `data_dir/snapshots` (built under the same engine parameters), replays the journal after it
/// on `runner`, and starts the online-store writer. The task ends when `shutdown` is cancelled
/// (the runner's token stops the consumer, which writes a last snapshot) or when either part
/// fails.
pub async fn start<B: Bus>(
    runner: &Runner<B>,
    data_dir: &Path,
    policy: SnapshotPolicy,
    config: PipelineConfig,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(FeatureService, JoinHandle<Result<(), PipelineError>>), PipelineError> {
    let writer = match &config.online_store {
        Some(url) => Some(
            OnlineStoreWriter::new(url, feast_store::WriterOptions::default()).map_err(|e| {
                PipelineError::OnlineStoreAddress {
                    store: telemetry::redact::connection_string(url),
                    reason: match e {
                        // Its message quotes the address, password included.
                        feast_store::FeastStoreError::InvalidConnection { reason, .. } => reason,
                        other => other.to_string(),
                    },
                }
            })?,
        ),
        None => None,
    };
    let outbox = Outbox::default();
    let store = SnapshotStore::open(&data_dir.join("snapshots"), CONSUMER, policy.keep)?;
    let fingerprint = runtime::fingerprint(&config.engine);
    let mut restored = runtime::restore(&store, &fingerprint, runner.bus().last_seq(), || {
        FeatureState::new(config.engine)
    })?;
    if writer.is_some() {
        restored.state = restored.state.stage_into(outbox.clone());
    }
    let (consumer, consumer_task) = runner
        .start_restored(
            Spec::new(CONSUMER, ">"),
            store,
            policy,
            fingerprint,
            restored,
        )
        .await?;
    let status = SharedStatus::default();
    let svc = FeatureService {
        consumer: consumer.clone(),
        outbox: outbox.clone(),
        status: status.clone(),
        online_store: config.online_store.clone(),
        stale_after: config.stale_after,
    };
    let materializer = tokio::spawn(
        Materializer {
            handle: consumer,
            outbox,
            writer,
            project: config.project,
            materialize_every: config.materialize_every,
            stale_after: config.stale_after,
            status,
            metrics: PipelineMetrics::register(metrics),
        }
        .run(shutdown),
    );
    Ok((svc, tokio::spawn(supervise(consumer_task, materializer))))
}

/// Ends with the first failure of either task (aborting the other), else once both are done.
async fn supervise(
    mut consumer: JoinHandle<Result<(), runtime::RuntimeError>>,
    mut materializer: JoinHandle<Result<(), PipelineError>>,
) -> Result<(), PipelineError> {
    let joined = |r: Result<Result<(), PipelineError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| {
            Err(PipelineError::Runtime(runtime::RuntimeError::Snapshot {
                consumer: CONSUMER.to_owned(),
                reason: format!("task failed: {e}"),
            }))
        })
    };
    tokio::select! {
        r = &mut consumer => {
            let r = joined(r.map(|r| r.map_err(PipelineError::from)));
            if r.is_err() {
                materializer.abort();
                return r;
            }
            joined(materializer.await)
        }
        r = &mut materializer => {
            let r = joined(r);
            if r.is_err() {
                consumer.abort();
                return r;
            }
            joined(consumer.await.map(|r| r.map_err(PipelineError::from)))
        }
    }
}

/// Entities as users name them: market features are keyed by the bare symbol (`BTCUSDT`, as in
/// the plan's `feast:market_features:BTCUSDT`), not the engine's `SYMBOL.venue` (see
/// [`public_symbol`]). For the CLI's batch materialization.
pub fn public_rows(mut rows: Vec<FeatureRow>) -> Vec<FeatureRow> {
    for r in &mut rows {
        if features::view(r.view).is_some_and(|v| v.entity == "symbol") {
            let public = public_symbol(&r.entity);
            if public.len() != r.entity.len() {
                r.entity = public.to_string();
            }
        }
    }
    rows
}

/// A feature row in the online writer's form.
pub fn online_row(row: &FeatureRow) -> Option<OnlineRow> {
    let view = features::view(row.view)?;
    Some(OnlineRow {
        view: row.view.to_string(),
        join_key: view.entity.to_string(),
        entity: row.entity.clone(),
        event_ts: row.event_ts,
        values: row
            .values
            .iter()
            .map(|(name, v)| {
                let v = match v {
                    FeatureValue::F64(x) => OnlineValue::F64(*x),
                    FeatureValue::I64(x) => OnlineValue::I64(*x),
                    FeatureValue::Str(s) => OnlineValue::Str(s.clone()),
                    FeatureValue::Null => OnlineValue::Null,
                };
                (name.to_string(), v)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_rows_name_market_entities_by_bare_symbol_only() {
        let row = |view: &'static str, entity: &str| FeatureRow {
            view,
            entity: entity.into(),
            event_ts: Timestamp::from_secs(1),
            values: Vec::new(),
        };
        let rows = public_rows(vec![
            row(features::MARKET_FEATURES, "BTCUSDT.binance"),
            row(features::MARKET_FEATURES, "ODD.Venue"),
            row(features::POSITION_SYMBOL_FEATURES, "acct|BTCUSDT.binance"),
        ]);
        let names: Vec<&str> = rows.iter().map(|r| r.entity.as_str()).collect();
        assert_eq!(names, ["BTCUSDT", "ODD.Venue", "acct|BTCUSDT.binance"]);
    }
}
