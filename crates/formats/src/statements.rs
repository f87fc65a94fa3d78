//! Bank account statements (camt.053 .02, .04, .08) read as statements: which account, which
//! statement in the bank's sequence, the opening and closing booked balances, and every entry as
//! the money moved on the account. (The same files read as *payout results* are
//! [`crate::results`]; a statement is also the proof of what left our account.)
//!
//! Streaming: a statement's header is yielded when its first entry starts (balances come before
//! the entries in every version), then one record per entry. An entry that books a whole batch
//! (`NtryDtls/Btch`, or many `TxDtls`) is one record with the batch's references and counts, not
//! one per transaction, so memory is bounded by one entry whatever the file size.
//!
//! Amounts are signed as the account moved: a debit (`DBIT`) is negative, a credit positive; a
//! balance with `CdtDbtInd` `DBIT` is an overdraft, negative too.

use std::collections::VecDeque;
use std::io::BufRead;

use chrono::NaiveDate;
use disburse_core::Money;

use crate::amount::money_from_code;
use crate::error::{FormatError, FormatErrorKind, LineError, ReadError};
use crate::results::{meaningful, parse_iso_date};
use crate::xml::{Cursor, Step};

/// Who a statement is about and where it sits in the bank's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatementHeader {
    /// Line of the `Stmt` element.
    pub line: u64,
    /// `GrpHdr/MsgId`: banks recycle these, so it never identifies a statement alone.
    pub message_id: Option<String>,
    /// `Stmt/Id`.
    pub statement_id: Option<String>,
    /// `ElctrncSeqNb`: the bank's running number of electronic statements of this account.
    pub electronic_sequence: Option<u64>,
    /// `LglSeqNb`: the legal (paper) sequence number, where the bank keeps one.
    pub legal_sequence: Option<u64>,
    /// `Acct/Id/IBAN`, or `Acct/Id/Othr/Id`.
    pub account: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The booked opening balance (`OPBD`, or `PRCD` when the bank gives no `OPBD`).
    pub opening: Option<Money>,
    /// The booked closing balance (`CLBD`).
    pub closing: Option<Money>,
}

/// What kind of movement an entry is, as its codes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A debit of a payment (a credit transfer leaving the account).
    Payment,
    /// A credit that returns a payment (return information, code RRTN, or a reversal).
    Return,
    /// Charges, fees, commissions, interest, taxes.
    Charges,
    /// Anything else (money received, direct debits, account management).
    Other,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Payment => "payment",
            EntryKind::Return => "return",
            EntryKind::Charges => "charges",
            EntryKind::Other => "other",
        }
    }
}

/// The batch an entry books as one amount (`NtryDtls/Btch`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryBatch {
    /// The MsgId of the instruction (our pain.001), when the bank gives it.
    pub message_id: Option<String>,
    /// The PmtInfId of the instruction (our pain.001's payment information block).
    pub payment_information_id: Option<String>,
    pub transactions: Option<u64>,
    pub total: Option<Money>,
}

/// One entry of a statement: one movement of money on the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    pub line: u64,
    /// Signed: a debit is negative.
    pub amount: Money,
    /// `Sts` is `BOOK` (or absent): the money moved. Pending and informational entries are not.
    pub booked: bool,
    pub booking_date: Option<NaiveDate>,
    pub value_date: Option<NaiveDate>,
    /// `Ntry/AcctSvcrRef`, else the only transaction's `AcctSvcrRef`.
    pub bank_reference: Option<String>,
    pub kind: EntryKind,
    pub batch: Option<EntryBatch>,
    /// The only transaction's `EndToEndId` (our payout number), when the entry has one.
    pub end_to_end_id: Option<String>,
    /// Number of `TxDtls` the entry carries.
    pub transactions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementRecord {
    Header(StatementHeader),
    Entry(StatementEntry),
}

impl StatementRecord {
    pub fn line(&self) -> u64 {
        match self {
            StatementRecord::Header(h) => h.line,
            StatementRecord::Entry(e) => e.line,
        }
    }
}

