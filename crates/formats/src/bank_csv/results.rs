//! Reading a bank's CSV result file into the same [`ResultRecord`]s as the ISO 20022 readers.

use std::io::{BufRead, Read};

use chrono::NaiveDate;
use disburse_core::Currency;

use super::lines::{CsvEvent, CsvLines};
use super::profile::{parse_amount, CsvProfile};
use crate::error::{FormatError, LineError, ReadError};
use crate::results::{BankOutcome, ResultLine, ResultRecord};

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
    lines: CsvLines<R>,
    columns: Option<Resolved>,
}

/// Reads a CSV result file laid out as `profile` says. Line numbers are physical lines of the
/// file; a record that cannot be read is a [`ReadError::Line`]; a header that does not fit the
/// profile, or a file in another encoding than the profile's, is a fatal [`ReadError::File`].
pub fn read_csv_results<R: BufRead>(profile: &CsvProfile, reader: R) -> CsvResults<'_, R> {
    CsvResults {
        profile,
        lines: CsvLines::open(
            reader,
            &profile.name,
            profile.encoding,
            profile.delimiter,
            profile.header_lines,
            "bank result line",
        ),
        columns: None,
    }
}

impl<R: Read> CsvResults<'_, R> {
    fn resolve(
        &self,
        line: u64,
        header: Option<&csv::ByteRecord>,
    ) -> Result<Resolved, FormatError> {
        let names = self.lines.header_names(line, header)?;
        let c = &self.profile.columns;
        Ok(Resolved {
            end_to_end_id: names.find_opt("end_to_end_id", &c.end_to_end_id)?,
            bank_reference: names.find_opt("bank_reference", &c.bank_reference)?,
            status: names.find("status", &c.status)?,
            amount: names.find_opt("amount", &c.amount)?,
            currency: names.find_opt("currency", &c.currency)?,
            reason_code: names.find_opt("reason_code", &c.reason_code)?,
            reason_text: names.find_opt("reason_text", &c.reason_text)?,
            value_date: names.find_opt("value_date", &c.value_date)?,
        })
    }

    fn parse_record(&self, columns: &Resolved, line: u64) -> Result<ResultLine, LineError> {
        let profile = self.profile;
        let word = self
            .lines
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
        let currency = match self.lines.field(columns.currency, line, "currency")? {
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
        let amount = match self.lines.field(columns.amount, line, "amount")? {
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
        let value_date = match self.lines.field(columns.value_date, line, "value_date")? {
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
            end_to_end_id: self
                .lines
                .field(columns.end_to_end_id, line, "end_to_end_id")?,
            bank_reference: self
                .lines
                .field(columns.bank_reference, line, "bank_reference")?,
            outcome,
            bank_status: Some(word),
            amount,
            instructed_amount: None,
            value_date,
            reason_code: self.lines.field(columns.reason_code, line, "reason_code")?,
            reason_text: self.lines.field(columns.reason_text, line, "reason_text")?,
            original_message_id: None,
        })
    }
}

impl<R: Read> Iterator for CsvResults<'_, R> {
    type Item = Result<ResultRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.lines.next_event()? {
                Err(e) => return Some(Err(ReadError::File(e))),
                Ok(CsvEvent::Header { line, names }) => match self.resolve(line, names.as_ref()) {
                    Ok(c) => self.columns = Some(c),
                    Err(e) => {
                        self.lines.stop();
                        return Some(Err(ReadError::File(e)));
                    }
                },
                Ok(CsvEvent::Row { line }) => {
                    let columns = self.columns.expect("the header comes before the rows");
                    return Some(
                        self.parse_record(&columns, line)
                            .map(ResultRecord::Transaction)
                            .map_err(ReadError::Line),
                    );
                }
            }
        }
    }
}
