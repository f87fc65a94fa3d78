//! The paper bank's account statement (the Myanmar bank that takes printed instructions and
//! writes only about failures): a CSV file, one line per movement with the balance after it,
//! `Txn Date,Txn No,Reference,Amount,Balance,Statement`, dates as `05-11-2026`, a debit negative.
//! For a bank that never says "paid", this file is the only proof that a silent payout was.

use std::io::Write;

use chrono::NaiveDate;
use disburse_core::Money;

use crate::error::SandboxError;
use crate::util::{check_amount, check_text};

/// One movement on the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperBooking {
    pub day: NaiveDate,
    /// The payout number the bank was given on the instruction sheet, when it has one.
    pub reference: Option<String>,
    /// Signed: a debit is negative.
    pub amount: Money,
}

/// Writes statement number `sequence` opening at `opening`; returns the closing balance in
/// minor units. Everything is checked before the first byte is written.
pub fn write_paper_statement(
    sequence: u64,
    opening: Money,
    bookings: &[PaperBooking],
    mut out: impl Write,
) -> Result<i64, SandboxError> {
    let mut balance = opening.amount_minor();
    let mut lines = Vec::with_capacity(bookings.len());
    for (i, b) in bookings.iter().enumerate() {
        if b.amount.currency() != opening.currency() {
            return Err(SandboxError::Invalid {
                field: format!("bookings[{i}].amount"),
                value: b.amount.to_string(),
                message: format!("is not in the account's currency {}", opening.currency()),
            });
        }
        let unsigned = Money::from_minor(b.amount.amount_minor().abs(), b.amount.currency());
        check_amount("amount", unsigned)?;
        if let Some(r) = &b.reference {
            check_text("reference", r, 35)?;
        }
        balance = balance
            .checked_add(b.amount.amount_minor())
            .ok_or_else(|| SandboxError::Invalid {
                field: format!("bookings[{i}].amount"),
                value: b.amount.to_string(),
                message: "takes the balance beyond what an amount holds".into(),
            })?;
        lines.push(format!(
            "{},MB-{sequence}-{},{},{},{}",
            b.day.format("%d-%m-%Y"),
            i + 1,
            b.reference.as_deref().unwrap_or(""),
            b.amount.to_decimal_string(),
            Money::from_minor(balance, opening.currency()).to_decimal_string()
        ));
    }
    writeln!(out, "Txn Date,Txn No,Reference,Amount,Balance,Statement")?;
    for l in lines {
        writeln!(out, "{l},{sequence}")?;
    }
    Ok(balance)
}
