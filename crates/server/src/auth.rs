//! Who calls: a merchant with its API key, or an operator with the session token of a login.
//! Keys and tokens are 256 random bits, stored only as their SHA-256; operator passwords are
//! argon2 hashes. Credentials never appear in logs.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use disburse_core::correction::Role;
use disburse_core::{MerchantId, OperatorName};
use disburse_engine::{Actor, Engine, EngineError};
use disburse_store::{fmt_time, NewAuditEvent, OperatorRow};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::ApiError;
use crate::AppState;

pub const API_KEY_PREFIX: &str = "dsk_";
pub const SESSION_TOKEN_PREFIX: &str = "dso_";
/// How long an operator session lasts after login.
pub const SESSION_HOURS: i64 = 12;

/// 32 random bytes from the OS, as lower-case hex, after a prefix that says what it is.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Issues a new API key for a merchant and returns it; only its hash is kept, so this is the
/// one time anyone sees it. One audit event records that a key was issued (and its prefix).
pub async fn create_api_key(
    engine: &Engine,
    merchant: &MerchantId,
    as_of: DateTime<Utc>,
) -> disburse_engine::Result<String> {
    let key = random_token(API_KEY_PREFIX);
    let prefix: String = key.chars().take(API_KEY_PREFIX.len() + 8).collect();
    let at = fmt_time(as_of);
    let mut tx = engine.db().write().await?;
    if tx
        .fetch_optional::<disburse_store::MerchantRow>(
            "WHERE id = $1",
            &[disburse_store::Bind::Text(merchant.to_string())],
        )
        .await?
        .is_none()
    {
        return Err(EngineError::NotFound {
            what: "merchant",
            id: merchant.to_string(),
        });
    }
    sqlx::query(
        "INSERT INTO api_keys (key_hash, merchant_id, key_prefix, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(sha256_hex(&key))
    .bind(merchant.to_string())
    .bind(prefix.clone())
    .bind(at.clone())
    .execute(tx.conn())
    .await?;
    tx.audit(NewAuditEvent {
        at,
        actor: Actor::system("credentials").as_str().into(),
        action: "merchant.api_key_issued".into(),
        subject: format!("merchant:{merchant}"),
        reason: None,
        detail: json!({"key_prefix": prefix}),
    })
    .await?;
    tx.commit().await?;
    Ok(key)
}

async fn hash_password(password: String) -> Result<String, EngineError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| EngineError::invalid("password", e))
    })
    .await
    .map_err(|e| EngineError::invalid("password", format!("hashing failed: {e}")))?
}

