use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// The caller's request broke an OMS rule (unknown order, cancel of a filled order ...).
    #[error("{0}")]
    Oms(#[from] oms::OmsError),
    #[error("risk configuration: {0}")]
    Risk(#[from] risk::RiskError),
    #[error("venue configuration: {0}")]
    Venue(#[from] venue::VenueError),
    #[error("positions: {0}")]
    Positions(#[from] positions::PositionsError),
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// The journal holds an event the core cannot apply: the state on disk is inconsistent.
    #[error("replaying journal seq {seq}: {reason}")]
    Replay { seq: u64, reason: String },
    #[error("the engine has stopped")]
    Stopped,
    #[error("engine snapshots: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    /// A decision failed half-way: the in-memory state no longer matches the journal, so the
    /// engine must stop rather than take more orders.
    #[error("engine state diverged from the journal: {0}")]
    Diverged(String),
}

impl EngineError {
    /// Stable machine-readable code for the HTTP error body.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Oms(e) => e.code(),
            EngineError::Risk(_) => "invalid_risk_limits",
            EngineError::Venue(_) => "invalid_venue_config",
            EngineError::Positions(_) => "position_overflow",
            EngineError::Journal(_) => "journal_unavailable",
            EngineError::Replay { .. } => "journal_inconsistent",
            EngineError::Stopped => "engine_stopped",
            EngineError::Runtime(_) => "engine_snapshot",
            EngineError::Diverged(_) => "engine_inconsistent",
        }
    }

    /// Whether the engine must stop (its state can no longer be trusted).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            EngineError::Diverged(_)
                | EngineError::Journal(_)
                | EngineError::Replay { .. }
                | EngineError::Runtime(_)
        )
    }

    /// Whether the caller caused this (4xx) rather than the platform (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, EngineError::Oms(_) | EngineError::Risk(_))
    }
}
