//! Importing a bank result file: detect its format, check it whole, then apply it in chunks.
//!
//! - The same file (by SHA-256) again is "already imported"; nothing changes.
//! - The file is read twice, streaming: first to refuse a broken file before anything is applied
//!   (truncated XML, wrong format, wrong encoding), then to apply it. Memory stays bounded by one
//!   chunk, whatever the file size.
//! - Each chunk is one transaction that also records how far the import got (in records, never in
//!   physical lines: banks send whole files on one line), so a crash leaves whole chunks applied
//!   and a rerun resumes after the last one, doubling nothing.
//! - A file being imported is claimed (`import_claims`): a second importer is told who holds it;
//!   a holder that died leaves a claim that lapses (at once when it ran on this machine).
//! - A line that cannot be applied becomes an exception with file and line: never dropped. A line
//!   that contradicts the payout (another currency, instructed amount, channel or message) is
//!   never applied; the same fact raised again opens no second exception.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use disburse_core::payout::Refusal;
use disburse_core::BankResult;
use disburse_formats::results::{read_xml_results, DETECT_HEAD_LEN};
use disburse_formats::{detect, BankOutcome, Detected, ReadError, ResultLine, ResultRecord};
use disburse_store::{
    fmt_time, BankFileRow, BatchRow, Claim, ExceptionRow, NewAuditEvent, PayoutRow, WriteTx,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::batches::csv_profile;
use crate::payouts::ResultSource;
use crate::views::{AuditView, JournalLineView, MoneyView};
use crate::{Actor, ApplyOutcome, Engine, EngineError, Result};

/// Records per transaction: large enough to amortize a commit, small enough that a crash loses
/// little work and memory stays flat.
pub const CHUNK_RECORDS: usize = 500;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub file_id: i64,
    pub file_name: String,
    pub sha256: String,
    pub format: String,
    pub already_imported: bool,
    pub resumed_after_line: u64,
    /// Records applied by earlier runs of this import (a resumed import skips them).
    pub resumed_after_record: u64,
    /// The importer whose lapsed claim this run took over, if any.
    pub took_over_from: Option<String>,
    pub read: u64,
    pub applied: u64,
    pub unchanged: u64,
    pub exceptions: u64,
    /// What the bank said, counted by outcome (accepted, paid, payee verification RVNM, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Statements this run sent to the database while applying: a handful per chunk of
    /// [`CHUNK_RECORDS`] lines when the set reads and set writes work, several per line if not.
    pub sql_statements: u64,
}

/// What a result file would change if imported now.
#[derive(Debug, Serialize)]
pub struct ImportPreview {
    /// The counts the import would report.
    pub summary: ImportSummary,
    /// The audit events it would write, in order: each payout's state change (before and
    /// after, with the file's line), each exception it would open.
    pub events: Vec<AuditView>,
    /// The journals it would post.
    pub postings: Vec<PreviewPosting>,
}

#[derive(Debug, Serialize)]
pub struct PreviewPosting {
    pub kind: String,
    pub merchant: Option<String>,
    pub lines: Vec<JournalLineView>,
}

/// Why a line could not be applied; the exception's kind tells a person what to do.
#[derive(Debug, Clone, Copy)]
enum ExceptionKind {
    UnreadableLine,
    UnknownPayout,
    Conflict,
    /// The line is not about the payout as we sent it: another currency, instructed amount,
    /// channel or message.
    Contradiction,
    /// An amount beyond the channel's bound (or not positive): not believed.
    OutOfBounds,
    /// A status we do not know, or none: a person must read the line.
    UnrecognisedStatus,
    NotApplicable,
    PayeeVerification,
    UnknownBatch,
}

impl ExceptionKind {
    fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::UnreadableLine => "unreadable_line",
            ExceptionKind::UnknownPayout => "unknown_payout",
            ExceptionKind::Conflict => "conflict",
            ExceptionKind::Contradiction => "contradiction",
            ExceptionKind::OutOfBounds => "out_of_bounds",
            ExceptionKind::UnrecognisedStatus => "unrecognised_status",
            ExceptionKind::NotApplicable => "not_applicable",
            ExceptionKind::PayeeVerification => "payee_verification",
            ExceptionKind::UnknownBatch => "unknown_batch",
        }
    }
}

