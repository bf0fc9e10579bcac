//! The HTTP side every service shares: the host (bind, `/health`, `/metrics`, the JSON 404,
//! graceful shutdown), who is calling ([`Caller`], with one account-scope rule), query
//! parameters ([`Params`], with one time parser) and JSON bodies ([`parse_json`], with one
//! error mapping). Errors are always `{"error":{"code","message"}}` with a 4xx for the caller's
//! mistakes.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use auth::{ApiKeys, Principal, Role};
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use model::{AccountId, Timestamp};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use telemetry::Metrics;
pub use telemetry::http::ApiError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::guard::{self, Guard, GuardedListener, KeyLimiter};
pub use crate::guard::{HttpLimits, RateLimits, Refusal};
use crate::{ConsumerHandle, RuntimeError};

// --- the host ---------------------------------------------------------------------------------

/// What `/health` reports about one consumer of the service.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConsumerStatus {
    pub consumer: &'static str,
    /// Caught up with the journal as it was when the consumer started.
    pub ready: bool,
    pub position: u64,
    pub snapshot_seq: u64,
    pub events_since_snapshot: u64,
}

/// Something whose readiness `/health` reports (a consumer of the service).
pub trait Probe: Send + Sync + 'static {
    fn status(&self) -> ConsumerStatus;
}

impl<C: Send + 'static> Probe for ConsumerHandle<C> {
    fn status(&self) -> ConsumerStatus {
        ConsumerStatus {
            consumer: self.name(),
            ready: self.is_ready(),
            position: self.position(),
            snapshot_seq: self.snapshot_seq(),
            events_since_snapshot: self.events_since_snapshot(),
        }
    }
}

/// A part of `/health` besides the consumers, under its own key (the gateway's market-data feed
/// freshness). It informs; readiness stays the consumers'.
pub type HealthSection = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

#[derive(Clone)]
struct HealthState {
    service: &'static str,
    started: Instant,
    metrics: Metrics,
    probes: Arc<Vec<Box<dyn Probe>>>,
    sections: Arc<Vec<(&'static str, HealthSection)>>,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    uptime_seconds: u64,
    version: &'static str,
    consumers: Vec<ConsumerStatus>,
    #[serde(flatten)]
    sections: serde_json::Map<String, serde_json::Value>,
}

/// `/health`: 200 `ok` once every consumer of the service has caught up with the journal, 503
/// `starting` while one is still replaying (so a load balancer or script waits for real answers).
async fn health(State(s): State<HealthState>) -> Response {
    let consumers: Vec<ConsumerStatus> = s.probes.iter().map(|p| p.status()).collect();
    let ready = consumers.iter().all(|c| c.ready);
    let body = Health {
        status: if ready { "ok" } else { "starting" },
        service: s.service,
        uptime_seconds: s.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
        consumers,
        sections: s
            .sections
            .iter()
            .map(|(k, f)| (k.to_string(), f()))
            .collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(s): State<HealthState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, telemetry::METRICS_CONTENT_TYPE)],
        s.metrics.render(),
    )
        .into_response()
}

