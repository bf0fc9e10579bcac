//! The logger in a real `trade2026 up`: the gateway's and engine's lines about an order are
//! found by words and by order id, the timeline of a filled order lists its events in order,
//! a trader key sees only its account's lines, Loki's own push example round-trips, and
//! `trade2026 logs` prints what the API answers.

mod common;

use std::time::{Duration, Instant};

use common::{Platform, bin, http_as};
use serde_json::Value;

/// Polls `GET path` on the logger as `key` until `ready` holds for the answer (or `within`).
fn poll(
    p: &Platform,
    key: &str,
    path: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = http_as(p.logger, key, "GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if ready(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: not there after {within:?}: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn messages(v: &Value) -> Vec<String> {
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_orders_lines_are_found_and_its_timeline_lists_its_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    // The plan's gate: /health answers on the logger's port (200 once its consumer is ready).
    let (status, health) = common::health_when_ready(p.logger);
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"service\":\"logger\""), "{health}");

    let order = r#"{"account":"test_account","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}"#;
    let (status, body) = http_as(p.gateway, &p.trader_key, "POST", "/orders", Some(order));
    assert_eq!(status, 201, "{body}");
    let acked = Instant::now();
    let placed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(placed["status"], "filled", "{placed}");
    let id = placed["order_id"].as_u64().unwrap();

    // The gateway's line for the order, by its words and by its id, within a second of the ack.
    let second = Duration::from_secs(1).saturating_sub(acked.elapsed());
    let by_words = poll(
        &p,
        &p.admin_key,
        &format!("/logs?q=accepted%20{id}&service=gateway"),
        second,
        |v| !v["lines"].as_array().unwrap().is_empty(),
    );
    let line = &by_words["lines"][0];
    assert_eq!(line["message"], "order accepted");
    assert_eq!(line["order_id"], id.to_string());
    assert_eq!(line["account"], "test_account");
    assert_eq!(line["symbol"], "BTCUSDT");
    assert_eq!(line["target"], "gateway::orders");
    let second = Duration::from_secs(1).saturating_sub(acked.elapsed());
    let by_id = poll(
        &p,
        &p.admin_key,
        &format!("/logs?order_id={id}"),
        second,
        |v| {
            let m = messages(v);
            m.iter().any(|l| l == "order accepted") && m.iter().any(|l| l == "order filled")
        },
    );
    // The gateway's acceptance and the engine's fills (one per book level the order took). They
    // come from two tasks woken by the same durable commit (the acknowledger answers the gateway
    // and streams the fills to the lifecycle log), so which line is captured first is a race of
    // microseconds: the order of the order's facts is the journal's, checked in the timeline.
    let said = messages(&by_id);
    assert_eq!(
        said.iter().filter(|m| *m == "order accepted").count(),
        1,
        "{said:?}"
    );
    assert!(
        said.len() > 1
            && said
                .iter()
                .all(|m| m == "order accepted" || m == "order filled"),
        "{said:?}"
    );
    // The terminal leaves these lines out by their targets (`platform.terminal_order_lines`):
    // a per-order line logged from another module would flood it again.
    for l in by_id["lines"].as_array().unwrap() {
        let target = l["target"].as_str().unwrap();
        assert!(telemetry::ORDER_LINE_TARGETS.contains(&target), "{l}");
    }
    let services: Vec<&str> = by_id["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["service"].as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"engine") && services.contains(&"gateway"),
        "{services:?}"
    );

    let (status, body) = http_as(
        p.logger,
        &p.admin_key,
        "GET",
        &format!("/orders/{id}/timeline"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["account"], "test_account");
    let entries = t["entries"].as_array().unwrap();
    let journal: Vec<&str> = entries
        .iter()
        .filter(|e| e["source"] == "journal")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // One fill per book level the market order took.
    assert_eq!(
        journal[..2],
        ["order_submitted", "order_accepted"],
        "{journal:?}"
    );
    assert!(
        journal.len() > 2 && journal[2..].iter().all(|k| *k == "order_filled"),
        "{journal:?}"
    );
    let logs: Vec<&str> = entries
        .iter()
        .filter(|e| e["source"] == "log")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    // A line per fill plus the acceptance (in capture order, see above).
    assert_eq!(logs.len(), journal.len() - 1, "a line per fill: {logs:?}");
    assert_eq!(
        logs.iter().filter(|m| **m == "order accepted").count(),
        1,
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .all(|m| *m == "order accepted" || *m == "order filled"),
        "{logs:?}"
    );
    let times: Vec<&str> = entries.iter().map(|e| e["ts"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time order: {times:?}"
    );
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "journal order: {seqs:?}"
    );

    // The CLI prints the same timeline and search.
    let url = format!("http://{}", p.logger);
    let out = bin()
        .args([
            "logs",
            "--order",
            &id.to_string(),
            "--url",
            &url,
            "--key",
            &p.admin_key,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert!(
        text.starts_with(&format!("order {id} (account test_account)\n")),
        "{text}"
    );
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("order_")).count(),
        journal.len(),
        "{text}"
    );
    let out = bin()
        .args([
            "logs",
            "--order-id",
            &id.to_string(),
            "--url",
            &url,
            "--key",
            &p.admin_key,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), logs.len(), "{text}");
    // The acceptance and the fills are logged by two tasks woken by the same commit, so their
    // order in the store is a race (docs/LOGGING.md): assert the lines, and that the CLI prints
    // them oldest first by their timestamps.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(" INFO  gateway      order accepted order_id="))
            .count(),
        1,
        "{text}"
    );
    assert!(
        lines.iter().all(|l| {
            l.contains(" INFO  gateway      order accepted order_id=")
                || l.contains(" INFO  engine       order filled order_id=")
        }),
        "{text}"
    );
    let stamps: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {text}"
    );
    let out = bin()
        .args([
            "logs",
            "--level",
            "info",
            "--url",
            &url,
            "--key",
            "t26_not_a_key",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");
    p.stop();
}

#[test]
fn a_trader_key_sees_its_accounts_lines_only_and_loki_pushes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::start(dir.path(), &[]);
    let order = |account: &str| {
        format!(
            r#"{{"account":"{account}","symbol":"BTCUSDT","side":"buy","type":"market","quantity":"0.01"}}"#
        )
    };
    let (status, body) = http_as(
        p.gateway,
        &p.admin_key,
        "POST",
        "/orders",
        Some(&order("other_account")),
    );
    assert_eq!(status, 201, "{body}");
    let theirs = serde_json::from_str::<Value>(&body).unwrap()["order_id"]
        .as_u64()
        .unwrap();
    let (status, body) = http_as(
        p.gateway,
        &p.trader_key,
        "POST",
        "/orders",
        Some(&order("test_account")),
    );
    assert_eq!(status, 201, "{body}");
    let mine = serde_json::from_str::<Value>(&body).unwrap()["order_id"]
        .as_u64()
        .unwrap();
    let wait = Duration::from_secs(10);
    poll(&p, &p.admin_key, "/logs?q=filled", wait, |v| {
        messages(v).len() >= 2
    });

    let seen = poll(&p, &p.trader_key, "/logs?q=order", wait, |v| {
        !messages(v).is_empty()
    });
    let accounts: Vec<&str> = seen["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["account"].as_str().unwrap())
        .collect();
    assert!(
        !accounts.is_empty() && accounts.iter().all(|a| *a == "test_account"),
        "{accounts:?}"
    );
    let (status, _) = http_as(
        p.logger,
        &p.trader_key,
        "GET",
        "/logs?account=other_account",
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = http_as(
        p.logger,
        &p.trader_key,
        "GET",
        &format!("/orders/{theirs}/timeline"),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = http_as(
        p.logger,
        &p.trader_key,
        "GET",
        &format!("/orders/{mine}/timeline"),
        None,
    );
    assert_eq!(status, 200);

    // Loki's own example (the HTTP API reference's curl), then a malformed push: 400, nothing
    // of it stored.
    let example = r#"{"streams": [{ "stream": { "foo": "bar2" }, "values": [ [ "1570818238000000000", "fizzbuzz" ] ] }]}"#;
    let (status, body) = http_as(
        p.logger,
        &p.admin_key,
        "POST",
        "/loki/api/v1/push",
        Some(example),
    );
    assert_eq!(status, 204, "{body}");
    let found = poll(&p, &p.admin_key, "/logs?q=fizzbuzz", wait, |v| {
        !messages(v).is_empty()
    });
    assert_eq!(found["lines"][0]["ts"], "2019-10-11T18:23:58.000000000Z");
    let bad = r#"{"streams": [{ "stream": { "foo": "bar3" }, "values": [ [ "1570818238000000000", "buzzfizz" ], [ "soon", "x" ] ] }]}"#;
    let (status, body) = http_as(
        p.logger,
        &p.admin_key,
        "POST",
        "/loki/api/v1/push",
        Some(bad),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("streams[0].values[1][0]"), "{body}");
    let (_, body) = http_as(p.logger, &p.admin_key, "GET", "/logs?q=buzzfizz", None);
    assert!(
        messages(&serde_json::from_str(&body).unwrap()).is_empty(),
        "{body}"
    );
    let (status, _) = http_as(
        p.logger,
        &p.trader_key,
        "POST",
        "/loki/api/v1/push",
        Some(example),
    );
    assert_eq!(status, 403, "pushing needs an admin key");
    p.stop();
}
