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
use disburse_store::{fmt_time, NewAuditEvent};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

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
/// one time anyone sees it. It does not expire (see [`crate::credentials`] for expiring keys,
/// rotation and revocation). One audit event records that a key was issued (and its prefix).
pub async fn create_api_key(
    engine: &Engine,
    merchant: &MerchantId,
    as_of: DateTime<Utc>,
) -> disburse_engine::Result<String> {
    crate::credentials::issue_api_key(engine, merchant, None, as_of, &Actor::system("credentials"))
        .await
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
    if tx.operator(name.as_str()).await?.is_none() {
        return Err(EngineError::NotFound {
            what: "operator",
            id: name.to_string(),
        });
    }
    // Through the tracked row, so a password hash swapped with SQL alone is found by `audit verify`.
    let credential = disburse_store::OperatorCredentialRow {
        name: name.to_string(),
        password_hash: phc,
        updated_at: at.clone(),
    };
    match tx.operator_credential(name.as_str()).await? {
        Some(_) => tx.update(&credential).await?,
        None => tx.insert(&credential).await?,
    }
    // A new password ends the operator's open sessions.
    tx.end_operator_sessions_of(name.as_str()).await?;
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

/// How logins are throttled. Defaults: 5 failed logins per name and 20 attempts per client
/// address per minute, a lockout after 10 consecutive failures, as many password checks at once
/// as the machine has cores.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failed logins of one name within `window` before further attempts get 429.
    pub failures_per_name: u32,
    /// Login attempts (good or bad) from one client address within `window` before 429.
    pub attempts_per_address: u32,
    pub window: std::time::Duration,
    /// Consecutive failed logins after which the operator is locked out until an admin unlocks it.
    pub lockout_after: i64,
    /// Password hashes checked at once; more wait their turn, so logins cannot take every core.
    pub hashing_concurrency: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            failures_per_name: 5,
            attempts_per_address: 20,
            window: std::time::Duration::from_secs(60),
            lockout_after: 10,
            hashing_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// Fixed-window counters in memory, per key; bounded by pruning expired windows.
struct Windows<K> {
    map: std::sync::Mutex<std::collections::HashMap<K, (std::time::Instant, u32)>>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

/// Counters kept at most: beyond, expired windows are pruned; if none is expired, the oldest go.
const WINDOWS_MAX: usize = 10_000;

impl<K: std::hash::Hash + Eq + Clone> Windows<K> {
    /// The count in the current window and the seconds until it ends.
    fn get(&self, key: &K, window: std::time::Duration) -> (u32, u64) {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((start, n)) if start.elapsed() < window => {
                (*n, (window - start.elapsed()).as_secs() + 1)
            }
            _ => (0, 0),
        }
    }

    fn add(&self, key: &K, window: std::time::Duration) -> u32 {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= WINDOWS_MAX && !map.contains_key(key) {
            map.retain(|_, (start, _)| start.elapsed() < window);
            if map.len() >= WINDOWS_MAX {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (s, _))| *s)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        let slot = map
            .entry(key.clone())
            .or_insert((std::time::Instant::now(), 0));
        if slot.0.elapsed() >= window {
            *slot = (std::time::Instant::now(), 0);
        }
        slot.1 += 1;
        slot.1
    }

    fn clear(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The login throttle and the bound on concurrent password hashing, shared by the process.
pub struct LoginGuard {
    limits: LoginLimits,
    by_name: Windows<String>,
    by_address: Windows<std::net::IpAddr>,
    hashing: tokio::sync::Semaphore,
}

impl LoginGuard {
    pub fn new(limits: LoginLimits) -> LoginGuard {
        LoginGuard {
            hashing: tokio::sync::Semaphore::new(limits.hashing_concurrency.max(1)),
            limits,
            by_name: Windows::default(),
            by_address: Windows::default(),
        }
    }
}

/// A session handed out by a successful login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// Send as `Authorization: Bearer <token>`; shown once.
    pub token: String,
    pub operator: OperatorName,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

const REFUSED: &str = "unknown name or wrong password";

/// Logs an operator in, throttled: too many attempts from `address` or failures for `name`
/// within the window get 429 with `Retry-After` (before any password is checked); an operator
/// locked out after repeated failures gets 403 until an admin unlocks it; password checks wait
/// for one of a bounded number of slots; each failed login writes an audit event (naming the
/// operator only if it exists: a mistyped password in the name field stays out of the trail).
/// Unknown name and wrong password are not told apart (401).
pub async fn login_guarded(
    state: &AppState,
    name: &str,
    password: &str,
    address: Option<std::net::IpAddr>,
) -> Result<LoggedIn, ApiError> {
    crate::input::check_text("name", name)?;
    crate::input::check_text("password", password)?;
    let guard = state.login_guard();
    let limits = &guard.limits;
    if let Some(ip) = address {
        let attempts = guard.by_address.add(&ip, limits.window);
        if attempts > limits.attempts_per_address {
            let (_, wait) = guard.by_address.get(&ip, limits.window);
            return Err(ApiError::TooManyRequests {
                detail: format!("too many login attempts from this address; retry in {wait} s"),
                retry_after_secs: wait,
            });
        }
    }
    let name_key = name.to_string();
    let (failures, wait) = guard.by_name.get(&name_key, limits.window);
    if failures >= limits.failures_per_name {
        return Err(ApiError::TooManyRequests {
            detail: format!("too many failed logins for this name; retry in {wait} s"),
            retry_after_secs: wait,
        });
    }
    let engine = state.engine();
    let (phc, role, locked) = match engine.db().login_facts(name).await? {
        Some(f) => (Some(f.password_hash), Some(f.role), f.locked),
        None => (None, None, false),
    };
    if locked {
        return Err(ApiError::Forbidden(format!(
            "{name} is locked out after repeated failed logins; an admin must unlock it \
             (disburse operator unlock {name})"
        )));
    }
    let ok = {
        let _slot = guard
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        verify_password(password.to_string(), phc).await
    };
    let now = Utc::now();
    let (true, Some(role)) = (ok, role.clone()) else {
        guard.by_name.add(&name_key, limits.window);
        let known = role.is_some();
        record_failure(state, name, known, address, now).await?;
        tracing::info!(operator.known = known, "operator login refused");
        return Err(ApiError::Unauthorized(REFUSED.into()));
    };
    guard.by_name.clear(&name_key);
    let role = Role::parse(&role).map_err(ApiError::internal)?;
    let operator = OperatorName::parse(name).map_err(ApiError::internal)?;
    engine.db().forget_login_failures(name).await?;
    let token = random_token(SESSION_TOKEN_PREFIX);
    let expires = now + Duration::hours(SESSION_HOURS);
    engine
        .db()
        .start_operator_session(
            &sha256_hex(&token),
            name,
            &fmt_time(now),
            &fmt_time(expires),
        )
        .await?;
    tracing::info!(operator = %operator, "operator logged in");
    Ok(LoggedIn {
        token,
        operator,
        role,
        expires_at: expires,
    })
}

/// Counts a failed login of a known operator towards its lockout, and writes the audit event.
async fn record_failure(
    state: &AppState,
    name: &str,
    known: bool,
    address: Option<std::net::IpAddr>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let at = fmt_time(now);
    let mut tx = state.engine().db().write().await?;
    let mut failures = None;
    let mut locked = false;
    if known {
        let n = match tx.login_failures(name).await? {
            Some(before) => before.failures + 1,
            None => 1,
        };
        locked = n >= state.login_guard().limits.lockout_after;
        tx.set_login_failures(name, n, locked.then_some(at.as_str()), &at)
            .await?;
        failures = Some(n);
    }
    tx.audit(NewAuditEvent {
        at,
        actor: Actor::system("login").as_str().into(),
        action: if locked {
            "operator.locked_out".into()
        } else {
            "operator.login_failed".into()
        },
        subject: if known {
            format!("operator:{name}")
        } else {
            "operator:(unknown)".into()
        },
        reason: None,
        detail: json!({"address": address.map(|a| a.to_string()), "consecutive_failures": failures}),
    })
    .await?;
    tx.commit().await?;
    if locked {
        tracing::warn!(operator = %name, "operator locked out after repeated failed logins");
    }
    Ok(())
}

pub async fn logout(engine: &Engine, token: &str) -> Result<(), ApiError> {
    engine.db().end_operator_session(&sha256_hex(token)).await?;
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
    let id = state
        .engine()
        .db()
        .merchant_of_live_api_key(&sha256_hex(&key), &fmt_time(Utc::now()))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown, expired or revoked API key".into()))?;
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
    let (name, role) = state
        .engine()
        .db()
        .operator_of_session(&sha256_hex(&token), &fmt_time(Utc::now()))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown or expired session; log in again".into()))?;
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

/// The peer address of the connection, when the server was started with connect info (it is
/// by [`crate::serve`]); a proxy's forwarding headers are not trusted.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
