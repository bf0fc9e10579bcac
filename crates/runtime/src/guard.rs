//! What every service's listener does before a handler sees a request: the defences of the
//! HTTP host (see docs/SECURITY.md).
//!
//! - **Connections**: at most [`HttpLimits::max_connections`] open at once (one more is answered
//!   `503` and closed), and a connection with no bytes either way for
//!   [`HttpLimits::idle_timeout`] is closed (half-open clients, slow-loris).
//! - **Browsers**: a state-changing request whose `Origin` is another site is refused (`403
//!   cross_origin`), and on a loopback listener a `Host` header that is not a loopback name is
//!   refused (`403 host_not_allowed`: DNS rebinding). A body must be JSON (`415`), which also
//!   rules out the "simple" form and `text/plain` requests a web page can send without CORS.
//! - **Load**: at most [`HttpLimits::max_in_flight`] requests in the service at once (`503
//!   overloaded`), each answered within [`HttpLimits::request_timeout`] (`503 timeout`), and a
//!   token bucket per API key by role ([`RateLimits`], checked by the `Caller` extractor: `429
//!   rate_limited`, answered after its `Retry-After` so a flood slows itself down). Refusals carry `Retry-After` and are counted in
//!   `trade2026_http_refused_total{service,reason}`.
//! - **One error shape**: an error answer that is not JSON (axum's own 405, 413, a rejected
//!   path parameter) is rewritten to `{"error":{"code","message"}}`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use auth::Role;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use telemetry::Metrics;
use telemetry::http::ApiError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Requests per second a key of each role may send (0 = no limit). The burst is twice the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub trader: u32,
    pub compliance: u32,
    pub admin: u32,
}

impl RateLimits {
    fn of(&self, role: Role) -> u32 {
        match role {
            Role::Trader => self.trader,
            Role::Compliance => self.compliance,
            Role::Admin => self.admin,
        }
    }
}

/// The limits of one service's listener (`services.http` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// Largest request body a route accepts unless the route says otherwise.
    pub max_body_bytes: usize,
    pub rate_per_key: RateLimits,
    /// How long a 429 for a key over its rate is held before it is sent (its Retry-After).
    pub rate_limit_penalty: Duration,
    /// Origins (`https://desk.example.com`) whose browser pages may send writes.
    pub allowed_origins: Vec<String>,
    /// Host names accepted on a loopback listener besides `localhost`, `127.0.0.1`, `[::1]`.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_in_flight: 4096,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_body_bytes: 2 * 1024 * 1024,
            // A trading desk's key: 500 requests/s (burst 1,000) is far above what a desk sends
            // and keeps one key's flood from doubling another key's latency on a 2-core
            // machine (docs/BENCHMARKS.md, "A flood from one key"). Admin keys (operators,
            // `trade2026 bench`) are not limited.
            rate_per_key: RateLimits {
                trader: 500,
                compliance: 200,
                admin: 0,
            },
            rate_limit_penalty: Duration::from_secs(1),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// Why a request was refused, as counted in `trade2026_http_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Connections,
    Overloaded,
    Timeout,
    RateLimited,
    CrossOrigin,
    HostNotAllowed,
    MediaType,
    Streams,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Connections => "connections",
            Refusal::Overloaded => "overloaded",
            Refusal::Timeout => "timeout",
            Refusal::RateLimited => "rate_limited",
            Refusal::CrossOrigin => "cross_origin",
            Refusal::HostNotAllowed => "host_not_allowed",
            Refusal::MediaType => "unsupported_media_type",
            Refusal::Streams => "streams",
        }
    }
}

fn count(metrics: &Metrics, service: &'static str, refusal: Refusal) {
    metrics
        .http_refused
        .get_or_create(&vec![
            ("service", service.to_owned()),
            ("reason", refusal.as_str().to_owned()),
        ])
        .inc();
}

// --- per-key rate limits ------------------------------------------------------------------------

/// Token buckets by API key id. Only authenticated keys get a bucket, so the map is bounded by
/// the number of keys, not by what clients send.
pub struct KeyLimiter {
    rates: RateLimits,
    penalty: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
    service: &'static str,
    metrics: Metrics,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl KeyLimiter {
    pub fn new(
        rates: RateLimits,
        penalty: Duration,
        service: &'static str,
        metrics: Metrics,
    ) -> KeyLimiter {
        KeyLimiter {
            rates,
            penalty,
            buckets: Mutex::new(HashMap::new()),
            service,
            metrics,
        }
    }

    /// How long a refusal is held before it is answered.
    pub fn penalty(&self) -> Duration {
        self.penalty
    }

    /// Takes one request from `key`'s bucket; `Err` (429 with the wait) when it is empty.
    pub fn admit(&self, key: &str, role: Role) -> Result<(), ApiError> {
        let rate = self.rates.of(role);
        if rate == 0 {
            return Ok(());
        }
        let rate = f64::from(rate);
        let burst = 2.0 * rate;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        drop(buckets);
        count(&self.metrics, self.service, Refusal::RateLimited);
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this key may send {rate} requests per second (burst {burst}); retry after the Retry-After seconds (refusals are answered after that wait)"
            ),
        ))
    }
}

