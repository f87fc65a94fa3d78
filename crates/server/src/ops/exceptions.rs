//! The exception queue: what waits for a person, claimed, released, commented and handled.

use super::*;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Exception {
    /// `E12` for a stored exception; `payout:PO…`, `order:…` or `D3` for a live condition.
    pub id: String,
    pub kind: String,
    pub age_hours: i64,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub merchant: Option<String>,
    pub payout_no: Option<String>,
    pub order_no: Option<String>,
    pub reason: String,
    /// What a person should do about it.
    pub action: String,
    /// The file and line, or the batch, it came from.
    pub source: Option<String>,
}

impl From<ExceptionItem> for Exception {
    fn from(e: ExceptionItem) -> Self {
        Exception {
            id: e.id,
            kind: e.kind,
            age_hours: e.age_hours,
            amount_minor: e.amount.as_ref().map(|a| a.amount_minor),
            currency: e.amount.map(|a| a.currency),
            merchant: e.merchant,
            payout_no: e.payout_no,
            order_no: e.order_no,
            reason: e.reason,
            action: e.action,
            source: e.source,
        }
    }
}

/// Everything that waits for a person.
#[utoipa::path(
    get, path = "/ops/v1/exceptions", tag = "exceptions",
    responses((status = 200, body = [Exception]), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("operator_session" = []))
)]
pub async fn list_exceptions(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<Vec<Exception>>> {
    let items = state.engine().exceptions(Utc::now()).await?;
    Ok(Json(items.into_iter().map(Exception::from).collect()))
}

/// Names a queue item (`id` of `GET /ops/v1/exceptions`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueItemRequest {
    #[schema(max_length = 140)]
    pub item_id: String,
}

/// A comment on a queue item, or what was done about it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueNoteRequest {
    #[schema(max_length = 140)]
    pub item_id: String,
    #[schema(max_length = 2000)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueNote {
    /// `comment` or `handled`.
    pub kind: String,
    pub note: String,
    pub written_by: String,
    pub written_at: String,
}

/// What people have done about one queue item, after the request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueWork {
    pub item_id: String,
    /// Who works on it now (absent: nobody).
    pub claimed_by: Option<String>,
    pub claimed_at: Option<String>,
    /// Comments and handled notes, oldest first.
    pub notes: Vec<QueueNote>,
}

pub(super) async fn queue_work(state: &AppState, item_id: &str) -> ApiResult<QueueWork> {
    let item_id = item_id.trim();
    let work = state
        .engine()
        .exception_work()
        .await?
        .remove(item_id)
        .unwrap_or_default();
    Ok(QueueWork {
        item_id: item_id.to_string(),
        claimed_by: work.claimed.as_ref().map(|(by, _)| by.clone()),
        claimed_at: work.claimed.map(|(_, at)| at),
        notes: work
            .notes
            .into_iter()
            .map(|n| QueueNote {
                kind: n.kind,
                note: n.note,
                written_by: n.written_by,
                written_at: n.written_at,
            })
            .collect(),
    })
}

/// Claims a queue item: the queue shows who works on it, and nobody else claims or handles it
/// until it is released or handled. Claiming one's own claim again changes nothing.
#[utoipa::path(
    post, path = "/ops/v1/exceptions/claim", tag = "exceptions",
    request_body = QueueItemRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = QueueWork),
        (status = 403, description = "A viewer may not work the queue", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item in the queue now", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Claimed by another person", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn claim_exception(
    State(state): State<AppState>,
    caller: OperatorCaller,
    ApiJson(req): ApiJson<QueueItemRequest>,
) -> ApiResult<Json<QueueWork>> {
    caller.require(caller.role.may_propose(), "claim queue items")?;
    state
        .engine()
        .claim_exception(&req.item_id, Utc::now(), &caller.name)
        .await?;
    Ok(Json(queue_work(&state, &req.item_id).await?))
}

/// Gives a claimed item back: its claimant, or an admin.
#[utoipa::path(
    post, path = "/ops/v1/exceptions/release", tag = "exceptions",
    request_body = QueueItemRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = QueueWork),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not claimed, or claimed by another person", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn release_exception(
    State(state): State<AppState>,
    caller: OperatorCaller,
    ApiJson(req): ApiJson<QueueItemRequest>,
) -> ApiResult<Json<QueueWork>> {
    caller.require(caller.role.may_propose(), "release queue items")?;
    state
        .engine()
        .release_exception(&req.item_id, Utc::now(), &caller.name)
        .await?;
    Ok(Json(queue_work(&state, &req.item_id).await?))
}

/// A comment on a queue item, for whoever looks at it next.
#[utoipa::path(
    post, path = "/ops/v1/exceptions/comment", tag = "exceptions",
    request_body = QueueNoteRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, body = QueueWork),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn comment_exception(
    State(state): State<AppState>,
    caller: OperatorCaller,
    ApiJson(req): ApiJson<QueueNoteRequest>,
) -> ApiResult<(StatusCode, Json<QueueWork>)> {
    caller.require(caller.role.may_propose(), "comment on queue items")?;
    state
        .engine()
        .comment_exception(&req.item_id, &req.note, Utc::now(), &caller.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(queue_work(&state, &req.item_id).await?),
    ))
}

/// Marks a queue item handled, saying what was done; the caller's claim ends with it. An item
/// another person has claimed is theirs to handle. The item leaves the queue when its
/// condition ends, which only the rules decide.
#[utoipa::path(
    post, path = "/ops/v1/exceptions/handle", tag = "exceptions",
    request_body = QueueNoteRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = QueueWork),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Claimed by another person", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn handle_exception(
    State(state): State<AppState>,
    caller: OperatorCaller,
    ApiJson(req): ApiJson<QueueNoteRequest>,
) -> ApiResult<Json<QueueWork>> {
    caller.require(caller.role.may_propose(), "mark queue items handled")?;
    state
        .engine()
        .handle_exception(&req.item_id, &req.note, Utc::now(), &caller.name)
        .await?;
    Ok(Json(queue_work(&state, &req.item_id).await?))
}
