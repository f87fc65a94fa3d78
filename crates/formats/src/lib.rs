//! Bank file formats for Disburse: what we send banks and what they send back.
//!
//! Out: [`pain001`] (ISO 20022 pain.001.001.09), bank CSV instruction files
//! ([`bank_csv::write_csv_instructions`]) and printed instruction sheets for manual channels
//! ([`instruction_sheet`]). In: [`results`] readers of pain.002, camt.054 and camt.053, and bank
//! CSV result files ([`bank_csv::read_csv_results`]), all producing [`ResultRecord`]s. Plus the
//! table of bank [`reason_codes`].
//!
//! This crate is pure and streaming: no database, no network, no clock (times are passed in).
//! Readers take `impl BufRead` and hold memory bounded by one element or record, never by the
//! size of the file; writers take `impl Write`. Money is [`disburse_core::Money`], parsed from
//! decimal text, never a float. Only this crate knows bank file layouts.

mod amount;
pub mod bank_csv;
mod error;
pub mod instruction_sheet;
pub mod pain001;
pub mod reason_codes;
pub mod results;
pub mod statements;
mod transfer;
mod xml;

pub use bank_csv::{
    read_csv_results, read_csv_statement, write_csv_instructions, write_export, CsvProfile,
    CsvStatementProfile,
};
pub use error::{FormatError, FormatErrorKind, LineError, ReadError, WriteError};
pub use instruction_sheet::{write_html as write_instruction_sheet, SheetHeader};
pub use pain001::{read_transfers, write as write_pain001, InstructedTransfer, Pain001Header};
pub use reason_codes::{ReasonCategory, ReasonCode};
pub use results::{
    detect, read_camt053, read_camt054, read_pain002, read_xml_results, BankOutcome, Detected,
    GroupStatus, ResultLine, ResultRecord, XmlResults, DETECT_HEAD_LEN,
};
pub use transfer::{BatchSummary, CreditTransfer, CreditorAccount};
