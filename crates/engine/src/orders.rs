//! Withdrawal orders: accept (idempotently), cancel.

use chrono::{DateTime, Utc};
use disburse_core::order::{self};
use disburse_core::{MerchantId, Money, OrderNo, OrderState, PayoutState};
use disburse_store::{fmt_time, BankAccountRow, NewAuditEvent, OrderRow, PayoutRow, WriteTx};
use serde_json::json;

use crate::error::refused;
use crate::{write_journal, Actor, Engine, EngineError, Result};

/// An order as people name it: its number, and the merchant when two merchants use one number.
#[derive(Debug, Clone)]
pub struct OrderRef {
    pub order_no: OrderNo,
    pub merchant: Option<MerchantId>,
}

#[derive(Debug, Clone)]
pub struct WithdrawRequest {
    pub merchant: MerchantId,
    pub order_no: OrderNo,
    pub amount: Money,
}

#[derive(Debug, Clone)]
pub enum WithdrawOutcome {
    Created(OrderRow),
    /// The same request again: the order it created the first time.
    Existing(OrderRow),
}

impl WithdrawOutcome {
    pub fn order(&self) -> &OrderRow {
        match self {
            WithdrawOutcome::Created(o) | WithdrawOutcome::Existing(o) => o,
        }
    }
}

pub(crate) fn order_state(row: &OrderRow) -> Result<OrderState> {
    OrderState::parse(&row.state)
        .map_err(|e| EngineError::Store(disburse_store::StoreError::Corrupt(e)))
}

pub(crate) fn payout_state(row: &PayoutRow) -> Result<PayoutState> {
    PayoutState::parse(&row.state)
        .map_err(|e| EngineError::Store(disburse_store::StoreError::Corrupt(e)))
}

pub(crate) fn order_subject(row: &OrderRow) -> String {
    format!("order:{}/{}", row.merchant_id, row.order_no)
}

impl Engine {
    /// Finds an order inside a write transaction.
    pub(crate) async fn load_order(tx: &mut WriteTx<'_>, r: &OrderRef) -> Result<OrderRow> {
        let mut found: Vec<OrderRow> = tx
            .orders_by_no(r.order_no.as_str(), r.merchant.as_ref().map(|m| m.as_str()))
            .await?;
        match found.len() {
            0 => Err(EngineError::NotFound {
                what: "order",
                id: r.order_no.to_string(),
            }),
            1 => Ok(found.remove(0)),
            _ => Err(EngineError::invalid(
                "merchant",
                format!(
                    "order number {} is used by several merchants; say which with --merchant",
                    r.order_no
                ),
            )),
        }
    }

