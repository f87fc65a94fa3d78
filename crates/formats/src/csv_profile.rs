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
//! Example profiles ship in `crates/formats/profiles/` (`englishbank.toml`, `chinabank.toml`).
//!
//! Hostile files: a record longer than [`RECORD_BYTES_MAX`] (1 MiB) refuses the file, naming the
//! line the record starts on, before the parser holds it; a field longer than
//! [`FIELD_CHARS_MAX`] (1,000 characters) fails its line; a quote that is never closed refuses the
//! file with the line it opened on; a UTF-16 file is refused as UTF-16. Every cell of an
//! instruction file goes through [`neutralize_formula`] (CSV injection).

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};

use chrono::format::{Item, StrftimeItems};
use chrono::NaiveDate;
use csv::ByteRecord;
use disburse_core::{Currency, Money};
use encoding_rs::GBK;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use serde::Deserialize;

use crate::amount::money_from_decimal;
use crate::error::{FormatError, FormatErrorKind, LineError, ReadError, WriteError};
use crate::results::{BankOutcome, ResultLine, ResultRecord};
use crate::transfer::{summarize, BatchSummary, CreditTransfer, CreditorAccount};

/// Character encoding of a bank's CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum CsvEncoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "gbk", alias = "GBK")]
    Gbk,
}

/// A column, by its header text or by its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    Index(usize),
    Name(String),
}

/// How a bank writes amounts: `1,234.50` (decimal `.`, thousands `,`) or `1.234,50`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountFormat {
    #[serde(default = "default_decimal_separator")]
    pub decimal_separator: char,
    #[serde(default)]
    pub thousands_separator: Option<char>,
}

impl Default for AmountFormat {
    fn default() -> Self {
        AmountFormat {
            decimal_separator: '.',
            thousands_separator: None,
        }
    }
}

fn default_decimal_separator() -> char {
    '.'
}

/// Where each field of a result line is. Only `status` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultColumns {
    pub end_to_end_id: Option<ColumnRef>,
    pub bank_reference: Option<ColumnRef>,
    pub status: ColumnRef,
    pub amount: Option<ColumnRef>,
    /// Without it, amounts are in the profile's `currency`.
    pub currency: Option<ColumnRef>,
    pub reason_code: Option<ColumnRef>,
    pub reason_text: Option<ColumnRef>,
    pub value_date: Option<ColumnRef>,
}

/// What a bank's status word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusMeaning {
    Accepted,
    Paid,
    Rejected,
    Returned,
    Pending,
}

impl StatusMeaning {
    fn outcome(self) -> BankOutcome {
        match self {
            StatusMeaning::Accepted => BankOutcome::Accepted,
            StatusMeaning::Paid => BankOutcome::Paid,
            StatusMeaning::Rejected => BankOutcome::Rejected,
            StatusMeaning::Returned => BankOutcome::Returned,
            StatusMeaning::Pending => BankOutcome::Pending,
        }
    }
}

/// A value of a transfer that can fill a column of an instruction file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionField {
    EndToEndId,
    Amount,
    Currency,
    CreditorName,
    /// The IBAN, or the account number of an `Other` account.
    CreditorAccount,
    /// The bank code of an `Other` account; empty for an IBAN.
    CreditorBankCode,
    CreditorBic,
    CreditorCountry,
    RemittanceInfo,
}

/// One column of an instruction file: a transfer field, or a fixed value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionColumn {
    pub header: String,
    pub field: Option<InstructionField>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

/// The `[instruction]` section: the layout of the file we send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstructionLayout {
    /// Write a first line with the column headers.
    #[serde(default = "yes")]
    pub header: bool,
    #[serde(default)]
    pub line_ending: LineEnding,
    pub columns: Vec<InstructionColumn>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    encoding: CsvEncoding,
    #[serde(default = "default_delimiter")]
    delimiter: char,
    #[serde(default)]
    header_lines: usize,
    currency: Option<Currency>,
    #[serde(default = "default_date_format")]
    date_format: String,
    #[serde(default)]
    amount: AmountFormat,
    columns: ResultColumns,
    status_words: BTreeMap<String, StatusMeaning>,
    instruction: Option<InstructionLayout>,
}

fn default_delimiter() -> char {
    ','
}

fn default_date_format() -> String {
    "%Y-%m-%d".to_string()
}

