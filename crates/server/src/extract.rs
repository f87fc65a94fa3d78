//! Extractors whose every refusal is a problem+json answer naming the field: JSON bodies, query
//! strings. Wrong input is always a 4xx, never a 5xx.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Request bodies of the JSON APIs are small; larger ones are refused with 413.
pub const JSON_BODY_MAX_BYTES: usize = 64 * 1024;

/// A JSON body, read with [`parse_json`].
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent (an empty body gives `None`).
pub struct OptionalJson<T>(pub Option<T>);

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if crate::http::is_body_timeout(&e.body_text()) {
            ApiError::RequestTimeout(crate::http::BODY_TIMEOUT_TEXT.into())
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than {JSON_BODY_MAX_BYTES} bytes"
            ))
        } else {
            ApiError::bad_request(format!("the body cannot be read: {}", e.body_text()), None)
        }
    })
}

fn content_type(req: &Request) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(content_type(&req).as_deref()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = content_type(&req);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !is_json(ct.as_deref()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Parses JSON strictly: one document, nothing after it, no key twice in an object, an object
/// (every body of these APIs is one; serde would otherwise take an array for a struct). Syntax
/// errors and repeated keys are 400; a document of the wrong shape (wrong type, unknown or
/// missing field) or with a string that [`crate::input::check_text`] refuses is 422 naming the
/// field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document = crate::input::strict_document(bytes)?;
    if !document.is_object() {
        return Err(ApiError::Unprocessable {
            detail: "the body must be a JSON object".into(),
            field: None,
        });
    }
    crate::input::check_document(&document)?;
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = if path == "." {
            named_field(&message)
        } else {
            Some(path)
        };
        ApiError::Unprocessable {
            detail: match &field {
                Some(f) => format!("{f}: {message}"),
                None => message,
            },
            field,
        }
    })
}

/// serde names a missing or unknown field only in its message: "missing field `currency`".
fn named_field(message: &str) -> Option<String> {
    let start = message.find("field `")? + "field `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// A query string; a wrong one is 400 with the reason.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let field = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(f, _)| f.trim().to_string())
                    .filter(|f| !f.contains(' '));
                ApiError::BadRequest {
                    detail: text,
                    field,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        amount_minor: i64,
        currency: String,
    }

    fn check(body: &str, status: u16, field: Option<&str>) {
        match parse_json::<Req>(body.as_bytes()) {
            Ok(r) => panic!("{body:?} accepted as {r:?}"),
            Err(e) => {
                let p = e.problem();
                assert_eq!(p.status, status, "{body:?}: {p:?}");
                assert_eq!(p.field.as_deref(), field, "{body:?}: {p:?}");
            }
        }
    }

    #[test]
    fn bad_json_is_named() {
        check("{", 400, None);
        check(r#"{"amount_minor": 1, "currency": "EUR"} x"#, 400, None);
        check(
            r#"{"amount_minor": 1.5, "currency": "EUR"}"#,
            422,
            Some("amount_minor"),
        );
        check(
            r#"{"amount_minor": "1", "currency": "EUR"}"#,
            422,
            Some("amount_minor"),
        );
        check(
            r#"{"amount_minor": 1e3, "currency": "EUR"}"#,
            422,
            Some("amount_minor"),
        );
        check(r#"{"currency": "EUR"}"#, 422, Some("amount_minor"));
        check(
            r#"{"amount_minor": 1, "currency": "EUR", "x": 1}"#,
            422,
            Some("x"),
        );
        check(r#"[1, 2]"#, 422, None);
        assert!(parse_json::<Req>(br#"{"amount_minor": 1, "currency": "EUR"}"#).is_ok());
    }
}
