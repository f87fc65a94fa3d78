//! The operator API, `/ops/v1`: log in, the exceptions queue, corrections (maker-checker),
//! discrepancy resolutions, result-file uploads, batches, audit verification, dead webhooks.
//! Every action is attributed to the logged-in operator; roles come from `operators`, and a role
//! that may not do something gets 403 before the engine is asked.

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use disburse_core::correction::CorrectionKind;
use disburse_core::correction::Role;
use disburse_core::{Currency, MerchantId, Money, OperatorName, OrderNo, PayoutNo};
use disburse_engine::{Actor, CorrectionView, ExceptionItem, Resolution};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{self, ClientAddr, OperatorCaller};
use crate::credentials::{self, SessionInfo};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::merchant::{discrepancy_dto, load_withdrawal, Discrepancy, Withdrawal};
use crate::schema::{CorrectionStatus, CurrencyCode, DeliveryStatus, RoleName};
use crate::webhooks::{self, DeadLetterSummary, Delivery};
use crate::AppState;

// ---------------------------------------------------------------------------------------------
// Sessions

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

// ---------------------------------------------------------------------------------------------
// Exceptions and orders

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

async fn queue_work(state: &AppState, item_id: &str) -> ApiResult<QueueWork> {
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

/// One merchant's order with every payout and discrepancy.
#[utoipa::path(
    get, path = "/ops/v1/merchants/{merchant}/withdrawals/{order_no}", tag = "exceptions",
    params(
        ("merchant" = String, Path, description = "Merchant id", pattern = "^[a-z0-9_-]{1,64}$"),
        ("order_no" = String, Path, description = "The merchant's order number", pattern = "^[A-Za-z0-9._/-]{1,35}$"),
    ),
    responses((status = 200, body = Withdrawal), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator_session" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    Path((merchant, no)): Path<(String, String)>,
) -> ApiResult<Json<Withdrawal>> {
    let not_found = || ApiError::NotFound(format!("no order {no:?} of merchant {merchant:?}"));
    if MerchantId::parse(&merchant).is_err() || OrderNo::parse(&no).is_err() {
        return Err(not_found());
    }
    load_withdrawal(&state, &merchant, &no)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

// ---------------------------------------------------------------------------------------------
// Corrections

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Correction {
    pub id: i64,
    pub payout_no: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub reason: String,
    pub evidence: String,
    /// `proposed`, `applied` or `rejected`.
    #[schema(value_type = CorrectionStatus)]
    pub status: String,
    pub proposed_by: String,
    pub proposed_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
}

impl From<CorrectionView> for Correction {
    fn from(c: CorrectionView) -> Self {
        Correction {
            id: c.id,
            payout_no: c.payout_no,
            kind: c.kind,
            payload: c.payload,
            reason: c.reason,
            evidence: c.evidence,
            status: c.status,
            proposed_by: c.proposed_by,
            proposed_at: c.proposed_at,
            decided_by: c.decided_by,
            decided_at: c.decided_at,
            decision_reason: c.decision_reason,
        }
    }
}

fn correction_of(row: disburse_store::CorrectionRow) -> Correction {
    CorrectionView::from(row).into()
}

/// What the correction says should have been recorded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CorrectionKindRequest {
    /// The bank did pay.
    ConfirmSucceeded {
        #[schema(minimum = 1)]
        paid_amount_minor: i64,
        #[schema(value_type = CurrencyCode)]
        currency: String,
        #[schema(min_length = 1, max_length = 140)]
        bank_reference: String,
        /// YYYY-MM-DD
        value_date: Option<String>,
    },
    /// The bank did not pay.
    ConfirmFailed { reason_code: String },
    /// The bank paid another amount than recorded.
    AmendPaidAmount {
        #[schema(minimum = 1)]
        paid_amount_minor: i64,
        #[schema(value_type = CurrencyCode)]
        currency: String,
    },
    /// The money came back after it was paid.
    RecordReturn { reason_code: String },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeCorrectionRequest {
    #[schema(pattern = "^[A-Za-z0-9._/-]{1,35}$")]
    pub payout_no: String,
    pub correction: CorrectionKindRequest,
    /// Why the record is wrong.
    #[schema(max_length = 500)]
    pub reason: String,
    /// The bank's reference, notice or file that shows it.
    #[schema(max_length = 500)]
    pub evidence: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[schema(max_length = 500)]
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CorrectionsQuery {
    /// `proposed`, `applied` or `rejected`.
    #[param(value_type = Option<CorrectionStatus>)]
    pub status: Option<String>,
}

fn paid(amount_minor: i64, currency: &str) -> ApiResult<Money> {
    let currency = Currency::parse(currency).map_err(|e| ApiError::invalid("currency", e))?;
    if amount_minor <= 0 {
        return Err(ApiError::invalid(
            "paid_amount_minor",
            "must be a positive integer of minor units",
        ));
    }
    Ok(Money::from_minor(amount_minor, currency))
}

fn correction_kind(req: CorrectionKindRequest) -> ApiResult<CorrectionKind> {
    let text = |field: &str, v: &str| -> ApiResult<String> {
        let v = v.trim();
        if v.is_empty() || v.chars().count() > 140 {
            return Err(ApiError::invalid(field, "must be 1 to 140 characters"));
        }
        Ok(v.to_string())
    };
    Ok(match req {
        CorrectionKindRequest::ConfirmSucceeded {
            paid_amount_minor,
            currency,
            bank_reference,
            value_date,
        } => CorrectionKind::ConfirmSucceeded {
            paid: paid(paid_amount_minor, &currency)?,
            bank_reference: text("bank_reference", &bank_reference)?,
            value_date: value_date
                .map(|d| {
                    NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|e| {
                        ApiError::invalid("value_date", format!("{d:?}: {e} (write YYYY-MM-DD)"))
                    })
                })
                .transpose()?,
        },
        CorrectionKindRequest::ConfirmFailed { reason_code } => CorrectionKind::ConfirmFailed {
            reason_code: text("reason_code", &reason_code)?,
        },
        CorrectionKindRequest::AmendPaidAmount {
            paid_amount_minor,
            currency,
        } => CorrectionKind::AmendPaidAmount {
            paid: paid(paid_amount_minor, &currency)?,
        },
        CorrectionKindRequest::RecordReturn { reason_code } => CorrectionKind::RecordReturn {
            reason_code: text("reason_code", &reason_code)?,
        },
    })
}

fn path_id(text: &str, what: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no {what} {text:?}")))
}

/// Corrections, optionally only those with a status.
#[utoipa::path(
    get, path = "/ops/v1/corrections", tag = "corrections",
    params(CorrectionsQuery),
    responses((status = 200, body = [Correction])),
    security(("operator_session" = []))
)]
pub async fn list_corrections(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    ApiQuery(q): ApiQuery<CorrectionsQuery>,
) -> ApiResult<Json<Vec<Correction>>> {
    if let Some(s) = &q.status {
        if !["proposed", "applied", "rejected"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "status must be proposed, applied or rejected",
                Some("status"),
            ));
        }
    }
    let rows = state.engine().corrections(q.status.as_deref()).await?;
    Ok(Json(rows.into_iter().map(Correction::from).collect()))
}

