//! The exception desk: named operators with roles; corrections proposed by one person and approved
//! by another; discrepancies opened automatically and settled by a named person; paying an order
//! again after its account was fixed.

use chrono::{DateTime, Utc};
use disburse_core::correction::{self, CorrectionKind, OtherPayouts, Role};
use disburse_core::payout::Funding;
use disburse_core::{
    Currency, Journal, JournalKind, LedgerAccount, MerchantId, Money, OperatorName, OrderState,
    PayoutNo, PayoutState,
};
use disburse_store::{
    fmt_time, CorrectionRow, DiscrepancyRow, NewAuditEvent, OperatorRow, OrderRow, PayoutRow,
    WriteTx,
};
use serde::Serialize;
use serde_json::json;

use crate::orders::{order_state, payout_state};
use crate::payouts::{corrupt, facts};
use crate::{write_journal, Actor, Engine, EngineError, OrderRef, Result};

fn refused(e: impl ToString) -> EngineError {
    EngineError::Refused(e.to_string())
}

/// Opens a discrepancy for a payout, in the caller's transaction.
pub(crate) async fn open_discrepancy(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    direction: &str,
    amount_minor: i64,
    note: &str,
    at: &str,
) -> Result<DiscrepancyRow> {
    let row = DiscrepancyRow {
        id: tx.next_id("discrepancy").await?,
        merchant_id: payout.merchant_id.clone(),
        direction: direction.to_string(),
        amount_minor,
        currency: payout.currency.clone(),
        origin_payout_no: payout.payout_no.clone(),
        order_id: payout.order_id,
        status: "open".into(),
        opened_at: at.to_string(),
        settled_at: None,
        resolution: None,
        topup_payout_no: None,
        write_off_proposed_by: None,
        history: json!([{"at": at, "what": format!("opened: {note}")}]).to_string(),
        settled_minor: 0,
    };
    tx.insert(&row).await?;
    Ok(row)
}

/// Appends to a discrepancy's history.
/// Whether the merchant owes us the difference (it was paid too much, or twice) rather than we
/// the merchant (underpaid).
pub(crate) fn owed_to_us(direction: &str) -> bool {
    direction == "overpaid" || direction == "duplicate"
}

pub(crate) fn note(row: &mut DiscrepancyRow, at: &str, what: String) {
    let mut h: Vec<serde_json::Value> = serde_json::from_str(&row.history).unwrap_or_default();
    h.push(json!({"at": at, "what": what}));
    row.history = serde_json::Value::Array(h).to_string();
}

/// Closes the open discrepancies of a payout whose difference a later journal reversed.
pub(crate) async fn close_discrepancies_of(
    tx: &mut WriteTx<'_>,
    payout_no: &str,
    why: &str,
    at: &str,
) -> Result<()> {
    let open: Vec<DiscrepancyRow> = tx.unsettled_discrepancies_of_payout(payout_no).await?;
    for mut d in open {
        d.status = "settled".into();
        d.settled_at = Some(at.to_string());
        d.resolution = Some(format!("closed: {why}"));
        note(&mut d, at, format!("closed: {why}"));
        tx.update(&d).await?;
        tx.insert_outbox(
            &d.merchant_id,
            "discrepancy.resolved",
            &json!({"discrepancy": d.id, "resolution": d.resolution}),
            at,
        )
        .await?;
    }
    Ok(())
}

