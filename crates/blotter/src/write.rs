//! The blotter's journal consumer: order and fill events into SQLite, one transaction per batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use journal::Delivery;
use model::{Decimal, Event, Order, OrderStatus, Timestamp};
use runtime::{Consumer, StoredPosition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::BlotterError;
use crate::schema::{open_writer, sqlite};

/// Writes the blotter. Run it with [`runtime::Runner::start_stored`] over
/// [`BlotterWriter::FILTER`].
pub struct BlotterWriter {
    path: PathBuf,
    conn: Connection,
    /// Client order ids older than this are forgotten (0: never).
    idempotency_window_ns: i64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An order being changed within one batch (loaded once, written once).
struct Working {
    order: Order,
    notional: Decimal,
}

impl BlotterWriter {
    /// The subjects the blotter reads.
    pub const FILTER: &'static str = "orders.* fills.*";

    /// Opens (creating) the blotter at `path`; client order ids are kept `idempotency_window_secs`.
    pub fn open(path: &Path, idempotency_window_secs: u64) -> Result<BlotterWriter, BlotterError> {
        Ok(BlotterWriter {
            path: path.to_owned(),
            conn: open_writer(path)?,
            idempotency_window_ns: to_i64(idempotency_window_secs.saturating_mul(1_000_000_000)),
        })
    }

    /// The last journal sequence applied (0 for a new blotter).
    pub fn position(&self) -> Result<u64, BlotterError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'position'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sqlite(&self.path))?;
        Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    /// Applies `batch` in one transaction with the new position.
    pub fn write(&mut self, batch: &[Delivery]) -> Result<(), BlotterError> {
        let Some(last) = batch.last().map(|d| d.seq) else {
            return Ok(());
        };
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sqlite(&path))?;
        let mut working: HashMap<u64, Working> = HashMap::new();
        {
            let mut insert_fill = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO fills (fill_id, order_id, account, symbol, ts, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sqlite(&path))?;
            let mut insert_client_id = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO client_order_ids (account, client_order_id, order_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sqlite(&path))?;
            for d in batch {
                let inconsistent = |order_id: u64, reason: String| BlotterError::Inconsistent {
                    seq: d.seq,
                    order_id,
                    reason,
                };
                match &d.event {
                    Event::OrderSubmitted { order } => {
                        insert_client_id
                            .execute(params![
                                order.account.as_str(),
                                order.client_order_id.as_str(),
                                to_i64(order.order_id.0),
                                order.created_at.as_nanos()
                            ])
                            .map_err(sqlite(&path))?;
                        working.insert(
                            order.order_id.0,
                            Working {
                                order: order.clone(),
                                notional: Decimal::ZERO,
                            },
                        );
                    }
                    Event::OrderAccepted { order_id, ts, .. } => {
                        let w = load(&tx, &path, &mut working, order_id.0)?
                            .ok_or_else(|| inconsistent(order_id.0, "unknown order".into()))?;
                        set_status(w, OrderStatus::Accepted, *ts);
                    }
                    Event::OrderRejected { order_id, ts, .. } => {
                        let w = load(&tx, &path, &mut working, order_id.0)?
                            .ok_or_else(|| inconsistent(order_id.0, "unknown order".into()))?;
                        set_status(w, OrderStatus::Rejected, *ts);
                    }
                    Event::OrderCanceled { order_id, ts, .. } => {
                        let w = load(&tx, &path, &mut working, order_id.0)?
                            .ok_or_else(|| inconsistent(order_id.0, "unknown order".into()))?;
                        set_status(w, OrderStatus::Canceled, *ts);
                    }
                    Event::OrderExpired { order_id, ts, .. } => {
                        let w = load(&tx, &path, &mut working, order_id.0)?
                            .ok_or_else(|| inconsistent(order_id.0, "unknown order".into()))?;
                        set_status(w, OrderStatus::Expired, *ts);
                    }
                    Event::OrderFilled(fill) => {
                        let body = serde_json::to_string(fill)
                            .map_err(|e| BlotterError::Decode(e.to_string()))?;
                        insert_fill
                            .execute(params![
                                to_i64(fill.fill_id.0),
                                to_i64(fill.order_id.0),
                                fill.account.as_str(),
                                fill.instrument.symbol.as_str(),
                                fill.ts.as_nanos(),
                                body
                            ])
                            .map_err(sqlite(&path))?;
                        let id = fill.order_id.0;
                        let w = load(&tx, &path, &mut working, id)?
                            .ok_or_else(|| inconsistent(id, "fill of an unknown order".into()))?;
                        let p = w
                            .order
                            .progress(w.notional, fill.quantity, fill.price)
                            .map_err(|e| inconsistent(id, format!("{e:?}")))?;
                        w.order.apply_progress(&p, fill.ts);
                        w.notional = p.notional;
                    }
                    _ => {}
                }
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO orders (order_id, account, symbol, status, created_at, updated_at, notional, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, \
                     updated_at = excluded.updated_at, notional = excluded.notional, body = excluded.body",
                )
                .map_err(sqlite(&path))?;
            let mut ids: Vec<&u64> = working.keys().collect();
            ids.sort_unstable();
            for id in ids {
                let w = &working[id];
                let o = &w.order;
                let body =
                    serde_json::to_string(o).map_err(|e| BlotterError::Decode(e.to_string()))?;
                upsert
                    .execute(params![
                        to_i64(o.order_id.0),
                        o.account.as_str(),
                        o.instrument.symbol.as_str(),
                        o.status.as_str(),
                        o.created_at.as_nanos(),
                        o.updated_at.as_nanos(),
                        w.notional.to_string(),
                        body
                    ])
                    .map_err(sqlite(&path))?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('position', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![to_i64(last)],
            )
            .map_err(sqlite(&path))?;
        }
        tx.commit().map_err(sqlite(&path))
    }

    /// Forgets client order ids older than the idempotency window (as of `now`).
    pub fn prune_client_ids(&mut self, now: Timestamp) -> Result<usize, BlotterError> {
        if self.idempotency_window_ns <= 0 {
            return Ok(0);
        }
        let cutoff = now.as_nanos().saturating_sub(self.idempotency_window_ns);
        self.conn
            .execute(
                "DELETE FROM client_order_ids WHERE created_at < ?1",
                params![cutoff],
            )
            .map_err(sqlite(&self.path))
    }
}

fn set_status(w: &mut Working, status: OrderStatus, ts: Timestamp) {
    w.order.status = status;
    w.order.updated_at = ts;
}

/// The order as this batch sees it: from the batch's working set, else from the table.
fn load<'w>(
    tx: &Connection,
    path: &Path,
    working: &'w mut HashMap<u64, Working>,
    id: u64,
) -> Result<Option<&'w mut Working>, BlotterError> {
    use std::collections::hash_map::Entry;
    match working.entry(id) {
        Entry::Occupied(e) => Ok(Some(e.into_mut())),
        Entry::Vacant(slot) => {
            let row: Option<(String, String)> = tx
                .prepare_cached("SELECT body, notional FROM orders WHERE order_id = ?1")
                .map_err(sqlite(path))?
                .query_row(params![to_i64(id)], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sqlite(path))?;
            let Some((body, notional)) = row else {
                return Ok(None);
            };
            let order: Order =
                serde_json::from_str(&body).map_err(|e| BlotterError::Decode(e.to_string()))?;
            let notional = notional
                .parse::<Decimal>()
                .map_err(|e| BlotterError::Decode(e.to_string()))?;
            Ok(Some(slot.insert(Working { order, notional })))
        }
    }
}

impl Consumer for BlotterWriter {
    type Error = BlotterError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), BlotterError> {
        self.write(batch)
    }

    fn tick(&mut self, now: Timestamp, _out: &mut Vec<Event>) -> Result<(), BlotterError> {
        let pruned = self.prune_client_ids(now)?;
        if pruned > 0 {
            tracing::debug!(
                pruned,
                "client order ids past the idempotency window forgotten"
            );
        }
        Ok(())
    }
}

impl StoredPosition for BlotterWriter {
    fn stored_position(&self) -> Result<u64, BlotterError> {
        self.position()
    }
}
