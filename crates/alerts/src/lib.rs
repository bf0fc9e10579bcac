//! The durable compliance-alert store.
//!
//! Alerts are facts in the journal (`compliance_alert` and `alert_acknowledged` on
//! [`FILTER`]); this crate keeps them readable without holding them in memory or re-reading the
//! journal. A journal consumer ([`AlertWriter`], run with `runtime::Runner::start_stored`) folds
//! them into a SQLite file (`<data_dir>/`[`FILE_NAME`]) one transaction per batch, together with
//! the last journal sequence applied, so a restart resumes exactly where it stopped and nothing
//! is applied twice. Readers ([`AlertStore`]) page through the alerts in journal order with
//! filters ([`AlertQuery`]) or look one up by key.
//!
//! One row per alert key: the first `compliance_alert` of a key wins (a key is raised once;
//! a repeat in the journal is ignored), the latest `alert_acknowledged` of a key is its review
//! state (an acknowledgement of an unknown key is ignored, as before).
//!
//! Pagination is by keyset on the journal sequence (the cursor is the last sequence of the
//! page): sequences only grow, so pages never skip or repeat an alert while new ones arrive.
//!
//! The file is derived data: deleting it rebuilds it from the journal.

mod read;
mod schema;
mod write;

use model::Timestamp;
use serde::Serialize;

pub use read::AlertStore;
pub use write::AlertWriter;

/// The subjects the store is built from.
pub const FILTER: &str = "alerts.compliance";

/// The store's file name under a service's data directory.
pub const FILE_NAME: &str = "alerts.db";

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alert store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("alert store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("alert store {path}: schema version {found} is newer than this build ({supported})")]
    Schema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("alert store: stored row does not decode: {0}")]
    Decode(String),
}

/// One alert as stored: the detector's alert (`alert`, as journaled) with the columns queries
/// filter on, and its review state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAlert {
    pub key: String,
    /// The rule (`WASH_TRADE`, `SPOOFING`, ...): the journaled event's `rule`.
    pub rule: String,
    /// The alert's beneficial owner (`alert.owner`), when it names one.
    pub owner: Option<String>,
    /// Every account the alert involves (`alert.accounts`).
    pub accounts: Vec<String>,
    /// The alert's time (the journaled event's `ts`).
    pub ts: Timestamp,
    /// Where the alert is in the journal (also the listing order and the cursor).
    pub journal_seq: u64,
    /// The alert as the detector raised it.
    pub alert: serde_json::Value,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
}

/// Which alerts a page covers. Every filter is optional; they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Exact owner.
    pub owner: Option<String>,
    /// Exact rule.
    pub rule: Option<String>,
    /// Alerts involving at least one of these accounts (`None`: every alert; an empty list
    /// matches none).
    pub accounts: Option<Vec<String>>,
    /// Alert time at or after.
    pub from: Option<Timestamp>,
    /// Alert time before.
    pub to: Option<Timestamp>,
    /// Continue after this journal sequence (exclusive), in the listing's direction.
    pub cursor: Option<u64>,
    /// Most alerts in the page (at least 1).
    pub limit: usize,
    /// Newest first (descending sequences); oldest first otherwise.
    pub newest_first: bool,
}

/// One page and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<u64>,
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