/// One bank's CSV layout, checked when it is loaded: an invalid profile cannot exist.
///
/// ```toml
/// name = "englishbank"
/// encoding = "utf-8"          # or "gbk"
/// delimiter = ","
/// header_lines = 1            # lines before the data; the last one holds the column names
/// currency = "EUR"            # when there is no currency column
/// date_format = "%d/%m/%Y"    # chrono strftime
/// [amount]
/// decimal_separator = "."
/// thousands_separator = ","
/// [columns]                   # header text, or 1-based position
/// end_to_end_id = "Payment Reference"
/// status = "Status"
/// amount = 4
/// [status_words]
/// PAID = "paid"               # accepted | paid | rejected | returned | pending
/// [instruction]
/// columns = [{ header = "Payment Reference", field = "end_to_end_id" }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawProfile")]
pub struct CsvProfile {
    name: String,
    encoding: CsvEncoding,
    delimiter: u8,
    header_lines: usize,
    currency: Option<Currency>,
    date_format: String,
    amount: AmountFormat,
    columns: ResultColumns,
    status_words: BTreeMap<String, StatusMeaning>,
    instruction: Option<InstructionLayout>,
}

/// A profile that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSV profile {name:?}: {message}")]
pub struct ProfileError {
    pub name: String,
    pub message: String,
}

impl TryFrom<RawProfile> for CsvProfile {
    type Error = ProfileError;

    fn try_from(raw: RawProfile) -> Result<Self, ProfileError> {
        let err = |message: String| ProfileError {
            name: raw.name.clone(),
            message,
        };
        if raw.name.trim().is_empty() {
            return Err(err("name is empty".into()));
        }
        let d = raw.delimiter;
        if !d.is_ascii() || matches!(d, '"' | '\n' | '\r') || d.is_ascii_alphanumeric() {
            return Err(err(format!(
                "delimiter {d:?} must be one ASCII punctuation or tab"
            )));
        }
        let decimal = raw.amount.decimal_separator;
        if !matches!(decimal, '.' | ',') {
            return Err(err(format!(
                "decimal_separator {decimal:?} must be '.' or ','"
            )));
        }
        if let Some(t) = raw.amount.thousands_separator {
            if t == decimal || t.is_ascii_digit() || t == '-' {
                return Err(err(format!(
                    "thousands_separator {t:?} must differ from the decimal separator and digits"
                )));
            }
        }
        if StrftimeItems::new(&raw.date_format).any(|i| matches!(i, Item::Error)) {
            return Err(err(format!(
                "date_format {:?} is not a valid strftime format",
                raw.date_format
            )));
        }
        let c = &raw.columns;
        let all = [
            &c.end_to_end_id,
            &c.bank_reference,
            &Some(c.status.clone()),
            &c.amount,
            &c.currency,
            &c.reason_code,
            &c.reason_text,
            &c.value_date,
        ];
        for column in all.into_iter().flatten() {
            match column {
                ColumnRef::Index(0) => {
                    return Err(err("column positions start at 1".into()));
                }
                ColumnRef::Name(name) if raw.header_lines == 0 => {
                    return Err(err(format!(
                        "column {name:?} is named, but header_lines is 0 so there is no header"
                    )));
                }
                _ => {}
            }
        }
        if c.currency.is_none() && raw.currency.is_none() {
            return Err(err("needs a currency column or a default currency".into()));
        }
        if raw.status_words.is_empty() {
            return Err(err("status_words is empty".into()));
        }
        if raw.status_words.keys().any(|w| w.trim().is_empty()) {
            return Err(err("status_words has an empty word".into()));
        }
        if let Some(layout) = &raw.instruction {
            if layout.columns.is_empty() {
                return Err(err("[instruction] has no columns".into()));
            }
            for col in &layout.columns {
                if col.field.is_some() == col.value.is_some() {
                    return Err(err(format!(
                        "instruction column {:?} needs exactly one of field or value",
                        col.header
                    )));
                }
            }
        }
        Ok(CsvProfile {
            delimiter: d as u8,
            name: raw.name,
            encoding: raw.encoding,
            header_lines: raw.header_lines,
            currency: raw.currency,
            date_format: raw.date_format,
            amount: raw.amount,
            columns: raw.columns,
            status_words: raw.status_words,
            instruction: raw.instruction,
        })
    }
}

impl CsvProfile {
    /// Parses and checks a profile written in TOML.
    pub fn from_toml(text: &str) -> Result<CsvProfile, ProfileError> {
        toml::from_str(text).map_err(|e| ProfileError {
            name: toml::from_str::<toml::Table>(text)
                .ok()
                .and_then(|t| t.get("name").and_then(|n| n.as_str().map(str::to_string)))
                .unwrap_or_default(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn encoding(&self) -> CsvEncoding {
        self.encoding
    }

    /// The currency of amounts when the file has no currency column.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    pub fn instruction(&self) -> Option<&InstructionLayout> {
        self.instruction.as_ref()
    }

    fn status(&self, word: &str) -> Option<StatusMeaning> {
        self.status_words.get(word).copied().or_else(|| {
            let lower = word.to_lowercase();
            self.status_words
                .iter()
                .find(|(w, _)| w.to_lowercase() == lower)
                .map(|(_, m)| *m)
        })
    }
}

/// Bytes of the file as UTF-8: passed through, or decoded from GBK as they stream.
enum Decoded<R: Read> {
    Utf8(R),
    Gbk(DecodeReaderBytes<R, Vec<u8>>),
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoded::Utf8(r) => r.read(buf),
            Decoded::Gbk(r) => r.read(buf),
        }
    }
}

/// Longest record read, in bytes (after decoding): real result lines are a few hundred bytes.
/// Like the XML reader's bound on one element, it keeps memory bounded by one record.
pub const RECORD_BYTES_MAX: u64 = 1 << 20;
/// Longest field read, in characters; as long as the reason text the XML readers keep.
pub const FIELD_CHARS_MAX: usize = 1000;

/// Where the CSV parser is inside a record, as far as quotes go: the same rules as the `csv`
/// crate's (a quote opens a quoted field only at the start of a field; `""` inside is a quote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the field, or the first of `""`.
    QuoteInQuoted,
}

