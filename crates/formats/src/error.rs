//! Errors shared by every reader in this crate.
//!
//! A bank file can be wrong in two ways, and the caller must treat them differently:
//! - the file as a whole cannot be trusted ([`FormatError`]: not XML, truncated, the wrong kind of
//!   message, an encoding it does not declare). Nothing after it is read; the import is refused.
//! - one transaction in an otherwise good file is wrong ([`LineError`]: an amount that is not a
//!   number, a currency we do not know). That line becomes an exception; the rest is applied.
//!
//! Iterators yield [`ReadError`], which holds one or the other, so the caller can tell them apart
//! with [`ReadError::is_fatal`].

use std::fmt;

/// A problem with a whole file. After it, an iterator yields nothing more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct FormatError {
    /// 1-based line of the file where the problem was found.
    pub line: u64,
    pub kind: FormatErrorKind,
}

impl FormatError {
    pub fn new(line: u64, kind: FormatErrorKind) -> FormatError {
        FormatError { line, kind }
    }
}

/// What is wrong with a whole file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatErrorKind {
    #[error("file is empty")]
    Empty,
    /// The file is an instruction we (or someone) send to a bank, not something a bank answers.
    #[error(
        "this is a payment instruction (pain.001), not a result file (namespace {namespace:?})"
    )]
    PaymentInstruction { namespace: String },
    /// XML whose root element or namespace is not a message this crate reads.
    #[error("unknown message: {0}")]
    UnknownMessage(String),
    /// The bytes are not XML (or not the expected XML at all).
    #[error("not XML: {0}")]
    NotXml(String),
    /// The file ends while elements are still open: it was cut off in transfer or on disk.
    #[error(
        "the file is truncated: it ends inside <{element}> opened on line {opened_line} \
         ({open_elements} elements still open)"
    )]
    Truncated {
        element: String,
        opened_line: u64,
        open_elements: usize,
    },
    /// XML that breaks the rules of XML (mismatched tags, bad entities, ...).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The file is not in the encoding it declares, or declares one we do not read.
    #[error("encoding: {0}")]
    Encoding(String),
    /// A single element or text larger than any bank file needs; refused to keep memory bounded.
    #[error("{0}")]
    TooLarge(String),
    /// The layout of a CSV file does not fit its profile (missing header column, ...).
    #[error("{0}")]
    Layout(String),
    #[error("read error: {0}")]
    Io(String),
}

/// A problem with one transaction line; the rest of the file is still read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, field {field}: {message}")]
pub struct LineError {
    /// 1-based line of the file where the transaction (or CSV record) starts.
    pub line: u64,
    /// The logical field that is wrong: `amount`, `currency`, `value_date`, `status`, ...
    pub field: String,
    pub message: String,
}

impl LineError {
    pub fn new(line: u64, field: &str, message: impl Into<String>) -> LineError {
        LineError {
            line,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// One item of a reader that failed: either the whole file ([`ReadError::File`], fatal, the
/// iterator ends after it) or one line ([`ReadError::Line`], record it and go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    File(FormatError),
    Line(LineError),
}

impl ReadError {
    /// True when the whole file must be refused; false when only this line is bad.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ReadError::File(_))
    }

    pub fn line(&self) -> u64 {
        match self {
            ReadError::File(e) => e.line,
            ReadError::Line(e) => e.line,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::File(e) => write!(f, "file refused: {e}"),
            ReadError::Line(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::File(e) => Some(e),
            ReadError::Line(e) => Some(e),
        }
    }
}

impl From<FormatError> for ReadError {
    fn from(e: FormatError) -> Self {
        ReadError::File(e)
    }
}

impl From<LineError> for ReadError {
    fn from(e: LineError) -> Self {
        ReadError::Line(e)
    }
}

/// A batch that cannot be written as asked: a field a bank would refuse, or the output failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `payout` is the end-to-end id of the transfer at fault, when one transfer is at fault.
    #[error("{}field {field}: {message}", payout.as_ref().map(|p| format!("payout {p}, ")).unwrap_or_default())]
    Invalid {
        payout: Option<String>,
        field: String,
        message: String,
    },
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

impl WriteError {
    pub(crate) fn invalid(payout: Option<&str>, field: &str, message: impl Into<String>) -> Self {
        WriteError::Invalid {
            payout: payout.map(str::to_string),
            field: field.to_string(),
            message: message.into(),
        }
    }
}
