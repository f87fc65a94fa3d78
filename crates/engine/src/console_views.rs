//! Small read models the operator console asks for: which order a payout belongs to, and which
//! orders carry an order number (merchants choose their numbers, so several may).

use disburse_store::PayoutRow;
use serde::Serialize;

use crate::{Engine, Result};

/// A payout's order, for search by payout number and for the currency of a correction's amount.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutOrder {
    pub payout_no: String,
    pub state: String,
    pub currency: String,
    pub merchant: String,
    pub order_no: String,
}

impl Engine {
    /// The order a payout belongs to; `None` when no payout has that number.
    pub async fn payout_order(&self, payout_no: &str) -> Result<Option<PayoutOrder>> {
        let Some(p): Option<PayoutRow> = self.db.payout_by_no(payout_no).await? else {
            return Ok(None);
        };
        let Some(order) = self.db.order(p.order_id).await? else {
            return Ok(None);
        };
        Ok(Some(PayoutOrder {
            payout_no: p.payout_no,
            state: p.state,
            currency: p.currency,
            merchant: order.merchant_id,
            order_no: order.order_no,
        }))
    }

    /// Every (merchant, order number) with this order number, in the order they were taken.
    pub async fn orders_numbered(&self, order_no: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .db
            .orders_by_no(order_no, None)
            .await?
            .into_iter()
            .map(|o| (o.merchant_id, o.order_no))
            .collect())
    }
}