/// Passes bytes through to the CSV parser and remembers where the newlines are, so a record's
/// byte offset gives its physical line. The parser reports a record at the end of the previous
/// one, before the line break and any blank lines it skips; each newline is kept with the start
/// of the run of line breaks it belongs to, so those are counted too. Holds only the newlines the
/// parser has read ahead: bounded by its buffer.
///
/// It also follows quotes as the parser will, so that a record longer than
/// [`RECORD_BYTES_MAX`] is refused before the parser holds it (a read error the reader turns into
/// a clear one), and a quote that is never closed is reported with the line it opened on.
struct LineIndex<R: Read> {
    inner: Decoded<R>,
    offset: u64,
    /// (offset of a `\n`, offset where its run of `\r`/`\n` bytes starts)
    newlines: std::collections::VecDeque<(u64, u64)>,
    run_start: Option<u64>,
    lines_before: u64,
    delimiter: u8,
    quote: QuoteState,
    /// Newlines read so far: the line of the byte being read is this plus one.
    newlines_read: u64,
    /// Bytes of the record being read, and the line it started on.
    record_bytes: u64,
    record_line: u64,
    /// Offset and line of the quote that opened the quoted field being read.
    quote_opened: Option<(u64, u64)>,
    /// Set when the record being read grew past the bound: the line it started on.
    too_long: Option<u64>,
    /// Set at the end of the file when a quoted field is still open: its offset and line.
    unclosed: Option<(u64, u64)>,
}

impl<R: Read> LineIndex<R> {
    fn new(inner: Decoded<R>, delimiter: u8) -> Self {
        LineIndex {
            inner,
            offset: 0,
            newlines: std::collections::VecDeque::new(),
            run_start: None,
            lines_before: 0,
            delimiter,
            quote: QuoteState::FieldStart,
            newlines_read: 0,
            record_bytes: 0,
            record_line: 1,
            quote_opened: None,
            too_long: None,
            unclosed: None,
        }
    }

    /// The 1-based line of the record the parser reports at byte `offset`; records must be asked
    /// in order.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self
            .newlines
            .front()
            .is_some_and(|&(nl, run)| nl < offset || run <= offset)
        {
            self.newlines.pop_front();
            self.lines_before += 1;
        }
        self.lines_before + 1
    }

    /// Follows one byte through the quoting rules.
    fn follow(&mut self, b: u8, at: u64) {
        let line = self.newlines_read + 1;
        let line_break = b == b'\n' || b == b'\r';
        let state = match self.quote {
            QuoteState::QuoteInQuoted if b == b'"' => QuoteState::Quoted,
            QuoteState::Quoted if b == b'"' => QuoteState::QuoteInQuoted,
            QuoteState::Quoted => QuoteState::Quoted,
            QuoteState::FieldStart if b == b'"' => {
                self.quote_opened = Some((at, line));
                QuoteState::Quoted
            }
            _ if line_break => {
                self.record_bytes = 0;
                self.record_line = line + u64::from(b == b'\n');
                QuoteState::FieldStart
            }
            _ if b == self.delimiter => QuoteState::FieldStart,
            _ => QuoteState::Unquoted,
        };
        if state != QuoteState::Quoted && state != QuoteState::QuoteInQuoted {
            self.quote_opened = None;
        }
        self.quote = state;
        if !(line_break && state == QuoteState::FieldStart) {
            self.record_bytes += 1;
        }
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.too_long.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "record too long",
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && matches!(self.quote, QuoteState::Quoted) {
            self.unclosed = self.quote_opened;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            self.follow(b, at);
            if b == b'\n' || b == b'\r' {
                let run = *self.run_start.get_or_insert(at);
                if b == b'\n' {
                    self.newlines.push_back((at, run));
                    self.newlines_read += 1;
                }
            } else {
                self.run_start = None;
            }
            if self.record_bytes > RECORD_BYTES_MAX {
                self.too_long = Some(self.record_line);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "record too long",
                ));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Column positions (0-based) once the header is known.
#[derive(Debug, Clone, Copy, Default)]
struct Resolved {
    end_to_end_id: Option<usize>,
    bank_reference: Option<usize>,
    status: usize,
    amount: Option<usize>,
    currency: Option<usize>,
    reason_code: Option<usize>,
    reason_text: Option<usize>,
    value_date: Option<usize>,
}

/// Streaming reader of a bank CSV result file; see [`read_csv_results`].
pub struct CsvResults<'p, R: Read> {
    profile: &'p CsvProfile,
    // Boxed: the parser and its line index are large, and callers keep this beside XML readers.
    reader: Box<csv::Reader<LineIndex<R>>>,
    record: ByteRecord,
    records_read: usize,
    columns: Option<Resolved>,
    done: bool,
    /// A file refused before its first record (UTF-16): the first and only item.
    refused: Option<FormatError>,
}

