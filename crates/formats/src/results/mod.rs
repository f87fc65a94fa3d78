//! What banks say about our payouts, read from their result files.
//!
//! Banks answer a batch with ISO 20022 status reports (pain.002), debit/credit notifications
//! (camt.054) and statements (camt.053), or with CSV files of their own (see
//! [`crate::csv_profile`]). Every reader turns them into the same [`ResultRecord`]s so the engine
//! applies one kind of thing whatever the bank. Readers stream: memory stays bounded whatever
//! the size of the file.
//!
//! Use [`detect`] on the first bytes of a file to learn what it is, then [`read_xml_results`]
//! (or [`read_pain002`], [`read_camt054`], [`read_camt053`] to insist on one kind) or
//! [`crate::bank_csv::read_csv_results`].
//!
//! Records are yielded as they are read. A file can still turn out broken at its end (a
//! [`ReadError::File`] item): a caller that applies all-or-nothing should read to the end before
//! applying anything.

mod camt;
mod pain002;

use std::collections::VecDeque;
use std::fmt;
use std::io::BufRead;

use chrono::NaiveDate;
use disburse_core::Money;

use crate::error::{FormatError, FormatErrorKind, LineError, ReadError};
use crate::xml::{Cursor, Step};

/// What a bank said happened to a payout (or a whole batch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BankOutcome {
    /// The bank took the instruction; no money has moved yet (ACCP, ACTC, ACSP, ACWC, ACFC, ACWP,
    /// RCVD).
    Accepted,
    /// The money left our account (ACSC, ACCC; a booked debit entry in camt).
    Paid,
    /// The bank refused the instruction (RJCT); no money moved.
    Rejected,
    /// The money came back after it was paid (camt: a credit with return information, bank
    /// transaction code RRTN, or the reversal of a debit).
    Returned,
    /// Still in progress at the bank (PDNG).
    Pending,
    /// A verification-of-payee answer (RCVC, RVMC, RVNM, RVNA): says whether the name matches the
    /// account. Never a payment result.
    PayeeVerification(String),
    /// Something that is not about a payout's money (a credit that is not a return, charges, a
    /// group status such as PART). Never a payment result; the text says what it was.
    Informational(String),
    /// A status this reader does not know (`ACSX`), none at all, or one we never expect for a
    /// credit transfer we sent (CANC): a person must look. Never counted as "unchanged".
    Unrecognised(String),
}

impl BankOutcome {
    /// Maps an ISO 20022 status code (TxSts, PmtInfSts, GrpSts) to an outcome.
    pub fn from_status_code(code: &str) -> BankOutcome {
        match code {
            "ACCP" | "ACTC" | "ACSP" | "ACWC" | "ACFC" | "ACWP" | "RCVD" | "ACIS" | "ACPD"
            | "PRES" => BankOutcome::Accepted,
            "ACSC" | "ACCC" => BankOutcome::Paid,
            "RJCT" => BankOutcome::Rejected,
            // BLCK: the bank holds the money, neither released nor returned: still in progress.
            "PDNG" | "BLCK" => BankOutcome::Pending,
            "RCVC" | "RVMC" | "RVNM" | "RVNA" => BankOutcome::PayeeVerification(code.to_string()),
            // Partially accepted: a group status, the transactions say which.
            "PART" | "PATC" => BankOutcome::Informational(format!("status {code}")),
            "CANC" => BankOutcome::Unrecognised(
                "status CANC (cancelled), but we never asked to cancel".to_string(),
            ),
            other => BankOutcome::Unrecognised(format!("unknown status {:?}", other)),
        }
    }

    /// True for outcomes that settle a payout: paid, rejected, returned.
    pub fn is_payment_result(&self) -> bool {
        matches!(
            self,
            BankOutcome::Paid | BankOutcome::Rejected | BankOutcome::Returned
        )
    }
}

