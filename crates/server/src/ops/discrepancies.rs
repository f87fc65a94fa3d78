//! Discrepancies: listed and resolved.

use super::*;

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
