//! Corrections, maker-checker: proposed by one operator, approved or rejected by another.

use super::*;

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

pub(super) fn correction_of(row: disburse_store::CorrectionRow) -> Correction {
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

pub(super) fn paid(amount_minor: i64, currency: &str) -> ApiResult<Money> {
    let currency = Currency::parse(currency).map_err(|e| ApiError::invalid("currency", e))?;
    if amount_minor <= 0 {
        return Err(ApiError::invalid(
            "paid_amount_minor",
            "must be a positive integer of minor units",
        ));
    }
    Ok(Money::from_minor(amount_minor, currency))
}

pub(super) fn correction_kind(req: CorrectionKindRequest) -> ApiResult<CorrectionKind> {
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

pub(super) fn path_id(text: &str, what: &str) -> ApiResult<i64> {
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
