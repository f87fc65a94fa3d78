//! Operators log in and out, and see who they are.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 64)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub operator: String,
    /// `viewer`, `operator`, `approver` or `admin`.
    #[schema(value_type = RoleName)]
    pub role: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub operator: String,
    #[schema(value_type = RoleName)]
    pub role: String,
}

/// Exchanges a name and password for a session token. Throttled per name and per client
/// address (429 with `Retry-After`); an operator locked out after repeated failures gets 403
/// until an admin unlocks it.
#[utoipa::path(
    post, path = "/ops/v1/login", tag = "operators",
    request_body = LoginRequest,
    responses(
        (status = 200, body = Session),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown name or wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Locked out after repeated failed logins", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not acceptable", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<Session>> {
    let session = auth::login_guarded(&state, &req.name, &req.password, address).await?;
    Ok(Json(Session {
        token: session.token,
        operator: session.operator.to_string(),
        role: session.role.as_str().into(),
        expires_at: disburse_store::fmt_time(session.expires_at),
    }))
}

/// Ends the session of the token sent.
#[utoipa::path(
    post, path = "/ops/v1/logout", tag = "operators",
    responses((status = 204, description = "Logged out")),
    security(("operator_session" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: OperatorCaller,
) -> ApiResult<StatusCode> {
    auth::logout(state.engine(), &caller.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is logged in, with which role.
#[utoipa::path(
    get, path = "/ops/v1/me", tag = "operators",
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("operator_session" = []))
)]
pub async fn me(caller: OperatorCaller) -> Json<Me> {
    Json(Me {
        operator: caller.name.to_string(),
        role: caller.role.as_str().into(),
    })
}