/// One service's HTTP server, bound and about to serve.
pub struct Host {
    service: &'static str,
    listener: TcpListener,
    addr: SocketAddr,
    probes: Vec<Box<dyn Probe>>,
    sections: Vec<(&'static str, HealthSection)>,
    limits: HttpLimits,
    other_bodies: Vec<(&'static str, &'static str)>,
}

impl Host {
    /// Binds `host:port` for `service` (port 0 picks a free one).
    pub async fn bind(service: &'static str, host: &str, port: u16) -> Result<Host, RuntimeError> {
        let addr = format!("{host}:{port}");
        let bind_error = |source| RuntimeError::Bind {
            service,
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        Ok(Host {
            service,
            listener,
            addr: local,
            probes: Vec::new(),
            sections: Vec::new(),
            limits: HttpLimits::default(),
            other_bodies: Vec::new(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reports this consumer's readiness in `/health`.
    pub fn probe(mut self, probe: impl Probe) -> Host {
        self.probes.push(Box::new(probe));
        self
    }

    /// Reports these consumers' readiness in `/health`.
    pub fn probes(mut self, probes: Vec<Box<dyn Probe>>) -> Host {
        self.probes.extend(probes);
        self
    }

    /// Adds `key: report()` to every `/health` answer.
    pub fn health_section(mut self, key: &'static str, report: HealthSection) -> Host {
        self.sections.push((key, report));
        self
    }

    /// The listener's limits (connections, timeouts, body size, rate per key, origins).
    pub fn limits(mut self, limits: HttpLimits) -> Host {
        self.limits = limits;
        self
    }

    /// Lets the route at `path` take bodies of `media` type besides JSON (e.g. NDJSON).
    pub fn accept_body(mut self, path: &'static str, media: &'static str) -> Host {
        self.other_bodies.push((path, media));
        self
    }

    /// Serves `routes` plus `/health` and `/metrics` until `shutdown`, then lets in-flight
    /// requests finish. Unknown routes answer with the JSON 404. Every route runs behind the
    /// [`guard`] (connection cap, idle timeout, origin and media-type checks,
    /// in-flight cap, request timeout, rate per key, JSON errors).
    pub fn serve(
        self,
        routes: Router,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> JoinHandle<Result<(), RuntimeError>> {
        let service = self.service;
        let guard = Guard::new(
            service,
            self.limits.clone(),
            self.addr,
            metrics.clone(),
            self.other_bodies,
        );
        let listener = GuardedListener {
            inner: self.listener,
            permits: Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections)),
            idle: self.limits.idle_timeout,
            service,
            metrics: metrics.clone(),
        };
        let app = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics_text))
            .with_state(HealthState {
                service,
                started: Instant::now(),
                metrics,
                probes: Arc::new(self.probes),
                sections: Arc::new(self.sections),
            })
            .merge(routes)
            .fallback(telemetry::http::fallback)
            .layer(axum::extract::DefaultBodyLimit::max(
                self.limits.max_body_bytes,
            ))
            .layer(axum::middleware::from_fn_with_state(guard, guard::guard));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
                .map_err(|source| RuntimeError::Serve { service, source })
        })
    }
}

// --- who is calling ---------------------------------------------------------------------------

/// The authenticated caller of a request: `Authorization: Bearer <key>` (401 without a valid
/// key, unless the platform runs `--insecure-dev`). Any router state that can hand out the
/// [`ApiKeys`] (`impl FromRef<S> for ApiKeys`) gets it as an extractor.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    ApiKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = ApiKeys::from_ref(state).authenticate(&parts.headers)?;
        // The host's guard hands every request the service's per-key limiter.
        if let Some(limiter) = parts.extensions.get::<Arc<KeyLimiter>>()
            && let Err(refused) = limiter.admit(&principal.key_id, principal.role)
        {
            // The 429 waits out its Retry-After: a client that ignores it (a flood on many
            // connections) slows itself down instead of costing the others a core.
            tokio::time::sleep(limiter.penalty()).await;
            return Err(refused);
        }
        Ok(Caller(principal))
    }
}

/// The accounts a read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account (admin and compliance keys naming none).
    All,
    /// Only these (never empty).
    Accounts(BTreeSet<AccountId>),
}

