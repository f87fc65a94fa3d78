//! Idempotency keys: a request's claim on its key, and the answer kept for its replays.
//!
//! Each function is one statement on the pool, outside any write transaction: the claim is taken
//! before the request runs and the answer stored after it, as the server's middleware does.

use sqlx::Row;

use crate::{Db, Result};

/// A key as stored: the request it was first used with and, once done, the sealed answer.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// `in_progress` or `done`.
    pub status: String,
    pub response_status: Option<i64>,
    pub response_type: Option<String>,
    pub response_location: Option<String>,
    pub response_body: Option<String>,
    pub updated_at: String,
}

/// The answer to keep for replays of a key.
#[derive(Debug, Clone)]
pub struct IdempotentAnswer<'a> {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    /// Sealed: it is a merchant's data.
    pub body: &'a str,
}

impl Db {
    /// Deletes every key made before `cutoff` (a stored timestamp); returns how many.
    pub async fn purge_idempotency_keys_before(&self, cutoff: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(cutoff.to_string())
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Deletes this key if it was made before `cutoff`: an expired key is a new key.
    pub async fn drop_idempotency_key_made_before(
        &self,
        scope: &str,
        key: &str,
        cutoff: &str,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND created_at < $3",
        )
        .bind(scope.to_string())
        .bind(key.to_string())
        .bind(cutoff.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims a key not yet used (in progress from `now`); false if it exists already.
    pub async fn claim_new_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: &str,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'in_progress', $4, $4) ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(scope.to_string())
        .bind(key.to_string())
        .bind(request_hash.to_string())
        .bind(now.to_string())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The key as stored, if it exists.
    pub async fn idempotency_key(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response_status, response_type, response_location, response_body, updated_at \
             FROM idempotency_keys WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope.to_string())
        .bind(key.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(IdempotencyRecord {
                request_hash: r.try_get("request_hash")?,
                status: r.try_get("status")?,
                response_status: r.try_get("response_status")?,
                response_type: r.try_get("response_type")?,
                response_location: r.try_get("response_location")?,
                response_body: r.try_get("response_body")?,
                updated_at: r.try_get("updated_at")?,
            }),
            None => None,
        })
    }

    /// Takes over a key still in progress whose holder went stale (last seen at `updated_at`);
    /// false if someone else moved it meanwhile.
    pub async fn take_over_stale_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        updated_at: &str,
        now: &str,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET updated_at = $1 \
             WHERE scope = $2 AND idem_key = $3 AND status = 'in_progress' AND updated_at = $4",
        )
        .bind(now.to_string())
        .bind(scope.to_string())
        .bind(key.to_string())
        .bind(updated_at.to_string())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Keeps the answer of a claimed key: it is done, and replays get this answer.
    pub async fn store_idempotent_answer(
        &self,
        scope: &str,
        key: &str,
        answer: IdempotentAnswer<'_>,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = 'done', response_status = $1, response_type = $2, \
             response_body = $3, updated_at = $4, response_location = $7 WHERE scope = $5 AND idem_key = $6",
        )
        .bind(i64::from(answer.status))
        .bind(answer.content_type)
        .bind(answer.body.to_string())
        .bind(now.to_string())
        .bind(scope.to_string())
        .bind(key.to_string())
        .bind(answer.location)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives up a key still in progress, so a retry with it does the work.
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status = 'in_progress'",
        )
        .bind(scope.to_string())
        .bind(key.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
