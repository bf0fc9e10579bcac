use thiserror::Error;

#[derive(Debug, Error)]
pub enum FeedError {
    #[error("feed spec {spec:?}: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    BadRecord {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("the event receiver was dropped")]
    ReceiverGone,
}
