//! The HTTP routes over a real journal, runner and store: the answers equal those of the
//! service before bounded memory (an engine that keeps every order) for the same flow, before
//! and after a clean restart and a crash.

mod common;

use std::path::Path;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use execq::{ExecQuality, ReportFilter};
use execution_quality::QualityHandle;
use journal::{Bus, InProcessBus, Journal};
use model::{AccountId, Event, Timestamp};
use runtime::{ConsumerMetrics, Runner, RuntimeError, SnapshotPolicy};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use common::{journal, keep_everything, params};

struct Running {
    handle: QualityHandle,
    task: JoinHandle<Result<(), RuntimeError>>,
    shutdown: CancellationToken,
    app: Router,
}

async fn start(dir: &Path, bus: &InProcessBus, keys: &ApiKeys, policy: SnapshotPolicy) -> Running {
    let shutdown = CancellationToken::new();
    let metrics = telemetry::Metrics::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    let (handle, mut tasks) = execution_quality::start(&runner, dir, params(), &metrics, policy)
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    let (name, task) = tasks.remove(0);
    assert_eq!(name, "execution-quality");
    handle
        .consumer()
        .wait_for(bus.last_seq(), Duration::from_secs(30))
        .await
        .unwrap();
    let app = execution_quality::router(handle.clone(), keys.clone());
    Running {
        handle,
        task,
        shutdown,
        app,
    }
}

fn policy(every_events: u64) -> SnapshotPolicy {
    SnapshotPolicy {
        every_events,
        every: Duration::from_secs(3600),
        keep: 3,
    }
}

async fn get(app: &Router, key: &str, uri: &str) -> (u16, String) {
    let (status, body, _) = get_sized(app, key, uri).await;
    (status, body)
}

/// Also whether the answer came whole, with its length known up front (else it streamed).
async fn get_sized(app: &Router, key: &str, uri: &str) -> (u16, String, bool) {
    use axum::body::HttpBody;
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let whole = resp.body().size_hint().exact().is_some();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap(), whole)
}

struct Keys {
    keys: ApiKeys,
    admin: String,
    trader: String,
    /// A trader over acct1 and acct2.
    trader2: String,
}

fn keys() -> Keys {
    let keys = ApiKeys::in_memory();
    let admin = keys
        .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    let trader = keys
        .create_ephemeral(
            Role::Trader,
            Accounts::Some([AccountId::new("acct1").unwrap()].into()),
        )
        .unwrap();
    let trader2 = keys
        .create_ephemeral(
            Role::Trader,
            Accounts::Some(
                ["acct1", "acct2"]
                    .iter()
                    .map(|a| AccountId::new(*a).unwrap())
                    .collect(),
            ),
        )
        .unwrap();
    Keys {
        keys,
        admin,
        trader,
        trader2,
    }
}

fn at(s: &str) -> Option<Timestamp> {
    Some(Timestamp::parse_rfc3339(s).unwrap())
}

