use thiserror::Error;

/// Why a value could not be constructed. The message names the field and the offending input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("{field}: {reason} (got {input:?})")]
    Invalid {
        field: &'static str,
        reason: &'static str,
        input: String,
    },
}

impl ModelError {
    pub fn invalid(field: &'static str, reason: &'static str, input: impl ToString) -> Self {
        ModelError::Invalid {
            field,
            reason,
            input: input.to_string(),
        }
    }

    /// The field that failed validation.
    pub fn field(&self) -> &'static str {
        match self {
            ModelError::Invalid { field, .. } => field,
        }
    }
}
