//! The queue of what a person must look at: bank lines the machine could not apply, payouts past
//! their deadline, orders waiting for an account fix, amounts a bank paid differently.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use disburse_core::{BankResult, PayoutNo};
use disburse_store::{fmt_time, parse_time, EvidenceRow, ExceptionRow, OrderRow, PayoutRow};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::payouts::ResultSource;
use crate::views::MoneyView;
use crate::{Actor, ApplyOutcome, Engine, Result};

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionItem {
    /// `E12` for a stored exception; `payout:PO…` or `order:…` for a live condition.
    pub id: String,
    pub kind: String,
    pub age_hours: i64,
    pub amount: Option<MoneyView>,
    pub merchant: Option<String>,
    pub payout_no: Option<String>,
    pub order_no: Option<String>,
    pub reason: String,
    /// What a person should do about it.
    pub action: String,
    pub source: Option<String>,
}

/// Rows the queue reads per statement: it pages through payouts and stored exceptions by id, so
/// no single read holds a whole table.
const QUEUE_PAGE: usize = 500;

fn age_hours(since: &str, as_of: DateTime<Utc>) -> i64 {
    parse_time(since)
        .map(|t| (as_of - t).num_hours().max(0))
        .unwrap_or(0)
}

impl Engine {
    pub async fn exceptions(&self, as_of: DateTime<Utc>) -> Result<Vec<ExceptionItem>> {
        let mut items = Vec::new();
        // Expired payouts a page at a time (keyset by id), each page's orders in one set read.
        let mut after = 0;
        loop {
            let expired: Vec<PayoutRow> = self
                .db
                .payouts_in_state_after("expired", after, QUEUE_PAGE)
                .await?;
            let mut order_ids: Vec<i64> = expired.iter().map(|p| p.order_id).collect();
            order_ids.sort_unstable();
            order_ids.dedup();
            let order_nos: std::collections::HashMap<i64, String> = self
                .db
                .orders_by_ids(&order_ids)
                .await?
                .into_iter()
                .map(|o| (o.id, o.order_no))
                .collect();
            let next = (expired.len() == QUEUE_PAGE).then(|| expired[QUEUE_PAGE - 1].id);
            for p in expired {
                items.push(ExceptionItem {
                    id: format!("payout:{}", p.payout_no),
                    kind: "expired_payout".into(),
                    age_hours: age_hours(&p.updated_at, as_of),
                    amount: Some(MoneyView::new(p.amount_minor, &p.currency)),
                    merchant: Some(p.merchant_id.clone()),
                    order_no: order_nos.get(&p.order_id).cloned(),
                    reason: format!("no result from channel {} within its deadline; the money may still land", p.channel_id),
                    action: "ask the bank; record what it says with `payout result` (nothing is paid again meanwhile)".into(),
                    source: p.batch_id.map(|b| format!("batch {b}")),
                    payout_no: Some(p.payout_no),
                });
            }
            match next {
                Some(id) => after = id,
                None => break,
            }
        }
        let waiting: Vec<OrderRow> = self.db.orders_action_required().await?;
        for o in waiting {
            let payouts = self.db.payouts_of_order(o.id).await?;
            let Some(last) = payouts.last() else { continue };
            if last.state == "expired" {
                continue; // listed above
            }
            let merchant = self.db.merchant(&o.merchant_id).await?;
            let needs_account = merchant.is_some_and(|m| m.account_status == "needs_update");
            let who = disburse_formats::reason_codes::who_must_act(
                last.reason_code.as_deref().unwrap_or("NARR"),
            );
            use disburse_formats::reason_codes::WhoMustAct;
            let kind = match (needs_account, who) {
                (true, _) => "waiting_for_account_fix",
                // Our own account lacked the funds: treasury, not the merchant.
                (false, WhoMustAct::Treasury) => "our_funds_short",
                (false, WhoMustAct::Compliance) => "compliance_stop",
                _ => "payout_failed",
            };
            items.push(ExceptionItem {
                id: format!("order:{}/{}", o.merchant_id, o.order_no),
                kind: kind.into(),
                age_hours: age_hours(&o.updated_at, as_of),
                amount: Some(MoneyView::new(o.amount_minor, &o.currency)),
                merchant: Some(o.merchant_id.clone()),
                payout_no: Some(last.payout_no.clone()),
                order_no: Some(o.order_no.clone()),
                reason: format!(
                    "payout {} {} ({})",
                    last.payout_no,
                    last.state,
                    last.reason_code.as_deref().unwrap_or("no reason given")
                ),
                action: match kind {
                    "waiting_for_account_fix" => "the merchant must update its bank account; then `order retry` (or automatic on channels that allow it)".into(),
                    "our_funds_short" => format!("treasury: fund our account at channel {}, then pay again with `order retry`; the merchant was told the order is delayed", last.channel_id),
                    "compliance_stop" => "compliance must clear it before anyone pays again".into(),
                    _ => "pay again with `payout create`, or cancel the order".into(),
                },
                source: None,
            });
        }
        // Orders taken while the merchant's account was flagged: no payout yet, paid on the fix.
        let limbo: Vec<OrderRow> = self.db.open_orders_of_flagged_merchants().await?;
        for o in limbo {
            items.push(ExceptionItem {
                id: format!("order:{}/{}", o.merchant_id, o.order_no),
                kind: "waiting_for_account_fix".into(),
                age_hours: age_hours(&o.updated_at, as_of),
                amount: Some(MoneyView::new(o.amount_minor, &o.currency)),
                merchant: Some(o.merchant_id.clone()),
                payout_no: None,
                order_no: Some(o.order_no.clone()),
                reason: "accepted while the merchant's bank account is flagged; not paid yet"
                    .into(),
                action: "the merchant must update its bank account; the order is paid then".into(),
                source: None,
            });
        }
        for d in self.discrepancies(true).await? {
            let owed_to_us = d.direction != "underpaid";
            items.push(ExceptionItem {
                id: format!("D{}", d.id),
                kind: format!("discrepancy_{}", d.direction),
                age_hours: age_hours(&d.opened_at, as_of),
                amount: Some(MoneyView::new(d.amount_minor, &d.currency)),
                merchant: Some(d.merchant_id.clone()),
                order_no: self.db.order(d.order_id).await?.map(|o| o.order_no),
                reason: format!(
                    "{} on payout {} ({})",
                    d.direction, d.origin_payout_no, d.status
                ),
                action: match (owed_to_us, d.status.as_str()) {
                    (true, "write_off_proposed") => {
                        "an approver approves or refuses the write-off".into()
                    }
                    (true, _) => {
                        "the merchant owes it: record its refund, or propose a write-off".into()
                    }
                    (false, "topping_up") => format!(
                        "top-up payout {} is on its way",
                        d.topup_payout_no.as_deref().unwrap_or("?")
                    ),
                    (false, _) => "we owe it: top up now with `discrepancy top-up`".into(),
                },
                source: None,
                payout_no: Some(d.origin_payout_no),
            });
        }
        for c in self.corrections(Some("proposed")).await? {
            items.push(ExceptionItem {
                id: format!("C{}", c.id),
                kind: "correction_waiting_for_approval".into(),
                age_hours: age_hours(&c.proposed_at, as_of),
                amount: None,
                merchant: None,
                order_no: None,
                reason: format!("{} proposed by {}: {}", c.kind, c.proposed_by, c.reason),
                action: format!(
                    "an approver other than {} approves or rejects it",
                    c.proposed_by
                ),
                source: Some(c.evidence.clone()),
                payout_no: Some(c.payout_no),
            });
        }
        for b in self.unwritten_batches().await? {
            items.push(ExceptionItem {
                id: format!("batch:{}", b.batch_id),
                kind: "batch_file_not_written".into(),
                age_hours: age_hours(&b.created_at, as_of),
                amount: Some(MoneyView::new(b.control_sum_minor, &b.currency)),
                merchant: None,
                payout_no: None,
                order_no: None,
                reason: format!(
                    "batch {} ({} payouts) is committed and its payouts submitted, but its file {} never reached the disk",
                    b.batch_id, b.payout_count, b.file_name
                ),
                action: format!(
                    "write it again from the stored bytes: `disburse batch export {}` (the batch worker also does)",
                    b.batch_id
                ),
                source: Some(format!("batch {}", b.batch_id)),
            });
        }
        // Stored exceptions a page at a time (keyset by id).
        let mut after = 0;
        loop {
            let stored: Vec<ExceptionRow> =
                self.db.open_exceptions_after(after, QUEUE_PAGE).await?;
            let next = (stored.len() == QUEUE_PAGE).then(|| stored[QUEUE_PAGE - 1].id);
            // The files the exceptions came from, in one set read (a file no longer found names
            // itself as an empty string, as before).
            let mut file_ids: Vec<i64> = stored.iter().filter_map(|e| e.bank_file_id).collect();
            file_ids.sort_unstable();
            file_ids.dedup();
            let file_names: std::collections::HashMap<i64, String> = self
                .db
                .bank_files_by_ids(&file_ids)
                .await?
                .into_iter()
                .map(|f| (f.id, f.file_name))
                .collect();
            for e in stored {
                let source = match e.bank_file_id {
                    Some(id) => {
                        let name = file_names.get(&id).map(String::as_str).unwrap_or_default();
                        Some(format!("{name} line {}", e.line.unwrap_or(0)))
                    }
                    None => None,
                };
                items.push(ExceptionItem {
                    id: format!("E{}", e.id),
                    action: match e.kind.as_str() {
                        "unknown_payout" => {
                            "find the payout this bank line is about; it was not applied".into()
                        }
                        "conflict" => {
                            "the bank contradicts what is recorded: check with the bank, then correct"
                                .into()
                        }
                        "unreadable_line" => {
                            "the line could not be read: ask the bank for a corrected file".into()
                        }
                        "payee_verification" => {
                            "the beneficiary name does not match the account: check with the merchant"
                                .into()
                        }
                        "unknown_batch" => {
                            "the bank rejected a file we cannot identify: check with the bank".into()
                        }
                        "contradiction" => "the line is not about the payout as we sent it (currency, amount, channel or message): nothing was applied; ask the bank which payout it meant".into(),
                        "out_of_bounds" => "the amount is beyond the channel's bound and was not believed: check with the bank; record the truth with a correction".into(),
                        "unrecognised_status" => "a status we do not know (or none): read the bank's line, then record the result with `payout result`".into(),
                        "unexplained_debit" => "money left our account with no instruction of ours: ask the bank at once".into(),
                        "debit_for_failed_payout" => "the statement debits a payout we hold failed or returned: ask the bank; if it paid, correct the payout".into(),
                        "statement_break" | "statement_gap" => "a statement is missing or wrong: ask the bank for the missing statements, import them in order".into(),
                        "statement_unbalanced" | "statement_entry_currency" => "the statement does not add up as printed: ask the bank for a corrected statement".into(),
                        "batch_file_missing" => "the batch file is not on disk: write it again from the stored bytes with `batch export`".into(),
                        _ => "look at the bank line and decide".into(),
                    },
                    kind: e.kind,
                    age_hours: age_hours(&e.created_at, as_of),
                    amount: e
                        .amount_minor
                        .zip(e.currency.as_deref())
                        .map(|(a, c)| MoneyView::new(a, c)),
                    merchant: e.merchant_id,
                    payout_no: e.payout_no,
                    order_no: None,
                    reason: e.reason,
                    source,
                });
            }
            match next {
                Some(id) => after = id,
                None => break,
            }
        }
        Ok(items)
    }

