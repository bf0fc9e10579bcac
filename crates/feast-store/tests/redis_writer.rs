//! The writer against a real Redis (`TEST_REDIS_URL`; required under `CI=true`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{cleanup, raw_conn, redis_url, row, unique_project};
use feast_store::{
    FeastStoreError, Freshness, OnlineStoreWriter, OnlineValue, RetryPolicy, WriterOptions,
    redis_key,
};
use model::Timestamp;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn hgetall_hex(url: &str, key: &[u8]) -> BTreeMap<String, String> {
    let mut c = raw_conn(url).await;
    let m: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    m.into_iter().map(|(k, v)| (hex(&k), hex(&v))).collect()
}

/// Spec section 6: the hash Feast itself wrote for BTCUSDT, byte for byte (with project
/// `trade2026` swapped for a unique one, so the key is ours; its prefix is checked too).
#[tokio::test]
async fn stores_the_worked_example_bytes() {
    let Some(url) = redis_url().await else { return };
    let project = unique_project("bytes");
    let w = OnlineStoreWriter::connect(&url).await.unwrap();
    let ts = Timestamp::parse_rfc3339("2026-01-02T03:04:05.678901Z").unwrap();
    let rows = vec![row(
        "market_features",
        "symbol",
        "BTCUSDT",
        ts,
        vec![
            ("last_price", OnlineValue::F64(97123.5)),
            ("vwap_5m", OnlineValue::F64(97100.25)),
            ("volume_5m", OnlineValue::F64(12.5)),
            ("trade_count_5m", OnlineValue::I64(345)),
            ("spread_bps", OnlineValue::F64(0.75)),
        ],
    )];
    let stats = w.write(&project, &rows).await.unwrap();
    assert_eq!((stats.written, stats.skipped_stale), (1, 0));

    let key = redis_key(&project, "symbol", "BTCUSDT");
    assert!(
        hex(&key).starts_with("01000000020000000600000073796d626f6c020000000700000042544355534454")
    );
    let got = hgetall_hex(&url, &key).await;
    let want: BTreeMap<String, String> = [
        ("fe6e2789", "290000000038b6f740"),
        ("8816e0da", "2900000000c4b4f740"),
        ("1bfdbc6a", "290000000000002940"),
        ("c9d9ac07", "20d902"),
        ("ca2f717d", "29000000000000e83f"),
        (
            "5f74733a6d61726b65745f6665617475726573",
            "08a5ebdcca061088eadcc302",
        ),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);

    let mut c = raw_conn(&url).await;
    let doc: String = redis::cmd("GET")
        .arg("feast:market_features:BTCUSDT")
        .query_async(&mut c)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["entity"], "BTCUSDT");
    assert_eq!(doc["values"]["trade_count_5m"], 345);
    assert_eq!(doc["event_ts"], "2026-01-02T03:04:05.678901000Z");
    cleanup(&url, &project, &rows).await;
}

/// Older or equal event times never replace newer ones, across calls and inside one batch;
/// the JSON document follows the hash. Also covers pre-epoch timestamps (negative protobuf
/// seconds, decoded by the Lua script).
#[tokio::test]
async fn newer_timestamp_is_never_overwritten_atomic_script() {
    newest_wins(Freshness::AtomicScript).await;
}

#[tokio::test]
async fn newer_timestamp_is_never_overwritten_read_then_write() {
    newest_wins(Freshness::ReadThenWrite).await;
}

#[tokio::test]
async fn newer_timestamp_is_never_overwritten_sole_writer() {
    newest_wins(Freshness::SoleWriter).await;
}

