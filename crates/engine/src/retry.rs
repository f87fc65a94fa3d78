//! Paying an order again: by hand after its last payout failed, or by itself once the merchant
//! fixed the bank account a bank rejected.

use chrono::{DateTime, Utc};
use disburse_core::{MerchantId, OrderState, PayoutState};
use disburse_store::{OrderRow, PayoutRow, WriteTx};

use crate::error::refused;
use crate::orders::{order_state, payout_state};
use crate::{Actor, Engine, EngineError, OrderRef, Result};

impl Engine {
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
