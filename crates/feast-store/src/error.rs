use std::time::Duration;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum FeastStoreError {
    #[error("invalid online-store connection string {input:?}: {reason}")]
    InvalidConnection { input: String, reason: String },
    #[error("invalid online row (view {view:?}, entity {entity:?}): {reason}")]
    InvalidRow {
        view: String,
        entity: String,
        reason: String,
    },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    UnexpectedReply(String),
    /// `write_with_retry` gave up; the caller still holds the rows and should retry them later.
    #[error("online store unavailable: gave up after {attempts} attempts in {elapsed:?}: {last}")]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last: Box<FeastStoreError>,
    },
}

impl FeastStoreError {
    /// True for failures that can heal by themselves (server down, restarting, loading its
    /// dataset, a dropped connection, a timeout); false for bad input or a server that rejects
    /// the command, which retrying would only repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            FeastStoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || matches!(
                        e.code(),
                        Some(
                            "LOADING"
                                | "BUSY"
                                | "TRYAGAIN"
                                | "MASTERDOWN"
                                | "CLUSTERDOWN"
                                | "READONLY"
                        )
                    )
            }
            FeastStoreError::GaveUp { .. } => true,
            _ => false,
        }
    }
}