/// A maker proposes a correction of a payout, with reason and evidence; a second person decides.
#[utoipa::path(
    post, path = "/ops/v1/corrections", tag = "corrections",
    request_body = ProposeCorrectionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, body = Correction),
        (status = 403, description = "A viewer may not propose", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The correction cannot apply to the payout as it is", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn propose_correction(
    State(state): State<AppState>,
    caller: OperatorCaller,
    ApiJson(req): ApiJson<ProposeCorrectionRequest>,
) -> ApiResult<(StatusCode, Json<Correction>)> {
    caller.require(caller.role.may_propose(), "propose corrections")?;
    let payout_no =
        PayoutNo::parse(&req.payout_no).map_err(|e| ApiError::invalid("payout_no", e))?;
    let kind = correction_kind(req.correction)?;
    let row = state
        .engine()
        .propose_correction(
            &payout_no,
            &kind,
            &req.reason,
            &req.evidence,
            Utc::now(),
            &caller.name,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(correction_of(row))))
}

/// A checker (approver or admin, not the maker) approves: applied at once.
#[utoipa::path(
    post, path = "/ops/v1/corrections/{id}/approve", tag = "corrections",
    params(
        ("id" = i64, Path, description = "Correction id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, body = Correction),
        (status = 403, description = "Viewers and operators may not approve", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided, stale, or the maker approving their own", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn approve_correction(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Correction>> {
    caller.require(caller.role.may_approve(), "approve corrections")?;
    let id = path_id(&id, "correction")?;
    let row = state
        .engine()
        .approve_correction(id, Utc::now(), &caller.name)
        .await?;
    Ok(Json(correction_of(row)))
}

/// A checker rejects, saying why.
#[utoipa::path(
    post, path = "/ops/v1/corrections/{id}/reject", tag = "corrections",
    request_body = RejectRequest,
    params(
        ("id" = i64, Path, description = "Correction id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, body = Correction),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn reject_correction(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RejectRequest>,
) -> ApiResult<Json<Correction>> {
    caller.require(caller.role.may_approve(), "reject corrections")?;
    let id = path_id(&id, "correction")?;
    let row = state
        .engine()
        .reject_correction(id, &req.reason, Utc::now(), &caller.name)
        .await?;
    Ok(Json(correction_of(row)))
}

// ---------------------------------------------------------------------------------------------
// Discrepancies

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OpsDiscrepancy {
    pub merchant: String,
    #[serde(flatten)]
    pub discrepancy: Discrepancy,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiscrepanciesQuery {
    /// Only those not settled (default true).
    pub open: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionKind {
    /// Overpaid: the merchant sent the difference back (give `reference`).
    RefundReceived,
    /// Overpaid: not collected; needs a second person's approval.
    ProposeWriteOff,
    ApproveWriteOff,
    /// Underpaid: pay the shortfall now (optionally on `channel`).
    TopUpNow,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub resolution: ResolutionKind,
    /// The merchant's transfer reference, for `refund_received`.
    pub reference: Option<String>,
    /// The channel for `top_up_now`; the original payout's by default.
    pub channel: Option<String>,
    pub reason: String,
}

/// Discrepancies between what was instructed and what banks moved.
#[utoipa::path(
    get, path = "/ops/v1/discrepancies", tag = "discrepancies",
    params(DiscrepanciesQuery),
    responses((status = 200, body = [OpsDiscrepancy])),
    security(("operator_session" = []))
)]
pub async fn list_discrepancies(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    ApiQuery(q): ApiQuery<DiscrepanciesQuery>,
) -> ApiResult<Json<Vec<OpsDiscrepancy>>> {
    let rows = state.engine().discrepancies(q.open.unwrap_or(true)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| OpsDiscrepancy {
                merchant: d.merchant_id.clone(),
                discrepancy: discrepancy_dto(d),
            })
            .collect(),
    ))
}

/// Settles (or starts settling) a discrepancy.
#[utoipa::path(
    post, path = "/ops/v1/discrepancies/{id}/resolve", tag = "discrepancies",
    request_body = ResolveRequest,
    params(
        ("id" = i64, Path, description = "Discrepancy id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, body = OpsDiscrepancy),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn resolve_discrepancy(
    State(state): State<AppState>,
    caller: OperatorCaller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<OpsDiscrepancy>> {
    let approving = matches!(req.resolution, ResolutionKind::ApproveWriteOff);
    if approving {
        caller.require(caller.role.may_approve(), "approve write-offs")?;
    } else {
        caller.require(caller.role.may_propose(), "resolve discrepancies")?;
    }
    let id = path_id(&id, "discrepancy")?;
    let resolution = match req.resolution {
        ResolutionKind::RefundReceived => Resolution::RefundReceived {
            reference: req
                .reference
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::invalid("reference", "give the reference of the merchant's refund")
                })?,
        },
        ResolutionKind::ProposeWriteOff => Resolution::ProposeWriteOff,
        ResolutionKind::ApproveWriteOff => Resolution::ApproveWriteOff,
        ResolutionKind::TopUpNow => Resolution::TopUpNow {
            channel: req.channel,
        },
    };
    let d = state
        .engine()
        .resolve_discrepancy(id, &resolution, &req.reason, Utc::now(), &caller.name)
        .await?;
    Ok(Json(OpsDiscrepancy {
        merchant: d.merchant_id.clone(),
        discrepancy: discrepancy_dto(d),
    }))
}

// ---------------------------------------------------------------------------------------------
// Result files and batches

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub file_id: i64,
    pub file_name: String,
    pub sha256: String,
    pub format: String,
    /// The same file was imported before: nothing changed.
    pub already_imported: bool,
    pub resumed_after_line: u64,
    pub read: u64,
    pub applied: u64,
    pub unchanged: u64,
    /// Lines that could not be applied; each is in the exceptions queue with file and line.
    pub exceptions: u64,
    pub outcomes: std::collections::BTreeMap<String, u64>,
}

