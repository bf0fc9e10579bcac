use thiserror::Error;

/// Why a venue could not be built (from a config or a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VenueError {
    #[error("invalid venue config: {field}: {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
    /// A snapshot written by another version of the venue's state layout.
    #[error("venue snapshot version {found} is not the supported version {expected}")]
    SnapshotVersion { found: u32, expected: u32 },
    /// A snapshot whose content contradicts itself (it was not written by this crate).
    #[error("invalid venue snapshot: {0}")]
    InvalidSnapshot(String),
}