/// Reads a CSV result file laid out as `profile` says. Line numbers are physical lines of the
/// file; a record that cannot be read is a [`ReadError::Line`]; a header that does not fit the
/// profile, or a file in another encoding than the profile's, is a fatal [`ReadError::File`].
pub fn read_csv_results<R: BufRead>(profile: &CsvProfile, mut reader: R) -> CsvResults<'_, R> {
    let refused = crate::xml::utf16_refusal(&mut reader);
    let decoded = match profile.encoding {
        CsvEncoding::Utf8 => Decoded::Utf8(reader),
        CsvEncoding::Gbk => Decoded::Gbk(
            DecodeReaderBytesBuilder::new()
                .encoding(Some(GBK))
                .build(reader),
        ),
    };
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(profile.delimiter)
        .from_reader(LineIndex::new(decoded, profile.delimiter));
    CsvResults {
        profile,
        reader: Box::new(reader),
        record: ByteRecord::new(),
        records_read: 0,
        columns: None,
        done: false,
        refused,
    }
}

impl<R: Read> CsvResults<'_, R> {
    fn too_long(&self, line: u64) -> FormatError {
        let mut message = format!(
            "the record starting on line {line} is longer than {} MiB; no bank result line is \
             that long, so the file is refused",
            RECORD_BYTES_MAX >> 20
        );
        if let Some((_, opened)) = self.reader.get_ref().quote_opened {
            message.push_str(&format!(
                " (a quoted field opened on line {opened} is still open: an unbalanced quote?)"
            ));
        }
        FormatError::new(line, FormatErrorKind::TooLarge(message))
    }

    fn decode<'r>(&self, bytes: &'r [u8], line: u64, field: &str) -> Result<&'r str, LineError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            LineError::new(
                line,
                field,
                format!(
                    "not valid UTF-8 (byte {} of the field); profile {:?} declares utf-8 — is the file in another encoding, such as GBK?",
                    e.valid_up_to() + 1,
                    self.profile.name
                ),
            )
        })?;
        if self.profile.encoding == CsvEncoding::Gbk && text.contains('\u{FFFD}') {
            return Err(LineError::new(
                line,
                field,
                format!(
                    "contains bytes that are not valid GBK (profile {:?})",
                    self.profile.name
                ),
            ));
        }
        let text = text.trim_start_matches('\u{FEFF}').trim();
        // Counting stops past the bound: a huge field costs no more than the record it is in.
        if text.chars().nth(FIELD_CHARS_MAX).is_some() {
            return Err(LineError::new(
                line,
                field,
                format!(
                    "is longer than {FIELD_CHARS_MAX} characters ({} bytes); refused, not cut",
                    text.len()
                ),
            ));
        }
        Ok(text)
    }

    fn resolve_header(
        &self,
        line: u64,
        header: Option<&ByteRecord>,
    ) -> Result<Resolved, FormatError> {
        let mut names = Vec::new();
        if let Some(header) = header {
            for (i, cell) in header.iter().enumerate() {
                let name = self.decode(cell, line, "header").map_err(|e| {
                    FormatError::new(
                        line,
                        FormatErrorKind::Encoding(format!(
                            "header column {}: {}",
                            i + 1,
                            e.message
                        )),
                    )
                })?;
                names.push(name.to_string());
            }
        }
        let find = |field: &str, column: &ColumnRef| -> Result<usize, FormatError> {
            match column {
                ColumnRef::Index(i) => Ok(i - 1),
                ColumnRef::Name(name) => names
                    .iter()
                    .position(|n| n == name.trim())
                    .or_else(|| names.iter().position(|n| n.to_lowercase() == name.trim().to_lowercase()))
                    .ok_or_else(|| {
                        FormatError::new(
                            line,
                            FormatErrorKind::Layout(format!(
                                "column {name:?} (for {field}) is not in the header; profile {:?} expects it, the header has {names:?}",
                                self.profile.name
                            )),
                        )
                    }),
            }
        };
        let opt = |field: &str, column: &Option<ColumnRef>| -> Result<Option<usize>, FormatError> {
            column.as_ref().map(|c| find(field, c)).transpose()
        };
        let c = &self.profile.columns;
        Ok(Resolved {
            end_to_end_id: opt("end_to_end_id", &c.end_to_end_id)?,
            bank_reference: opt("bank_reference", &c.bank_reference)?,
            status: find("status", &c.status)?,
            amount: opt("amount", &c.amount)?,
            currency: opt("currency", &c.currency)?,
            reason_code: opt("reason_code", &c.reason_code)?,
            reason_text: opt("reason_text", &c.reason_text)?,
            value_date: opt("value_date", &c.value_date)?,
        })
    }

    fn field(
        &self,
        index: Option<usize>,
        line: u64,
        name: &str,
    ) -> Result<Option<String>, LineError> {
        let Some(bytes) = index.and_then(|i| self.record.get(i)) else {
            return Ok(None);
        };
        let text = self.decode(bytes, line, name)?;
        Ok(if text.is_empty() {
            None
        } else {
            Some(text.to_string())
        })
    }

    fn parse_record(&self, columns: &Resolved, line: u64) -> Result<ResultLine, LineError> {
        let profile = self.profile;
        let word = self
            .field(Some(columns.status), line, "status")?
            .ok_or_else(|| LineError::new(line, "status", "is empty"))?;
        let meaning = profile.status(&word).ok_or_else(|| {
            let known: Vec<&str> = profile.status_words.keys().map(String::as_str).collect();
            LineError::new(
                line,
                "status",
                format!(
                    "unknown status word {word:?}; profile {:?} knows {}",
                    profile.name,
                    known.join(", ")
                ),
            )
        })?;
        let currency = match self.field(columns.currency, line, "currency")? {
            Some(code) => Currency::parse(&code.to_uppercase())
                .map_err(|e| LineError::new(line, "currency", e.to_string()))?,
            None => profile.currency.ok_or_else(|| {
                LineError::new(
                    line,
                    "currency",
                    "is empty and the profile has no default currency",
                )
            })?,
        };
        let outcome = meaning.outcome();
        let amount = match self.field(columns.amount, line, "amount")? {
            Some(text) => Some(
                parse_amount(&text, &profile.amount, currency)
                    .map_err(|m| LineError::new(line, "amount", m))?,
            ),
            // The profile says where the bank writes what it moved: a payment result without it
            // must not be taken as "paid in full".
            None if columns.amount.is_some()
                && matches!(outcome, BankOutcome::Paid | BankOutcome::Returned) =>
            {
                return Err(LineError::new(
                    line,
                    "amount",
                    format!(
                        "is empty, but the profile declares it and the status {word:?} moves money"
                    ),
                ))
            }
            None => None,
        };
        let value_date = match self.field(columns.value_date, line, "value_date")? {
            Some(text) => Some(
                NaiveDate::parse_from_str(&text, &profile.date_format).map_err(|e| {
                    LineError::new(
                        line,
                        "value_date",
                        format!(
                            "{text:?} does not match the date format {:?}: {e}",
                            profile.date_format
                        ),
                    )
                })?,
            ),
            None => None,
        };
        Ok(ResultLine {
            line,
            end_to_end_id: self.field(columns.end_to_end_id, line, "end_to_end_id")?,
            bank_reference: self.field(columns.bank_reference, line, "bank_reference")?,
            outcome,
            bank_status: Some(word),
            amount,
            instructed_amount: None,
            value_date,
            reason_code: self.field(columns.reason_code, line, "reason_code")?,
            reason_text: self.field(columns.reason_text, line, "reason_text")?,
            original_message_id: None,
        })
    }
}

