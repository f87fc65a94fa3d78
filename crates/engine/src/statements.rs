//! Bank statements in, and the three-way reconciliation of payouts × bank results × statements
//! (DESIGN §8.3).
//!
//! A result file says what a bank *decided*; its statement says what money *left our account*.
//! Importing a statement checks it against the previous one of the same account (continuity),
//! matches every entry (to a payout, to a whole batch booked as one debit, to a fee) and raises
//! what a machine cannot decide: a debit with no payout, a debit for a payout we hold failed, a
//! broken sequence. Fees are booked to the channel's fees account, never to a payout.
//!
//! The match of one entry is a pure decision ([`match_entry`]) over facts the importer loads.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use disburse_core::ledger::{Journal, JournalKind, LedgerAccount};
use disburse_core::{ChannelId, Currency, Money, OperatorName};
use disburse_formats::bank_csv::CsvStatement;
use disburse_formats::statements::{
    read_statements, EntryKind, StatementEntry, StatementHeader, StatementRecord, Statements,
};
use disburse_formats::{read_csv_statement, CsvStatementProfile, ReadError};
use disburse_store::{
    fmt_date, fmt_time, parse_time, ExceptionRow, NewAuditEvent, PayoutRow, StatementEntryRow,
    StatementKey, StatementRow, WriteTx,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{write_journal, Actor, Engine, EngineError, Result};

/// What importing one statement did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatementSummary {
    pub statement: i64,
    pub file_name: String,
    pub channel: String,
    pub already_imported: bool,
    pub entries: u64,
    /// Entries by match status: matched, suggested, unmatched, fee, not_ours.
    pub by_status: BTreeMap<String, u64>,
    /// Exceptions raised: (kind, reason), the first hundred.
    pub exceptions: Vec<(String, String)>,
    /// Exceptions raised in all.
    pub exceptions_total: u64,
    /// This run went on with an import an earlier run had stopped half-way.
    pub resumed: bool,
}

/// How an entry was matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMatch {
    /// matched | suggested | unmatched | fee | not_ours
    pub status: &'static str,
    pub rule: Option<&'static str>,
    pub payout_no: Option<String>,
    pub batch_id: Option<i64>,
    pub note: String,
    /// An exception for a person: (kind, what it asks).
    pub exception: Option<(&'static str, String)>,
}

/// What the importer knows about an entry's possible counterparts.
#[derive(Debug, Clone, Default)]
pub struct EntryFacts {
    /// The payout its end-to-end id names: (payout number, state, paid or instructed minor units).
    pub by_end_to_end_id: Option<(String, String, i64)>,
    /// What came back of that payout while it stayed succeeded (partial returns).
    pub end_to_end_returned_minor: i64,
    /// The payout whose bank reference it carries.
    pub by_reference: Option<(String, String, i64)>,
    /// The batch its `Btch` MsgId or PmtInfId names: (id, control sum).
    pub by_batch_id: Option<(i64, i64)>,
    /// What our books hold paid for that batch's payouts (a bank books what it moved, which may
    /// differ from the control sum when some transfers were rejected or paid another amount).
    pub batch_paid_minor: Option<i64>,
    /// The only batch of the channel whose control sum is the debit: (id, control sum).
    pub by_control_sum: Option<(i64, i64)>,
}

fn outcome(status: &'static str, rule: Option<&'static str>, note: String) -> EntryMatch {
    EntryMatch {
        status,
        rule,
        payout_no: None,
        batch_id: None,
        note,
        exception: None,
    }
}

/// A channel's tolerance rules for statement matching (`statement_tolerance_bps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchRules {
    /// A debit naming a payout (or a batch) whose amount differs from what our books hold by at
    /// most this many basis points of it is *suggested* for a person; beyond, it is unmatched and
    /// raised as `statement_amount_differs`. An equal amount always matches.
    pub amount_tolerance_bps: u32,
}

impl MatchRules {
    /// Whether `moved` is within the tolerance of `expected` (both minor units).
    fn within(self, moved: i64, expected: i64) -> bool {
        let diff = (i128::from(moved) - i128::from(expected)).abs();
        diff * 10_000 <= i128::from(expected).abs() * i128::from(self.amount_tolerance_bps)
    }
}