impl Scope {
    pub fn contains(&self, account: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Accounts(set) => set.iter().any(|a| a.as_str() == account),
        }
    }

    /// The accounts as strings; `None` for all.
    pub fn accounts(&self) -> Option<Vec<String>> {
        match self {
            Scope::All => None,
            Scope::Accounts(set) => Some(set.iter().map(ToString::to_string).collect()),
        }
    }

    /// The one rule for a record that involves several accounts (an alert, a report): it is in
    /// scope only if every account it involves is, so a key never sees another account's data
    /// through a record it shares with one of its own. A record naming no account (an
    /// owner-wide report) is only in the scope of every account.
    pub fn covers_all<'a>(&self, accounts: impl IntoIterator<Item = &'a str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Accounts(_) => {
                let mut named = false;
                for account in accounts {
                    if !self.contains(account) {
                        return false;
                    }
                    named = true;
                }
                named
            }
        }
    }
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// Another account than the key's is answered exactly like a missing one: a key cannot learn
/// which accounts exist.
fn account_not_found(account: &str) -> ApiError {
    ApiError::not_found(
        "account_not_found",
        format!("no account {account} for this API key"),
    )
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// Whether the key covers `account`.
    pub fn sees(&self, account: &str) -> bool {
        match self.0.account_filter() {
            None => true,
            Some(set) => set.iter().any(|a| a.as_str() == account),
        }
    }

    /// Whether the key covers a record involving `accounts`: [`Scope::covers_all`] over the
    /// key's accounts (whatever account a request names).
    pub fn sees_all<'a>(&self, accounts: impl IntoIterator<Item = &'a str>) -> bool {
        self.scope().covers_all(accounts)
    }

    /// Every account the key covers.
    pub fn scope(&self) -> Scope {
        match self.0.account_filter() {
            None => Scope::All,
            Some(set) => Scope::Accounts(set.clone()),
        }
    }

    /// The scope of a read: the `named` account if the key covers it (404 otherwise), else
    /// every account of the key.
    pub fn read_scope(&self, named: Option<&str>) -> Result<Scope, ApiError> {
        match named {
            Some(a) => {
                let id = AccountId::new(a).map_err(|e| {
                    ApiError::unprocessable("invalid_field", format!("account: {e}"))
                })?;
                if !self.sees(a) {
                    return Err(account_not_found(a));
                }
                Ok(Scope::Accounts([id].into()))
            }
            None => Ok(self.scope()),
        }
    }

    /// The one account a write acts on: `named` if the key covers it and may trade it, else the
    /// key's only account. Compliance keys cannot write.
    pub fn write_account(&self, named: Option<&str>) -> Result<AccountId, ApiError> {
        if self.0.role == Role::Compliance {
            return Err(forbidden(
                "a compliance key reads; it cannot place or cancel orders",
            ));
        }
        match named {
            Some(a) => {
                let id = AccountId::new(a).map_err(|e| {
                    ApiError::unprocessable("invalid_field", format!("account: {e}"))
                })?;
                if !self.sees(a) {
                    return Err(account_not_found(a));
                }
                Ok(id)
            }
            None => self.0.default_account().cloned().ok_or_else(|| {
                ApiError::bad_request(
                    "missing_field",
                    "missing field `account` (this API key covers several accounts)",
                )
            }),
        }
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles
                .iter()
                .map(|r| match r {
                    Role::Trader => "trader",
                    Role::Compliance => "compliance",
                    Role::Admin => "admin",
                })
                .collect();
            Err(forbidden(format!(
                "{what} needs a {} key",
                names.join(" or ")
            )))
        }
    }

    /// 403 unless the key covers every account (`*`): reports over every account, risk
    /// limits (they name any account).
    pub fn require_all_accounts(&self, what: &str) -> Result<(), ApiError> {
        if self.0.account_filter().is_none() {
            Ok(())
        } else {
            Err(forbidden(format!(
                "{what} covers every account: it needs a key for all accounts"
            )))
        }
    }
}

// --- query parameters -------------------------------------------------------------------------

/// The query string of a request. Handlers name the parameters they accept with
/// [`Params::allow`], so a misspelt filter is a 400 instead of silently returning everything.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

impl Params {
    pub fn from_map(map: HashMap<String, String>) -> Params {
        Params(map)
    }

    /// 400 `unknown_parameter` for any parameter not in `allowed`.
    pub fn allow(&self, allowed: &[&str]) -> Result<&Self, ApiError> {
        telemetry::http::check_params(&self.0, allowed)?;
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Points a listing's answer at its next page: `Link: <path?query>; rel="next"` (RFC 8288),
    /// the query being this request's parameters (sorted, so the link is stable) with `cursor`
    /// set to `next`, and `X-Next-Cursor: next` for clients that page without parsing links.
    pub fn link_next_page(&self, res: &mut Response, path: &str, next: &str) {
        let mut pairs: Vec<(&str, &str)> = self.pairs().filter(|(k, _)| *k != "cursor").collect();
        pairs.sort_unstable();
        pairs.push(("cursor", next));
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")) {
            headers.insert(header::LINK, v);
        }
        if let Ok(v) = HeaderValue::from_str(next) {
            headers.insert("x-next-cursor", v);
        }
    }

    /// A required parameter.
    pub fn required(&self, name: &str, what: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_request(
                "missing_field",
                format!("missing query parameter `{name}` ({what})"),
            )
        })
    }

    /// A time parameter, parsed by [`parse_time`].
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        self.get(name).map(|v| parse_time(name, v)).transpose()
    }

    /// `limit`: `default` when absent; 1..=`max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_field",
                        format!("limit: {v:?} is not a whole number from 1 to {max}"),
                    )
                }),
        }
    }

    /// A parameter that must be one of `choices` (case-sensitive, as documented).
    pub fn choice<'a>(&self, name: &str, choices: &[&'a str]) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => choices
                .iter()
                .find(|c| **c == v)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_field",
                        format!("{name}: {v:?} is not one of {}", choices.join(", ")),
                    )
                }),
        }
    }
}

/// The one time format of every query and body field: an RFC 3339 time
/// (`2025-01-02T15:04:05Z`, `2025-01-02T15:04:05.123+01:00`) or a date (`2025-01-02`, meaning
/// 00:00 UTC of that day). Ranges are `from` inclusive, `to` exclusive.
pub fn parse_time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    if let Ok(t) = Timestamp::parse_rfc3339(value) {
        return Ok(t);
    }
    if let Ok(d) = chrono_date(value) {
        return Ok(d);
    }
    if let Some(t) = beyond_range(value) {
        return Ok(t);
    }
    Err(ApiError::unprocessable(
        "invalid_field",
        format!(
            "{name}: {value:?} is not a time; use RFC 3339 (2025-01-02T15:04:05Z) or a date (2025-01-02)"
        ),
    ))
}

