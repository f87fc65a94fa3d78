//! Outgoing batches: pending payouts of a file or paper channel become one file, recorded with its
//! hash and control sum, and the payouts become submitted, in one transaction.
//!
//! The file is written after that commit, atomically (temporary name in the same directory,
//! fsync, rename, fsync of the directory), and only then recorded as written
//! (`batch_file_writes`). So a name in the outbox only ever holds a whole file, and a batch whose
//! file never reached the disk (a crash between commit and write, a full disk) is known: `batch
//! list` and the exceptions queue show it, and `batch export` or the batch worker writes it again
//! from the stored bytes, byte for byte.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use disburse_core::account::AccountNumber;
use disburse_core::crypto::decrypt_account;
use disburse_core::payout::{decide, Decision, PayoutEvent};
use disburse_core::{Currency, Money};
use disburse_formats::{CreditTransfer, CreditorAccount, CsvProfile, Pain001Header, SheetHeader};
use disburse_store::{
    fmt_time, BankAccountRow, BatchFileWriteRow, BatchRow, NewAuditEvent, PayoutRow,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{Channel, ChannelKind};
use crate::error::corrupt;
use crate::payouts::{facts, ResultSource};
use crate::{Actor, Engine, EngineError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub batch_id: i64,
    pub channel: String,
    pub message_id: String,
    pub file_name: String,
    pub format: String,
    pub sha256: String,
    pub payout_count: i64,
    pub control_sum_minor: i64,
    pub currency: String,
    pub created_at: String,
    /// Where and when the file reached the disk; `None`: committed, file never written.
    pub file_written: Option<FileWritten>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileWritten {
    /// Empty for batches made before migration 0008 (written, place not recorded).
    pub path: String,
    pub written_at: String,
}

impl From<&BatchRow> for BatchSummary {
    fn from(b: &BatchRow) -> Self {
        BatchSummary {
            batch_id: b.id,
            channel: b.channel_id.clone(),
            message_id: b.message_id.clone(),
            file_name: b.file_name.clone(),
            format: b.format.clone(),
            sha256: b.sha256.clone(),
            payout_count: b.payout_count,
            control_sum_minor: b.control_sum_minor,
            currency: b.currency.clone(),
            created_at: b.created_at.clone(),
            file_written: None,
        }
    }
}

/// Writes `bytes` as `dir/name` so that `name` never holds part of a file: the bytes go to a
/// temporary name in the same directory (hidden, ending `.tmp`), are flushed to the disk, and are
/// renamed into place; the directory is flushed so the rename survives a power cut. On any
/// failure the temporary file is removed and nothing is left under `name`.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    write_atomically_with(dir, name, bytes, |file, bytes| file.write_all(bytes))
}

/// [`write_atomically`] with the write itself given: the seam tests fail it with.
fn write_atomically_with(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    write: impl FnOnce(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let target = dir.join(name);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = dir.join(format!(".{name}.{}-{nanos}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        write(&mut file, bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &target)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        std::fs::remove_file(&temp).ok();
    }
    written.map(|()| target)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The two CSV profiles shipped with Disburse; a channel may also name a profile file.
pub fn csv_profile(name: &str) -> Result<CsvProfile> {
    let text = match name {
        "englishbank" => include_str!("../../formats/profiles/englishbank.toml").to_string(),
        "chinabank" => include_str!("../../formats/profiles/chinabank.toml").to_string(),
        path => std::fs::read_to_string(path).map_err(|e| {
            EngineError::Config(format!(
                "csv profile {path:?}: {e} (built in: englishbank, chinabank)"
            ))
        })?,
    };
    CsvProfile::from_toml(&text)
        .map_err(|e| EngineError::Config(format!("csv profile {name}: {e}")))
}

impl Engine {
    /// Takes up to `batch_size_max` pending payouts of the channel (oldest first, one currency per
    /// file) and makes them one file. `None` when nothing is pending.
    pub async fn create_batch(
        &self,
        channel_id: &str,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Option<(BatchSummary, Vec<u8>)>> {
        let channel = self.config.channel(channel_id)?;
        if !channel.kind.makes_files() {
            return Err(EngineError::Refused(format!(
                "channel {} is an API channel: its payouts are sent one by one when created",
                channel.id
            )));
        }
        let mut tx = self.db.write().await?;
        let first: Option<PayoutRow> = tx.first_pending_payout_of_channel(channel_id).await?;
        let Some(first) = first else {
            tx.rollback().await?;
            return Ok(None);
        };
        let payouts: Vec<PayoutRow> = tx
            .pending_payouts_of_channel(channel_id, &first.currency, channel.batch_size_max)
            .await?;
        let currency = Currency::parse(&first.currency).map_err(corrupt)?;
        let mut transfers = Vec::with_capacity(payouts.len());
        // The batch's accounts in one set read, not one per payout.
        let mut account_ids: Vec<i64> = payouts.iter().map(|p| p.bank_account_id).collect();
        account_ids.sort_unstable();
        account_ids.dedup();
        let accounts: std::collections::HashMap<i64, BankAccountRow> = tx
            .bank_accounts_by_ids(&account_ids)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        for p in &payouts {
            let a = accounts
                .get(&p.bank_account_id)
                .ok_or_else(|| corrupt(format!("payout {} has no bank account", p.payout_no)))?;
            transfers.push(self.credit_transfer(p, a, currency)?);
        }
        let batch_id = tx.next_id("batch").await?;
        let message_id = format!("DSB-{}-{batch_id:08}", channel.id)
            .chars()
            .take(35)
            .collect::<String>();
        let (format, extension, bytes) =
            render(channel, &message_id, batch_id, currency, &transfers, as_of)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let control_sum: i64 = payouts.iter().map(|p| p.amount_minor).sum();
        let at = fmt_time(as_of);
        let batch = BatchRow {
            id: batch_id,
            channel_id: channel.id.to_string(),
            currency: currency.code().into(),
            file_name: format!("{message_id}.{extension}"),
            message_id: message_id.clone(),
            format: format.into(),
            sha256,
            payout_count: payouts.len() as i64,
            control_sum_minor: control_sum,
            content_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
            created_at: at.clone(),
        };
        tx.insert(&batch).await?;
        tx.audit(NewAuditEvent {
            at: at.clone(),
            actor: actor.as_str().into(),
            action: "batch.created".into(),
            subject: format!("batch:{batch_id}"),
            reason: None,
            detail: json!({"channel": batch.channel_id, "file": batch.file_name, "sha256": batch.sha256,
                "count": batch.payout_count, "control_sum_minor": control_sum, "currency": batch.currency}),
        })
        .await?;
        let source = ResultSource::Batch {
            batch_id,
            file: batch.file_name.clone(),
        };
        for mut p in payouts {
            let Decision::Changed(t) =
                decide(&facts(&p)?, &PayoutEvent::Submit, &channel.policy, as_of)
                    .map_err(|e| EngineError::Refused(e.to_string()))?
            else {
                return Err(corrupt("submitting a pending payout changed nothing"));
            };
            p.batch_id = Some(batch_id);
            self.store_transition(&mut tx, p, &t, None, &source, as_of, actor)
                .await?;
        }
        tx.commit().await?;
        Ok(Some((BatchSummary::from(&batch), bytes)))
    }

    pub(crate) fn credit_transfer(
        &self,
        p: &PayoutRow,
        a: &BankAccountRow,
        currency: Currency,
    ) -> Result<CreditTransfer> {
        let plain = decrypt_account(self.key(), &a.sealed_number).map_err(|e| {
            EngineError::Key(format!(
                "cannot open bank account {} of {}: {e}",
                a.id, a.merchant_id
            ))
        })?;
        let number = AccountNumber::parse_plain(&plain).map_err(corrupt)?;
        let creditor_account = match &number {
            AccountNumber::Iban(iban) => CreditorAccount::Iban(iban.as_str().to_string()),
            AccountNumber::Local(local) => CreditorAccount::Other {
                id: local.number().to_string(),
                bank_code: local.bank_code().to_string(),
            },
        };
        Ok(CreditTransfer {
            end_to_end_id: p.payout_no.clone(),
            amount: Money::from_minor(p.amount_minor, currency),
            creditor_name: a.holder_name.clone(),
            creditor_account,
            creditor_bic: a.bic.clone(),
            creditor_country: a.country.clone(),
            remittance_info: format!("Payout {} order {}", p.payout_no, p.order_id),
        })
    }

    /// [`Engine::create_batch`], then its file written (atomically) to `dir`, or the channel's
    /// outbox directory, and recorded as written. If the write fails the batch stays committed
    /// and unwritten (the error says so): export it again once the disk is fixed.
    pub async fn create_batch_file(
        &self,
        channel_id: &str,
        dir: Option<&Path>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Option<(BatchSummary, PathBuf)>> {
        let Some((batch, bytes)) = self.create_batch(channel_id, as_of, actor).await? else {
            return Ok(None);
        };
        let path = self
            .write_and_record(&batch, &bytes, dir, as_of, actor)
            .await?;
        let batch = self.batch_file(batch.batch_id).await?.0;
        Ok(Some((batch, path)))
    }

    /// Writes a batch's file again from its stored bytes (checked against its SHA-256), to `dir`
    /// or its channel's outbox directory, and records it as written.
    pub async fn write_batch_file(
        &self,
        batch_id: i64,
        dir: Option<&Path>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<(BatchSummary, PathBuf)> {
        let (batch, bytes) = self.batch_file(batch_id).await?;
        let path = self
            .write_and_record(&batch, &bytes, dir, as_of, actor)
            .await?;
        Ok((self.batch_file(batch_id).await?.0, path))
    }

    /// Batches committed whose file never reached the disk, oldest first. Read at every look at
    /// the exceptions queue (and metrics scrape): only those rows are loaded.
    pub async fn unwritten_batches(&self) -> Result<Vec<BatchSummary>> {
        let rows: Vec<BatchRow> = self.db.unwritten_batches().await?;
        Ok(rows.iter().map(BatchSummary::from).collect())
    }

    /// Writes every unwritten batch to its channel's outbox directory. One failure does not stop
    /// the others; each outcome is returned.
    pub async fn export_unwritten_batches(
        &self,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Vec<(BatchSummary, Result<PathBuf>)>> {
        let mut out = Vec::new();
        for batch in self.unwritten_batches().await? {
            let written = self
                .write_batch_file(batch.batch_id, None, as_of, actor)
                .await
                .map(|(_, path)| path);
            out.push((batch, written));
        }
        Ok(out)
    }

    async fn write_and_record(
        &self,
        batch: &BatchSummary,
        bytes: &[u8],
        dir: Option<&Path>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<PathBuf> {
        if hex::encode(Sha256::digest(bytes)) != batch.sha256 {
            return Err(corrupt(format!(
                "batch {}: stored file does not match its SHA-256",
                batch.batch_id
            )));
        }
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => self.config.channel(&batch.channel)?.outbox_dir.clone(),
        };
        let path = write_atomically(&dir, &batch.file_name, bytes).map_err(|e| {
            EngineError::Refused(format!(
                "batch {} is committed but its file {} was not written ({e}); nothing partial was \
                 left under that name: run `disburse batch export {}` once the cause is fixed",
                batch.batch_id,
                dir.join(&batch.file_name).display(),
                batch.batch_id
            ))
        })?;
        let at = fmt_time(as_of);
        let row = BatchFileWriteRow {
            batch_id: batch.batch_id,
            path: path.display().to_string(),
            written_at: at.clone(),
        };
        let mut tx = self.db.write().await?;
        let before: Option<BatchFileWriteRow> = tx.batch_file_write(batch.batch_id).await?;
        match &before {
            Some(_) => tx.update(&row).await?,
            None => tx.insert(&row).await?,
        }
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "batch.file_written".into(),
            subject: format!("batch:{}", batch.batch_id),
            reason: None,
            detail: json!({"path": row.path, "sha256": batch.sha256,
                "before": before.map(|b| b.path)}),
        })
        .await?;
        tx.commit().await?;
        Ok(path)
    }

    /// A batch's file exactly as it was first written.
    pub async fn batch_file(&self, batch_id: i64) -> Result<(BatchSummary, Vec<u8>)> {
        let row: BatchRow =
            self.db
                .batch(batch_id)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "batch",
                    id: batch_id.to_string(),
                })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&row.content_b64)
            .map_err(corrupt)?;
        let written: Option<BatchFileWriteRow> = self.db.batch_file_write(batch_id).await?;
        let mut summary = BatchSummary::from(&row);
        summary.file_written = written.map(|w| FileWritten {
            path: w.path,
            written_at: w.written_at,
        });
        Ok((summary, bytes))
    }

    pub async fn batches(&self) -> Result<Vec<BatchSummary>> {
        let rows: Vec<BatchRow> = self.db.batches().await?;
        let mut written: std::collections::HashMap<i64, BatchFileWriteRow> = self
            .db
            .batch_file_writes()
            .await?
            .into_iter()
            .map(|w| (w.batch_id, w))
            .collect();
        Ok(rows
            .iter()
            .map(|row| {
                let mut summary = BatchSummary::from(row);
                summary.file_written = written.remove(&row.id).map(|w| FileWritten {
                    path: w.path,
                    written_at: w.written_at,
                });
                summary
            })
            .collect())
    }
}

fn render(
    channel: &Channel,
    message_id: &str,
    batch_id: i64,
    currency: Currency,
    transfers: &[CreditTransfer],
    as_of: DateTime<Utc>,
) -> Result<(&'static str, &'static str, Vec<u8>)> {
    let mut bytes = Vec::new();
    let bad = |e: disburse_formats::WriteError| {
        EngineError::Refused(format!("batch file for channel {}: {e}", channel.id))
    };
    match channel.kind {
        ChannelKind::Iso20022 => {
            let header = Pain001Header {
                message_id: message_id.to_string(),
                created_at: as_of,
                requested_execution_date: as_of.date_naive(),
                debtor_name: channel.debtor.name.clone(),
                debtor_iban: channel.debtor.iban.clone(),
                debtor_bic: channel.debtor.bic.clone(),
                currency,
            };
            disburse_formats::write_pain001(&header, transfers, &mut bytes).map_err(bad)?;
            Ok(("pain.001.001.09", "xml", bytes))
        }
        ChannelKind::Csv => {
            let name = channel.csv_profile.as_deref().ok_or_else(|| {
                EngineError::Config(format!("channel {} has no csv_profile", channel.id))
            })?;
            let profile = csv_profile(name)?;
            disburse_formats::write_csv_instructions(&profile, transfers, &mut bytes)
                .map_err(bad)?;
            Ok(("csv", "csv", bytes))
        }
        ChannelKind::Manual => {
            let header = SheetHeader {
                batch_id: format!("{batch_id} ({message_id})"),
                channel_name: channel.id.to_string(),
                bank_name: channel.name.clone(),
                created_at: as_of,
                currency,
            };
            disburse_formats::write_instruction_sheet(&header, transfers, &mut bytes)
                .map_err(bad)?;
            Ok(("instruction-sheet", "html", bytes))
        }
        ChannelKind::Sandbox | ChannelKind::HttpApi => Err(EngineError::Refused(
            "API channels have no batch files".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_nothing_under_the_name_and_no_temporary_file() {
        let dir = disburse_store::testing::temp_dir();
        // The disk fills up half way through (ENOSPC after some bytes were written).
        let err = write_atomically_with(&dir, "B1.xml", b"<Document>whole</Document>", |f, b| {
            f.write_all(&b[..10])?;
            Err(std::io::Error::other("No space left on device"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("No space"), "{err}");
        assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
        // An earlier whole file under the name survives a failed rewrite untouched.
        write_atomically(&dir, "B1.xml", b"first").unwrap();
        write_atomically_with(&dir, "B1.xml", b"second", |f, b| {
            f.write_all(&b[..3])?;
            Err(std::io::Error::other("No space left on device"))
        })
        .unwrap_err();
        assert_eq!(names_in(&dir), ["B1.xml"]);
        assert_eq!(std::fs::read(dir.join("B1.xml")).unwrap(), b"first");
        // A successful write replaces it whole.
        let path = write_atomically(&dir, "B1.xml", b"second").unwrap();
        assert_eq!(path, dir.join("B1.xml"));
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names_in(&dir), ["B1.xml"]);
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(write_atomically(&dir, bad, b"x").is_err(), "{bad:?}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
