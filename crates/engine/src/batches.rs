//! Outgoing batches: pending payouts of a file or paper channel become one file, recorded with its
//! hash and control sum, and the payouts become submitted, in one transaction.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use disburse_core::account::AccountNumber;
use disburse_core::crypto::decrypt_account;
use disburse_core::payout::{decide, Decision, PayoutEvent};
use disburse_core::{Currency, Money};
use disburse_formats::{CreditTransfer, CreditorAccount, CsvProfile, Pain001Header, SheetHeader};
use disburse_store::{fmt_time, BankAccountRow, BatchRow, Bind, NewAuditEvent, PayoutRow};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{Channel, ChannelKind};
use crate::payouts::{corrupt, facts, ResultSource};
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
        }
    }
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
        if channel.kind.sends_immediately() {
            return Err(EngineError::Refused(format!(
                "channel {} is an API channel: its payouts are sent one by one when created",
                channel.id
            )));
        }
        let mut tx = self.db.write().await?;
        let first: Option<PayoutRow> = tx
            .fetch_optional(
                "WHERE channel_id = $1 AND state = 'pending' ORDER BY id LIMIT 1",
                &[Bind::Text(channel_id.into())],
            )
            .await?;
        let Some(first) = first else {
            tx.rollback().await?;
            return Ok(None);
        };
        let payouts: Vec<PayoutRow> = tx
            .fetch_all(
                &format!(
                    "WHERE channel_id = $1 AND state = 'pending' AND currency = $2 ORDER BY id LIMIT {}",
                    channel.batch_size_max
                ),
                &[Bind::Text(channel_id.into()), Bind::Text(first.currency.clone())],
            )
            .await?;
        let currency = Currency::parse(&first.currency).map_err(corrupt)?;
        let mut transfers = Vec::with_capacity(payouts.len());
        let mut accounts = std::collections::HashMap::<i64, BankAccountRow>::new();
        for p in &payouts {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                accounts.entry(p.bank_account_id)
            {
                let a: BankAccountRow = tx
                    .fetch_optional("WHERE id = $1", &[Bind::Int(p.bank_account_id)])
                    .await?
                    .ok_or_else(|| {
                        corrupt(format!("payout {} has no bank account", p.payout_no))
                    })?;
                slot.insert(a);
            }
            let a = &accounts[&p.bank_account_id];
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

    fn credit_transfer(
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

    /// A batch's file exactly as it was first written.
    pub async fn batch_file(&self, batch_id: i64) -> Result<(BatchSummary, Vec<u8>)> {
        let row: BatchRow = self
            .db
            .fetch_optional("WHERE id = $1", &[Bind::Int(batch_id)])
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "batch",
                id: batch_id.to_string(),
            })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&row.content_b64)
            .map_err(corrupt)?;
        Ok((BatchSummary::from(&row), bytes))
    }

    pub async fn batches(&self) -> Result<Vec<BatchSummary>> {
        let rows: Vec<BatchRow> = self.db.fetch_all("ORDER BY id", &[]).await?;
        Ok(rows.iter().map(BatchSummary::from).collect())
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
        ChannelKind::Sandbox => Err(EngineError::Refused(
            "API channels have no batch files".into(),
        )),
    }
}
