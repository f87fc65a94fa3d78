//! Writing CSV files: a bank's payment file in its profile's layout and encoding, and the
//! console's exports; every cell neutralised against spreadsheet formulas (CSV injection).

use std::io::Write;

use encoding_rs::GBK;

use super::profile::{
    format_amount, CsvEncoding, CsvProfile, InstructionColumn, InstructionField, LineEnding,
};
use crate::error::WriteError;
use crate::transfer::{summarize, BatchSummary, CreditTransfer, CreditorAccount};

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
