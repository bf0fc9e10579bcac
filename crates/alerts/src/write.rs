//! The store's journal consumer: alert and acknowledgement events into SQLite, one transaction
//! per batch with the last sequence applied.

use std::path::{Path, PathBuf};

use journal::Delivery;
use model::Event;
use runtime::{Consumer, StoredPosition};
use rusqlite::{Connection, params};

use crate::schema::{meta, open_writer, sqlite};
use crate::{AlertsError, to_i64};

/// Writes the alert store. Run it with `runtime::Runner::start_stored` over [`crate::FILTER`].
pub struct AlertWriter {
    path: PathBuf,
    conn: Connection,
    /// Alerts stored, kept current so counting never scans the table.
    count: u64,
}

/// The owner and accounts an alert's JSON names (absent or malformed ones are simply missing:
/// the alert is still stored and listed).
fn owner_and_accounts(alert: &serde_json::Value) -> (Option<&str>, Vec<&str>) {
    let owner = alert.get("owner").and_then(|o| o.as_str());
    let mut accounts: Vec<&str> = alert
        .get("accounts")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    accounts.sort_unstable();
    accounts.dedup();
    (owner, accounts)
}

impl AlertWriter {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<AlertWriter, AlertsError> {
        let conn = open_writer(path)?;
        let count = meta(&conn, path, "count")?;
        Ok(AlertWriter {
            path: path.to_owned(),
            conn,
            count,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last journal sequence applied (0 for a new store).
    pub fn position(&self) -> Result<u64, AlertsError> {
        meta(&self.conn, &self.path, "position")
    }

    /// Alerts stored.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Applies `batch` (in sequence order) in one transaction with the new position. A batch
    /// applied again (after a commit lost to a power cut) changes nothing.
    pub fn write(&mut self, batch: &[Delivery]) -> Result<(), AlertsError> {
        let Some(last) = batch.last().map(|d| d.seq) else {
            return Ok(());
        };
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sqlite(&path))?;
        let mut added = 0u64;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alerts (journal_seq, key, rule, owner, ts, alert) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sqlite(&path))?;
            let mut insert_account = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO alert_accounts (account, journal_seq) VALUES (?1, ?2)",
                )
                .map_err(sqlite(&path))?;
            let mut ack = tx
                .prepare_cached("UPDATE alerts SET acked_by = ?2, acked_at = ?3 WHERE key = ?1")
                .map_err(sqlite(&path))?;
            for d in batch {
                match &d.event {
                    Event::ComplianceAlert {
                        key,
                        rule,
                        alert,
                        ts,
                    } => {
                        let (owner, accounts) = owner_and_accounts(alert);
                        let json = serde_json::to_string(alert)
                            .map_err(|e| AlertsError::Decode(e.to_string()))?;
                        // Ignored when the key is already stored (first raise wins) or this
                        // very row was applied before.
                        let inserted = insert
                            .execute(params![
                                to_i64(d.seq),
                                key,
                                rule,
                                owner,
                                ts.as_nanos(),
                                json
                            ])
                            .map_err(sqlite(&path))?;
                        if inserted == 1 {
                            added += 1;
                            for a in accounts {
                                insert_account
                                    .execute(params![a, to_i64(d.seq)])
                                    .map_err(sqlite(&path))?;
                            }
                        }
                    }
                    Event::AlertAcknowledged { key, by, ts } => {
                        ack.execute(params![key, by, ts.as_nanos()])
                            .map_err(sqlite(&path))?;
                    }
                    _ => {}
                }
            }
            let mut set_meta = tx
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .map_err(sqlite(&path))?;
            set_meta
                .execute(params!["position", to_i64(last)])
                .map_err(sqlite(&path))?;
            set_meta
                .execute(params!["count", to_i64(self.count + added)])
                .map_err(sqlite(&path))?;
        }
        tx.commit().map_err(sqlite(&path))?;
        self.count += added;
        Ok(())
    }
}

impl Consumer for AlertWriter {
    type Error = AlertsError;

    fn apply(&mut self, batch: &[Delivery], _out: &mut Vec<Event>) -> Result<(), AlertsError> {
        self.write(batch)
    }
}

impl StoredPosition for AlertWriter {
    fn stored_position(&self) -> Result<u64, AlertsError> {
        self.position()
    }
}
