//! Corrections of a payout's record: proposed by one person with a reason and evidence,
//! approved (and applied as reversing and restating journals) or rejected by another.

use chrono::{DateTime, Utc};
use disburse_core::correction::{self, CorrectionKind, OtherPayouts};
use disburse_core::payout::Funding;
use disburse_core::{Currency, MerchantId, Money, OperatorName, PayoutNo, PayoutState};
use disburse_store::{fmt_time, CorrectionRow, NewAuditEvent, OrderRow, PayoutRow, WriteTx};
use serde::Serialize;
use serde_json::json;

use crate::discrepancy_tracking::{close_discrepancies_of, open_discrepancy};
use crate::error::{corrupt, refused};
use crate::orders::{order_state, payout_state};
use crate::payouts::facts;
use crate::{write_journal, Actor, Engine, EngineError, Result};

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

impl Engine {
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
}
