//! The counts `/readyz` and `/metrics` read: gauges of the books and of the webhook backlog.

use sqlx::Row;

use crate::{Db, Result};

impl Db {
    /// One trivial statement: the database answers (the readiness probe).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1 AS one")
            .fetch_one(self.pool())
            .await?;
        Ok(())
    }

    /// How many payouts are in each state, by state name.
    pub async fn payout_counts_by_state(&self) -> Result<Vec<(String, i64)>> {
        self.counts("SELECT state AS k, COUNT(*) AS n FROM payouts GROUP BY state ORDER BY state")
            .await
    }

    /// How many withdrawal orders are in each state, by state name.
    pub async fn order_counts_by_state(&self) -> Result<Vec<(String, i64)>> {
        self.counts("SELECT state AS k, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state")
            .await
    }

    /// Webhook deliveries not yet delivered, counted by status (pending, dead, unrouted).
    pub async fn undelivered_webhook_counts_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.counts(
            "SELECT status AS k, COUNT(*) AS n FROM webhook_deliveries \
             WHERE status <> 'delivered' GROUP BY status",
        )
        .await
    }

    /// Outbox messages neither delivered nor queued for a webhook yet.
    pub async fn outbox_not_queued_count(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox o WHERE o.delivered_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.outbox_id = o.id)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn counts(&self, sql: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((r.try_get("k")?, r.try_get("n")?));
        }
        Ok(out)
    }
}

impl Db {
    /// Events in the audit chain, in all (what `audit verify` reports it walked).
    pub async fn audit_event_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
    /// Audit events of one action.
    pub async fn count_audit_events(&self, action: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action = $1")
            .bind(action.to_string())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Audit events whose action ends in `suffix` (`_late`: every late answer applied).
    pub async fn count_audit_events_ending(&self, suffix: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action LIKE $1")
            .bind(format!("%{suffix}"))
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}