impl From<disburse_engine::ImportSummary> for ImportResult {
    fn from(s: disburse_engine::ImportSummary) -> Self {
        ImportResult {
            file_id: s.file_id,
            file_name: s.file_name,
            sha256: s.sha256,
            format: s.format,
            already_imported: s.already_imported,
            resumed_after_line: s.resumed_after_line,
            read: s.read,
            applied: s.applied,
            unchanged: s.unchanged,
            exceptions: s.exceptions,
            outcomes: s.outcomes,
        }
    }
}

/// The multipart form of a result-file upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ResultFileUpload {
    /// The bank's file: pain.002, camt.054, camt.053 or the channel's CSV.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The channel it came from; needed for CSV files.
    pub channel: Option<String>,
}

/// A file name safe to create: letters, digits, `.`, `-`, `_`; at most 100 characters.
pub(crate) fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "upload".to_string()
    } else {
        cleaned
    }
}

pub(crate) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if crate::http::is_body_timeout(&format!("{e:?} {}", e.body_text())) {
        ApiError::RequestTimeout(crate::http::BODY_TIMEOUT_TEXT.into())
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the upload is too large: {}", e.body_text()))
    } else {
        ApiError::bad_request(
            format!("the upload cannot be read: {}", e.body_text()),
            None,
        )
    }
}

