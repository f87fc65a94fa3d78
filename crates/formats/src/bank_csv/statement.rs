//! A bank's account statement as a CSV file: one line per movement of money on our account, with
//! the balance after it. Read into the same [`StatementRecord`]s as camt.053
//! ([`crate::statements`]), so continuity, matching and reconciliation do not know which it was.
//!
//! CSV statements carry no opening or closing balance element: the opening balance is the first
//! line's balance less its amount, the closing balance the last line's balance, and every line's
//! balance must follow from the line before (a line that does not is refused with its line: a
//! movement is missing, or the file is not the bank's). The header record therefore comes *after*
//! the entries; a caller that reads the whole file before applying it (as a statement import does)
//! sees it before it writes anything.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use chrono::NaiveDate;
use disburse_core::{Currency, Money};
use serde::Deserialize;

use super::lines::{CsvEvent, CsvLines};
use super::profile::{
    check_layout, default_date_format, default_delimiter, parse_amount, profile_from_toml,
    word_meaning, AmountFormat, ColumnRef, CsvEncoding, ProfileError,
};
use crate::error::{FormatError, FormatErrorKind, LineError, ReadError};
use crate::statements::{EntryBatch, EntryKind, StatementEntry, StatementHeader, StatementRecord};

/// Where each field of a statement line is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementColumns {
    pub booking_date: ColumnRef,
    pub value_date: Option<ColumnRef>,
    /// A signed amount (a debit negative) ...
    pub amount: Option<ColumnRef>,
    /// ... or two columns, money out and money in, each positive.
    pub debit: Option<ColumnRef>,
    pub credit: Option<ColumnRef>,
    /// Without it, amounts are in the profile's `currency`.
    pub currency: Option<ColumnRef>,
    /// The account's balance after the line.
    pub balance: ColumnRef,
    /// Our payout number, as the bank echoes the payment reference we gave it.
    pub end_to_end_id: Option<ColumnRef>,
    pub bank_reference: Option<ColumnRef>,
    /// The reference of a whole batch booked as one debit (our payment file's message id).
    pub batch_reference: Option<ColumnRef>,
    /// The bank's word for the kind of movement; see `kind_words`.
    pub kind: Option<ColumnRef>,
    /// The account the statement is of (IBAN or number), the same on every line.
    pub account: Option<ColumnRef>,
    /// The bank's running number of this statement, the same on every line.
    pub statement_number: Option<ColumnRef>,
}

/// What a bank's word for a kind of movement means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindMeaning {
    Payment,
    Return,
    Charges,
    Other,
}

