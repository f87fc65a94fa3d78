//! Pages the merchant API reads: a merchant's orders and messages after a cursor, and what an
//! order's answer shows beside its payouts.

use crate::{Bind, Db, DiscrepancyRow, OrderRow, OutboxRow, Result};

/// Which of a merchant's orders a page holds: ids after `after`, optionally in one state and
/// made in `[created_from, created_to)` (stored timestamps), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct OrderPage {
    pub merchant_id: String,
    pub after: i64,
    pub state: Option<String>,
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub limit: i64,
}

impl Db {
    /// The merchant's orders of a page, by id.
    pub async fn orders_page_of_merchant(&self, page: &OrderPage) -> Result<Vec<OrderRow>> {
        let mut where_sql = "WHERE merchant_id = $1 AND id > $2".to_string();
        let mut binds = vec![Bind::Text(page.merchant_id.clone()), Bind::Int(page.after)];
        for (value, condition) in [
            (&page.state, "state ="),
            (&page.created_from, "created_at >="),
            (&page.created_to, "created_at <"),
        ] {
            if let Some(v) = value {
                binds.push(Bind::Text(v.clone()));
                where_sql.push_str(&format!(" AND {condition} ${}", binds.len()));
            }
        }
        where_sql.push_str(&format!(" ORDER BY id LIMIT {}", page.limit));
        self.fetch_all(&where_sql, &binds).await
    }

    /// The merchant's outbox messages with ids after `after`, by id, at most `limit`.
    pub async fn outbox_page_of_merchant(
        &self,
        merchant_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(&format!(
            "{} WHERE merchant_id = $1 AND id > $2 ORDER BY id LIMIT {limit}",
            OutboxRow::SELECT,
        ))
        .bind(merchant_id.to_string())
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| OutboxRow::from_row(r).map_err(crate::StoreError::from))
            .collect()
    }

    /// The discrepancies of an order, oldest first.
    pub async fn discrepancies_of_order(&self, order_id: i64) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all("WHERE order_id = $1 ORDER BY id", &[Bind::Int(order_id)])
            .await
    }
}
