//! ISO 20022 pain.001.001.09 (customer credit transfer initiation): the file we send a bank to
//! make it pay a batch of payouts, and a small reader of such files for a sandbox bank.
//!
//! The writer puts one payment-information block (PmtInf) per file, with the payout number as
//! both InstrId and EndToEndId: that is what the bank echoes back in pain.002 and camt, and how
//! results are matched. Everything a bank's schema check would refuse (text too long, a bad IBAN,
//! BIC or country, mixed currencies) is refused before the first byte is written. The output
//! validates against the official `pain.001.001.09.xsd` (see the tests).

use std::io::{BufRead, BufWriter, Write};

use chrono::{DateTime, NaiveDate, Utc};
use disburse_core::{Currency, Money};

use crate::amount::money_from_code;
use crate::error::{FormatError, FormatErrorKind, LineError, ReadError, WriteError};
use crate::results::message_name;
use crate::transfer::{summarize, BatchSummary, CreditTransfer, CreditorAccount};
use crate::xml::{Cursor, Step};

/// The namespace of the messages this module writes.
pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

/// The batch-level data of a pain.001 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pain001Header {
    /// Unique per file (at most 35 characters); banks refuse a MsgId they have seen.
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub requested_execution_date: NaiveDate,
    /// Our company, as the account holder of the debtor account.
    pub debtor_name: String,
    pub debtor_iban: String,
    pub debtor_bic: Option<String>,
    /// The currency of every transfer in the file.
    pub currency: Currency,
}

