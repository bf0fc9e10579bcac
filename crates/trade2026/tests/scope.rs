//! Issue 10, item 1: every route on every port, asked with keys of every role (trader,
//! compliance, admin) and scope (one account, several, all) and with no key, answers the
//! status the table says, and never shows an account the key does not cover. A request about
//! such an account (by name, by order id, alert key or report id) is answered exactly like one
//! about an account, order, alert or report that does not exist.
//!
//! One platform serves the whole test, seeded through the gateway with two accounts of one
//! beneficial owner: wash trades of each alone and one across both (an alert involving both
//! accounts), saved reports, resting and filled orders. The table is checked against every
//! route each service's OpenAPI document lists, so a new route without a row fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Platform, create_key};
use serde_json::Value;

const ALPHA: &str = "scope_alpha";
const BRAVO: &str = "scope_bravo";
/// The accounts with data: what a key must not see unless it covers them.
const SEEDED: [&str; 2] = [ALPHA, BRAVO];

/// The keys, in the order of the table's columns. The several-accounts keys also cover
/// `scope_charlie`, which has no data.
const KEYS: [(&str, Option<(&str, &str)>); 10] = [
    ("trader, one account", Some(("trader", ALPHA))),
    (
        "trader, several",
        Some(("trader", "scope_alpha,scope_charlie")),
    ),
    ("trader, all", Some(("trader", "*"))),
    ("compliance, one account", Some(("compliance", ALPHA))),
    (
        "compliance, several",
        Some(("compliance", "scope_alpha,scope_charlie")),
    ),
    ("compliance, all", Some(("compliance", "*"))),
    ("admin, one account", Some(("admin", ALPHA))),
    (
        "admin, several",
        Some(("admin", "scope_alpha,scope_charlie")),
    ),
    ("admin, all", Some(("admin", "*"))),
    ("no key", None),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Svc {
    Gateway,
    Ptrc,
    Quality,
    Scanner,
    Features,
}

const SERVICES: [Svc; 5] = [
    Svc::Gateway,
    Svc::Ptrc,
    Svc::Quality,
    Svc::Scanner,
    Svc::Features,
];

/// One request and the status each key (the columns of [`KEYS`]) gets.
struct Case {
    svc: Svc,
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The request path, with `$name` placeholders for seeded values (see [`Seeded`]).
    path: &'static str,
    body: String,
    expect: [u16; 10],
}

fn case(
    svc: Svc,
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: &str,
    expect: [u16; 10],
) -> Case {
    Case {
        svc,
        method,
        route,
        path,
        body: body.to_owned(),
        expect,
    }
}

// Columns: trader 1 / several / all, compliance 1 / several / all, admin 1 / several / all, none.
const PUBLIC: [u16; 10] = [200; 10];
const ANY_KEY: [u16; 10] = [200, 200, 200, 200, 200, 200, 200, 200, 200, 401];
/// Reads about an account (or its order, report) that only keys over every account cover.
const ALL_ONLY: [u16; 10] = [404, 404, 200, 404, 404, 200, 404, 404, 200, 401];
/// What compliance and admin keys review (alerts, scans).
const REVIEW: [u16; 10] = [403, 403, 403, 200, 200, 200, 200, 200, 200, 401];
/// Reviews about an account outside one- and several-account scopes.
const REVIEW_ALL_ONLY: [u16; 10] = [403, 403, 403, 404, 404, 200, 404, 404, 200, 401];
/// Reads that need one account: keys of several accounts must name it.
const ONE_ACCOUNT: [u16; 10] = [200, 400, 200, 200, 400, 200, 200, 400, 200, 401];
/// Reports over every account (Rule 605): only keys over every account.
const EVERY_ACCOUNT: [u16; 10] = [403, 403, 200, 403, 403, 200, 403, 403, 200, 401];
/// Risk administration: admin keys over every account.
const RISK_ADMIN: [u16; 10] = [403, 403, 403, 403, 403, 403, 403, 403, 200, 401];

use Svc::*;

fn table() -> Vec<Case> {
    let mut t = Vec::new();
    for svc in SERVICES {
        t.push(case(svc, "GET", "/health", "/health", "", PUBLIC));
        t.push(case(svc, "GET", "/metrics", "/metrics", "", PUBLIC));
    }
    let limit_alpha = r#"{"account":"$alpha","symbol":"XRPUSDT","side":"buy","type":"limit","quantity":"1","price":"$rest_price"}"#;
    let limit_bravo = r#"{"account":"$bravo","symbol":"XRPUSDT","side":"buy","type":"limit","quantity":"1","price":"$rest_price"}"#;
    let limit_any =
        r#"{"symbol":"XRPUSDT","side":"buy","type":"limit","quantity":"1","price":"$rest_price"}"#;
    // VaR over the books' positions with a given price history (the market-data store of a
    // fresh platform holds one day).
    let closes: Vec<String> = (1..=6)
        .flat_map(|day| {
            [("ETHUSDT", 2_500), ("SOLUSDT", 100), ("BNBUSDT", 300)].map(|(symbol, base)| {
                let close = base + (day * 7919 % 13) * base / 100;
                format!(r#"{{"date":"2026-01-0{day}","symbol":"{symbol}","close":"{close}"}}"#)
            })
        })
        .collect();
    let var = |account: &str| {
        format!(
            r#"{{"account":"{account}","prices":[{}]}}"#,
            closes.join(",")
        )
    };
    #[rustfmt::skip]
    t.extend([
        // --- gateway (8099) ---
        case(Gateway, "GET", "/openapi.json", "/openapi.json", "", PUBLIC),
        case(Gateway, "GET", "/marketdata", "/marketdata", "", PUBLIC),
        case(Gateway, "GET", "/marketdata/{symbol}", "/marketdata/BTCUSDT", "", PUBLIC),
        case(Gateway, "POST", "/orders", "/orders", limit_alpha,
            [201, 201, 201, 403, 403, 403, 201, 201, 201, 401]),
        case(Gateway, "POST", "/orders", "/orders", limit_bravo,
            [404, 404, 201, 403, 403, 403, 404, 404, 201, 401]),
        case(Gateway, "POST", "/orders", "/orders", limit_any,
            [201, 400, 400, 403, 403, 403, 201, 400, 400, 401]),
        case(Gateway, "GET", "/orders", "/orders", "", ANY_KEY),
        case(Gateway, "GET", "/orders", "/orders?account=$bravo", "", ALL_ONLY),
        case(Gateway, "GET", "/orders/{id}", "/orders/$alpha_order", "", ANY_KEY),
        case(Gateway, "GET", "/orders/{id}", "/orders/$bravo_order", "", ALL_ONLY),
        // Filled orders: a key that sees them learns they are filled (409); compliance cannot
        // cancel (403); another account's order is not found.
        case(Gateway, "DELETE", "/orders/{id}", "/orders/$alpha_order", "",
            [409, 409, 409, 403, 403, 403, 409, 409, 409, 401]),
        case(Gateway, "DELETE", "/orders/{id}", "/orders/$bravo_order", "",
            [404, 404, 409, 404, 404, 403, 404, 404, 409, 401]),
        case(Gateway, "GET", "/fills", "/fills", "", ANY_KEY),
        case(Gateway, "GET", "/fills", "/fills?account=$bravo", "", ALL_ONLY),
        case(Gateway, "GET", "/positions", "/positions", "", ANY_KEY),
        case(Gateway, "GET", "/positions", "/positions?account=$bravo", "", ALL_ONLY),
        case(Gateway, "GET", "/stream", "/stream", "", ANY_KEY),
        case(Gateway, "GET", "/stream", "/stream?account=$bravo", "", ALL_ONLY),
        case(Gateway, "GET", "/admin/risk", "/admin/risk", "", RISK_ADMIN),
        case(Gateway, "POST", "/admin/risk", "/admin/risk",
            r#"{"op":"set_limits","scope":{"account":"$bravo"},"limits":{"max_open_orders":900}}"#,
            RISK_ADMIN),
        case(Gateway, "POST", "/admin/risk", "/admin/risk",
            r#"{"op":"set_limits","scope":{"account":"$alpha"},"limits":{"max_open_orders":900}}"#,
            RISK_ADMIN),
        // --- ptrc (8109) ---
        case(Ptrc, "POST", "/pnl/compute", "/pnl/compute", r#"{"account":"$alpha"}"#, ANY_KEY),
        case(Ptrc, "POST", "/pnl/compute", "/pnl/compute", r#"{"account":"$bravo"}"#, ALL_ONLY),
        case(Ptrc, "POST", "/pnl/compute", "/pnl/compute", "{}", ONE_ACCOUNT),
        case(Ptrc, "POST", "/tax/1099b", "/tax/1099b", r#"{"account":"$alpha","year":$year}"#, ANY_KEY),
        case(Ptrc, "POST", "/tax/1099b", "/tax/1099b", r#"{"account":"$bravo","year":$year}"#, ALL_ONLY),
        case(Ptrc, "POST", "/tax/1099b", "/tax/1099b", r#"{"owner":"scope_owner","year":$year}"#,
            [403, 403, 200, 403, 403, 200, 403, 403, 200, 401]),
        case(Ptrc, "POST", "/risk/var", "/risk/var", &var("$alpha"), ANY_KEY),
        case(Ptrc, "POST", "/risk/var", "/risk/var", &var("$bravo"), ALL_ONLY),
        case(Ptrc, "POST", "/risk/stress", "/risk/stress",
            r#"{"account":"$alpha","shocks":["ETHUSDT=-20%"]}"#, ANY_KEY),
        case(Ptrc, "POST", "/risk/stress", "/risk/stress",
            r#"{"account":"$bravo","shocks":["ETHUSDT=-20%"]}"#, ALL_ONLY),
        case(Ptrc, "POST", "/compliance/scan", "/compliance/scan", "{}", REVIEW),
        case(Ptrc, "POST", "/compliance/scan", "/compliance/scan", r#"{"account":"$bravo"}"#,
            REVIEW_ALL_ONLY),
        case(Ptrc, "GET", "/reports", "/reports", "", ANY_KEY),
        case(Ptrc, "GET", "/reports/{id}", "/reports/$alpha_report", "", ANY_KEY),
        case(Ptrc, "GET", "/reports/{id}", "/reports/$bravo_report", "", ALL_ONLY),
        case(Ptrc, "GET", "/reports/{id}", "/reports/$scan_report", "", ALL_ONLY),
        // --- execution quality (8110) ---
        case(Quality, "GET", "/quality", "/quality", "", ANY_KEY),
        case(Quality, "GET", "/quality", "/quality?account=$bravo", "", ALL_ONLY),
        case(Quality, "GET", "/quality/orders/{id}", "/quality/orders/$alpha_order", "", ANY_KEY),
        case(Quality, "GET", "/quality/orders/{id}", "/quality/orders/$bravo_order", "", ALL_ONLY),
        case(Quality, "GET", "/reports/rule605", "/reports/rule605?month=$month", "", EVERY_ACCOUNT),
        // --- compliance scanner (8111) ---
        case(Scanner, "GET", "/alerts", "/alerts", "", REVIEW),
        case(Scanner, "GET", "/alerts", "/alerts?account=$bravo", "", REVIEW_ALL_ONLY),
        case(Scanner, "GET", "/alerts", "/alerts?account=$alpha", "", REVIEW),
        case(Scanner, "POST", "/alerts/{key}/ack", "/alerts/$alpha_alert/ack", "", REVIEW),
        case(Scanner, "POST", "/alerts/{key}/ack", "/alerts/$bravo_alert/ack", "", REVIEW_ALL_ONLY),
        // The alert of both accounts: only keys covering both see or acknowledge it.
        case(Scanner, "POST", "/alerts/{key}/ack", "/alerts/$shared_alert/ack", "", REVIEW_ALL_ONLY),
        case(Scanner, "POST", "/alerts/{key}/ack", "/alerts/WASH_TRADE-none/ack", "",
            [403, 403, 403, 404, 404, 404, 404, 404, 404, 401]),
        // --- feature pipeline (6566) ---
        case(Features, "GET", "/status", "/status", "", PUBLIC),
        case(Features, "POST", "/get-online-features", "/get-online-features",
            r#"{"features":["market_features:last_price"],"entities":{"symbol":["BTCUSDT"]}}"#, PUBLIC),
        case(Features, "POST", "/get-online-features", "/get-online-features",
            r#"{"features":["position_features:notional"],"entities":{"account":["$alpha"]}}"#, ANY_KEY),
        // Another account's row reads as NOT_FOUND, like a missing one.
        case(Features, "POST", "/get-online-features", "/get-online-features",
            r#"{"features":["position_features:notional"],"entities":{"account":["$bravo"]}}"#, ANY_KEY),
        case(Features, "GET", "/features/{view}/{entity}", "/features/market_features/BTCUSDT", "", PUBLIC),
        case(Features, "GET", "/features/{view}/{entity}", "/features/position_features/$alpha", "", ANY_KEY),
        case(Features, "GET", "/features/{view}/{entity}", "/features/position_features/$bravo", "", ALL_ONLY),
        case(Features, "GET", "/features/{view}/{entity}", "/features/order_features/$bravo", "", ALL_ONLY),
        case(Features, "GET", "/features/{view}/{entity}",
            "/features/position_symbol_features/$bravo%7CETHUSDT.sim", "", ALL_ONLY),
    ]);
    t
}

// --- the seeded platform ------------------------------------------------------------------------

/// A value the table refers to as `$name`: what it is, the accounts it belongs to (empty: every
/// account, an owner-wide report), and a value of the same kind that does not exist.
struct Ref {
    name: &'static str,
    value: String,
    accounts: Vec<&'static str>,
    missing: String,
}

struct Seeded {
    refs: Vec<Ref>,
}

impl Seeded {
    /// `text` with every `$name` replaced; `missing` names the refs to replace with their
    /// missing twin instead.
    fn fill(&self, text: &str, missing: &BTreeSet<&str>) -> String {
        let mut refs: Vec<&Ref> = self.refs.iter().collect();
        // `$alpha_order` before `$alpha`.
        refs.sort_by_key(|r| std::cmp::Reverse(r.name.len()));
        let mut out = text.to_owned();
        for r in refs {
            let v = if missing.contains(r.name) {
                &r.missing
            } else {
                &r.value
            };
            out = out.replace(&format!("${}", r.name), v);
        }
        out
    }

    /// The refs `text` uses.
    fn used(&self, text: &str) -> Vec<&Ref> {
        let filled_names: Vec<&Ref> = self
            .refs
            .iter()
            .filter(|r| {
                // A `$name` not followed by more of a longer name.
                let pat = format!("${}", r.name);
                text.match_indices(&pat).any(|(i, _)| {
                    !text[i + pat.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            })
            .collect();
        filled_names
    }
}

fn key_covers(accounts: Option<&str>, account: &str) -> bool {
    match accounts {
        None => false,
        Some("*") => true,
        Some(list) => list.split(',').any(|a| a == account),
    }
}

/// Whether the key covers every account of a ref (an owner-wide one: keys over every account).
fn key_covers_ref(accounts: Option<&str>, r: &Ref) -> bool {
    if r.accounts.is_empty() {
        return accounts == Some("*");
    }
    r.accounts.iter().all(|a| key_covers(accounts, a))
}

// --- a small HTTP client (no client library; streams cut after a short read) ------------------

struct Reply {
    status: u16,
    streaming: bool,
    body: String,
}

fn request(addr: SocketAddr, key: Option<&str>, method: &str, path: &str, body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    // `Last-Event-ID: 0` asks the stream for every report from the start (its backlog).
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Last-Event-ID: 0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut stream_until: Option<Instant> = None;
    loop {
        if let Some(until) = stream_until {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s.set_read_timeout(Some(left)).unwrap();
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if stream_until.is_some()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                break;
            }
            Err(e) => panic!("{method} {path}: {e}"),
        }
        let head_end = find(&raw, b"\r\n\r\n").filter(|_| stream_until.is_none());
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            if head.contains("content-type: text/event-stream") {
                // A live stream never ends: read what it sends for a moment (its backlog).
                stream_until = Some(Instant::now() + Duration::from_millis(700));
            }
        }
    }
    let end = find(&raw, b"\r\n\r\n").unwrap_or_else(|| panic!("{method} {path}: no head"));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    let mut body = raw[end + 4..].to_vec();
    if lower.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply {
        status,
        streaming: lower.contains("text/event-stream"),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of a chunked reply (as far as it came).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..line_end])
            .ok()
            .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        raw = &raw[line_end + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        raw = &raw[(take + 2).min(raw.len())..];
    }
    out
}

/// `text` with every whole occurrence of the token `from` (not part of a longer name or
/// number) replaced by `to`.
fn replace_token(text: &str, from: &str, to: &str) -> String {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (i, _) in text.match_indices(from) {
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if before.is_some_and(part) || after.is_some_and(part) {
            continue;
        }
        out.push_str(&text[done..i]);
        out.push_str(to);
        done = i + from.len();
    }
    out.push_str(&text[done..]);
    out
}

// --- seeding --------------------------------------------------------------------------------------

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or(Value::Null)
}

fn seed(p: &Platform) -> Seeded {
    let admin = p.admin_key.as_str();
    let post = |addr, path: &str, body: &str| {
        let r = request(addr, Some(admin), "POST", path, body);
        assert!(
            (200..300).contains(&r.status),
            "{path} {body}: {} {}",
            r.status,
            r.body
        );
        json(&r)
    };
    eventually("market data", || {
        let r = request(p.gateway, None, "GET", "/marketdata/XRPUSDT", "");
        (r.status == 200).then_some(())
    });
    // Let the quotes reach the engine's venue.
    std::thread::sleep(Duration::from_millis(300));
    // One lot of the synthetic market's instrument, which its top of book always holds: the
    // legs of a round trip fill whole, so the detector pairs them.
    let market = |account: &str, symbol: &str, side: &str| {
        let lot = match symbol {
            "SOLUSDT" => "0.01",
            _ => "0.001",
        };
        let body = format!(
            r#"{{"account":"{account}","symbol":"{symbol}","side":"{side}","type":"market","quantity":"{lot}"}}"#
        );
        let order = post(p.gateway, "/orders", &body);
        assert_eq!(order["status"], "filled", "{order}");
        order["order_id"].to_string()
    };
    // Wash round trips: alpha alone, bravo alone, and alpha with bravo (one owner).
    let alpha_order = market(ALPHA, "SOLUSDT", "buy");
    market(ALPHA, "SOLUSDT", "sell");
    let bravo_order = market(BRAVO, "BNBUSDT", "buy");
    market(BRAVO, "BNBUSDT", "sell");
    market(ALPHA, "ETHUSDT", "buy");
    market(BRAVO, "ETHUSDT", "sell");

    let alerts: Vec<Value> = eventually("three wash alerts", || {
        let r = request(p.scanner, Some(admin), "GET", "/alerts", "");
        let list = json(&r)["alerts"].as_array().cloned().unwrap_or_default();
        (list.len() >= 3).then_some(list)
    });
    let alert_of = |accounts: &[&str]| -> String {
        alerts
            .iter()
            .find(|a| a["accounts"] == serde_json::json!(accounts))
            .unwrap_or_else(|| panic!("no alert of {accounts:?} in {alerts:?}"))["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (alpha_alert, bravo_alert, shared_alert) = (
        alert_of(&[ALPHA]),
        alert_of(&[BRAVO]),
        alert_of(&[ALPHA, BRAVO]),
    );

    for (account, id) in [(ALPHA, &alpha_order), (BRAVO, &bravo_order)] {
        eventually("orders in execution quality", || {
            let r = request(
                p.quality,
                Some(admin),
                "GET",
                &format!("/quality/orders/{id}"),
                "",
            );
            (r.status == 200).then_some(())
        });
        for path in [
            format!("/features/position_features/{account}"),
            format!("/features/position_symbol_features/{account}%7CETHUSDT.sim"),
        ] {
            eventually(&path, || {
                (request(p.features, Some(admin), "GET", &path, "").status == 200).then_some(())
            });
        }
        eventually("fills in ptrc", || {
            let body = format!(r#"{{"account":"{account}"}}"#);
            let r = request(p.ptrc, Some(admin), "POST", "/pnl/compute", &body);
            (r.status == 200 && r.body.contains("USDT")).then_some(())
        });
    }
    let saved = |body: &str, path: &str| -> String {
        post(p.ptrc, path, body)["report_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alpha_report = saved(
        &format!(r#"{{"account":"{ALPHA}","save":true}}"#),
        "/pnl/compute",
    );
    let bravo_report = saved(
        &format!(r#"{{"account":"{BRAVO}","save":true}}"#),
        "/pnl/compute",
    );
    let scan_report = saved(r#"{"save":true}"#, "/compliance/scan");

    let order = json(&request(
        p.gateway,
        Some(admin),
        "GET",
        &format!("/orders/{alpha_order}"),
        "",
    ));
    let created = order["created_at"].as_str().unwrap().to_owned();
    let mid: f64 = {
        let q = json(&request(p.gateway, None, "GET", "/marketdata/XRPUSDT", ""));
        q["quote"]["mid"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no XRP price in {q}"))
    };
    // A resting buy: below the market, inside the 5 % collar.
    let rest_price = format!("{:.4}", mid * 0.97);

    let r = |name, value: String, accounts: Vec<&'static str>, missing: &str| Ref {
        name,
        value,
        accounts,
        missing: missing.to_owned(),
    };
    Seeded {
        refs: vec![
            r("alpha", ALPHA.into(), vec![ALPHA], "scope_yankee"),
            r("bravo", BRAVO.into(), vec![BRAVO], "scope_zulu"),
            r("alpha_order", alpha_order, vec![ALPHA], "987654321"),
            r("bravo_order", bravo_order, vec![BRAVO], "987654322"),
            r(
                "alpha_alert",
                alpha_alert,
                vec![ALPHA],
                "WASH_TRADE-absent1",
            ),
            r(
                "bravo_alert",
                bravo_alert,
                vec![BRAVO],
                "WASH_TRADE-absent2",
            ),
            r(
                "shared_alert",
                shared_alert,
                vec![ALPHA, BRAVO],
                "WASH_TRADE-absent3",
            ),
            r("alpha_report", alpha_report, vec![ALPHA], "pnl-absent1"),
            r("bravo_report", bravo_report, vec![BRAVO], "pnl-absent2"),
            r("scan_report", scan_report, vec![], "compliance-absent3"),
            r("month", created[..7].to_owned(), vec![ALPHA], ""),
            r("year", created[..4].to_owned(), vec![ALPHA], ""),
            r("rest_price", rest_price, vec![ALPHA], ""),
        ],
    }
}

// --- the test -------------------------------------------------------------------------------------

fn addr(p: &Platform, svc: Svc) -> SocketAddr {
    match svc {
        Gateway => p.gateway,
        Ptrc => p.ptrc,
        Quality => p.quality,
        Scanner => p.scanner,
        Features => p.features,
    }
}

/// Every (method, route) each service's OpenAPI document lists; `None` for a service that
/// serves none yet.
fn documented(p: &Platform, svc: Svc) -> Option<BTreeSet<(String, String)>> {
    let r = request(addr(p, svc), None, "GET", "/openapi.json", "");
    if r.status == 404 {
        return None;
    }
    assert_eq!(r.status, 200, "{svc:?} /openapi.json: {}", r.body);
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    let paths = doc["paths"]
        .as_object()
        .expect("an OpenAPI document has paths");
    Some(
        paths
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                    .map(move |m| (m.to_ascii_uppercase(), path.clone()))
            })
            .collect(),
    )
}

#[test]
fn every_route_on_every_port_keeps_to_the_keys_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("owners.yaml");
    // One beneficial owner: the scanner raises wash alerts across the two accounts. A wide
    // price tolerance: the market may move between the legs on a busy machine.
    std::fs::write(
        &config,
        format!(
            "compliance_scanner:\n  account_owners:\n    {ALPHA}: scope_owner\n    {BRAVO}: scope_owner\n\
             surveillance:\n  wash_price_tol_bps: 1000\n"
        ),
    )
    .unwrap();
    let keys: Vec<Option<String>> = KEYS
        .iter()
        .map(|(_, k)| {
            k.map(|(role, accounts)| {
                create_key(dir.path(), &["--role", role, "--accounts", accounts]).1
            })
        })
        .collect();
    let p = Platform::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let seeded = seed(&p);

    let mut table = table();
    // A service's own OpenAPI document is public.
    for svc in SERVICES {
        if svc != Gateway && documented(&p, svc).is_some() {
            table.push(case(
                svc,
                "GET",
                "/openapi.json",
                "/openapi.json",
                "",
                PUBLIC,
            ));
        }
    }

    // Every documented route has a row, and every row a documented route.
    let mut undocumented = Vec::new();
    for svc in SERVICES {
        match documented(&p, svc) {
            Some(routes) => {
                for (method, route) in &routes {
                    if !table
                        .iter()
                        .any(|c| c.svc == svc && c.method == method && c.route == route)
                    {
                        undocumented.push(format!("{svc:?} {method} {route}: no row"));
                    }
                }
                for c in table.iter().filter(|c| c.svc == svc) {
                    if !routes.contains(&(c.method.to_owned(), c.route.to_owned())) {
                        undocumented.push(format!(
                            "{svc:?} {} {}: not in the service's OpenAPI document",
                            c.method, c.route
                        ));
                    }
                }
            }
            None => eprintln!("note: {svc:?} serves no /openapi.json: its routes are the table's"),
        }
    }
    assert!(
        undocumented.is_empty(),
        "the table of tests/scope.rs and the OpenAPI documents differ: {undocumented:#?}"
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for c in &table {
        for (col, (who, spec)) in KEYS.iter().enumerate() {
            let accounts = spec.map(|(_, a)| a);
            let key = keys[col].as_deref();
            let path = seeded.fill(c.path, &BTreeSet::new());
            let body = seeded.fill(&c.body, &BTreeSet::new());
            let what = format!("{:?} {} {} {} as {who}", c.svc, c.method, path, body);
            let reply = request(addr(&p, c.svc), key, c.method, &path, &body);
            checked += 1;
            if reply.status != c.expect[col] {
                failures.push(format!(
                    "{what}: status {} (expected {}): {}",
                    reply.status,
                    c.expect[col],
                    reply.body.chars().take(300).collect::<String>()
                ));
                continue;
            }
            // What the request names outside the key's scope: the answer must be the one for
            // something that does not exist (with the names swapped).
            let refs = seeded.used(&format!("{} {}", c.path, c.body));
            let outside: BTreeSet<&str> = refs
                .iter()
                .filter(|r| !r.missing.is_empty() && !key_covers_ref(accounts, r))
                .map(|r| r.name)
                .collect();
            if !outside.is_empty() && !reply.streaming {
                let twin_path = seeded.fill(c.path, &outside);
                let twin_body = seeded.fill(&c.body, &outside);
                let twin = request(addr(&p, c.svc), key, c.method, &twin_path, &twin_body);
                let mut real = reply.body.clone();
                let mut missing = twin.body.clone();
                for r in refs.iter().filter(|r| outside.contains(r.name)) {
                    real = replace_token(&real, &r.value, "<ref>");
                    missing = replace_token(&missing, &r.missing, "<ref>");
                }
                if (reply.status, &real) != (twin.status, &missing) {
                    failures.push(format!(
                        "{what}: answered unlike a missing one ({twin_path} {twin_body}):\n  \
                         real    {} {real}\n  missing {} {missing}",
                        reply.status, twin.status
                    ));
                }
            }
            // No data of an account the key does not cover (a name the request itself gives
            // is checked above).
            let asked = format!("{path} {body}");
            for account in SEEDED {
                if !key_covers(accounts, account)
                    && !asked.contains(account)
                    && reply.body.contains(account)
                {
                    failures.push(format!(
                        "{what}: shows {account}: {}",
                        reply.body.chars().take(600).collect::<String>()
                    ));
                }
            }
        }
    }
    eprintln!("{checked} requests checked");
    let routes: BTreeMap<(Svc, &str, &str), usize> =
        table.iter().fold(BTreeMap::new(), |mut m, c| {
            *m.entry((c.svc, c.method, c.route)).or_default() += 1;
            m
        });
    eprintln!("{} routes in the table", routes.len());
    assert!(
        failures.is_empty(),
        "{} of {checked} answers broke the scope rules:\n{}",
        failures.len(),
        failures.join("\n")
    );
    p.stop();
}