/// Every `/quality` variant answers byte for byte what the engine that keeps every order
/// reports over the same events.
async fn quality_equals_keeping_everything(app: &Router, k: &Keys, before: &ExecQuality) {
    let cases: Vec<(&str, &str, ReportFilter)> = vec![
        ("/quality", &k.admin, ReportFilter::default()),
        (
            "/quality?account=acct2",
            &k.admin,
            ReportFilter {
                account: Some("acct2".into()),
                ..ReportFilter::default()
            },
        ),
        (
            "/quality?symbol=bbbusd",
            &k.admin,
            ReportFilter {
                symbol: Some("BBBUSD".into()),
                ..ReportFilter::default()
            },
        ),
        (
            "/quality?from=2024-01-31T23:59:30Z&to=2024-02-01",
            &k.admin,
            ReportFilter {
                from: at("2024-01-31T23:59:30Z"),
                to: at("2024-02-01T00:00:00Z"),
                ..ReportFilter::default()
            },
        ),
        (
            "/quality?account=acct3&symbol=CCCUSD&from=2024-02-01",
            &k.admin,
            ReportFilter {
                account: Some("acct3".into()),
                symbol: Some("CCCUSD".into()),
                from: at("2024-02-01T00:00:00Z"),
                ..ReportFilter::default()
            },
        ),
        // A trader sees its own account, named or not.
        (
            "/quality",
            &k.trader,
            ReportFilter {
                account: Some("acct1".into()),
                ..ReportFilter::default()
            },
        ),
        (
            "/quality?account=acct1&symbol=AAAUSD",
            &k.trader,
            ReportFilter {
                account: Some("acct1".into()),
                symbol: Some("AAAUSD".into()),
                ..ReportFilter::default()
            },
        ),
    ];
    for (uri, key, filter) in cases {
        let (status, body) = get(app, key, uri).await;
        assert_eq!(status, 200, "{uri}: {body}");
        let want = serde_json::to_string(&before.report_filtered(&filter)).unwrap();
        assert!(
            body == want,
            "{uri}: the answer differs from keeping every order"
        );
    }
    // A key over several accounts reads all of them (the old service asked it to name one):
    // the report over those accounts' orders.
    let p = params();
    for (uri, symbol) in [
        ("/quality", None),
        ("/quality?symbol=AAAUSD", Some("AAAUSD")),
    ] {
        let (status, body) = get(app, &k.trader2, uri).await;
        assert_eq!(status, 200, "{uri}: {body}");
        let rows = before.held_rows(&ReportFilter {
            symbol: symbol.map(Into::into),
            ..ReportFilter::default()
        });
        let ours = rows
            .into_iter()
            .filter(|r| matches!(r.account.as_deref(), Some("acct1" | "acct2")));
        let want = execq::report_from_rows(
            ours,
            &p,
            &ReportFilter::default(),
            before.records(),
            before.data_issues(),
        )
        .unwrap();
        assert!(
            body == serde_json::to_string(&want).unwrap(),
            "{uri}: acct1 + acct2"
        );
    }
}

/// One order (stored or held), and Rule 605 in every format, equal to before.
async fn orders_and_rule605_equal_keeping_everything(
    app: &Router,
    k: &Keys,
    before: &ExecQuality,
    ids: &[String],
) {
    for id in ids {
        let (status, body) = get(app, &k.admin, &format!("/quality/orders/{id}")).await;
        assert_eq!(status, 200, "{id}: {body}");
        let want = before.order(id).unwrap();
        assert_eq!(body, serde_json::to_string(&want).unwrap(), "{id}");
        let (status, _) = get(app, &k.trader, &format!("/quality/orders/{id}")).await;
        let own = want.account.as_deref() == Some("acct1");
        assert_eq!(status, if own { 200 } else { 404 }, "{id}");
    }
    let report = before.report();
    for month in ["2024-01", "2024-02", "2023-12"] {
        let r = execq::rule605(&report, month).unwrap();
        let uri = format!("/reports/rule605?month={month}");
        let (status, body) = get(app, &k.admin, &uri).await;
        assert_eq!(
            (status, body),
            (200, serde_json::to_string(&r).unwrap()),
            "{uri}"
        );
        let (status, body) = get(app, &k.admin, &format!("{uri}&format=csv")).await;
        assert_eq!(
            (status, body),
            (200, execq::rule605_to_csv(&r)),
            "{uri} csv"
        );
        let (status, body) = get(app, &k.admin, &format!("{uri}&format=html")).await;
        assert_eq!(
            (status, body),
            (200, execq::rule605_to_html(&r)),
            "{uri} html"
        );
    }
}

/// The position the next start restores from.
fn newest_snapshot(dir: &Path, jr: &Journal) -> u64 {
    let store =
        runtime::SnapshotStore::open(&dir.join("snapshots"), execution_quality::NAME, 3).unwrap();
    let restored = runtime::restore(
        &store,
        &execution_quality::fingerprint(&params()),
        jr.last_seq(),
        || execution_quality::QualityConsumer::new(params(), &dir.join("unused.db")).unwrap(),
    )
    .unwrap();
    assert!(restored.rejected.is_empty(), "{:?}", restored.rejected);
    restored.position
}