/// Writes `transfers` as one pain.001.001.09 message. Returns the number of transfers and their
/// control sum, as written in GrpHdr and PmtInf.
pub fn write<W: Write>(
    header: &Pain001Header,
    transfers: &[CreditTransfer],
    out: W,
) -> Result<BatchSummary, WriteError> {
    let summary = summarize(transfers, header.currency)?;
    validate_header(header)?;
    for t in transfers {
        validate_transfer(t)?;
    }
    let mut w = BufWriter::new(out);
    let ctrl_sum = summary.control_sum.to_decimal_string();
    let count = summary.count;
    let msg_id = escape(&header.message_id);
    let debtor = escape(&header.debtor_name);
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(w, r#"<Document xmlns="{NAMESPACE}">"#)?;
    writeln!(w, "  <CstmrCdtTrfInitn>")?;
    writeln!(w, "    <GrpHdr>")?;
    writeln!(w, "      <MsgId>{msg_id}</MsgId>")?;
    writeln!(
        w,
        "      <CreDtTm>{}</CreDtTm>",
        header.created_at.format("%Y-%m-%dT%H:%M:%S+00:00")
    )?;
    writeln!(w, "      <NbOfTxs>{count}</NbOfTxs>")?;
    writeln!(w, "      <CtrlSum>{ctrl_sum}</CtrlSum>")?;
    writeln!(w, "      <InitgPty><Nm>{debtor}</Nm></InitgPty>")?;
    writeln!(w, "    </GrpHdr>")?;
    writeln!(w, "    <PmtInf>")?;
    writeln!(w, "      <PmtInfId>{msg_id}</PmtInfId>")?;
    writeln!(w, "      <PmtMtd>TRF</PmtMtd>")?;
    writeln!(w, "      <NbOfTxs>{count}</NbOfTxs>")?;
    writeln!(w, "      <CtrlSum>{ctrl_sum}</CtrlSum>")?;
    writeln!(
        w,
        "      <ReqdExctnDt><Dt>{}</Dt></ReqdExctnDt>",
        header.requested_execution_date.format("%Y-%m-%d")
    )?;
    writeln!(w, "      <Dbtr><Nm>{debtor}</Nm></Dbtr>")?;
    writeln!(
        w,
        "      <DbtrAcct><Id><IBAN>{}</IBAN></Id><Ccy>{}</Ccy></DbtrAcct>",
        escape(&header.debtor_iban),
        header.currency
    )?;
    match &header.debtor_bic {
        Some(bic) => writeln!(
            w,
            "      <DbtrAgt><FinInstnId><BICFI>{}</BICFI></FinInstnId></DbtrAgt>",
            escape(bic)
        )?,
        None => writeln!(
            w,
            "      <DbtrAgt><FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId></DbtrAgt>"
        )?,
    }
    for t in transfers {
        write_transfer(&mut w, t)?;
    }
    writeln!(w, "    </PmtInf>")?;
    writeln!(w, "  </CstmrCdtTrfInitn>")?;
    writeln!(w, "</Document>")?;
    w.flush()?;
    Ok(summary)
}

fn write_transfer<W: Write>(w: &mut W, t: &CreditTransfer) -> std::io::Result<()> {
    let id = escape(&t.end_to_end_id);
    writeln!(w, "      <CdtTrfTxInf>")?;
    writeln!(
        w,
        "        <PmtId><InstrId>{id}</InstrId><EndToEndId>{id}</EndToEndId></PmtId>"
    )?;
    writeln!(
        w,
        r#"        <Amt><InstdAmt Ccy="{}">{}</InstdAmt></Amt>"#,
        t.amount.currency(),
        t.amount.to_decimal_string()
    )?;
    let bank_code = match &t.creditor_account {
        CreditorAccount::Other { bank_code, .. } => Some(bank_code.as_str()),
        CreditorAccount::Iban(_) => None,
    };
    if t.creditor_bic.is_some() || bank_code.is_some() {
        write!(w, "        <CdtrAgt><FinInstnId>")?;
        if let Some(bic) = &t.creditor_bic {
            write!(w, "<BICFI>{}</BICFI>", escape(bic))?;
        }
        if let Some(code) = bank_code {
            write!(
                w,
                "<ClrSysMmbId><MmbId>{}</MmbId></ClrSysMmbId>",
                escape(code)
            )?;
        }
        writeln!(w, "</FinInstnId></CdtrAgt>")?;
    }
    writeln!(
        w,
        "        <Cdtr><Nm>{}</Nm><PstlAdr><Ctry>{}</Ctry></PstlAdr></Cdtr>",
        escape(&t.creditor_name),
        escape(&t.creditor_country)
    )?;
    match &t.creditor_account {
        CreditorAccount::Iban(iban) => writeln!(
            w,
            "        <CdtrAcct><Id><IBAN>{}</IBAN></Id></CdtrAcct>",
            escape(iban)
        )?,
        CreditorAccount::Other { id, .. } => writeln!(
            w,
            "        <CdtrAcct><Id><Othr><Id>{}</Id></Othr></Id></CdtrAcct>",
            escape(id)
        )?,
    }
    if !t.remittance_info.is_empty() {
        writeln!(
            w,
            "        <RmtInf><Ustrd>{}</Ustrd></RmtInf>",
            escape(&t.remittance_info)
        )?;
    }
    writeln!(w, "      </CdtTrfTxInf>")
}

/// Escapes text for an XML element or attribute value.
pub(crate) fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn validate_header(h: &Pain001Header) -> Result<(), WriteError> {
    check_text(None, "message_id", &h.message_id, 35)?;
    check_text(None, "debtor_name", &h.debtor_name, 140)?;
    check_iban(None, "debtor_iban", &h.debtor_iban)?;
    if let Some(bic) = &h.debtor_bic {
        check_bic(None, "debtor_bic", bic)?;
    }
    Ok(())
}

fn validate_transfer(t: &CreditTransfer) -> Result<(), WriteError> {
    let id = Some(t.end_to_end_id.as_str());
    check_text(id, "end_to_end_id", &t.end_to_end_id, 35)?;
    check_text(id, "creditor_name", &t.creditor_name, 140)?;
    match &t.creditor_account {
        CreditorAccount::Iban(iban) => check_iban(id, "creditor_account", iban)?,
        CreditorAccount::Other {
            id: account,
            bank_code,
        } => {
            check_text(id, "creditor_account", account, 34)?;
            check_text(id, "creditor_bank_code", bank_code, 35)?;
        }
    }
    if let Some(bic) = &t.creditor_bic {
        check_bic(id, "creditor_bic", bic)?;
    }
    let country = &t.creditor_country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(WriteError::invalid(
            id,
            "creditor_country",
            format!("{country:?} is not an ISO 3166 country code of two upper-case letters"),
        ));
    }
    if !t.remittance_info.is_empty() {
        check_text(id, "remittance_info", &t.remittance_info, 140)?;
    }
    Ok(())
}

