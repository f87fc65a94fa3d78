//! pain.002.001.10 (customer payment status report): what the bank says about the instructions
//! of a pain.001, one `TxInfAndSts` per answer.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::error::SandboxError;
use crate::plan::{Answer, PlannedAnswer};
use crate::util::{check_amount, check_text, fnv64};
use crate::xml::Xml;

/// The namespace of the status reports this module writes.
pub const PAIN002_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10";

/// The message name of the instructions the reports answer (`OrgnlMsgNmId`).
pub const ORIGINAL_MESSAGE_NAME: &str = "pain.001.001.09";

/// Writes a pain.002.001.10 status report of `answers` to the pain.001 whose MsgId is
/// `original_message_id`, created at `created_at`. Returns the number of transactions written.
///
/// Accepted answers are written with `TxSts` `ACCP`; paid ones with `ACSC` and the day in
/// `OrgnlTxRef/IntrBkSttlmDt`; rejected ones with `RJCT` and `StsRsnInf/Rsn/Cd`. As the standard
/// says, `OrgnlTxRef/Amt/InstdAmt` echoes the amount *instructed*: a status report never says
/// what the bank moved (that is in the camt.054, see [`crate::write_camt054`]). Every transaction
/// has its `AcctSvcrRef` ([`PlannedAnswer::bank_reference`]). Returns are not reported in a
/// pain.002 and are skipped. When the report rejects every one of the batch's
/// `batch_transfers` transfers, it also carries `GrpSts` and `PmtInfSts` `RJCT`, as banks do for
/// a message rejected as a whole (the most specific status, the transaction's, still gives each
/// reason). `OrgnlPmtInfId` is the original MsgId, as Disburse writes its pain.001
/// files (one PmtInf, with the MsgId as its id).
///
/// The report's own MsgId is derived from its content, so equal input gives equal bytes.
/// Everything is checked before the first byte is written.
pub fn write_pain002(
    answers: &[&PlannedAnswer],
    original_message_id: &str,
    created_at: DateTime<Utc>,
    batch_transfers: usize,
    out: impl Write,
) -> Result<usize, SandboxError> {
    check_text("original_message_id", original_message_id, 35)?;
    let answers: Vec<&PlannedAnswer> = answers
        .iter()
        .copied()
        .filter(|a| !matches!(a.answer, Answer::Returned { .. }))
        .collect();
    let mut key = format!("pain.002|{original_message_id}|{}", created_at.to_rfc3339());
    for a in &answers {
        check_text("end_to_end_id", &a.end_to_end_id, 35)?;
        let reference = a.bank_reference();
        check_text("bank_reference", &reference, 35)?;
        match &a.answer {
            Answer::Paid { .. } => check_amount("instructed amount", a.instructed)?,
            Answer::Rejected { code } => check_text("reason code", code, 4)?,
            Answer::Accepted | Answer::Returned { .. } => {}
        }
        key.push_str(&format!(
            "|{}|{}|{reference}",
            a.end_to_end_id,
            a.answer.name()
        ));
    }
    let message_id = format!(
        "SBX-P002-{}-{:08X}",
        created_at.format("%Y%m%d"),
        fnv64(key.as_bytes()) >> 32
    );

    let mut x = Xml::document(out, PAIN002_NAMESPACE)?;
    x.open("CstmrPmtStsRpt")?;
    x.open("GrpHdr")?;
    x.leaf("MsgId", &message_id)?;
    x.leaf("CreDtTm", &iso_date_time(created_at))?;
    x.wrapped("InitgPty", "Nm", crate::BANK_NAME)?;
    x.close()?;
    let all_rejected = answers.len() == batch_transfers
        && !answers.is_empty()
        && answers
            .iter()
            .all(|a| matches!(a.answer, Answer::Rejected { .. }));
    x.open("OrgnlGrpInfAndSts")?;
    x.leaf("OrgnlMsgId", original_message_id)?;
    x.leaf("OrgnlMsgNmId", ORIGINAL_MESSAGE_NAME)?;
    if all_rejected {
        x.leaf("GrpSts", "RJCT")?;
    }
    x.close()?;
    if !answers.is_empty() {
        x.open("OrgnlPmtInfAndSts")?;
        x.leaf("OrgnlPmtInfId", original_message_id)?;
        if all_rejected {
            x.leaf("PmtInfSts", "RJCT")?;
        }
        for a in &answers {
            write_transaction(&mut x, a)?;
        }
        x.close()?;
    }
    x.close()?;
    x.finish()?;
    Ok(answers.len())
}

fn write_transaction<W: Write>(x: &mut Xml<W>, a: &PlannedAnswer) -> std::io::Result<()> {
    x.open("TxInfAndSts")?;
    x.leaf("OrgnlEndToEndId", &a.end_to_end_id)?;
    match &a.answer {
        Answer::Accepted => x.leaf("TxSts", "ACCP")?,
        Answer::Paid { .. } => x.leaf("TxSts", "ACSC")?,
        Answer::Rejected { code } => {
            x.leaf("TxSts", "RJCT")?;
            x.open("StsRsnInf")?;
            x.wrapped("Rsn", "Cd", code)?;
            if let Some(text) = crate::reason_text(code) {
                x.leaf("AddtlInf", text)?;
            }
            x.close()?;
        }
        Answer::Returned { .. } => unreachable!("returns are filtered out"),
    }
    x.leaf("AcctSvcrRef", &a.bank_reference())?;
    x.open("OrgnlTxRef")?;
    x.open("Amt")?;
    x.amount("InstdAmt", a.instructed)?;
    x.close()?;
    if let Answer::Paid { .. } = &a.answer {
        x.leaf("IntrBkSttlmDt", &a.on_day.format("%Y-%m-%d").to_string())?;
    }
    x.close()?;
    x.close()
}

/// ISO 20022 `ISODateTime` in UTC, to the second.
pub(crate) fn iso_date_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}