/// A valid time (or date) outside what a `Timestamp` holds (1677-09-21 to 2262-04-11) is the
/// earliest or latest instant: `from=0001-01-01` means from the beginning, and no stored
/// event lies beyond either end.
fn beyond_range(value: &str) -> Option<Timestamp> {
    let text = if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    };
    let t = chrono::DateTime::parse_from_rfc3339(&text).ok()?;
    Some(Timestamp::from_nanos(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    }))
}

fn chrono_date(value: &str) -> Result<Timestamp, ()> {
    // YYYY-MM-DD exactly: a bare number or a partial date is not a time.
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(());
    }
    Timestamp::parse_rfc3339(&format!("{value}T00:00:00Z")).map_err(|_| ())
}

// --- JSON bodies ------------------------------------------------------------------------------

/// Parses a JSON body; the error names the offending field: 400 `malformed_json`,
/// `unknown_field`, `missing_field`; 422 `invalid_field` for a value of the wrong type or range.
///
/// A struct is read from a JSON object only ([`crate::strict`]): serde would also take an array
/// of its fields, which no documented body is.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| json_error(String::new(), e))?;
    let result: Result<T, _> = serde_path_to_error::deserialize(crate::strict::Strict::new(value));
    result.map_err(|e| {
        let path = e.path().to_string();
        json_error(path, e.into_inner())
    })
}

fn json_error(path: String, inner: serde_json::Error) -> ApiError {
    let msg = inner.to_string();
    match inner.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {msg}"),
        ),
        serde_json::error::Category::Data if msg.starts_with("unknown field") => {
            ApiError::bad_request("unknown_field", msg)
        }
        serde_json::error::Category::Data if msg.starts_with("missing field") => {
            ApiError::bad_request("missing_field", msg)
        }
        serde_json::error::Category::Data => {
            ApiError::unprocessable("invalid_field", format!("{path}: {msg}"))
        }
    }
}