    /// Records a bank result a person read (a notice, a phone call), with its evidence: text,
    /// and optionally a file stored by its SHA-256 in the same transaction.
    pub async fn record_manual_result(
        &self,
        payout_no: &PayoutNo,
        result: &BankResult,
        evidence_text: &str,
        evidence_file: Option<(&str, &[u8])>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<ApplyOutcome> {
        let mut tx = self.db.write().await?;
        let mut evidence = evidence_text.to_string();
        if let Some((name, bytes)) = evidence_file {
            let sha256 = hex::encode(Sha256::digest(bytes));
            let known: Option<EvidenceRow> = tx.evidence_by_sha256(&sha256).await?;
            if known.is_none() {
                tx.insert(&EvidenceRow {
                    sha256: sha256.clone(),
                    file_name: name.to_string(),
                    size_bytes: bytes.len() as i64,
                    content_b64: base64::engine::general_purpose::STANDARD.encode(bytes),
                    stored_at: fmt_time(as_of),
                    stored_by: actor.as_str().to_string(),
                })
                .await?;
            }
            evidence = format!("{evidence} [file {name} sha256:{sha256}]");
        }
        let outcome = self
            .apply_bank_result_in(
                &mut tx,
                payout_no,
                result,
                &ResultSource::Manual { evidence },
                as_of,
                actor,
            )
            .await?;
        if matches!(outcome, ApplyOutcome::Unchanged(_)) {
            // Nothing changed: the evidence is not kept either (no event would explain it).
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcome)
    }
}
