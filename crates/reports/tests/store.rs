//! Reports saved, listed and read back: in a local folder, and for real in an S3 bucket served by
//! SeaweedFS (the store the plan names; `.ci/run` starts `weed mini` and sets TEST_S3_ENDPOINT).
//! An unreachable S3 makes the save fail visibly after its retries.

use std::time::Duration;

use reports::{Format, ReportError, ReportMeta, ReportStore};

fn meta(id: &str) -> ReportMeta {
    ReportMeta {
        id: id.into(),
        kind: "pnl".into(),
        title: "P&L test_account".into(),
        created_at: model::Timestamp::from_secs(1_700_000_000),
        formats: vec![Format::Json, Format::Html],
        account: Some("test_account".into()),
    }
}

async fn round_trip(store: &ReportStore, id: &str) {
    let renderings = vec![
        (Format::Json, br#"{"realized_pnl":"12.5"}"#.to_vec()),
        (Format::Html, b"<html><body>P&amp;L</body></html>".to_vec()),
    ];
    store.save(&meta(id), &renderings).await.unwrap();
    let listed = store.list().await.unwrap();
    assert!(listed.iter().any(|m| m.id == id), "{listed:?}");
    assert_eq!(store.get(id, Format::Json).await.unwrap(), renderings[0].1);
    assert_eq!(store.get(id, Format::Html).await.unwrap(), renderings[1].1);
    assert!(matches!(
        store.get(id, Format::Csv).await,
        Err(ReportError::NoFormat { .. })
    ));
    assert!(matches!(
        store.get("nope", Format::Json).await,
        Err(ReportError::NotFound(_))
    ));
}

#[tokio::test]
async fn local_folder_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReportStore::local(dir.path()).unwrap();
    round_trip(&store, "pnl-local-1").await;
    assert!(dir.path().join("pnl-local-1/report.html").is_file());
}

#[tokio::test]
async fn seaweedfs_s3_round_trip() {
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TEST_S3_ENDPOINT must be set under CI (.ci/run starts SeaweedFS)"
        );
        eprintln!("skipping: TEST_S3_ENDPOINT not set");
        return;
    };
    let id = format!("pnl-s3-{}", std::process::id());
    let store = ReportStore::s3(&endpoint, "trader2026", "reports/").unwrap();
    round_trip(&store, &id).await;
}

#[tokio::test]
async fn an_s3_outage_fails_the_save_visibly_after_retrying() {
    // Nothing listens on port 9 of loopback: every attempt is refused.
    let store = ReportStore::s3("http://127.0.0.1:9", "trader2026", "reports/")
        .unwrap()
        .with_retry(2, Duration::from_millis(10));
    let err = store
        .save(&meta("lost"), &[(Format::Json, b"{}".to_vec())])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("after 2 attempts") && msg.contains("127.0.0.1:9"),
        "{msg}"
    );
}