/// Decides the match of one entry. Strong rules (end-to-end id, the batch's own id, the bank's
/// reference) match; a weaker one (a control sum alone, an amount that differs) is only
/// *suggested*, for a person to confirm. Money that left with nothing of ours behind it is the
/// most serious exception there is.
pub fn match_entry(entry: &StatementEntry, facts: &EntryFacts, rules: MatchRules) -> EntryMatch {
    let moved = -entry.amount.amount_minor();
    let ccy = entry.amount.currency();
    if !entry.booked {
        return outcome(
            "not_ours",
            None,
            "not booked (pending or informational)".into(),
        );
    }
    match entry.kind {
        EntryKind::Charges => {
            return outcome("fee", Some("bank_transaction_code"), "bank charges".into())
        }
        EntryKind::Return => {
            if let Some((no, state, _)) = &facts.by_end_to_end_id {
                let mut m = if state == "returned" {
                    outcome("matched", Some("end_to_end_id"), format!("return of {no}"))
                } else if facts.end_to_end_returned_minor == entry.amount.amount_minor() {
                    outcome(
                        "matched",
                        Some("end_to_end_id"),
                        format!("partial return of {no}"),
                    )
                } else {
                    outcome(
                        "suggested",
                        Some("end_to_end_id"),
                        format!("a return of {no}, which we hold {state}: record the return"),
                    )
                };
                m.payout_no = Some(no.clone());
                return m;
            }
            return outcome(
                "unmatched",
                None,
                "a return credit for no payout of ours".into(),
            );
        }
        EntryKind::Other if entry.amount.amount_minor() > 0 => {
            return outcome("not_ours", None, "a credit that is not a payout's".into())
        }
        EntryKind::Other | EntryKind::Payment => {}
    }
    let single = |rule: &'static str, (no, state, minor): &(String, String, i64)| {
        let mut m = match state.as_str() {
            "succeeded" if *minor == moved => {
                outcome("matched", Some(rule), format!("payout {no}"))
            }
            "succeeded" if rules.within(moved, *minor) => outcome(
                "suggested",
                Some(rule),
                format!(
                    "payout {no} is recorded paid {}, the statement debits {} (within the channel's tolerance)",
                    minor_text(*minor, ccy),
                    minor_text(moved, ccy)
                ),
            ),
            "succeeded" => {
                let mut m = outcome(
                    "unmatched",
                    Some(rule),
                    format!(
                        "payout {no} is recorded paid {}, the statement debits {}: beyond the channel's tolerance",
                        minor_text(*minor, ccy),
                        minor_text(moved, ccy)
                    ),
                );
                m.exception = Some((
                    "statement_amount_differs",
                    format!(
                        "the bank debited {} for payout {no}, which our books hold paid {}: ask the bank; \
                         if it paid another amount, correct the payout and settle the difference with the merchant",
                        minor_text(moved, ccy),
                        minor_text(*minor, ccy)
                    ),
                ));
                m
            }
            "failed" | "returned" | "cancelled" => {
                let mut m = outcome(
                    "unmatched",
                    Some(rule),
                    format!("payout {no} is {state}, but the statement debits it"),
                );
                m.exception = Some((
                    "debit_for_failed_payout",
                    format!(
                        "the bank debited {} for payout {no}, which we hold {state}: ask the bank; \
                         if it paid, correct the payout (confirm-succeeded)",
                        minor_text(moved, ccy)
                    ),
                ));
                m
            }
            _ => outcome(
                "suggested",
                Some(rule),
                format!("payout {no} is {state}: the statement says the money left"),
            ),
        };
        m.payout_no = Some(no.clone());
        m
    };
    if let Some(p) = &facts.by_end_to_end_id {
        return single("end_to_end_id", p);
    }
    if let Some((id, sum)) = facts.by_batch_id {
        let mut m = if sum == moved {
            outcome(
                "matched",
                Some("batch_id"),
                format!("batch {id} booked as one debit"),
            )
        } else if facts.batch_paid_minor == Some(moved) {
            outcome(
                "matched",
                Some("batch_id"),
                format!("batch {id} booked as one debit of what it paid"),
            )
        } else if rules.within(moved, facts.batch_paid_minor.unwrap_or(sum))
            || rules.within(moved, sum)
        {
            outcome(
                "suggested",
                Some("batch_id"),
                format!(
                    "batch {id} (control sum {}) booked as {} (within the channel's tolerance)",
                    minor_text(sum, ccy),
                    minor_text(moved, ccy)
                ),
            )
        } else {
            let mut m = outcome(
                "unmatched",
                Some("batch_id"),
                format!(
                    "batch {id} (control sum {}) booked as {}: beyond the channel's tolerance",
                    minor_text(sum, ccy),
                    minor_text(moved, ccy)
                ),
            );
            m.exception = Some((
                "statement_amount_differs",
                format!(
                    "the bank debited {} for batch {id}, whose control sum is {} and of which our books hold {} paid: ask the bank",
                    minor_text(moved, ccy),
                    minor_text(sum, ccy),
                    minor_text(facts.batch_paid_minor.unwrap_or(0), ccy)
                ),
            ));
            m
        };
        m.batch_id = Some(id);
        return m;
    }
    if let Some(p) = &facts.by_reference {
        return single("bank_reference", p);
    }
    if let Some((id, _)) = facts.by_control_sum {
        let mut m = outcome(
            "suggested",
            Some("control_sum"),
            format!("the debit equals the control sum of batch {id}; no reference says so"),
        );
        m.batch_id = Some(id);
        return m;
    }
    let mut m = outcome(
        "unmatched",
        None,
        "money left with no instruction of ours".into(),
    );
    m.exception = Some((
        "unexplained_debit",
        format!(
            "the bank debited {} (reference {}) and no payout or batch of ours explains it: \
             ask the bank at once",
            minor_text(moved, ccy),
            entry.bank_reference.as_deref().unwrap_or("none")
        ),
    ));
    m
}

fn minor_text(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency).to_decimal_string()
}

