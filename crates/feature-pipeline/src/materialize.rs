//! The online-store writer task and what `/status` and the metrics report about freshness.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use feast_store::{OnlineRow, OnlineStoreWriter};
use features::FeatureRow;
use model::Timestamp;
use runtime::ConsumerHandle;
use serde::Serialize;
use telemetry::Metrics;
use telemetry::prometheus_client::metrics::counter::Counter;
use telemetry::prometheus_client::metrics::family::Family;
use telemetry::prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;
use crate::state::FeatureState;
use crate::{PipelineError, online_row};

/// How often staged rows go out to the online store (and the freshness metrics are updated).
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// At shutdown, staged rows get one last write, for at most this long.
const LAST_FLUSH: Duration = Duration::from_secs(2);

/// What `GET /status` reports per view.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViewStatus {
    pub entities: usize,
    pub newest_event_ts: Option<Timestamp>,
    /// Age of the newest materialized value, seconds.
    pub freshness_seconds: Option<f64>,
    pub stale: bool,
}

/// What `GET /status` reports about the online store.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreStatus {
    /// The configured store, password redacted.
    pub configured: Option<String>,
    pub pending_rows: usize,
    pub write_failures: u64,
    pub last_error: Option<String>,
    pub rows_written: u64,
}

/// The body of `GET /status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PipelineStatus {
    pub stale_after_seconds: u64,
    pub views: BTreeMap<&'static str, ViewStatus>,
    pub online_store: StoreStatus,
}

/// The writer's counters plus the newest event time written per view (one entry per view).
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    pub(crate) store: StoreStatus,
    pub(crate) materialized: BTreeMap<&'static str, Timestamp>,
}

#[derive(Clone, Default)]
pub(crate) struct SharedStatus(Arc<Mutex<WriterState>>);

impl SharedStatus {
    pub(crate) fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
pub(crate) struct PipelineMetrics {
    freshness: Family<Vec<(&'static str, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>,
    stale: Family<Vec<(&'static str, String)>, Gauge>,
    write_failures: Counter,
    rows_written: Counter,
}

impl PipelineMetrics {
    pub(crate) fn register(m: &Metrics) -> PipelineMetrics {
        let p = PipelineMetrics {
            freshness: Family::default(),
            stale: Family::default(),
            write_failures: Counter::default(),
            rows_written: Counter::default(),
        };
        m.register(
            "feature_freshness_seconds",
            "Age of the newest materialized value per feature view",
            p.freshness.clone(),
        );
        m.register(
            "feature_view_stale",
            "1 when a feature view is older than the freshness bound",
            p.stale.clone(),
        );
        m.register(
            "feature_online_store_write_failures",
            "Failed writes to the Redis/Valkey online store (retried)",
            p.write_failures.clone(),
        );
        m.register(
            "feature_online_store_rows_written",
            "Rows written to the Redis/Valkey online store",
            p.rows_written.clone(),
        );
        p
    }
}

/// Freshness per view at wall-clock `now`: the age of the newest materialized value. Rows of
/// the embedded store are computed on demand as of the watermark, so there the watermark is
/// the newest value of every view that has entities; with an online store it is the newest
/// event time written there.
pub(crate) fn view_status(
    handle: &ConsumerHandle<FeatureState>,
    status: &SharedStatus,
    online_store: bool,
    stale_after: Duration,
    now: Timestamp,
) -> BTreeMap<&'static str, ViewStatus> {
    let (watermark, entities) = handle.read(|s| (s.watermark(), s.entity_counts()));
    let materialized = status.lock().materialized.clone();
    entities
        .into_iter()
        .map(|(view, entities)| {
            let newest = if online_store {
                materialized.get(view).copied()
            } else {
                watermark.filter(|_| entities > 0)
            };
            let freshness =
                newest.map(|t| now.as_nanos().saturating_sub(t.as_nanos()).max(0) as f64 / 1e9);
            let stale = freshness.is_none_or(|f| f > stale_after.as_secs_f64());
            (
                view,
                ViewStatus {
                    entities,
                    newest_event_ts: newest,
                    freshness_seconds: freshness,
                    stale,
                },
            )
        })
        .collect()
}

/// Everything the writer task needs.
pub(crate) struct Materializer {
    pub(crate) handle: ConsumerHandle<FeatureState>,
    pub(crate) outbox: Outbox,
    pub(crate) writer: Option<OnlineStoreWriter>,
    pub(crate) project: String,
    pub(crate) materialize_every: Duration,
    pub(crate) stale_after: Duration,
    pub(crate) status: SharedStatus,
    pub(crate) metrics: PipelineMetrics,
}

impl Materializer {
    /// Writes staged rows every [`FLUSH_EVERY`] with backoff while the store is down (rows stay
    /// staged, one per entity), rewrites every row every `materialize_every` (so the store
    /// catches up after any outage or restart; the first full pass runs as soon as the consumer
    /// has caught up with the journal, so it writes the current rows, not the snapshot's), and
    /// keeps the freshness metrics current.
    pub(crate) async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut full = tokio::time::interval(self.materialize_every);
        full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first_pass_done = false;
        let mut backoff = FIRST_BACKOFF;
        let mut next_attempt = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = full.tick(), if first_pass_done => self.stage_all(),
                _ = flush.tick() => {
                    if !first_pass_done && self.writer.is_some() && self.handle.is_ready() {
                        self.stage_all();
                        first_pass_done = true;
                        full.reset();
                    }
                    if Instant::now() >= next_attempt {
                        if self.write_staged().await {
                            backoff = FIRST_BACKOFF;
                        } else {
                            next_attempt = Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                    self.update_metrics();
                }
            }
        }
        // A last write of what is staged when the store was reachable; whatever is lost here is
        // rewritten by the full pass at the next start.
        if backoff == FIRST_BACKOFF {
            let _ = tokio::time::timeout(LAST_FLUSH, self.write_staged()).await;
        }
        Ok(())
    }