enum Reader<'p> {
    Xml(disburse_formats::results::XmlResults<BufReader<File>>),
    Csv(disburse_formats::bank_csv::CsvResults<'p, BufReader<File>>),
}

impl Iterator for Reader<'_> {
    type Item = std::result::Result<ResultRecord, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Reader::Xml(r) => r.next(),
            Reader::Csv(r) => r.next(),
        }
    }
}

fn open_records<'p>(
    path: &Path,
    detected: Detected,
    profile: Option<&'p disburse_formats::CsvProfile>,
) -> Result<Reader<'p>> {
    let file = File::open(path)
        .map_err(|e| EngineError::invalid("file", format!("{}: {e}", path.display())))?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    Ok(match detected {
        Detected::Csv => {
            let profile = profile.expect("csv needs a profile, checked by the caller");
            Reader::Csv(disburse_formats::read_csv_results(profile, reader))
        }
        _ => Reader::Xml(read_xml_results(reader)),
    })
}

/// A result file as read from its head: what it is and how to read it.
struct Prepared<'e> {
    file_name: String,
    sha256: String,
    size_bytes: u64,
    detected: Detected,
    profile: Option<disburse_formats::CsvProfile>,
    format: String,
    channel: Option<&'e crate::Channel>,
}

/// Pass 1: the whole file must be readable before any of it is applied. Its record count.
fn count_records(
    path: &Path,
    detected: Detected,
    profile: Option<&disburse_formats::CsvProfile>,
) -> Result<u64> {
    let mut records_total = 0u64;
    for item in open_records(path, detected, profile)? {
        match item {
            Err(ReadError::File(e)) => return Err(file_error(path, e)),
            _ => records_total += 1,
        }
    }
    if records_total == 0 {
        return Err(file_error(path, "no result records in the file"));
    }
    Ok(records_total)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid("file", format!("{}: {e}", path.display()))
}

