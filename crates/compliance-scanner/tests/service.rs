//! The scanner as a service: a round-trip wash pattern in the journal raises one alert, which is
//! journaled, stored, listed (paged) for compliance and admin keys within their accounts only,
//! acknowledged, and never repeated after a restart.

mod common;

use std::path::Path;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use compliance_scanner::{ScannerConfig, ScannerService, start};
use journal::{Bus, InProcessBus};
use model::{AccountId, Event, Timestamp};
use runtime::{ConsumerMetrics, Runner, SnapshotPolicy};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn policy() -> SnapshotPolicy {
    SnapshotPolicy {
        every_events: 2,
        every: Duration::from_secs(3600),
        keep: 50,
    }
}

async fn start_service(
    bus: &InProcessBus,
    dir: &Path,
    shutdown: &CancellationToken,
) -> ScannerService<InProcessBus> {
    let metrics = telemetry::Metrics::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    start(
        &runner,
        dir,
        ScannerConfig::default(),
        policy(),
        &metrics,
        shutdown.clone(),
    )
    .await
    .unwrap()
}

async fn stop(svc: ScannerService<InProcessBus>, shutdown: CancellationToken) {
    shutdown.cancel();
    for (name, task) in svc.tasks {
        task.await
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

struct Reply {
    status: StatusCode,
    body: serde_json::Value,
    next_cursor: Option<String>,
    link: Option<String>,
}

async fn call(app: &axum::Router, method: &str, uri: &str, key: Option<&str>, body: &str) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (next_cursor, link) = (header("x-next-cursor"), header("link"));
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        next_cursor,
        link,
    }
}

async fn get(app: &axum::Router, uri: &str, key: Option<&str>) -> Reply {
    call(app, "GET", uri, key, "").await
}

fn listed_keys(r: &Reply) -> Vec<String> {
    r.body["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{} {}", r.status, r.body))
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_owned())
        .collect()
}

