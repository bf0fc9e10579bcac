#![allow(dead_code)] // each test binary uses a different subset

use feast_store::{OnlineRow, OnlineValue, redis_key};
use model::Timestamp;

/// `TEST_REDIS_URL`, checked to answer PING. Missing or down: `None` (skip), except under
/// `CI=true`, where it panics so CI cannot pass without exercising Redis.
pub async fn redis_url() -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        assert!(!ci, "CI=true but TEST_REDIS_URL is not set");
        eprintln!("skipping: TEST_REDIS_URL not set");
        return None;
    };
    let ok = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    }
    .await
    .is_some();
    if !ok {
        assert!(!ci, "CI=true but Redis at {url} does not answer");
        eprintln!("skipping: Redis at {url} does not answer");
        return None;
    }
    Some(url)
}

pub async fn raw_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every hash and JSON key the rows touch.
pub async fn cleanup(url: &str, project: &str, rows: &[OnlineRow]) {
    let mut c = raw_conn(url).await;
    let mut cmd = redis::cmd("DEL");
    for r in rows {
        cmd.arg(redis_key(project, &r.join_key, &r.entity))
            .arg(r.json_key());
    }
    let _: i64 = cmd.query_async(&mut c).await.unwrap();
}

pub fn unique_project(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t26_{}_{}_{}", std::process::id(), nanos, tag)
}

pub fn row(
    view: &str,
    join_key: &str,
    entity: &str,
    ts: Timestamp,
    values: Vec<(&str, OnlineValue)>,
) -> OnlineRow {
    OnlineRow {
        view: view.into(),
        join_key: join_key.into(),
        entity: entity.into(),
        event_ts: ts,
        values: values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}