// --- the request guard ----------------------------------------------------------------------------

/// What the request middleware needs; one per service listener.
#[derive(Clone)]
pub struct Guard {
    pub(crate) service: &'static str,
    pub(crate) limits: Arc<HttpLimits>,
    pub(crate) loopback: bool,
    pub(crate) in_flight: Arc<AtomicUsize>,
    pub(crate) limiter: Arc<KeyLimiter>,
    pub(crate) metrics: Metrics,
    /// Routes that take another body type than JSON: (path, media type).
    pub(crate) other_bodies: Arc<Vec<(&'static str, &'static str)>>,
}

impl Guard {
    pub(crate) fn new(
        service: &'static str,
        limits: HttpLimits,
        addr: SocketAddr,
        metrics: Metrics,
        other_bodies: Vec<(&'static str, &'static str)>,
    ) -> Guard {
        Guard {
            service,
            limiter: Arc::new(KeyLimiter::new(
                limits.rate_per_key,
                limits.rate_limit_penalty,
                service,
                metrics.clone(),
            )),
            limits: Arc::new(limits),
            loopback: addr.ip().is_loopback(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            metrics,
            other_bodies: Arc::new(other_bodies),
        }
    }

    fn refuse(&self, refusal: Refusal, status: StatusCode, message: String) -> Response {
        count(&self.metrics, self.service, refusal);
        let mut response = ApiError::new(status, refusal.as_str(), message).into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The checks made before a request reaches its handler; `Some` refuses it.
    fn check(&self, req: &Request) -> Option<Response> {
        let headers = req.headers();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if self.loopback && !host.is_empty() && !self.host_allowed(host) {
            return Some(self.refuse(
                Refusal::HostNotAllowed,
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not a name of this loopback listener (add it to services.http.allowed_hosts)"
                ),
            ));
        }
        let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if writes && let Some(origin) = cross_origin(headers, host, &self.limits.allowed_origins) {
            return Some(self.refuse(
                Refusal::CrossOrigin,
                StatusCode::FORBIDDEN,
                format!(
                    "a browser page of {origin} may not send requests here (add it to services.http.allowed_origins)"
                ),
            ));
        }
        if has_body(headers) {
            let allowed = self
                .other_bodies
                .iter()
                .find(|(path, _)| *path == req.uri().path())
                .map(|(_, media)| *media);
            let given = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if !given.is_some_and(|ct| is_json(ct) || allowed.is_some_and(|m| media_is(ct, m))) {
                let expected = allowed.map_or("application/json".to_owned(), |m| {
                    format!("application/json or {m}")
                });
                return Some(self.refuse(
                    Refusal::MediaType,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "the body must be sent as Content-Type: {expected} (got {})",
                        given.map_or("none".to_owned(), |g| format!("{g:?}"))
                    ),
                ));
            }
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        ["localhost", "127.0.0.1", "[::1]", "::1"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            || self
                .limits
                .allowed_hosts
                .iter()
                .any(|n| name.eq_ignore_ascii_case(host_name(n)))
    }
}

/// `host[:port]` -> host (keeps an IPv6 literal's brackets).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    }
}

/// The foreign origin of a browser request, if it is one: `Origin` names another site than the
/// `Host` it was sent to (and is not allowed), or the browser says `Sec-Fetch-Site: cross-site`.
fn cross_origin(headers: &HeaderMap, host: &str, allowed: &[String]) -> Option<String> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin {
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return None;
        }
        // `null` (sandboxed frames, file://) is never same-origin.
        let same = origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
        if !same {
            return Some(origin.to_owned());
        }
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|s| s.to_str().ok())
        .unwrap_or("none");
    match site {
        "cross-site" | "same-site" if origin.is_none() => Some(format!("another site ({site})")),
        _ => None,
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|n| n.trim() != "0")
}

fn media_is(content_type: &str, media: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
}

/// `application/json` or any `application/<x>+json`, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        || (media.len() > 17
            && media[..12].eq_ignore_ascii_case("application/")
            && media[media.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Decrements the in-flight count however the request ends (answered, timed out, dropped).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware every service route runs through.
pub(crate) async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let response = guarded(&g, req, next).await;
    let status = response.status().as_u16().to_string();
    g.metrics
        .http_request_seconds
        .get_or_create(&vec![
            ("service", g.service.to_owned()),
            ("method", method.to_owned()),
            ("route", route.clone()),
            ("status", status.clone()),
        ])
        .observe(started.elapsed().as_secs_f64());
    g.metrics
        .http_responses
        .get_or_create(&vec![
            ("service", g.service.to_owned()),
            ("route", route),
            ("status", status),
        ])
        .inc();
    response
}