impl fmt::Display for BankOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankOutcome::Accepted => f.write_str("accepted"),
            BankOutcome::Paid => f.write_str("paid"),
            BankOutcome::Rejected => f.write_str("rejected"),
            BankOutcome::Returned => f.write_str("returned"),
            BankOutcome::Pending => f.write_str("pending"),
            BankOutcome::PayeeVerification(code) => write!(f, "payee verification {code}"),
            BankOutcome::Informational(what) => write!(f, "informational: {what}"),
            BankOutcome::Unrecognised(what) => write!(f, "unrecognised: {what}"),
        }
    }
}

/// What the bank said about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// 1-based line in the file where this transaction's element (or CSV record) starts.
    pub line: u64,
    /// Our payout number as the bank echoes it; `None` when absent or `NOTPROVIDED`.
    pub end_to_end_id: Option<String>,
    /// The bank's own reference (AcctSvcrRef, TxId, ClrSysRef, or the CSV column).
    pub bank_reference: Option<String>,
    pub outcome: BankOutcome,
    /// The raw status as the bank wrote it (`ACSC`, `RJCT`, `BOOK`, `成功`...), for the record.
    pub bank_status: Option<String>,
    /// What the bank moved: the booked amount of a camt entry or transaction, or a CSV profile's
    /// amount column. `None` when the file does not say (a pain.002 never does: it reports a
    /// status, not a booking).
    pub amount: Option<Money>,
    /// The amount we instructed, as the bank echoes it back (pain.002 `OrgnlTxRef/Amt/InstdAmt`,
    /// camt `AmtDtls/InstdAmt`). Only for checking the answer is about our payout; never the
    /// amount paid.
    pub instructed_amount: Option<Money>,
    pub value_date: Option<NaiveDate>,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    /// The MsgId of our pain.001 this answers, when the bank says it.
    pub original_message_id: Option<String>,
}

/// A status for a whole message (GrpSts) or one payment-information block (PmtInfSts without
/// transaction statuses). The most specific status wins: a group status is yielded after every
/// transaction of the file, and applies only to the payouts of that batch that no transaction
/// status has settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub line: u64,
    /// The MsgId of our pain.001 (OrgnlMsgId).
    pub original_message_id: Option<String>,
    /// Set when the status is for one payment-information block (OrgnlPmtInfId), not the group.
    pub original_payment_information_id: Option<String>,
    pub status: BankOutcome,
    /// The raw status code (`RJCT`, `RCVC`...).
    pub bank_status: String,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
}

/// One thing a result file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultRecord {
    Transaction(ResultLine),
    Group(GroupStatus),
}

impl ResultRecord {
    pub fn line(&self) -> u64 {
        match self {
            ResultRecord::Transaction(l) => l.line,
            ResultRecord::Group(g) => g.line,
        }
    }
}

/// Versions of pain.002 this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pain002Version {
    /// `pain.002.001.03`
    V03,
    /// `pain.002.001.10`
    V10,
    /// The Swiss SIX variant `pain.002.001.03.ch.02`.
    V03Ch02,
}

/// Versions of camt.053 and camt.054 this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CamtVersion {
    V02,
    V04,
    V08,
}

/// What kind of result file the first bytes show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detected {
    Pain002 {
        version: Pain002Version,
    },
    Camt054 {
        version: CamtVersion,
    },
    Camt053 {
        version: CamtVersion,
    },
    /// Not XML: the caller must supply a [`crate::bank_csv::CsvProfile`].
    Csv,
}

impl fmt::Display for Detected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let camt = |v: &CamtVersion| match v {
            CamtVersion::V02 => "02",
            CamtVersion::V04 => "04",
            CamtVersion::V08 => "08",
        };
        match self {
            Detected::Pain002 { version } => f.write_str(match version {
                Pain002Version::V03 => "pain.002.001.03",
                Pain002Version::V10 => "pain.002.001.10",
                Pain002Version::V03Ch02 => "pain.002.001.03.ch.02",
            }),
            Detected::Camt054 { version } => write!(f, "camt.054.001.{}", camt(version)),
            Detected::Camt053 { version } => write!(f, "camt.053.001.{}", camt(version)),
            Detected::Csv => f.write_str("CSV"),
        }
    }
}