impl<R: Read> Iterator for CsvResults<'_, R> {
    type Item = Result<ResultRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut header: Option<ByteRecord> = None;
        if let Some(e) = self.refused.take() {
            self.done = true;
            return Some(Err(ReadError::File(e)));
        }
        loop {
            if self.done {
                return None;
            }
            let more = match self.reader.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    self.done = true;
                    if let Some(line) = self.reader.get_ref().too_long {
                        return Some(Err(ReadError::File(self.too_long(line))));
                    }
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Err(ReadError::File(FormatError::new(
                        line,
                        FormatErrorKind::Io(e.to_string()),
                    ))));
                }
            };
            if let Some((opened_at, opened_line)) = self.reader.get_ref().unclosed {
                if more && self.reader.position().byte() > opened_at {
                    self.done = true;
                    return Some(Err(ReadError::File(FormatError::new(
                        opened_line,
                        FormatErrorKind::Layout(format!(
                            "a quoted field opened on line {opened_line} is never closed: \
                             the quote is unbalanced, so every line after it would be read \
                             as part of that field"
                        )),
                    ))));
                }
            }
            if !more {
                self.done = true;
                if self.records_read < self.profile.header_lines {
                    let kind = if self.records_read == 0 {
                        FormatErrorKind::Empty
                    } else {
                        FormatErrorKind::Layout(format!(
                            "the file ends before its {} header line(s)",
                            self.profile.header_lines
                        ))
                    };
                    return Some(Err(ReadError::File(FormatError::new(1, kind))));
                }
                return None;
            }
            let start = self.record.position().map_or(0, |p| p.byte());
            let line = self.reader.get_mut().line_of(start);
            self.records_read += 1;
            if self.records_read < self.profile.header_lines {
                continue;
            }
            if self.records_read == self.profile.header_lines {
                header = Some(self.record.clone());
            }
            if self.columns.is_none() {
                match self.resolve_header(line, header.as_ref()) {
                    Ok(c) => self.columns = Some(c),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(ReadError::File(e)));
                    }
                }
            }
            if self.records_read <= self.profile.header_lines {
                continue;
            }
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            let columns = self.columns.expect("resolved above");
            return Some(
                self.parse_record(&columns, line)
                    .map(ResultRecord::Transaction)
                    .map_err(ReadError::Line),
            );
        }
    }
}

