//! Sessions: operators' bearer sessions (`/ops/v1`) and the console's cookie sessions on top of
//! them. Tokens are stored only as their SHA-256.

use sqlx::Row;

use crate::{Db, Result, WriteTx};

/// An operator session as stored (its token's hash, never the token).
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub token_hash: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: String,
}

/// A live console session: who, with what role, and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub name: String,
    pub role: String,
    pub csrf_token: String,
}

impl Db {
    /// Opens an operator session; ended ones are removed first, so the table holds live ones.
    pub async fn start_operator_session(
        &self,
        token_hash: &str,
        name: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE expires_at < $1")
            .bind(now.to_string())
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO operator_sessions (token_hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash.to_string())
        .bind(name.to_string())
        .bind(now.to_string())
        .bind(expires_at.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends the operator session of this token hash (none, if it is already gone).
    pub async fn end_operator_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The operator (name, role) of a session live at `now`.
    pub async fn operator_of_session(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT s.name, o.role FROM operator_sessions s JOIN operators o ON o.name = s.name \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash.to_string())
        .bind(now.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("name")?, r.try_get("role")?)),
            None => None,
        })
    }

    /// Sessions not expired at `as_of`, of one operator or of all, oldest first.
    pub async fn open_operator_sessions(
        &self,
        operator: Option<&str>,
        as_of: &str,
    ) -> Result<Vec<OperatorSession>> {
        let rows = sqlx::query(
            "SELECT token_hash, name, created_at, expires_at FROM operator_sessions \
             WHERE expires_at > $1 AND ($2 = '' OR name = $2) ORDER BY created_at, token_hash",
        )
        .bind(as_of.to_string())
        .bind(operator.unwrap_or_default().to_string())
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(OperatorSession {
                token_hash: r.try_get("token_hash")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            });
        }
        Ok(out)
    }

    /// Opens a console session; sessions past `now` or idle since before `idle_since` are
    /// removed first, so the table holds only live ones.
    pub async fn start_console_session(
        &self,
        token_hash: &str,
        name: &str,
        csrf_token: &str,
        now: &str,
        idle_since: &str,
        expires_at: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1 OR last_seen_at < $2")
            .bind(now.to_string())
            .bind(idle_since.to_string())
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, name, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash.to_string())
        .bind(name.to_string())
        .bind(csrf_token.to_string())
        .bind(now.to_string())
        .bind(now.to_string())
        .bind(expires_at.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The console session of this token hash if it is live at `now` (not expired, its operator
    /// session not ended, seen after `idle_since`); marks it seen at `now`.
    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        now: &str,
        idle_since: &str,
    ) -> Result<Option<ConsoleSession>> {
        let row = sqlx::query(
            "SELECT c.name, c.csrf_token, o.role FROM console_sessions c \
             JOIN operator_sessions s ON s.token_hash = c.token_hash \
             JOIN operators o ON o.name = c.name \
             WHERE c.token_hash = $1 AND c.expires_at > $2 AND s.expires_at > $2 AND c.last_seen_at > $3",
        )
        .bind(token_hash.to_string())
        .bind(now.to_string())
        .bind(idle_since.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now.to_string())
            .bind(token_hash.to_string())
            .execute(self.pool())
            .await?;
        Ok(Some(ConsoleSession {
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            csrf_token: row.try_get("csrf_token")?,
        }))
    }

    /// Ends the console session of this token hash.
    pub async fn end_console_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl WriteTx<'_> {
    /// Ends every session of an operator (a new password does); returns how many ended.
    pub async fn end_operator_sessions_of(&mut self, name: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM operator_sessions WHERE name = $1")
            .bind(name.to_string())
            .execute(self.conn())
            .await?
            .rows_affected())
    }

    /// Ends the session whose token hash starts with `id` (16 lower-case hex digits); returns
    /// how many ended.
    pub async fn end_operator_session_by_id(&mut self, id: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM operator_sessions WHERE SUBSTR(token_hash, 1, 16) = $1")
                .bind(id.to_string())
                .execute(self.conn())
                .await?
                .rows_affected(),
        )
    }
}