/// The day's reconciliation of one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    pub channel: String,
    pub as_of: String,
    pub currency: Option<String>,
    pub statements: Vec<StatementLine>,
    pub matched: u64,
    pub matched_minor: i64,
    pub fees_minor: i64,
    pub suggested: Vec<EntryLine>,
    pub unmatched: Vec<EntryLine>,
    /// Succeeded payouts no statement shows leaving, older than the grace period.
    pub not_on_any_statement: Vec<PayoutLine>,
    /// Failures-only channels: payouts presumed paid (the bank stayed silent) that a statement
    /// shows leaving — proven paid.
    pub presumed_paid_confirmed: u64,
    /// ... and those no statement shows past the grace period: the bank may not have paid them.
    pub presumed_paid_unconfirmed: u64,
    /// Open exceptions about statements (continuity, unexplained debits...).
    pub open_exceptions: Vec<(String, String)>,
    pub books_vs_bank: Option<BooksVsBank>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementLine {
    pub statement: i64,
    pub electronic_sequence: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub opening_minor: i64,
    pub closing_minor: i64,
    pub entries: i64,
    /// Entries stored so far: fewer than `entries` while an import that stopped half-way has not
    /// been run again.
    pub entries_imported: i64,
    pub file_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryLine {
    pub entry: i64,
    pub statement: i64,
    pub line: i64,
    pub amount_minor: i64,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayoutLine {
    pub payout_no: String,
    pub paid_minor: i64,
    pub succeeded_at: String,
}

/// The channel's bank account in our books against the statements.
#[derive(Debug, Clone, Serialize)]
pub struct BooksVsBank {
    /// Latest closing − first opening balance: what the statements show moved.
    pub bank_movement_minor: i64,
    /// The channel's bank account in our ledger (payouts, fees): what we recorded moved.
    pub books_movement_minor: i64,
    pub difference_minor: i64,
    /// Part of the difference: statement entries our books do not hold (unmatched, suggested,
    /// not ours).
    pub explained_by_statement_only_minor: i64,
    /// Part of the difference: payouts our books hold paid that no statement shows yet.
    pub explained_by_books_only_minor: i64,
    /// What is left: zero when every difference is explained.
    pub unexplained_minor: i64,
}

/// Succeeded payouts on no statement after this many business days (Monday to Friday) are listed.
pub const NOT_ON_STATEMENT_AFTER_DAYS: i64 = 3;

/// Business days (Monday to Friday) after `from` up to and including `to`.
pub fn business_days_between(from: chrono::NaiveDate, to: chrono::NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut n = 0;
    let mut d = from;
    while d < to {
        d = d.succ_opt().unwrap_or(to);
        if d.weekday().number_from_monday() <= 5 {
            n += 1;
        }
    }
    n
}

impl Engine {
    /// Imports one statement of a channel's account: camt.053 (any channel), or a CSV statement
    /// in the layout of the channel's `statement_profile`. `channel` may be left out for a
    /// camt.053 whose account is the debtor account of exactly one channel.
    ///
    /// The file is read whole first (a broken one is refused with its line, nothing stored),
    /// then matched and stored in one transaction, chunk by chunk: each chunk's facts are read
    /// with set reads, its entries decided in memory ([`match_entry`]) and written as multi-row
    /// inserts under one audit event; memory holds one chunk whatever the file's size.
    pub async fn import_statement(
        &self,
        path: &Path,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<StatementSummary> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        let file_err = |e: &dyn std::fmt::Display| {
            EngineError::invalid("file", format!("{}: {e}", path.display()))
        };
        let (bytes_sha, is_xml) = {
            let mut file = File::open(path).map_err(|e| file_err(&e))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut first: Option<u8> = None;
            loop {
                let n = file.read(&mut buf).map_err(|e| file_err(&e))?;
                if n == 0 {
                    break;
                }
                if first.is_none() {
                    let text = buf[..n].strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf[..n]);
                    first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
                }
                hasher.update(&buf[..n]);
            }
            (hex::encode(hasher.finalize()), first == Some(b'<'))
        };
        // A CSV statement names its bank only by its layout: the channel says which.
        let csv_channel = if is_xml {
            None
        } else {
            let c = channel.ok_or_else(|| {
                EngineError::invalid(
                    "channel",
                    format!("{file_name}: not camt.053 XML; a CSV statement is read by its channel's statement_profile: name the channel with --channel"),
                )
            })?;
            Some(self.config.channel(c)?)
        };
        let profile = match csv_channel {
            Some(c) => {
                let name = c.statement_profile.as_deref().ok_or_else(|| {
                    EngineError::invalid(
                        "file",
                        format!(
                            "{file_name}: not camt.053 XML, and channel {} has no statement_profile for CSV statements",
                            c.id
                        ),
                    )
                })?;
                Some(statement_profile(name)?)
            }
            None => None,
        };
        let open = || -> Result<StatementReader<'_>> {
            let file =
                BufReader::with_capacity(256 * 1024, File::open(path).map_err(|e| file_err(&e))?);
            Ok(match &profile {
                Some(p) => StatementReader::Csv(Box::new(read_csv_statement(p, file))),
                None => StatementReader::Camt(Box::new(read_statements(file))),
            })
        };
        // Pass 1: the whole statement must read, and hold exactly one statement.
        let mut header: Option<StatementHeader> = None;
        let mut count = 0u64;
        let mut sums: BTreeMap<Currency, i64> = BTreeMap::new();
        for item in open()? {
            match item.map_err(|e| file_err(&e))? {
                StatementRecord::Header(h) => {
                    if header.is_some() {
                        return Err(file_err(&format!(
                            "line {}: a second statement in one file; import each statement \
                             from its own file",
                            h.line
                        )));
                    }
                    header = Some(h);
                }
                StatementRecord::Entry(e) => {
                    count += 1;
                    if e.booked {
                        let s = sums.entry(e.amount.currency()).or_default();
                        *s = s.checked_add(e.amount.amount_minor()).ok_or_else(|| {
                            file_err(&format!("line {}: the entries' sum overflows", e.line))
                        })?;
                    }
                }
            }
        }
        let header = header.ok_or_else(|| file_err(&"no statement (Stmt) in the file"))?;
        let line = header.line;
        // A CSV statement without an account column is of its channel's account.
        let account = match (&header.account, csv_channel) {
            (Some(a), _) => a.clone(),
            (None, Some(c)) => c.debtor.iban.clone(),
            (None, None) => {
                return Err(file_err(&format!(
                    "line {line}: the statement names no account (Acct/Id)"
                )))
            }
        };
        let (opening, closing) = match (header.opening, header.closing) {
            (Some(o), Some(c)) => (o, c),
            _ => {
                return Err(file_err(&format!(
                    "line {line}: a statement needs its booked opening (OPBD or PRCD) and closing (CLBD) balance"
                )))
            }
        };
        let digest = account_digest(&account);
        let channel = match (csv_channel, channel) {
            (Some(c), _) => c,
            (None, Some(c)) => self.config.channel(c)?,
            (None, None) => {
                let mut found = self
                    .config
                    .channels
                    .iter()
                    .filter(|c| account_digest(&c.debtor.iban) == digest);
                match (found.next(), found.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(EngineError::invalid(
                            "channel",
                            format!(
                                "{file_name}: account ****{} is the account of no single channel; name it with --channel",
                                last4(&account)
                            ),
                        ))
                    }
                }
            }
        };
        let channel_name = channel.id.to_string();
        let mut summary = StatementSummary {
            file_name: file_name.clone(),
            channel: channel_name.clone(),
            ..Default::default()
        };

        let mut tx = self.db.write().await?;
        let key = StatementKey {
            channel: &channel_name,
            sha256: &bytes_sha,
            account_digest: &digest,
            electronic_sequence: header.electronic_sequence.map(|s| s as i64),
            from_date: header.from.map(fmt_date),
            to_date: header.to.map(fmt_date),
        };
        let at = fmt_time(as_of);
        // An import stopped half-way (killed, a crash) left its first chunks; the same file again
        // goes on after the entries stored. Counted by entry, not by line: a file written on one
        // line has every entry on line 1.
        let mut resume_after: Option<u64> = None;
        let mut resumed: Option<StatementRow> = None;
        if let Some(s) = tx.statement_already_imported(&key).await? {
            let (stored, _last_line) = tx.statement_entries_stored(s.id).await?;
            if stored >= s.entries || s.sha256 != bytes_sha {
                tx.rollback().await?;
                summary.statement = s.id;
                summary.already_imported = true;
                summary.entries = s.entries as u64;
                return Ok(summary);
            }
            resume_after = Some(stored as u64);
            resumed = Some(s);
        }
        let row = match resumed {
            Some(row) => row,
            None => StatementRow {
                id: tx.next_id("statement").await?,
                channel_id: channel_name.clone(),
                account_digest: digest.clone(),
                account_last4: last4(&account),
                statement_id: header.statement_id.clone(),
                message_id: header.message_id.clone(),
                electronic_sequence: header.electronic_sequence.map(|s| s as i64),
                legal_sequence: header.legal_sequence.map(|s| s as i64),
                from_date: header.from.map(fmt_date),
                to_date: header.to.map(fmt_date),
                currency: opening.currency().code().to_string(),
                opening_minor: opening.amount_minor(),
                closing_minor: closing.amount_minor(),
                entries: count as i64,
                file_name: file_name.clone(),
                sha256: bytes_sha.clone(),
                imported_at: at.clone(),
            },
        };
        summary.statement = row.id;
        summary.entries = count;
        let here = |l: u64| format!("{file_name} line {l}");
        let mut continuity: Vec<(&'static str, String)> = Vec::new();

        // Continuity with the previous statement of the same account (raised once, by the run
        // that stored the statement).
        let previous = match resume_after {
            Some(_) => None,
            None => tx.previous_statement(&key).await?,
        };
        if let Some(prev) = previous {
            if prev.closing_minor != row.opening_minor || prev.currency != row.currency {
                continuity.push(("statement_break", format!(
                    "{}: opening balance {} {} is not the closing balance {} {} of the previous statement {} ({}): a statement is missing or wrong",
                    here(line), minor_text(row.opening_minor, opening.currency()), row.currency, minor_text(prev.closing_minor, opening.currency()), prev.currency,
                    prev.electronic_sequence.unwrap_or_default(), prev.file_name
                )));
            }
            if let (Some(p), Some(n)) = (prev.electronic_sequence, row.electronic_sequence) {
                if n != p + 1 {
                    continuity.push(("statement_gap", format!(
                        "{}: statement {n} follows statement {p} ({}): statements {}..{} are missing",
                        here(line), prev.file_name, p + 1, n - 1
                    )));
                }
            }
        }
        let own_sum = sums.get(&opening.currency()).copied().unwrap_or(0);
        if resume_after.is_none()
            && row.opening_minor.checked_add(own_sum) != Some(row.closing_minor)
        {
            continuity.push(("statement_unbalanced", format!(
                "{}: opening {} + entries {} is not the closing balance {} {}: the statement does not add up",
                here(line), minor_text(row.opening_minor, opening.currency()), minor_text(own_sum, opening.currency()), minor_text(row.closing_minor, opening.currency()), row.currency
            )));
        }
        if resume_after.is_none() {
            tx.insert(&row).await?;
        }
        let mut importing = StatementImport {
            statement: &row,
            channel: &channel_name,
            here: &here,
            at: &at,
            actor,
            summary: &mut summary,
            rules: MatchRules {
                amount_tolerance_bps: channel.statement_tolerance_bps,
            },
        };
        for (kind, reason) in continuity {
            importing.raise(&mut tx, kind, reason, line, None).await?;
        }

        // Pass 2: match and store every entry, a chunk per transaction. SQLite's WAL is made for
        // small transactions: one of a million entries reads back its own spilled pages ever
        // more slowly. Each chunk's transaction holds its entries, their exceptions, the fees
        // they book and one audit event; the last one also the event that closes the statement.
        let mut chunk: Vec<StatementEntry> = Vec::with_capacity(STATEMENT_CHUNK_ENTRIES);
        let mut applied_uncommitted = false;
        let mut entry_index = 0u64;
        for item in open()? {
            let StatementRecord::Entry(e) = item.map_err(|e| file_err(&e))? else {
                continue;
            };
            entry_index += 1;
            if resume_after.is_some_and(|stored| entry_index <= stored) {
                continue;
            }
            chunk.push(e);
            if chunk.len() == STATEMENT_CHUNK_ENTRIES {
                if applied_uncommitted {
                    tx.commit().await?;
                    tx = self.db.write().await?;
                }
                importing.apply_chunk(&mut tx, &chunk).await?;
                applied_uncommitted = true;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            if applied_uncommitted {
                tx.commit().await?;
                tx = self.db.write().await?;
            }
            importing.apply_chunk(&mut tx, &chunk).await?;
        }
        // What the whole statement came to, this run's chunks and an earlier run's alike.
        summary.by_status = tx.statement_entry_counts(row.id).await?;
        summary.resumed = resume_after.is_some();
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "statement.imported".into(),
            subject: format!("statement:{}", row.id),
            reason: None,
            detail: json!({"file": file_name, "sha256": bytes_sha, "channel": row.channel_id,
                "account": format!("****{}", row.account_last4), "sequence": row.electronic_sequence,
                "entries": count, "by_status": summary.by_status,
                "exceptions": summary.exceptions_total, "resumed": summary.resumed}),
        })
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// A person confirms a suggested match, or rejects it (then a debit is unexplained).
    pub async fn decide_statement_entry(
        &self,
        entry: i64,
        confirm: bool,
        why: &str,
        as_of: DateTime<Utc>,
        who: &OperatorName,
    ) -> Result<StatementEntryRow> {
        if why.trim().is_empty() {
            return Err(EngineError::invalid("why", "say why"));
        }
        let mut tx = self.db.write().await?;
        let role = Self::operator_role(&mut tx, who).await?;
        disburse_core::correction::check_may_propose(
            who.as_str(),
            role,
            "decide statement matches",
        )
        .map_err(|e| EngineError::Refused(e.to_string()))?;
        let mut row: StatementEntryRow =
            tx.statement_entry(entry)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "statement entry",
                    id: entry.to_string(),
                })?;
        if row.match_status != "suggested" {
            return Err(EngineError::Refused(format!(
                "entry {entry} is {}; only suggested matches are confirmed or rejected",
                row.match_status
            )));
        }
        let at = fmt_time(as_of);
        let before = row.match_status.clone();
        row.match_status = if confirm { "matched" } else { "unmatched" }.into();
        row.decided_by = Some(who.to_string());
        row.decided_at = Some(at.clone());
        tx.update(&row).await?;
        if !confirm && row.amount_minor < 0 {
            let ex = ExceptionRow {
                id: tx.next_id("exception").await?,
                kind: "unexplained_debit".into(),
                status: "open".into(),
                payout_no: None,
                merchant_id: None,
                amount_minor: Some(-row.amount_minor),
                currency: Some(row.currency.clone()),
                bank_file_id: None,
                line: Some(row.line),
                reason: format!(
                    "statement entry {entry} (line {}): {who} rejected the suggested match ({}): ask the bank",
                    row.line, row.note
                ),
                detail: json!({"statement_entry": entry}).to_string(),
                created_at: at.clone(),
                resolved_at: None,
                resolved_by: None,
            };
            tx.insert(&ex).await?;
        }
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(who).as_str().into(),
            action: if confirm { "statement_entry.confirmed" } else { "statement_entry.rejected" }.into(),
            subject: format!("statement_entry:{entry}"),
            reason: Some(why.to_string()),
            detail: json!({"before": before, "after": row.match_status, "rule": row.match_rule, "payout_no": row.payout_no, "batch_id": row.batch_id}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The reconciliation of a channel's statements with our payouts and books, as of a time.
    pub async fn reconcile(&self, channel: &str, as_of: DateTime<Utc>) -> Result<Reconciliation> {
        let channel = self.config.channel(channel)?.id.to_string();
        let statements: Vec<StatementRow> = self.db.statements_of_channel(&channel).await?;
        let mut entries: Vec<StatementEntryRow> = Vec::new();
        for s in &statements {
            entries.extend(self.db.entries_of_statement(s.id).await?);
        }
        let line = |e: &StatementEntryRow| EntryLine {
            entry: e.id,
            statement: e.statement_id,
            line: e.line,
            amount_minor: e.amount_minor,
            note: e.note.clone(),
        };
        let matched: Vec<&StatementEntryRow> = entries
            .iter()
            .filter(|e| e.match_status == "matched")
            .collect();
        let fees_minor: i64 = entries
            .iter()
            .filter(|e| e.match_status == "fee")
            .map(|e| -e.amount_minor)
            .sum();
        // Which payouts a statement shows leaving: directly, or in a batch booked as one debit.
        let mut on_statement: std::collections::HashSet<String> = matched
            .iter()
            .filter(|e| e.amount_minor < 0)
            .filter_map(|e| e.payout_no.clone())
            .collect();
        let batches: Vec<i64> = matched.iter().filter_map(|e| e.batch_id).collect();
        for b in batches {
            for p in self.db.payouts_of_batch(b).await? {
                on_statement.insert(p.payout_no);
            }
        }
        let succeeded: Vec<PayoutRow> = self
            .db
            .channel_payouts_in_state(&channel, "succeeded", None)
            .await?;

        let mut books_only_minor = 0i64;
        let mut not_on_any_statement = Vec::new();
        let (mut presumed_paid_confirmed, mut presumed_paid_unconfirmed) = (0u64, 0u64);
        for p in &succeeded {
            let presumed = p.paid_basis.as_deref() == Some("assumed");
            if on_statement.contains(&p.payout_no) {
                presumed_paid_confirmed += u64::from(presumed);
                continue;
            }
            let paid = p.paid_amount_minor.unwrap_or(p.amount_minor);
            books_only_minor = books_only_minor.saturating_add(paid);
            let at = p.succeeded_at.clone().unwrap_or_default();
            let due = parse_time(&at).is_ok_and(|t| {
                business_days_between(t.date_naive(), as_of.date_naive())
                    >= NOT_ON_STATEMENT_AFTER_DAYS
            });
            if due {
                presumed_paid_unconfirmed += u64::from(presumed);
                not_on_any_statement.push(PayoutLine {
                    payout_no: p.payout_no.clone(),
                    paid_minor: paid,
                    succeeded_at: at,
                });
            }
        }
        let currency = statements.first().map(|s| s.currency.clone());
        let books_vs_bank = match (statements.first(), statements.last(), &currency) {
            (Some(first), Some(last), Some(ccy)) => {
                let bank_movement = last.closing_minor - first.opening_minor;
                let books = self
                    .db
                    .balance(
                        &LedgerAccount::ChannelBank(
                            ChannelId::parse(&channel).map_err(crate::payouts::corrupt)?,
                        )
                        .to_string(),
                        ccy,
                    )
                    .await?;
                let statement_only: i64 = entries
                    .iter()
                    .filter(|e| {
                        matches!(
                            e.match_status.as_str(),
                            "unmatched" | "suggested" | "not_ours"
                        )
                    })
                    .filter(|e| e.currency == *ccy)
                    .map(|e| e.amount_minor)
                    .sum();
                // Books hold those payouts as money out (negative); the bank does not yet.
                let difference = bank_movement - books;
                let explained = statement_only + books_only_minor;
                Some(BooksVsBank {
                    bank_movement_minor: bank_movement,
                    books_movement_minor: books,
                    difference_minor: difference,
                    explained_by_statement_only_minor: statement_only,
                    explained_by_books_only_minor: books_only_minor,
                    unexplained_minor: difference - explained,
                })
            }
            _ => None,
        };
        let open: Vec<ExceptionRow> = self.db.open_statement_exceptions().await?;
        Ok(Reconciliation {
            channel,
            as_of: fmt_time(as_of),
            currency,
            statements: statements
                .iter()
                .map(|s| StatementLine {
                    statement: s.id,
                    electronic_sequence: s.electronic_sequence,
                    from: s.from_date.clone(),
                    to: s.to_date.clone(),
                    opening_minor: s.opening_minor,
                    closing_minor: s.closing_minor,
                    entries: s.entries,
                    entries_imported: entries.iter().filter(|e| e.statement_id == s.id).count()
                        as i64,
                    file_name: s.file_name.clone(),
                })
                .collect(),
            matched: matched.len() as u64,
            matched_minor: matched.iter().map(|e| e.amount_minor).sum(),
            fees_minor,
            suggested: entries
                .iter()
                .filter(|e| e.match_status == "suggested")
                .map(line)
                .collect(),
            unmatched: entries
                .iter()
                .filter(|e| e.match_status == "unmatched")
                .map(line)
                .collect(),
            not_on_any_statement,
            presumed_paid_confirmed,
            presumed_paid_unconfirmed,
            open_exceptions: open.into_iter().map(|e| (e.kind, e.reason)).collect(),
            books_vs_bank,
        })
    }
}