/// How many leading bytes [`detect`] should see (or the whole file, if shorter).
pub const DETECT_HEAD_LEN: usize = 8192;

const ISO_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";
const SIX_PREFIX: &str = "http://www.six-interbank-clearing.com/";

/// Tells what a result file is from its first bytes (pass [`DETECT_HEAD_LEN`] bytes, or the
/// whole file if shorter): the root namespace of XML, or [`Detected::Csv`] for anything that does
/// not start with `<`. A pain.001, an unknown namespace or version and an empty file are errors.
pub fn detect(head: &[u8]) -> Result<Detected, FormatError> {
    crate::xml::refuse_utf16(head)?;
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(FormatError::new(1, FormatErrorKind::Empty));
    };
    if body[first] != b'<' {
        return Ok(Detected::Csv);
    }
    let mut cursor = Cursor::new(body);
    match cursor.next_step() {
        Ok(Step::Start { line }) => classify_root(cursor.name(), cursor.root_namespace())
            .map_err(|k| FormatError::new(line, k)),
        Ok(_) => Err(cursor.error(FormatErrorKind::NotXml("no XML element found".into()))),
        Err(e) => Err(match e.kind {
            FormatErrorKind::Truncated { .. } | FormatErrorKind::NotXml(_) => FormatError::new(
                e.line,
                FormatErrorKind::NotXml(format!(
                    "no complete root element in the first {} bytes",
                    head.len()
                )),
            ),
            _ => e,
        }),
    }
}

/// Classifies the root element of a result file.
fn classify_root(name: &str, namespace: Option<&str>) -> Result<Detected, FormatErrorKind> {
    if name != "Document" {
        return Err(FormatErrorKind::UnknownMessage(format!(
            "the root element is <{name}>, not an ISO 20022 <Document>"
        )));
    }
    let Some(namespace) = namespace else {
        return Err(FormatErrorKind::UnknownMessage(
            "the root <Document> has no namespace, so the message type is unknown".into(),
        ));
    };
    let message = message_name(namespace);
    let found = match message.as_str() {
        "pain.002.001.03" => Detected::Pain002 {
            version: Pain002Version::V03,
        },
        "pain.002.001.10" => Detected::Pain002 {
            version: Pain002Version::V10,
        },
        "pain.002.001.03.ch.02" if namespace.starts_with(SIX_PREFIX) => Detected::Pain002 {
            version: Pain002Version::V03Ch02,
        },
        "camt.054.001.02" => Detected::Camt054 {
            version: CamtVersion::V02,
        },
        "camt.054.001.04" => Detected::Camt054 {
            version: CamtVersion::V04,
        },
        "camt.054.001.08" => Detected::Camt054 {
            version: CamtVersion::V08,
        },
        "camt.053.001.02" => Detected::Camt053 {
            version: CamtVersion::V02,
        },
        "camt.053.001.04" => Detected::Camt053 {
            version: CamtVersion::V04,
        },
        "camt.053.001.08" => Detected::Camt053 {
            version: CamtVersion::V08,
        },
        m if m.starts_with("pain.001.") => {
            return Err(FormatErrorKind::PaymentInstruction {
                namespace: namespace.to_string(),
            })
        }
        m => {
            return Err(FormatErrorKind::UnknownMessage(format!(
                "namespace {namespace:?} ({m}) is not a result message this reader knows \
                 (pain.002.001.03, pain.002.001.10, pain.002.001.03.ch.02, \
                 camt.053.001.02/04/08, camt.054.001.02/04/08)"
            )))
        }
    };
    Ok(found)
}

