use model::AccountId;
use thiserror::Error;

/// A refused configuration or admin change (never an order decision: those are
/// [`crate::RiskReject`] values).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RiskError {
    /// A limit value out of range (negative quantity, ...).
    #[error("risk limit {field} at {scope}: {reason}")]
    InvalidLimit {
        scope: String,
        field: &'static str,
        reason: String,
    },
    /// An account-wide limit (open orders, order rate, gross exposure, daily loss) set at a
    /// symbol scope, where it would have no meaning.
    #[error("risk limit {field} is account-wide and cannot be set at {scope}")]
    AccountWideLimitAtSymbolScope { scope: String, field: &'static str },
    #[error("the kill switch of account {0} is not engaged")]
    KillSwitchNotEngaged(AccountId),
    /// A journaled `config_changed` (section risk) whose payload cannot be decoded.
    #[error("cannot decode risk change: {0}")]
    BadChange(String),
    /// A snapshot written by another version of the risk state layout.
    #[error("risk snapshot version {found} is not the supported version {expected}")]
    SnapshotVersion { found: u32, expected: u32 },
}

impl RiskError {
    /// Stable machine-readable code (snake_case) for the admin API.
    pub fn code(&self) -> &'static str {
        match self {
            RiskError::InvalidLimit { .. } => "invalid_limit",
            RiskError::AccountWideLimitAtSymbolScope { .. } => "account_wide_limit_at_symbol_scope",
            RiskError::KillSwitchNotEngaged(_) => "kill_switch_not_engaged",
            RiskError::BadChange(_) => "bad_change",
            RiskError::SnapshotVersion { .. } => "snapshot_version",
        }
    }
}
