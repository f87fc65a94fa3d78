//! Withdrawal orders: created, read, listed a page at a time, cancelled.

use super::*;

/// A withdrawal order: the merchant's request to be paid, with every payout (attempt) made for
/// it and every discrepancy between what was instructed and what a bank moved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Withdrawal {
    #[schema(pattern = "^[A-Za-z0-9._/-]{1,35}$")]
    pub order_no: String,
    /// `open`, `paying`, `paid`, `action_required` or `cancelled`.
    #[schema(value_type = OrderStateName)]
    pub state: String,
    pub amount_minor: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub created_at: String,
    pub updated_at: String,
    pub payouts: Vec<Payout>,
    pub discrepancies: Vec<Discrepancy>,
}

/// One attempt to pay an order at one bank; a new attempt has a new payout number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Payout {
    pub payout_no: String,
    /// `pending`, `submitted`, `succeeded`, `failed`, `returned`, `expired` or `cancelled`.
    #[schema(value_type = PayoutStateName)]
    pub state: String,
    pub amount_minor: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// What the bank moved, once it said so.
    pub paid_amount_minor: Option<i64>,
    pub bank_account_last4: String,
    pub bank_reference: Option<String>,
    /// The bank's reason code for a rejection or return (ISO 20022 or the bank's own).
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    pub value_date: Option<String>,
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub updated_at: String,
}