/// `urn:iso:std:iso:20022:tech:xsd:pain.002.001.10` → `pain.002.001.10`;
/// `http://www.six-interbank-clearing.com/de/pain.002.001.03.ch.02.xsd` → `pain.002.001.03.ch.02`.
pub(crate) fn message_name(namespace: &str) -> String {
    if let Some(rest) = namespace.strip_prefix(ISO_PREFIX) {
        return rest.to_string();
    }
    let last = namespace.rsplit('/').next().unwrap_or(namespace);
    last.strip_suffix(".xsd").unwrap_or(last).to_string()
}

enum Handler {
    Undecided,
    Pain002(Box<pain002::Pain002Reader>),
    Camt(Box<camt::CamtReader>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Any,
    Pain002,
    Camt054,
    Camt053,
}

/// Streaming reader of an XML result file (pain.002, camt.054 or camt.053): an iterator of
/// records. A [`ReadError::File`] item ends it.
pub struct XmlResults<R: BufRead> {
    cursor: Cursor<R>,
    expect: Expect,
    kind: Option<Detected>,
    handler: Handler,
    queue: VecDeque<Result<ResultRecord, LineError>>,
    done: bool,
}

/// Reads any XML result file this crate knows; the kind is taken from the root namespace.
pub fn read_xml_results<R: BufRead>(reader: R) -> XmlResults<R> {
    XmlResults::new(reader, Expect::Any)
}

/// Reads a pain.002 status report; any other message is a fatal error.
pub fn read_pain002<R: BufRead>(reader: R) -> XmlResults<R> {
    XmlResults::new(reader, Expect::Pain002)
}

/// Reads a camt.054 debit/credit notification; any other message is a fatal error.
pub fn read_camt054<R: BufRead>(reader: R) -> XmlResults<R> {
    XmlResults::new(reader, Expect::Camt054)
}

/// Reads a camt.053 statement; any other message is a fatal error.
pub fn read_camt053<R: BufRead>(reader: R) -> XmlResults<R> {
    XmlResults::new(reader, Expect::Camt053)
}

impl<R: BufRead> XmlResults<R> {
    fn new(reader: R, expect: Expect) -> Self {
        XmlResults {
            cursor: Cursor::new(reader),
            expect,
            kind: None,
            handler: Handler::Undecided,
            queue: VecDeque::with_capacity(4),
            done: false,
        }
    }

    /// The kind of message, once its root element has been read.
    pub fn kind(&self) -> Option<Detected> {
        self.kind
    }

    fn start_document(&mut self, line: u64) -> Result<(), FormatError> {
        let kind = classify_root(self.cursor.name(), self.cursor.root_namespace())
            .map_err(|k| FormatError::new(line, k))?;
        let fits = matches!(
            (self.expect, kind),
            (Expect::Any, _)
                | (Expect::Pain002, Detected::Pain002 { .. })
                | (Expect::Camt054, Detected::Camt054 { .. })
                | (Expect::Camt053, Detected::Camt053 { .. })
        );
        if !fits {
            let wanted = match self.expect {
                Expect::Pain002 => "pain.002",
                Expect::Camt054 => "camt.054",
                Expect::Camt053 => "camt.053",
                Expect::Any => "a result message",
            };
            return Err(FormatError::new(
                line,
                FormatErrorKind::UnknownMessage(format!(
                    "expected {wanted}, but this file is {kind}"
                )),
            ));
        }
        self.kind = Some(kind);
        self.handler = match kind {
            Detected::Pain002 { .. } => Handler::Pain002(Box::default()),
            _ => Handler::Camt(Box::default()),
        };
        Ok(())
    }

