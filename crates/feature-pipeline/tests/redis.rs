//! With a Redis online store: after a crash (the newest snapshot lost, so a longer tail is
//! replayed) the store converges to exactly the rows a pipeline that never stopped serves.
//!
//! Needs `TEST_REDIS_URL` (`redis://host:port`); skipped without it, except under `CI=true`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::service::{Running, config, keys, start};
use common::{Shape, Universe, random_journal};
use journal::{Bus, InProcessBus, Journal};

fn redis_url() -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        assert!(!ci, "CI=true but TEST_REDIS_URL is not set");
        eprintln!("skipping: TEST_REDIS_URL not set");
        return None;
    };
    if command(&addr(&url), &[b"PING"]).is_none() {
        assert!(!ci, "CI=true but Redis at {url} does not answer");
        eprintln!("skipping: Redis at {url} does not answer");
        return None;
    }
    Some(url)
}

fn addr(url: &str) -> String {
    url.trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap()
        .rsplit('@')
        .next()
        .unwrap()
        .to_string()
}

/// One RESP command; the reply as text (`None` for a nil or a failure).
fn command(addr: &str, args: &[&[u8]]) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1 << 16];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        let Some((head, rest)) = text.split_once("\r\n") else {
            continue;
        };
        match head.as_bytes().first() {
            Some(b'+' | b':') => return Some(head[1..].to_string()),
            Some(b'-') => return None,
            Some(b'$') if head == "$-1" => return None,
            Some(b'$') => {
                let len: usize = head[1..].parse().ok()?;
                if rest.len() >= len {
                    return Some(rest[..len].to_string());
                }
            }
            _ => return None,
        }
    }
}

/// For every entity the pipeline serves: the JSON document of its row as served, and the one
/// in Redis (compared as text: parsing would round some floats).
fn compare(p: &Running, u: &Universe, redis: &str) -> Vec<(String, String, Option<String>)> {
    u.entities()
        .into_iter()
        .filter_map(|(view, entity)| {
            let row = p.svc.row(view, &entity)?;
            let served = feature_pipeline::online_row(&row)?.json_doc();
            let key = feast_store::json_key(view, &entity);
            let doc = command(redis, &[b"GET", key.as_bytes()]);
            Some((key, served, doc))
        })
        .collect()
}

/// Waits until Redis holds exactly the served row of every entity.
async fn converged(p: &Running, u: &Universe, redis: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = compare(p, u, redis);
        let differ: Vec<_> = rows
            .iter()
            .filter(|(_, s, d)| d.as_ref() != Some(s))
            .collect();
        if differ.is_empty() && p.svc.pending_rows() == 0 {
            return rows.len();
        }
        assert!(
            Instant::now() < deadline,
            "Redis never matched the served rows: {:?}",
            differ.first()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cleanup(redis: &str, project: &str, u: &Universe) {
    for (view, entity) in u.entities() {
        let join_key = features::view(view).unwrap().entity;
        command(
            redis,
            &[b"DEL", feast_store::json_key(view, &entity).as_bytes()],
        );
        command(
            redis,
            &[b"DEL", &feast_store::redis_key(project, join_key, &entity)],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_redis_converges_to_the_rows_of_an_uninterrupted_run() {
    let Some(url) = redis_url() else { return };
    let redis = addr(&url);
    // JSON documents are not per project: names unique to this run keep runs apart.
    let tag = format!(
        "T{}X{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 100_000)
    );
    let u = Universe::named(&tag, &["AAA.sim", "AAA.alt", "BBB.sim"], 2);
    let project = format!("t26fp{}", tag.to_lowercase());
    let mut cfg = config(Some(url.clone()));
    cfg.project = project.clone();
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(&dir.path().join("events.db")).unwrap();
    let bus = InProcessBus::new(journal.clone());
    let (keys, _) = keys(dir.path());
    // Strictly increasing event times: a row changed by a late event keeps the watermark, so
    // its event time equals the one already written, and newest-wins (Feast's rule) skips it
    // until the watermark moves on (see the crate docs).
    let shape = Shape {
        late: false,
        ..Shape::new(21, 2_600)
    };
    let events = random_journal(&u, shape);
    let data = dir.path().join("data");

    bus.publish_all(events[..1_600].to_vec()).await.unwrap();
    let first = start(&bus, &data, &keys, cfg.clone()).await;
    first.caught_up(1_600).await;
    let n = converged(&first, &u, &redis).await;
    assert!(n >= 10, "{n} entities");
    bus.publish_all(events[1_600..].to_vec()).await.unwrap();
    first.caught_up(2_600).await;
    let served_before: Vec<String> = compare(&first, &u, &redis)
        .into_iter()
        .map(|(k, s, _)| format!("{k} {s}"))
        .collect();
    first.stop().await;

    // The crash: the newest snapshot (the one taken at the stop) is lost.
    let snaps = data.join("snapshots").join(feature_pipeline::CONSUMER);
    let mut files: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    std::fs::remove_file(files.last().unwrap()).unwrap();

    let second = start(&bus, &data, &keys, cfg).await;
    let restored_at = second.svc.consumer().snapshot_seq();
    assert!(
        restored_at > 0 && restored_at < 2_600,
        "restored at {restored_at}"
    );
    second.caught_up(2_600).await;
    converged(&second, &u, &redis).await;
    let served_after: Vec<String> = compare(&second, &u, &redis)
        .into_iter()
        .map(|(k, s, _)| format!("{k} {s}"))
        .collect();
    assert_eq!(served_after, served_before);
    let status = second.svc.status(model::Timestamp::now());
    assert!(status.online_store.rows_written > 0, "{status:?}");
    assert_eq!(status.online_store.pending_rows, 0);
    second.stop().await;
    cleanup(&redis, &project, &u);
}