/// A difference between the amount instructed and the amount a bank moved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Discrepancy {
    pub id: i64,
    /// `overpaid`, `underpaid` or `duplicate`.
    pub direction: String,
    pub amount_minor: i64,
    pub currency: String,
    pub payout_no: String,
    /// `open`, `topping_up`, `write_off_proposed` or `settled`.
    pub status: String,
    pub opened_at: String,
    pub settled_at: Option<String>,
    pub resolution: Option<String>,
    pub topup_payout_no: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalSummary {
    #[schema(pattern = "^[A-Za-z0-9._/-]{1,35}$")]
    pub order_no: String,
    #[schema(value_type = OrderStateName)]
    pub state: String,
    pub amount_minor: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalPage {
    pub data: Vec<WithdrawalSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A new withdrawal order, paid to the merchant's current bank account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// The merchant's own number for the order (letters, digits, `- _ . /`, at most 35).
    #[schema(pattern = "^[A-Za-z0-9._/-]{1,35}$", min_length = 1, max_length = 35)]
    pub order_no: String,
    /// A positive integer in the currency's minor unit (cents for EUR, yen for JPY).
    #[schema(minimum = 1)]
    pub amount_minor: i64,
    /// ISO 4217 code, upper case.
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why the order is cancelled; recorded in the audit trail. No control characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListWithdrawalsQuery {
    /// Only orders in this state.
    #[param(value_type = Option<OrderStateName>)]
    pub status: Option<String>,
    /// Only orders created at or after this time (RFC 3339).
    pub created_from: Option<String>,
    /// Only orders created before this time (RFC 3339).
    pub created_to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

pub(super) fn payout_dto(p: PayoutRow, last4: String) -> Payout {
    Payout {
        payout_no: p.payout_no,
        state: p.state,
        amount_minor: p.amount_minor,
        currency: p.currency,
        paid_amount_minor: p.paid_amount_minor,
        bank_account_last4: last4,
        bank_reference: p.bank_reference,
        reason_code: p.reason_code,
        reason_text: p.reason_text,
        value_date: p.value_date,
        created_at: p.created_at,
        submitted_at: p.submitted_at,
        updated_at: p.updated_at,
    }
}

pub fn discrepancy_dto(d: DiscrepancyRow) -> Discrepancy {
    Discrepancy {
        id: d.id,
        direction: d.direction,
        amount_minor: d.amount_minor,
        currency: d.currency,
        payout_no: d.origin_payout_no,
        status: d.status,
        opened_at: d.opened_at,
        settled_at: d.settled_at,
        resolution: d.resolution,
        topup_payout_no: d.topup_payout_no,
    }
}

/// One order of one merchant with its payouts and discrepancies; `None` if it has no such order.
pub async fn load_withdrawal(
    state: &AppState,
    merchant: &str,
    order_no: &str,
) -> ApiResult<Option<Withdrawal>> {
    let db = state.engine().db();
    let Some(order) = db
        .orders_by_no(order_no, Some(merchant))
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    Ok(Some(withdrawal_of(state, order).await?))
}

pub(super) async fn withdrawal_of(state: &AppState, order: OrderRow) -> ApiResult<Withdrawal> {
    let db = state.engine().db();
    let mut last4 = std::collections::HashMap::<i64, String>::new();
    let mut payouts = Vec::new();
    for p in db.payouts_of_order(order.id).await? {
        if let std::collections::hash_map::Entry::Vacant(slot) = last4.entry(p.bank_account_id) {
            let account = db.bank_account(p.bank_account_id).await?;
            slot.insert(account.map(|a| a.last4).unwrap_or_default());
        }
        let l4 = last4[&p.bank_account_id].clone();
        payouts.push(payout_dto(p, l4));
    }
    let discrepancies: Vec<DiscrepancyRow> = db.discrepancies_of_order(order.id).await?;
    Ok(Withdrawal {
        order_no: order.order_no,
        state: order.state,
        amount_minor: order.amount_minor,
        currency: order.currency,
        created_at: order.created_at,
        updated_at: order.updated_at,
        payouts,
        discrepancies: discrepancies.into_iter().map(discrepancy_dto).collect(),
    })
}

pub(super) fn with_location(mut response: Response, order_no: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/withdrawals/{order_no}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Creates a withdrawal order: the amount is reserved from the available balance. The same
/// order number with the same amount again answers with the existing order (200).
#[utoipa::path(
    post, path = "/v1/withdrawals", tag = "withdrawals",
    request_body = WithdrawalRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body get the same answer", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created", body = Withdrawal),
        (status = 200, description = "The same order, requested again", body = Withdrawal),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused (insufficient balance, no bank account, order number used for another request)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is wrong, or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn create_withdrawal(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiJson(req): ApiJson<WithdrawalRequest>,
) -> ApiResult<Response> {
    let order_no = order_no(&req.order_no, "order_no")?;
    let currency = Currency::parse(&req.currency).map_err(|e| ApiError::invalid("currency", e))?;
    if req.amount_minor <= 0 {
        return Err(ApiError::invalid(
            "amount_minor",
            format!(
                "must be a positive integer of minor units, got {}",
                req.amount_minor
            ),
        ));
    }
    let outcome = state
        .engine()
        .withdraw(
            &WithdrawRequest {
                merchant: caller.0.clone(),
                order_no,
                amount: Money::from_minor(req.amount_minor, currency),
            },
            Utc::now(),
            &caller.actor(),
        )
        .await?;
    let status = match outcome {
        WithdrawOutcome::Created(_) => StatusCode::CREATED,
        WithdrawOutcome::Existing(_) => StatusCode::OK,
    };
    let order = outcome.order().clone();
    let no = order.order_no.clone();
    let body = withdrawal_of(&state, order).await?;
    Ok(with_location((status, Json(body)).into_response(), &no))
}

/// One order with every payout (failed ones too) and its discrepancies.
#[utoipa::path(
    get, path = "/v1/withdrawals/{order_no}", tag = "withdrawals",
    params(("order_no" = String, Path, description = "The merchant's order number", pattern = "^[A-Za-z0-9._/-]{1,35}$")),
    responses(
        (status = 200, body = Withdrawal),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of this merchant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn get_withdrawal(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(no): Path<String>,
) -> ApiResult<Json<Withdrawal>> {
    let not_found = || ApiError::NotFound(format!("no order {no:?}"));
    if OrderNo::parse(&no).is_err() {
        return Err(not_found());
    }
    load_withdrawal(&state, caller.0.as_str(), &no)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// The merchant's orders, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/withdrawals", tag = "withdrawals",
    params(ListWithdrawalsQuery),
    responses(
        (status = 200, body = WithdrawalPage),
        (status = 400, description = "A query parameter is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn list_withdrawals(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiQuery(q): ApiQuery<ListWithdrawalsQuery>,
) -> ApiResult<Json<WithdrawalPage>> {
    let limit = page_limit(q.limit)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    let state_filter = match &q.status {
        Some(status) => Some(
            OrderState::parse(status)
                .map_err(|e| ApiError::bad_request(e, Some("status")))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let page = OrderPage {
        merchant_id: caller.0.to_string(),
        after,
        state: state_filter,
        created_from: time_param(q.created_from.as_deref(), "created_from")?,
        created_to: time_param(q.created_to.as_deref(), "created_to")?,
        limit: limit + 1,
    };
    let mut rows: Vec<OrderRow> = state.engine().db().orders_page_of_merchant(&page).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(WithdrawalPage {
        data: rows
            .into_iter()
            .map(|o| WithdrawalSummary {
                order_no: o.order_no,
                state: o.state,
                amount_minor: o.amount_minor,
                currency: o.currency,
                created_at: o.created_at,
                updated_at: o.updated_at,
            })
            .collect(),
        next_cursor,
    }))
}

/// Cancels an order whose money has not gone to a bank: it returns to the available balance.
#[utoipa::path(
    post, path = "/v1/withdrawals/{order_no}/cancel", tag = "withdrawals",
    params(
        ("order_no" = String, Path, description = "The merchant's order number", pattern = "^[A-Za-z0-9._/-]{1,35}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$"),
    ),
    request_body(content = Option<CancelRequest>, description = "Optional: why"),
    responses(
        (status = 200, body = Withdrawal),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Money may be at a bank: it cannot be cancelled now", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn cancel_withdrawal(
    State(state): State<AppState>,
    caller: MerchantCaller,
    Path(no): Path<String>,
    OptionalJson(req): OptionalJson<CancelRequest>,
) -> ApiResult<Json<Withdrawal>> {
    let order_no =
        OrderNo::parse(&no).map_err(|_| ApiError::NotFound(format!("no order {no:?}")))?;
    let reason = req
        .and_then(|r| r.reason)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "cancelled by the merchant through the API".to_string());
    if reason.chars().count() > 500 {
        return Err(ApiError::invalid("reason", "at most 500 characters"));
    }
    let row = state
        .engine()
        .cancel_order(
            &OrderRef {
                order_no,
                merchant: Some(caller.0.clone()),
            },
            &reason,
            Utc::now(),
            &caller.actor(),
        )
        .await?;
    Ok(Json(withdrawal_of(&state, row).await?))
}