impl Engine {
    /// Imports one result file. `channel` is needed for CSV files (its profile); for XML it is
    /// optional and only recorded.
    pub async fn import_results(
        &self,
        path: &Path,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImportSummary> {
        let p = self.prepare(path, channel)?;
        let holder = importer_identity();
        let took_over = self.claim_file(&p.sha256, &p.file_name, &holder).await?;
        let result = self
            .import_claimed(
                path,
                &p.file_name,
                &p.sha256,
                p.size_bytes,
                p.detected,
                p.profile.as_ref(),
                &p.format,
                p.channel,
                &holder,
                took_over,
                as_of,
                actor,
                progress,
            )
            .await;
        // Released on success and on a clean failure; a crash leaves it to lapse.
        self.db.release_import_claim(&p.sha256, &holder).await?;
        result
    }

    /// What importing the file would change, exactly: the import itself runs, every line decided
    /// by the same code, in one transaction that is then rolled back. Nothing is kept, not even
    /// the file's row; the same file can be previewed again and then imported.
    pub async fn preview_results(
        &self,
        path: &Path,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<ImportPreview> {
        let p = self.prepare(path, channel)?;
        let profile = p.profile.as_ref();
        let existing: Option<BankFileRow> = self.db.bank_file_by_sha256(&p.sha256).await?;
        let mut summary = ImportSummary {
            file_name: p.file_name.clone(),
            sha256: p.sha256.clone(),
            format: p.format.clone(),
            ..Default::default()
        };
        if let Some(f) = existing.as_ref().filter(|f| f.status == "imported") {
            summary.file_id = f.id;
            summary.already_imported = true;
            return Ok(ImportPreview {
                summary,
                events: Vec::new(),
                postings: Vec::new(),
            });
        }
        let records_total = count_records(path, p.detected, profile)?;
        let at = fmt_time(as_of);
        let mut tx = self.db.write().await?;
        let start_seq = tx.head_seq();
        let file_row = match existing {
            Some(f) => f,
            None => {
                new_file_row(
                    &mut tx,
                    &p.file_name,
                    &p.sha256,
                    &p.format,
                    p.size_bytes,
                    p.channel,
                    records_total,
                    &at,
                    actor,
                    "preview",
                )
                .await?
            }
        };
        summary.file_id = file_row.id;
        summary.resumed_after_record = file_row.records_done as u64;
        summary.resumed_after_line = file_row.last_line_done as u64;
        let file_actor = Actor(format!("file:{}", p.file_name));
        let mut records = open_records(path, p.detected, profile)?
            .skip(file_row.records_done as usize)
            .peekable();
        while records.peek().is_some() {
            let chunk: Vec<_> = records.by_ref().take(CHUNK_RECORDS).collect();
            self.apply_chunk(&mut tx, &file_row, chunk, as_of, &file_actor, &mut summary)
                .await?;
        }
        let events = tx
            .audit_events_after(start_seq)
            .await?
            .into_iter()
            .filter(|e| e.action != "bank_file.import_started")
            .map(AuditView::from)
            .collect();
        let postings = tx
            .journals_after(start_seq)
            .await?
            .into_iter()
            .map(|(j, lines)| PreviewPosting {
                kind: j.kind,
                merchant: j.merchant_id,
                lines: lines
                    .into_iter()
                    .map(|l| JournalLineView {
                        account: l.account,
                        amount: MoneyView::new(l.amount_minor, &l.currency),
                    })
                    .collect(),
            })
            .collect();
        tx.rollback().await?;
        Ok(ImportPreview {
            summary,
            events,
            postings,
        })
    }

    /// What the file is: its name, hash, size and format (and the CSV profile its channel
    /// reads it with). Reads only its head.
    fn prepare<'e>(&'e self, path: &Path, channel: Option<&str>) -> Result<Prepared<'e>> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        // Pass 0: hash and head, streaming.
        let (sha256, size_bytes, head) = hash_file(path)?;
        let detected = detect(&head).map_err(|e| file_error(path, e))?;
        let channel = channel.map(|c| self.config.channel(c)).transpose()?;
        let profile: Option<disburse_formats::CsvProfile> = if detected == Detected::Csv {
            let channel = channel.ok_or_else(|| {
                EngineError::invalid("channel", format!("{file_name} is not XML; name the CSV channel with --channel so its profile is known"))
            })?;
            let name = channel.csv_profile.as_deref().ok_or_else(|| {
                EngineError::invalid(
                    "channel",
                    format!(
                        "channel {} has no CSV profile; {file_name} is not XML",
                        channel.id
                    ),
                )
            })?;
            Some(csv_profile(name)?)
        } else {
            None
        };
        let format = match (detected, &profile) {
            (Detected::Csv, Some(p)) => format!("csv:{}", p.name()),
            (d, _) => d.to_string(),
        };

        Ok(Prepared {
            file_name,
            sha256,
            size_bytes,
            detected,
            profile,
            format,
            channel,
        })
    }

