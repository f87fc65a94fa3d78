//! camt.054.001.08 (bank-to-customer debit/credit notification): the bookings on our account,
//! one `Ntry` per payment (a debit) or return (a credit).

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::error::SandboxError;
use crate::pain002::iso_date_time;
use crate::plan::{Answer, PlannedAnswer};
use crate::util::{check_amount, check_iban, check_text, fnv64};
use crate::xml::Xml;

/// The namespace of the notifications this module writes.
pub const CAMT054_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";

/// Writes a camt.054.001.08 notification of the bookings `answers` made on our account
/// `account_iban`, created at `created_at`. Returns the number of entries written.
///
/// A payment is a booked debit (`DBIT`, `Sts/Cd` `BOOK`) of the amount really paid, with bank
/// transaction code PMNT/ICDT/ESCT, the instructed amount in `AmtDtls/InstdAmt` and the
/// end-to-end id and `AcctSvcrRef` in `NtryDtls/TxDtls/Refs`. A return is a booked credit
/// (`CRDT`) of what came back (all of the payment, or part of it) with code PMNT/ICDT/RRTN and `RtrInf/Rsn/Cd`; it is a new
/// booking, not the correction of a wrong one, so it has no `RvslInd`. Booking and value date are
/// the answer's day. Acceptances and rejections move no money and are skipped: they are only
/// reported in a pain.002 (see [`crate::write_pain002`]).
///
/// The notification is written on one physical line, as some banks do. Its own MsgId (also its
/// `Ntfctn/Id`) is derived from its content, so equal input gives equal bytes. Everything is
/// checked before the first byte is written.
pub fn write_camt054(
    answers: &[&PlannedAnswer],
    account_iban: &str,
    created_at: DateTime<Utc>,
    out: impl Write,
) -> Result<usize, SandboxError> {
    check_iban("account_iban", account_iban)?;
    let answers: Vec<&PlannedAnswer> = answers
        .iter()
        .copied()
        .filter(|a| matches!(a.answer, Answer::Paid { .. } | Answer::Returned { .. }))
        .collect();
    let mut key = format!("camt.054|{account_iban}|{}", created_at.to_rfc3339());
    for a in &answers {
        check_text("end_to_end_id", &a.end_to_end_id, 35)?;
        let reference = a.bank_reference();
        check_text("bank_reference", &reference, 35)?;
        check_amount("instructed amount", a.instructed)?;
        match &a.answer {
            Answer::Paid { amount, .. } => check_amount("paid amount", *amount)?,
            Answer::Returned { code, .. } => check_text("reason code", code, 4)?,
            Answer::Accepted | Answer::Rejected { .. } => {}
        }
        key.push_str(&format!(
            "|{}|{}|{reference}",
            a.end_to_end_id,
            a.answer.name()
        ));
    }
    let message_id = format!(
        "SBX-C054-{}-{:08X}",
        created_at.format("%Y%m%d"),
        fnv64(key.as_bytes()) >> 32
    );
    let created = iso_date_time(created_at);

    let mut x = Xml::one_line_document(out, CAMT054_NAMESPACE)?;
    x.open("BkToCstmrDbtCdtNtfctn")?;
    x.open("GrpHdr")?;
    x.leaf("MsgId", &message_id)?;
    x.leaf("CreDtTm", &created)?;
    x.close()?;
    x.open("Ntfctn")?;
    x.leaf("Id", &message_id)?;
    x.leaf("CreDtTm", &created)?;
    x.open("Acct")?;
    x.wrapped("Id", "IBAN", account_iban)?;
    x.open("Svcr")?;
    x.wrapped("FinInstnId", "Nm", crate::BANK_NAME)?;
    x.close()?;
    x.close()?;
    for a in &answers {
        write_entry(&mut x, a)?;
    }
    x.close()?;
    x.close()?;
    x.finish()?;
    Ok(answers.len())
}

fn write_entry<W: Write>(x: &mut Xml<W>, a: &PlannedAnswer) -> std::io::Result<()> {
    let (amount, direction, subfamily) = match &a.answer {
        Answer::Paid { amount, .. } => (*amount, "DBIT", "ESCT"),
        Answer::Returned { amount, .. } => (*amount, "CRDT", "RRTN"),
        Answer::Accepted | Answer::Rejected { .. } => unreachable!("filtered out"),
    };
    let reference = a.bank_reference();
    let day = a.on_day.format("%Y-%m-%d").to_string();
    x.open("Ntry")?;
    x.amount("Amt", amount)?;
    x.leaf("CdtDbtInd", direction)?;
    x.wrapped("Sts", "Cd", "BOOK")?;
    x.wrapped("BookgDt", "Dt", &day)?;
    x.wrapped("ValDt", "Dt", &day)?;
    x.leaf("AcctSvcrRef", &reference)?;
    bank_transaction_code(x, subfamily)?;
    x.open("NtryDtls")?;
    x.open("TxDtls")?;
    x.open("Refs")?;
    x.leaf("AcctSvcrRef", &reference)?;
    x.leaf("EndToEndId", &a.end_to_end_id)?;
    x.close()?;
    x.amount("Amt", amount)?;
    x.leaf("CdtDbtInd", direction)?;
    if let Answer::Paid { .. } = a.answer {
        x.open("AmtDtls")?;
        x.open("InstdAmt")?;
        x.amount("Amt", a.instructed)?;
        x.close()?;
        x.close()?;
    }
    bank_transaction_code(x, subfamily)?;
    if let Answer::Returned { code, .. } = &a.answer {
        x.open("RtrInf")?;
        x.wrapped("Rsn", "Cd", code)?;
        if let Some(text) = crate::reason_text(code) {
            x.leaf("AddtlInf", text)?;
        }
        x.close()?;
    }
    x.close()?;
    x.close()?;
    x.close()
}

/// `BkTxCd/Domn`: PMNT (payments), ICDT (issued credit transfers), `subfamily`.
fn bank_transaction_code<W: Write>(x: &mut Xml<W>, subfamily: &str) -> std::io::Result<()> {
    x.open("BkTxCd")?;
    x.open("Domn")?;
    x.leaf("Cd", "PMNT")?;
    x.open("Fmly")?;
    x.leaf("Cd", "ICDT")?;
    x.leaf("SubFmlyCd", subfamily)?;
    x.close()?;
    x.close()?;
    x.close()
}
