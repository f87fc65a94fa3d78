//! Payouts: create an attempt for an order, apply what a bank said, sweep deadlines.

use chrono::{DateTime, NaiveDate, Utc};
use disburse_core::order;
use disburse_core::payout::{
    decide, Decision, Funding, PayoutEvent, PayoutFacts, Refusal, Transition,
};
use disburse_core::{
    BankResult, ChannelId, Currency, MerchantId, Money, OrderState, PayoutNo, PayoutState,
};
use disburse_store::{
    fmt_date, fmt_time, parse_time, BankAccountRow, NewAuditEvent, OrderRow, PayoutRow, WriteTx,
};
use serde::Serialize;
use serde_json::json;

use crate::error::refused;
use crate::orders::{order_state, order_subject, payout_state};
use crate::{write_journal, Actor, Engine, EngineError, OrderRef, Result};
use disburse_formats::reason_codes::WhoMustAct;

/// What creating a payout for an order did.
#[derive(Debug, Clone)]
pub enum PayoutStart {
    /// A new payout (attempt) of the order.
    Sent(Box<PayoutRow>),
    /// What the merchant owed us covered the whole order: settled by netting, nothing to send.
    SettledByNetting { order_no: String, netted_minor: i64 },
}

impl PayoutStart {
    pub fn into_payout(self) -> Option<PayoutRow> {
        match self {
            PayoutStart::Sent(p) => Some(*p),
            PayoutStart::SettledByNetting { .. } => None,
        }
    }
}

/// Where a bank result came from: a file and line, or a person with evidence.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultSource {
    File {
        name: String,
        sha256: String,
        line: u64,
    },
    Manual {
        evidence: String,
    },
    Api,
    /// Sent in a batch file.
    Batch {
        batch_id: i64,
        file: String,
    },
    /// The deadline sweeper: time passed with no word from the bank.
    Sweep,
}

#[derive(Debug, Clone)]
pub enum ApplyOutcome {
    Applied(Box<PayoutRow>),
    Unchanged(&'static str),
}

/// Submitted payouts a sweep decides per transaction.
pub(crate) const SWEEP_PAGE: usize = 500;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Past their channel's deadline: escalated to a person, money still in transit.
    pub expired: Vec<String>,
    /// Silent on a failures-only channel long enough: counted as paid.
    pub presumed_succeeded: Vec<String>,
    pub still_waiting: usize,
}

// Where `api_channel.rs` and `statements.rs` find it (they move with the statements work).
pub(crate) use crate::error::corrupt;

pub(crate) fn facts(row: &PayoutRow) -> Result<PayoutFacts> {
    let currency = Currency::parse(&row.currency).map_err(corrupt)?;
    Ok(PayoutFacts {
        payout_no: PayoutNo::parse(&row.payout_no).map_err(corrupt)?,
        merchant: MerchantId::parse(&row.merchant_id).map_err(corrupt)?,
        channel: ChannelId::parse(&row.channel_id).map_err(corrupt)?,
        state: payout_state(row)?,
        amount: Money::from_minor(row.amount_minor, currency),
        paid: row
            .paid_amount_minor
            .map(|m| Money::from_minor(m, currency)),
        paid_basis: row
            .paid_basis
            .as_deref()
            .map(disburse_core::payout::PaidBasis::parse)
            .transpose()
            .map_err(corrupt)?,
        submitted_at: row.submitted_at.as_deref().map(parse_time).transpose()?,
        succeeded_at: row.succeeded_at.as_deref().map(parse_time).transpose()?,
        funded_from: Funding::parse(&row.funded_from).map_err(corrupt)?,
    })
}

fn refusal(e: Refusal) -> EngineError {
    EngineError::Refused(e.to_string())
}