    /// Takes the import claim on a file, or says who holds it.
    async fn claim_file(
        &self,
        sha256: &str,
        file_name: &str,
        holder: &str,
    ) -> Result<Option<String>> {
        let now = Utc::now();
        let until = now + self.import_lease;
        match self.db.claim_import(sha256, holder, now, until).await? {
            Claim::Taken { took_over } => Ok(took_over),
            Claim::HeldBy {
                holder: other,
                expires_at,
            } if holder_is_dead(&other) => {
                // It ran on this machine and its process is gone: no need to wait for the lease.
                if self
                    .db
                    .take_over_import_claim(sha256, &other, &expires_at, holder, now, until)
                    .await?
                {
                    Ok(Some(other))
                } else {
                    Err(EngineError::Busy(format!(
                        "{file_name} was just claimed by another importer; try again"
                    )))
                }
            }
            Claim::HeldBy {
                holder: other,
                expires_at,
            } => Err(EngineError::Busy(format!(
                "{file_name} is being imported by {other}; its claim runs until {expires_at} \
                 and is renewed while that import runs (if it died, the claim lapses then and \
                 the next import resumes the file)"
            ))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_claimed(
        &self,
        path: &Path,
        file_name: &str,
        sha256: &str,
        size_bytes: u64,
        detected: Detected,
        profile: Option<&disburse_formats::CsvProfile>,
        format: &str,
        channel: Option<&crate::Channel>,
        holder: &str,
        took_over: Option<String>,
        as_of: DateTime<Utc>,
        actor: &Actor,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImportSummary> {
        let (file_name, sha256, format) = (
            file_name.to_string(),
            sha256.to_string(),
            format.to_string(),
        );
        let existing: Option<BankFileRow> = self.db.bank_file_by_sha256(&sha256).await?;
        if let Some(f) = &existing {
            if f.status == "imported" {
                return Ok(ImportSummary {
                    file_id: f.id,
                    file_name: f.file_name.clone(),
                    sha256,
                    format: f.format.clone(),
                    already_imported: true,
                    read: f.records_total as u64,
                    applied: f.applied as u64,
                    unchanged: f.unchanged as u64,
                    exceptions: f.exceptions as u64,
                    ..Default::default()
                });
            }
        }

        let records_total = count_records(path, detected, profile)?;

        let at = fmt_time(as_of);
        let mut file_row = match existing {
            Some(f) => f,
            None => {
                let mut tx = self.db.write().await?;
                let row = new_file_row(
                    &mut tx,
                    &file_name,
                    &sha256,
                    &format,
                    size_bytes,
                    channel,
                    records_total,
                    &at,
                    actor,
                    holder,
                )
                .await?;
                tx.commit().await?;
                row
            }
        };
        let resumed_after_record = file_row.records_done as u64;
        let mut summary = ImportSummary {
            file_id: file_row.id,
            file_name: file_name.clone(),
            sha256: sha256.clone(),
            format,
            resumed_after_line: file_row.last_line_done as u64,
            resumed_after_record,
            took_over_from: took_over.clone(),
            ..Default::default()
        };

        // Pass 2: apply, a chunk per transaction. Records are counted in file order, so a
        // resumed import skips exactly the records earlier runs applied, however the file is
        // laid out in lines.
        let file_actor = Actor(format!("file:{file_name}"));
        let mut records = open_records(path, detected, profile)?
            .skip(resumed_after_record as usize)
            .peekable();
        let mut seen = resumed_after_record;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK_RECORDS);
            for item in records.by_ref() {
                seen += 1;
                chunk.push(item);
                if chunk.len() == CHUNK_RECORDS {
                    break;
                }
            }
            let last_chunk = records.peek().is_none();
            if !self
                .db
                .renew_import_claim(&sha256, holder, Utc::now() + self.import_lease)
                .await?
            {
                return Err(EngineError::Busy(format!(
                    "the claim on {file_name} lapsed and another importer took it over; it \
                     resumes the file from record {}",
                    file_row.records_done
                )));
            }
            let mut tx = self.db.write().await?;
            let before = (summary.applied, summary.unchanged, summary.exceptions);
            let last_line = self
                .apply_chunk(&mut tx, &file_row, chunk, as_of, &file_actor, &mut summary)
                .await?;
            file_row.last_line_done = last_line as i64;
            file_row.records_done = seen as i64;
            // The file's totals add up across runs: a resumed import continues the counts.
            file_row.applied += (summary.applied - before.0) as i64;
            file_row.unchanged += (summary.unchanged - before.1) as i64;
            file_row.exceptions += (summary.exceptions - before.2) as i64;
            if last_chunk {
                file_row.status = "imported".into();
                file_row.finished_at = Some(at.clone());
            }
            tx.update(&file_row).await?;
            tx.audit(NewAuditEvent {
                at: at.clone(),
                actor: actor.as_str().into(),
                action: if last_chunk { "bank_file.imported".into() } else { "bank_file.chunk_applied".into() },
                subject: format!("bank_file:{}", file_row.id),
                reason: None,
                detail: json!({"through_line": last_line, "through_record": seen, "read": summary.read, "applied": summary.applied,
                    "unchanged": summary.unchanged, "exceptions": summary.exceptions, "importer": holder,
                    "took_over_from": took_over}),
            })
            .await?;
            summary.sql_statements += tx.commit_counted().await?;
            progress(seen, records_total);
            if last_chunk {
                break;
            }
        }
        Ok(summary)
    }

    /// Applies a chunk of records in a transaction; the last line it reached. The import and
    /// its preview both decide every line here.
    async fn apply_chunk(
        &self,
        tx: &mut WriteTx<'_>,
        file_row: &BankFileRow,
        chunk: Vec<std::result::Result<ResultRecord, ReadError>>,
        as_of: DateTime<Utc>,
        file_actor: &Actor,
        summary: &mut ImportSummary,
    ) -> Result<u64> {
        // Every payout the chunk names, with its order and batch, in a few set reads:
        // deciding the lines then reads nothing more per line.
        let numbers: Vec<String> = chunk
            .iter()
            .filter_map(|item| match item {
                Ok(ResultRecord::Transaction(line)) => line.end_to_end_id.clone(),
                _ => None,
            })
            .collect();
        tx.payouts_by_numbers(&numbers).await?;
        let mut last_line = file_row.last_line_done as u64;
        for item in chunk {
            summary.read += 1;
            last_line = last_line.max(match &item {
                Ok(r) => r.line(),
                Err(e) => e.line(),
            });
            self.apply_record(tx, file_row, item, as_of, file_actor, summary)
                .await?;
        }
        Ok(last_line)
    }

    async fn apply_record(
        &self,
        tx: &mut WriteTx<'_>,
        file: &BankFileRow,
        item: std::result::Result<ResultRecord, ReadError>,
        as_of: DateTime<Utc>,
        actor: &Actor,
        summary: &mut ImportSummary,
    ) -> Result<()> {
        let record = match item {
            Ok(r) => r,
            Err(e) => {
                let line = e.line();
                summary.exceptions += 1;
                return self
                    .file_exception(
                        tx,
                        file,
                        line,
                        ExceptionKind::UnreadableLine,
                        None,
                        e.to_string(),
                        json!({}),
                        as_of,
                        actor,
                    )
                    .await;
            }
        };
        match record {
            ResultRecord::Transaction(line) => {
                *summary
                    .outcomes
                    .entry(line.outcome.to_string())
                    .or_default() += 1;
                self.apply_line(tx, file, &line, as_of, actor, summary)
                    .await
            }
            ResultRecord::Group(group) => {
                *summary
                    .outcomes
                    .entry(format!("group {}", group.status))
                    .or_default() += 1;
                if group.status != BankOutcome::Rejected {
                    summary.unchanged += 1;
                    return Ok(());
                }
                let batch: Option<BatchRow> = match &group.original_message_id {
                    Some(id) => tx.batch_by_message_id(id).await?,
                    None => None,
                };
                let Some(batch) = batch else {
                    summary.exceptions += 1;
                    let reason =
                        format!(
                        "the bank rejected message {} as a whole, and no batch of ours has that id",
                        group.original_message_id.as_deref().unwrap_or("(none given)")
                    );
                    return self
                        .file_exception(
                            tx,
                            file,
                            group.line,
                            ExceptionKind::UnknownBatch,
                            None,
                            reason,
                            json!({"reason_code": group.reason_code}),
                            as_of,
                            actor,
                        )
                        .await;
                };
                // The group status comes after every transaction of the file: it reaches only
                // the payouts still waiting, never one a transaction status has settled.
                let payouts: Vec<PayoutRow> = tx.waiting_payouts_of_batch(batch.id).await?;
                let result = BankResult::Rejected {
                    reason_code: group.reason_code.clone().unwrap_or_else(|| "NARR".into()),
                    reason_text: group.reason_text.clone(),
                    instructed: None,
                };
                for p in payouts {
                    self.apply_result_to(tx, file, group.line, p, &result, as_of, actor, summary)
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn apply_line(
        &self,
        tx: &mut WriteTx<'_>,
        file: &BankFileRow,
        line: &ResultLine,
        as_of: DateTime<Utc>,
        actor: &Actor,
        summary: &mut ImportSummary,
    ) -> Result<()> {
        match &line.outcome {
            BankOutcome::Pending | BankOutcome::Informational(_) => {
                summary.unchanged += 1;
                return Ok(());
            }
            BankOutcome::Unrecognised(what) => {
                summary.exceptions += 1;
                let field = status_field(&file.format);
                let reason = format!(
                    "{} line {}, field {field}: {what}; nothing was applied",
                    file.file_name, line.line
                );
                return self
                    .file_exception(
                        tx,
                        file,
                        line.line,
                        ExceptionKind::UnrecognisedStatus,
                        line.end_to_end_id.clone(),
                        reason,
                        line_detail(line),
                        as_of,
                        actor,
                    )
                    .await;
            }
            BankOutcome::PayeeVerification(code) => {
                // A name check is never a payment result; a mismatch needs a person.
                if matches!(code.as_str(), "RVNM" | "RVNA") {
                    summary.exceptions += 1;
                    let reason = format!("verification of payee answered {code}: the name does not match the account");
                    return self
                        .file_exception(
                            tx,
                            file,
                            line.line,
                            ExceptionKind::PayeeVerification,
                            line.end_to_end_id.clone(),
                            reason,
                            json!({"status": code}),
                            as_of,
                            actor,
                        )
                        .await;
                }
                summary.unchanged += 1;
                return Ok(());
            }
            _ => {}
        }
        let Some(payout) = self.match_payout(tx, line).await? else {
            summary.exceptions += 1;
            let reason = format!(
                "no payout matches EndToEndId {} (reference {}, amount {})",
                line.end_to_end_id.as_deref().unwrap_or("(none)"),
                line.bank_reference.as_deref().unwrap_or("(none)"),
                line.amount
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "(none)".into())
            );
            return self
                .file_exception(
                    tx,
                    file,
                    line.line,
                    ExceptionKind::UnknownPayout,
                    line.end_to_end_id.clone(),
                    reason,
                    line_detail(line),
                    as_of,
                    actor,
                )
                .await;
        };
        if let Some(what) = self.wrong_source(tx, file, line, &payout).await? {
            summary.exceptions += 1;
            let mut detail = line_detail(line);
            detail["merchant"] = json!(payout.merchant_id);
            detail["amount_minor"] = json!(payout.amount_minor);
            detail["currency"] = json!(payout.currency);
            return self
                .file_exception(
                    tx,
                    file,
                    line.line,
                    ExceptionKind::Contradiction,
                    Some(payout.payout_no.clone()),
                    format!("payout {}: {what}; nothing was applied", payout.payout_no),
                    detail,
                    as_of,
                    actor,
                )
                .await;
        }
        let reason = || line.reason_code.clone().unwrap_or_else(|| "NARR".into());
        let result = match &line.outcome {
            BankOutcome::Accepted => BankResult::Accepted {
                reference: line.bank_reference.clone(),
            },
            // Only a booking says what moved; a status (pain.002 ACSC) is paid in full until
            // a booking says otherwise (core decides, DESIGN §8.1).
            BankOutcome::Paid => BankResult::Paid {
                amount: line.amount,
                instructed: line.instructed_amount,
                reference: line.bank_reference.clone(),
                value_date: line.value_date,
            },
            BankOutcome::Rejected => BankResult::Rejected {
                reason_code: reason(),
                reason_text: line.reason_text.clone(),
                instructed: line.instructed_amount,
            },
            _ => BankResult::Returned {
                reason_code: reason(),
                reason_text: line.reason_text.clone(),
                amount: line.amount,
            },
        };
        self.apply_result_to(tx, file, line.line, payout, &result, as_of, actor, summary)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_result_to(
        &self,
        tx: &mut WriteTx<'_>,
        file: &BankFileRow,
        line: u64,
        payout: PayoutRow,
        result: &BankResult,
        as_of: DateTime<Utc>,
        actor: &Actor,
        summary: &mut ImportSummary,
    ) -> Result<()> {
        let source = ResultSource::File {
            name: file.file_name.clone(),
            sha256: file.sha256.clone(),
            line,
        };
        let payout_no = payout.payout_no.clone();
        let (amount, currency) = (payout.amount_minor, payout.currency.clone());
        let merchant = payout.merchant_id.clone();
        match self
            .apply_to_row(tx, payout, result, &source, as_of, actor)
            .await?
        {
            Ok(ApplyOutcome::Applied(_)) => summary.applied += 1,
            Ok(ApplyOutcome::Unchanged(_)) => summary.unchanged += 1,
            Err(refusal) => {
                summary.exceptions += 1;
                let kind = match refusal {
                    Refusal::Conflict { .. } => ExceptionKind::Conflict,
                    Refusal::Contradiction { .. } | Refusal::CurrencyMismatch { .. } => {
                        ExceptionKind::Contradiction
                    }
                    Refusal::OutOfBounds { .. } | Refusal::BadAmount(_) => {
                        ExceptionKind::OutOfBounds
                    }
                    _ => ExceptionKind::NotApplicable,
                };
                let mut tx_detail = json!({"bank_result": result});
                tx_detail["merchant"] = json!(merchant);
                tx_detail["amount_minor"] = json!(amount);
                tx_detail["currency"] = json!(currency);
                return self
                    .file_exception(
                        tx,
                        file,
                        line,
                        kind,
                        Some(payout_no),
                        refusal.to_string(),
                        tx_detail,
                        as_of,
                        actor,
                    )
                    .await;
            }
        }
        Ok(())
    }

    /// Is the line from where this payout's answers come from? A file imported for one channel
    /// speaks only for that channel's payouts, and a status report names the message (our batch)
    /// it answers.
    async fn wrong_source(
        &self,
        tx: &mut WriteTx<'_>,
        file: &BankFileRow,
        line: &ResultLine,
        payout: &PayoutRow,
    ) -> Result<Option<String>> {
        if let Some(channel) = &file.channel_id {
            if *channel != payout.channel_id {
                return Ok(Some(format!(
                    "the line comes from a file of channel {channel}, but the payout was sent \
                     through {}",
                    payout.channel_id
                )));
            }
        }
        // pain.002's OrgnlMsgId is always ours; camt's Refs/MsgId is not reliably so.
        if !file.format.starts_with("pain.002") {
            return Ok(None);
        }
        let (Some(message), Some(batch_id)) = (&line.original_message_id, payout.batch_id) else {
            return Ok(None);
        };
        let batch = tx.batch(batch_id).await?;
        Ok(batch.filter(|b| b.message_id != *message).map(|b| {
            format!(
                "the line answers message {message}, but the payout was sent in {}",
                b.message_id
            )
        }))
    }

    /// EndToEndId first; then the bank's reference; then a unique submitted payout of that amount.
    async fn match_payout(
        &self,
        tx: &mut WriteTx<'_>,
        line: &ResultLine,
    ) -> Result<Option<PayoutRow>> {
        if let Some(id) = &line.end_to_end_id {
            let p = tx.payout_by_no(id).await?;
            if p.is_some() {
                return Ok(p);
            }
        }
        if let Some(reference) = &line.bank_reference {
            let mut found = tx.payouts_by_bank_reference(reference).await?;
            if found.len() == 1 {
                return Ok(found.pop());
            }
        }
        if line.end_to_end_id.is_none() {
            if let Some(amount) = line.amount {
                let mut found = tx
                    .open_payouts_of_amount(amount.currency().code(), amount.amount_minor())
                    .await?;
                if found.len() == 1 {
                    return Ok(found.pop());
                }
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    async fn file_exception(
        &self,
        tx: &mut WriteTx<'_>,
        file: &BankFileRow,
        line: u64,
        kind: ExceptionKind,
        payout_no: Option<String>,
        reason: String,
        detail: serde_json::Value,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        // The same fact raised again (a re-sent report) opens no second exception.
        if let Some(payout_no) = &payout_no {
            let open = tx
                .open_exception_of_fact(payout_no, kind.as_str(), &reason)
                .await?;
            if open.is_some() {
                return Ok(());
            }
        }
        let at = fmt_time(as_of);
        let (merchant, amount, currency) = (
            detail
                .get("merchant")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            detail.get("amount_minor").and_then(|v| v.as_i64()),
            detail
                .get("currency")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        );
        let row = ExceptionRow {
            id: tx.next_id("exception").await?,
            kind: kind.as_str().into(),
            status: "open".into(),
            payout_no,
            merchant_id: merchant,
            amount_minor: amount,
            currency,
            bank_file_id: Some(file.id),
            line: Some(line as i64),
            reason: reason.clone(),
            detail: detail.to_string(),
            created_at: at.clone(),
            resolved_at: None,
            resolved_by: None,
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: format!("exception.{}", kind.as_str()),
            subject: format!("exception:{}", row.id),
            reason: Some(reason),
            detail: json!({"file": file.file_name, "line": line, "payout_no": row.payout_no}),
        })
        .await?;
        Ok(())
    }
}

/// The file's row, as an import starts it, and the audit event that says so.
#[allow(clippy::too_many_arguments)]
async fn new_file_row(
    tx: &mut WriteTx<'_>,
    file_name: &str,
    sha256: &str,
    format: &str,
    size_bytes: u64,
    channel: Option<&crate::Channel>,
    records_total: u64,
    at: &str,
    actor: &Actor,
    holder: &str,
) -> Result<BankFileRow> {
    let row = BankFileRow {
        id: tx.next_id("bank_file").await?,
        sha256: sha256.to_string(),
        file_name: file_name.to_string(),
        channel_id: channel.map(|c| c.id.to_string()),
        format: format.to_string(),
        size_bytes: size_bytes as i64,
        status: "importing".into(),
        records_total: records_total as i64,
        last_line_done: 0,
        applied: 0,
        unchanged: 0,
        exceptions: 0,
        started_at: at.to_string(),
        finished_at: None,
        records_done: 0,
    };
    tx.insert(&row).await?;
    tx.audit(NewAuditEvent {
        at: at.to_string(),
        actor: actor.as_str().into(),
        action: "bank_file.import_started".into(),
        subject: format!("bank_file:{}", row.id),
        reason: None,
        detail: json!({"file": file_name, "sha256": sha256, "format": format, "records": records_total, "size_bytes": size_bytes, "importer": holder}),
    })
    .await?;
    Ok(row)
}

/// Where a file keeps a transaction's status, for an exception that names the field.
fn status_field(format: &str) -> &'static str {
    if format.starts_with("pain.002") {
        "TxSts"
    } else if format.starts_with("camt.") {
        "Ntry/Sts"
    } else {
        "status"
    }
}

/// Who is importing: host, process and start time, so a claim says who holds it and a claim of
/// a process that died on this machine can be recognised as such.
fn importer_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{host}:{}:{nanos:x}", std::process::id())
}

/// True when `holder` ran on this machine and its process no longer exists.
fn holder_is_dead(holder: &str) -> bool {
    let mine = importer_identity();
    let host = |h: &str| h.split(':').next().map(str::to_string);
    let mut parts = holder.split(':');
    let (Some(_), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host(holder) == host(&mine)
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn line_detail(line: &ResultLine) -> serde_json::Value {
    json!({
        "end_to_end_id": line.end_to_end_id, "bank_reference": line.bank_reference,
        "outcome": line.outcome.to_string(), "amount_minor": line.amount.map(|m| m.amount_minor()),
        "currency": line.amount.map(|m| m.currency().code()), "reason_code": line.reason_code,
        "instructed_minor": line.instructed_amount.map(|m| m.amount_minor()),
        "bank_status": line.bank_status,
    })
}

fn hash_file(path: &Path) -> Result<(String, u64, Vec<u8>)> {
    let mut file = File::open(path).map_err(|e| file_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(DETECT_HEAD_LEN);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| file_error(path, e))?;
        if n == 0 {
            break;
        }
        if head.len() < DETECT_HEAD_LEN {
            let take = (DETECT_HEAD_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size, head))
}