/// A payout whose amount difference was already (partly) settled — refunded, netted, added,
/// topped up or written off — was returned: the return's journal reverses the whole difference,
/// so what was settled is now owed the other way. It is moved to where it belongs (receivable or
/// shortfall, or back against the write-off) and tracked as a new discrepancy.
pub(crate) async fn returned_after_settlement(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    at: &str,
) -> Result<()> {
    let all: Vec<DiscrepancyRow> = tx.amount_discrepancies_of_payout(&payout.payout_no).await?;
    let merchant = MerchantId::parse(&payout.merchant_id).map_err(corrupt)?;
    let currency = Currency::parse(&payout.currency).map_err(corrupt)?;
    for d in all {
        let closed_by_correction = d
            .resolution
            .as_deref()
            .is_some_and(|r| r.starts_with("closed:"));
        let settled = if d.status == "settled" && !closed_by_correction {
            d.amount_minor
        } else {
            d.settled_minor
        };
        if settled <= 0 {
            continue;
        }
        let amount = Money::from_minor(settled, currency);
        let written_off = d
            .resolution
            .as_deref()
            .is_some_and(|r| r.starts_with("written off"));
        let journal = if written_off {
            // The bank gave back what was written off: the loss is undone.
            Journal::transfer(
                JournalKind::DiscrepancySettled,
                LedgerAccount::MerchantReceivable(merchant.clone()),
                LedgerAccount::PlatformWriteOffs(currency),
                amount,
            )
        } else {
            // Overpaid then settled: we now owe it (shortfall). Underpaid then settled: the
            // merchant now owes it (receivable). The same journal serves both.
            Journal::transfer(
                JournalKind::DiscrepancySettled,
                LedgerAccount::MerchantReceivable(merchant.clone()),
                LedgerAccount::MerchantShortfall(merchant.clone()),
                amount,
            )
        }
        .map_err(refused)?;
        write_journal(
            tx,
            &journal,
            Some(&merchant),
            Some(payout.order_id),
            Some(payout.id),
            at,
        )
        .await?;
        if written_off {
            continue;
        }
        let direction = if d.direction == "overpaid" {
            "underpaid"
        } else {
            "overpaid"
        };
        let opened = open_discrepancy(
            tx,
            payout,
            direction,
            settled,
            &format!(
                "payout returned after {settled} minor units of discrepancy {} were settled",
                d.id
            ),
            at,
        )
        .await?;
        tx.insert_outbox(&payout.merchant_id, "discrepancy.opened", &json!({"discrepancy": opened.id, "direction": direction, "amount_minor": settled, "payout_no": payout.payout_no}), at).await?;
    }
    Ok(())
}

/// A top-up payout reached a final state: settle its discrepancy, or reopen it.
pub(crate) async fn top_up_finished(
    tx: &mut WriteTx<'_>,
    payout: &PayoutRow,
    to: PayoutState,
    at: &str,
) -> Result<()> {
    let Some(mut d) = tx.discrepancy_of_top_up(&payout.payout_no).await? else {
        return Ok(());
    };
    match to {
        PayoutState::Succeeded => {
            d.status = "settled".into();
            d.settled_at = Some(at.to_string());
            d.resolution = Some("topped_up".into());
            note(
                &mut d,
                at,
                format!("top-up payout {} paid", payout.payout_no),
            );
        }
        PayoutState::Failed | PayoutState::Returned => {
            d.status = "open".into();
            d.topup_payout_no = None;
            note(
                &mut d,
                at,
                format!("top-up payout {} {to}; open again", payout.payout_no),
            );
        }
        _ => return Ok(()),
    }
    Ok(tx.update(&d).await?)
}

#[derive(Debug, Clone, Serialize)]
pub struct CorrectionView {
    pub id: i64,
    pub payout_no: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub reason: String,
    pub evidence: String,
    pub status: String,
    pub proposed_by: String,
    pub proposed_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
}

