//! Credentials: merchants' API keys, operators' password hashes and their login lockouts.
//!
//! Keys and password hashes are tracked rows (a change made with SQL alone is found by `audit
//! verify`); lockouts are operational state, written on the transaction's connection as is.

use sqlx::Row;

use crate::{ApiKeyRow, Bind, Db, OperatorCredentialRow, Result, WriteTx};

/// What a login checks about a name: its password hash, its role and whether it is locked out.
#[derive(Debug, Clone)]
pub struct LoginFacts {
    pub password_hash: String,
    pub role: String,
    pub locked: bool,
}

/// An operator's failed logins in a row, and when they locked it out (if they did).
#[derive(Debug, Clone)]
pub struct LoginFailures {
    pub failures: i64,
    pub locked_at: Option<String>,
}

impl Db {
    /// Every API key of a merchant, oldest first.
    pub async fn api_keys_of_merchant(&self, merchant_id: &str) -> Result<Vec<ApiKeyRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 ORDER BY created_at, key_prefix",
            &[Bind::Text(merchant_id.into())],
        )
        .await
    }

    /// The merchant whose key hashes to `key_hash`, if that key is neither revoked nor expired
    /// at `now` (a stored timestamp).
    pub async fn merchant_of_live_api_key(
        &self,
        key_hash: &str,
        now: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT merchant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(key_hash.to_string())
        .bind(now.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("merchant_id")?),
            None => None,
        })
    }

    /// The password hash, role and lockout of an operator with a password; `None` for a name
    /// without one.
    pub async fn login_facts(&self, name: &str) -> Result<Option<LoginFacts>> {
        let row = sqlx::query(
            "SELECT c.password_hash, o.role, l.locked_at FROM operator_credentials c \
             JOIN operators o ON o.name = c.name \
             LEFT JOIN operator_lockouts l ON l.name = c.name WHERE c.name = $1",
        )
        .bind(name.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(LoginFacts {
                password_hash: r.try_get("password_hash")?,
                role: r.try_get("role")?,
                locked: r.try_get::<Option<String>, _>("locked_at")?.is_some(),
            }),
            None => None,
        })
    }

    /// Forgets an operator's failed logins (after a successful one), outside any transaction.
    pub async fn forget_login_failures(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_lockouts WHERE name = $1")
            .bind(name.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl WriteTx<'_> {
    /// The operator's password hash row, read in the transaction.
    pub async fn operator_credential(
        &mut self,
        name: &str,
    ) -> Result<Option<OperatorCredentialRow>> {
        self.fetch_optional("WHERE name = $1", &[Bind::Text(name.into())])
            .await
    }

    /// The merchant's unrevoked keys with this prefix.
    pub async fn unrevoked_api_keys_with_prefix(
        &mut self,
        merchant_id: &str,
        prefix: &str,
    ) -> Result<Vec<ApiKeyRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 AND key_prefix = $2 AND revoked_at IS NULL",
            &[Bind::Text(merchant_id.into()), Bind::Text(prefix.into())],
        )
        .await
    }

    /// The prefixes of the merchant's keys live at `at` (a stored timestamp), oldest first.
    pub async fn live_api_key_prefixes(
        &mut self,
        merchant_id: &str,
        at: &str,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT key_prefix FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at",
        )
        .bind(merchant_id.to_string())
        .bind(at.to_string())
        .fetch_all(self.conn())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(r.try_get("key_prefix")?);
        }
        Ok(out)
    }

    /// The merchant's unrevoked keys still valid after `until` (never expiring, or later).
    pub async fn unrevoked_api_keys_valid_after(
        &mut self,
        merchant_id: &str,
        until: &str,
    ) -> Result<Vec<ApiKeyRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
            &[Bind::Text(merchant_id.into()), Bind::Text(until.into())],
        )
        .await
    }

    /// The operator's failed logins in a row, if it has any.
    pub async fn login_failures(&mut self, name: &str) -> Result<Option<LoginFailures>> {
        let row = sqlx::query("SELECT failures, locked_at FROM operator_lockouts WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(self.conn())
            .await?;
        Ok(match row {
            Some(r) => Some(LoginFailures {
                failures: r.try_get("failures")?,
                locked_at: r.try_get("locked_at")?,
            }),
            None => None,
        })
    }

    /// Forgets the operator's failed logins (and so lifts its lockout).
    pub async fn forget_login_failures(&mut self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_lockouts WHERE name = $1")
            .bind(name.to_string())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records `failures` failed logins in a row for the operator, locked out at `locked_at` if
    /// given; replaces what was recorded before.
    pub async fn set_login_failures(
        &mut self,
        name: &str,
        failures: i64,
        locked_at: Option<&str>,
        updated_at: &str,
    ) -> Result<()> {
        self.forget_login_failures(name).await?;
        sqlx::query(
            "INSERT INTO operator_lockouts (name, failures, locked_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name.to_string())
        .bind(failures)
        .bind(locked_at.map(str::to_string))
        .bind(updated_at.to_string())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
