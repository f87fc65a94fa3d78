//! The merchant's webhook: its URL and signing secret.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where messages are POSTed: an https URL of a public receiver (no loopback, private,
    /// link-local or metadata address; http only where development allows it).
    #[schema(max_length = 2048)]
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub url: String,
    /// The signing secret: present only in the answer that created it (not in a replay of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    /// The new signing secret, shown this once. Messages are signed with it from now on. Absent
    /// in an answer replayed for an Idempotency-Key: a secret is never shown twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Sets where messages are delivered. The first time, the answer holds the signing secret.
#[utoipa::path(
    put, path = "/v1/webhook", tag = "webhook",
    request_body = WebhookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = Webhook),
        (status = 422, description = "Not an https URL of a public receiver", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiJson(req): ApiJson<WebhookRequest>,
) -> ApiResult<Json<Webhook>> {
    let set = webhooks::set_webhook(
        state.engine(),
        &caller.0,
        &req.url,
        &state.settings().webhooks,
        Utc::now(),
    )
    .await?;
    Ok(Json(Webhook {
        url: set.url,
        secret: set.new_secret,
        updated_at: set.updated_at,
    }))
}

/// The webhook URL (never the secret).
#[utoipa::path(
    get, path = "/v1/webhook", tag = "webhook",
    responses((status = 200, body = Webhook), (status = 404, description = "No webhook set", body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<Webhook>> {
    let w = webhooks::webhook_of(state.engine(), caller.0.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound("no webhook is set; PUT /v1/webhook".into()))?;
    Ok(Json(Webhook {
        url: w.url,
        secret: None,
        updated_at: w.updated_at,
    }))
}

/// Replaces the signing secret and returns the new one, once.
#[utoipa::path(
    post, path = "/v1/webhook/rotate-secret", tag = "webhook",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a retry does not rotate again, and its answer has no secret", pattern = "^[!-~]{1,255}$")),
    responses((status = 200, body = WebhookSecret), (status = 404, description = "No webhook set", body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<WebhookSecret>> {
    let secret = webhooks::rotate_secret(state.engine(), &caller.0, Utc::now()).await?;
    Ok(Json(WebhookSecret {
        secret: Some(secret),
    }))
}