impl KindMeaning {
    fn kind(self) -> EntryKind {
        match self {
            KindMeaning::Payment => EntryKind::Payment,
            KindMeaning::Return => EntryKind::Return,
            KindMeaning::Charges => EntryKind::Charges,
            KindMeaning::Other => EntryKind::Other,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatementProfile {
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
    columns: StatementColumns,
    #[serde(default)]
    kind_words: BTreeMap<String, KindMeaning>,
}

/// The layout of one bank's CSV statements, checked when it is loaded.
///
/// ```toml
/// name = "englishbank-statement"
/// header_lines = 1
/// currency = "EUR"
/// date_format = "%d/%m/%Y"
/// [columns]
/// booking_date = "Date"
/// amount = "Amount"          # signed; or debit = "Paid Out" and credit = "Paid In"
/// balance = "Balance"
/// end_to_end_id = "Payment Reference"
/// kind = "Type"
/// [kind_words]
/// TRF = "payment"            # payment | return | charges | other
/// ```
///
/// Without a `kind` column, a debit is a payment, a credit that names one of our payment
/// references a return, and any other credit is other money in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawStatementProfile")]
pub struct CsvStatementProfile {
    name: String,
    encoding: CsvEncoding,
    delimiter: u8,
    header_lines: usize,
    currency: Option<Currency>,
    date_format: String,
    amount: AmountFormat,
    columns: StatementColumns,
    kind_words: BTreeMap<String, KindMeaning>,
}

impl TryFrom<RawStatementProfile> for CsvStatementProfile {
    type Error = ProfileError;

    fn try_from(raw: RawStatementProfile) -> Result<Self, ProfileError> {
        let err = |message: String| ProfileError {
            name: raw.name.clone(),
            message,
        };
        if raw.name.trim().is_empty() {
            return Err(err("name is empty".into()));
        }
        let c = &raw.columns;
        match (&c.amount, &c.debit, &c.credit) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => {
                return Err(err(
                    "needs either an amount column (signed) or both a debit and a credit column"
                        .into(),
                ))
            }
        }
        let d = check_layout(
            raw.delimiter,
            &raw.amount,
            &raw.date_format,
            raw.header_lines,
            [
                Some(&c.booking_date),
                c.value_date.as_ref(),
                c.amount.as_ref(),
                c.debit.as_ref(),
                c.credit.as_ref(),
                c.currency.as_ref(),
                Some(&c.balance),
                c.end_to_end_id.as_ref(),
                c.bank_reference.as_ref(),
                c.batch_reference.as_ref(),
                c.kind.as_ref(),
                c.account.as_ref(),
                c.statement_number.as_ref(),
            ]
            .into_iter()
            .flatten(),
        )
        .map_err(err)?;
        if c.currency.is_none() && raw.currency.is_none() {
            return Err(err("needs a currency column or a default currency".into()));
        }
        if c.kind.is_some() && raw.kind_words.is_empty() {
            return Err(err("a kind column needs kind_words".into()));
        }
        if c.kind.is_none() && !raw.kind_words.is_empty() {
            return Err(err("kind_words without a kind column".into()));
        }
        Ok(CsvStatementProfile {
            delimiter: d,
            name: raw.name,
            encoding: raw.encoding,
            header_lines: raw.header_lines,
            currency: raw.currency,
            date_format: raw.date_format,
            amount: raw.amount,
            columns: raw.columns,
            kind_words: raw.kind_words,
        })
    }
}

impl CsvStatementProfile {
    /// Parses and checks a statement profile written in TOML.
    pub fn from_toml(text: &str) -> Result<CsvStatementProfile, ProfileError> {
        profile_from_toml(text)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self, word: &str) -> Option<KindMeaning> {
        word_meaning(&self.kind_words, word)
    }
}

/// Column positions (0-based) once the header is known.
#[derive(Debug, Clone, Copy, Default)]
struct Resolved {
    booking_date: usize,
    value_date: Option<usize>,
    amount: Option<usize>,
    debit: Option<usize>,
    credit: Option<usize>,
    currency: Option<usize>,
    balance: usize,
    end_to_end_id: Option<usize>,
    bank_reference: Option<usize>,
    batch_reference: Option<usize>,
    kind: Option<usize>,
    account: Option<usize>,
    statement_number: Option<usize>,
}

/// What the lines so far say of the statement as a whole.
#[derive(Default)]
struct Running {
    header_line: u64,
    opening: Option<Money>,
    /// The balance after the last line, and that line.
    balance: Option<(Money, u64)>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// The value on the first line, and that line.
    account: Option<(String, u64)>,
    number: Option<(u64, u64)>,
}

/// Streaming reader of a CSV statement; see [`read_csv_statement`].
pub struct CsvStatement<'p, R: Read> {
    profile: &'p CsvStatementProfile,
    lines: CsvLines<R>,
    columns: Option<Resolved>,
    running: Running,
    ended: bool,
}

/// Reads a CSV statement laid out as `profile` says: one [`StatementRecord::Entry`] per line,
/// then the [`StatementRecord::Header`] the lines add up to. A line that cannot be read, or
/// whose balance does not follow, is a [`ReadError::Line`]; a file that does not fit the profile,
/// or has no lines, a [`ReadError::File`].
pub fn read_csv_statement<R: BufRead>(
    profile: &CsvStatementProfile,
    reader: R,
) -> CsvStatement<'_, R> {
    CsvStatement {
        profile,
        lines: CsvLines::open(
            reader,
            &profile.name,
            profile.encoding,
            profile.delimiter,
            profile.header_lines,
            "statement line",
        ),
        columns: None,
        running: Running::default(),
        ended: false,
    }
}

/// The last four characters: an account number is never shown whole.
fn masked(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}