/// A JSON body that may be empty (routes whose every field is optional): empty means `{}`.
/// Anything else must be JSON (a body of blanks is not), as the OpenAPI documents say.
pub fn parse_json_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// Every byte but RFC 3986's unreserved characters (section 2.3) is encoded in a query component.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query component (everything but the unreserved characters).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_COMPONENT).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use auth::{Accounts, AllMarker};

    #[test]
    fn the_next_page_link_keeps_the_query_sorted_and_encoded_with_the_new_cursor() {
        let p = Params::from_map(HashMap::from([
            ("symbol".to_owned(), "BTC USD".to_owned()),
            ("limit".to_owned(), "2".to_owned()),
            ("cursor".to_owned(), "old".to_owned()),
            ("account".to_owned(), "a&b=c".to_owned()),
        ]));
        let mut res = StatusCode::OK.into_response();
        p.link_next_page(&mut res, "/orders", "17/x");
        assert_eq!(
            res.headers()[header::LINK],
            "</orders?account=a%26b%3Dc&limit=2&symbol=BTC%20USD&cursor=17%2Fx>; rel=\"next\""
        );
        assert_eq!(res.headers()["x-next-cursor"], "17/x");
        assert_eq!(percent_encode("az-_.~09 é"), "az-_.~09%20%C3%A9");
    }

    pub(crate) fn caller(role: Role, accounts: &[&str]) -> Caller {
        Caller(Principal {
            key_id: "k".into(),
            role,
            accounts: if accounts.is_empty() {
                Accounts::All(AllMarker::All)
            } else {
                Accounts::Some(
                    accounts
                        .iter()
                        .map(|a| AccountId::new(*a).unwrap())
                        .collect(),
                )
            },
        })
    }

    #[test]
    fn one_time_parser_takes_rfc3339_and_dates_and_names_the_field_on_error() {
        let t = parse_time("from", "2025-01-02T03:04:05.5Z").unwrap();
        assert_eq!(
            t,
            Timestamp::parse_rfc3339("2025-01-02T03:04:05.5Z").unwrap()
        );
        assert_eq!(
            parse_time("from", "2025-01-02").unwrap(),
            Timestamp::parse_rfc3339("2025-01-02T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time("to", "2025-01-02T01:00:00+01:00").unwrap(),
            Timestamp::parse_rfc3339("2025-01-02T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time("from", "0001-01-01").unwrap(),
            Timestamp::from_nanos(i64::MIN)
        );
        assert_eq!(
            parse_time("to", "9999-12-31T23:59:59Z").unwrap(),
            Timestamp::from_nanos(i64::MAX)
        );
        let bad_times = [
            "yesterday",
            "2025-1-2",
            "1700000000",
            "2025-02-30",
            "",
            "9999-13",
        ];
        for bad in bad_times {
            let e = parse_time("to", bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (422, "invalid_field"),
                "{bad}"
            );
            assert!(e.message.starts_with("to: "), "{}", e.message);
        }
    }

    #[test]
    fn a_read_covers_the_named_account_or_all_of_the_key() {
        let trader = caller(Role::Trader, &["a", "b"]);
        assert_eq!(
            trader.read_scope(None).unwrap(),
            Scope::Accounts(
                ["a", "b"]
                    .iter()
                    .map(|a| AccountId::new(*a).unwrap())
                    .collect()
            )
        );
        assert!(trader.read_scope(Some("a")).unwrap().contains("a"));
        assert!(!trader.read_scope(Some("a")).unwrap().contains("b"));
        let e = trader.read_scope(Some("c")).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (404, "account_not_found")
        );
        assert_eq!(
            caller(Role::Compliance, &[]).read_scope(None).unwrap(),
            Scope::All
        );
    }

    #[test]
    fn a_record_of_several_accounts_is_seen_only_by_a_key_covering_each() {
        let one = caller(Role::Compliance, &["a"]);
        assert!(one.sees_all(["a"]));
        assert!(!one.sees_all(["a", "b"]), "b's data rides along");
        assert!(!one.sees_all(["b"]));
        assert!(
            !one.sees_all([]),
            "owner-wide: only for keys over every account"
        );
        assert!(!one.sees_all(None::<&str>));
        let two = caller(Role::Compliance, &["a", "b"]);
        assert!(two.sees_all(["b", "a"]));
        assert!(two.sees_all(Some("b")));
        let all = caller(Role::Compliance, &[]);
        assert!(all.sees_all(["a", "z"]) && all.sees_all([]));
        assert_eq!(two.scope(), two.read_scope(None).unwrap());
    }

    #[test]
    fn a_write_needs_one_account_the_key_may_trade() {
        let one = caller(Role::Trader, &["a"]);
        assert_eq!(one.write_account(None).unwrap().as_str(), "a");
        let two = caller(Role::Trader, &["a", "b"]);
        assert_eq!(two.write_account(None).unwrap_err().code, "missing_field");
        assert_eq!(two.write_account(Some("b")).unwrap().as_str(), "b");
        assert_eq!(
            two.write_account(Some("z")).unwrap_err().status.as_u16(),
            404
        );
        let compliance = caller(Role::Compliance, &[]);
        assert_eq!(
            compliance
                .write_account(Some("a"))
                .unwrap_err()
                .status
                .as_u16(),
            403
        );
        assert!(caller(Role::Admin, &[]).write_account(Some("z")).is_ok());
    }

    #[test]
    fn params_check_names_limits_and_choices() {
        let p = Params::from_map(
            [("limit", "0"), ("status", "open"), ("x", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        assert_eq!(
            p.allow(&["limit", "status"]).unwrap_err().code,
            "unknown_parameter"
        );
        assert_eq!(p.limit(100, 1000).unwrap_err().code, "invalid_field");
        assert_eq!(
            p.choice("status", &["open", "closed"]).unwrap(),
            Some("open")
        );
        assert!(p.choice("status", &["filled"]).is_err());
        assert_eq!(Params::default().limit(100, 1000).unwrap(), 100);
    }

    #[test]
    fn json_errors_name_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct B {
            n: u32,
        }
        assert_eq!(parse_json::<B>(b"{").unwrap_err().code, "malformed_json");
        assert_eq!(parse_json::<B>(b"{}").unwrap_err().code, "missing_field");
        assert_eq!(
            parse_json::<B>(br#"{"n":1,"m":2}"#).unwrap_err().code,
            "unknown_field"
        );
        let e = parse_json::<B>(br#"{"n":-1}"#).unwrap_err();
        assert_eq!(parse_json_or_default::<Option<u32>>(b"").unwrap(), None);
        assert_eq!(
            parse_json_or_default::<Option<u32>>(b"\r\n")
                .unwrap_err()
                .code,
            "malformed_json"
        );
        assert_eq!((e.status.as_u16(), e.code.as_str()), (422, "invalid_field"));
        assert!(e.message.starts_with("n: "), "{}", e.message);
    }
}