/// The sole writer after a restart: a new writer (empty memory) reads what the previous run
/// stored before deciding, so an older row never replaces it, while a remembered slot costs no
/// read round trip.
#[tokio::test]
async fn sole_writer_reads_what_an_earlier_run_stored() {
    let Some(url) = redis_url().await else { return };
    let project = unique_project("sole_restart");
    let opts = || WriterOptions {
        freshness: Freshness::SoleWriter,
        ..WriterOptions::default()
    };
    let mk = |view: &str, ts: i64, v: f64| {
        row(
            view,
            "symbol",
            "ADAUSDT",
            Timestamp::from_nanos(ts),
            vec![("last_price", OnlineValue::F64(v))],
        )
    };
    let last_price = |url: String, project: String| async move {
        let mut c = raw_conn(&url).await;
        let v: Vec<u8> = redis::cmd("HGET")
            .arg(redis_key(&project, "symbol", "ADAUSDT"))
            .arg(&feast_store::field_name("market_features", "last_price")[..])
            .query_async(&mut c)
            .await
            .unwrap();
        hex(&v)
    };
    let t = 1_767_323_045_000_000_000i64;
    let first = OnlineStoreWriter::new(&url, opts()).unwrap();
    let s = first
        .write(&project, &[mk("market_features", t, 2.0)])
        .await
        .unwrap();
    assert_eq!(s.written, 1);
    // Remembered: the next write has no read round trip (one pipeline: the HSET and MSET).
    let s = first
        .write(&project, &[mk("market_features", t + 1, 3.0)])
        .await
        .unwrap();
    assert_eq!((s.written, s.pipelines), (1, 1));
    drop(first);

    // "Restart": a new writer must not overwrite the stored t+1 with t.
    let second = OnlineStoreWriter::new(&url, opts()).unwrap();
    let s = second
        .write(
            &project,
            &[mk("market_features", t, 9.0), mk("order_features", t, 1.0)],
        )
        .await
        .unwrap();
    assert_eq!((s.written, s.skipped_stale), (1, 1), "{s:?}");
    assert_eq!(
        last_price(url.clone(), project.clone()).await,
        "290000000000000840"
    );
    let s = second
        .write(&project, &[mk("market_features", t + 2, 4.0)])
        .await
        .unwrap();
    assert_eq!(s.written, 1);
    assert_eq!(
        last_price(url.clone(), project.clone()).await,
        "290000000000001040"
    );
    cleanup(
        &url,
        &project,
        &[mk("market_features", 0, 0.0), mk("order_features", 0, 0.0)],
    )
    .await;
}

async fn newest_wins(freshness: Freshness) {
    let Some(url) = redis_url().await else { return };
    let project = unique_project(&format!("newest_{freshness:?}"));
    let opts = WriterOptions {
        freshness,
        ..WriterOptions::default()
    };
    let w = OnlineStoreWriter::new(&url, opts.clone()).unwrap();
    let mk = |ts: i64, v: f64| {
        row(
            "market_features",
            "symbol",
            "ETHUSDT",
            Timestamp::from_nanos(ts),
            vec![("last_price", OnlineValue::F64(v))],
        )
    };
    let read = |url: String, project: String| async move {
        let mut c = raw_conn(&url).await;
        let key = redis_key(&project, "symbol", "ETHUSDT");
        let v: Vec<u8> = redis::cmd("HGET")
            .arg(&key)
            .arg(&feast_store::field_name("market_features", "last_price")[..])
            .query_async(&mut c)
            .await
            .unwrap();
        let doc: String = redis::cmd("GET")
            .arg("feast:market_features:ETHUSDT")
            .query_async(&mut c)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        (hex(&v), doc["values"]["last_price"].as_f64().unwrap())
    };
    let t = 1_767_323_045_678_901_000i64;

    let s = w.write(&project, &[mk(t, 2.0)]).await.unwrap();
    assert_eq!((s.written, s.skipped_stale), (1, 0));
    // One nanosecond older, then equal: both skipped.
    let s = w
        .write(&project, &[mk(t - 1, 1.0), mk(t, 3.0)])
        .await
        .unwrap();
    assert_eq!((s.written, s.skipped_stale), (0, 2));
    assert_eq!(
        read(url.clone(), project.clone()).await,
        ("290000000000000040".to_string(), 2.0)
    );
    // In one batch: newer then older -> the newer stays.
    let s = w
        .write(&project, &[mk(t + 10, 5.0), mk(t + 5, 4.0)])
        .await
        .unwrap();
    assert_eq!((s.written, s.skipped_stale), (1, 1));
    assert_eq!(read(url.clone(), project.clone()).await.1, 5.0);
    // One nanosecond newer (same second) wins.
    let s = w.write(&project, &[mk(t + 11, 6.0)]).await.unwrap();
    assert_eq!(s.written, 1);
    assert_eq!(read(url.clone(), project.clone()).await.1, 6.0);
    cleanup(&url, &project, &[mk(0, 0.0)]).await;
    // The cleanup deleted keys behind the writer's back: a `SoleWriter` would (rightly, as the
    // only writer) still compare against what it wrote, so start a new writer.
    let w = OnlineStoreWriter::new(&url, opts).unwrap();

    // Pre-epoch: -1.5 s is older than -0.5 s, which is older than the epoch.
    let s = w.write(&project, &[mk(-1_500_000_000, 1.0)]).await.unwrap();
    assert_eq!(s.written, 1);
    let s = w.write(&project, &[mk(-2_000_000_000, 0.5)]).await.unwrap();
    assert_eq!(
        s.skipped_stale, 1,
        "older negative timestamp must be skipped"
    );
    let s = w.write(&project, &[mk(-500_000_000, 2.0)]).await.unwrap();
    assert_eq!(s.written, 1, "newer negative timestamp must win");
    let s = w.write(&project, &[mk(1, 7.0)]).await.unwrap();
    assert_eq!(s.written, 1);
    assert_eq!(read(url.clone(), project.clone()).await.1, 7.0);
    cleanup(&url, &project, &[mk(0, 0.0)]).await;
}