impl<R: Read> CsvStatement<'_, R> {
    fn resolve(
        &self,
        line: u64,
        header: Option<&csv::ByteRecord>,
    ) -> Result<Resolved, FormatError> {
        let names = self.lines.header_names(line, header)?;
        let c = &self.profile.columns;
        Ok(Resolved {
            booking_date: names.find("booking_date", &c.booking_date)?,
            value_date: names.find_opt("value_date", &c.value_date)?,
            amount: names.find_opt("amount", &c.amount)?,
            debit: names.find_opt("debit", &c.debit)?,
            credit: names.find_opt("credit", &c.credit)?,
            currency: names.find_opt("currency", &c.currency)?,
            balance: names.find("balance", &c.balance)?,
            end_to_end_id: names.find_opt("end_to_end_id", &c.end_to_end_id)?,
            bank_reference: names.find_opt("bank_reference", &c.bank_reference)?,
            batch_reference: names.find_opt("batch_reference", &c.batch_reference)?,
            kind: names.find_opt("kind", &c.kind)?,
            account: names.find_opt("account", &c.account)?,
            statement_number: names.find_opt("statement_number", &c.statement_number)?,
        })
    }

    fn date(
        &self,
        index: Option<usize>,
        line: u64,
        field: &str,
    ) -> Result<Option<NaiveDate>, LineError> {
        let Some(text) = self.lines.field(index, line, field)? else {
            return Ok(None);
        };
        NaiveDate::parse_from_str(&text, &self.profile.date_format)
            .map(Some)
            .map_err(|e| {
                LineError::new(
                    line,
                    field,
                    format!(
                        "{text:?} does not match the date format {:?}: {e}",
                        self.profile.date_format
                    ),
                )
            })
    }

    fn money(
        &self,
        index: Option<usize>,
        line: u64,
        field: &str,
        currency: Currency,
    ) -> Result<Option<Money>, LineError> {
        let Some(text) = self.lines.field(index, line, field)? else {
            return Ok(None);
        };
        // Statements are signed (a debit, an overdrawn balance): a leading minus, then the
        // amount as the bank writes it.
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text.as_str()),
        };
        let m = parse_amount(unsigned, &self.profile.amount, currency)
            .map_err(|m| LineError::new(line, field, m))?;
        Ok(Some(if negative {
            Money::from_minor(-m.amount_minor(), currency)
        } else {
            m
        }))
    }

    /// A value that must be the same on every line (the account, the statement's number).
    fn same_on_every_line<T: PartialEq + Clone>(
        seen: &mut Option<(T, u64)>,
        value: T,
        line: u64,
        field: &str,
        show: impl Fn(&T) -> String,
    ) -> Result<(), LineError> {
        match seen {
            None => {
                *seen = Some((value, line));
                Ok(())
            }
            Some((first, first_line)) if *first != value => Err(LineError::new(
                line,
                field,
                format!(
                    "is {}, but line {first_line} says {}: one statement is of one account and has one number",
                    show(&value),
                    show(first)
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    fn parse_record(&mut self, c: &Resolved, line: u64) -> Result<StatementEntry, LineError> {
        let profile = self.profile;
        let currency = match self.lines.field(c.currency, line, "currency")? {
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
        let amount = if c.amount.is_some() {
            self.money(c.amount, line, "amount", currency)?
                .ok_or_else(|| LineError::new(line, "amount", "is empty"))?
        } else {
            let debit = self.money(c.debit, line, "debit", currency)?;
            let credit = self.money(c.credit, line, "credit", currency)?;
            match (debit, credit) {
                (Some(d), None) if d.amount_minor() > 0 => {
                    Money::from_minor(-d.amount_minor(), currency)
                }
                (None, Some(k)) if k.amount_minor() > 0 => k,
                (Some(_), Some(_)) => {
                    return Err(LineError::new(
                        line,
                        "debit",
                        "and credit are both filled; a line moves money one way",
                    ))
                }
                (None, None) => {
                    return Err(LineError::new(line, "debit", "and credit are both empty"))
                }
                _ => return Err(LineError::new(
                    line,
                    "debit",
                    "a debit or credit column holds a negative or zero amount; they are written positive",
                )),
            }
        };
        let balance = self
            .money(Some(c.balance), line, "balance", currency)?
            .ok_or_else(|| LineError::new(line, "balance", "is empty"))?;
        let booking_date = self
            .date(Some(c.booking_date), line, "booking_date")?
            .ok_or_else(|| LineError::new(line, "booking_date", "is empty"))?;
        let value_date = self.date(c.value_date, line, "value_date")?;
        let end_to_end_id = self.lines.field(c.end_to_end_id, line, "end_to_end_id")?;
        let kind = match self.lines.field(c.kind, line, "kind")? {
            Some(word) => profile.kind(&word).map(KindMeaning::kind).ok_or_else(|| {
                let known: Vec<&str> = profile.kind_words.keys().map(String::as_str).collect();
                LineError::new(
                    line,
                    "kind",
                    format!(
                        "unknown word {word:?}; profile {:?} knows {}",
                        profile.name,
                        known.join(", ")
                    ),
                )
            })?,
            None if c.kind.is_some() => return Err(LineError::new(line, "kind", "is empty")),
            None if amount.amount_minor() < 0 => EntryKind::Payment,
            None if end_to_end_id.is_some() => EntryKind::Return,
            None => EntryKind::Other,
        };
        let batch = self
            .lines
            .field(c.batch_reference, line, "batch_reference")?
            .map(|reference| EntryBatch {
                message_id: Some(reference),
                ..EntryBatch::default()
            });
        if let Some(account) = self.lines.field(c.account, line, "account")? {
            let account: String = account.chars().filter(|ch| !ch.is_whitespace()).collect();
            Self::same_on_every_line(&mut self.running.account, account, line, "account", |a| {
                masked(a)
            })?;
        }
        if let Some(text) = self
            .lines
            .field(c.statement_number, line, "statement_number")?
        {
            let number: u64 = text.parse().map_err(|_| {
                LineError::new(
                    line,
                    "statement_number",
                    format!("{text:?} is not a number"),
                )
            })?;
            Self::same_on_every_line(
                &mut self.running.number,
                number,
                line,
                "statement_number",
                u64::to_string,
            )?;
        }
        // The running balance is the statement's own check of itself.
        match self.running.balance {
            Some((previous, previous_line)) => {
                if previous.currency() != currency {
                    return Err(LineError::new(
                        line,
                        "currency",
                        format!(
                            "is {currency}, but line {previous_line} is in {}",
                            previous.currency()
                        ),
                    ));
                }
                let expected = previous.amount_minor().checked_add(amount.amount_minor());
                if expected != Some(balance.amount_minor()) {
                    return Err(LineError::new(
                        line,
                        "balance",
                        format!(
                            "{} does not follow from line {previous_line}: its balance {} and this line's amount {} make {}; a movement is missing or the file is not the bank's",
                            balance.to_decimal_string(),
                            previous.to_decimal_string(),
                            amount.to_decimal_string(),
                            expected.map_or("more than an amount can hold".to_string(), |m| Money::from_minor(m, currency).to_decimal_string())
                        ),
                    ));
                }
            }
            None => {
                let opening = balance
                    .amount_minor()
                    .checked_sub(amount.amount_minor())
                    .ok_or_else(|| {
                        LineError::new(
                            line,
                            "balance",
                            "less the amount is more than an amount can hold",
                        )
                    })?;
                let opening = Money::from_minor(opening, currency);
                self.running.opening = Some(opening);
            }
        }
        self.running.balance = Some((balance, line));
        self.running.from = Some(
            self.running
                .from
                .map_or(booking_date, |d| d.min(booking_date)),
        );
        self.running.to = Some(
            self.running
                .to
                .map_or(booking_date, |d| d.max(booking_date)),
        );
        Ok(StatementEntry {
            line,
            amount,
            booked: true,
            booking_date: Some(booking_date),
            value_date,
            bank_reference: self.lines.field(c.bank_reference, line, "bank_reference")?,
            kind,
            transactions: if batch.is_some() { 0 } else { 1 },
            batch,
            end_to_end_id,
        })
    }

    /// The statement the lines added up to, once they are all read.
    fn header(&mut self) -> Result<StatementHeader, FormatError> {
        let r = std::mem::take(&mut self.running);
        let (Some(opening), Some((closing, _))) = (r.opening, r.balance) else {
            return Err(FormatError::new(
                r.header_line.max(1),
                FormatErrorKind::Layout(
                    "the statement has no lines: a CSV statement's balances are read from its lines' balance column"
                        .into(),
                ),
            ));
        };
        let number = r.number.map(|(n, _)| n);
        Ok(StatementHeader {
            line: r.header_line.max(1),
            message_id: None,
            statement_id: number.map(|n| n.to_string()),
            electronic_sequence: number,
            legal_sequence: None,
            account: r.account.map(|(a, _)| a),
            from: r.from,
            to: r.to,
            opening: Some(opening),
            closing: Some(closing),
        })
    }
}

impl<R: Read> Iterator for CsvStatement<'_, R> {
    type Item = Result<StatementRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            let Some(event) = self.lines.next_event() else {
                self.ended = true;
                return Some(
                    self.header()
                        .map(StatementRecord::Header)
                        .map_err(ReadError::File),
                );
            };
            match event {
                Err(e) => {
                    self.ended = true;
                    return Some(Err(ReadError::File(e)));
                }
                Ok(CsvEvent::Header { line, names }) => {
                    self.running.header_line = line;
                    match self.resolve(line, names.as_ref()) {
                        Ok(c) => self.columns = Some(c),
                        Err(e) => {
                            self.ended = true;
                            return Some(Err(ReadError::File(e)));
                        }
                    }
                }
                Ok(CsvEvent::Row { line }) => {
                    let columns = self.columns.expect("the header comes before the rows");
                    return Some(
                        self.parse_record(&columns, line)
                            .map(StatementRecord::Entry)
                            .map_err(ReadError::Line),
                    );
                }
            }
        }
    }
}
