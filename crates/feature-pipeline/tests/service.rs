//! The service over a real journal: a restart loads the newest snapshot and replays only the
//! tail, and then answers exactly like a pipeline that replayed everything; the routes keep
//! Feast's shapes and the account scope; `/status` hides the store's password and the outbox
//! stays bounded while the store is down.

mod common;

use common::service::{Running, config, keys, segment, start};
use common::{Shape, Universe, random_journal};
use journal::{Bus, InProcessBus, Journal};
use serde_json::{Value, json};

async fn publish(bus: &InProcessBus, events: &[model::Event]) {
    bus.publish_all(events.to_vec()).await.unwrap();
}

/// Every answer the routes give about every entity (and some that do not exist).
async fn answers(p: &Running, u: &Universe, key: &str) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for (view, entity) in u.entities() {
        let uri = format!("/features/{view}/{}", segment(&entity));
        out.push(p.call("GET", &uri, Some(key), None).await);
    }
    for v in features::views() {
        let entities: Vec<String> = u
            .entities()
            .into_iter()
            .filter(|(view, _)| *view == v.name)
            .map(|(_, e)| e)
            .collect();
        let body = json!({
            "features": v.features.iter().map(|f| format!("{}:{}", v.name, f.name)).collect::<Vec<_>>(),
            "entities": { v.entity: entities },
            "full_feature_names": true,
        });
        out.push(
            p.call(
                "POST",
                "/get-online-features",
                Some(key),
                Some(&body.to_string()),
            )
            .await,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_after_a_restart_equal_features_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let (keys, admin) = keys(dir.path());
    let u = Universe::standard();
    let events = random_journal(&u, Shape::new(11, 3_000));
    let restarted_dir = dir.path().join("restarted");

    // First run over 2,000 events; a clean stop leaves a snapshot of all of them.
    publish(&bus, &events[..2_000]).await;
    let first = start(&bus, &restarted_dir, &keys, config(None)).await;
    assert_eq!(first.svc.consumer().snapshot_seq(), 0, "nothing to restore");
    first.caught_up(2_000).await;
    let before = answers(&first, &u, &admin).await;
    assert!(
        before.iter().filter(|(s, _)| *s == 200).count() > 20,
        "{before:?}"
    );
    first.stop().await;

    // The restart restores that snapshot and replays only the 1,000 events after it.
    publish(&bus, &events[2_000..]).await;
    let restarted = start(&bus, &restarted_dir, &keys, config(None)).await;
    assert_eq!(restarted.svc.consumer().snapshot_seq(), 2_000);
    assert!(restarted.svc.consumer().position() >= 2_000);
    restarted.caught_up(3_000).await;
    let after_restart = answers(&restarted, &u, &admin).await;
    let restarted_state = restarted
        .svc
        .consumer()
        .read(|s| serde_json::to_string(s).unwrap());
    restarted.stop().await;

    // A pipeline that never stopped (a full replay into an empty snapshot folder).
    let whole = start(&bus, &dir.path().join("whole"), &keys, config(None)).await;
    assert_eq!(whole.svc.consumer().snapshot_seq(), 0);
    whole.caught_up(3_000).await;
    let uninterrupted = answers(&whole, &u, &admin).await;
    let whole_state = whole
        .svc
        .consumer()
        .read(|s| serde_json::to_string(s).unwrap());
    whole.stop().await;

    assert_eq!(after_restart.len(), uninterrupted.len());
    for (a, b) in after_restart.iter().zip(&uninterrupted) {
        assert_eq!(a, b);
    }
    assert_eq!(restarted_state, whole_state);
    assert_ne!(before, after_restart, "the tail changed features");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_keep_feasts_shapes_and_the_account_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let (keys, admin) = keys(dir.path());
    let trader = keys
        .create_ephemeral(
            auth::Role::Trader,
            auth::Accounts::Some([model::AccountId::new("acc1").unwrap()].into()),
        )
        .unwrap();
    let u = Universe::standard();
    publish(&bus, &random_journal(&u, Shape::new(5, 1_500))).await;
    let p = start(&bus, &dir.path().join("data"), &keys, config(None)).await;
    p.caught_up(1_500).await;
    let row = |view: &str, entity: &str| p.svc.row(view, entity).unwrap();
    let f64_of = |r: &features::FeatureRow, name: &str| r.get(name).unwrap().as_f64().unwrap();

    // Market features are public: no key needed.
    let (status, body) = p
        .call(
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["market_features:mid","market_features:trade_count_5m"],"entities":{"symbol":["AAA","NOPE"]}}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let aaa = row("market_features", "AAA");
    let epoch = "1970-01-01T00:00:00.000000000Z";
    assert_eq!(
        v,
        json!({
            "metadata": { "feature_names": ["symbol", "mid", "trade_count_5m"] },
            "results": [
                { "values": ["AAA", "NOPE"], "statuses": ["PRESENT", "PRESENT"],
                  "event_timestamps": [epoch, epoch] },
                { "values": [f64_of(&aaa, "mid"), null], "statuses": ["PRESENT", "NOT_FOUND"],
                  "event_timestamps": [aaa.event_ts.to_string(), epoch] },
                { "values": [aaa.get("trade_count_5m").unwrap().as_i64().unwrap(), null],
                  "statuses": ["PRESENT", "NOT_FOUND"],
                  "event_timestamps": [aaa.event_ts.to_string(), epoch] },
            ]
        })
    );
    let (_, body) = p
        .call(
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["market_features:mid"],"entities":{"symbol":["BBB"]},"full_feature_names":true}"#),
        )
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["metadata"]["feature_names"],
        json!(["symbol", "market_features__mid"])
    );

    // Account-keyed views need a key, and show only its accounts.
    let orders =
        r#"{"features":["order_features:orders_1h"],"entities":{"account":["acc1","acc2"]}}"#;
    let (status, body) = p
        .call("POST", "/get-online-features", None, Some(orders))
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = p
        .call("POST", "/get-online-features", Some(&trader), Some(orders))
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["results"][1]["statuses"], json!(["PRESENT", "NOT_FOUND"]));
    let (_, body) = p
        .call("POST", "/get-online-features", Some(&admin), Some(orders))
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["results"][1]["statuses"], json!(["PRESENT", "PRESENT"]));

    // One row as plain JSON.
    let (status, body) = p
        .call("GET", "/features/market_features/AAA", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["view"], "market_features");
    assert_eq!(v["entity"], "AAA");
    assert_eq!(v["event_ts"], aaa.event_ts.to_string());
    assert_eq!(v["values"]["mid"], json!(f64_of(&aaa, "mid")));
    assert_eq!(
        v["values"].as_object().unwrap().len(),
        features::view("market_features").unwrap().features.len()
    );
    let (status, _) = p
        .call("GET", "/features/order_features/acc1", Some(&trader), None)
        .await;
    assert_eq!(status, 200);
    let pair = format!(
        "/features/position_symbol_features/{}",
        segment("acc1|BBB.sim")
    );
    let (status, body) = p.call("GET", &pair, Some(&trader), None).await;
    assert_eq!(status, 200, "{body}");

    // Errors: {"error":{"code","message"}} with the codes callers rely on.
    let code = |body: &str| {
        serde_json::from_str::<Value>(body).unwrap()["error"]["code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (method, uri, key, body, want_status, want_code) in [
        (
            "GET",
            "/features/order_features/acc2",
            Some(&trader),
            None,
            404,
            "account_not_found",
        ),
        (
            "GET",
            "/features/order_features/acc1",
            None,
            None,
            401,
            "unauthorized",
        ),
        (
            "GET",
            "/features/nope/AAA",
            None,
            None,
            404,
            "unknown_feature_view",
        ),
        (
            "GET",
            "/features/market_features/NOPE",
            None,
            None,
            404,
            "entity_not_found",
        ),
        (
            "GET",
            "/features/market_features/AAA.sim",
            None,
            None,
            404,
            "entity_not_found",
        ),
        (
            "GET",
            "/status?verbose=1",
            None,
            None,
            400,
            "unknown_parameter",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some("{"),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"entities":{"symbol":["AAA"]}}"#),
            400,
            "missing_field",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["nope:x"],"entities":{"symbol":["AAA"]}}"#),
            422,
            "unknown_feature_view",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["market_features:x"],"entities":{"symbol":["AAA"]}}"#),
            422,
            "unknown_feature",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["market_features"],"entities":{"symbol":["AAA"]}}"#),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(r#"{"features":["market_features:mid"],"entities":{"account":["acc1"]}}"#),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/get-online-features",
            None,
            Some(
                r#"{"features":["market_features:mid"],"entities":{"symbol":["AAA"],"account":["acc1"]}}"#,
            ),
            422,
            "invalid_field",
        ),
    ] {
        let (status, got) = p.call(method, uri, key.map(String::as_str), body).await;
        assert_eq!(
            (status, code(&got).as_str()),
            (want_status, want_code),
            "{method} {uri} {body:?}: {got}"
        );
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_hides_the_store_password_and_staged_rows_stay_bounded_while_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let (keys, _) = keys(dir.path());
    let u = Universe::standard();
    publish(&bus, &random_journal(&u, Shape::new(9, 2_000))).await;
    // Nothing listens on port 1: every write fails and is retried.
    let store = "redis://feast:s3cret@127.0.0.1:1/0";
    let p = start(
        &bus,
        &dir.path().join("data"),
        &keys,
        config(Some(store.into())),
    )
    .await;
    p.caught_up(2_000).await;
    let status = loop {
        let (code, body) = p.call("GET", "/status", None, None).await;
        assert_eq!(code, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(!body.contains("s3cret"), "{body}");
        if v["online_store"]["write_failures"].as_u64() > Some(0) {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        status["online_store"]["configured"],
        "redis://feast:***@127.0.0.1:1/0"
    );
    assert_eq!(status["online_store"]["rows_written"], 0);
    assert!(status["online_store"]["last_error"].is_string());
    // Every row is waiting, one per served entity and view (3 symbols, 3 + 3 accounts, 12
    // account-instrument pairs), however many events produced them.
    let pending = status["online_store"]["pending_rows"].as_u64().unwrap();
    assert_eq!(pending as usize, p.svc.pending_rows());
    assert!((1..=21).contains(&pending), "{status}");
    assert_eq!(status["stale_after_seconds"], 300);
    let market = &status["views"]["market_features"];
    assert_eq!(market["entities"], 3);
    // Nothing reached the store, so nothing is fresh there.
    assert_eq!(market["newest_event_ts"], Value::Null);
    assert_eq!(market["stale"], true);
    assert_eq!(status["views"]["position_symbol_features"]["entities"], 12);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_freshness_is_the_age_of_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let (keys, _) = keys(dir.path());
    let u = Universe::standard();
    publish(&bus, &random_journal(&u, Shape::new(2, 500))).await;
    let p = start(&bus, &dir.path().join("data"), &keys, config(None)).await;
    p.caught_up(500).await;
    let wm = p.svc.consumer().read(|s| s.watermark()).unwrap();
    let now = model::Timestamp::from_nanos(wm.as_nanos() + 299_000_000_000);
    let st = p.svc.status(now);
    for (view, v) in &st.views {
        assert!(v.entities > 0, "{view}");
        assert_eq!(v.newest_event_ts, Some(wm), "{view}");
        assert_eq!(v.freshness_seconds, Some(299.0), "{view}");
        assert!(!v.stale, "{view}");
    }
    let later = model::Timestamp::from_nanos(wm.as_nanos() + 301_000_000_000);
    assert!(p.svc.status(later).views.values().all(|v| v.stale));
    assert_eq!(st.online_store.configured, None);
    p.stop().await;
}
