//! Reading the store: pages of alerts, one alert by key, what was raised after a sequence.
//!
//! Every method blocks on SQLite; async callers run them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use model::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::schema::{meta, open_reader, open_writer, sqlite};
use crate::{AlertQuery, AlertsError, Page, StoredAlert, to_i64, to_u64};

/// Read connections kept for reuse.
const MAX_IDLE: usize = 8;

const COLUMNS: &str = "journal_seq, key, rule, owner, ts, alert, acked_by, acked_at";

/// Read access to the alert store. Cheap to clone; any number of readers beside the one writer.
#[derive(Clone)]
pub struct AlertStore {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for AlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `WHERE` clauses and their parameters, built up per query.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    fn cmp(&mut self, column: &str, op: &str, v: Value) {
        self.clauses.push(format!("{column} {op} ?"));
        self.params.push(v);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn decode_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        seq: r.get(0)?,
        key: r.get(1)?,
        rule: r.get(2)?,
        owner: r.get(3)?,
        ts: r.get(4)?,
        alert: r.get(5)?,
        acked_by: r.get(6)?,
        acked_at: r.get(7)?,
    })
}

/// A row as SQLite hands it out, before its JSON is decoded.
struct RawRow {
    seq: i64,
    key: String,
    rule: String,
    owner: Option<String>,
    ts: i64,
    alert: String,
    acked_by: Option<String>,
    acked_at: Option<i64>,
}

impl RawRow {
    fn into_alert(self) -> Result<StoredAlert, AlertsError> {
        let alert: serde_json::Value = serde_json::from_str(&self.alert)
            .map_err(|e| AlertsError::Decode(format!("alert {}: {e}", self.key)))?;
        let mut accounts: Vec<String> = alert
            .get("accounts")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        accounts.sort_unstable();
        accounts.dedup();
        Ok(StoredAlert {
            key: self.key,
            rule: self.rule,
            owner: self.owner,
            accounts,
            ts: Timestamp::from_nanos(self.ts),
            journal_seq: to_u64(self.seq),
            alert,
            acknowledged_by: self.acked_by,
            acknowledged_at: self.acked_at.map(Timestamp::from_nanos),
        })
    }
}