/// Our own account identifies a statement's account; it is kept as a digest, never in clear.
/// Entries matched and written per chunk of a statement import (one audit event each).
pub const STATEMENT_CHUNK_ENTRIES: usize = 2_000;
/// Exceptions an import summary lists by name; all of them are on the exception queue.
const SUMMARY_EXCEPTIONS_MAX: usize = 100;

/// The two CSV statement layouts shipped with Disburse; a channel may also name a profile file.
pub fn statement_profile(name: &str) -> Result<CsvStatementProfile> {
    let text = match name {
        "englishbank-statement" => {
            include_str!("../../formats/profiles/englishbank-statement.toml").to_string()
        }
        "myanmarbank-statement" => {
            include_str!("../../formats/profiles/myanmarbank-statement.toml").to_string()
        }
        path => std::fs::read_to_string(path).map_err(|e| {
            EngineError::Config(format!(
                "statement profile {path:?}: {e} (built in: englishbank-statement, myanmarbank-statement)"
            ))
        })?,
    };
    CsvStatementProfile::from_toml(&text)
        .map_err(|e| EngineError::Config(format!("statement profile {name}: {e}")))
}

/// A statement file as records, whichever way the bank writes it.
enum StatementReader<'p> {
    // Boxed: both hold hundreds of bytes of parser state, of very different sizes.
    Camt(Box<Statements<BufReader<File>>>),
    Csv(Box<CsvStatement<'p, BufReader<File>>>),
}