/// ISO 20022 MaxNText: 1..=max characters, and only characters XML 1.0 can carry.
fn check_text(payout: Option<&str>, field: &str, text: &str, max: usize) -> Result<(), WriteError> {
    if text.trim().is_empty() {
        return Err(WriteError::invalid(payout, field, "is empty"));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(WriteError::invalid(
            payout,
            field,
            format!("has {chars} characters; pain.001 allows at most {max}"),
        ));
    }
    if let Some(c) = text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(WriteError::invalid(
            payout,
            field,
            format!("contains the control character {c:?}, which XML cannot carry"),
        ));
    }
    Ok(())
}

/// Pattern of the schema (`[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}`) and the ISO 13616 check digits.
fn check_iban(payout: Option<&str>, field: &str, iban: &str) -> Result<(), WriteError> {
    // Account numbers never appear whole in an error: errors end up in logs.
    let bad = |why: &str| {
        WriteError::invalid(
            payout,
            field,
            format!("{} is not an IBAN: {why}", mask_account(iban)),
        )
    };
    let b = iban.as_bytes();
    if b.len() < 5 || b.len() > 34 {
        return Err(bad("wrong length"));
    }
    if !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b[4..].iter().all(u8::is_ascii_alphanumeric)
    {
        return Err(bad("use upper-case letters and digits, without spaces"));
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => u32::from(c.to_ascii_uppercase() - b'A') + 10,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    if rem != 1 {
        return Err(bad("the check digits do not match"));
    }
    Ok(())
}

/// `DE89…3000`: enough to find the account, not enough to use it.
pub(crate) fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Pattern of the schema: `[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?`.
fn check_bic(payout: Option<&str>, field: &str, bic: &str) -> Result<(), WriteError> {
    let b = bic.as_bytes();
    let upper_alnum = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let ok = (b.len() == 8 || b.len() == 11)
        && b[..4].iter().all(upper_alnum)
        && b[4..6].iter().all(u8::is_ascii_uppercase)
        && b[6..].iter().all(upper_alnum);
    if ok {
        Ok(())
    } else {
        Err(WriteError::invalid(
            payout,
            field,
            format!("{bic:?} is not a BIC (8 or 11 upper-case letters and digits)"),
        ))
    }
}

/// One transfer of a pain.001 file, as a bank reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructedTransfer {
    /// Line where the CdtTrfTxInf element starts.
    pub line: u64,
    pub end_to_end_id: String,
    pub amount: Money,
    /// The IBAN, or the other account id.
    pub creditor_account: String,
    pub creditor_name: String,
}

/// Streaming reader of a pain.001 file (any pain.001.001.xx version): the transfers, and the
/// MsgId read from the group header before the first transfer.
pub struct Pain001Reader<R: BufRead> {
    cursor: Cursor<R>,
    message_id: String,
    tx: Option<TxFields>,
    done: bool,
}

#[derive(Default)]
struct TxFields {
    base: usize,
    line: u64,
    end_to_end_id: Option<String>,
    amount: Option<(String, Option<String>)>,
    account: Option<String>,
    name: Option<String>,
}

/// Opens a pain.001 file and reads up to its MsgId. Anything that is not a pain.001, or a
/// pain.001 without a MsgId before its first transfer, is a [`FormatError`].
pub fn read_transfers<R: BufRead>(reader: R) -> Result<Pain001Reader<R>, FormatError> {
    let mut cursor = Cursor::new(reader);
    loop {
        match cursor.next_step()? {
            Step::Start { line } if cursor.depth() == 1 => {
                let ns = cursor.root_namespace().unwrap_or("");
                if cursor.name() != "Document" || !message_name(ns).starts_with("pain.001.") {
                    return Err(FormatError::new(
                        line,
                        FormatErrorKind::UnknownMessage(format!(
                            "expected a pain.001 payment instruction, found <{}> in namespace {ns:?}",
                            cursor.name()
                        )),
                    ));
                }
            }
            Step::Start { line } if cursor.name() == "CdtTrfTxInf" || cursor.name() == "PmtInf" => {
                return Err(FormatError::new(
                    line,
                    FormatErrorKind::Malformed("no GrpHdr/MsgId before the payments".into()),
                ));
            }
            Step::End { .. } if cursor.path().ends_with("GrpHdr/MsgId") => {
                let message_id = cursor.text().to_string();
                return Ok(Pain001Reader {
                    cursor,
                    message_id,
                    tx: None,
                    done: false,
                });
            }
            Step::Eof => {
                return Err(cursor.error(FormatErrorKind::Malformed("no GrpHdr/MsgId".into())))
            }
            _ => {}
        }
    }
}