const CHARGE_CODES: [&str; 7] = ["CHRG", "COMM", "COMT", "COMI", "FEES", "INTR", "TAXE"];

#[derive(Default)]
struct Balance {
    code: Option<String>,
    amount: Option<(String, Option<String>)>,
    debit: bool,
}

#[derive(Default)]
struct Entry {
    base: usize,
    line: u64,
    amount: Option<(String, Option<String>)>,
    debit: Option<bool>,
    reversal: bool,
    status: Option<String>,
    booking_date: Option<String>,
    value_date: Option<String>,
    reference: Option<String>,
    domain: Option<String>,
    subfamilies: Vec<String>,
    return_info: bool,
    batch: Option<EntryBatchText>,
    transactions: u64,
    end_to_end_id: Option<String>,
    tx_reference: Option<String>,
}

#[derive(Default)]
struct EntryBatchText {
    message_id: Option<String>,
    payment_information_id: Option<String>,
    transactions: Option<String>,
    total: Option<(String, Option<String>)>,
}

/// Streaming reader of camt.053 statements: an iterator of records. A [`ReadError::File`] item
/// ends it (a broken file is refused whole by a caller that reads to the end first).
pub struct Statements<R: BufRead> {
    cursor: Cursor<R>,
    message_id: Option<String>,
    stmt_base: Option<usize>,
    header: Option<StatementHeader>,
    header_sent: bool,
    balance: Option<(usize, Balance)>,
    opening_prcd: Option<Money>,
    entry: Option<Entry>,
    queue: VecDeque<Result<StatementRecord, LineError>>,
    done: bool,
    checked_root: bool,
}

/// Reads the statements of a camt.053 file; any other message is a fatal error.
pub fn read_statements<R: BufRead>(reader: R) -> Statements<R> {
    Statements {
        cursor: Cursor::new(reader),
        message_id: None,
        stmt_base: None,
        header: None,
        header_sent: false,
        balance: None,
        opening_prcd: None,
        entry: None,
        queue: VecDeque::new(),
        done: false,
        checked_root: false,
    }
}

fn signed(amount: &(String, Option<String>), debit: bool) -> Result<Money, String> {
    let m = money_from_code(&amount.0, amount.1.as_deref())?;
    if debit {
        m.checked_neg().map_err(|e| e.to_string())
    } else {
        Ok(m)
    }
}

impl<R: BufRead> Statements<R> {
    fn check_root(&mut self, line: u64) -> Result<(), FormatError> {
        let namespace = self.cursor.root_namespace().unwrap_or_default().to_string();
        let message = crate::results::message_name(&namespace);
        if !matches!(
            message.as_str(),
            "camt.053.001.02" | "camt.053.001.04" | "camt.053.001.08"
        ) || self.cursor.name() != "Document"
        {
            return Err(FormatError::new(
                line,
                FormatErrorKind::UnknownMessage(format!(
                    "expected a camt.053 statement (camt.053.001.02/04/08), but the root is \
                     <{}> in namespace {namespace:?}",
                    self.cursor.name()
                )),
            ));
        }
        Ok(())
    }

    fn send_header(&mut self) {
        if self.header_sent {
            return;
        }
        if let Some(mut h) = self.header.clone() {
            if h.opening.is_none() {
                h.opening = self.opening_prcd;
            }
            self.queue.push_back(Ok(StatementRecord::Header(h)));
            self.header_sent = true;
        }
    }

    fn start(&mut self, line: u64) {
        let name = self.cursor.name().to_string();
        if self.stmt_base.is_none() {
            if name == "Stmt" && self.cursor.depth() == 3 {
                self.stmt_base = Some(self.cursor.path_len());
                self.header = Some(StatementHeader {
                    line,
                    message_id: self.message_id.clone(),
                    ..StatementHeader::default()
                });
                self.header_sent = false;
                self.opening_prcd = None;
            }
            return;
        }
        let base = self.stmt_base.expect("checked");
        if let Some(entry) = &mut self.entry {
            match self.cursor.relative(entry.base) {
                "NtryDtls/TxDtls" => entry.transactions += 1,
                "NtryDtls/TxDtls/RtrInf" => entry.return_info = true,
                "NtryDtls/Btch" => entry.batch = Some(EntryBatchText::default()),
                _ => {}
            }
            return;
        }
        match self.cursor.relative(base) {
            "Bal" => self.balance = Some((self.cursor.path_len(), Balance::default())),
            "Ntry" => {
                self.send_header();
                self.entry = Some(Entry {
                    base: self.cursor.path_len(),
                    line,
                    ..Entry::default()
                });
            }
            _ => {}
        }
    }

