//! A small ClickHouse HTTP client: SQL in, TabSeparated out, errors classified (credentials,
//! retryable, permanent) and naming `clickhouse.http_url` without its password.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use config::ClickHouseConfig;
use model::{
    AccountId, Fill, FillId, InstrumentId, Liquidity, Money, OrderId, Price, Quantity, Side,
    Symbol, Timestamp, Venue,
};
use percent_encoding::percent_decode_str;
use reqwest::Url;

use crate::error::ClickHouseError;
use crate::rows::unescape;
use crate::schema::{self, PROGRESS_TABLE, Table};

/// How long one request may take. A batch is at most a few MB; 18.16 answers an INSERT of
/// 65,536 rows in well under a second here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Error codes of a refused login: unknown user, wrong password, password required, address
/// not allowed (18.16), authentication failed (current releases).
const AUTH_CODES: &[u32] = &[192, 193, 194, 195, 516];

/// Codes where the same request may succeed later: timeouts, network, overload (memory, too
/// many parts or queries), a read-only or shutting-down server.
const RETRYABLE_CODES: &[u32] = &[
    159, 160, 164, 202, 203, 209, 210, 236, 241, 242, 252, 285, 319, 394, 425, 439, 999, 1000,
];

/// A connection to one ClickHouse server and database. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct ClickHouseClient {
    http: reqwest::Client,
    /// `clickhouse.http_url` without its userinfo.
    base: Url,
    user: Option<String>,
    password: Option<String>,
    /// The URL as messages show it (password hidden).
    shown: String,
    database: String,
}

impl std::fmt::Debug for ClickHouseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseClient")
            .field("url", &self.shown)
            .field("database", &self.database)
            .finish()
    }
}

/// A fill as stored, with its journal sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFill {
    pub seq: u64,
    pub fill: Fill,
}

