//! The discrepancy desk: a named person settles what a bank paid too much, too little or twice
//! (refund, write-off by two people, top-up now, netting against or adding to the next payouts).

use chrono::{DateTime, Utc};
use disburse_core::correction;
use disburse_core::payout::Funding;
use disburse_core::{
    Currency, Journal, JournalKind, LedgerAccount, MerchantId, Money, OperatorName,
};
use disburse_store::{fmt_time, DiscrepancyRow, NewAuditEvent, PayoutRow, WriteTx};
use serde_json::json;

use crate::discrepancy_tracking::{note, owed_to_us};
use crate::error::{corrupt, refused};
use crate::{write_journal, Actor, Engine, EngineError, Result};

/// How a discrepancy is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Overpaid: the merchant sent the difference back (reference of its transfer).
    RefundReceived {
        reference: String,
    },
    /// Overpaid: not collected; needs a second person's approval.
    ProposeWriteOff,
    ApproveWriteOff,
    /// Underpaid: a new payout of the shortfall on the same order, now.
    TopUpNow {
        channel: Option<String>,
    },
    /// Overpaid: deducted from the merchant's next payouts, automatically, until settled.
    NetAgainstNext,
    /// Underpaid: added to the merchant's next payout.
    AddToNext,
}

impl std::fmt::Display for Resolution {
    /// How a person reads it in a discrepancy's history.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolution::RefundReceived { reference } => {
                write!(f, "refund received (reference {reference})")
            }
            Resolution::ProposeWriteOff => f.write_str("write-off proposed"),
            Resolution::ApproveWriteOff => f.write_str("write-off approved"),
            Resolution::TopUpNow { channel: Some(c) } => write!(f, "top-up now on channel {c}"),
            Resolution::TopUpNow { channel: None } => f.write_str("top-up now"),
            Resolution::NetAgainstNext => f.write_str("net against the next payouts"),
            Resolution::AddToNext => f.write_str("add to the next payout"),
        }
    }
}

impl Engine {
    pub async fn discrepancies(&self, open_only: bool) -> Result<Vec<DiscrepancyRow>> {
        Ok(if open_only {
            self.db.unsettled_discrepancies().await?
        } else {
            self.db.discrepancies().await?
        })
    }

