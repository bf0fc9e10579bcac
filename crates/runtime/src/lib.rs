//! The service runtime: what every trade2026 service shares instead of copying.
//!
//! - [`background`]: the lower-priority runtime the consumers run on, off the order path;
//! - [`consumer`]: the consumer loop over the [`journal::Bus`], with restart from the newest
//!   snapshot (or the consumer's own stored position) plus the journal tail, checkpoints, a read
//!   barrier and per-consumer metrics;
//! - [`partition`]: partitioned replicas (replica `i` of `N` folds the events of its keys);
//! - [`snapshot`]: versioned, checksummed, atomically written snapshot files;
//! - [`http`]: the HTTP host (bind, `/health` with consumer readiness, `/metrics`, the JSON
//!   error fallback, graceful shutdown), the [`Caller`] extractor with its account scope, the one
//!   parser for query parameters and times, and the one JSON-body parser with its error mapping.
//!
//! A new service is a small crate: a pure core, a [`Consumer`] that feeds it, and an axum router
//! whose handlers take a [`Caller`] and [`Params`].

pub mod background;
pub mod consumer;
pub mod guard;
pub mod http;
pub mod openapi;
pub mod partition;
pub mod snapshot;
pub mod strict;

pub use consumer::{
    Consumer, ConsumerHandle, ConsumerMetrics, Lagging, ReplayError, Restored, Runner,
    STORE_LINGER, Snapshot, SnapshotPolicy, Spec, StoredPosition, replay, restore,
};
pub use http::{
    Caller, ConsumerStatus, Params, Probe, Scope, parse_json, parse_time, percent_encode,
};
pub use partition::{Partition, PartitionKey, Partitioning};
pub use snapshot::{SnapshotStore, fingerprint};

/// Errors of the runtime (a consumer's own error is carried inside [`RuntimeError::Consumer`]).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("partition {spec:?}: {reason}")]
    Partition { spec: String, reason: String },
    #[error("snapshot of {consumer}: {reason}")]
    Snapshot { consumer: String, reason: String },
    #[error("consumer {consumer}: {source}")]
    Bus {
        consumer: &'static str,
        #[source]
        source: journal::JournalError,
    },
    #[error("consumer {consumer} at journal sequence {seq}: {source}")]
    Consumer {
        consumer: &'static str,
        seq: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "{service}: cannot listen on {addr}: {source} (is another trade2026 or program using the port?)"
    )]
    Bind {
        service: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{service} http server: {source}")]
    Serve {
        service: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn consumer(
        consumer: &'static str,
        seq: u64,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> RuntimeError {
        RuntimeError::Consumer {
            consumer,
            seq,
            source: Box::new(e),
        }
    }
}
