use thiserror::Error;

#[derive(Debug, Error)]
pub enum PlatformError {
    #[error("creating data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    #[error("market-data store: {0}")]
    Sinks(#[from] sinks::SinkError),
    #[error("binding {service} on {addr}: {source} (is another trade2026 or program using the port?)")]
    Bind {
        service: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("feed: {0}")]
    Feed(#[from] feeds::FeedError),
    #[error("bad --feed {spec:?}: {reason}")]
    FeedSpec { spec: String, reason: String },
    #[error("a background task failed: {0}")]
    Task(String),
}
