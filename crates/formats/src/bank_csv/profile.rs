//! A bank's CSV layout, written in TOML and checked when loaded, and how it writes amounts.

use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use disburse_core::{Currency, Money};
use serde::Deserialize;

use crate::amount::money_from_decimal;
use crate::results::BankOutcome;

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
    pub(crate) fn outcome(self) -> BankOutcome {
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

pub(crate) fn default_delimiter() -> char {
    ','
}

pub(crate) fn default_date_format() -> String {
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
    pub(crate) name: String,
    pub(crate) encoding: CsvEncoding,
    pub(crate) delimiter: u8,
    pub(crate) header_lines: usize,
    pub(crate) currency: Option<Currency>,
    pub(crate) date_format: String,
    pub(crate) amount: AmountFormat,
    pub(crate) columns: ResultColumns,
    pub(crate) status_words: BTreeMap<String, StatusMeaning>,
    pub(crate) instruction: Option<InstructionLayout>,
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
        let c = &raw.columns;
        let status = Some(c.status.clone());
        let d = check_layout(
            raw.delimiter,
            &raw.amount,
            &raw.date_format,
            raw.header_lines,
            [
                &c.end_to_end_id,
                &c.bank_reference,
                &status,
                &c.amount,
                &c.currency,
                &c.reason_code,
                &c.reason_text,
                &c.value_date,
            ]
            .into_iter()
            .flatten(),
        )
        .map_err(err)?;
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
            delimiter: d,
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
        profile_from_toml(text)
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

    pub(crate) fn status(&self, word: &str) -> Option<StatusMeaning> {
        word_meaning(&self.status_words, word)
    }
}

/// What a bank's word means in a profile's word table: the word as written, else ignoring case.
pub(crate) fn word_meaning<M: Copy>(words: &BTreeMap<String, M>, word: &str) -> Option<M> {
    words.get(word).copied().or_else(|| {
        let lower = word.to_lowercase();
        words
            .iter()
            .find(|(w, _)| w.to_lowercase() == lower)
            .map(|(_, m)| *m)
    })
}

/// Any profile (result or statement) parsed from TOML, its error naming the profile.
pub(crate) fn profile_from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, ProfileError> {
    toml::from_str(text).map_err(|e| ProfileError {
        name: toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("name").and_then(|n| n.as_str().map(str::to_string)))
            .unwrap_or_default(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The checks every CSV layout passes, result file or statement alike: a usable delimiter
/// (returned as its byte), amount separators, a strftime date format, and columns that exist
/// (positions from 1; names only where there is a header).
pub(crate) fn check_layout<'c>(
    delimiter: char,
    amount: &AmountFormat,
    date_format: &str,
    header_lines: usize,
    columns: impl IntoIterator<Item = &'c ColumnRef>,
) -> Result<u8, String> {
    let d = delimiter;
    if !d.is_ascii() || matches!(d, '"' | '\n' | '\r') || d.is_ascii_alphanumeric() {
        return Err(format!(
            "delimiter {d:?} must be one ASCII punctuation or tab"
        ));
    }
    let decimal = amount.decimal_separator;
    if !matches!(decimal, '.' | ',') {
        return Err(format!("decimal_separator {decimal:?} must be '.' or ','"));
    }
    if let Some(t) = amount.thousands_separator {
        if t == decimal || t.is_ascii_digit() || t == '-' {
            return Err(format!(
                "thousands_separator {t:?} must differ from the decimal separator and digits"
            ));
        }
    }
    if StrftimeItems::new(date_format).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "date_format {date_format:?} is not a valid strftime format"
        ));
    }
    for column in columns {
        match column {
            ColumnRef::Index(0) => return Err("column positions start at 1".into()),
            ColumnRef::Name(name) if header_lines == 0 => {
                return Err(format!(
                    "column {name:?} is named, but header_lines is 0 so there is no header"
                ))
            }
            _ => {}
        }
    }
    Ok(d as u8)
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