impl From<CorrectionRow> for CorrectionView {
    fn from(c: CorrectionRow) -> Self {
        CorrectionView {
            id: c.id,
            payout_no: c.payout_no,
            kind: c.kind,
            payload: serde_json::from_str(&c.payload).unwrap_or_default(),
            reason: c.reason,
            evidence: c.evidence,
            status: c.status,
            proposed_by: c.proposed_by,
            proposed_at: c.proposed_at,
            decided_by: c.decided_by,
            decided_at: c.decided_at,
            decision_reason: c.decision_reason,
        }
    }
}

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
    pub(crate) async fn operator_role(tx: &mut WriteTx<'_>, who: &OperatorName) -> Result<Role> {
        let row: OperatorRow =
            tx.operator(who.as_str())
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "operator",
                    id: format!("{who} (add people with `disburse operator add`)"),
                })?;
        Role::parse(&row.role).map_err(corrupt)
    }

    /// Adds a named person. The first operator may be added by anyone and must be an admin;
    /// after that only admins add people.
    pub async fn add_operator(
        &self,
        name: &OperatorName,
        role: Role,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<OperatorRow> {
        let mut tx = self.db.write().await?;
        let existing: Vec<OperatorRow> = tx.operators().await?;
        if existing.is_empty() {
            if role != Role::Admin {
                return Err(EngineError::invalid(
                    "role",
                    "the first operator must be an admin",
                ));
            }
        } else {
            let by_role = Self::operator_role(&mut tx, by).await?;
            if by_role != Role::Admin {
                return Err(refused(format!(
                    "{by} is a {}; only admins add operators",
                    by_role.as_str()
                )));
            }
        }
        if existing.iter().any(|o| o.name == name.as_str()) {
            return Err(refused(format!("operator {name} already exists")));
        }
        let at = fmt_time(as_of);
        let row = OperatorRow {
            name: name.to_string(),
            role: role.as_str().into(),
            created_at: at.clone(),
            created_by: by.to_string(),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(by).as_str().into(),
            action: "operator.added".into(),
            subject: format!("operator:{name}"),
            reason: None,
            detail: json!({"role": role.as_str()}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// A maker proposes a correction of a payout, with a reason and evidence.
    pub async fn propose_correction(
        &self,
        payout_no: &PayoutNo,
        kind: &CorrectionKind,
        reason: &str,
        evidence: &str,
        as_of: DateTime<Utc>,
        maker: &OperatorName,
    ) -> Result<CorrectionRow> {
        if reason.trim().is_empty() {
            return Err(EngineError::invalid(
                "reason",
                "say why the record is wrong",
            ));
        }
        if evidence.trim().is_empty() {
            return Err(EngineError::invalid(
                "evidence",
                "give the bank's reference, notice or file",
            ));
        }
        let mut tx = self.db.write().await?;
        let role = Self::operator_role(&mut tx, maker).await?;
        correction::check_may_propose(maker.as_str(), role, "propose corrections")
            .map_err(refused)?;
        let payout: PayoutRow =
            tx.payout_by_no(payout_no.as_str())
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "payout",
                    id: payout_no.to_string(),
                })?;
        // Check now that it could be applied to the payout as it is, so a maker learns at once.
        let others = self.other_payouts(&mut tx, &payout).await?;
        if *kind == CorrectionKind::CancelOrder {
            // Cancellable now? Money that may be at a bank (a submitted or expired payout) says no.
            let order: OrderRow = tx
                .order(payout.order_id)
                .await?
                .ok_or_else(|| corrupt("payout without order"))?;
            let states: Vec<PayoutState> = tx
                .payouts_of_order(order.id)
                .await?
                .iter()
                .map(payout_state)
                .collect::<Result<_>>()?;
            disburse_core::order::cancel(
                &disburse_core::OrderNo::parse(&order.order_no).map_err(corrupt)?,
                &MerchantId::parse(&order.merchant_id).map_err(corrupt)?,
                order_state(&order)?,
                Money::from_minor(
                    order.amount_minor + order.adjustment_minor,
                    Currency::parse(&order.currency).map_err(corrupt)?,
                ),
                &states,
            )
            .map_err(refused)?;
        } else {
            correction::decide_within(
                &facts(&payout)?,
                kind,
                others,
                &self.config.channel(&payout.channel_id)?.policy,
            )
            .map_err(refused)?;
        }
        let at = fmt_time(as_of);
        let row = CorrectionRow {
            id: tx.next_id("correction").await?,
            payout_no: payout.payout_no.clone(),
            kind: kind.name().into(),
            payload: serde_json::to_string(kind).expect("serializable"),
            reason: reason.to_string(),
            evidence: evidence.to_string(),
            payout_state: payout.state.clone(),
            payout_updated_at: payout.updated_at.clone(),
            status: "proposed".into(),
            proposed_by: maker.to_string(),
            proposed_at: at.clone(),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(maker).as_str().into(),
            action: "correction.proposed".into(),
            subject: format!("payout:{}", payout.payout_no),
            reason: Some(reason.to_string()),
            detail: json!({"correction": row.id, "kind": kind, "evidence": evidence, "payout_state": payout.state}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn other_payouts(
        &self,
        tx: &mut WriteTx<'_>,
        payout: &PayoutRow,
    ) -> Result<OtherPayouts> {
        let all: Vec<PayoutRow> = tx.payouts_of_order(payout.order_id).await?;
        let mut others = OtherPayouts::default();
        for p in all
            .iter()
            .filter(|p| p.id != payout.id && p.funded_from == Funding::Order.as_str())
        {
            let st = payout_state(p)?;
            others.live |= st.is_live();
            others.succeeded |= st == PayoutState::Succeeded;
        }
        Ok(others)
    }

    async fn load_proposed(tx: &mut WriteTx<'_>, id: i64) -> Result<CorrectionRow> {
        let row: CorrectionRow = tx
            .correction(id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "correction",
                id: id.to_string(),
            })?;
        if row.status != "proposed" {
            return Err(refused(format!(
                "correction {id} is already {}",
                row.status
            )));
        }
        Ok(row)
    }

    /// A checker approves: applied at once, as reversing and restating journals, with one audit
    /// event naming both people. Refused if the payout changed since the proposal.
    pub async fn approve_correction(
        &self,
        id: i64,
        as_of: DateTime<Utc>,
        checker: &OperatorName,
    ) -> Result<CorrectionRow> {
        let mut tx = self.db.write().await?;
        let role = Self::operator_role(&mut tx, checker).await?;
        let mut c = Self::load_proposed(&mut tx, id).await?;
        correction::check_may_decide(
            checker.as_str(),
            role,
            &c.proposed_by,
            "approve corrections",
        )
        .map_err(refused)?;
        let mut payout: PayoutRow = tx
            .payout_by_no(&c.payout_no)
            .await?
            .ok_or_else(|| corrupt("correction of a payout that does not exist"))?;
        if payout.updated_at != c.payout_updated_at || payout.state != c.payout_state {
            return Err(refused(format!(
                "correction {id} is stale: payout {} was {} when it was proposed and is {} now (changed {}); propose again",
                c.payout_no, c.payout_state, payout.state, payout.updated_at
            )));
        }
        let kind: CorrectionKind = serde_json::from_str(&c.payload).map_err(corrupt)?;
        if kind == CorrectionKind::CancelOrder {
            return self
                .approve_order_cancellation(tx, c, &payout, as_of, checker)
                .await;
        }
        let others = self.other_payouts(&mut tx, &payout).await?;
        let decision = correction::decide_within(
            &facts(&payout)?,
            &kind,
            others,
            &self.config.channel(&payout.channel_id)?.policy,
        )
        .map_err(refused)?;
        let at = fmt_time(as_of);
        let before = payout.clone();
        let merchant = MerchantId::parse(&payout.merchant_id).map_err(corrupt)?;
        payout.state = decision.to.as_str().into();
        payout.updated_at = at.clone();
        match &kind {
            CorrectionKind::ConfirmSucceeded {
                bank_reference,
                value_date,
                ..
            } => {
                payout.bank_reference = Some(bank_reference.clone());
                payout.value_date = value_date.map(disburse_store::fmt_date);
                payout.reason_code = None;
                payout.reason_text = None;
            }
            CorrectionKind::ConfirmFailed { reason_code }
            | CorrectionKind::RecordReturn { reason_code } => {
                payout.reason_code = Some(reason_code.clone());
                payout.reason_text = Some(format!("correction {id}"));
            }
            CorrectionKind::AmendPaidAmount { .. } | CorrectionKind::CancelOrder => {}
        }
        if let Some(paid) = decision.paid {
            payout.paid_amount_minor = Some(paid.amount_minor());
            payout.succeeded_at = Some(at.clone());
            // A person with evidence: what the bank moved.
            payout.paid_basis = Some(disburse_core::payout::PaidBasis::Booked.as_str().into());
        } else if decision.to != PayoutState::Succeeded {
            payout.paid_amount_minor = None;
            payout.paid_basis = None;
        }
        tx.update(&payout).await?;
        let mut journal_ids = Vec::new();
        for j in &decision.journals {
            journal_ids.push(
                write_journal(
                    &mut tx,
                    j,
                    Some(&merchant),
                    Some(payout.order_id),
                    Some(payout.id),
                    &at,
                )
                .await?,
            );
        }
        // Discrepancies the old record implied are closed; the new one's are opened.
        close_discrepancies_of(
            &mut tx,
            &payout.payout_no,
            &format!("superseded by correction {id}"),
            &at,
        )
        .await?;
        let mut opened = Vec::new();
        if let Some(diff) = &decision.difference {
            let over = diff.overpaid_by().amount_minor();
            let d = open_discrepancy(
                &mut tx,
                &payout,
                if over > 0 { "overpaid" } else { "underpaid" },
                over.abs(),
                &format!(
                    "correction {id}: bank paid {} for {}",
                    diff.paid, diff.instructed
                ),
                &at,
            )
            .await?;
            opened.push(d.id);
        }
        if let Some(dup) = decision.duplicate {
            let d = open_discrepancy(
                &mut tx,
                &payout,
                "duplicate",
                dup.amount_minor(),
                &format!("correction {id}: the order was paid twice; {dup} is owed back"),
                &at,
            )
            .await?;
            opened.push(d.id);
        }
        let mut order: OrderRow = tx
            .order(payout.order_id)
            .await?
            .ok_or_else(|| corrupt("payout without order"))?;
        let order_before = order_state(&order)?;
        // (A duplicate payment is a confirmed success: the order is paid either way.)
        let order_after = order_before.after_change_of(
            Funding::parse(&payout.funded_from).map_err(corrupt)?,
            decision.to,
        );
        if order_after != order_before {
            order.state = order_after.as_str().into();
            order.updated_at = at.clone();
            tx.update(&order).await?;
        }
        if decision.to == PayoutState::Succeeded {
            // The account the bank was said to reject took the money: it was never wrong.
            let mut m: disburse_store::MerchantRow = tx
                .merchant(&payout.merchant_id)
                .await?
                .ok_or_else(|| corrupt("payout without merchant"))?;
            let current: Option<disburse_store::BankAccountRow> =
                tx.current_bank_account(&payout.merchant_id).await?;
            if m.account_status == "needs_update"
                && current.is_some_and(|a| a.id == payout.bank_account_id)
            {
                m.account_status = "ok".into();
                m.updated_at = at.clone();
                tx.update(&m).await?;
            }
        }
        c.status = "applied".into();
        c.decided_by = Some(checker.to_string());
        c.decided_at = Some(at.clone());
        tx.update(&c).await?;
        let message = json!({"order_no": order.order_no, "payout_no": payout.payout_no, "payout_state": payout.state,
            "order_state": order.state, "correction": id, "kind": c.kind, "reason": c.reason});
        tx.insert_outbox(&payout.merchant_id, "correction.applied", &message, &at)
            .await?;
        for d in &opened {
            tx.insert_outbox(&payout.merchant_id, "discrepancy.opened", &json!({"discrepancy": d, "order_no": order.order_no, "payout_no": payout.payout_no}), &at).await?;
        }
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(checker).as_str().into(),
            action: format!("payout.corrected.{}", c.kind),
            subject: format!("payout:{}", payout.payout_no),
            reason: Some(c.reason.clone()),
            detail: json!({
                "correction": id, "proposed_by": c.proposed_by, "approved_by": checker.as_str(),
                "evidence": c.evidence, "kind": kind,
                "before": {"state": before.state, "paid_amount_minor": before.paid_amount_minor},
                "after": {"state": payout.state, "paid_amount_minor": payout.paid_amount_minor},
                "order_state": {"before": order_before.as_str(), "after": order_after.as_str()},
                "journals": journal_ids, "discrepancies_opened": opened,
            }),
        })
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The order-level correction: the order is cancelled as `order cancel` does, under the
    /// correction, with one audit event naming both people.
    async fn approve_order_cancellation(
        &self,
        mut tx: WriteTx<'static>,
        mut c: CorrectionRow,
        payout: &PayoutRow,
        as_of: DateTime<Utc>,
        checker: &OperatorName,
    ) -> Result<CorrectionRow> {
        let at = fmt_time(as_of);
        let mut order: OrderRow = tx
            .order(payout.order_id)
            .await?
            .ok_or_else(|| corrupt("payout without order"))?;
        let before = Self::cancel_order_in(&mut tx, &mut order, &c.reason, &at).await?;
        c.status = "applied".into();
        c.decided_by = Some(checker.to_string());
        c.decided_at = Some(at.clone());
        tx.update(&c).await?;
        tx.insert_outbox(
            &order.merchant_id,
            "correction.applied",
            &json!({"order_no": order.order_no, "order_state": order.state, "correction": c.id, "kind": c.kind, "reason": c.reason}),
            &at,
        )
        .await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(checker).as_str().into(),
            action: "order.corrected.cancel_order".into(),
            subject: format!("order:{}/{}", order.merchant_id, order.order_no),
            reason: Some(c.reason.clone()),
            detail: json!({"correction": c.id, "proposed_by": c.proposed_by, "approved_by": checker.as_str(),
                "evidence": c.evidence, "order_state": {"before": before.as_str(), "after": order.state}}),
        })
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn reject_correction(
        &self,
        id: i64,
        why: &str,
        as_of: DateTime<Utc>,
        checker: &OperatorName,
    ) -> Result<CorrectionRow> {
        if why.trim().is_empty() {
            return Err(EngineError::invalid(
                "reason",
                "say why the correction is rejected",
            ));
        }
        let mut tx = self.db.write().await?;
        let role = Self::operator_role(&mut tx, checker).await?;
        let mut c = Self::load_proposed(&mut tx, id).await?;
        correction::check_may_decide(checker.as_str(), role, &c.proposed_by, "reject corrections")
            .map_err(refused)?;
        let at = fmt_time(as_of);
        c.status = "rejected".into();
        c.decided_by = Some(checker.to_string());
        c.decided_at = Some(at.clone());
        c.decision_reason = Some(why.to_string());
        tx.update(&c).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(checker).as_str().into(),
            action: "correction.rejected".into(),
            subject: format!("payout:{}", c.payout_no),
            reason: Some(why.to_string()),
            detail: json!({"correction": id, "proposed_by": c.proposed_by}),
        })
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn corrections(&self, status: Option<&str>) -> Result<Vec<CorrectionView>> {
        let rows: Vec<CorrectionRow> = self.db.corrections(status).await?;
        Ok(rows.into_iter().map(CorrectionView::from).collect())
    }

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

    /// Pays an order again after its last payout failed: a new payout number, the same order.
    pub async fn retry_order(
        &self,
        r: &OrderRef,
        channel: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<crate::PayoutStart> {
        let mut tx = self.db.write().await?;
        let mut order = Self::load_order(&mut tx, r).await?;
        if order_state(&order)? != disburse_core::OrderState::ActionRequired {
            return Err(refused(format!(
                "order {} is {}; only an order whose last payout failed is paid again",
                order.order_no, order.state
            )));
        }
        let p = self
            .create_payout_in(&mut tx, &mut order, channel, as_of, actor, "payout.retried")
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    /// After a merchant fixed its account: orders waiting for it on channels that allow it get a
    /// new payout in the same transaction. Returns the new payout numbers.
    pub(crate) async fn auto_retry_waiting(
        &self,
        tx: &mut WriteTx<'_>,
        merchant: &MerchantId,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let waiting: Vec<OrderRow> = tx.orders_waiting_for_account_fix(merchant.as_str()).await?;
        let mut created = Vec::new();
        for mut order in waiting {
            let payouts: Vec<PayoutRow> = tx.payouts_of_order(order.id).await?;
            // An order taken while the account was flagged never got a payout: it waited for
            // this fix too, and is paid now like the others.
            let never_tried = order.state == OrderState::Open.as_str()
                && payouts
                    .iter()
                    .all(|p| p.state == PayoutState::Cancelled.as_str());
            if never_tried {
                match self
                    .create_payout_in(
                        tx,
                        &mut order,
                        None,
                        as_of,
                        &Actor::system("account-fix"),
                        "payout.created_after_account_fix",
                    )
                    .await
                {
                    Ok(crate::PayoutStart::Sent(p)) => created.push(p.payout_no),
                    Ok(crate::PayoutStart::SettledByNetting { order_no, .. }) => {
                        created.push(format!("{order_no} (settled by netting)"))
                    }
                    // No channel serves it: it stays open, listed for a person.
                    Err(EngineError::Refused(_)) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let Some(last) = payouts.last() else { continue };
            let st = payout_state(last)?;
            let account_reason = last.reason_code.as_deref().is_some_and(|c| {
                disburse_formats::reason_codes::who_must_act(c)
                    == disburse_formats::reason_codes::WhoMustAct::Merchant
            });
            let switch_on = self
                .config
                .channel(&last.channel_id)
                .is_ok_and(|c| c.auto_retry_on_account_fix);
            if st.is_final_failure() && account_reason && switch_on {
                let p = self
                    .create_payout_in(
                        tx,
                        &mut order,
                        None,
                        as_of,
                        &Actor::system("account-fix"),
                        "payout.retried_after_account_fix",
                    )
                    .await?;
                created.push(match p {
                    crate::PayoutStart::Sent(p) => p.payout_no,
                    crate::PayoutStart::SettledByNetting { order_no, .. } => {
                        format!("{order_no} (settled by netting)")
                    }
                });
            }
        }
        Ok(created)
    }
}