/// Hashed passwords are checked off the async threads: argon2 is slow on purpose. Without a
/// stored hash (unknown name) a fixed one is checked, so both cases take as long.
async fn verify_password(password: String, phc: Option<String>) -> bool {
    static UNKNOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| {
            UNKNOWN
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    Argon2::default()
                        .hash_password(b"no such operator", &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let matches = PasswordHash::new(&phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        known && matches
    })
    .await
    .unwrap_or(false)
}

/// Sets (or replaces) the password an operator logs in with. The operator must exist (roles stay
/// in `operators`, added with `engine.add_operator`). One audit event, without the password.
pub async fn set_operator_password(
    engine: &Engine,
    name: &OperatorName,
    password: &str,
    as_of: DateTime<Utc>,
) -> disburse_engine::Result<()> {
    let length = password.chars().count();
    if !(12..=1024).contains(&length) {
        return Err(EngineError::invalid(
            "password",
            "must have 12 to 1024 characters",
        ));
    }
    let phc = hash_password(password.to_string()).await?;
    let at = fmt_time(as_of);
    let mut tx = engine.db().write().await?;
    let operator: Option<OperatorRow> = tx
        .fetch_optional(
            "WHERE name = $1",
            &[disburse_store::Bind::Text(name.to_string())],
        )
        .await?;
    if operator.is_none() {
        return Err(EngineError::NotFound {
            what: "operator",
            id: name.to_string(),
        });
    }
    sqlx::query("DELETE FROM operator_credentials WHERE name = $1")
        .bind(name.to_string())
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO operator_credentials (name, password_hash, updated_at) VALUES ($1, $2, $3)",
    )
    .bind(name.to_string())
    .bind(phc)
    .bind(at.clone())
    .execute(tx.conn())
    .await?;
    // A new password ends the operator's open sessions.
    sqlx::query("DELETE FROM operator_sessions WHERE name = $1")
        .bind(name.to_string())
        .execute(tx.conn())
        .await?;
    tx.audit(NewAuditEvent {
        at,
        actor: Actor::system("credentials").as_str().into(),
        action: "operator.password_set".into(),
        subject: format!("operator:{name}"),
        reason: None,
        detail: json!({}),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A session for an operator whose password matches; `None` otherwise (unknown name or wrong
/// password, not told apart).
pub async fn login(
    engine: &Engine,
    name: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>, Role)>, ApiError> {
    let row = sqlx::query(
        "SELECT c.password_hash, o.role FROM operator_credentials c \
         JOIN operators o ON o.name = c.name WHERE c.name = $1",
    )
    .bind(name.to_string())
    .fetch_optional(engine.db().pool())
    .await?;
    let (phc, role) = match &row {
        Some(r) => (
            Some(r.try_get::<String, _>("password_hash")?),
            Some(r.try_get::<String, _>("role")?),
        ),
        None => (None, None),
    };
    let ok = verify_password(password.to_string(), phc).await;
    let (true, Some(role)) = (ok, role) else {
        return Ok(None);
    };
    let role = Role::parse(&role).map_err(ApiError::internal)?;
    let token = random_token(SESSION_TOKEN_PREFIX);
    let expires = now + Duration::hours(SESSION_HOURS);
    sqlx::query("DELETE FROM operator_sessions WHERE expires_at < $1")
        .bind(fmt_time(now))
        .execute(engine.db().pool())
        .await?;
    sqlx::query(
        "INSERT INTO operator_sessions (token_hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(sha256_hex(&token))
    .bind(name.to_string())
    .bind(fmt_time(now))
    .bind(fmt_time(expires))
    .execute(engine.db().pool())
    .await?;
    Ok(Some((token, expires, role)))
}

pub async fn logout(engine: &Engine, token: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .execute(engine.db().pool())
        .await?;
    Ok(())
}

fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "send Authorization: Bearer <token>".into(),
        ));
    }
    Ok(token.trim().to_string())
}

/// The merchant an API key belongs to.
#[derive(Debug, Clone)]
pub struct MerchantCaller(pub MerchantId);

impl MerchantCaller {
    pub fn actor(&self) -> Actor {
        Actor::system(&format!("api:{}", self.0))
    }
}

/// A logged-in operator and the role it has now.
#[derive(Clone)]
pub struct OperatorCaller {
    pub name: OperatorName,
    pub role: Role,
    /// The session token, to end the session at logout; never printed.
    pub token: String,
}

impl std::fmt::Debug for OperatorCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorCaller")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl OperatorCaller {
    pub fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} is {}, who may not {what}",
                self.name,
                self.role.with_article()
            )))
        }
    }
}

/// The scope an Idempotency-Key belongs to.
#[derive(Debug, Clone)]
pub struct IdempotencyScope(pub String);

/// Resolves `Authorization: Bearer <api key>` to its merchant for every `/v1` route.
pub async fn merchant_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let merchant = match resolve_merchant(&state, &parts).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    parts
        .extensions
        .insert(IdempotencyScope(format!("merchant:{merchant}")));
    parts.extensions.insert(MerchantCaller(merchant));
    next.run(Request::from_parts(parts, body)).await
}

async fn resolve_merchant(state: &AppState, parts: &Parts) -> Result<MerchantId, ApiError> {
    let key = bearer(parts)?;
    let row =
        sqlx::query("SELECT merchant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(sha256_hex(&key))
            .fetch_optional(state.engine().db().pool())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
    let id: String = row.try_get("merchant_id")?;
    MerchantId::parse(&id).map_err(ApiError::internal)
}

/// Resolves `Authorization: Bearer <session token>` to its operator for `/ops/v1` routes.
pub async fn operator_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match resolve_operator(&state, &parts).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    parts
        .extensions
        .insert(IdempotencyScope(format!("operator:{}", caller.name)));
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

async fn resolve_operator(state: &AppState, parts: &Parts) -> Result<OperatorCaller, ApiError> {
    let token = bearer(parts)?;
    let row = sqlx::query(
        "SELECT s.name, o.role FROM operator_sessions s JOIN operators o ON o.name = s.name \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(sha256_hex(&token))
    .bind(fmt_time(Utc::now()))
    .fetch_optional(state.engine().db().pool())
    .await?
    .ok_or_else(|| ApiError::Unauthorized("unknown or expired session; log in again".into()))?;
    let name: String = row.try_get("name")?;
    let role: String = row.try_get("role")?;
    Ok(OperatorCaller {
        name: OperatorName::parse(&name).map_err(ApiError::internal)?,
        role: Role::parse(&role).map_err(ApiError::internal)?,
        token,
    })
}

impl<S: Send + Sync> FromRequestParts<S> for MerchantCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<MerchantCaller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <API key>".into()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OperatorCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<OperatorCaller>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Unauthorized("send Authorization: Bearer <session token>".into())
            })
    }
}
