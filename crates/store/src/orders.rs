//! Withdrawal orders, as the engine's use cases read them.

use crate::rows::OrderRow;
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

/// Values per `IN (…)` list of a set read.
const IN_LIST_MAX: usize = 500;

impl Db {
    /// Every order in a state, oldest first (the demo's look at what waits for a person).
    pub async fn orders_in_state(&self, state: &str) -> Result<Vec<OrderRow>> {
        self.fetch_all(
            "WHERE state = $1 ORDER BY id",
            &[Bind::Text(state.to_string())],
        )
        .await
    }

    /// Every order, oldest first (the demo's summary, on its own small database).
    pub async fn all_orders(&self) -> Result<Vec<OrderRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }

    /// The orders with these ids (unknown ids are left out), by set reads.
    pub async fn orders_by_ids(&self, ids: &[i64]) -> Result<Vec<OrderRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for group in ids.chunks(IN_LIST_MAX) {
            let list: Vec<String> = (1..=group.len()).map(|i| format!("${i}")).collect();
            let binds: Vec<Bind> = group.iter().map(|id| Bind::Int(*id)).collect();
            out.extend(
                self.fetch_all::<OrderRow>(
                    &format!("WHERE id IN ({}) ORDER BY id", list.join(", ")),
                    &binds,
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Open orders (no payout started yet), oldest first, at most `limit` (capped at 10,000).
    pub async fn open_orders(&self, limit: usize) -> Result<Vec<OrderRow>> {
        self.fetch_all(
            &format!(
                "WHERE state = 'open' ORDER BY id LIMIT {}",
                limit.min(10_000)
            ),
            &[],
        )
        .await
    }

    /// Orders whose last payout failed and that wait for a person, oldest first.
    pub async fn orders_action_required(&self) -> Result<Vec<OrderRow>> {
        self.fetch_all("WHERE state = 'action_required' ORDER BY id", &[])
            .await
    }

    /// Orders taken while their merchant's account was flagged: open, without a payout yet.
    pub async fn open_orders_of_flagged_merchants(&self) -> Result<Vec<OrderRow>> {
        self.fetch_all(
            "WHERE state = 'open' AND merchant_id IN \
             (SELECT id FROM merchants WHERE account_status = 'needs_update') ORDER BY id",
            &[],
        )
        .await
    }

    /// Every order of a merchant, oldest first.
    pub async fn orders_of_merchant(&self, merchant_id: &str) -> Result<Vec<OrderRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 ORDER BY id",
            &[Bind::Text(merchant_id.to_string())],
        )
        .await
    }
}

impl WriteTx<'_> {
    /// Orders with this number (one per merchant at most), optionally of one merchant.
    pub async fn orders_by_no(
        &mut self,
        order_no: &str,
        merchant_id: Option<&str>,
    ) -> Result<Vec<OrderRow>> {
        match merchant_id {
            Some(m) => {
                self.fetch_all(
                    "WHERE order_no = $1 AND merchant_id = $2",
                    &[Bind::Text(order_no.to_string()), Bind::Text(m.to_string())],
                )
                .await
            }
            None => {
                self.fetch_all("WHERE order_no = $1", &[Bind::Text(order_no.to_string())])
                    .await
            }
        }
    }

    /// The merchant's order with this number, if it has one.
    pub async fn order_of_merchant(
        &mut self,
        merchant_id: &str,
        order_no: &str,
    ) -> Result<Option<OrderRow>> {
        self.fetch_optional(
            "WHERE merchant_id = $1 AND order_no = $2",
            &[
                Bind::Text(merchant_id.to_string()),
                Bind::Text(order_no.to_string()),
            ],
        )
        .await
    }

    /// The order, if it is still open (read under the write lock: another worker may have
    /// started it meanwhile).
    pub async fn order_if_open(&mut self, id: i64) -> Result<Option<OrderRow>> {
        self.fetch_optional("WHERE id = $1 AND state = 'open'", &[Bind::Int(id)])
            .await
    }

    /// A merchant's orders that may wait for its account to be fixed (their last payout
    /// failed, or none was started), oldest first.
    pub async fn orders_waiting_for_account_fix(
        &mut self,
        merchant_id: &str,
    ) -> Result<Vec<OrderRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 AND state IN ('action_required', 'open') ORDER BY id",
            &[Bind::Text(merchant_id.to_string())],
        )
        .await
    }
}