impl ClickHouseClient {
    /// Checks `clickhouse.http_url` (http or https, credentials in the userinfo) and
    /// `clickhouse.database`; no request yet.
    pub fn new(cfg: &ClickHouseConfig) -> Result<ClickHouseClient, ClickHouseError> {
        let shown = telemetry::redact::connection_string(&cfg.http_url);
        let invalid = |reason: String| ClickHouseError::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let mut base = Url::parse(cfg.http_url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the scheme must be http or https, not {}",
                base.scheme()
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host".into()));
        }
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| invalid("the userinfo is not UTF-8 once percent-decoded".into()))
        };
        let user = match base.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = base.password().map(decode).transpose()?;
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !schema::valid_database(&cfg.database) {
            return Err(ClickHouseError::InvalidDatabase {
                name: cfg.database.clone(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Below the server's keep-alive (3 s on 18.16), so a pooled connection is not
            // reused just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| invalid(chain(&e)))?;
        Ok(ClickHouseClient {
            http,
            base,
            user,
            password,
            shown,
            database: cfg.database.clone(),
        })
    }

    /// The same settings with a connection pool of its own (for another tokio runtime).
    pub(crate) fn with_own_pool(&self) -> Result<ClickHouseClient, ClickHouseError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ClickHouseError::Runtime(chain(&e)))?;
        Ok(ClickHouseClient {
            http,
            ..self.clone()
        })
    }

    /// `clickhouse.http_url` with the password hidden.
    pub fn url(&self) -> &str {
        &self.shown
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The server's version; fails on bad credentials (a plain `/ping` does not check them).
    pub async fn version(&self) -> Result<String, ClickHouseError> {
        let rows = self.query("SELECT version()").await?;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .ok_or_else(|| self.bad_answer("SELECT version()", "no row".into()))
    }

    /// Waits up to `wait` for the server to answer (it may be starting next to us); a refused
    /// login or a request error fails at once.
    pub async fn wait_ready(&self, wait: Duration) -> Result<String, ClickHouseError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.version().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && started.elapsed() < wait => {
                    tracing::debug!(url = %self.shown, error = %e, "waiting for ClickHouse");
                }
                Err(e) if e.is_retryable() => {
                    let reason = match e {
                        ClickHouseError::Transport { reason, .. } => reason,
                        ClickHouseError::Server { message, .. } => message,
                        e => e.to_string(),
                    };
                    return Err(ClickHouseError::Unreachable {
                        url: self.shown.clone(),
                        waited: wait,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(delay.min(wait.saturating_sub(started.elapsed()))).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Creates the database and the tables when missing and checks that existing tables have
    /// every column this version writes.
    pub async fn ensure_schema(&self) -> Result<(), ClickHouseError> {
        let db = &self.database;
        self.execute(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
            .await?;
        for t in Table::ALL {
            self.execute(&t.create_sql(db)).await?;
            self.check_columns(t).await?;
        }
        self.execute(&schema::progress_sql(db)).await
    }

    async fn check_columns(&self, t: Table) -> Result<(), ClickHouseError> {
        let sql = format!(
            "SELECT name, type FROM system.columns WHERE database = {} AND table = {}",
            quote(&self.database),
            quote(t.name())
        );
        let have = self.query(&sql).await?;
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let mut missing = Vec::new();
        for (name, ty) in t.columns() {
            match have
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*name))
            {
                None => missing.push(*name),
                Some(r) if r.get(1).map(|x| squash(x)) != Some(squash(ty)) => {
                    // Servers print some types their own way; the INSERT is the real test.
                    tracing::warn!(
                        table = t.name(),
                        column = name,
                        expected = ty,
                        found = r.get(1).map(String::as_str).unwrap_or(""),
                        "ClickHouse column type differs from what the sink creates"
                    );
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(ClickHouseError::Server {
            url: self.shown.clone(),
            what: format!("checking table {}.{}", self.database, t.name()),
            status: 200,
            code: 16,
            message: format!(
                "the existing table lacks column(s) {} that this version writes; migrate it or set clickhouse.database to a new database",
                missing.join(", ")
            ),
            retryable: false,
        })
    }

    /// Runs a statement without a result (DDL).
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.send(sql, None, Bytes::new()).await.map(|_| ())
    }

    /// Runs a SELECT and returns its rows, fields unescaped (the SQL must not name a FORMAT).
    /// A NULL reads as `\N` (wrap nullable columns in `ifNull` where a string could be `\N`).
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<String>>, ClickHouseError> {
        let body = self
            .send(&format!("{sql} FORMAT TabSeparated"), None, Bytes::new())
            .await?;
        let text = String::from_utf8(body).map_err(|_| self.bad_answer(sql, "not UTF-8".into()))?;
        Ok(text
            .lines()
            .map(|l| {
                l.split('\t')
                    .map(|f| {
                        if f == "\\N" {
                            f.to_owned()
                        } else {
                            unescape(f)
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// Inserts TabSeparated `rows` (lines in the table's column order) into `table`.
    pub(crate) async fn insert(&self, table: Table, rows: Bytes) -> Result<(), ClickHouseError> {
        let sql = format!(
            "INSERT INTO `{}`.`{}` ({}) FORMAT TabSeparated",
            self.database,
            table.name(),
            table.column_list()
        );
        self.send(&sql, Some(&sql), rows).await.map(|_| ())
    }

    /// The highest journal sequence stored in `table` (0 when empty).
    pub async fn max_seq(&self, table: Table) -> Result<u64, ClickHouseError> {
        let sql = format!(
            "SELECT max(seq) FROM `{}`.`{}`",
            self.database,
            table.name()
        );
        self.single_u64(&sql).await
    }

    /// The journal sequences stored in `table` within `from..=to`.
    pub(crate) async fn seqs_in(
        &self,
        table: Table,
        from: u64,
        to: u64,
    ) -> Result<HashSet<u64>, ClickHouseError> {
        let sql = format!(
            "SELECT seq FROM `{}`.`{}` WHERE seq >= {from} AND seq <= {to}",
            self.database,
            table.name()
        );
        let rows = self.query(&sql).await?;
        rows.iter()
            .map(|r| self.parse_u64(&sql, r.first()))
            .collect()
    }

    /// The last journal sequence `sink` recorded as complete (0: none).
    pub async fn progress(&self, sink: &str) -> Result<u64, ClickHouseError> {
        let sql = format!(
            "SELECT max(seq) FROM `{}`.`{PROGRESS_TABLE}` WHERE sink = {}",
            self.database,
            quote(sink)
        );
        self.single_u64(&sql).await
    }

    pub(crate) async fn record_progress(
        &self,
        sink: &str,
        seq: u64,
    ) -> Result<(), ClickHouseError> {
        let sql = format!(
            "INSERT INTO `{}`.`{PROGRESS_TABLE}` (sink, seq, at) FORMAT TabSeparated",
            self.database
        );
        let mut row = Vec::new();
        for &b in sink.as_bytes() {
            match b {
                b'\\' | b'\t' | b'\n' => row.extend_from_slice(&[b'\\', b]),
                _ => row.push(b),
            }
        }
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
        row.extend_from_slice(format!("\t{seq}\t{now}\n").as_bytes());
        self.send(&sql, Some(&sql), row.into()).await.map(|_| ())
    }

    /// An account's fills with `from <= ts < to`, oldest first, at most `limit`: exact values
    /// (read from the text columns) and the journal sequence of each.
    pub async fn fills_for_account(
        &self,
        account: &AccountId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<StoredFill>, ClickHouseError> {
        let secs = |t: Timestamp| {
            t.as_nanos()
                .div_euclid(1_000_000_000)
                .clamp(0, u32::MAX as i64)
        };
        // `ts` (seconds) narrows by the sort key; `ts_ns` is the exact bound.
        let sql = format!(
            "SELECT seq, fill_id, order_id, account, venue, symbol, side, liquidity, price_text, quantity_text, fee_text, ts_ns \
             FROM `{}`.fills WHERE account = {} AND ts >= toDateTime({}) AND ts <= toDateTime({}) \
             AND ts_ns >= {} AND ts_ns < {} ORDER BY ts_ns, seq LIMIT {limit}",
            self.database,
            quote(account.as_str()),
            secs(from),
            secs(to),
            from.as_nanos(),
            to.as_nanos(),
        );
        let rows = self.query(&sql).await?;
        rows.iter()
            .map(|r| self.stored_fill(&sql, r))
            .collect::<Result<Vec<_>, _>>()
    }

    fn stored_fill(&self, sql: &str, r: &[String]) -> Result<StoredFill, ClickHouseError> {
        let bad = |why: String| self.bad_answer(sql, why);
        if r.len() != 12 {
            return Err(bad(format!("{} columns, expected 12", r.len())));
        }
        let m = |e: model::ModelError| bad(e.to_string());
        let side = match r[6].as_str() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            s => return Err(bad(format!("side {s:?}"))),
        };
        let liquidity = match r[7].as_str() {
            "maker" => Liquidity::Maker,
            "taker" => Liquidity::Taker,
            s => return Err(bad(format!("liquidity {s:?}"))),
        };
        let ns: i64 = r[11]
            .parse()
            .map_err(|_| bad(format!("ts_ns {:?}", r[11])))?;
        Ok(StoredFill {
            seq: self.parse_u64(sql, r.first())?,
            fill: Fill {
                fill_id: FillId(self.parse_u64(sql, r.get(1))?),
                order_id: OrderId(self.parse_u64(sql, r.get(2))?),
                account: AccountId::new(r[3].clone()).map_err(m)?,
                instrument: InstrumentId::new(
                    Venue::new(r[4].clone()).map_err(m)?,
                    Symbol::new(r[5].clone()).map_err(m)?,
                ),
                side,
                quantity: Quantity::parse(&r[9]).map_err(m)?,
                price: Price::parse(&r[8]).map_err(m)?,
                fee: Money::parse(&r[10]).map_err(m)?,
                liquidity,
                ts: Timestamp::from_nanos(ns),
            },
        })
    }

    async fn single_u64(&self, sql: &str) -> Result<u64, ClickHouseError> {
        let rows = self.query(sql).await?;
        self.parse_u64(sql, rows.first().and_then(|r| r.first()))
    }

    fn parse_u64(&self, sql: &str, v: Option<&String>) -> Result<u64, ClickHouseError> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad_answer(sql, format!("expected a number, got {v:?}")))
    }

    pub(crate) fn bad_answer(&self, what: &str, reason: String) -> ClickHouseError {
        ClickHouseError::BadAnswer {
            url: self.shown.clone(),
            what: short(what),
            reason,
        }
    }

    /// POSTs one request: `query` in the URL with `body` as its data (INSERT), or the SQL
    /// itself as the body (everything else).
    async fn send(
        &self,
        sql: &str,
        query: Option<&str>,
        data: Bytes,
    ) -> Result<Vec<u8>, ClickHouseError> {
        let mut url = self.base.clone();
        let body = match query {
            Some(q) => {
                url.query_pairs_mut().append_pair("query", q);
                data
            }
            None => Bytes::copy_from_slice(sql.as_bytes()),
        };
        let mut req = self.http.post(url).body(body);
        if let Some(user) = &self.user {
            req = req.basic_auth(user, self.password.as_deref());
        }
        let transport = |e: reqwest::Error| ClickHouseError::Transport {
            url: self.shown.clone(),
            what: short(sql),
            // The URL (the SQL in its query string) is in the message already, shorter.
            reason: chain(&e.without_url()),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(&bytes);
        let code = error_code(&text);
        let message = first_line(&text);
        let auth =
            matches!(status.as_u16(), 401 | 403) || code.is_some_and(|c| AUTH_CODES.contains(&c));
        if auth {
            return Err(ClickHouseError::Auth {
                url: self.shown.clone(),
                code: code.unwrap_or(0),
                message,
            });
        }
        // No ClickHouse code: a proxy or load balancer in front answered (502, 503, 504).
        let retryable = match code {
            Some(c) => RETRYABLE_CODES.contains(&c),
            None => status.is_server_error(),
        };
        Err(ClickHouseError::Server {
            url: self.shown.clone(),
            what: short(sql),
            status: status.as_u16(),
            code: code.unwrap_or(0),
            message,
            retryable,
        })
    }
}

/// A string literal for SQL.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `Code: 193, e.displayText() = …` (18.16) or `Code: 516. DB::Exception: …` (current).
fn error_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The error's first line without 18.16's decoration, bounded (current releases append a
/// stack trace).
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let line = line.trim_end_matches(", e.what() = DB::Exception");
    let owned = line.replacen(", e.displayText() = ", ". ", 1);
    let line = owned.as_str();
    let mut s: String = line.chars().take(400).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

/// The SQL for a message: its first 80 characters (an INSERT's column list is long).
fn short(sql: &str) -> String {
    let mut s: String = sql.chars().take(80).collect();
    if s.len() < sql.len() {
        s.push('…');
    }
    s
}

/// An error with its causes ("error sending request" alone does not say connection refused).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, db: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            http_url: url.into(),
            database: db.into(),
        }
    }

    #[test]
    fn credentials_come_from_the_userinfo_and_never_show() {
        let c = ClickHouseClient::new(&cfg("http://ana:p%40ss@ch:8123/", "trade2026")).unwrap();
        assert_eq!(c.user.as_deref(), Some("ana"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.base.as_str(), "http://ch:8123/");
        assert!(!c.url().contains("p%40ss") && c.url().contains("ana"));
        assert!(!format!("{c:?}").contains("p%40ss"));
    }

    #[test]
    fn bad_settings_name_themselves() {
        let e = ClickHouseClient::new(&cfg("ch:8123", "x")).unwrap_err();
        assert!(e.to_string().starts_with("clickhouse.http_url"), "{e}");
        let e = ClickHouseClient::new(&cfg("ftp://ch", "x")).unwrap_err();
        assert!(e.to_string().contains("http or https"), "{e}");
        let e = ClickHouseClient::new(&cfg("http://ch:8123", "a-b")).unwrap_err();
        assert!(e.to_string().starts_with("clickhouse.database"), "{e}");
    }

    #[test]
    fn error_codes_of_old_and_new_servers() {
        assert_eq!(
            error_code("Code: 193, e.displayText() = DB::Exception: Wrong password"),
            Some(193)
        );
        assert_eq!(
            error_code("Code: 516. DB::Exception: default: Authentication failed"),
            Some(516)
        );
        assert_eq!(error_code("Bad Gateway"), None);
    }

    #[test]
    fn messages_lose_the_old_servers_decoration() {
        assert_eq!(
            first_line(
                "Code: 193, e.displayText() = DB::Exception: Wrong password for user default, e.what() = DB::Exception\n"
            ),
            "Code: 193. DB::Exception: Wrong password for user default"
        );
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote("a'b\\c"), "'a\\'b\\\\c'");
    }
}