/// The method as a label: any other token a client sends is `other`, so clients cannot grow the
/// series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The checks, limits and error rewriting around the handler.
async fn guarded(g: &Guard, mut req: Request, next: Next) -> Response {
    if let Some(refused) = g.check(&req) {
        return refused;
    }
    let _in_flight = InFlight(g.in_flight.clone());
    if g.in_flight.fetch_add(1, Ordering::Relaxed) >= g.limits.max_in_flight {
        return g.refuse(
            Refusal::Overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} requests are in progress, the most this service takes at once; retry shortly",
                g.limits.max_in_flight
            ),
        );
    }
    req.extensions_mut().insert(g.limiter.clone());
    let response = match tokio::time::timeout(g.limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => g.refuse(
            Refusal::Timeout,
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no answer within {:?}; a write may still complete: look it up before retrying",
                g.limits.request_timeout
            ),
        ),
    };
    json_errors(response).await
}

/// An error answer that is not JSON (axum's own rejections: 405, 413, a bad path parameter)
/// gets the JSON error body, keeping its status and headers; 429 and 503 get `Retry-After`.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) && !parts.headers.contains_key(header::RETRY_AFTER)
    {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if json {
        return Response::from_parts(parts, body);
    }
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in &parts.headers {
        rewritten.headers_mut().insert(name, value.clone());
    }
    rewritten
}

// --- connections -------------------------------------------------------------------------------

/// The listener every service serves from: caps open connections and closes idle ones.
pub(crate) struct GuardedListener {
    pub(crate) inner: TcpListener,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) idle: Duration,
    pub(crate) service: &'static str,
    pub(crate) metrics: Metrics,
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedIo, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and similar: wait instead of spinning.
                    tracing::warn!(service = self.service, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => return (GuardedIo::new(stream, permit, self.idle), addr),
                Err(_) => {
                    count(&self.metrics, self.service, Refusal::Connections);
                    tokio::spawn(refuse_connection(stream));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection too many: a complete 503 answer, then close.
async fn refuse_connection(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"connections","message":"too many open connections to this service; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A connection that holds its slot while open and fails once nothing moved for `idle`.
pub(crate) struct GuardedIo {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl GuardedIo {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle: Duration) -> GuardedIo {
        GuardedIo {
            stream,
            _permit: permit,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn moved(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// `Pending` stays pending until the idle deadline, which turns it into an error.
    fn idle_check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.idle_check(cx, polled)
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.idle_check(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.idle_check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "json",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn host_names_without_ports() {
        assert_eq!(host_name("localhost:8099"), "localhost");
        assert_eq!(host_name("[::1]:8099"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }

    #[test]
    fn cross_origin_is_decided_by_origin_then_fetch_metadata() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        let host = "127.0.0.1:8099";
        assert_eq!(
            cross_origin(&h(&[]), host, &[]),
            None,
            "curl sends no Origin"
        );
        assert_eq!(
            cross_origin(&h(&[("origin", "http://127.0.0.1:8099")]), host, &[]),
            None,
            "same origin"
        );
        assert!(cross_origin(&h(&[("origin", "https://evil.example")]), host, &[]).is_some());
        assert!(cross_origin(&h(&[("origin", "null")]), host, &[]).is_some());
        assert_eq!(
            cross_origin(
                &h(&[("origin", "https://desk.example")]),
                host,
                &["https://desk.example".to_owned()]
            ),
            None,
            "an allowed origin"
        );
        assert!(cross_origin(&h(&[("sec-fetch-site", "cross-site")]), host, &[]).is_some());
        assert_eq!(
            cross_origin(&h(&[("sec-fetch-site", "same-origin")]), host, &[]),
            None
        );
    }

    #[test]
    fn a_key_gets_its_burst_then_429_and_other_keys_are_unaffected() {
        let limiter = KeyLimiter::new(
            RateLimits {
                trader: 5,
                compliance: 0,
                admin: 0,
            },
            Duration::ZERO,
            "test",
            Metrics::new(),
        );
        for _ in 0..10 {
            limiter
                .admit("flood", Role::Trader)
                .expect("within the burst of 2 x 5");
        }
        let refused = limiter.admit("flood", Role::Trader).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "rate_limited");
        limiter
            .admit("other", Role::Trader)
            .expect("another key has its own bucket");
        for _ in 0..1000 {
            limiter
                .admit("ops", Role::Admin)
                .expect("admin keys are not limited by default");
        }
    }
}