    fn advance(&mut self) -> Result<(), FormatError> {
        match self.cursor.next_step()? {
            Step::Start { line } => {
                if self.cursor.depth() == 1 {
                    return self.start_document(line);
                }
                match &mut self.handler {
                    Handler::Pain002(h) => h.start(&self.cursor, line),
                    Handler::Camt(h) => h.start(&self.cursor, line),
                    Handler::Undecided => {}
                }
            }
            Step::End { .. } => match &mut self.handler {
                Handler::Pain002(h) => h.end(&self.cursor, &mut self.queue),
                Handler::Camt(h) => h.end(&self.cursor, &mut self.queue),
                Handler::Undecided => {}
            },
            Step::Eof => self.done = true,
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for XmlResults<R> {
    type Item = Result<ResultRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item.map_err(ReadError::Line));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.advance() {
                self.done = true;
                return Some(Err(ReadError::File(e)));
            }
        }
    }
}

/// Text that means "nothing": empty, or ISO 20022's `NOTPROVIDED` placeholder for a missing id.
pub(crate) fn meaningful(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text == "NOTPROVIDED" {
        None
    } else {
        Some(text.to_string())
    }
}

/// ISO date (`2018-03-27`, `2018-03-27+01:00`) or date-time (`2018-03-27T12:00:00`): the date.
pub(crate) fn parse_iso_date(text: &str) -> Result<NaiveDate, String> {
    let date = text.trim().get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| format!("{text:?} is not an ISO date (YYYY-MM-DD): {e}"))
}

/// Reason text gathered from several AddtlInf elements, bounded in length.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reason {
    pub(crate) code: Option<String>,
    pub(crate) text: Option<String>,
}

/// Longest reason text kept; more is cut with an ellipsis (it is for people, not for matching).
const REASON_TEXT_MAX_CHARS: usize = 1000;

impl Reason {
    pub(crate) fn set_code(&mut self, code: &str) {
        if self.code.is_none() {
            self.code = meaningful(code);
        }
    }

    pub(crate) fn add_text(&mut self, more: &str) {
        let more = more.trim();
        if more.is_empty() {
            return;
        }
        let text = self.text.get_or_insert_with(String::new);
        if text.chars().count() >= REASON_TEXT_MAX_CHARS {
            return;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(more);
        if text.chars().count() > REASON_TEXT_MAX_CHARS {
            *text = text.chars().take(REASON_TEXT_MAX_CHARS).collect();
            text.push('…');
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.code.is_none() && self.text.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_outcomes() {
        let check = |code: &str, want: BankOutcome| {
            assert_eq!(BankOutcome::from_status_code(code), want, "{code}")
        };
        for code in ["ACCP", "ACTC", "ACSP", "ACWC", "ACFC"] {
            check(code, BankOutcome::Accepted);
        }
        check("ACSC", BankOutcome::Paid);
        check("RJCT", BankOutcome::Rejected);
        check("PDNG", BankOutcome::Pending);
        for code in ["RCVC", "RVMC", "RVNM", "RVNA"] {
            let outcome = BankOutcome::from_status_code(code);
            assert_eq!(outcome, BankOutcome::PayeeVerification(code.into()));
            assert!(!outcome.is_payment_result());
        }
        check("PART", BankOutcome::Informational("status PART".into()));
        for code in ["ACSX", "", "\0", "acsc"] {
            assert!(
                matches!(
                    BankOutcome::from_status_code(code),
                    BankOutcome::Unrecognised(_)
                ),
                "{code:?}"
            );
        }
    }

    #[test]
    fn message_names_from_namespaces() {
        assert_eq!(
            message_name("urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"),
            "camt.054.001.08"
        );
        assert_eq!(
            message_name("http://www.six-interbank-clearing.com/de/pain.002.001.03.ch.02.xsd"),
            "pain.002.001.03.ch.02"
        );
    }

    #[test]
    fn reason_text_is_joined_and_bounded() {
        let mut r = Reason::default();
        r.add_text("a");
        r.add_text(" b ");
        assert_eq!(r.text.as_deref(), Some("a b"));
        for _ in 0..100 {
            r.add_text(&"x".repeat(50));
        }
        assert!(r.text.as_ref().unwrap().chars().count() <= REASON_TEXT_MAX_CHARS + 1);
    }
}
