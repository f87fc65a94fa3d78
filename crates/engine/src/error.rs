use disburse_store::StoreError;

/// What a use case can answer besides success. Each message is one line that names what was
/// wrong: the field, the record, the rule.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Input that can never be right: bad money text, a bad IBAN, an unknown currency.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("unknown {what} {id:?}")]
    NotFound { what: &'static str, id: String },
    /// A business rule said no: insufficient balance, a live payout, a conflicting result.
    #[error("refused: {0}")]
    Refused(String),
    #[error("configuration: {0}")]
    Config(String),
    /// Someone else is doing it right now (another importer holds the file's claim); nothing
    /// was changed, and trying again later is right.
    #[error("busy: {0}")]
    Busy(String),
    #[error("account key: {0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn invalid(field: &'static str, message: impl ToString) -> EngineError {
        EngineError::Invalid {
            field,
            message: message.to_string(),
        }
    }
}

/// Stored data that is not what the system wrote (a state, an id or an amount that does not
/// parse): the store's `Corrupt`, never a refusal.
pub(crate) fn corrupt(e: impl ToString) -> EngineError {
    EngineError::Store(StoreError::Corrupt(e.to_string()))
}

/// A business rule said no, in the rule's own words.
pub(crate) fn refused(e: impl ToString) -> EngineError {
    EngineError::Refused(e.to_string())
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Store(StoreError::Sql(e))
    }
}