/// Amount text in the bank's format (`1,234.50`, `1.234,50`, `1234.5`) to [`Money`].
/// Thousands separators must group by three; anything else is refused, not guessed.
pub fn parse_amount(
    text: &str,
    format: &AmountFormat,
    currency: Currency,
) -> Result<Money, String> {
    let t = text.trim();
    let decimal = format.decimal_separator;
    let thousands = format.thousands_separator;
    if let Some(c) = t
        .chars()
        .find(|&c| !c.is_ascii_digit() && c != decimal && Some(c) != thousands && c != '-')
    {
        return Err(format!(
            "amount {t:?} contains {c:?}; expected digits, {decimal:?} as decimal separator{}",
            thousands
                .map(|s| format!(" and {s:?} between thousands"))
                .unwrap_or_default()
        ));
    }
    let (whole, fraction) = match t.split_once(decimal) {
        Some((w, f)) => (w, Some(f)),
        None => (t, None),
    };
    if let Some(f) = fraction {
        if f.contains(decimal) || thousands.is_some_and(|s| f.contains(s)) {
            return Err(format!(
                "amount {t:?} has separators after the decimal separator {decimal:?}"
            ));
        }
    }
    let whole_digits: String = match thousands {
        Some(sep) if whole.contains(sep) => {
            let unsigned = whole.strip_prefix('-').unwrap_or(whole);
            let mut groups = unsigned.split(sep);
            let first = groups.next().unwrap_or("");
            let ok = (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3);
            if !ok {
                return Err(format!(
                    "amount {t:?}: thousands separators {sep:?} are misplaced"
                ));
            }
            whole.chars().filter(|&c| c != sep).collect()
        }
        _ => whole.to_string(),
    };
    let decimal_text = match fraction {
        Some(f) => format!("{whole_digits}.{f}"),
        None => whole_digits,
    };
    money_from_decimal(&decimal_text, currency)
}

/// [`Money`] written in the bank's format: `1,234.50` or `1.234,50`.
pub fn format_amount(money: Money, format: &AmountFormat) -> String {
    let text = money.to_decimal_string();
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let mut out = String::from(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            if let Some(sep) = format.thousands_separator {
                out.push(sep);
            }
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push(format.decimal_separator);
        out.push_str(f);
    }
    out
}