    /// Stages every row as of the watermark: event time, not the wall clock, so a replayed
    /// history gives the same rows, and quiet entities' windows move on too.
    fn stage_all(&self) {
        let rows = self.handle.read(FeatureState::all_rows);
        self.outbox.stage(rows);
    }

    /// One write of everything staged. False when the store failed (the rows are staged again).
    async fn write_staged(&self) -> bool {
        let Some(w) = &self.writer else { return true };
        if self.outbox.is_empty() {
            return true;
        }
        let rows: Vec<FeatureRow> = self.outbox.take();
        // A row the store would refuse (the writer validates a whole batch first) must not
        // block every later write: it is logged and left out.
        let mut online: Vec<OnlineRow> = Vec::with_capacity(rows.len());
        for r in &rows {
            match online_row(r).map(|o| o.validate().map(|()| o)) {
                Some(Ok(o)) => online.push(o),
                Some(Err(e)) => tracing::error!(error = %e, "feature row not writable; skipped"),
                None => {}
            }
        }
        match w.write(&self.project, &online).await {
            Ok(stats) => {
                let mut st = self.status.lock();
                for r in &rows {
                    let newest = st.materialized.entry(r.view).or_insert(r.event_ts);
                    *newest = (*newest).max(r.event_ts);
                }
                st.store.rows_written += stats.written;
                st.store.last_error = None;
                st.store.pending_rows = self.outbox.len();
                self.metrics.rows_written.inc_by(stats.written);
                true
            }
            Err(e) => {
                let pending = rows.len();
                self.outbox.restage(rows);
                self.metrics.write_failures.inc();
                tracing::warn!(error = %e, pending, "online store write failed; retrying");
                let mut st = self.status.lock();
                st.store.write_failures += 1;
                st.store.last_error = Some(e.to_string());
                st.store.pending_rows = self.outbox.len();
                false
            }
        }
    }

    fn update_metrics(&self) {
        self.status.lock().store.pending_rows = self.outbox.len();
        let views = view_status(
            &self.handle,
            &self.status,
            self.writer.is_some(),
            self.stale_after,
            Timestamp::now(),
        );
        for (name, v) in views {
            let labels = vec![("view", name.to_string())];
            if let Some(f) = v.freshness_seconds {
                self.metrics.freshness.get_or_create(&labels).set(f);
            }
            self.metrics
                .stale
                .get_or_create(&labels)
                .set(i64::from(v.stale));
        }
    }
}
