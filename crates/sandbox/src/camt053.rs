//! camt.053.001.08 (bank-to-customer statement): what the sandbox bank booked on our account over
//! a period, as a bank states it: the booked opening and closing balances, the electronic sequence
//! number, and one `Ntry` per booking. A batch the bank paid is booked as ONE debit of what it
//! moved for that batch (`NtryDtls/Btch` with the pain.001's MsgId and the number of
//! transactions), as many banks do; returns are credits; charges are their own entries.

use std::io::Write;

use chrono::NaiveDate;
use disburse_core::Money;

use crate::error::SandboxError;
use crate::util::{check_iban, check_text};
use crate::xml::Xml;

/// The namespace of the statements this module writes.
pub const CAMT053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

/// One booking on the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Booking {
    /// A whole batch paid as one debit of `amount` (what the bank moved for it).
    BatchDebit {
        message_id: String,
        transactions: u64,
        amount: Money,
    },
    /// The money of a paid transfer came back.
    Return {
        end_to_end_id: String,
        code: String,
        amount: Money,
    },
    /// The bank's charges.
    Fee { amount: Money },
    /// A debit of the bank's own making, with no instruction of ours behind it.
    Debit { reference: String, amount: Money },
}

/// Writes a statement of `account_iban` for `from..=to` with electronic sequence `sequence`,
/// opening at `opening` (signed minor units), booking `bookings` on `to`. Returns the closing
/// balance in minor units. Everything is checked before the first byte is written.
pub fn write_camt053(
    account_iban: &str,
    sequence: u64,
    from: NaiveDate,
    to: NaiveDate,
    opening: Money,
    bookings: &[Booking],
    out: impl Write,
) -> Result<i64, SandboxError> {
    check_iban("account_iban", account_iban)?;
    let mut closing = opening.amount_minor();
    for b in bookings {
        let (amount, debit) = match b {
            Booking::BatchDebit {
                message_id, amount, ..
            } => {
                check_text("message_id", message_id, 35)?;
                (*amount, true)
            }
            Booking::Return {
                end_to_end_id,
                code,
                amount,
            } => {
                check_text("end_to_end_id", end_to_end_id, 35)?;
                check_text("reason code", code, 4)?;
                (*amount, false)
            }
            Booking::Fee { amount } => (*amount, true),
            Booking::Debit { reference, amount } => {
                check_text("reference", reference, 35)?;
                (*amount, true)
            }
        };
        if amount.currency() != opening.currency() || !amount.is_positive() {
            return Err(SandboxError::Invalid {
                field: "booking".into(),
                value: amount.to_string(),
                message: format!("cannot be booked on a {} statement", opening.currency()),
            });
        }
        let signed = if debit {
            -amount.amount_minor()
        } else {
            amount.amount_minor()
        };
        closing = closing
            .checked_add(signed)
            .ok_or_else(|| SandboxError::Invalid {
                field: "closing balance".into(),
                value: closing.to_string(),
                message: "overflows".into(),
            })?;
    }
    let ccy = opening.currency();
    let id = format!("SBX-C053-{}-{sequence:06}", to.format("%Y%m%d"));
    let day = to.format("%Y-%m-%d").to_string();
    let mut x = Xml::document(out, CAMT053_NAMESPACE)?;
    x.open("BkToCstmrStmt")?;
    x.open("GrpHdr")?;
    x.leaf("MsgId", &id)?;
    x.leaf("CreDtTm", &format!("{day}T20:00:00+00:00"))?;
    x.close()?;
    x.open("Stmt")?;
    x.leaf("Id", &id)?;
    x.leaf("ElctrncSeqNb", &sequence.to_string())?;
    x.open("FrToDt")?;
    x.leaf(
        "FrDtTm",
        &format!("{}T00:00:00+00:00", from.format("%Y-%m-%d")),
    )?;
    x.leaf("ToDtTm", &format!("{day}T23:59:59+00:00"))?;
    x.close()?;
    x.open("Acct")?;
    x.wrapped("Id", "IBAN", account_iban)?;
    x.close()?;
    for (code, minor, date) in [
        ("OPBD", opening.amount_minor(), from),
        ("CLBD", closing, to),
    ] {
        x.open("Bal")?;
        x.open("Tp")?;
        x.wrapped("CdOrPrtry", "Cd", code)?;
        x.close()?;
        x.amount("Amt", Money::from_minor(minor.abs(), ccy))?;
        x.leaf("CdtDbtInd", if minor < 0 { "DBIT" } else { "CRDT" })?;
        x.wrapped("Dt", "Dt", &date.format("%Y-%m-%d").to_string())?;
        x.close()?;
    }
    for (i, b) in bookings.iter().enumerate() {
        let reference = format!("SBX-STMT-{sequence}-{:04}", i + 1);
        let (amount, dir, family, sub) = match b {
            Booking::BatchDebit { amount, .. } => (*amount, "DBIT", "ICDT", "ESCT"),
            Booking::Return { amount, .. } => (*amount, "CRDT", "ICDT", "RRTN"),
            Booking::Fee { amount } => (*amount, "DBIT", "CCRD", "CHRG"),
            Booking::Debit { amount, .. } => (*amount, "DBIT", "ICDT", "ESCT"),
        };
        x.open("Ntry")?;
        x.amount("Amt", amount)?;
        x.leaf("CdtDbtInd", dir)?;
        x.wrapped("Sts", "Cd", "BOOK")?;
        x.wrapped("BookgDt", "Dt", &day)?;
        x.wrapped("ValDt", "Dt", &day)?;
        let own_reference = match b {
            Booking::Debit { reference, .. } => reference.clone(),
            _ => reference,
        };
        x.leaf("AcctSvcrRef", &own_reference)?;
        x.open("BkTxCd")?;
        x.open("Domn")?;
        x.leaf("Cd", "PMNT")?;
        x.open("Fmly")?;
        x.leaf("Cd", family)?;
        x.leaf("SubFmlyCd", sub)?;
        x.close()?;
        x.close()?;
        x.close()?;
        match b {
            Booking::BatchDebit {
                message_id,
                transactions,
                ..
            } => {
                x.open("NtryDtls")?;
                x.open("Btch")?;
                x.leaf("MsgId", message_id)?;
                x.leaf("NbOfTxs", &transactions.to_string())?;
                x.close()?;
                x.close()?;
            }
            Booking::Return {
                end_to_end_id,
                code,
                amount,
            } => {
                x.open("NtryDtls")?;
                x.open("TxDtls")?;
                x.open("Refs")?;
                x.leaf("EndToEndId", end_to_end_id)?;
                x.close()?;
                x.amount("Amt", *amount)?;
                x.leaf("CdtDbtInd", "CRDT")?;
                x.open("RtrInf")?;
                x.wrapped("Rsn", "Cd", code)?;
                x.close()?;
                x.close()?;
                x.close()?;
            }
            Booking::Fee { .. } | Booking::Debit { .. } => {}
        }
        x.close()?;
    }
    x.close()?;
    x.close()?;
    x.finish()?;
    Ok(closing)
}