impl Iterator for StatementReader<'_> {
    type Item = std::result::Result<StatementRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            StatementReader::Camt(r) => r.next(),
            StatementReader::Csv(r) => r.next(),
        }
    }
}

/// A payout as matching sees it: (number, state, paid or instructed minor units).
type PayoutFact = (String, String, i64);

/// What one chunk's entries may match, read with one set read per kind of fact.
#[derive(Default)]
struct ChunkFacts {
    /// By payout number: the payout, and what came back of it while it stayed succeeded.
    payouts: HashMap<String, (PayoutFact, i64)>,
    /// By bank reference: every payout of the channel carrying it.
    by_reference: HashMap<String, Vec<PayoutFact>>,
    /// By message id: (batch id, control sum).
    batches: HashMap<String, (i64, i64)>,
    /// By batch id: what our books hold paid for its payouts.
    batch_paid: HashMap<i64, i64>,
    /// By (currency, control sum): the channel's batches of that sum.
    by_control_sum: HashMap<(Currency, i64), Vec<(i64, i64)>>,
}

fn payout_fact(p: &PayoutRow) -> PayoutFact {
    let minor = p.paid_amount_minor.unwrap_or(p.amount_minor);
    (p.payout_no.clone(), p.state.clone(), minor)
}

impl ChunkFacts {
    async fn load(
        tx: &mut WriteTx<'_>,
        channel: &str,
        chunk: &[StatementEntry],
    ) -> Result<ChunkFacts> {
        let mut facts = ChunkFacts::default();
        let distinct = |values: &mut dyn Iterator<Item = String>| -> Vec<String> {
            let mut v: Vec<String> = values.collect();
            v.sort();
            v.dedup();
            v
        };
        let numbers = distinct(&mut chunk.iter().filter_map(|e| e.end_to_end_id.clone()));
        for p in tx.channel_payouts_by_numbers(channel, &numbers).await? {
            facts
                .payouts
                .insert(p.payout_no.clone(), (payout_fact(&p), p.returned_minor));
        }
        let references = distinct(&mut chunk.iter().filter_map(|e| e.bank_reference.clone()));
        for p in tx
            .channel_payouts_by_bank_references(channel, &references)
            .await?
        {
            if let Some(r) = &p.bank_reference {
                facts
                    .by_reference
                    .entry(r.clone())
                    .or_default()
                    .push(payout_fact(&p));
            }
        }
        let ids = distinct(
            &mut chunk.iter().filter_map(|e| e.batch.as_ref()).flat_map(|b| {
                [b.message_id.clone(), b.payment_information_id.clone()]
                    .into_iter()
                    .flatten()
            }),
        );
        let batches = tx.channel_batches_by_message_ids(channel, &ids).await?;
        let batch_ids: Vec<i64> = batches.iter().map(|b| b.id).collect();
        for b in batches {
            facts
                .batches
                .insert(b.message_id, (b.id, b.control_sum_minor));
        }
        facts.batch_paid = tx.paid_of_batches(&batch_ids).await?.into_iter().collect();
        let mut sums: BTreeMap<Currency, Vec<i64>> = BTreeMap::new();
        for e in chunk {
            if Self::wants_control_sum(e) && facts.batch_of(e).is_none() {
                sums.entry(e.amount.currency())
                    .or_default()
                    .push(-e.amount.amount_minor());
            }
        }
        for (currency, mut values) in sums {
            values.sort_unstable();
            values.dedup();
            for b in tx
                .channel_batches_by_control_sums(channel, currency.code(), &values)
                .await?
            {
                facts
                    .by_control_sum
                    .entry((currency, b.control_sum_minor))
                    .or_default()
                    .push((b.id, b.control_sum_minor));
            }
        }
        Ok(facts)
    }

