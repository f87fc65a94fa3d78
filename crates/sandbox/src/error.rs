//! What can go wrong in the sandbox bank.

use disburse_formats::{FormatError, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The pain.001 given to [`crate::answer_file`] could not be read (not a pain.001, broken
    /// XML, a transfer without an amount...).
    #[error("the pain.001 cannot be read: {0}")]
    Pain001(ReadError),
    /// A value cannot go into a valid pain.002 or camt.054 (an id longer than 35 characters, a
    /// negative amount, an account that is not an IBAN...).
    #[error("{field} {value:?} {message}")]
    Invalid {
        field: String,
        value: String,
        message: String,
    },
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ReadError> for SandboxError {
    fn from(e: ReadError) -> Self {
        SandboxError::Pain001(e)
    }
}

impl From<FormatError> for SandboxError {
    fn from(e: FormatError) -> Self {
        SandboxError::Pain001(ReadError::File(e))
    }
}
