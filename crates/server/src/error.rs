//! One error type for every HTTP answer that is not a success, and one place that maps it to a
//! status: RFC 9457 `application/problem+json` with `type`, `title`, `status`, `detail`, and the
//! `field` when one field of the request was wrong. Internal errors are logged once, here, and
//! answered with a plain message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use disburse_engine::EngineError;
use disburse_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:disburse:problem:invalid-field`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field that was wrong (a JSON field, a query parameter or a header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read: malformed JSON, a bad header, a bad cursor.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no route {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A business rule said no, or the request conflicts with the state it would change.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but a value is not acceptable (a field, or an Idempotency-Key reused).
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Too many attempts: try again after this many seconds (`Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// A fault of ours; the message is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(detail: impl ToString, field: Option<&str>) -> ApiError {
        ApiError::BadRequest {
            detail: detail.to_string(),
            field: field.map(str::to_string),
        }
    }

    pub fn invalid(field: &str, detail: impl ToString) -> ApiError {
        ApiError::Unprocessable {
            detail: detail.to_string(),
            field: Some(field.to_string()),
        }
    }

    /// The same error with `from` replaced by `to` in its detail: a server-side path (a temporary
    /// upload file) never reaches the client.
    pub fn redact(self, from: &str, to: &str) -> ApiError {
        if from.is_empty() {
            return self;
        }
        let r = |s: String| s.replace(from, to);
        match self {
            ApiError::BadRequest { detail, field } => ApiError::BadRequest {
                detail: r(detail),
                field,
            },
            ApiError::Unprocessable { detail, field } => ApiError::Unprocessable {
                detail: r(detail),
                field,
            },
            ApiError::Unauthorized(d) => ApiError::Unauthorized(r(d)),
            ApiError::Forbidden(d) => ApiError::Forbidden(r(d)),
            ApiError::NotFound(d) => ApiError::NotFound(r(d)),
            ApiError::NoRoute(d) => ApiError::NoRoute(r(d)),
            ApiError::Conflict(d) => ApiError::Conflict(r(d)),
            ApiError::PayloadTooLarge(d) => ApiError::PayloadTooLarge(r(d)),
            ApiError::UnsupportedMediaType(d) => ApiError::UnsupportedMediaType(r(d)),
            ApiError::Unavailable(d) => ApiError::Unavailable(r(d)),
            other => other,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => ("bad-request", "The request cannot be read"),
            ApiError::Unauthorized(_) => ("unauthorized", "Missing or unknown credentials"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed for this role"),
            ApiError::NotFound(_) => ("not-found", "No such resource"),
            ApiError::NoRoute(_) => ("no-route", "No such endpoint"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed here"),
            ApiError::Conflict(_) => ("conflict", "Refused by a business rule or a conflict"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "The request body is too large"),
            ApiError::RequestTimeout(_) => ("request-timeout", "The request body came too slowly"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported content type")
            }
            ApiError::Unprocessable { field: Some(_), .. } => {
                ("invalid-field", "A field of the request is not acceptable")
            }
            ApiError::Unprocessable { field: None, .. } => {
                ("unprocessable", "The request is not acceptable")
            }
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many attempts"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let detail = match self {
            ApiError::Internal(_) => "internal error; it has been logged".to_string(),
            other => other.to_string(),
        };
        let field = match self {
            ApiError::BadRequest { field, .. } | ApiError::Unprocessable { field, .. } => {
                field.clone()
            }
            _ => None,
        };
        Problem {
            type_: format!("urn:disburse:problem:{slug}"),
            title: title.to_string(),
            status: self.status().as_u16(),
            detail,
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(message) = &self {
            tracing::error!(error = %message, "request failed on our side");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).expect("problem serializes");
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(&1).to_owned()),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid { field, .. } => ApiError::Unprocessable {
                detail: e.to_string(),
                field: Some(field.to_string()),
            },
            EngineError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            EngineError::Refused(_) | EngineError::Busy(_) => ApiError::Conflict(e.to_string()),
            EngineError::Store(store) => store.into(),
            EngineError::Config(_) | EngineError::Key(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.unique_violation() {
            // A lost race with a concurrent request: the client may retry and see the winner.
            Some(constraint) => ApiError::Conflict(format!(
                "the request conflicts with a concurrent change ({constraint}); retry"
            )),
            None => ApiError::Internal(e.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
