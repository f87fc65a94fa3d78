//! Admins: operator sessions listed and revoked, lockouts lifted.

use super::*;

/// Open operator sessions (admins only); tokens are never shown, only an id to revoke by.
#[utoipa::path(
    get, path = "/ops/v1/sessions", tag = "operators",
    responses(
        (status = 200, body = [SessionInfo]),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Admins only", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: OperatorCaller,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    caller.require(caller.role == Role::Admin, "list sessions")?;
    Ok(Json(
        credentials::list_sessions(state.engine(), None, Utc::now()).await?,
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Ends a session at once (admins only).
#[utoipa::path(
    post, path = "/ops/v1/sessions/{id}/revoke", tag = "operators",
    params(
        ("id" = String, Path, description = "The session id from GET /ops/v1/sessions", pattern = "^[0-9a-f]{16}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, body = Revoked),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Revoked>> {
    caller.require(caller.role == Role::Admin, "revoke sessions")?;
    if id.len() != credentials::SESSION_ID_HEX || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound(format!("no session {id:?}")));
    }
    let revoked = credentials::revoke_sessions(
        state.engine(),
        &credentials::SessionTarget::Id(id),
        Utc::now(),
        &Actor::operator(&caller.name),
    )
    .await?;
    Ok(Json(Revoked { revoked }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Unlocked {
    pub operator: String,
    /// The operator was locked out (false: it only had failed logins counted, or none).
    pub was_locked: bool,
}

/// Lifts an operator's lockout after repeated failed logins (admins only).
#[utoipa::path(
    post, path = "/ops/v1/operators/{name}/unlock", tag = "operators",
    params(
        ("name" = String, Path, description = "The operator"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, body = Unlocked),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Admins only", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn unlock_operator(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<Unlocked>> {
    caller.require(caller.role == Role::Admin, "unlock operators")?;
    let operator = OperatorName::parse(&name)
        .map_err(|_| ApiError::NotFound(format!("no operator {name:?}")))?;
    let was_locked = credentials::unlock_operator(
        state.engine(),
        &operator,
        Utc::now(),
        &Actor::operator(&caller.name),
    )
    .await?;
    Ok(Json(Unlocked {
        operator: operator.to_string(),
        was_locked,
    }))
}