    /// A debit that is not one transfer may book a whole batch named by nothing but its sum.
    fn wants_control_sum(e: &StatementEntry) -> bool {
        e.amount.amount_minor() < 0 && e.transactions != 1
    }

    fn batch_of(&self, e: &StatementEntry) -> Option<(i64, i64)> {
        let b = e.batch.as_ref()?;
        [&b.message_id, &b.payment_information_id]
            .into_iter()
            .flatten()
            .find_map(|id| self.batches.get(id).copied())
    }

    /// The facts of one entry: what [`match_entry`] decides on.
    fn of(&self, e: &StatementEntry) -> EntryFacts {
        let mut facts = EntryFacts::default();
        if let Some((p, returned)) = e.end_to_end_id.as_ref().and_then(|n| self.payouts.get(n)) {
            facts.by_end_to_end_id = Some(p.clone());
            facts.end_to_end_returned_minor = *returned;
        }
        if let Some((id, sum)) = self.batch_of(e) {
            facts.by_batch_id = Some((id, sum));
            facts.batch_paid_minor = Some(self.batch_paid.get(&id).copied().unwrap_or(0));
        }
        // A reference two payouts carry names neither.
        if let Some([only]) = e
            .bank_reference
            .as_ref()
            .and_then(|r| self.by_reference.get(r))
            .map(Vec::as_slice)
        {
            facts.by_reference = Some(only.clone());
        }
        if facts.by_batch_id.is_none() && Self::wants_control_sum(e) {
            if let Some([only]) = self
                .by_control_sum
                .get(&(e.amount.currency(), -e.amount.amount_minor()))
                .map(Vec::as_slice)
            {
                facts.by_control_sum = Some(*only);
            }
        }
        facts
    }
}