    /// Settles (or starts settling) a discrepancy, by a named operator with a reason.
    pub async fn resolve_discrepancy(
        &self,
        id: i64,
        resolution: &Resolution,
        reason: &str,
        as_of: DateTime<Utc>,
        who: &OperatorName,
    ) -> Result<DiscrepancyRow> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid("reason", "say why"));
        }
        let mut tx = self.db.write().await?;
        let role = Self::operator_role(&mut tx, who).await?;
        correction::check_may_propose(who.as_str(), role, "resolve discrepancies")
            .map_err(refused)?;
        let mut d: DiscrepancyRow =
            tx.discrepancy(id)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "discrepancy",
                    id: id.to_string(),
                })?;
        if d.status == "settled" {
            return Err(refused(format!(
                "discrepancy {id} is already settled ({})",
                d.resolution.as_deref().unwrap_or("-")
            )));
        }
        let merchant = MerchantId::parse(&d.merchant_id).map_err(corrupt)?;
        let currency = Currency::parse(&d.currency).map_err(corrupt)?;
        let amount = Money::from_minor(d.amount_minor, currency);
        let owed_to_us = owed_to_us(&d.direction);
        let at = fmt_time(as_of);
        let origin: PayoutRow = tx
            .payout_by_no(&d.origin_payout_no)
            .await?
            .ok_or_else(|| corrupt("discrepancy without its payout"))?;
        let receivable = LedgerAccount::MerchantReceivable(merchant.clone());
        let mut journal = None;
        let mut topup = None;
        match resolution {
            Resolution::RefundReceived { reference } => {
                if !owed_to_us {
                    return Err(refused(format!(
                        "discrepancy {id} is {}: we owe the merchant, nothing to refund",
                        d.direction
                    )));
                }
                // The merchant sent the difference back to our account at the bank that paid it.
                let bank = LedgerAccount::ChannelBank(
                    disburse_core::ChannelId::parse(&origin.channel_id).map_err(corrupt)?,
                );
                journal = Some(
                    Journal::transfer(JournalKind::DiscrepancySettled, bank, receivable, amount)
                        .map_err(refused)?,
                );
                d.status = "settled".into();
                d.resolution = Some(format!("refund received ({reference})"));
                d.settled_at = Some(at.clone());
            }
            Resolution::ProposeWriteOff => {
                if !owed_to_us {
                    return Err(refused(format!(
                        "discrepancy {id} is {}: only what the merchant owes can be written off",
                        d.direction
                    )));
                }
                d.status = "write_off_proposed".into();
                d.write_off_proposed_by = Some(who.to_string());
            }
            Resolution::ApproveWriteOff => {
                let proposer = d.write_off_proposed_by.clone().ok_or_else(|| {
                    refused(format!("no write-off of discrepancy {id} was proposed"))
                })?;
                correction::check_may_decide(who.as_str(), role, &proposer, "approve write-offs")
                    .map_err(refused)?;
                journal = Some(
                    Journal::transfer(
                        JournalKind::DiscrepancySettled,
                        LedgerAccount::PlatformWriteOffs(currency),
                        receivable,
                        amount,
                    )
                    .map_err(refused)?,
                );
                d.status = "settled".into();
                d.resolution = Some(format!(
                    "written off (proposed by {proposer}, approved by {who})"
                ));
                d.settled_at = Some(at.clone());
            }
            Resolution::NetAgainstNext => {
                if !owed_to_us {
                    return Err(refused(format!("discrepancy {id} is {}: we owe the merchant; add it to the next payout instead", d.direction)));
                }
                d.status = "netting".into();
            }
            Resolution::AddToNext => {
                if owed_to_us {
                    return Err(refused(format!(
                        "discrepancy {id} is {}: the merchant owes us; net it instead",
                        d.direction
                    )));
                }
                if d.topup_payout_no.is_some() {
                    return Err(refused(format!(
                        "discrepancy {id} already has a top-up payout"
                    )));
                }
                d.status = "adding".into();
            }
            Resolution::TopUpNow { channel } => {
                if owed_to_us {
                    return Err(refused(format!(
                        "discrepancy {id} is {}: the merchant owes us, there is nothing to top up",
                        d.direction
                    )));
                }
                if d.topup_payout_no.is_some() {
                    return Err(refused(format!(
                        "discrepancy {id} already has a top-up payout"
                    )));
                }
                let p = self
                    .create_topup(&mut tx, &origin, amount, channel.as_deref(), as_of, who)
                    .await?;
                d.status = "topping_up".into();
                d.topup_payout_no = Some(p.payout_no.clone());
                topup = Some(p.payout_no);
            }
        }
        let mut journal_id = None;
        if let Some(j) = &journal {
            journal_id = Some(
                write_journal(&mut tx, j, Some(&merchant), Some(d.order_id), None, &at).await?,
            );
        }
        note(&mut d, &at, format!("{resolution} by {who}: {reason}"));
        tx.update(&d).await?;
        if d.status == "settled" {
            tx.insert_outbox(&d.merchant_id, "discrepancy.resolved", &json!({"discrepancy": id, "resolution": d.resolution, "amount_minor": d.amount_minor, "currency": d.currency}), &at).await?;
        }
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(who).as_str().into(),
            action: format!(
                "discrepancy.{}",
                match resolution {
                    Resolution::RefundReceived { .. } => "refund_received",
                    Resolution::ProposeWriteOff => "write_off_proposed",
                    Resolution::ApproveWriteOff => "written_off",
                    Resolution::TopUpNow { .. } => "top_up_created",
                    Resolution::NetAgainstNext => "netting_against_next_payouts",
                    Resolution::AddToNext => "adding_to_next_payout",
                }
            ),
            subject: format!("discrepancy:{id}"),
            reason: Some(reason.to_string()),
            detail: json!({"status": d.status, "journal_id": journal_id, "topup_payout_no": topup}),
        })
        .await?;
        tx.commit().await?;
        Ok(d)
    }

    /// A payout of what a bank underpaid, on the same order, drawn from the shortfall.
    async fn create_topup(
        &self,
        tx: &mut WriteTx<'_>,
        origin: &PayoutRow,
        amount: Money,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        who: &OperatorName,
    ) -> Result<PayoutRow> {
        let live: Vec<PayoutRow> = tx.live_payouts_of_order(origin.order_id).await?;
        if let Some(l) = live.first() {
            return Err(refused(format!(
                "order already has a live payout {} ({})",
                l.payout_no, l.state
            )));
        }
        let channel = match channel {
            Some(c) => self.config.channel(c)?,
            None => self.config.channel(&origin.channel_id)?,
        };
        let account = tx
            .current_bank_account(&origin.merchant_id)
            .await?
            .ok_or_else(|| corrupt("merchant without account"))?;
        let at = fmt_time(as_of);
        let (row, journal_ids) = crate::payouts::insert_new_payout(
            tx,
            origin.order_id,
            &origin.merchant_id,
            channel,
            amount,
            account.id,
            Funding::Shortfall,
            as_of,
        )
        .await?;
        tx.audit(NewAuditEvent {
            at: at.clone(),
            actor: Actor::operator(who).as_str().into(),
            action: "payout.top_up_created".into(),
            subject: format!("payout:{}", row.payout_no),
            reason: Some(format!("top-up of what {} underpaid", origin.payout_no)),
            detail: json!({"origin": origin.payout_no, "amount_minor": row.amount_minor, "currency": row.currency, "channel": row.channel_id, "state": row.state, "journals": journal_ids}),
        })
        .await?;
        Ok(row)
    }
}