/// Two views on the same entity share one hash and do not disturb each other; a TTL option
/// sets EXPIRE on the hash; metrics count rows.
#[tokio::test]
async fn views_share_the_entity_hash_atomic_script() {
    views_share(Freshness::AtomicScript).await;
}

#[tokio::test]
async fn views_share_the_entity_hash_read_then_write() {
    views_share(Freshness::ReadThenWrite).await;
}

#[tokio::test]
async fn views_share_the_entity_hash_sole_writer() {
    views_share(Freshness::SoleWriter).await;
}

async fn views_share(freshness: Freshness) {
    let Some(url) = redis_url().await else { return };
    let project = unique_project(&format!("share_{freshness:?}"));
    let opts = WriterOptions {
        freshness,
        key_ttl_seconds: Some(600),
        rows_per_call: 1, // exercise several calls per pipeline
        calls_per_pipeline: 2,
        ..WriterOptions::default()
    };
    let w = OnlineStoreWriter::new(&url, opts).unwrap();
    let ts = Timestamp::from_secs(1_767_323_045);
    let rows = vec![
        row(
            "market_features",
            "symbol",
            "SOLUSDT",
            ts,
            vec![("a", OnlineValue::F64(1.0))],
        ),
        row(
            "order_features",
            "symbol",
            "SOLUSDT",
            ts,
            vec![("b", OnlineValue::Str("x".into()))],
        ),
        row(
            "market_features",
            "symbol",
            "XRPUSDT",
            ts,
            vec![("a", OnlineValue::Null)],
        ),
    ];
    let s = w.write(&project, &rows).await.unwrap();
    assert_eq!(s.written, 3);
    if freshness == Freshness::AtomicScript {
        assert_eq!(
            s.pipelines, 2,
            "3 rows, 1 row per call, 2 calls per pipeline"
        );
    }
    let got = hgetall_hex(&url, &redis_key(&project, "symbol", "SOLUSDT")).await;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[&hex(&feast_store::field_name("order_features", "b"))],
        "120178"
    );
    let xrp = hgetall_hex(&url, &redis_key(&project, "symbol", "XRPUSDT")).await;
    assert_eq!(
        xrp[&hex(&feast_store::field_name("market_features", "a"))],
        "",
        "null is the empty Value"
    );
    let mut c = raw_conn(&url).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(redis_key(&project, "symbol", "SOLUSDT"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((1..=600).contains(&ttl), "ttl {ttl}");
    let m = w.metrics().snapshot();
    assert_eq!((m.attempts, m.failures, m.rows_written), (1, 0, 3));
    cleanup(&url, &project, &rows).await;
}

/// A closed port: every attempt fails, the writer backs off and then gives up with a clear
/// error, and the metrics say so. Needs no Redis.
#[tokio::test]
async fn closed_port_gives_up_visibly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // listener dropped: nothing listens there now
    let w = OnlineStoreWriter::new(&format!("127.0.0.1:{port}"), WriterOptions::default()).unwrap();
    let rows = vec![row(
        "market_features",
        "symbol",
        "BTCUSDT",
        Timestamp::from_secs(1),
        vec![("a", OnlineValue::F64(1.0))],
    )];
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        deadline: Duration::from_secs(10),
    };
    let err = w.write_with_retry("p", &rows, &policy).await.unwrap_err();
    match &err {
        FeastStoreError::GaveUp { attempts, last, .. } => {
            assert_eq!(*attempts, 3);
            assert!(last.is_transient(), "{last}");
        }
        other => panic!("expected GaveUp, got {other}"),
    }
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    let m = w.metrics().snapshot();
    assert_eq!(
        (m.attempts, m.failures, m.gave_up, m.rows_written),
        (3, 3, 1, 0)
    );

    // Bad input is not retried: it fails on the spot, without an attempt.
    let bad = vec![row("a:b", "symbol", "X", Timestamp::from_secs(1), vec![])];
    let err = w.write_with_retry("p", &bad, &policy).await.unwrap_err();
    assert!(matches!(err, FeastStoreError::InvalidRow { .. }), "{err}");
    assert_eq!(w.metrics().snapshot().attempts, 3);
}