/// Writes the payment file of a CSV bank, in the layout of the profile's `[instruction]` section
/// and in its encoding. Everything is checked before the first byte is written: one currency,
/// positive amounts, text the encoding can carry.
pub fn write_csv_instructions<W: Write>(
    profile: &CsvProfile,
    transfers: &[CreditTransfer],
    mut out: W,
) -> Result<BatchSummary, WriteError> {
    let layout = profile.instruction.as_ref().ok_or_else(|| {
        WriteError::invalid(
            None,
            "profile",
            format!("profile {:?} has no [instruction] section", profile.name),
        )
    })?;
    let currency = transfers
        .first()
        .map(|t| t.amount.currency())
        .ok_or_else(|| {
            WriteError::invalid(None, "transfers", "a batch needs at least one transfer")
        })?;
    let summary = summarize(transfers, currency)?;
    let has_currency_column = layout
        .columns
        .iter()
        .any(|c| c.field == Some(InstructionField::Currency));
    if let Some(expected) = profile.currency {
        if !has_currency_column && expected != currency {
            return Err(WriteError::invalid(
                None,
                "amount",
                format!(
                    "the batch is in {currency} but profile {:?} pays only {expected}",
                    profile.name
                ),
            ));
        }
    }
    // Names the characters GBK cannot carry, never the whole value (it may be an account).
    let encode_check =
        |payout: Option<&str>, column: &str, value: &str| -> Result<(), WriteError> {
            if profile.encoding == CsvEncoding::Gbk && GBK.encode(value).2 {
                let bad: String = value
                    .chars()
                    .filter(|c| GBK.encode(c.encode_utf8(&mut [0; 4])).2)
                    .collect();
                return Err(WriteError::invalid(
                    payout,
                    column,
                    format!("has characters that GBK cannot encode: {bad:?}"),
                ));
            }
            Ok(())
        };
    for col in &layout.columns {
        encode_check(None, &col.header, &col.header)?;
    }
    for t in transfers {
        for col in &layout.columns {
            encode_check(
                Some(&t.end_to_end_id),
                &col.header,
                &column_value(profile, col, t),
            )?;
        }
    }
    let terminator = match layout.line_ending {
        LineEnding::Lf => csv::Terminator::Any(b'\n'),
        LineEnding::Crlf => csv::Terminator::CRLF,
    };
    let mut builder = csv::WriterBuilder::new();
    builder
        .delimiter(profile.delimiter)
        .terminator(terminator)
        .buffer_capacity(1024);
    let mut bytes = Vec::with_capacity(1024);
    let mut emit = |fields: Vec<String>| -> Result<(), WriteError> {
        bytes.clear();
        {
            let mut csv = builder.from_writer(&mut bytes);
            csv.write_record(&fields)
                .map_err(|e| WriteError::Io(e.into()))?;
            csv.flush()?;
        }
        match profile.encoding {
            CsvEncoding::Utf8 => out.write_all(&bytes)?,
            CsvEncoding::Gbk => {
                let text = std::str::from_utf8(&bytes).expect("csv of UTF-8 strings is UTF-8");
                out.write_all(&GBK.encode(text).0)?;
            }
        }
        Ok(())
    };
    if layout.header {
        emit(
            layout
                .columns
                .iter()
                .map(|c| neutralize_formula(c.header.clone()))
                .collect(),
        )?;
    }
    for t in transfers {
        emit(
            layout
                .columns
                .iter()
                .map(|c| neutralize_formula(column_value(profile, c, t)))
                .collect(),
        )?;
    }
    out.flush()?;
    Ok(summary)
}

/// The characters a spreadsheet reads as the start of a formula (or that hide one: a tab, a
/// carriage return), when they begin a cell.
pub const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as written in every CSV file we make: one that begins with a [`FORMULA_TRIGGERS`]
/// character gets an apostrophe in front, so a holder name such as `=HYPERLINK(...)` or `@SUM(1)`
/// stays text when someone opens the file in a spreadsheet (CSV injection). Every other cell is
/// written as it is. Nothing we write legitimately starts with one of these: amounts are positive,
/// references, IBANs, account numbers and codes start with a letter or a digit; a holder name
/// that really starts with `-` reaches the bank as `'-…`, as the profiles document.
pub fn neutralize_formula(mut cell: String) -> String {
    if cell.starts_with(FORMULA_TRIGGERS) {
        cell.insert(0, '\'');
    }
    cell
}