fn error_code(r: &Reply) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wash_round_trip_raises_one_journaled_alert_that_survives_restarts_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let keys = ApiKeys::in_memory();
    let compliance = keys
        .create(Role::Compliance, Accounts::All(AllMarker::All))
        .unwrap();
    let trader = keys
        .create(
            Role::Trader,
            Accounts::Some([AccountId::new("washer").unwrap()].into()),
        )
        .unwrap();

    let key = {
        let (journal, bus) = open(dir.path());
        let shutdown = CancellationToken::new();
        let svc = start_service(&bus, dir.path(), &shutdown).await;
        journal.append_batch(wash("washer", 1, T0)).await.unwrap();
        let store = svc.alerts.clone();
        eventually("the alert in the store", || store.count().unwrap() == 1).await;
        let app = svc.router(keys.clone());

        let r = get(&app, "/alerts?type=WASH_TRADE", Some(&compliance)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let list = r.body["alerts"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{}", r.body);
        assert_eq!(list[0]["type"], "WASH_TRADE");
        assert_eq!(list[0]["subtype"], "round_trip");
        assert_eq!(list[0]["owner"], "washer");
        assert_eq!(list[0]["symbol"], "BTCUSDT");
        assert!(list[0]["journal_seq"].as_u64().unwrap() > 7);
        assert!(list[0]["acknowledged_by"].is_null());
        let key = list[0]["key"].as_str().unwrap().to_string();

        let narrow = keys
            .create(
                Role::Compliance,
                Accounts::Some([AccountId::new("someone_else").unwrap()].into()),
            )
            .unwrap();
        let r = get(&app, "/alerts", Some(&narrow)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body["alerts"],
            serde_json::json!([]),
            "a key limited to other accounts sees none"
        );
        let r = get(&app, "/alerts", Some(&trader)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "traders do not see alerts");
        let r = call(
            &app,
            "POST",
            &format!("/alerts/{key}/ack"),
            Some(&compliance),
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["key"], key.as_str());
        let r = call(&app, "POST", "/alerts/nope/ack", Some(&compliance), "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        stop(svc, shutdown).await;
        assert_eq!(journaled_alerts(&journal).len(), 1);
        journal.shutdown().unwrap();
        key
    };

    // Restart: the alert is neither lost nor repeated, and its acknowledgement is kept.
    let (journal, bus) = open(dir.path());
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;
    // More flow after the restart: a second round trip by another account, one more alert.
    journal
        .append_batch(wash("other", 3, T0 + 600_000))
        .await
        .unwrap();
    let store = svc.alerts.clone();
    eventually("the second alert", || store.count().unwrap() == 2).await;
    svc.scanner
        .wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    let app = svc.router(keys.clone());
    let r = get(&app, "/alerts", Some(&compliance)).await;
    let listed = r.body["alerts"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{}", r.body);
    assert_eq!(listed[0]["key"], key.as_str());
    assert!(
        listed[0]["acknowledged_by"].is_string(),
        "the acknowledgement survives the restart"
    );
    assert_eq!(listed[1]["owner"], "other");
    stop(svc, shutdown).await;
    assert_eq!(
        journaled_alerts(&journal).len(),
        2,
        "no alert repeated after restart"
    );
}

fn stored_alert(key: &str, accounts: &[&str], secs: i64) -> Event {
    let ts = Timestamp::from_secs(1_700_000_000 + secs);
    Event::ComplianceAlert {
        key: key.into(),
        rule: "WASH_TRADE".into(),
        alert: serde_json::json!({
            "type": "WASH_TRADE",
            "owner": accounts[0],
            "accounts": accounts,
            "ts": ts,
            "key": key,
        }),
        ts,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_account_scope_sees_and_acknowledges_only_what_it_may() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, bus) = open(dir.path());
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;
    for (key, accounts, secs) in [
        ("A", &["washer"][..], 1),
        ("B", &["other"][..], 2),
        ("C", &["other", "washer"][..], 3),
    ] {
        bus.publish(stored_alert(key, accounts, secs))
            .await
            .unwrap();
    }
    svc.writer
        .wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    let keys = ApiKeys::in_memory();
    let one = |a: &str| Accounts::Some([AccountId::new(a).unwrap()].into());
    let admin = keys
        .create(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let compliance = keys
        .create(Role::Compliance, Accounts::All(AllMarker::All))
        .unwrap();
    let washer_desk = keys.create(Role::Compliance, one("washer")).unwrap();
    let trader = keys.create(Role::Trader, one("washer")).unwrap();
    let app = svc.router(keys.clone());

    // Who sees what.
    for (who, key, expected) in [
        ("admin", &admin, vec!["A", "B", "C"]),
        ("compliance", &compliance, vec!["A", "B", "C"]),
        // C involves "other" too: its evidence would show another account's orders.
        ("compliance for washer", &washer_desk, vec!["A"]),
    ] {
        let r = get(&app, "/alerts", Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.body);
        assert_eq!(listed_keys(&r), expected, "{who}");
    }
    let r = get(&app, "/alerts?account=washer", Some(&compliance)).await;
    assert_eq!(listed_keys(&r), ["A", "C"]);
    let r = get(&app, "/alerts?account=washer", Some(&washer_desk)).await;
    assert_eq!(listed_keys(&r), ["A"]);
    let r = get(&app, "/alerts?account=other", Some(&washer_desk)).await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::NOT_FOUND, "account_not_found"),
        "another account is answered like a missing one"
    );
    let r = get(&app, "/alerts", Some(&trader)).await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let r = get(&app, "/alerts", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Who may acknowledge what: only alerts the key sees; the rest look missing.
    let r = call(&app, "POST", "/alerts/B/ack", Some(&washer_desk), "").await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::NOT_FOUND, "alert_not_found")
    );
    let r = call(&app, "POST", "/alerts/A/ack", Some(&trader), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&app, "POST", "/alerts/A/ack", None, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &app,
        "POST",
        "/alerts/A/ack",
        Some(&washer_desk),
        "{\"x\":1}",
    )
    .await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::BAD_REQUEST, "unknown_field")
    );
    let r = call(&app, "POST", "/alerts/C/ack", Some(&washer_desk), "{}").await;
    assert_eq!(
        (r.status, error_code(&r)),
        (StatusCode::NOT_FOUND, "alert_not_found"),
        "an alert of another account too is answered like a missing one"
    );
    let r = call(&app, "POST", "/alerts/C/ack", Some(&compliance), "{}").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&app, "POST", "/alerts/B/ack", Some(&admin), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seq = r.body["journal_seq"].as_u64().unwrap();
    assert!(seq > 3);

    // Acknowledgements show right after their answer (the store caught up with them).
    let r = get(&app, "/alerts", Some(&compliance)).await;
    let by: Vec<bool> = r.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["acknowledged_by"].is_string() && a["acknowledged_at"].is_string())
        .collect();
    assert_eq!(by, [false, true, true]);
    assert_eq!(
        journal
            .read_from(1, 100)
            .unwrap()
            .iter()
            .filter(|r| matches!(r.event, Event::AlertAcknowledged { .. }))
            .count(),
        2,
        "refused acknowledgements are not journaled"
    );
    stop(svc, shutdown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_paged_with_a_next_link_and_filtered_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, bus) = open(dir.path());
    let shutdown = CancellationToken::new();
    let svc = start_service(&bus, dir.path(), &shutdown).await;
    let all: Vec<String> = (0..7).map(|i| format!("K{i}")).collect();
    for (i, key) in all.iter().enumerate() {
        let account = if i % 2 == 0 { "even" } else { "odd" };
        bus.publish(stored_alert(key, &[account], i as i64 * 60))
            .await
            .unwrap();
    }
    svc.writer
        .wait_for(journal.last_seq(), Duration::from_secs(5))
        .await
        .unwrap();
    let keys = ApiKeys::in_memory();
    let admin = keys
        .create(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let app = svc.router(keys);

    // Follow the pages: every alert once, oldest first; the link keeps the filters.
    let mut uri = "/alerts?limit=3&owner=even".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = get(&app, &uri, Some(&admin)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        seen.extend(listed_keys(&r));
        pages += 1;
        match (r.next_cursor, r.link) {
            (Some(cursor), Some(link)) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                let next = link[1..link.find('>').unwrap()].to_string();
                assert!(
                    next.contains("owner=even") && next.contains("limit=3"),
                    "{next}"
                );
                assert!(next.contains(&format!("cursor={cursor}")), "{next}");
                uri = next;
            }
            (None, None) => break,
            other => panic!("cursor and link go together: {other:?}"),
        }
    }
    assert_eq!(seen, ["K0", "K2", "K4", "K6"]);
    assert_eq!(pages, 2);

    let r = get(&app, "/alerts?order=desc&limit=2", Some(&admin)).await;
    assert_eq!(listed_keys(&r), ["K6", "K5"]);
    let r = get(
        &app,
        "/alerts?from=2023-11-14T22:15:20Z&to=2023-11-14T22:17:20Z",
        Some(&admin),
    )
    .await;
    assert_eq!(
        listed_keys(&r),
        ["K2", "K3"],
        "from inclusive, to exclusive"
    );
    let r = get(&app, "/alerts?type=SPOOFING", Some(&admin)).await;
    assert!(listed_keys(&r).is_empty());

    for (uri, status, code) in [
        (
            "/alerts?colour=red",
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
        ),
        (
            "/alerts?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "/alerts?limit=1001",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "/alerts?cursor=abc",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "/alerts?from=yesterday",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "/alerts?order=up",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ] {
        let r = get(&app, uri, Some(&admin)).await;
        assert_eq!(
            (r.status, error_code(&r)),
            (status, code),
            "{uri}: {}",
            r.body
        );
    }
    stop(svc, shutdown).await;
}