    fn end(&mut self) {
        let text = self.cursor.text().to_string();
        let Some(base) = self.stmt_base else {
            if self.cursor.path().ends_with("GrpHdr/MsgId") && self.cursor.depth() == 4 {
                self.message_id = meaningful(&text);
            }
            return;
        };
        if let Some(entry) = &mut self.entry {
            let rel = self.cursor.relative(entry.base).to_string();
            let amount = || Some((text.clone(), self.cursor.ccy().map(str::to_string)));
            match rel.as_str() {
                "" => {
                    let entry = self.entry.take().expect("checked");
                    let item = finish_entry(entry);
                    self.queue.push_back(item.map(StatementRecord::Entry));
                }
                "Amt" => entry.amount = amount(),
                "CdtDbtInd" => entry.debit = Some(text == "DBIT"),
                "RvslInd" => entry.reversal = matches!(text.as_str(), "true" | "1"),
                "Sts" | "Sts/Cd" | "Sts/Prtry" => entry.status = meaningful(&text),
                "BookgDt/Dt" | "BookgDt/DtTm" => entry.booking_date = meaningful(&text),
                "ValDt/Dt" | "ValDt/DtTm" => entry.value_date = meaningful(&text),
                "AcctSvcrRef" => entry.reference = meaningful(&text),
                "BkTxCd/Domn/Cd" => entry.domain = meaningful(&text),
                "BkTxCd/Domn/Fmly/SubFmlyCd" | "NtryDtls/TxDtls/BkTxCd/Domn/Fmly/SubFmlyCd" => {
                    if let Some(code) = meaningful(&text) {
                        if entry.subfamilies.len() < 8 {
                            entry.subfamilies.push(code);
                        }
                    }
                }
                "NtryDtls/Btch/MsgId" => {
                    if let Some(b) = &mut entry.batch {
                        b.message_id = meaningful(&text)
                    }
                }
                "NtryDtls/Btch/PmtInfId" => {
                    if let Some(b) = &mut entry.batch {
                        b.payment_information_id = meaningful(&text)
                    }
                }
                "NtryDtls/Btch/NbOfTxs" => {
                    if let Some(b) = &mut entry.batch {
                        b.transactions = meaningful(&text)
                    }
                }
                "NtryDtls/Btch/TtlAmt" => {
                    if let Some(b) = &mut entry.batch {
                        b.total = amount()
                    }
                }
                "NtryDtls/TxDtls/Refs/EndToEndId" if entry.transactions == 1 => {
                    entry.end_to_end_id = meaningful(&text)
                }
                "NtryDtls/TxDtls/Refs/AcctSvcrRef" if entry.transactions == 1 => {
                    entry.tx_reference = meaningful(&text)
                }
                _ => {}
            }
            return;
        }
        if let Some((bal_base, balance)) = &mut self.balance {
            match self.cursor.relative(*bal_base) {
                "" => {
                    let (_, b) = self.balance.take().expect("checked");
                    let line = self.cursor.line();
                    if let (Some(code), Some(amount)) = (&b.code, &b.amount) {
                        match signed(amount, b.debit) {
                            Ok(money) => {
                                let h = self.header.as_mut().expect("inside a statement");
                                match code.as_str() {
                                    "OPBD" => h.opening = Some(money),
                                    "PRCD" => self.opening_prcd = Some(money),
                                    "CLBD" => h.closing = Some(money),
                                    _ => {}
                                }
                            }
                            Err(m) => self
                                .queue
                                .push_back(Err(LineError::new(line, "balance", m))),
                        }
                    }
                }
                "Tp/CdOrPrtry/Cd" => balance.code = meaningful(&text),
                "Amt" => {
                    balance.amount = Some((text.clone(), self.cursor.ccy().map(str::to_string)))
                }
                "CdtDbtInd" => balance.debit = text == "DBIT",
                _ => {}
            }
            return;
        }
        let rel = self.cursor.relative(base).to_string();
        let h = self.header.as_mut().expect("inside a statement");
        match rel.as_str() {
            "" => {
                self.send_header();
                self.stmt_base = None;
                self.header = None;
            }
            "Id" => h.statement_id = meaningful(&text),
            "ElctrncSeqNb" => h.electronic_sequence = text.trim().parse().ok(),
            "LglSeqNb" => h.legal_sequence = text.trim().parse().ok(),
            "Acct/Id/IBAN" | "Acct/Id/Othr/Id" if h.account.is_none() => {
                h.account = meaningful(&text)
            }
            "FrToDt/FrDtTm" => h.from = parse_iso_date(&text).ok(),
            "FrToDt/ToDtTm" => h.to = parse_iso_date(&text).ok(),
            _ => {}
        }
    }
}

