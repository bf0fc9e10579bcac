//! Where reports go: a local folder by default, an S3 bucket (SeaweedFS) when configured.
//!
//! A report is saved as `<prefix><id>/meta.json` plus one object per rendering
//! (`report.json`, `report.csv`, `report.html`). `meta.json` is written last, so a listing
//! never shows a half-written report. Saves retry with backoff and then fail loudly: an S3 outage
//! is an error the caller sees, never a silently lost report.

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("report store {target}: {message}")]
    Store { target: String, message: String },
    #[error("no report {0:?}")]
    NotFound(String),
    #[error("report {id:?} has no {format} rendering (it has: {available})")]
    NoFormat {
        id: String,
        format: String,
        available: String,
    },
    #[error("configuring the report store: {0}")]
    Config(String),
}

/// One rendering of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn file(self) -> &'static str {
        match self {
            Format::Json => "report.json",
            Format::Csv => "report.csv",
            Format::Html => "report.html",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
}

/// What `GET /reports` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMeta {
    pub id: String,
    /// `pnl`, `tax`, `var`, `stress`, `compliance`, ...
    pub kind: String,
    pub title: String,
    pub created_at: model::Timestamp,
    pub formats: Vec<Format>,
    /// The account the report is about; `None` for reports over several accounts (owner-wide
    /// tax, compliance scans), which only compliance and admin keys may read.
    #[serde(default)]
    pub account: Option<String>,
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct ReportStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    target: String,
    attempts: u32,
    backoff: Duration,
}

impl ReportStore {
    /// Reports under a local folder (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<ReportStore, ReportError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ReportError::Config(format!("{}: {e}", dir.display())))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| ReportError::Config(format!("{}: {e}", dir.display())))?;
        Ok(ReportStore {
            store: Arc::new(fs),
            prefix: String::new(),
            target: dir.display().to_string(),
            attempts: 3,
            backoff: Duration::from_millis(200),
        })
    }

    /// Reports in an S3 bucket. Credentials come from `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` when set (SeaweedFS without credentials accepts any key).
    pub fn s3(endpoint: &str, bucket: &str, prefix: &str) -> Result<ReportStore, ReportError> {
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "trade2026".into());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "trade2026".into());
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_region(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()))
            .with_bucket_name(bucket)
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .build()
            .map_err(|e| ReportError::Config(e.to_string()))?;
        Ok(ReportStore {
            store: Arc::new(s3),
            prefix: prefix.trim_start_matches('/').to_string(),
            target: format!("{endpoint}/{bucket}/{prefix}"),
            attempts: 4,
            backoff: Duration::from_millis(250),
        })
    }

    /// How often and how patiently a save retries (tests shorten it).
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> ReportStore {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// Where reports go, for logs and banners.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn path(&self, id: &str, file: &str) -> Path {
        Path::from(format!("{}{id}/{file}", self.prefix))
    }

    fn err(&self, e: impl std::fmt::Display) -> ReportError {
        ReportError::Store {
            target: self.target.clone(),
            message: e.to_string(),
        }
    }

    async fn put_with_retry(&self, path: &Path, body: Vec<u8>) -> Result<(), ReportError> {
        let mut delay = self.backoff;
        let payload = PutPayload::from(bytes::Bytes::from(body));
        for attempt in 1..=self.attempts {
            match self.store.put(path, payload.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt == self.attempts => {
                    return Err(self.err(format!(
                        "saving {path} failed after {attempt} attempts: {e}"
                    )));
                }
                Err(e) => {
                    tracing::warn!(%path, attempt, error = %e, "report save failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Save every rendering, then the metadata (which makes the report visible).
    pub async fn save(
        &self,
        meta: &ReportMeta,
        renderings: &[(Format, Vec<u8>)],
    ) -> Result<(), ReportError> {
        for (format, body) in renderings {
            self.put_with_retry(&self.path(&meta.id, format.file()), body.clone())
                .await?;
        }
        let meta_json = serde_json::to_vec_pretty(meta).map_err(|e| self.err(e))?;
        self.put_with_retry(&self.path(&meta.id, "meta.json"), meta_json)
            .await
    }

    /// Every saved report, newest first.
    pub async fn list(&self) -> Result<Vec<ReportMeta>, ReportError> {
        let prefix =
            (!self.prefix.is_empty()).then(|| Path::from(self.prefix.trim_end_matches('/')));
        let objects: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for o in objects
            .iter()
            .filter(|o| o.location.filename() == Some("meta.json"))
        {
            let bytes = self.get_bytes(&o.location).await?;
            if let Ok(meta) = serde_json::from_slice::<ReportMeta>(&bytes) {
                out.push(meta);
            }
        }
        out.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn get_bytes(&self, path: &Path) -> Result<Vec<u8>, ReportError> {
        let res = self.store.get(path).await;
        match res {
            Ok(r) => Ok(r.bytes().await.map_err(|e| self.err(e))?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(ReportError::NotFound(path.to_string()))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    pub async fn meta(&self, id: &str) -> Result<ReportMeta, ReportError> {
        let bytes = self
            .get_bytes(&self.path(id, "meta.json"))
            .await
            .map_err(|e| match e {
                ReportError::NotFound(_) => ReportError::NotFound(id.to_string()),
                other => other,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(e))
    }

    /// One rendering of a report.
    pub async fn get(&self, id: &str, format: Format) -> Result<Vec<u8>, ReportError> {
        let meta = self.meta(id).await?;
        if !meta.formats.contains(&format) {
            return Err(ReportError::NoFormat {
                id: id.to_string(),
                format: format!("{format:?}").to_lowercase(),
                available: meta
                    .formats
                    .iter()
                    .map(|f| format!("{f:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.get_bytes(&self.path(id, format.file())).await
    }
}

/// A report id: kind, UTC time and a counter, sortable and safe in object keys.
pub fn new_id(kind: &str, now: model::Timestamp) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = now.to_datetime().format("%Y%m%dT%H%M%S%.6fZ");
    format!("{kind}-{t}-{n}")
}
