//! Webhook deliveries: listed, redelivered, dead letters counted.

use super::*;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `dead` (default), `held` (waiting behind a dead letter of their order), `pending`,
    /// `delivered` or `unrouted` (no webhook set yet).
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Webhook deliveries: by default the dead-lettered ones, which wait for a person.
#[utoipa::path(
    get, path = "/ops/v1/webhooks/deliveries", tag = "webhooks",
    params(DeliveriesQuery),
    responses((status = 200, body = [Delivery])),
    security(("operator_session" = []))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let status = q.status.unwrap_or_else(|| "dead".into());
    if !webhooks::DELIVERY_STATUSES.contains(&status.as_str()) {
        return Err(ApiError::bad_request(
            "status must be dead, held, pending, delivered or unrouted",
            Some("status"),
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit must be 1 to 500",
            Some("limit"),
        ));
    }
    Ok(Json(
        webhooks::deliveries(state.engine(), &status, limit).await?,
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Redelivery {
    pub outbox_id: i64,
    pub status: String,
}

/// Sends a message again (a dead letter, or one the merchant lost), with a fresh series of attempts.
#[utoipa::path(
    post, path = "/ops/v1/webhooks/deliveries/{outbox_id}/redeliver", tag = "webhooks",
    params(
        ("outbox_id" = i64, Path, description = "The message id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 202, body = Redelivery),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Redelivery>)> {
    caller.require(caller.role.may_propose(), "ask for webhook redelivery")?;
    let id = path_id(&id, "message")?;
    webhooks::redeliver(state.engine(), id, &caller.name, Utc::now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            outbox_id: id,
            status: "pending".into(),
        }),
    ))
}

/// How many messages are dead and how many wait behind them.
#[utoipa::path(
    get, path = "/ops/v1/webhooks/dead-letters", tag = "webhooks",
    responses(
        (status = 200, body = DeadLetterSummary),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<DeadLetterSummary>> {
    Ok(Json(webhooks::dead_letter_summary(state.engine()).await?))
}