fn finish_entry(e: Entry) -> Result<StatementEntry, LineError> {
    let line = e.line;
    let debit = e
        .debit
        .ok_or_else(|| LineError::new(line, "CdtDbtInd", "is missing"))?;
    let amount = e
        .amount
        .as_ref()
        .ok_or_else(|| LineError::new(line, "Amt", "is missing"))?;
    let amount = signed(amount, debit).map_err(|m| LineError::new(line, "Amt", m))?;
    let date = |t: &Option<String>, field: &'static str| {
        t.as_deref()
            .map(parse_iso_date)
            .transpose()
            .map_err(|m| LineError::new(line, field, m))
    };
    let charges = e
        .subfamilies
        .iter()
        .any(|s| CHARGE_CODES.contains(&s.as_str()));
    let returned = e.subfamilies.iter().any(|s| s == "RRTN") || e.return_info;
    let kind = if charges {
        EntryKind::Charges
    } else if !debit && (returned || e.reversal) {
        EntryKind::Return
    } else if debit && !returned && !e.reversal && e.domain.as_deref().is_none_or(|d| d == "PMNT") {
        EntryKind::Payment
    } else {
        EntryKind::Other
    };
    let batch = match e.batch {
        Some(b) => Some(EntryBatch {
            message_id: b.message_id,
            payment_information_id: b.payment_information_id,
            transactions: b.transactions.and_then(|t| t.trim().parse().ok()),
            total: b
                .total
                .as_ref()
                .map(|t| money_from_code(&t.0, t.1.as_deref()))
                .transpose()
                .map_err(|m| LineError::new(line, "Btch/TtlAmt", m))?,
        }),
        None => None,
    };
    Ok(StatementEntry {
        line,
        amount,
        booked: matches!(e.status.as_deref(), None | Some("BOOK")),
        booking_date: date(&e.booking_date, "BookgDt")?,
        value_date: date(&e.value_date, "ValDt")?,
        bank_reference: e.reference.or(e.tx_reference),
        kind,
        batch,
        end_to_end_id: if e.transactions == 1 {
            e.end_to_end_id
        } else {
            None
        },
        transactions: e.transactions,
    })
}

impl<R: BufRead> Iterator for Statements<R> {
    type Item = Result<StatementRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item.map_err(ReadError::Line));
            }
            if self.done {
                return None;
            }
            let step = match self.cursor.next_step() {
                Ok(s) => s,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::File(e)));
                }
            };
            match step {
                Step::Start { line } => {
                    if !self.checked_root {
                        self.checked_root = true;
                        if let Err(e) = self.check_root(line) {
                            self.done = true;
                            return Some(Err(ReadError::File(e)));
                        }
                    }
                    self.start(line)
                }
                Step::End { .. } => self.end(),
                Step::Eof => self.done = true,
            }
        }
    }
}
