//! The life of credentials after they are issued: merchants' API keys are listed, revoked,
//! rotated (the old key stays valid for an overlap window, so a merchant can deploy the new one
//! without an outage) and may expire; operators' sessions are listed and revoked; an operator
//! locked out after repeated failed logins is unlocked by an admin. Each action writes one audit
//! event. Keys and tokens are never shown here: a key is named by its prefix (`dsk_` + 8 hex),
//! a session by the first 16 hex digits of its token's SHA-256.

use chrono::{DateTime, Duration, Utc};
use disburse_core::{MerchantId, OperatorName};
use disburse_engine::{Actor, Engine, EngineError, Result};
use disburse_store::{fmt_time, ApiKeyRow, NewAuditEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{random_token, sha256_hex, API_KEY_PREFIX};

/// Characters of a session id: a prefix of the token's SHA-256, enough to tell sessions apart.
pub const SESSION_ID_HEX: usize = 16;

/// An API key as operators see it: never the key, only its prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub key_prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// An operator session as admins see it: never the token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// The first 16 hex digits of the token's SHA-256; pass it to revoke the session.
    pub id: String,
    pub operator: String,
    pub created_at: String,
    pub expires_at: String,
}

async fn merchant_exists(
    tx: &mut disburse_store::WriteTx<'_>,
    merchant: &MerchantId,
) -> Result<()> {
    let found = tx.merchant(merchant.as_str()).await?;
    found.map(|_| ()).ok_or_else(|| EngineError::NotFound {
        what: "merchant",
        id: merchant.to_string(),
    })
}

fn key_prefix(key: &str) -> String {
    key.chars().take(API_KEY_PREFIX.len() + 8).collect()
}

/// Writes a new key row in `tx`; returns the key (shown once) and its prefix.
async fn insert_key(
    tx: &mut disburse_store::WriteTx<'_>,
    merchant: &MerchantId,
    expires_at: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
) -> Result<(String, String)> {
    let key = random_token(API_KEY_PREFIX);
    let prefix = key_prefix(&key);
    // Through the tracked row: its digest goes into the audit event, so a key added or changed
    // with SQL alone is found by `audit verify`.
    tx.insert(&ApiKeyRow {
        key_hash: sha256_hex(&key),
        merchant_id: merchant.to_string(),
        key_prefix: prefix.clone(),
        created_at: fmt_time(as_of),
        revoked_at: None,
        expires_at: expires_at.map(fmt_time),
    })
    .await?;
    Ok((key, prefix))
}

fn check_expiry(expires_at: Option<DateTime<Utc>>, as_of: DateTime<Utc>) -> Result<()> {
    match expires_at {
        Some(t) if t <= as_of => Err(EngineError::invalid(
            "expires",
            "the expiry must be in the future",
        )),
        _ => Ok(()),
    }
}