impl Engine {
    /// A new attempt for an order: a new payout number, the merchant's current bank account, the
    /// channel that serves it. Refused while another attempt of the order is live. On an API
    /// channel it is sent at once (pending → submitted in the same transaction).
    pub async fn create_payout(
        &self,
        r: &OrderRef,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<PayoutStart> {
        let mut tx = self.db.write().await?;
        let mut order_row = Self::load_order(&mut tx, r).await?;
        let payout = self
            .create_payout_in(
                &mut tx,
                &mut order_row,
                channel,
                as_of,
                actor,
                "payout.created",
            )
            .await?;
        tx.commit().await?;
        Ok(payout)
    }

    pub(crate) async fn create_payout_in(
        &self,
        tx: &mut WriteTx<'_>,
        order_row: &mut OrderRow,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
        action: &str,
    ) -> Result<PayoutStart> {
        let earlier: Vec<PayoutRow> = tx.payouts_of_order(order_row.id).await?;
        let states = earlier
            .iter()
            .map(payout_state)
            .collect::<Result<Vec<_>>>()?;
        let currency = Currency::parse(&order_row.currency).map_err(corrupt)?;
        let order_no = disburse_core::OrderNo::parse(&order_row.order_no).map_err(corrupt)?;
        let order_before = order_state(order_row)?;
        let amount = order::new_payout_amount(
            &order_no,
            order_before,
            // Netting and additions already applied to this order change what it still owes.
            Money::from_minor(
                order_row.amount_minor + order_row.adjustment_minor,
                currency,
            ),
            &states,
        )
        .map_err(refused)?;
        let account: BankAccountRow = tx
            .current_bank_account(&order_row.merchant_id)
            .await?
            .ok_or_else(|| EngineError::Refused("the merchant has no bank account".into()))?;
        let merchant_status: Option<disburse_store::MerchantRow> =
            tx.merchant(&order_row.merchant_id).await?;
        if merchant_status.is_some_and(|m| m.account_status == "needs_update") {
            return Err(EngineError::Refused(format!(
                "the bank rejected merchant {}'s account ****{}; it must be updated before paying again",
                order_row.merchant_id, account.last4
            )));
        }
        let channel = match channel {
            Some(id) => {
                let c = self.config.channel(id)?;
                if !c.serves(currency, &account.country) {
                    return Err(EngineError::Refused(format!(
                        "channel {} does not serve {currency} payouts to {}",
                        c.id, account.country
                    )));
                }
                c
            }
            None => self.config.route(currency, &account.country)?,
        };
        let at = fmt_time(as_of);
        let adjustment_before = order_row.adjustment_minor;
        let (amount, netting_journals, netted_minor) =
            self.settle_by_netting(tx, order_row, amount, &at).await?;
        if amount.is_zero() {
            return self
                .paid_by_netting(
                    tx,
                    order_row,
                    order_before,
                    netting_journals,
                    netted_minor,
                    &at,
                    actor,
                )
                .await;
        }
        let (row, journal_ids) = insert_new_payout(
            tx,
            order_row.id,
            &order_row.merchant_id,
            channel,
            amount,
            account.id,
            Funding::Order,
            as_of,
        )
        .await?;
        let order_after = OrderState::after_payout(payout_state(&row)?);
        if order_after != order_before || order_row.adjustment_minor != adjustment_before {
            order_row.state = order_after.as_str().into();
            order_row.updated_at = at.clone();
            tx.update(order_row).await?;
        }
        tx.insert_outbox(
            &row.merchant_id,
            "payout.created",
            &json!({"order_no": order_row.order_no, "payout_no": row.payout_no, "state": row.state,
                    "amount_minor": row.amount_minor, "currency": row.currency}),
            &at,
        )
        .await?;
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: action.into(),
            subject: format!("payout:{}", row.payout_no),
            reason: None,
            detail: json!({
                "order": order_subject(order_row),
                "channel": row.channel_id,
                "amount_minor": row.amount_minor, "currency": row.currency,
                "bank_account": {"version": account.version, "last4": account.last4},
                "after": {"state": row.state},
                "order_state": {"before": order_before.as_str(), "after": order_after.as_str()},
                "journals": journal_ids,
                "netting_journals": netting_journals,
                "order_adjustment_minor": order_row.adjustment_minor,
                "earlier_payouts": earlier.iter().map(|p| json!({"payout_no": p.payout_no, "state": p.state})).collect::<Vec<_>>(),
            }),
        })
        .await?;
        Ok(PayoutStart::Sent(Box::new(row)))
    }

    /// Discrepancies the merchant chose to settle against its next payouts: what it owes us
    /// (`netting`) reduces what this order still pays, never below zero, the rest carrying to the
    /// next order; what we owe (`adding`) is added. Returns what the payout is now to pay.
    async fn settle_by_netting(
        &self,
        tx: &mut WriteTx<'_>,
        order_row: &mut OrderRow,
        owed: Money,
        at: &str,
    ) -> Result<(Money, Vec<i64>, i64)> {
        let mut pending: Vec<disburse_store::DiscrepancyRow> = tx
            .discrepancies_for_next_payout(&order_row.merchant_id, &order_row.currency)
            .await?;
        // What we owe is added first, so that what the merchant owes can be netted against it.
        pending.sort_by_key(|d| (d.status != "adding", d.id));
        let merchant = MerchantId::parse(&order_row.merchant_id).map_err(corrupt)?;
        let currency = owed.currency();
        let mut owed_minor = owed.amount_minor();
        let mut journal_ids = Vec::new();
        let mut netted_minor = 0;
        for mut d in pending {
            let remaining = d.amount_minor - d.settled_minor;
            let netting = d.status == "netting";
            let take = if netting {
                remaining.min(owed_minor)
            } else {
                remaining
            };
            if take <= 0 {
                continue;
            }
            let withdrawing = disburse_core::LedgerAccount::MerchantWithdrawing(merchant.clone());
            let journal = if netting {
                owed_minor -= take;
                netted_minor += take;
                order_row.adjustment_minor -= take;
                // Our debt on this order shrinks by what the merchant owed us.
                disburse_core::Journal::transfer(
                    disburse_core::JournalKind::DiscrepancySettled,
                    withdrawing,
                    disburse_core::LedgerAccount::MerchantReceivable(merchant.clone()),
                    Money::from_minor(take, currency),
                )
            } else {
                owed_minor += take;
                order_row.adjustment_minor += take;
                // What a bank underpaid is reserved with this order and paid with it.
                disburse_core::Journal::transfer(
                    disburse_core::JournalKind::DiscrepancySettled,
                    disburse_core::LedgerAccount::MerchantShortfall(merchant.clone()),
                    withdrawing,
                    Money::from_minor(take, currency),
                )
            }
            .map_err(|e| EngineError::Refused(e.to_string()))?;
            journal_ids.push(
                write_journal(tx, &journal, Some(&merchant), Some(order_row.id), None, at).await?,
            );
            d.settled_minor += take;
            crate::discrepancy_tracking::note(
                &mut d,
                at,
                format!(
                    "{} {} minor units {} order {}",
                    if netting { "netted" } else { "added" },
                    take,
                    if netting { "against" } else { "to" },
                    order_row.order_no
                ),
            );
            if d.settled_minor == d.amount_minor {
                d.status = "settled".into();
                d.settled_at = Some(at.to_string());
                d.resolution = Some(if netting {
                    "netted against later payouts".into()
                } else {
                    "added to a later payout".into()
                });
                tx.insert_outbox(&d.merchant_id, "discrepancy.resolved", &json!({"discrepancy": d.id, "resolution": d.resolution, "amount_minor": d.amount_minor, "currency": d.currency}), at).await?;
            }
            tx.update(&d).await?;
        }
        Ok((
            Money::from_minor(owed_minor, currency),
            journal_ids,
            netted_minor,
        ))
    }

    /// The whole order was settled by netting: paid, with no payout.
    #[allow(clippy::too_many_arguments)]
    async fn paid_by_netting(
        &self,
        tx: &mut WriteTx<'_>,
        order_row: &mut OrderRow,
        order_before: OrderState,
        netting_journals: Vec<i64>,
        netted_minor: i64,
        at: &str,
        actor: &Actor,
    ) -> Result<PayoutStart> {
        order_row.state = OrderState::Paid.as_str().into();
        order_row.updated_at = at.to_string();
        tx.update(order_row).await?;
        tx.insert_outbox(
            &order_row.merchant_id,
            "order.paid",
            &json!({"order_no": order_row.order_no, "order_state": order_row.state, "settled_by_netting": true,
                    "amount_minor": order_row.amount_minor, "currency": order_row.currency}),
            at,
        )
        .await?;
        tx.audit(NewAuditEvent {
            at: at.to_string(),
            actor: actor.as_str().into(),
            action: "order.paid_by_netting".into(),
            subject: order_subject(order_row),
            reason: Some("what the merchant owed covered the order".into()),
            detail: json!({"order_state": {"before": order_before.as_str(), "after": "paid"}, "journals": netting_journals,
                           "adjustment_minor": order_row.adjustment_minor}),
        })
        .await?;
        Ok(PayoutStart::SettledByNetting {
            order_no: order_row.order_no.clone(),
            netted_minor,
        })
    }

    /// Starts paying orders that have no payout yet (orders taken through the API): each gets
    /// its first payout on the channel that serves it, one transaction per order. An order that
    /// cannot be paid now (no channel, an account to fix) is left for a person and skipped.
    pub async fn pay_open_orders(
        &self,
        as_of: DateTime<Utc>,
        actor: &Actor,
        max: usize,
    ) -> Result<Vec<PayoutStart>> {
        let open: Vec<OrderRow> = self.db.open_orders(max).await?;
        let mut started = Vec::new();
        for order in open {
            let mut tx = self.db.write().await?;
            // Read again under the write lock: another worker may have started it meanwhile.
            let Some(mut row) = tx.order_if_open(order.id).await? else {
                tx.rollback().await?;
                continue;
            };
            match self
                .create_payout_in(&mut tx, &mut row, None, as_of, actor, "payout.created")
                .await
            {
                Ok(s) => {
                    tx.commit().await?;
                    started.push(s);
                }
                Err(EngineError::Refused(_)) => tx.rollback().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(started)
    }

    /// Applies one bank result to one payout, in its own transaction.
    pub async fn apply_bank_result(
        &self,
        payout_no: &PayoutNo,
        result: &BankResult,
        source: &ResultSource,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<ApplyOutcome> {
        let mut tx = self.db.write().await?;
        let outcome = self
            .apply_bank_result_in(&mut tx, payout_no, result, source, as_of, actor)
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The core of applying a result, inside a caller's transaction (an import applies many).
    pub(crate) async fn apply_bank_result_in(
        &self,
        tx: &mut WriteTx<'_>,
        payout_no: &PayoutNo,
        result: &BankResult,
        source: &ResultSource,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<ApplyOutcome> {
        let row =
            tx.payout_by_no(payout_no.as_str())
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "payout",
                    id: payout_no.to_string(),
                })?;
        self.apply_to_row(tx, row, result, source, as_of, actor)
            .await?
            .map_err(refusal)
    }

    /// Decides and stores one result for a loaded payout; a refusal comes back typed, for the
    /// importer to file as an exception of the right kind.
    pub(crate) async fn apply_to_row(
        &self,
        tx: &mut WriteTx<'_>,
        row: PayoutRow,
        result: &BankResult,
        source: &ResultSource,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Result<ApplyOutcome, Refusal>> {
        let channel = self.config.channel(&row.channel_id)?;
        let decision = match decide(
            &facts(&row)?,
            &PayoutEvent::Bank(result.clone()),
            &channel.policy,
            as_of,
        ) {
            Ok(d) => d,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match decision {
            Decision::Unchanged(why) => Ok(Ok(ApplyOutcome::Unchanged(why))),
            Decision::Changed(t) => {
                let row = self
                    .store_transition(tx, row, &t, Some(result), source, as_of, actor)
                    .await?;
                Ok(Ok(ApplyOutcome::Applied(Box::new(row))))
            }
        }
    }

    /// Stores a decided transition: payout, order, journal, outbox, one audit event.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_transition(
        &self,
        tx: &mut WriteTx<'_>,
        mut row: PayoutRow,
        t: &Transition,
        result: Option<&BankResult>,
        source: &ResultSource,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<PayoutRow> {
        let at = fmt_time(as_of);
        let before = row.clone();
        row.state = t.to.as_str().into();
        row.updated_at = at.clone();
        // A rebooking or a booking that confirms an assumption keeps the state and the time of
        // success (the return window counts from it).
        let stays_succeeded = t.from == PayoutState::Succeeded && t.to == PayoutState::Succeeded;
        if let Some(paid) = t.paid {
            row.paid_amount_minor = Some(paid.amount_minor());
            if !stays_succeeded {
                row.succeeded_at = Some(at.clone());
            }
        }
        if let Some(basis) = t.paid_basis {
            row.paid_basis = Some(basis.as_str().to_string());
        }
        if let Some(back) = t.partial_return {
            row.returned_minor = row.returned_minor.saturating_add(back.amount_minor());
        }
        match result {
            Some(BankResult::Paid {
                reference,
                value_date,
                ..
            }) => {
                row.bank_reference = reference.clone().or(row.bank_reference);
                row.value_date = value_date.map(fmt_date).or(row.value_date);
            }
            Some(BankResult::Rejected {
                reason_code,
                reason_text,
                ..
            })
            | Some(BankResult::Returned {
                reason_code,
                reason_text,
                ..
            }) => {
                row.reason_code = Some(reason_code.clone());
                row.reason_text = reason_text.clone();
            }
            _ => {}
        }
        if t.to == PayoutState::Submitted {
            row.submitted_at = Some(at.clone());
        }
        tx.update(&row).await?;
        let merchant = MerchantId::parse(&row.merchant_id).map_err(corrupt)?;
        let mut journal_id = None;
        if let Some(j) = &t.journal {
            journal_id = Some(
                write_journal(
                    tx,
                    j,
                    Some(&merchant),
                    Some(row.order_id),
                    Some(row.id),
                    &at,
                )
                .await?,
            );
        }
        let mut order_row = tx
            .order(row.order_id)
            .await?
            .ok_or_else(|| corrupt(format!("payout {} has no order", row.payout_no)))?;
        let order_before = order_state(&order_row)?;
        let funded_from = Funding::parse(&row.funded_from).map_err(corrupt)?;
        let top_up = funded_from == Funding::Shortfall;
        let order_after = order_before.after_change_of(funded_from, t.to);
        if order_after != order_before {
            order_row.state = order_after.as_str().into();
            order_row.updated_at = at.clone();
            tx.update(&order_row).await?;
        }
        let who_must_act = matches!(t.to, PayoutState::Failed | PayoutState::Returned).then(|| {
            disburse_formats::reason_codes::who_must_act(
                row.reason_code.as_deref().unwrap_or("NARR"),
            )
        });
        let account_reason = who_must_act == Some(WhoMustAct::Merchant);
        if account_reason {
            let mut m: disburse_store::MerchantRow = tx
                .merchant(&row.merchant_id)
                .await?
                .ok_or_else(|| corrupt("payout without merchant"))?;
            if m.account_status != "needs_update" {
                m.account_status = "needs_update".into();
                m.updated_at = at.clone();
                tx.update(&m).await?;
            }
        }
        if let Some(d) = &t.difference {
            let over = d.overpaid_by().amount_minor();
            let note = match (t.rebooked_from, t.partial_return) {
                (_, Some(back)) => format!(
                    "the bank returned {back} of the {} paid; {} remains paid",
                    d.instructed, d.paid
                ),
                (Some(was), None) => format!(
                    "the bank booked {} where {was} was taken as paid ({} instructed)",
                    d.paid,
                    Money::from_minor(row.amount_minor, d.paid.currency())
                ),
                (None, None) => format!("bank paid {} for {} instructed", d.paid, d.instructed),
            };
            crate::discrepancy_tracking::open_discrepancy(
                tx,
                &row,
                if over > 0 { "overpaid" } else { "underpaid" },
                over.abs(),
                &note,
                &at,
            )
            .await?;
        }
        if top_up {
            crate::discrepancy_tracking::top_up_finished(tx, &row, t.to, &at).await?;
        }
        if t.to == PayoutState::Returned && before.state == PayoutState::Succeeded.as_str() {
            // The return's journal reverses the difference too: what was still open is owed
            // neither way now; what had been settled is owed the other way.
            crate::discrepancy_tracking::close_discrepancies_of(
                tx,
                &row.payout_no,
                "the payout was returned",
                &at,
            )
            .await?;
            crate::discrepancy_tracking::returned_after_settlement(tx, &row, &at).await?;
        }
        // Messages the merchant cares about, in the same transaction as the change.
        let base = json!({
            "order_no": order_row.order_no, "payout_no": row.payout_no,
            "payout_state": row.state, "order_state": order_row.state,
            "amount_minor": row.amount_minor, "currency": row.currency,
        });
        let mut topics: Vec<(&str, serde_json::Value)> = Vec::new();
        match t.to {
            // Told once: a booking after the ACSC changes the amount, not the news.
            PayoutState::Succeeded if stays_succeeded => {
                if let Some(back) = t.partial_return {
                    topics.push(("payout.partially_returned", json!({"returned_minor": back.amount_minor(), "paid_amount_minor": row.paid_amount_minor, "reason_code": row.reason_code})));
                }
            }
            // A top-up pays what a bank underpaid: the order was already announced paid.
            PayoutState::Succeeded if top_up => topics.push(("top_up.paid", json!({"paid_amount_minor": row.paid_amount_minor, "bank_reference": row.bank_reference}))),
            PayoutState::Succeeded => topics.push(("order.paid", json!({"paid_amount_minor": row.paid_amount_minor, "bank_reference": row.bank_reference}))),
            PayoutState::Failed => topics.push(("payout.failed", json!({"reason_code": row.reason_code, "reason_text": row.reason_text}))),
            PayoutState::Returned => topics.push(("payout.returned", json!({"reason_code": row.reason_code, "reason_text": row.reason_text}))),
            PayoutState::Submitted => topics.push(("payout.submitted", json!({}))),
            _ => {}
        }
        // The merchant is asked to act only when it must (its account); otherwise the order is
        // delayed while we act (DESIGN §8.1, the merchant's messages).
        if order_after == OrderState::ActionRequired && order_before != OrderState::ActionRequired {
            match who_must_act {
                Some(WhoMustAct::Merchant) => topics.push((
                    "order.action_required",
                    json!({"account_update_needed": true, "who_must_act": "merchant"}),
                )),
                Some(who) => topics.push((
                    "order.delayed",
                    json!({"why": "the bank did not pay this attempt; we are paying it again", "who_must_act": who.as_str()}),
                )),
                None => topics.push((
                    "order.delayed",
                    json!({"why": "no answer from the bank within its deadline; nothing is paid twice", "who_must_act": "bank"}),
                )),
            }
        }
        if let Some(d) = &t.difference {
            // What the merchant hears is always against the instruction; a rebooking's
            // difference is the change (was → now).
            topics.push((
                "discrepancy.opened",
                json!({
                    "instructed_minor": row.amount_minor, "paid_minor": d.paid.amount_minor(),
                    "overpaid_by_minor": d.overpaid_by().amount_minor(),
                }),
            ));
        }
        for (topic, extra) in topics {
            let mut msg = base.clone();
            if let (Some(m), Some(e)) = (msg.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            tx.insert_outbox(&row.merchant_id, topic, &msg, &at).await?;
        }
        let action = match (t.to, t.late, t.presumed) {
            _ if t.partial_return.is_some() && stays_succeeded => {
                "payout.partially_returned".to_string()
            }
            _ if t.rebooked_from.is_some() => "payout.rebooked".to_string(),
            _ if stays_succeeded => "payout.booking_confirmed".to_string(),
            (_, true, _) => format!("payout.{}_late", t.to),
            (_, _, true) => "payout.presumed_succeeded".to_string(),
            (to, _, _) => format!("payout.{to}"),
        };
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action,
            subject: format!("payout:{}", row.payout_no),
            reason: row.reason_code.clone().filter(|_| t.to != PayoutState::Succeeded),
            detail: json!({
                "before": {"state": before.state, "paid_amount_minor": before.paid_amount_minor, "paid_basis": before.paid_basis},
                "after": {"state": row.state, "paid_amount_minor": row.paid_amount_minor, "paid_basis": row.paid_basis, "bank_reference": row.bank_reference},
                "order_state": {"before": order_before.as_str(), "after": order_after.as_str()},
                "bank_result": result,
                "source": source,
                "journal_id": journal_id,
                "account_update_needed": account_reason,
            }),
        })
        .await?;
        Ok(row)
    }

    /// Moves time forward for every submitted payout: past the deadline → expired (for a person);
    /// silent long enough on a failures-only channel → succeeded. Nothing is paid again.
    /// Goes through them a page of [`SWEEP_PAGE`] at a time, one transaction each, so memory and
    /// the time the writer lock is held stay bounded however many payouts are in transit.
    pub async fn sweep(&self, as_of: DateTime<Utc>, actor: &Actor) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let mut after = 0;
        loop {
            let (page, next) = self.sweep_page(as_of, actor, after, SWEEP_PAGE).await?;
            report.expired.extend(page.expired);
            report.presumed_succeeded.extend(page.presumed_succeeded);
            report.still_waiting += page.still_waiting;
            match next {
                Some(id) => after = id,
                None => return Ok(report),
            }
        }
    }

    /// One page of [`Engine::sweep`]: the submitted payouts with an id above `after_id`, at most
    /// `limit`, in one transaction. Returns the cursor of the next page (the last id read), or
    /// `None` when this page was the last.
    pub async fn sweep_page(
        &self,
        as_of: DateTime<Utc>,
        actor: &Actor,
        after_id: i64,
        limit: usize,
    ) -> Result<(SweepReport, Option<i64>)> {
        let limit = limit.max(1);
        let mut report = SweepReport::default();
        let mut tx = self.db.write().await?;
        let submitted: Vec<PayoutRow> = tx
            .payouts_in_state_after("submitted", after_id, limit)
            .await?;
        let next = (submitted.len() == limit).then(|| submitted[limit - 1].id);
        for row in submitted {
            let channel = self.config.channel(&row.channel_id)?;
            match decide(&facts(&row)?, &PayoutEvent::Sweep, &channel.policy, as_of)
                .map_err(refusal)?
            {
                Decision::Unchanged(_) => report.still_waiting += 1,
                Decision::Changed(t) => {
                    let no = row.payout_no.clone();
                    self.store_transition(
                        &mut tx,
                        row,
                        &t,
                        None,
                        &ResultSource::Sweep,
                        as_of,
                        actor,
                    )
                    .await?;
                    if t.presumed {
                        report.presumed_succeeded.push(no);
                    } else {
                        report.expired.push(no);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok((report, next))
    }
}

/// Writes a new payout of `amount` for an order, drawn from `funding`; on an API channel it is
/// sent at once (pending → submitted and its journal, in the caller's transaction).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_new_payout(
    tx: &mut WriteTx<'_>,
    order_id: i64,
    merchant_id: &str,
    channel: &crate::Channel,
    amount: Money,
    bank_account_id: i64,
    funding: Funding,
    as_of: DateTime<Utc>,
) -> Result<(PayoutRow, Vec<i64>)> {
    let at = fmt_time(as_of);
    let id = tx.next_id("payout").await?;
    let mut row = PayoutRow {
        id,
        payout_no: PayoutNo::from_sequence(id).to_string(),
        order_id,
        merchant_id: merchant_id.to_string(),
        channel_id: channel.id.to_string(),
        currency: amount.currency().code().into(),
        amount_minor: amount.amount_minor(),
        bank_account_id,
        state: PayoutState::Pending.as_str().into(),
        paid_amount_minor: None,
        paid_basis: None,
        returned_minor: 0,
        bank_reference: None,
        reason_code: None,
        reason_text: None,
        value_date: None,
        submitted_at: None,
        succeeded_at: None,
        batch_id: None,
        created_at: at.clone(),
        updated_at: at.clone(),
        funded_from: funding.as_str().into(),
    };
    let mut journal_ids = Vec::new();
    if !channel.kind.sends_immediately() {
        tx.insert(&row).await?;
        return Ok((row, journal_ids));
    }
    let Decision::Changed(t) =
        decide(&facts(&row)?, &PayoutEvent::Submit, &channel.policy, as_of).map_err(refusal)?
    else {
        unreachable!("submitting a pending payout always changes it")
    };
    row.state = t.to.as_str().into();
    row.submitted_at = Some(at.clone());
    tx.insert(&row).await?;
    if let Some(j) = &t.journal {
        let m = MerchantId::parse(merchant_id).map_err(corrupt)?;
        journal_ids.push(write_journal(tx, j, Some(&m), Some(order_id), Some(row.id), &at).await?);
    }
    Ok((row, journal_ids))
}

/// Parses a bank value date given as text.
pub fn parse_value_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| EngineError::invalid("value date", format!("{s:?}: {e} (write YYYY-MM-DD)")))
}
