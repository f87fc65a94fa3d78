//! What people look at: one order with every payout, journal and audit event; one merchant.
//! Account numbers appear only as their last four digits.

use disburse_store::{AuditEventRow, MerchantRow, OrderRow, OutboxRow, PayoutRow};
use serde::Serialize;

use crate::{Engine, EngineError, OrderRef, Result};

#[derive(Debug, Clone, Serialize)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
    pub text: String,
}

impl MoneyView {
    pub fn new(amount_minor: i64, currency: &str) -> MoneyView {
        let text = disburse_core::Currency::parse(currency)
            .map(|c| disburse_core::Money::from_minor(amount_minor, c).to_string())
            .unwrap_or_else(|_| format!("{amount_minor} (minor) {currency}"));
        MoneyView {
            amount_minor,
            currency: currency.to_string(),
            text,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PayoutView {
    pub payout_no: String,
    pub state: String,
    pub channel: String,
    pub amount: MoneyView,
    pub paid_amount: Option<MoneyView>,
    pub bank_account_last4: String,
    pub bank_reference: Option<String>,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    pub value_date: Option<String>,
    pub batch_id: Option<i64>,
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct JournalLineView {
    pub account: String,
    pub amount: MoneyView,
}

#[derive(Debug, Serialize)]
pub struct JournalView {
    pub id: i64,
    pub kind: String,
    pub payout_no: Option<String>,
    pub created_at: String,
    pub balanced: bool,
    pub lines: Vec<JournalLineView>,
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
}

impl From<AuditEventRow> for AuditView {
    fn from(e: AuditEventRow) -> Self {
        AuditView {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            reason: e.reason,
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct MessageView {
    pub topic: String,
    pub payload: serde_json::Value,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_no: String,
    pub merchant: String,
    pub state: String,
    pub amount: MoneyView,
    pub created_at: String,
    pub updated_at: String,
    pub payouts: Vec<PayoutView>,
    pub journals: Vec<JournalView>,
    pub audit_events: Vec<AuditView>,
    pub messages: Vec<MessageView>,
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub account: String,
    pub amount: MoneyView,
}

#[derive(Debug, Serialize)]
pub struct MerchantView {
    pub id: String,
    pub name: String,
    pub account_status: String,
    pub bank_account: Option<serde_json::Value>,
    pub balances: Vec<BalanceView>,
    pub orders: Vec<(String, String, MoneyView)>,
}

impl Engine {
    pub async fn order_view(&self, r: &OrderRef) -> Result<OrderView> {
        let db = self.db();
        let mut orders = db
            .orders_by_no(r.order_no.as_str(), r.merchant.as_ref().map(|m| m.as_str()))
            .await?;
        let order: OrderRow = match orders.len() {
            0 => {
                return Err(EngineError::NotFound {
                    what: "order",
                    id: r.order_no.to_string(),
                })
            }
            1 => orders.remove(0),
            _ => {
                return Err(EngineError::invalid(
                    "merchant",
                    "several merchants use this order number; say which with --merchant",
                ))
            }
        };
        let payouts: Vec<PayoutRow> = db.payouts_of_order(order.id).await?;
        let mut last4 = std::collections::HashMap::new();
        for p in &payouts {
            if let std::collections::hash_map::Entry::Vacant(e) = last4.entry(p.bank_account_id) {
                let a = db.bank_account(p.bank_account_id).await?;
                e.insert(a.map(|a| a.last4).unwrap_or_default());
            }
        }
        let payout_nos: std::collections::HashMap<i64, String> = payouts
            .iter()
            .map(|p| (p.id, p.payout_no.clone()))
            .collect();
        let journals = db
            .journals_of_order(order.id)
            .await?
            .into_iter()
            .map(|(j, lines)| {
                let balanced = disburse_core::ledger::check_balanced(
                    "j",
                    lines.iter().filter_map(|l| {
                        disburse_core::Currency::parse(&l.currency)
                            .ok()
                            .map(|c| disburse_core::Money::from_minor(l.amount_minor, c))
                    }),
                )
                .is_ok();
                JournalView {
                    id: j.id,
                    kind: j.kind,
                    payout_no: j.payout_id.and_then(|id| payout_nos.get(&id).cloned()),
                    created_at: j.created_at,
                    balanced,
                    lines: lines
                        .into_iter()
                        .map(|l| JournalLineView {
                            account: l.account,
                            amount: MoneyView::new(l.amount_minor, &l.currency),
                        })
                        .collect(),
                }
            })
            .collect();
        let subject = format!("order:{}/{}", order.merchant_id, order.order_no);
        let mut subjects = vec![subject];
        subjects.extend(payouts.iter().map(|p| format!("payout:{}", p.payout_no)));
        let audit_events = db
            .audit_events_of(&subjects)
            .await?
            .into_iter()
            .map(AuditView::from)
            .collect();
        let messages = db
            .outbox_of_merchant(&order.merchant_id)
            .await?
            .into_iter()
            .filter(|m: &OutboxRow| {
                serde_json::from_str::<serde_json::Value>(&m.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("order_no")
                            .and_then(|o| o.as_str())
                            .map(|o| o == order.order_no)
                    })
                    .unwrap_or(false)
            })
            .map(|m| MessageView {
                topic: m.topic,
                payload: serde_json::from_str(&m.payload).unwrap_or_default(),
                created_at: m.created_at,
            })
            .collect();
        Ok(OrderView {
            amount: MoneyView::new(order.amount_minor, &order.currency),
            payouts: payouts
                .into_iter()
                .map(|p| PayoutView {
                    bank_account_last4: last4.get(&p.bank_account_id).cloned().unwrap_or_default(),
                    amount: MoneyView::new(p.amount_minor, &p.currency),
                    paid_amount: p.paid_amount_minor.map(|m| MoneyView::new(m, &p.currency)),
                    payout_no: p.payout_no,
                    state: p.state,
                    channel: p.channel_id,
                    bank_reference: p.bank_reference,
                    reason_code: p.reason_code,
                    reason_text: p.reason_text,
                    value_date: p.value_date,
                    batch_id: p.batch_id,
                    created_at: p.created_at,
                    submitted_at: p.submitted_at,
                    updated_at: p.updated_at,
                })
                .collect(),
            order_no: order.order_no,
            merchant: order.merchant_id,
            state: order.state,
            created_at: order.created_at,
            updated_at: order.updated_at,
            journals,
            audit_events,
            messages,
        })
    }

    pub async fn merchant_view(&self, id: &disburse_core::MerchantId) -> Result<MerchantView> {
        let db = self.db();
        let m: MerchantRow =
            db.merchant(id.as_str())
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "merchant",
                    id: id.to_string(),
                })?;
        let account = db.current_bank_account(id.as_str()).await?.map(|a| {
            serde_json::json!({
                "version": a.version, "holder": a.holder_name, "kind": a.kind,
                "country": a.country, "last4": a.last4, "masked": format!("****{}", a.last4), "bic": a.bic,
            })
        });
        let prefix = format!("merchant:{id}:");
        let balances = db
            .balances()
            .await?
            .into_iter()
            .filter(|(a, _, _)| a.starts_with(&prefix))
            .map(|(account, currency, total)| BalanceView {
                amount: MoneyView::new(natural_sign(&account, total), &currency),
                account,
            })
            .collect();
        let orders: Vec<OrderRow> = db.orders_of_merchant(id.as_str()).await?;
        Ok(MerchantView {
            id: m.id,
            name: m.name,
            account_status: m.account_status,
            bank_account: account,
            balances,
            orders: orders
                .into_iter()
                .map(|o| {
                    (
                        o.order_no,
                        o.state,
                        MoneyView::new(o.amount_minor, &o.currency),
                    )
                })
                .collect(),
        })
    }
}

/// Balances as people read them: what we owe (liabilities) and what we hold (assets), both
/// positive in the normal case. Stored sums are debit-positive.
pub fn natural_sign(account: &str, debit_positive: i64) -> i64 {
    match disburse_core::LedgerAccount::parse(account).map(|a| a.kind()) {
        Ok(disburse_core::ledger::AccountKind::Liability) => -debit_positive,
        _ => debit_positive,
    }
}
