//! Running the pipeline over a real journal, and calling its routes.

use std::path::Path;
use std::time::Duration;

use auth::{Accounts, AllMarker, ApiKeys, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use feature_pipeline::{EngineParams, FeatureService, PipelineConfig, PipelineError};
use journal::InProcessBus;
use runtime::{ConsumerMetrics, Runner, SnapshotPolicy};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub struct Running {
    pub svc: FeatureService,
    pub router: Router,
    pub metrics: telemetry::Metrics,
    task: JoinHandle<Result<(), PipelineError>>,
    shutdown: CancellationToken,
}

pub fn keys(dir: &Path) -> (ApiKeys, String) {
    let keys = ApiKeys::open(&dir.join("api_keys.json")).unwrap();
    let admin = keys
        .create_ephemeral(Role::Admin, Accounts::All(AllMarker::All))
        .unwrap();
    (keys, admin)
}

pub fn config(online_store: Option<String>) -> PipelineConfig {
    PipelineConfig {
        project: "t26test".into(),
        online_store,
        materialize_every: Duration::from_secs(3_600),
        stale_after: Duration::from_secs(300),
        engine: EngineParams::default(),
    }
}

/// Snapshots every 500 events (and at shutdown), three kept.
pub fn policy() -> SnapshotPolicy {
    SnapshotPolicy {
        every_events: 500,
        every: Duration::from_secs(3_600),
        keep: 3,
    }
}

pub async fn start(
    bus: &InProcessBus,
    data_dir: &Path,
    keys: &ApiKeys,
    config: PipelineConfig,
) -> Running {
    let shutdown = CancellationToken::new();
    let metrics = telemetry::Metrics::new();
    let runner = Runner::new(
        bus.clone(),
        ConsumerMetrics::register(&metrics),
        shutdown.clone(),
    );
    let (svc, task) = feature_pipeline::start(
        &runner,
        data_dir,
        policy(),
        config,
        &metrics,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let router = feature_pipeline::router(svc.clone(), keys.clone());
    Running {
        svc,
        router,
        metrics,
        task,
        shutdown,
    }
}

impl Running {
    /// Waits until the consumer has applied the journal through `seq`.
    pub async fn caught_up(&self, seq: u64) {
        self.svc
            .consumer()
            .wait_for(seq, Duration::from_secs(60))
            .await
            .unwrap();
    }

    /// A clean stop: the consumer writes its last snapshot.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// `(status, body)` of a request; `key` is sent as a bearer token.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Body::from(body.unwrap_or("").to_string()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

/// A path segment with `|` escaped.
pub fn segment(s: &str) -> String {
    s.replace('|', "%7C")
}
