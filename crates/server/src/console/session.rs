//! Console sign-in: a browser session on top of an operator session.
//!
//! The password is checked by [`auth::login_guarded`] (the same check as `/ops/v1/login`), which
//! issues an operator session token with its absolute expiry. That token is the cookie's value; the
//! `console_sessions` row (migration 0009) adds the CSRF token of the session's forms and the time
//! it was last used, for the idle expiry. A new password ends the operator session and with it the
//! console session. The role is read from `operators` on every request, never from the cookie.

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Duration, Utc};
use disburse_core::correction::Role;
use disburse_core::OperatorName;
use disburse_engine::Engine;
use disburse_store::fmt_time;

use crate::auth::{self, random_token, sha256_hex};
use crate::error::ApiError;
use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "disburse_console";
/// The sign-in form's own CSRF cookie (double submit: there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "disburse_console_login";
/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";
/// A session not used for this long ends.
pub const IDLE_MINUTES: i64 = 30;
/// A session ends this long after sign-in however much it is used (the operator session's life).
pub const ABSOLUTE_HOURS: i64 = auth::SESSION_HOURS;

/// A signed-in operator, as the console knows it for one request.
#[derive(Clone)]
pub struct Signed {
    pub name: OperatorName,
    pub role: Role,
    /// The token this session's forms must carry.
    pub csrf: String,
    /// The cookie's token, to end the session; never printed.
    token: String,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Checks the password through [`auth::login_guarded`] (the `/ops/v1/login` check: throttled per
/// address and name, lockout after repeated failures, each failure audited) and opens a console
/// session; returns the cookie's token. A wrong name or password is `ApiError::Unauthorized`.
pub async fn sign_in(
    state: &AppState,
    name: &str,
    password: &str,
    address: Option<std::net::IpAddr>,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let session = auth::login_guarded(state, name, password, address).await?;
    // Ended sessions are removed as new ones start, so the table holds only live ones.
    state
        .engine()
        .db()
        .start_console_session(
            &sha256_hex(&session.token),
            session.operator.as_str(),
            &random_token(""),
            &fmt_time(now),
            &fmt_time(now - Duration::minutes(IDLE_MINUTES)),
            &fmt_time(
                session
                    .expires_at
                    .min(now + Duration::hours(ABSOLUTE_HOURS)),
            ),
        )
        .await?;
    Ok(session.token)
}

/// The session of a cookie's token, if it is live at `now` (neither idle too long nor past its
/// absolute expiry, and its operator session not ended); using it counts as activity.
pub async fn resolve(
    engine: &Engine,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Signed>, ApiError> {
    let session = engine
        .db()
        .touch_console_session(
            &sha256_hex(token),
            &fmt_time(now),
            &fmt_time(now - Duration::minutes(IDLE_MINUTES)),
        )
        .await?;
    let Some(session) = session else {
        return Ok(None);
    };
    Ok(Some(Signed {
        name: OperatorName::parse(&session.name).map_err(ApiError::internal)?,
        role: Role::parse(&session.role).map_err(ApiError::internal)?,
        csrf: session.csrf_token,
        token: token.to_string(),
    }))
}

/// Ends the session: the console row and the operator session behind it.
pub async fn sign_out(engine: &Engine, signed: &Signed) -> Result<(), ApiError> {
    engine
        .db()
        .end_console_session(&sha256_hex(&signed.token))
        .await?;
    auth::logout(engine, &signed.token).await
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Behind TLS (directly, or a proxy that says so) cookies are marked `Secure`.
pub fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: never readable by scripts, never sent by another site's request.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use disburse_store::testing::{TestBackend, TestDb};

    /// Idle and absolute expiry with the clock injected, on both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_end_when_idle_and_at_their_absolute_expiry() {
        for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
            let Some(db) = TestDb::fresh(backend, "console_session_expiry").await else {
                continue;
            };
            let state = AppState::new(std::sync::Arc::new(Engine::new(
                disburse_store::Db::open(&db.url).await.unwrap(),
                disburse_engine::Config::builtin(),
                disburse_core::crypto::AccountKey::generate(),
            )));
            let engine = state.engine();
            let ada = OperatorName::parse("ada").unwrap();
            let t0 = Utc::now();
            engine
                .add_operator(&ada, Role::Admin, t0, &ada)
                .await
                .unwrap();
            auth::set_operator_password(engine, &ada, "ada-correct-horse", t0)
                .await
                .unwrap();
            assert!(matches!(
                sign_in(&state, "ada", "wrong-password!", None, t0).await,
                Err(ApiError::Unauthorized(_))
            ));
            let token = sign_in(&state, "ada", "ada-correct-horse", None, t0)
                .await
                .expect("signed in");
            let minutes = |m: i64| t0 + Duration::minutes(m);
            // Used every 29 minutes it stays open...
            let mut at = 0;
            while at + 29 < ABSOLUTE_HOURS * 60 {
                at += 29;
                let s = resolve(engine, &token, minutes(at)).await.unwrap();
                assert_eq!(s.map(|s| s.role), Some(Role::Admin), "at minute {at}");
            }
            // ...until its absolute expiry, however much it is used.
            assert!(resolve(engine, &token, minutes(ABSOLUTE_HOURS * 60))
                .await
                .unwrap()
                .is_none());
            // Left alone for longer than the idle time, a new session ends.
            let idle = sign_in(&state, "ada", "ada-correct-horse", None, t0)
                .await
                .unwrap();
            assert!(resolve(engine, &idle, minutes(IDLE_MINUTES - 1))
                .await
                .unwrap()
                .is_some());
            assert!(resolve(engine, &idle, minutes(2 * IDLE_MINUTES))
                .await
                .unwrap()
                .is_none());
            // A new password ends every session of the operator.
            let third = sign_in(&state, "ada", "ada-correct-horse", None, t0)
                .await
                .unwrap();
            auth::set_operator_password(engine, &ada, "ada-other-horse-1", t0)
                .await
                .unwrap();
            assert!(resolve(engine, &third, minutes(1)).await.unwrap().is_none());
            engine.db().close().await;
        }
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; disburse_console_login=x; disburse_console=tok"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, LOGIN_CSRF_COOKIE).as_deref(), Some("x"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn tokens_compare_equal_only_when_equal_and_present() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie(COOKIE, "t", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
        assert!(!set_cookie(COOKIE, "t", 60, false).contains("Secure"));
    }
}
