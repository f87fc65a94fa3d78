//! Webhook state: each merchant's endpoint and the delivery queue the dispatcher works from.
//!
//! Claims are safe with several processes: a claim sets a lease in one statement; on PostgreSQL
//! the candidate rows are taken with `FOR UPDATE SKIP LOCKED`, on SQLite the statement holds the
//! write lock (`UPDATE … RETURNING`).

use sqlx::Row;

use crate::{Backend, Bind, Db, MerchantWebhookRow, Result, WriteTx};

/// Messages held behind a dead letter: pending, with an earlier message of the same order dead.
const HELD: &str = "d.status = 'pending' AND EXISTS (SELECT 1 FROM webhook_deliveries e \
    WHERE e.merchant_id = d.merchant_id AND e.order_key = d.order_key \
    AND e.outbox_id < d.outbox_id AND e.status = 'dead')";

/// Outbox messages read per round of [`Db::outbox_not_queued`].
pub const ENQUEUE_ROUND: i64 = 200;

/// One delivery as operators list it.
#[derive(Debug, Clone)]
pub struct DeliveryListing {
    pub outbox_id: i64,
    pub merchant_id: String,
    pub topic: String,
    pub order_key: Option<String>,
    /// As stored: `pending`, `delivered`, `dead` or `unrouted`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub delivered_at: Option<String>,
    pub updated_at: String,
    pub held_behind: i64,
    pub blocked_by: Option<i64>,
}

/// An outbox message not yet in the delivery queue.
#[derive(Debug, Clone)]
pub struct UnqueuedMessage {
    pub id: i64,
    pub merchant_id: String,
    pub payload: String,
}

/// A delivery claimed by a dispatcher, with what it needs to send it (the secret still sealed).
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub outbox_id: i64,
    pub attempts: i64,
    pub merchant_id: String,
    pub topic: String,
    pub payload: String,
    pub created_at: String,
    pub url: String,
    pub sealed_secret: String,
}

/// How a failed attempt leaves a delivery.
#[derive(Debug, Clone)]
pub struct FailedAttempt<'a> {
    pub dead: bool,
    pub attempts: i64,
    pub next_attempt_at: &'a str,
    pub last_status: Option<i64>,
    pub error: &'a str,
}

