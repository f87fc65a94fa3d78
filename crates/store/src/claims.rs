//! Import claims: a lease on a bank file while one importer applies it.
//!
//! Two importers (two `results import` commands, two `serve --workers-only`) must never apply the
//! same file at once. The first takes the claim; a second learns who holds it and until when; a
//! holder that crashed stops renewing, its claim expires, and the next importer takes it over and
//! resumes where the file's progress says. Leases run on the wall clock, not on the business
//! time (`--as-of`): they are about processes that are alive now.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{fmt_time, Db, Result};

/// What asking for a claim gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours now; `took_over` names the holder whose claim had expired, if any.
    Taken { took_over: Option<String> },
    /// Someone else's, valid until `expires_at`.
    HeldBy { holder: String, expires_at: String },
}

impl Db {
    /// Claims the file `sha256` for `holder` until `until`.
    pub async fn claim_import(
        &self,
        sha256: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim> {
        let (now, until) = (fmt_time(now), fmt_time(until));
        // Each round either settles or saw another importer move first; a few rounds suffice.
        for _ in 0..4 {
            let inserted = sqlx::query(
                "INSERT INTO import_claims (sha256, holder, claimed_at, expires_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256.to_string())
            .bind(holder.to_string())
            .bind(now.clone())
            .bind(until.clone())
            .execute(self.pool())
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(Claim::Taken { took_over: None });
            }
            let Some(current) =
                sqlx::query("SELECT holder, expires_at FROM import_claims WHERE sha256 = $1")
                    .bind(sha256.to_string())
                    .fetch_optional(self.pool())
                    .await?
            else {
                continue; // released meanwhile
            };
            let (old_holder, expires_at): (String, String) =
                (current.try_get("holder")?, current.try_get("expires_at")?);
            if old_holder != holder && expires_at >= now {
                return Ok(Claim::HeldBy {
                    holder: old_holder,
                    expires_at,
                });
            }
            // Expired (or already ours): take it over, unless another importer just did.
            let taken = sqlx::query(
                "UPDATE import_claims SET holder = $2, claimed_at = $3, expires_at = $4 \
                 WHERE sha256 = $1 AND holder = $5 AND expires_at = $6",
            )
            .bind(sha256.to_string())
            .bind(holder.to_string())
            .bind(now.clone())
            .bind(until.clone())
            .bind(old_holder.clone())
            .bind(expires_at)
            .execute(self.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                return Ok(Claim::Taken {
                    took_over: (old_holder != holder).then_some(old_holder),
                });
            }
        }
        Err(crate::StoreError::Corrupt(format!(
            "the import claim on {sha256} kept changing hands; try again"
        )))
    }

    /// Takes over `from`'s claim (known dead), if it is still exactly as read.
    pub async fn take_over_import_claim(
        &self,
        sha256: &str,
        from: &str,
        from_expires_at: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE import_claims SET holder = $2, claimed_at = $3, expires_at = $4 \
             WHERE sha256 = $1 AND holder = $5 AND expires_at = $6",
        )
        .bind(sha256.to_string())
        .bind(holder.to_string())
        .bind(fmt_time(now))
        .bind(fmt_time(until))
        .bind(from.to_string())
        .bind(from_expires_at.to_string())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Extends our claim; false if it is no longer ours (it expired and was taken over).
    pub async fn renew_import_claim(
        &self,
        sha256: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE import_claims SET expires_at = $3 WHERE sha256 = $1 AND holder = $2",
        )
        .bind(sha256.to_string())
        .bind(holder.to_string())
        .bind(fmt_time(until))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives the claim up (the import finished or failed cleanly).
    pub async fn release_import_claim(&self, sha256: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM import_claims WHERE sha256 = $1 AND holder = $2")
            .bind(sha256.to_string())
            .bind(holder.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