async fn publish(bus: &InProcessBus, events: &[Event]) {
    bus.publish_all(events.to_vec()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_answer_as_before_and_survive_restarts_and_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (jr, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(jr.clone());
    let k = keys();
    // About three minutes of trading across midnight into February.
    let events = journal(3, 4_500, 10, 120);
    let (first, rest) = events.split_at(2_000);
    let (second, third) = rest.split_at(1_500);

    publish(&bus, first).await;
    let svc = start(dir.path(), &bus, &k.keys, policy(500)).await;
    let before = keep_everything(first, &params());
    let held = svc
        .handle
        .consumer()
        .read(|c| c.engine().held_rows(&ReportFilter::default()));
    let stored = svc.handle.rows().count().unwrap();
    let settling = svc.handle.consumer().read(|c| c.engine().settling_orders());
    assert!(
        stored > 100 && !held.is_empty() && settling > 0,
        "the flow covers stored ({stored}), held ({}) and settling ({settling}) orders",
        held.len()
    );
    quality_equals_keeping_everything(&svc.app, &k, &before).await;
    // A large answer streams (memory: one chunk); a small one goes out whole, with its length.
    let (_, big, whole) = get_sized(&svc.app, &k.admin, "/quality").await;
    assert!(big.len() > 256 * 1024 && !whole, "{} bytes", big.len());
    let (_, small, whole) =
        get_sized(&svc.app, &k.admin, "/quality?account=acct1&symbol=AAAUSD").await;
    assert!(small.len() < 256 * 1024 && whole, "{} bytes", small.len());
    let stored_id = common::stored_rows(&execution_quality::db_path(dir.path()))[0]
        .order_id
        .clone();
    let ids = [
        stored_id,
        held[0].order_id.clone(),
        held[held.len() - 1].order_id.clone(),
    ];
    orders_and_rule605_equal_keeping_everything(&svc.app, &k, &before, &ids).await;

    // The errors, as before.
    let (status, body) = get(&svc.app, &k.admin, "/quality/orders/nope").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("order_not_found"), "{body}");
    let (admin, trader) = (k.admin.as_str(), k.trader.as_str());
    for (key, uri, want) in [
        (trader, "/quality?account=acct2", 404),
        (admin, "/quality?acount=acct2", 400),
        (admin, "/quality?from=yesterday", 422),
        (trader, "/reports/rule605?month=2024-01", 403),
        (admin, "/reports/rule605", 400),
        (admin, "/reports/rule605?month=2024-13", 422),
        (admin, "/reports/rule605?month=2024-01&format=pdf", 422),
        ("not-a-key", "/quality", 401),
    ] {
        let (status, body) = get(&svc.app, key, uri).await;
        assert_eq!(status, want, "{uri}: {body}");
        assert!(body.starts_with("{\"error\":{\"code\":"), "{uri}: {body}");
    }

    // A clean stop leaves a snapshot of everything; the restart replays only what came after.
    svc.shutdown.cancel();
    svc.task.await.unwrap().unwrap();
    let stopped_at = jr.last_seq();
    assert_eq!(newest_snapshot(dir.path(), &jr), stopped_at);
    publish(&bus, second).await;
    // No periodic snapshot in this run: the crash below loses all of it.
    let svc = start(dir.path(), &bus, &k.keys, policy(u64::MAX)).await;
    let seen = [first, second].concat();
    let before = keep_everything(&seen, &params());
    quality_equals_keeping_everything(&svc.app, &k, &before).await;
    orders_and_rule605_equal_keeping_everything(&svc.app, &k, &before, &ids).await;
    let stored_before_crash = svc.handle.rows().count().unwrap();
    assert!(
        stored_before_crash > stored,
        "the second run finalized orders"
    );

    // A crash: the task dies without its final snapshot. The next start takes the older
    // snapshot, replays the whole second part, finalizes its orders again: same answers.
    svc.task.abort();
    let _ = svc.task.await;
    assert_eq!(newest_snapshot(dir.path(), &jr), stopped_at);
    publish(&bus, third).await;
    let svc = start(dir.path(), &bus, &k.keys, policy(200)).await;
    let before = keep_everything(&events, &params());
    quality_equals_keeping_everything(&svc.app, &k, &before).await;
    orders_and_rule605_equal_keeping_everything(&svc.app, &k, &before, &ids).await;
    svc.shutdown.cancel();
    svc.task.await.unwrap().unwrap();
}
