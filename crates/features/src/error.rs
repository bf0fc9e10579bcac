use thiserror::Error;

/// Everything this crate can refuse. Event folding itself never fails (see
/// [`crate::FeatureEngine::on_event`]); errors come from user input: view names and CSV files.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeaturesError {
    #[error(
        "unknown feature view {0:?} (known: market_features, order_features, position_features, position_symbol_features)"
    )]
    UnknownView(String),
    /// A problem in an entities CSV. `line` is 1-based and counts the header as line 1.
    #[error("entities csv line {line}, column {column}: {message}")]
    Csv {
        line: u64,
        column: String,
        message: String,
    },
}
