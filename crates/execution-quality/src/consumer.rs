//! The journal consumer: journal events -> interchange records -> the execq engine, with
//! per-order rows (and the updates completing them) moved to the row store.
//!
//! Why one snapshotted consumer that writes rows inside `apply` (and not two consumers, or a
//! stored position): the engine is a pure fold whose state (live orders, pending lookups,
//! running aggregates) only a snapshot can restore, while rows are history and must live on
//! disk. The runtime snapshots the state only after `apply` returns, so writing a batch's rows
//! and updates inside `apply` (one transaction, committed before `apply` returns; the store's
//! log is fsynced in `before_snapshot`, just before the state is serialized) means a snapshot
//! never excludes an order whose row is not durable yet, nor drops a settling order's record
//! before its completed row is. The other direction is harmless: after a crash the
//! consumer restarts from an older snapshot that still holds orders whose rows (or updates)
//! were already written, and replaying the tail hands them out again: the same rows (the
//! engine is deterministic; the store upserts by order id) and the same updates (an update of
//! a completed row changes nothing). Readers merge stored rows with what the engine holds by
//! order id, so such an order counts once meanwhile.
//! Two consumers would have to hand rows from one to the other through a durable channel the
//! journal does not offer, and a stored position would need the whole engine state in SQLite.

use std::path::{Path, PathBuf};

use execq::{ExecQuality, Params, RowUpdater};
use interchange::{Exporter, Kind};
use journal::Delivery;
use model::{Event, Timestamp};
use runtime::{Consumer, Snapshot};
use serde::{Deserialize, Serialize};

use crate::QualityError;
use crate::metrics::QualityMetrics;
use crate::store::RowWriter;

/// The subjects the consumer reads: orders, fills, quotes and trades (not books, bars, admin).
pub const FILTER: &str = "orders.* fills.* md.quote.> md.trade.>";

/// The consumer's durable name (also its snapshot folder and metrics label).
pub const NAME: &str = "execution-quality";

/// The snapshotted state: the exporter (open orders), the engine with eviction on, and where
/// its rows and updates go. Serialize + Deserialize is the runtime's snapshot; the open store
/// connection and the metrics are not state and are re-attached after a restore.
#[derive(Serialize, Deserialize)]
pub struct QualityConsumer {
    exporter: Exporter,
    engine: ExecQuality,
    /// The row store's file. `start` re-points it at the running data directory after a
    /// restore; a copy restored without that (a test's restart) reopens this file.
    rows_db: PathBuf,
    #[serde(skip)]
    rows: Option<RowWriter>,
    /// Completes stored rows with the engine's updates (built from the engine's parameters).
    #[serde(skip)]
    updater: Option<RowUpdater>,
    #[serde(skip)]
    metrics: Option<QualityMetrics>,
    /// An order or fill arrived since the gauges were last refreshed.
    #[serde(skip)]
    gauges_stale: bool,
}

impl QualityConsumer {
    /// A fresh consumer whose rows go to the store at `rows_db`. Fails for
    /// parameters that cannot evict orders (`is_end_price: end_of_data_mid` makes no row ever
    /// final, so memory would grow with history).
    pub fn new(params: Params, rows_db: &Path) -> Result<QualityConsumer, QualityError> {
        let mut engine = ExecQuality::new(params)?;
        engine.set_eviction(true)?;
        engine.set_observations(true);
        Ok(QualityConsumer {
            exporter: Exporter::new(),
            engine,
            rows_db: rows_db.to_owned(),
            rows: None,
            updater: None,
            metrics: None,
            gauges_stale: false,
        })
    }

    /// Attaches the open row store (replacing the path the state carried) and the metrics.
    pub fn attach(&mut self, rows: RowWriter, metrics: Option<QualityMetrics>) {
        self.rows_db = rows.path().to_owned();
        self.rows = Some(rows);
        self.metrics = metrics;
        // The gauges of a new process start empty: fill them at the first tick.
        self.gauges_stale = true;
    }

    pub fn engine(&self) -> &ExecQuality {
        &self.engine
    }

    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    pub fn rows_db(&self) -> &Path {
        &self.rows_db
    }

    fn writer(&mut self) -> Result<&mut RowWriter, QualityError> {
        if self.rows.is_none() {
            self.rows = Some(RowWriter::open(&self.rows_db)?);
        }
        self.rows.as_mut().ok_or(QualityError::NoRowStore)
    }
}

impl Consumer for QualityConsumer {
    type Error = QualityError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), QualityError> {
        for d in batch {
            let Some(record) = self.exporter.export(&d.event) else {
                continue;
            };
            self.gauges_stale |= !matches!(record.kind, Kind::Quote | Kind::Trade);
            self.engine.on_record(&record);
        }
        // Drained every batch (metrics or not), so neither buffer grows nor enters a snapshot.
        let observations = self.engine.drain_observations();
        if let Some(m) = &self.metrics {
            for o in &observations {
                m.observe(o);
            }
        }
        let changes = self.engine.drain_rows();
        if !changes.is_empty() {
            let updater = match self.updater.take() {
                Some(u) => u,
                None => RowUpdater::new(self.engine.params())?,
            };
            // Committed before `apply` returns and synced before the snapshot that drops them
            // (`before_snapshot`).
            let written = self.writer()?.apply(&changes, &updater);
            self.updater = Some(updater);
            let missing = written?;
            if missing > 0 {
                tracing::warn!(
                    missing,
                    db = %self.rows_db.display(),
                    "execution-quality updates for orders without a stored row (was the store \
                     replaced under the snapshots?): they stay without one"
                );
            }
        }
        Ok(())
    }

    fn tick(&mut self, _now: Timestamp, _out: &mut Vec<Event>) -> Result<(), QualityError> {
        if let Some(m) = &self.metrics {
            if std::mem::take(&mut self.gauges_stale) {
                m.refresh_gauges(&self.engine);
            } else {
                m.set_held(&self.engine);
            }
        }
        Ok(())
    }
}

impl Snapshot for QualityConsumer {
    /// The consumer's own layout; the engine's and the exporter's layout versions are in the
    /// fingerprint ([`crate::fingerprint`]).
    const STATE_VERSION: u32 = 1;

    /// The rows of orders this snapshot no longer holds were committed without an fsync
    /// ([`RowWriter`] runs at `synchronous = NORMAL`): make them durable first.
    fn before_snapshot(&mut self) -> Result<(), QualityError> {
        match &self.rows {
            Some(rows) => rows.sync(),
            None => Ok(()),
        }
    }
}