impl<R: BufRead> Pain001Reader<R> {
    /// The MsgId of the file (GrpHdr/MsgId).
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    fn finish(tx: TxFields) -> Result<InstructedTransfer, LineError> {
        let line = tx.line;
        let missing = |field: &str| LineError::new(line, field, "missing");
        let (text, ccy) = tx.amount.ok_or_else(|| missing("amount"))?;
        let amount = money_from_code(&text, ccy.as_deref())
            .map_err(|m| LineError::new(line, "amount", m))?;
        Ok(InstructedTransfer {
            line,
            end_to_end_id: tx.end_to_end_id.ok_or_else(|| missing("end_to_end_id"))?,
            amount,
            creditor_account: tx.account.ok_or_else(|| missing("creditor_account"))?,
            creditor_name: tx.name.ok_or_else(|| missing("creditor_name"))?,
        })
    }
}

impl<R: BufRead> Iterator for Pain001Reader<R> {
    type Item = Result<InstructedTransfer, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let step = match self.cursor.next_step() {
                Ok(step) => step,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::File(e)));
                }
            };
            match step {
                Step::Start { line }
                    if self.tx.is_none() && self.cursor.name() == "CdtTrfTxInf" =>
                {
                    self.tx = Some(TxFields {
                        base: self.cursor.path_len(),
                        line,
                        ..TxFields::default()
                    });
                }
                Step::End { .. } => {
                    let Some(tx) = &mut self.tx else { continue };
                    let text = || Some(self.cursor.text().to_string()).filter(|t| !t.is_empty());
                    match self.cursor.relative(tx.base) {
                        "" => {
                            let tx = self.tx.take().expect("checked above");
                            return Some(Self::finish(tx).map_err(ReadError::Line));
                        }
                        "PmtId/EndToEndId" => tx.end_to_end_id = text(),
                        "Amt/InstdAmt" => {
                            tx.amount = Some((
                                self.cursor.text().to_string(),
                                self.cursor.ccy().map(str::to_string),
                            ))
                        }
                        "Cdtr/Nm" => tx.name = text(),
                        "CdtrAcct/Id/IBAN" | "CdtrAcct/Id/Othr/Id" => tx.account = text(),
                        _ => {}
                    }
                }
                Step::Eof => self.done = true,
                Step::Start { .. } => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_and_bics_are_checked() {
        assert!(check_iban(None, "f", "DE89370400440532013000").is_ok());
        assert!(check_iban(None, "f", "GB29NWBK60161331926819").is_ok());
        let err = check_iban(None, "f", "DE89370400440532013001")
            .unwrap_err()
            .to_string();
        assert!(err.contains("check digits"), "{err}");
        assert!(
            err.contains("DE89…3001") && !err.contains("0532013001"),
            "masked: {err}"
        );
        assert!(check_iban(None, "f", "DE89 3704 0044 0532 0130 00").is_err());
        assert!(check_bic(None, "f", "DEUTDEFFXXX").is_ok());
        assert!(check_bic(None, "f", "DEUTDEFF").is_ok());
        assert!(check_bic(None, "f", "ABCDEFGHIJ").is_err());
        assert!(check_bic(None, "f", "deutdeff").is_err());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("A & B <C> \"d\" 'e'"),
            "A &amp; B &lt;C&gt; &quot;d&quot; &apos;e&apos;"
        );
        assert_eq!(escape("Müller 北京"), "Müller 北京");
    }
}