impl AlertStore {
    /// Reads the store at `path`, creating an empty one (file and tables) if there is none yet,
    /// so a reader may start before the writer.
    pub fn open(path: &Path) -> Result<AlertStore, AlertsError> {
        drop(open_writer(path)?);
        Ok(AlertStore {
            path: Arc::new(path.to_owned()),
            idle: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a pooled read connection; a connection that saw an error is dropped.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, AlertsError>,
    ) -> Result<T, AlertsError> {
        let conn = match self.idle().pop() {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn, &self.path)?;
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(out)
    }

    /// A page of alerts in journal order (see [`AlertQuery`]).
    pub fn page(&self, q: &AlertQuery) -> Result<Page<StoredAlert>, AlertsError> {
        let mut w = Where::default();
        if let Some(owner) = &q.owner {
            w.cmp("owner", "=", Value::Text(owner.clone()));
        }
        if let Some(rule) = &q.rule {
            w.cmp("rule", "=", Value::Text(rule.clone()));
        }
        if let Some(accounts) = &q.accounts {
            if accounts.is_empty() {
                w.clauses.push("0".into());
            } else {
                let marks = vec!["?"; accounts.len()].join(", ");
                w.clauses.push(format!(
                    "journal_seq IN (SELECT journal_seq FROM alert_accounts WHERE account IN ({marks}))"
                ));
                w.params
                    .extend(accounts.iter().map(|a| Value::Text(a.clone())));
            }
        }
        if let Some(f) = q.from {
            w.cmp("ts", ">=", Value::Integer(f.as_nanos()));
        }
        if let Some(t) = q.to {
            w.cmp("ts", "<", Value::Integer(t.as_nanos()));
        }
        if let Some(c) = q.cursor {
            w.cmp(
                "journal_seq",
                if q.newest_first { "<" } else { ">" },
                Value::Integer(to_i64(c)),
            );
        }
        let limit = q.limit.max(1);
        // One more than asked: whether a next page exists, without a count.
        let mut params = w.params.clone();
        params.push(Value::Integer(to_i64(limit as u64 + 1)));
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts {} ORDER BY journal_seq {} LIMIT ?",
            w.sql(),
            if q.newest_first { "DESC" } else { "ASC" }
        );
        self.with_conn(|conn, path| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sqlite(path))?;
            let rows = stmt
                .query_map(params_from_iter(params), decode_row)
                .map_err(sqlite(path))?;
            let mut items = Vec::with_capacity(limit.min(1_024));
            let mut more = false;
            for row in rows {
                let row = row.map_err(sqlite(path))?;
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(row.into_alert()?);
            }
            let next_cursor = if more {
                items.last().map(|a: &StoredAlert| a.journal_seq)
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
    }

    /// A page of the alerts `q` selects that `keep` accepts (a rule the columns cannot
    /// express, such as a key's account scope): `q.limit` of them at most, reading the store
    /// page by page until the page is full, and the next page starting after its last alert.
    pub fn page_filtered(
        &self,
        q: &AlertQuery,
        keep: impl Fn(&StoredAlert) -> bool,
    ) -> Result<Page<StoredAlert>, AlertsError> {
        let limit = q.limit.max(1);
        let mut q = q.clone();
        let mut items: Vec<StoredAlert> = Vec::new();
        loop {
            let page = self.page(&q)?;
            for a in page.items.into_iter().filter(|a| keep(a)) {
                if items.len() == limit {
                    // One more exists: the page is full and has a next one.
                    let next_cursor = items.last().map(|a| a.journal_seq);
                    return Ok(Page { items, next_cursor });
                }
                items.push(a);
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => {
                    return Ok(Page {
                        items,
                        next_cursor: None,
                    });
                }
            }
        }
    }

    /// The alert with this key (any account: the caller checks who may see it).
    pub fn get(&self, key: &str) -> Result<Option<StoredAlert>, AlertsError> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1");
        let row = self.with_conn(|conn, path| {
            conn.prepare_cached(&sql)
                .map_err(sqlite(path))?
                .query_row(params![key], decode_row)
                .optional()
                .map_err(sqlite(path))
        })?;
        row.map(RawRow::into_alert).transpose()
    }

    /// Whether an alert with this key was ever stored.
    pub fn contains(&self, key: &str) -> Result<bool, AlertsError> {
        self.with_conn(|conn, path| {
            conn.prepare_cached("SELECT 1 FROM alerts WHERE key = ?1")
                .map_err(sqlite(path))?
                .query_row(params![key], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
                .map_err(sqlite(path))
        })
    }

    /// The key and time of the alerts journaled after sequence `after`, oldest first, at most
    /// `limit` (a restarted scanner tells its detectors these are already raised).
    pub fn raised_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(String, Timestamp)>, AlertsError> {
        self.with_conn(|conn, path| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key, ts FROM alerts WHERE journal_seq > ?1 ORDER BY journal_seq LIMIT ?2",
                )
                .map_err(sqlite(path))?;
            let rows = stmt
                .query_map(params![to_i64(after), to_i64(limit as u64)], |r| {
                    Ok((r.get::<_, String>(0)?, Timestamp::from_nanos(r.get(1)?)))
                })
                .map_err(sqlite(path))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sqlite(path))
        })
    }

    /// How many alerts are stored (kept by the writer; no table scan).
    pub fn count(&self) -> Result<u64, AlertsError> {
        self.with_conn(|conn, path| meta(conn, path, "count"))
    }

    /// The last journal sequence the writer applied.
    pub fn position(&self) -> Result<u64, AlertsError> {
        self.with_conn(|conn, path| meta(conn, path, "position"))
    }
}