/// Issues a key that stops working at `expires_at` (never, when `None`). One audit event.
pub async fn issue_api_key(
    engine: &Engine,
    merchant: &MerchantId,
    expires_at: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<String> {
    check_expiry(expires_at, as_of)?;
    let mut tx = engine.db().write().await?;
    merchant_exists(&mut tx, merchant).await?;
    let (key, prefix) = insert_key(&mut tx, merchant, expires_at, as_of).await?;
    tx.audit(NewAuditEvent {
        at: fmt_time(as_of),
        actor: actor.as_str().into(),
        action: "merchant.api_key_issued".into(),
        subject: format!("merchant:{merchant}"),
        reason: None,
        detail: json!({"key_prefix": prefix, "expires_at": expires_at.map(fmt_time)}),
    })
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Every key of a merchant, oldest first.
pub async fn list_api_keys(engine: &Engine, merchant: &MerchantId) -> Result<Vec<ApiKeyInfo>> {
    let rows = engine.db().api_keys_of_merchant(merchant.as_str()).await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiKeyInfo {
            key_prefix: r.key_prefix,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
        .collect())
}

/// Revokes the merchant's key with this prefix at once. One audit event.
pub async fn revoke_api_key(
    engine: &Engine,
    merchant: &MerchantId,
    prefix: &str,
    reason: Option<&str>,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<()> {
    let mut tx = engine.db().write().await?;
    merchant_exists(&mut tx, merchant).await?;
    let live = tx
        .unrevoked_api_keys_with_prefix(merchant.as_str(), prefix)
        .await?;
    let revoked = live.len();
    for key in live {
        tx.update(&ApiKeyRow {
            revoked_at: Some(fmt_time(as_of)),
            ..key
        })
        .await?;
    }
    if revoked == 0 {
        return Err(EngineError::NotFound {
            what: "unrevoked API key",
            id: format!("{merchant} {prefix}"),
        });
    }
    tx.audit(NewAuditEvent {
        at: fmt_time(as_of),
        actor: actor.as_str().into(),
        action: "merchant.api_key_revoked".into(),
        subject: format!("merchant:{merchant}"),
        reason: reason.map(str::to_string),
        detail: json!({"key_prefix": prefix, "keys": revoked}),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The new key, shown once.
    pub api_key: String,
    pub key_prefix: String,
    /// The keys that stay valid until `old_valid_until`, then stop.
    pub old_key_prefixes: Vec<String>,
    pub old_valid_until: String,
}

/// Issues a new key and lets every other live key of the merchant expire after `overlap` (or
/// earlier, if it was to expire sooner). One audit event.
pub async fn rotate_api_key(
    engine: &Engine,
    merchant: &MerchantId,
    overlap: Duration,
    expires_at: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<Rotation> {
    if overlap < Duration::zero() {
        return Err(EngineError::invalid("overlap", "must not be negative"));
    }
    check_expiry(expires_at, as_of)?;
    let now = fmt_time(as_of);
    let until = fmt_time(as_of + overlap);
    let mut tx = engine.db().write().await?;
    merchant_exists(&mut tx, merchant).await?;
    let old = tx.live_api_key_prefixes(merchant.as_str(), &now).await?;
    let shortened = tx
        .unrevoked_api_keys_valid_after(merchant.as_str(), &until)
        .await?;
    for key in shortened {
        tx.update(&ApiKeyRow {
            expires_at: Some(until.clone()),
            ..key
        })
        .await?;
    }
    let (key, prefix) = insert_key(&mut tx, merchant, expires_at, as_of).await?;
    tx.audit(NewAuditEvent {
        at: now,
        actor: actor.as_str().into(),
        action: "merchant.api_key_rotated".into(),
        subject: format!("merchant:{merchant}"),
        reason: None,
        detail: json!({"key_prefix": prefix, "expires_at": expires_at.map(fmt_time),
            "old_key_prefixes": old, "old_valid_until": until}),
    })
    .await?;
    tx.commit().await?;
    Ok(Rotation {
        api_key: key,
        key_prefix: prefix,
        old_key_prefixes: old,
        old_valid_until: until,
    })
}

/// Open sessions (not expired at `as_of`), of one operator or of all, oldest first.
pub async fn list_sessions(
    engine: &Engine,
    operator: Option<&OperatorName>,
    as_of: DateTime<Utc>,
) -> Result<Vec<SessionInfo>> {
    let rows = engine
        .db()
        .open_operator_sessions(operator.map(|o| o.as_str()), &fmt_time(as_of))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            id: r.token_hash.chars().take(SESSION_ID_HEX).collect(),
            operator: r.name,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
        .collect())
}

/// Ends one session (by its id) or, with `Target::Operator`, every session of an operator.
/// Returns how many ended. One audit event.
pub async fn revoke_sessions(
    engine: &Engine,
    target: &SessionTarget,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<u64> {
    let mut tx = engine.db().write().await?;
    let (ended, subject) = match target {
        SessionTarget::Id(id) => {
            if id.len() != SESSION_ID_HEX || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EngineError::invalid(
                    "session",
                    format!("a session id is {SESSION_ID_HEX} hex digits"),
                ));
            }
            let id = id.to_ascii_lowercase();
            (
                tx.end_operator_session_by_id(&id).await?,
                format!("session:{id}"),
            )
        }
        SessionTarget::Operator(name) => (
            tx.end_operator_sessions_of(name.as_str()).await?,
            format!("operator:{name}"),
        ),
    };
    if ended == 0 {
        return Err(EngineError::NotFound {
            what: "session",
            id: subject,
        });
    }
    tx.audit(NewAuditEvent {
        at: fmt_time(as_of),
        actor: actor.as_str().into(),
        action: "operator.session_revoked".into(),
        subject,
        reason: None,
        detail: json!({"sessions": ended}),
    })
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Which sessions to end.
#[derive(Debug, Clone)]
pub enum SessionTarget {
    Id(String),
    Operator(OperatorName),
}

/// Lifts the lockout of an operator (and forgets its failed logins). One audit event.
pub async fn unlock_operator(
    engine: &Engine,
    name: &OperatorName,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<bool> {
    let mut tx = engine.db().write().await?;
    if tx.operator(name.as_str()).await?.is_none() {
        return Err(EngineError::NotFound {
            what: "operator",
            id: name.to_string(),
        });
    }
    let Some(before) = tx.login_failures(name.as_str()).await? else {
        return Ok(false);
    };
    let (failures, locked_at) = (before.failures, before.locked_at);
    tx.forget_login_failures(name.as_str()).await?;
    tx.audit(NewAuditEvent {
        at: fmt_time(as_of),
        actor: actor.as_str().into(),
        action: "operator.unlocked".into(),
        subject: format!("operator:{name}"),
        reason: None,
        detail: json!({"before": {"failures": failures, "locked_at": locked_at}}),
    })
    .await?;
    tx.commit().await?;
    Ok(locked_at.is_some())
}