impl Db {
    /// A merchant's webhook URL and when it was set, if it has one.
    pub async fn merchant_webhook_url(
        &self,
        merchant_id: &str,
    ) -> Result<Option<(String, String)>> {
        let row =
            sqlx::query("SELECT url, updated_at FROM merchant_webhooks WHERE merchant_id = $1")
                .bind(merchant_id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("url")?, r.try_get("updated_at")?)),
            None => None,
        })
    }

    /// Deliveries in a listed status, oldest first, at most `limit`. `held` means pending behind
    /// a dead letter of the same order; `pending` means pending and not held.
    pub async fn webhook_deliveries_in_status(
        &self,
        status: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryListing>> {
        let filter = match status {
            "held" => HELD.to_string(),
            "pending" => format!("NOT ({HELD}) AND d.status = 'pending'"),
            _ => "d.status = $1".to_string(),
        };
        let sql = format!(
            "SELECT d.outbox_id, d.merchant_id, o.topic, d.order_key, d.status, d.attempts, \
             d.next_attempt_at, d.last_error, d.last_status, d.delivered_at, d.updated_at, \
             (SELECT COUNT(*) FROM webhook_deliveries h WHERE d.status = 'dead' \
                AND h.merchant_id = d.merchant_id AND h.order_key = d.order_key \
                AND h.outbox_id > d.outbox_id AND h.status = 'pending') AS held_behind, \
             (SELECT MAX(b.outbox_id) FROM webhook_deliveries b WHERE d.status = 'pending' \
                AND b.merchant_id = d.merchant_id AND b.order_key = d.order_key \
                AND b.outbox_id < d.outbox_id AND b.status = 'dead') AS blocked_by \
             FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id \
             WHERE {filter} ORDER BY d.outbox_id LIMIT {limit}"
        );
        let mut query = sqlx::query(&sql);
        if filter.contains("$1") {
            query = query.bind(status.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(DeliveryListing {
                outbox_id: r.try_get("outbox_id")?,
                merchant_id: r.try_get("merchant_id")?,
                topic: r.try_get("topic")?,
                order_key: r.try_get("order_key")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
                last_status: r.try_get("last_status")?,
                delivered_at: r.try_get("delivered_at")?,
                updated_at: r.try_get("updated_at")?,
                held_behind: r.try_get("held_behind")?,
                blocked_by: r.try_get("blocked_by")?,
            });
        }
        Ok(out)
    }

    /// How many messages wait behind dead letters, in all.
    pub async fn held_webhook_count(&self) -> Result<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM webhook_deliveries d WHERE {HELD}"
        ))
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// How many messages gave up after their last attempt.
    pub async fn dead_webhook_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'dead'")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Routes messages that waited for a webhook their merchant now has. Messages queued while
    /// the webhook was being set (a race the setter's own update cannot see on PostgreSQL) are
    /// routed here; cheap by (merchant_id, status).
    pub async fn route_unrouted_webhook_deliveries(&self) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending' WHERE status = 'unrouted' \
             AND merchant_id IN (SELECT merchant_id FROM merchant_webhooks)",
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Outbox messages neither delivered nor queued, in outbox order, at most [`ENQUEUE_ROUND`].
    pub async fn outbox_not_queued(&self) -> Result<Vec<UnqueuedMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT o.id, o.merchant_id, o.payload, o.created_at FROM outbox o \
             WHERE o.delivered_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.outbox_id = o.id) \
             ORDER BY o.id LIMIT {ENQUEUE_ROUND}"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(UnqueuedMessage {
                id: r.try_get("id")?,
                merchant_id: r.try_get("merchant_id")?,
                payload: r.try_get("payload")?,
            });
        }
        Ok(out)
    }

    /// Queues messages (outbox id, merchant, order key) for delivery in one statement: pending
    /// if the merchant has a webhook, else `unrouted` (not scanned by claims) until it sets one.
    /// Returns how many were queued (a message queued already is skipped).
    pub async fn queue_webhook_deliveries(
        &self,
        messages: &[(i64, String, Option<String>)],
        now: &str,
    ) -> Result<u64> {
        if messages.is_empty() {
            return Ok(0);
        }
        let mut sql = String::from(
            "INSERT INTO webhook_deliveries (outbox_id, merchant_id, order_key, status, attempts, next_attempt_at, updated_at) VALUES ",
        );
        for i in 0..messages.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            let b = i * 4;
            sql.push_str(&format!(
                "(${b1}, ${b2}, ${b3}, CASE WHEN EXISTS (SELECT 1 FROM merchant_webhooks w \
                 WHERE w.merchant_id = ${b2}) THEN 'pending' ELSE 'unrouted' END, 0, ${b4}, ${b4})",
                b1 = b + 1,
                b2 = b + 2,
                b3 = b + 3,
                b4 = b + 4,
            ));
        }
        sql.push_str(" ON CONFLICT (outbox_id) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (id, merchant, key) in messages {
            q = q
                .bind(*id)
                .bind(merchant.clone())
                .bind(key.clone())
                .bind(now.to_string());
        }
        Ok(q.execute(self.pool()).await?.rows_affected())
    }

    /// Leases up to `limit` deliveries due at `now` to `owner` until `lease_until`: pending, not
    /// leased, of a merchant with a webhook, and with every earlier message of the same order
    /// delivered. Returns them with what sending needs.
    pub async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
             WHERE outbox_id IN ( \
               SELECT d.outbox_id FROM webhook_deliveries d \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                 AND (d.lease_until IS NULL OR d.lease_until < $3) \
                 AND EXISTS (SELECT 1 FROM merchant_webhooks w WHERE w.merchant_id = d.merchant_id) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                   WHERE e.merchant_id = d.merchant_id AND e.order_key = d.order_key \
                   AND e.outbox_id < d.outbox_id AND e.status <> 'delivered') \
               ORDER BY d.outbox_id LIMIT {limit} {lock}) \
             RETURNING outbox_id"
        );
        let claimed = sqlx::query(&sql)
            .bind(owner.to_string())
            .bind(lease_until.to_string())
            .bind(now.to_string())
            .fetch_all(self.pool())
            .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT d.outbox_id, d.attempts, o.merchant_id, o.topic, o.payload, o.created_at, w.url, w.secret \
             FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id \
             JOIN merchant_webhooks w ON w.merchant_id = d.merchant_id \
             WHERE d.lease_owner = $1 AND d.lease_until = $2 AND d.status = 'pending' ORDER BY d.outbox_id",
        )
        .bind(owner.to_string())
        .bind(lease_until.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(ClaimedDelivery {
                outbox_id: r.try_get("outbox_id")?,
                attempts: r.try_get("attempts")?,
                merchant_id: r.try_get("merchant_id")?,
                topic: r.try_get("topic")?,
                payload: r.try_get("payload")?,
                created_at: r.try_get("created_at")?,
                url: r.try_get("url")?,
                sealed_secret: r.try_get("secret")?,
            });
        }
        Ok(out)
    }

    /// Records a delivered message (its delivery and its outbox row) in one transaction.
    pub async fn record_webhook_delivered(
        &self,
        outbox_id: i64,
        attempts: i64,
        http_status: i64,
        at: &str,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = $1, delivered_at = $2, \
             lease_owner = NULL, lease_until = NULL, last_status = $3, last_error = NULL, updated_at = $2 \
             WHERE outbox_id = $4",
        )
        .bind(attempts)
        .bind(at.to_string())
        .bind(http_status)
        .bind(outbox_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET delivered_at = COALESCE(delivered_at, $1), attempts = attempts + 1 WHERE id = $2",
        )
        .bind(at.to_string())
        .bind(outbox_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt of `owner`'s claim (retried later, or dead) in one transaction.
    pub async fn record_webhook_failed(
        &self,
        outbox_id: i64,
        owner: &str,
        failed: FailedAttempt<'_>,
        at: &str,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
             lease_owner = NULL, lease_until = NULL, last_status = $4, last_error = $5, updated_at = $6 \
             WHERE outbox_id = $7 AND lease_owner = $8",
        )
        .bind(if failed.dead { "dead" } else { "pending" })
        .bind(failed.attempts)
        .bind(failed.next_attempt_at.to_string())
        .bind(failed.last_status)
        .bind(failed.error.to_string())
        .bind(at.to_string())
        .bind(outbox_id)
        .bind(owner.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1")
            .bind(outbox_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl WriteTx<'_> {
    /// The merchant's webhook row (URL and sealed secret), read in the transaction.
    pub async fn merchant_webhook(
        &mut self,
        merchant_id: &str,
    ) -> Result<Option<MerchantWebhookRow>> {
        self.fetch_optional("WHERE merchant_id = $1", &[Bind::Text(merchant_id.into())])
            .await
    }

    /// Sends the merchant's messages that waited for a webhook out now (due at `at`).
    pub async fn route_unrouted_deliveries_of(
        &mut self,
        merchant_id: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1 \
             WHERE merchant_id = $2 AND status = 'unrouted'",
        )
        .bind(at.to_string())
        .bind(merchant_id.to_string())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A delivery's status and attempts so far, if the message is queued.
    pub async fn webhook_delivery_state(
        &mut self,
        outbox_id: i64,
    ) -> Result<Option<(String, i64)>> {
        let row =
            sqlx::query("SELECT status, attempts FROM webhook_deliveries WHERE outbox_id = $1")
                .bind(outbox_id)
                .fetch_optional(self.conn())
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("status")?, r.try_get("attempts")?)),
            None => None,
        })
    }

    /// Puts a delivery back in the queue, due at `at`, with a fresh series of attempts.
    pub async fn requeue_webhook_delivery(&mut self, outbox_id: i64, at: &str) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, \
             lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE outbox_id = $2",
        )
        .bind(at.to_string())
        .bind(outbox_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