    /// Accepts a withdrawal: reserves the amount (available → withdrawing). The same merchant and
    /// order number again returns the same order; with another amount or account it is refused.
    pub async fn withdraw(
        &self,
        req: &WithdrawRequest,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<WithdrawOutcome> {
        if !req.amount.is_positive() {
            return Err(EngineError::invalid(
                "amount",
                format!("must be positive, got {}", req.amount),
            ));
        }
        let mut tx = self.db.write().await?;
        Self::load_merchant(&mut tx, &req.merchant).await?;
        let account: BankAccountRow = tx
            .current_bank_account(req.merchant.as_str())
            .await?
            .ok_or_else(|| {
                EngineError::Refused(format!(
                    "merchant {} has no bank account; set one first",
                    req.merchant
                ))
            })?;
        let existing: Option<OrderRow> = tx
            .order_of_merchant(req.merchant.as_str(), req.order_no.as_str())
            .await?;
        if let Some(existing) = existing {
            let existing_last4 = tx
                .bank_account(existing.bank_account_id)
                .await?
                .map(|a| a.last4)
                .unwrap_or_default();
            tx.rollback().await?;
            let same = existing.amount_minor == req.amount.amount_minor()
                && existing.currency == req.amount.currency().code()
                && existing.bank_account_id == account.id;
            if same {
                return Ok(WithdrawOutcome::Existing(existing));
            }
            return Err(EngineError::Refused(format!(
                "order number {} of merchant {} already exists for {} {} to account ****{}; this request is for {} to account ****{}",
                req.order_no,
                req.merchant,
                Money::from_minor(existing.amount_minor, req.amount.currency()).to_decimal_string(),
                existing.currency,
                existing_last4,
                req.amount,
                account.last4
            )));
        }
        let available_account =
            disburse_core::LedgerAccount::MerchantAvailable(req.merchant.clone()).to_string();
        // Liabilities carry credit (negative) balances: what we owe is the negated sum.
        let available = -tx
            .balance(&available_account, req.amount.currency().code())
            .await?;
        let journal = order::accept(
            &req.merchant,
            req.amount,
            Money::from_minor(available, req.amount.currency()),
        )
        .map_err(refused)?;
        let at = fmt_time(as_of);
        let row = OrderRow {
            id: tx.next_id("order").await?,
            merchant_id: req.merchant.to_string(),
            order_no: req.order_no.to_string(),
            currency: req.amount.currency().code().to_string(),
            amount_minor: req.amount.amount_minor(),
            bank_account_id: account.id,
            state: OrderState::Open.as_str().to_string(),
            created_at: at.clone(),
            updated_at: at.clone(),
            adjustment_minor: 0,
        };
        tx.insert(&row).await?;
        write_journal(
            &mut tx,
            &journal,
            Some(&req.merchant),
            Some(row.id),
            None,
            &at,
        )
        .await?;
        let message = json!({
            "order_no": row.order_no, "state": row.state,
            "amount_minor": row.amount_minor, "currency": row.currency,
        });
        tx.insert_outbox(&row.merchant_id, "order.accepted", &message, &at)
            .await?;
        // Taken while the bank account is flagged: it cannot be paid until the merchant fixes it,
        // which the merchant hears now, once; the fix pays it (see `auto_retry_waiting`).
        let flagged: Option<disburse_store::MerchantRow> =
            tx.merchant_with_flagged_account(&row.merchant_id).await?;
        if flagged.is_some() {
            let mut waiting = message.clone();
            waiting["account_update_needed"] = json!(true);
            waiting["who_must_act"] = json!("merchant");
            tx.insert_outbox(&row.merchant_id, "order.action_required", &waiting, &at)
                .await?;
        }
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "order.accepted".into(),
            subject: order_subject(&row),
            reason: None,
            detail: json!({"after": message, "bank_account": {"version": account.version, "last4": account.last4}}),
        })
        .await?;
        tx.commit().await?;
        Ok(WithdrawOutcome::Created(row))
    }

    /// Cancels an order: reserved money back to available. A pending payout that never reached
    /// a bank is cancelled with it; money that may be at a bank blocks cancelling.
    pub async fn cancel_order(
        &self,
        r: &OrderRef,
        reason: &str,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<OrderRow> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid(
                "reason",
                "say why the order is cancelled",
            ));
        }
        let mut tx = self.db.write().await?;
        let mut row = Self::load_order(&mut tx, r).await?;
        let at = fmt_time(as_of);
        let before = Self::cancel_order_in(&mut tx, &mut row, reason, &at).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "order.cancelled".into(),
            subject: order_subject(&row),
            reason: Some(reason.to_string()),
            detail: json!({"before": {"state": before.as_str()}, "after": {"state": row.state}}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Cancels an order inside the caller's transaction (the caller writes the audit event):
    /// a pending payout is cancelled with it, the reservation goes back to available. Returns
    /// the order's state before.
    pub(crate) async fn cancel_order_in(
        tx: &mut WriteTx<'_>,
        row: &mut OrderRow,
        reason: &str,
        at: &str,
    ) -> Result<OrderState> {
        let payouts: Vec<PayoutRow> = tx.payouts_of_order(row.id).await?;
        let states = payouts
            .iter()
            .map(payout_state)
            .collect::<Result<Vec<_>>>()?;
        let merchant =
            MerchantId::parse(&row.merchant_id).map_err(|e| EngineError::invalid("merchant", e))?;
        let currency = disburse_core::Currency::parse(&row.currency)
            .map_err(|e| EngineError::invalid("currency", e))?;
        let order_no = disburse_core::OrderNo::parse(&row.order_no)
            .map_err(|e| EngineError::invalid("order_no", e))?;
        let before = order_state(row)?;
        let journal = order::cancel(
            &order_no,
            &merchant,
            before,
            // What is still reserved: the amount, less what was netted, plus what was added.
            Money::from_minor(row.amount_minor + row.adjustment_minor, currency),
            &states,
        )
        .map_err(refused)?;
        for mut p in payouts.into_iter().filter(|p| p.state == "pending") {
            p.state = PayoutState::Cancelled.as_str().into();
            p.updated_at = at.to_string();
            tx.update(&p).await?;
        }
        row.state = OrderState::Cancelled.as_str().into();
        row.updated_at = at.to_string();
        tx.update(row).await?;
        write_journal(tx, &journal, Some(&merchant), Some(row.id), None, at).await?;
        tx.insert_outbox(
            &row.merchant_id,
            "order.cancelled",
            &json!({"order_no": row.order_no, "state": row.state, "reason": reason}),
            at,
        )
        .await?;
        Ok(before)
    }
}