/// One statement being imported: where its entries go and what they add up to.
struct StatementImport<'a> {
    statement: &'a StatementRow,
    channel: &'a str,
    here: &'a (dyn Fn(u64) -> String + Sync),
    at: &'a str,
    actor: &'a Actor,
    summary: &'a mut StatementSummary,
    rules: MatchRules,
}

impl StatementImport<'_> {
    async fn raise(
        &mut self,
        tx: &mut WriteTx<'_>,
        kind: &str,
        reason: String,
        line: u64,
        payout_no: Option<String>,
    ) -> Result<()> {
        let ex = ExceptionRow {
            id: tx.next_id("exception").await?,
            kind: kind.to_string(),
            status: "open".into(),
            payout_no,
            merchant_id: None,
            amount_minor: None,
            currency: Some(self.statement.currency.clone()),
            bank_file_id: None,
            line: Some(line as i64),
            reason: reason.clone(),
            detail: json!({"statement": self.statement.id, "file": self.statement.file_name, "line": line})
                .to_string(),
            created_at: self.at.to_string(),
            resolved_at: None,
            resolved_by: None,
        };
        tx.insert(&ex).await?;
        self.summary.exceptions_total += 1;
        if self.summary.exceptions.len() < SUMMARY_EXCEPTIONS_MAX {
            self.summary.exceptions.push((kind.to_string(), reason));
        }
        Ok(())
    }

    /// Matches and writes one chunk of entries under one audit event.
    async fn apply_chunk(&mut self, tx: &mut WriteTx<'_>, chunk: &[StatementEntry]) -> Result<()> {
        let facts = ChunkFacts::load(tx, self.channel, chunk).await?;
        let first_id = tx.next_ids("statement_entry", chunk.len() as i64).await?;
        let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut fees: BTreeMap<Currency, i64> = BTreeMap::new();
        for (i, e) in chunk.iter().enumerate() {
            let m = if e.amount.currency().code() != self.statement.currency {
                let mut m = outcome(
                    "unmatched",
                    None,
                    format!(
                        "an entry in {} on a {} account",
                        e.amount.currency(),
                        self.statement.currency
                    ),
                );
                m.exception = Some((
                    "statement_entry_currency",
                    format!(
                        "the entry is in {}, the account in {}: ask the bank",
                        e.amount.currency(),
                        self.statement.currency
                    ),
                ));
                m
            } else {
                match_entry(e, &facts.of(e), self.rules)
            };
            if m.status == "fee" {
                let f = fees.entry(e.amount.currency()).or_default();
                *f = f.checked_add(-e.amount.amount_minor()).ok_or_else(|| {
                    EngineError::invalid(
                        "file",
                        format!("{}: the fees' sum overflows", (self.here)(e.line)),
                    )
                })?;
            }
            if let Some((kind, what)) = &m.exception {
                let reason = format!("{}: {what}", (self.here)(e.line));
                self.raise(tx, kind, reason, e.line, m.payout_no.clone())
                    .await?;
            }
            *by_status.entry(m.status).or_default() += 1;
            *self
                .summary
                .by_status
                .entry(m.status.to_string())
                .or_default() += 1;
            let entry_row = StatementEntryRow {
                id: first_id + i as i64,
                statement_id: self.statement.id,
                line: e.line as i64,
                amount_minor: e.amount.amount_minor(),
                currency: e.amount.currency().code().to_string(),
                kind: e.kind.as_str().to_string(),
                booking_date: e.booking_date.map(fmt_date),
                bank_reference: e.bank_reference.clone(),
                end_to_end_id: e.end_to_end_id.clone(),
                batch_reference: e
                    .batch
                    .as_ref()
                    .and_then(|b| b.payment_information_id.clone().or(b.message_id.clone())),
                match_status: m.status.to_string(),
                match_rule: m.rule.map(str::to_string),
                payout_no: m.payout_no,
                batch_id: m.batch_id,
                note: m.note,
                decided_by: None,
                decided_at: None,
            };
            tx.insert(&entry_row).await?;
        }
        // The bank's charges: an expense of the channel, never part of a payout's amount.
        let channel_id = ChannelId::parse(self.channel).map_err(crate::payouts::corrupt)?;
        let mut fee_journals = Vec::new();
        for (currency, minor) in &fees {
            if *minor > 0 {
                let j = Journal::transfer(
                    JournalKind::BankFees,
                    LedgerAccount::ChannelFees(channel_id.clone()),
                    LedgerAccount::ChannelBank(channel_id.clone()),
                    Money::from_minor(*minor, *currency),
                )
                .map_err(|e| EngineError::Refused(e.to_string()))?;
                fee_journals.push(write_journal(tx, &j, None, None, None, self.at).await?);
            }
        }
        let lines = [chunk.first().map(|e| e.line), chunk.last().map(|e| e.line)];
        tx.audit(NewAuditEvent {
            at: self.at.to_string(),
            actor: self.actor.as_str().into(),
            action: "statement.entries_matched".into(),
            subject: format!("statement:{}", self.statement.id),
            reason: None,
            detail: json!({"lines": lines, "entries": chunk.len(), "by_status": by_status,
                "fee_journals": fee_journals}),
        })
        .await?;
        Ok(())
    }
}

