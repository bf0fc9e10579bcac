//! Reading the blotter: pages of orders and fills, one order, a client order id.
//!
//! Every method blocks on SQLite; async callers run them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use model::{Fill, Order, OrderStatus, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::BlotterError;
use crate::schema::{open_reader, sqlite};

/// Read connections kept for reuse.
const MAX_IDLE: usize = 8;

/// Read access to the blotter. Cheap to clone.
#[derive(Clone)]
pub struct Blotter {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

/// Which statuses a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Is(OrderStatus),
    /// pending_new, accepted, partially_filled.
    Open,
    /// filled, canceled, rejected, expired.
    Closed,
}

impl StatusFilter {
    /// `open`, `closed` or one status name.
    pub fn parse(s: &str) -> Option<StatusFilter> {
        match s {
            "open" => Some(StatusFilter::Open),
            "closed" => Some(StatusFilter::Closed),
            other => OrderStatus::ALL
                .into_iter()
                .find(|st| st.as_str() == other)
                .map(StatusFilter::Is),
        }
    }

    fn statuses(self) -> Vec<OrderStatus> {
        match self {
            StatusFilter::Is(s) => vec![s],
            StatusFilter::Open => OrderStatus::ALL
                .into_iter()
                .filter(|s| s.is_open())
                .collect(),
            StatusFilter::Closed => OrderStatus::ALL
                .into_iter()
                .filter(|s| s.is_terminal())
                .collect(),
        }
    }
}

/// A page of orders.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// `None`: every account.
    pub accounts: Option<Vec<String>>,
    pub status: Option<StatusFilter>,
    /// Exact symbol (as stored, upper case).
    pub symbol: Option<String>,
    /// Created at or after.
    pub from: Option<Timestamp>,
    /// Created before.
    pub to: Option<Timestamp>,
    /// Continue after this order id (exclusive), in the listing's direction.
    pub cursor: Option<u64>,
    pub limit: usize,
    /// Newest first (descending ids); ascending otherwise.
    pub newest_first: bool,
}

/// A page of fills.
#[derive(Debug, Clone, Default)]
pub struct FillQuery {
    pub accounts: Option<Vec<String>>,
    pub symbol: Option<String>,
    pub order_id: Option<u64>,
    /// Executed at or after.
    pub from: Option<Timestamp>,
    /// Executed before.
    pub to: Option<Timestamp>,
    pub cursor: Option<u64>,
    pub limit: usize,
    pub newest_first: bool,
}

/// One page and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<u64>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `WHERE` clauses and their parameters, built up per query.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    fn eq(&mut self, column: &str, v: Value) {
        self.clauses.push(format!("{column} = ?"));
        self.params.push(v);
    }
    fn any_of(&mut self, column: &str, vs: Vec<Value>) {
        if vs.len() == 1 {
            return self.eq(column, vs.into_iter().next().unwrap_or(Value::Null));
        }
        let marks = vec!["?"; vs.len()].join(", ");
        self.clauses.push(format!("{column} IN ({marks})"));
        self.params.extend(vs);
    }
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

fn keyset(w: &mut Where, id_column: &str, cursor: Option<u64>, newest_first: bool) -> String {
    if let Some(c) = cursor {
        w.cmp(
            id_column,
            if newest_first { "<" } else { ">" },
            Value::Integer(to_i64(c)),
        );
    }
    format!(
        "ORDER BY {id_column} {}",
        if newest_first { "DESC" } else { "ASC" }
    )
}

fn accounts(w: &mut Where, accounts: &Option<Vec<String>>) {
    if let Some(list) = accounts {
        w.any_of(
            "account",
            list.iter().map(|a| Value::Text(a.clone())).collect(),
        );
    }
}

impl Blotter {
    /// Reads the blotter at `path` (the writer creates it).
    pub fn open(path: &Path) -> Blotter {
        Blotter {
            path: Arc::new(path.to_owned()),
            idle: Arc::default(),
        }
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
        f: impl FnOnce(&Connection) -> Result<T, BlotterError>,
    ) -> Result<T, BlotterError> {
        let conn = match self.idle().pop() {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn)?;
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(out)
    }

