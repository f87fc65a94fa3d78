//! `Idempotency-Key` on POST and PUT: the first request with a key claims it by inserting a row
//! under a unique key; its answer is stored and given again — the same status and the same
//! body — to every later request with that key and the same body. A request that finds the key
//! claimed but not answered waits for the answer. The same key with another body is 422.
//!
//! The engine's use cases open their own transactions, so the claim is its own row, written
//! before the work; the work itself is idempotent too (an order number is unique per merchant),
//! so a claim left behind by a crash is taken over after `STALE_AFTER` and the work rerun
//! answers with what was done.
//!
//! Stored answers expire [`RETENTION_HOURS`] after the first request: a key older than that is
//! a new key. A replay gives the same status, body and `Location`; a secret shown once (a webhook
//! signing secret) is taken out of the stored answer, so a replay never shows it again.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use disburse_store::{fmt_time, Db, IdempotentAnswer};
use sha2::{Digest, Sha256};

use crate::auth::IdempotencyScope;
use crate::error::ApiError;
use crate::extract::JSON_BODY_MAX_BYTES;
use crate::AppState;

pub const HEADER: &str = "idempotency-key";
/// Set on an answer given again from the store.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a request waits for another one with the same key to finish.
const WAIT_MAX: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);
/// A claim older than this without an answer is taken as abandoned (its process died).
const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(60);
/// How long a key and its stored answer are kept (documented in the OpenAPI description).
pub const RETENTION_HOURS: i64 = 24;
/// Fields of an answer that are shown once and never stored for a replay.
const SHOWN_ONCE_FIELDS: &[&str] = &["secret"];
/// Stored answers are small JSON documents; a larger one is not stored (and the claim released).
const STORED_BODY_MAX_BYTES: usize = 1024 * 1024;

enum Claim {
    Mine,
    Answered {
        status: u16,
        content_type: Option<String>,
        location: Option<String>,
        body: String,
    },
}

/// SHA-256 over the method, the path and the body; a JSON body is hashed in a canonical form
/// (keys sorted, no spaces), so the same document written differently is the same request.
fn request_hash(method: &Method, path: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok());
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_deref().unwrap_or(body));
    hex::encode(h.finalize())
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match handle(state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .ok_or_else(|| {
            ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                Some("Idempotency-Key"),
            )
        })?
        .to_string();
    let scope = req
        .extensions()
        .get::<IdempotencyScope>()
        .cloned()
        .ok_or_else(|| ApiError::internal("idempotency without a caller"))?;
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, JSON_BODY_MAX_BYTES).await.map_err(|e| {
        if crate::http::is_body_timeout(&format!("{e:?} {e}")) {
            ApiError::RequestTimeout(crate::http::BODY_TIMEOUT_TEXT.into())
        } else {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than {JSON_BODY_MAX_BYTES} bytes"
            ))
        }
    })?;
    let hash = request_hash(&parts.method, parts.uri.path(), &bytes);
    let db = state.engine().db().clone();
    match claim(&db, &scope.0, &key, &hash).await? {
        Claim::Answered {
            status,
            content_type,
            location,
            body,
        } => {
            let body = state.engine().open_secret(&body)?;
            let mut response = (
                StatusCode::from_u16(status).map_err(ApiError::internal)?,
                body,
            )
                .into_response();
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                response.headers_mut().insert(header::LOCATION, l);
            }
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            Ok(response)
        }
        Claim::Mine => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let status = response.status();
            let (rparts, rbody) = response.into_parts();
            let rbytes = match to_bytes(rbody, STORED_BODY_MAX_BYTES).await {
                Ok(b) => b,
                Err(e) => {
                    release(&db, &scope.0, &key).await;
                    return Err(ApiError::internal(format!("answer not stored: {e}")));
                }
            };
            let text = String::from_utf8(rbytes.to_vec()).ok();
            match text {
                // A fault of ours is not an answer to keep: the client may retry with the key.
                Some(text) if !status.is_server_error() => {
                    let content_type = rparts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let location = rparts
                        .headers
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    // Sealed all the same: the stored answer is a merchant's data.
                    let sealed = state.engine().seal_secret(&without_shown_once(&text));
                    store(
                        &db,
                        &scope.0,
                        &key,
                        status.as_u16(),
                        (content_type, location),
                        &sealed,
                    )
                    .await?;
                }
                _ => release(&db, &scope.0, &key).await,
            }
            Ok(Response::from_parts(rparts, Body::from(rbytes)))
        }
    }
}

