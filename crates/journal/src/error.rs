use std::path::PathBuf;

/// Everything that can go wrong in the journal and the bus.
///
/// Callers mostly need one decision: retry/continue, or stop the process. [`JournalError::is_fatal`]
/// answers it: a corrupt record, an I/O or SQLite failure, or a failed writer mean the journal can
/// no longer be trusted (or written), so the binary should stop with the message; everything else
/// (closed, busy, invalid arguments) leaves the journal intact.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    // --- recoverable: the journal itself is fine ---------------------------------------------
    /// The journal was shut down (or its writer is gone); nothing was written.
    #[error("the journal is closed")]
    Closed,
    /// Another process holds the journal's lock file: only one process may own a journal.
    #[error("journal {path} is in use by another process")]
    Locked { path: PathBuf },
    /// A durable consumer can have one active subscription at a time.
    #[error("consumer {name:?} already has an active subscription")]
    ConsumerBusy { name: String },
    /// The subject filter is not a valid NATS subject filter.
    #[error("invalid subject filter {filter:?}: {reason}")]
    InvalidFilter {
        filter: String,
        reason: &'static str,
    },
    /// The durable consumer name is not valid (NATS rules: no whitespace, `.`, `*`, `>`, `/`, `\`).
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumer { name: String, reason: &'static str },
    /// An ack for a sequence this subscription has not delivered yet.
    #[error("cannot ack sequence {seq}: only up to {delivered} has been delivered")]
    AckBeyondDelivered { seq: u64, delivered: u64 },
    /// `StartAt::Resume` needs a durable consumer.
    #[error("an ephemeral subscription cannot resume: it has no stored position")]
    ResumeWithoutDurable,
    /// The event could not be serialized (should not happen for `model::Event`).
    #[error("cannot serialize event: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The record asked for was moved out of the journal into its archive (`journal archive`):
    /// the journal now starts at `archived_through + 1`. History before that is read through
    /// [`crate::HistoryReader`] (what `trade2026 journal export` does).
    #[error(
        "journal sequence {seq} was archived: records 1..={archived_through} were moved to the \
         archive at {location} and are no longer in the journal (the journal starts at {}); \
         read them through the archive (`trade2026 journal export` reads both)",
        archived_through + 1
    )]
    Archived {
        seq: u64,
        archived_through: u64,
        location: String,
    },
    /// `archive` would move events some durable consumer may still need, or there is nothing
    /// known to be safe to move; nothing was changed.
    #[error("refusing to archive the journal: {0}")]
    ArchiveRefused(String),
    /// The archive store could not be read or written (a folder or an S3 bucket); the journal
    /// itself is unchanged by a failed archive step.
    #[error("journal archive {location}: {message}")]
    ArchiveStore { location: String, message: String },

    // --- fatal: stop and tell the operator ---------------------------------------------------
    /// A stored record failed its checksum, does not decode, or is missing from the sequence.
    #[error("journal record {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("journal I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("journal database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal was written by a newer version of this crate.
    #[error("journal schema version {found} is newer than the supported version {supported}")]
    UnsupportedSchema { found: i64, supported: i64 },
    /// An archived segment or the archive's manifest failed its checksum (per-record CRC-32 or
    /// the segment's SHA-256), does not decode, or is not contiguous.
    #[error("journal archive {location}: {name} is damaged: {reason}")]
    ArchiveCorrupt {
        location: String,
        name: String,
        reason: String,
    },
    /// A commit failed earlier; the writer refuses further appends because after a failed fsync
    /// the state on disk is unknown.
    #[error("the journal writer failed and stopped accepting appends: {0}")]
    WriterFailed(String),
}

impl JournalError {
    /// True when the journal can no longer be trusted or written and the process should stop.
    pub fn is_fatal(&self) -> bool {
        match self {
            JournalError::Corrupt { .. }
            | JournalError::Io(_)
            | JournalError::UnsupportedSchema { .. }
            | JournalError::ArchiveCorrupt { .. }
            | JournalError::WriterFailed(_) => true,
            // SQLITE_BUSY / LOCKED only mean "try again"; everything else is the file or disk.
            JournalError::Sqlite(e) => !matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            JournalError::Closed
            | JournalError::Locked { .. }
            | JournalError::ConsumerBusy { .. }
            | JournalError::InvalidFilter { .. }
            | JournalError::InvalidConsumer { .. }
            | JournalError::AckBeyondDelivered { .. }
            | JournalError::ResumeWithoutDurable
            | JournalError::Serialize(_)
            | JournalError::Archived { .. }
            | JournalError::ArchiveRefused(_)
            | JournalError::ArchiveStore { .. } => false,
        }
    }

    /// The opposite of [`JournalError::is_fatal`].
    pub fn is_recoverable(&self) -> bool {
        !self.is_fatal()
    }
}
