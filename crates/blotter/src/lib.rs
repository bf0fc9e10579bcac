//! The blotter: the platform's record of every order and fill, for reading.
//!
//! The trading engine keeps only live orders in memory; history lives here. A journal consumer
//! ([`BlotterWriter`]) folds order and fill events into a SQLite file (`blotter.db`) after they
//! are durable in the journal, in one transaction per batch together with the last sequence
//! applied, so a restart resumes exactly where it stopped and nothing is applied twice. The
//! gateway answers `GET /orders`, `/orders/{id}` and `/fills` from here ([`Blotter`]), off the
//! engine task and paginated, so a big read never stalls trading and an answer never shows
//! something a crash could take back.
//!
//! Pagination is by keyset (a cursor is the last id of the page): ids only grow, so pages never
//! skip or repeat an order while new orders arrive.
//!
//! The blotter also keeps the durable idempotency index: `(account, client_order_id) -> order`
//! for [`IDEMPOTENCY_WINDOW_SECS`] (configurable), which covers repeats older than what the
//! engine remembers in memory.
//!
//! The file is derived data: deleting it rebuilds it from the journal.

mod positions_view;
mod read;
mod schema;
mod write;

pub use positions_view::PositionsView;
pub use read::{Blotter, FillQuery, OrderQuery, Page, StatusFilter};
pub use write::BlotterWriter;

/// How long the blotter remembers a client order id by default (24 hours).
pub const IDEMPOTENCY_WINDOW_SECS: u64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum BlotterError {
    #[error("blotter {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("blotter {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blotter {path}: schema version {found} is newer than this build ({supported})")]
    Schema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("blotter: stored row does not decode: {0}")]
    Decode(String),
    /// An event that does not fit the stored order: the journal and the blotter disagree.
    #[error("blotter: event at journal sequence {seq} does not fit order {order_id}: {reason}")]
    Inconsistent {
        seq: u64,
        order_id: u64,
        reason: String,
    },
    #[error("blotter reader task failed: {0}")]
    Task(String),
}