/// Redis going away and coming back: a private `redis-server` on a free port is stopped while
/// the writer holds a connection; writes fail (counted), then the same writer catches up with
/// the rows the caller kept once the server is back. Needs the `redis-server` binary (CI
/// installs it; required there).
#[tokio::test]
async fn catches_up_after_redis_restart() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!ci, "CI=true but redis-server is not installed");
        eprintln!("skipping: no redis-server binary");
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = || {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        KillOnDrop(child)
    };
    let url = format!("redis://127.0.0.1:{port}");
    let server = start();
    wait_up(&url).await;
    let w = OnlineStoreWriter::new(&url, WriterOptions::default()).unwrap();
    let mk = |secs: i64, v: f64| {
        row(
            "market_features",
            "symbol",
            "BTCUSDT",
            Timestamp::from_secs(secs),
            vec![("a", OnlineValue::F64(v))],
        )
    };
    assert_eq!(w.write("p", &[mk(1, 1.0)]).await.unwrap().written, 1);

    drop(server); // kill: the server and its data are gone
    let quick = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(5),
        deadline: Duration::from_secs(5),
    };
    let pending = vec![mk(2, 2.0)];
    let err = w.write_with_retry("p", &pending, &quick).await.unwrap_err();
    assert!(matches!(err, FeastStoreError::GaveUp { .. }), "{err}");

    let _server = start();
    wait_up(&url).await;
    // The caller kept `pending` and retries on its next cycle; the writer reconnects.
    let s = w
        .write_with_retry("p", &pending, &RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(s.written, 1);
    let mut c = raw_conn(&url).await;
    let doc: String = redis::cmd("GET")
        .arg("feast:market_features:BTCUSDT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(doc.contains("\"a\":2.0"), "{doc}");
    let m = w.metrics().snapshot();
    assert!(
        m.failures >= 2 && m.gave_up == 1 && m.reconnects >= 2,
        "{m:?}"
    );
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_up(url: &str) {
    for _ in 0..100 {
        if let Ok(c) = redis::Client::open(url)
            && let Ok(mut c) = c.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server at {url} did not come up");
}