/// The answer as stored for replays: a JSON object loses its shown-once fields.
fn without_shown_once(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(mut map))
            if SHOWN_ONCE_FIELDS.iter().any(|f| map.contains_key(*f)) =>
        {
            for f in SHOWN_ONCE_FIELDS {
                map.remove(*f);
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => text.to_string(),
    }
}

fn expiry_cutoff(now: chrono::DateTime<Utc>) -> String {
    fmt_time(now - chrono::Duration::hours(RETENTION_HOURS))
}

/// Deletes every key older than [`RETENTION_HOURS`]; run by the sweeper worker.
pub async fn purge_expired(db: &Db, now: chrono::DateTime<Utc>) -> Result<u64, ApiError> {
    Ok(db
        .purge_idempotency_keys_before(&expiry_cutoff(now))
        .await?)
}

async fn claim(db: &Db, scope: &str, key: &str, hash: &str) -> Result<Claim, ApiError> {
    let started = tokio::time::Instant::now();
    loop {
        let now = Utc::now();
        // An expired key is a new key: its old answer goes before it is claimed again.
        db.drop_idempotency_key_made_before(scope, key, &expiry_cutoff(now))
            .await?;
        if db
            .claim_new_idempotency_key(scope, key, hash, &fmt_time(now))
            .await?
        {
            return Ok(Claim::Mine);
        }
        let Some(row) = db.idempotency_key(scope, key).await? else {
            continue; // released between the insert and the read: try again
        };
        if row.request_hash != hash {
            return Err(ApiError::Unprocessable {
                detail: "this Idempotency-Key was used with another request (method, path or body); use a new key for a new request".into(),
                field: Some("Idempotency-Key".into()),
            });
        }
        if row.status == "done" {
            return Ok(Claim::Answered {
                status: row
                    .response_status
                    .and_then(|c| u16::try_from(c).ok())
                    .ok_or_else(|| ApiError::internal("stored answer without a status"))?,
                content_type: row.response_type,
                location: row.response_location,
                body: row.response_body.unwrap_or_default(),
            });
        }
        let updated_at = row.updated_at;
        if disburse_store::parse_time(&updated_at).is_ok_and(|t| t < now - STALE_AFTER)
            && db
                .take_over_stale_idempotency_key(scope, key, &updated_at, &fmt_time(now))
                .await?
        {
            return Ok(Claim::Mine);
        }
        if started.elapsed() > WAIT_MAX {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still being processed; retry later".into(),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn store(
    db: &Db,
    scope: &str,
    key: &str,
    status: u16,
    (content_type, location): (Option<String>, Option<String>),
    body: &str,
) -> Result<(), ApiError> {
    let answer = IdempotentAnswer {
        status,
        content_type,
        location,
        body,
    };
    db.store_idempotent_answer(scope, key, answer, &fmt_time(Utc::now()))
        .await?;
    Ok(())
}

/// Gives the key up after a fault of ours, so a retry with it does the work.
async fn release(db: &Db, scope: &str, key: &str) {
    let done = db.release_idempotency_key(scope, key).await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "idempotency key not released; it is taken over when stale");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_document_hashes_the_same() {
        let a = request_hash(&Method::POST, "/v1/x", br#"{"a": 1, "b": 2}"#);
        let b = request_hash(&Method::POST, "/v1/x", br#"{"b":2,"a":1}"#);
        let c = request_hash(&Method::POST, "/v1/x", br#"{"b":2,"a":2}"#);
        let d = request_hash(&Method::PUT, "/v1/x", br#"{"b":2,"a":1}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(valid_key("abc-123"));
        assert!(!valid_key(""));
        assert!(!valid_key("a b"));
    }
}
