//! Banks that do not speak ISO 20022 send and take CSV files of their own layout, in their own
//! encoding (often GBK in mainland China) and with their own words for "paid" and "failed".
//! A [`CsvProfile`], written in TOML, describes one bank's layout, so a new bank is a profile and
//! not code. [`read_csv_results`] turns a result file into the same [`ResultRecord`]s as the
//! ISO 20022 readers; [`write_csv_instructions`] writes the outgoing payment file.
//!
//! Amounts are decimal text turned into [`Money`] by [`Money::parse`] after the bank's
//! separators are normalised, never through a float. Errors name the physical line and the
//! field: `line 7, field amount: ...`.
//!
//! A bank's account statement in CSV has a layout of its own, a [`CsvStatementProfile`]
//! ([`read_csv_statement`]).
//!
//! Example profiles ship in `crates/formats/profiles/` (`englishbank.toml`, `chinabank.toml`,
//! `englishbank-statement.toml`, `myanmarbank-statement.toml`).
//!
//! Rooms: [`profile`] (the layout, amounts), `lines` (records with their lines, shared by the
//! readers), [`results`], [`statement`], [`instructions`] (the files we write).
//!
//! Hostile files: a record longer than [`RECORD_BYTES_MAX`] (1 MiB) refuses the file, naming the
//! line the record starts on, before the parser holds it; a field longer than
//! [`FIELD_CHARS_MAX`] (1,000 characters) fails its line; a quote that is never closed refuses the
//! file with the line it opened on; a UTF-16 file is refused as UTF-16. Every cell of an
//! instruction file goes through [`neutralize_formula`] (CSV injection).

pub mod instructions;
mod lines;
pub mod profile;
pub mod results;
pub mod statement;

pub use instructions::{
    neutralize_formula, write_csv_instructions, write_export, FORMULA_TRIGGERS,
};
pub use lines::{FIELD_CHARS_MAX, RECORD_BYTES_MAX};
pub use profile::{
    format_amount, parse_amount, AmountFormat, ColumnRef, CsvEncoding, CsvProfile,
    InstructionColumn, InstructionField, InstructionLayout, LineEnding, ProfileError,
    ResultColumns, StatusMeaning,
};
pub use results::{read_csv_results, CsvResults};
pub use statement::{read_csv_statement, CsvStatement, CsvStatementProfile};
