use std::time::Duration;

/// Everything the ClickHouse sink and client can fail with. Messages name the setting to fix
/// (`clickhouse.http_url`, `clickhouse.database`) and show the URL without its password.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("clickhouse.http_url {url:?} is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error(
        "clickhouse.database {name:?} is not usable: use letters, digits and _ (1 to 64, not starting with a digit)"
    )]
    InvalidDatabase { name: String },

    #[error(
        "clickhouse.http_url {url}: ClickHouse did not answer within {waited:?} ({reason}); is the server running and the address right?"
    )]
    Unreachable {
        url: String,
        waited: Duration,
        reason: String,
    },

    #[error(
        "clickhouse.http_url {url}: ClickHouse refused the credentials (code {code}): {message}; check the user and password in the URL (http://user:password@host:8123)"
    )]
    Auth {
        url: String,
        code: u32,
        message: String,
    },

    /// A request reached ClickHouse and failed; `retryable` when waiting may help (the server
    /// starting or shutting down, overloaded, too many parts), not when the request itself is
    /// wrong.
    #[error("clickhouse.http_url {url}: {what} failed (HTTP {status}, code {code}): {message}")]
    Server {
        url: String,
        what: String,
        status: u16,
        code: u32,
        message: String,
        retryable: bool,
    },

    /// The request did not complete (connection refused or reset, timeout): retryable.
    #[error("clickhouse.http_url {url}: {what}: {reason}")]
    Transport {
        url: String,
        what: String,
        reason: String,
    },

    #[error("clickhouse.http_url {url}: unexpected answer to {what}: {reason}")]
    BadAnswer {
        url: String,
        what: String,
        reason: String,
    },

    /// Shutdown was requested while ClickHouse was unreachable: the batch is not written and is
    /// replayed at the next start (nothing is lost; its position was not recorded).
    #[error(
        "stopped while ClickHouse at clickhouse.http_url {url} was unreachable; the batch from journal sequence {first_seq} is written at the next start"
    )]
    Stopped { url: String, first_seq: u64 },

    /// A test's simulated crash ([`crate::Fault`]).
    #[error("simulated crash: {0}")]
    Injected(String),

    #[error("the ClickHouse sink's I/O runtime: {0}")]
    Runtime(String),
}

impl ClickHouseError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClickHouseError::Transport { .. } | ClickHouseError::Unreachable { .. } => true,
            ClickHouseError::Server { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether the error is a wrong setting (URL, database, credentials): the caller exits
    /// nonzero with the message.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            ClickHouseError::InvalidUrl { .. }
                | ClickHouseError::InvalidDatabase { .. }
                | ClickHouseError::Auth { .. }
                | ClickHouseError::Unreachable { .. }
        )
    }
}