fn column_value(profile: &CsvProfile, column: &InstructionColumn, t: &CreditTransfer) -> String {
    if let Some(value) = &column.value {
        return value.clone();
    }
    match column.field.expect("checked when the profile was loaded") {
        InstructionField::EndToEndId => t.end_to_end_id.clone(),
        InstructionField::Amount => format_amount(t.amount, &profile.amount),
        InstructionField::Currency => t.amount.currency().to_string(),
        InstructionField::CreditorName => t.creditor_name.clone(),
        InstructionField::CreditorAccount => match &t.creditor_account {
            CreditorAccount::Iban(iban) => iban.clone(),
            CreditorAccount::Other { id, .. } => id.clone(),
        },
        InstructionField::CreditorBankCode => match &t.creditor_account {
            CreditorAccount::Iban(_) => String::new(),
            CreditorAccount::Other { bank_code, .. } => bank_code.clone(),
        },
        InstructionField::CreditorBic => t.creditor_bic.clone().unwrap_or_default(),
        InstructionField::CreditorCountry => t.creditor_country.clone(),
        InstructionField::RemittanceInfo => t.remittance_info.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(decimal: char, thousands: Option<char>) -> AmountFormat {
        AmountFormat {
            decimal_separator: decimal,
            thousands_separator: thousands,
        }
    }

    #[test]
    fn amounts_in_bank_formats() {
        let eur = |minor| Money::from_minor(minor, Currency::Eur);
        let check = |text: &str, f: &AmountFormat, want: Result<Money, &str>| {
            let got = parse_amount(text, f, Currency::Eur);
            match want {
                Ok(m) => assert_eq!(got, Ok(m), "{text}"),
                Err(needle) => {
                    let e = got.expect_err(text);
                    assert!(e.contains(needle), "{text}: {e}");
                }
            }
        };
        let en = fmt('.', Some(','));
        let de = fmt(',', Some('.'));
        check("1,234.50", &en, Ok(eur(123450)));
        check("1,234,567.8", &en, Ok(eur(123456780)));
        check("234.50", &en, Ok(eur(23450)));
        check("1.234,50", &de, Ok(eur(123450)));
        check("0,05", &de, Ok(eur(5)));
        check("12,34.50", &en, Err("misplaced"));
        check("1.234,50", &en, Err("after the decimal separator"));
        check("1,234.505", &en, Err("decimal places"));
        check("1 234.50", &en, Err("contains ' '"));
        check("€12", &en, Err("contains '€'"));
        check("-5.00", &en, Err("negative"));
        check("1,234.50", &fmt('.', None), Err("contains ','"));
    }

    #[test]
    fn amounts_are_formatted_for_the_bank() {
        let m = Money::from_minor(123456789, Currency::Eur);
        assert_eq!(format_amount(m, &fmt('.', Some(','))), "1,234,567.89");
        assert_eq!(format_amount(m, &fmt(',', Some('.'))), "1.234.567,89");
        assert_eq!(format_amount(m, &fmt('.', None)), "1234567.89");
        assert_eq!(
            format_amount(Money::from_minor(100, Currency::Jpy), &fmt('.', Some(','))),
            "100"
        );
        assert_eq!(
            format_amount(Money::from_minor(5, Currency::Eur), &fmt('.', Some(','))),
            "0.05"
        );
    }

    proptest::proptest! {
        #[test]
        fn formatted_amounts_parse_back(minor in 0i64..i64::MAX, style in 0usize..4, idx in 0usize..11) {
            let currency = Currency::ALL[idx];
            let format = [fmt('.', Some(',')), fmt(',', Some('.')), fmt('.', None), fmt(',', Some(' '))][style].clone();
            let money = Money::from_minor(minor, currency);
            let text = format_amount(money, &format);
            proptest::prop_assert_eq!(parse_amount(&text, &format, currency), Ok(money), "{}", text);
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_a_reason() {
        let base = r#"
            name = "x"
            header_lines = 1
            currency = "EUR"
            [columns]
            status = "Status"
            [status_words]
            OK = "paid"
        "#;
        assert!(CsvProfile::from_toml(base).is_ok());
        let check = |edit: &str, needle: &str| {
            let text = format!("{edit}\n{base}");
            let err = CsvProfile::from_toml(&text).expect_err(edit).to_string();
            assert!(err.contains(needle), "{edit}: {err}");
        };
        check("delimiter = \"ab\"", "delimiter");
        check("date_format = \"%Q\"", "date_format");
        check("encoding = \"latin1\"", "latin1");
        check("delimiter = \"x\"", "delimiter");
        let no_header = base.replace("header_lines = 1", "header_lines = 0");
        let err = CsvProfile::from_toml(&no_header).unwrap_err().to_string();
        assert!(err.contains("no header"), "{err}");
        let no_currency = base.replace("currency = \"EUR\"", "");
        let err = CsvProfile::from_toml(&no_currency).unwrap_err().to_string();
        assert!(err.contains("currency"), "{err}");
        let bad_word = base.replace("\"paid\"", "\"done\"");
        assert!(CsvProfile::from_toml(&bad_word).is_err());
    }
}

/// A list as a spreadsheet-safe CSV export (UTF-8, CRLF, a header row): every cell goes through
/// [`neutralize_formula`], so a recorded text such as `=HYPERLINK(...)` stays text.
pub fn write_export(headers: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, WriteError> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    csv.write_record(headers.iter().map(|h| neutralize_formula(h.to_string())))
        .map_err(|e| WriteError::Io(e.into()))?;
    for row in rows {
        csv.write_record(row.iter().map(|c| neutralize_formula(c.clone())))
            .map_err(|e| WriteError::Io(e.into()))?;
    }
    csv.into_inner()
        .map_err(|e| WriteError::Io(std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod export_tests {
    use super::*;

    #[test]
    fn exports_neutralise_every_formula_trigger_and_quote_as_csv() {
        let rows = vec![vec![
            "=HYPERLINK(\"x\")".to_string(),
            "+1".into(),
            "-2".into(),
            "@SUM(A1)".into(),
            "\tx".into(),
            "\ry".into(),
            "plain, with comma".into(),
        ]];
        let out =
            String::from_utf8(write_export(&["a", "b", "c", "d", "e", "f", "g"], &rows).unwrap())
                .unwrap();
        assert_eq!(
            out,
            "a,b,c,d,e,f,g\r\n\"'=HYPERLINK(\"\"x\"\")\",'+1,'-2,'@SUM(A1),'\tx,\"'\ry\",\"plain, with comma\"\r\n"
        );
    }
}