    /// A page of orders.
    pub fn orders(&self, q: &OrderQuery) -> Result<Page<Order>, BlotterError> {
        let mut w = Where::default();
        accounts(&mut w, &q.accounts);
        if let Some(st) = q.status {
            w.any_of(
                "status",
                st.statuses()
                    .into_iter()
                    .map(|s| Value::Text(s.as_str().to_owned()))
                    .collect(),
            );
        }
        if let Some(sym) = &q.symbol {
            w.eq("symbol", Value::Text(sym.clone()));
        }
        if let Some(f) = q.from {
            w.cmp("created_at", ">=", Value::Integer(f.as_nanos()));
        }
        if let Some(t) = q.to {
            w.cmp("created_at", "<", Value::Integer(t.as_nanos()));
        }
        let order = keyset(&mut w, "order_id", q.cursor, q.newest_first);
        let sql = format!(
            "SELECT order_id, body FROM orders {} {order} LIMIT ?",
            w.sql()
        );
        self.page(&sql, w.params, q.limit)
    }

    /// A page of fills.
    pub fn fills(&self, q: &FillQuery) -> Result<Page<Fill>, BlotterError> {
        let mut w = Where::default();
        accounts(&mut w, &q.accounts);
        if let Some(sym) = &q.symbol {
            w.eq("symbol", Value::Text(sym.clone()));
        }
        if let Some(id) = q.order_id {
            w.eq("order_id", Value::Integer(to_i64(id)));
        }
        if let Some(f) = q.from {
            w.cmp("ts", ">=", Value::Integer(f.as_nanos()));
        }
        if let Some(t) = q.to {
            w.cmp("ts", "<", Value::Integer(t.as_nanos()));
        }
        let order = keyset(&mut w, "fill_id", q.cursor, q.newest_first);
        let sql = format!(
            "SELECT fill_id, body FROM fills {} {order} LIMIT ?",
            w.sql()
        );
        self.page(&sql, w.params, q.limit)
    }

    fn page<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        mut params: Vec<Value>,
        limit: usize,
    ) -> Result<Page<T>, BlotterError> {
        let limit = limit.max(1);
        // One more than asked: whether a next page exists, without a count.
        params.push(Value::Integer(to_i64(limit as u64 + 1)));
        let path = self.path.clone();
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(sqlite(&path))?;
            let rows = stmt
                .query_map(params_from_iter(params), |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sqlite(&path))?;
            let mut items = Vec::with_capacity(limit);
            let mut last_id = None;
            let mut more = false;
            for row in rows {
                let (id, body) = row.map_err(sqlite(&path))?;
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(
                    serde_json::from_str(&body).map_err(|e| BlotterError::Decode(e.to_string()))?,
                );
                last_id = Some(u64::try_from(id).unwrap_or(0));
            }
            Ok(Page {
                items,
                next_cursor: if more { last_id } else { None },
            })
        })
    }

    /// One order by id (any account: the caller checks who may see it).
    pub fn order(&self, id: u64) -> Result<Option<Order>, BlotterError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM orders WHERE order_id = ?1")
                .map_err(sqlite(&path))?
                .query_row(params![to_i64(id)], |r| r.get(0))
                .optional()
                .map_err(sqlite(&path))?;
            body.map(|b| serde_json::from_str(&b).map_err(|e| BlotterError::Decode(e.to_string())))
                .transpose()
        })
    }

    /// The order an account placed with this client order id, within the idempotency window.
    pub fn order_by_client_id(
        &self,
        account: &str,
        client_order_id: &str,
    ) -> Result<Option<Order>, BlotterError> {
        let path = self.path.clone();
        let id: Option<i64> = self.with_conn(|conn| {
            conn.prepare_cached(
                "SELECT order_id FROM client_order_ids WHERE account = ?1 AND client_order_id = ?2",
            )
            .map_err(sqlite(&path))?
            .query_row(params![account, client_order_id], |r| r.get(0))
            .optional()
            .map_err(sqlite(&path))
        })?;
        match id {
            Some(id) => self.order(u64::try_from(id).unwrap_or(0)),
            None => Ok(None),
        }
    }

    /// How many orders and fills are stored (operators, tests).
    pub fn counts(&self) -> Result<(u64, u64), BlotterError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            conn.query_row(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM fills)",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(sqlite(&path))
        })
    }
}
