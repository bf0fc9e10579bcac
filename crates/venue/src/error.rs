use thiserror::Error;

/// Why a venue could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VenueError {
    #[error("invalid venue config: {field}: {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
}