fn account_digest(account: &str) -> String {
    let normalized: String = account
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

fn last4(account: &str) -> String {
    let chars: Vec<char> = account.chars().filter(|c| !c.is_whitespace()).collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn business_days_skip_weekends() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        // Friday 2026-11-06 → Monday 11-09 is one business day; → Wednesday 11-11 three.
        assert_eq!(business_days_between(d(11, 6), d(11, 9)), 1);
        assert_eq!(business_days_between(d(11, 6), d(11, 11)), 3);
        assert_eq!(business_days_between(d(11, 9), d(11, 9)), 0);
        assert_eq!(business_days_between(d(11, 7), d(11, 8)), 0, "a weekend");
    }

    fn debit(minor: i64) -> StatementEntry {
        StatementEntry {
            line: 7,
            amount: Money::from_minor(-minor, Currency::Eur),
            booked: true,
            booking_date: None,
            value_date: None,
            bank_reference: None,
            kind: EntryKind::Payment,
            batch: None,
            end_to_end_id: Some("PO1".into()),
            transactions: 1,
        }
    }

    fn paid(minor: i64) -> EntryFacts {
        EntryFacts {
            by_end_to_end_id: Some(("PO1".into(), "succeeded".into(), minor)),
            ..EntryFacts::default()
        }
    }

    #[test]
    fn the_channels_tolerance_decides_suggested_or_raised() {
        let five_percent = MatchRules {
            amount_tolerance_bps: 500,
        };
        let exact = MatchRules {
            amount_tolerance_bps: 0,
        };
        // Equal: matched, whatever the tolerance.
        assert_eq!(
            match_entry(&debit(10_000), &paid(10_000), exact).status,
            "matched"
        );
        // 5.00 on 100.00 is 5%: suggested for a person; 5.01 is beyond.
        let m = match_entry(&debit(10_500), &paid(10_000), five_percent);
        assert_eq!(
            (m.status, m.exception.is_none()),
            ("suggested", true),
            "{m:?}"
        );
        let m = match_entry(&debit(10_501), &paid(10_000), five_percent);
        assert_eq!(m.status, "unmatched", "{m:?}");
        let (kind, what) = m.exception.expect("raised");
        assert_eq!(kind, "statement_amount_differs");
        assert!(what.contains("105.01") && what.contains("100.00"), "{what}");
        // A tolerance of zero raises any difference, a cent too.
        let m = match_entry(&debit(10_001), &paid(10_000), exact);
        assert_eq!(m.exception.map(|e| e.0), Some("statement_amount_differs"));
        // The same rule for a whole batch booked as one debit.
        let mut batch = debit(30_600);
        batch.end_to_end_id = None;
        batch.transactions = 0;
        let facts = EntryFacts {
            by_batch_id: Some((3, 30_000)),
            batch_paid_minor: Some(30_000),
            ..EntryFacts::default()
        };
        assert_eq!(
            match_entry(&batch, &facts, five_percent).status,
            "suggested"
        );
        let raised = match_entry(&batch, &facts, exact);
        assert_eq!(
            raised.exception.map(|e| e.0),
            Some("statement_amount_differs")
        );
        assert_eq!(raised.batch_id, Some(3));
    }
}