/// Uploads a bank result file and imports it (the same file twice is "already imported").
#[utoipa::path(
    post, path = "/ops/v1/result-files", tag = "files",
    request_body(content = ResultFileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = ImportResult),
        (status = 400, description = "Not a multipart form with a `file`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer may not import", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A broken file, refused whole", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn upload_result_file(
    State(state): State<AppState>,
    caller: OperatorCaller,
    mut form: Multipart,
) -> ApiResult<Json<ImportResult>> {
    caller.require(caller.role.may_propose(), "import result files")?;
    let dir = tempfile::tempdir().map_err(ApiError::internal)?;
    let mut path = None;
    let mut channel = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let name = safe_file_name(field.file_name().unwrap_or("upload"));
                let p = dir.path().join(name);
                let mut out = tokio::fs::File::create(&p)
                    .await
                    .map_err(ApiError::internal)?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                        .await
                        .map_err(ApiError::internal)?;
                }
                tokio::io::AsyncWriteExt::flush(&mut out)
                    .await
                    .map_err(ApiError::internal)?;
                path = Some(p);
            }
            Some("channel") => {
                let text = field.text().await.map_err(multipart_error)?;
                crate::input::check_text("channel", &text)?;
                if !text.trim().is_empty() {
                    channel = Some(text.trim().to_string());
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    format!(
                        "unexpected form field {other:?}; send `file` and optionally `channel`"
                    ),
                    other,
                ))
            }
        }
    }
    let path =
        path.ok_or_else(|| ApiError::bad_request("the form has no `file` field", Some("file")))?;
    let summary = state
        .engine()
        .import_results(
            &path,
            channel.as_deref(),
            Utc::now(),
            &Actor::operator(&caller.name),
            &|_, _| {},
        )
        .await
        // The file is named as the operator sent it, never by where we put it.
        .map_err(|e| {
            let shown = path.file_name().map(|n| n.to_string_lossy().to_string());
            ApiError::from(e)
                .redact(
                    &path.display().to_string(),
                    shown.as_deref().unwrap_or("upload"),
                )
                .redact(&dir.path().display().to_string(), "")
        })?;
    tracing::info!(operator = %caller.name, file.name = %summary.file_name, file.sha256 = %summary.sha256,
        applied = summary.applied, exceptions = summary.exceptions, "result file imported");
    Ok(Json(summary.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    pub batch_id: i64,
    pub channel: String,
    pub message_id: String,
    pub file_name: String,
    pub format: String,
    pub sha256: String,
    pub payout_count: i64,
    pub control_sum_minor: i64,
    pub currency: String,
    pub created_at: String,
}

impl From<disburse_engine::BatchSummary> for Batch {
    fn from(b: disburse_engine::BatchSummary) -> Self {
        Batch {
            batch_id: b.batch_id,
            channel: b.channel,
            message_id: b.message_id,
            file_name: b.file_name,
            format: b.format,
            sha256: b.sha256,
            payout_count: b.payout_count,
            control_sum_minor: b.control_sum_minor,
            currency: b.currency,
            created_at: b.created_at,
        }
    }
}

/// Every batch file sent to a bank.
#[utoipa::path(
    get, path = "/ops/v1/batches", tag = "files",
    responses((status = 200, body = [Batch])),
    security(("operator_session" = []))
)]
pub async fn list_batches(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<Vec<Batch>>> {
    let batches = state.engine().batches().await?;
    Ok(Json(batches.into_iter().map(Batch::from).collect()))
}

/// A batch's file, byte for byte as it was first written.
#[utoipa::path(
    get, path = "/ops/v1/batches/{id}/file", tag = "files",
    params(("id" = i64, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn download_batch(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&id, "batch")?;
    let (batch, bytes) = state.engine().batch_file(id).await?;
    let content_type = match batch.format.as_str() {
        f if f.starts_with("pain.") => "application/xml",
        "csv" => "text/csv",
        "instruction-sheet" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        safe_file_name(&batch.file_name)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Audit and webhooks

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditReport {
    /// The hash chain and every tracked row agree.
    pub audit_ok: bool,
    /// What does not match, first found first.
    pub findings: Vec<String>,
    /// Every journal balances and the totals per currency are zero.
    pub ledger_ok: bool,
    pub unbalanced_journals: Vec<i64>,
    pub totals: std::collections::BTreeMap<String, i64>,
}

/// Walks the audit chain and checks every row against it; checks the books.
#[utoipa::path(
    get, path = "/ops/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditReport)),
    security(("operator_session" = []))
)]
pub async fn audit_verify(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<AuditReport>> {
    let db = state.engine().db();
    let findings = db.verify_audit().await?;
    let ledger = db.ledger_check().await?;
    Ok(Json(AuditReport {
        audit_ok: findings.is_empty(),
        findings: findings.into_iter().map(|f| f.what).collect(),
        ledger_ok: ledger.is_ok(),
        unbalanced_journals: ledger.unbalanced.iter().map(|(id, _, _)| *id).collect(),
        totals: ledger.totals,
    }))
}

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

// ---------------------------------------------------------------------------------------------
// Sessions and lockouts (admins)

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
