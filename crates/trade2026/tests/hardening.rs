//! Issue 10, tried as an attacker would against a running `trade2026 up`: a web page the
//! developer opens must not be able to trade through a keyless dev platform, `--insecure-dev`
//! must not listen beyond loopback, and no password is printed or served.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Platform, bin, http_get};

/// A raw request with the given extra header lines (what a browser sends, not what curl does).
fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|h| h.starts_with("Host:")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

const ORDER: &str = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"limit","quantity":"0.1","price":"100"}"#;
const LIMITS: &str = r#"{"max_order_qty":"1000000"}"#;

#[test]
fn a_web_page_cannot_trade_or_change_limits_through_a_keyless_dev_platform() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &["--insecure-dev"]);

    // Every port says on its own banner line that it takes requests without a key.
    let service_lines: Vec<&String> = p.banner.iter().filter(|l| l.contains("http://")).collect();
    assert_eq!(service_lines.len(), 7, "{:#?}", p.banner);
    for line in service_lines {
        assert!(line.contains("KEYLESS"), "{line}");
    }

    // A page's form or fetch without preflight: text/plain (or a form) body.
    let (status, body) = raw(
        p.gateway,
        "POST",
        "/orders",
        &["Content-Type: text/plain"],
        ORDER,
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("\"unsupported_media_type\""), "{body}");
    let (status, _) = raw(
        p.gateway,
        "POST",
        "/orders",
        &["Content-Type: application/x-www-form-urlencoded"],
        ORDER,
    );
    assert_eq!(status, 415);
    // A page of another origin that gets a JSON request through (or an old browser).
    for target in [
        (p.gateway, "/orders", ORDER),
        (p.gateway, "/admin/risk", LIMITS),
    ] {
        let (status, body) = raw(
            target.0,
            "POST",
            target.1,
            &[
                "Content-Type: application/json",
                "Origin: https://evil.example",
            ],
            target.2,
        );
        assert_eq!(status, 403, "{}: {body}", target.1);
        assert!(body.contains("\"cross_origin\""), "{body}");
    }
    // DNS rebinding: evil.example now resolves to 127.0.0.1; the page reads and writes "its" host.
    let (status, body) = raw(
        p.gateway,
        "GET",
        "/orders",
        &["Host: evil.example:8099"],
        "",
    );
    assert_eq!(status, 403, "{body}");
    // Nothing of it reached the engine: the journal has no order.
    let (status, orders) = http_get(p.gateway, "/orders");
    assert_eq!(status, 200);
    assert_eq!(orders.trim(), "[]", "no order was placed: {orders}");

    // The same request from curl (no Origin, JSON) works: the dev workflow is intact.
    let market = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, body) = raw(
        p.gateway,
        "POST",
        "/orders",
        &["Content-Type: application/json"],
        market,
    );
    assert_eq!(status, 201, "{body}");
    p.stop();
}

#[test]
fn insecure_dev_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["up", "--insecure-dev", "--data-dir"])
        .arg(dir.path())
        .env("TRADE2026_SERVICES__HOST", "0.0.0.0")
        .env("TRADE2026_SERVICES__GATEWAY", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("insecure-dev") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("journal.db").exists(),
        "refused before anything was opened"
    );
}

#[test]
fn the_online_store_password_is_never_printed_or_served() {
    let secret = "s3cretPa55";
    let url = format!("redis://:{secret}@127.0.0.1:1/0");
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["config", "check"])
        .env("TRADE2026_FEAST__ONLINE_STORE__CONNECTION_STRING", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("redis://:***@127.0.0.1:1/0"), "{shown}");
    assert!(!shown.contains(secret), "{shown}");

    let p = Platform::start_with_env(
        dir.path(),
        &[],
        &[(
            "TRADE2026_FEAST__ONLINE_STORE__CONNECTION_STRING",
            url.clone(),
        )],
    );
    let banner = p.banner.join("\n");
    assert!(banner.contains("redis://:***@"), "{banner}");
    assert!(!banner.contains(secret), "{banner}");
    let (status, body) = http_get(p.features, "/status");
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(secret), "{body}");
    p.stop();
}
