//! The host's guard over real TCP: what a careless client, a web page and a flood get.

use std::net::SocketAddr;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use model::AccountId;
use runtime::Caller;
use runtime::http::{Host, HttpLimits, RateLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body));
        v["error"]["code"].as_str().unwrap_or("").to_owned()
    }
}

/// One request over a fresh connection; `extra` are raw header lines.
async fn send(addr: SocketAddr, method: &str, path: &str, extra: &[&str], body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !extra
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str("Host: 127.0.0.1\r\n");
    }
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

#[derive(Clone)]
struct App {
    keys: ApiKeys,
}

impl axum::extract::FromRef<App> for ApiKeys {
    fn from_ref(app: &App) -> ApiKeys {
        app.keys.clone()
    }
}

async fn echo(_caller: Caller, body: Bytes) -> String {
    format!("{{\"len\":{}}}", body.len())
}

async fn whoami(State(_): State<App>, caller: Caller) -> String {
    format!("{{\"key\":{:?}}}", caller.principal().key_id)
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

struct Started {
    addr: SocketAddr,
    trader: String,
    other: String,
    admin: String,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(limits: HttpLimits) -> Started {
    let keys = ApiKeys::in_memory();
    let acct = Accounts::Some([AccountId::new("a1").unwrap()].into());
    let trader = keys.create(Role::Trader, acct.clone()).unwrap();
    let other = keys.create(Role::Trader, acct).unwrap();
    let admin = keys
        .create(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let routes = Router::new()
        .route("/echo", post(echo))
        .route("/whoami", get(whoami))
        .route("/slow", get(slow))
        .with_state(App { keys });
    let host = Host::bind("svc", "127.0.0.1", 0)
        .await
        .unwrap()
        .limits(limits);
    let addr = host.addr();
    let shutdown = CancellationToken::new();
    let _task = host.serve(routes, telemetry::Metrics::new(), shutdown.clone());
    Started {
        addr,
        trader,
        other,
        admin,
        _shutdown: shutdown.drop_guard(),
    }
}

fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}")
}

#[tokio::test]
async fn bodies_must_be_json_and_errors_are_always_json() {
    let s = start(HttpLimits {
        max_body_bytes: 64,
        ..HttpLimits::default()
    })
    .await;
    let auth = bearer(&s.admin);
    let json = send(
        s.addr,
        "POST",
        "/echo",
        &[&auth, "Content-Type: application/json"],
        "{}",
    )
    .await;
    assert_eq!(json.status, 200, "{}", json.body);

    // What a web page can send without a CORS preflight: text/plain, a form, nothing.
    for ct in [
        Some("Content-Type: text/plain"),
        Some("Content-Type: application/x-www-form-urlencoded"),
        Some("Content-Type: multipart/form-data; boundary=x"),
        None,
    ] {
        let mut headers = vec![auth.as_str()];
        headers.extend(ct);
        let a = send(s.addr, "POST", "/echo", &headers, "{\"a\":1}").await;
        assert_eq!(a.status, 415, "{ct:?}: {}", a.body);
        assert_eq!(a.code(), "unsupported_media_type");
    }

    // axum's own rejections come back in the JSON error shape.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(200));
    let a = send(
        s.addr,
        "POST",
        "/echo",
        &[&auth, "Content-Type: application/json"],
        &big,
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.code(), "payload_too_large");
    let a = send(s.addr, "DELETE", "/echo", &[&auth], "").await;
    assert_eq!(a.status, 405);
    assert_eq!(a.code(), "method_not_allowed");
    assert!(
        a.header("allow").is_some(),
        "405 keeps its Allow header: {}",
        a.head
    );
}

#[tokio::test]
async fn browser_writes_from_other_sites_and_rebound_hosts_are_refused() {
    let s = start(HttpLimits {
        allowed_origins: vec!["https://desk.example".into()],
        ..HttpLimits::default()
    })
    .await;
    let auth = bearer(&s.admin);
    let ct = "Content-Type: application/json";
    let a = send(
        s.addr,
        "POST",
        "/echo",
        &[&auth, ct, "Origin: https://evil.example"],
        "{}",
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.code(), "cross_origin");
    let a = send(
        s.addr,
        "POST",
        "/echo",
        &[&auth, ct, "Sec-Fetch-Site: cross-site"],
        "{}",
    )
    .await;
    assert_eq!(a.status, 403);
    let (same, host) = (
        format!("Origin: http://{}", s.addr),
        format!("Host: {}", s.addr),
    );
    let a = send(s.addr, "POST", "/echo", &[&auth, ct, &same, &host], "{}").await;
    assert_eq!(
        a.status, 200,
        "a page served by the service itself: {}",
        a.body
    );
    let a = send(
        s.addr,
        "POST",
        "/echo",
        &[&auth, ct, "Origin: https://desk.example"],
        "{}",
    )
    .await;
    assert_eq!(a.status, 200, "an allowed origin: {}", a.body);
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    let a = send(
        s.addr,
        "GET",
        "/whoami",
        &[&auth, "Host: evil.example:8099"],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.code(), "host_not_allowed");
    let a = send(
        s.addr,
        "GET",
        "/whoami",
        &[&auth, "Host: localhost:8099"],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_flooding_key_gets_429_with_retry_after_and_other_keys_do_not() {
    let s = start(HttpLimits {
        rate_per_key: RateLimits {
            trader: 5,
            compliance: 5,
            admin: 0,
        },
        rate_limit_penalty: Duration::from_millis(100),
        ..HttpLimits::default()
    })
    .await;
    let flood = bearer(&s.trader);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(send(s.addr, "GET", "/whoami", &[&flood], "").await);
    }
    assert!(
        statuses.iter().all(|a| a.status == 200),
        "the burst of 2 x 5 passes"
    );
    let started = std::time::Instant::now();
    statuses.clear();
    for _ in 0..3 {
        statuses.push(send(s.addr, "GET", "/whoami", &[&flood], "").await);
    }
    let refused: Vec<&Answer> = statuses.iter().filter(|a| a.status == 429).collect();
    assert!(!refused.is_empty(), "past the burst a request is refused");
    assert!(
        started.elapsed() >= Duration::from_millis(100) * refused.len() as u32,
        "each refusal is held for the penalty"
    );
    assert_eq!(refused[0].code(), "rate_limited");
    assert_eq!(refused[0].header("retry-after").as_deref(), Some("1"));
    let a = send(s.addr, "GET", "/whoami", &[&bearer(&s.other)], "").await;
    assert_eq!(
        a.status, 200,
        "another key of the same account is not limited by the flood"
    );
    let a = send(s.addr, "GET", "/whoami", &[&bearer(&s.admin)], "").await;
    assert_eq!(a.status, 200);
    let metrics = send(s.addr, "GET", "/metrics", &[], "").await;
    assert!(
        metrics
            .body
            .contains("trade2026_http_refused_total{service=\"svc\",reason=\"rate_limited\"}"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn slow_requests_time_out_and_connections_are_capped_and_idle_ones_closed() {
    let s = start(HttpLimits {
        request_timeout: Duration::from_millis(300),
        max_connections: 2,
        idle_timeout: Duration::from_millis(500),
        ..HttpLimits::default()
    })
    .await;
    let a = send(s.addr, "GET", "/slow", &[], "").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.code(), "timeout");
    assert_eq!(a.header("retry-after").as_deref(), Some("1"));

    // Two idle connections hold both slots: the third is told 503 at once.
    let idle1 = TcpStream::connect(s.addr).await.unwrap();
    let idle2 = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let a = send(s.addr, "GET", "/whoami", &[], "").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.code(), "connections");

    // The idle ones are closed by the server after the idle timeout, freeing the slots.
    for mut idle in [idle1, idle2] {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("the server closes an idle connection")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
    }
    let a = send(s.addr, "GET", "/whoami", &[&bearer(&s.admin)], "").await;
    assert_eq!(a.status, 200, "{}", a.body);
}
