//! Payouts, as the engine's use cases read them (the importer's per-line lookups are in
//! `tx.rs`, beside the transaction's rows).

use crate::rows::PayoutRow;
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

/// A page of the payouts in one state, by id after a cursor (keyset paging on the index
/// `payouts_by_state` of migration 0019); the page size is appended as `LIMIT n`.
pub(crate) const PAYOUTS_IN_STATE_AFTER: &str = "WHERE state = $1 AND id > $2 ORDER BY id";

impl Db {
    /// Every payout, oldest first (the demo's summary, on its own small database).
    pub async fn all_payouts(&self) -> Result<Vec<PayoutRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }

    /// The payouts of a channel in a state, oldest first; at most `limit` when given.
    pub async fn channel_payouts_in_state(
        &self,
        channel_id: &str,
        state: &str,
        limit: Option<usize>,
    ) -> Result<Vec<PayoutRow>> {
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        self.fetch_all(
            &format!("WHERE channel_id = $1 AND state = $2 ORDER BY id{limit}"),
            &[
                Bind::Text(channel_id.to_string()),
                Bind::Text(state.to_string()),
            ],
        )
        .await
    }

    /// Every payout of a batch.
    pub async fn payouts_of_batch(&self, batch_id: i64) -> Result<Vec<PayoutRow>> {
        self.fetch_all("WHERE batch_id = $1 ORDER BY id", &[Bind::Int(batch_id)])
            .await
    }

    /// Up to `limit` payouts in a state with an id above `after_id`, oldest first: page through
    /// them all by passing the last id of a page as the next `after_id` (0 to start).
    pub async fn payouts_in_state_after(
        &self,
        state: &str,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            &format!("{PAYOUTS_IN_STATE_AFTER} LIMIT {limit}"),
            &[Bind::Text(state.to_string()), Bind::Int(after_id)],
        )
        .await
    }
}

impl WriteTx<'_> {
    /// Every payout of an order, oldest first.
    pub async fn payouts_of_order(&mut self, order_id: i64) -> Result<Vec<PayoutRow>> {
        self.fetch_all("WHERE order_id = $1 ORDER BY id", &[Bind::Int(order_id)])
            .await
    }

    /// An order's live payouts (pending, submitted or expired: one at most).
    pub async fn live_payouts_of_order(&mut self, order_id: i64) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            "WHERE order_id = $1 AND state IN ('pending', 'submitted', 'expired')",
            &[Bind::Int(order_id)],
        )
        .await
    }

    /// The oldest payout waiting for a batch on a channel.
    pub async fn first_pending_payout_of_channel(
        &mut self,
        channel_id: &str,
    ) -> Result<Option<PayoutRow>> {
        self.fetch_optional(
            "WHERE channel_id = $1 AND state = 'pending' ORDER BY id LIMIT 1",
            &[Bind::Text(channel_id.to_string())],
        )
        .await
    }

    /// Payouts waiting for a batch on a channel in one currency, oldest first, at most `limit`.
    pub async fn pending_payouts_of_channel(
        &mut self,
        channel_id: &str,
        currency: &str,
        limit: usize,
    ) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            &format!(
                "WHERE channel_id = $1 AND state = 'pending' AND currency = $2 ORDER BY id LIMIT {limit}"
            ),
            &[
                Bind::Text(channel_id.to_string()),
                Bind::Text(currency.to_string()),
            ],
        )
        .await
    }

    /// A batch's payouts still waiting for a result (submitted or expired), in order.
    pub async fn waiting_payouts_of_batch(&mut self, batch_id: i64) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            "WHERE batch_id = $1 AND state IN ('submitted', 'expired') ORDER BY id",
            &[Bind::Int(batch_id)],
        )
        .await
    }

    /// [`Db::payouts_in_state_after`] inside the transaction (its own changes flushed first).
    pub async fn payouts_in_state_after(
        &mut self,
        state: &str,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            &format!("{PAYOUTS_IN_STATE_AFTER} LIMIT {limit}"),
            &[Bind::Text(state.to_string()), Bind::Int(after_id)],
        )
        .await
    }
}
