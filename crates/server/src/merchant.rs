//! The merchant API, `/v1`: withdrawals, balance, bank account, events, webhook. A merchant is
//! known by its API key and sees only its own data: another merchant's order is "not found".
//! Amounts are integer minor units with their currency; times are RFC 3339 UTC.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use disburse_core::account::{
    AccountError, AccountNumber, BankAccount as CoreBankAccount, Bic, CountryCode, HolderName,
    Iban, LocalAccount,
};
use disburse_core::{Currency, LedgerAccount, Money, OrderNo, OrderState};
use disburse_engine::views_support::natural_sign;
use disburse_engine::{OrderRef, WithdrawOutcome, WithdrawRequest};
use disburse_store::{fmt_time, DiscrepancyRow, OrderPage, OrderRow, PayoutRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::MerchantCaller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::schema::{CurrencyCode, OrderStateName, PayoutStateName};
use crate::webhooks;
use crate::AppState;

pub const PAGE_LIMIT_DEFAULT: i64 = 50;
pub const PAGE_LIMIT_MAX: i64 = 100;

// ---------------------------------------------------------------------------------------------
// Wire types

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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Balances in one currency, each as a non-negative amount in the normal case.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyBalance {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// What the merchant may withdraw.
    pub available_minor: i64,
    /// Reserved for open orders, not yet with a bank.
    pub withdrawing_minor: i64,
    /// Sent to a bank, outcome not final.
    pub in_transit_minor: i64,
    /// What the merchant owes (a bank overpaid it).
    pub receivable_minor: i64,
    /// What a bank underpaid and is still owed to the merchant.
    pub shortfall_minor: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub merchant: String,
    pub balances: Vec<CurrencyBalance>,
}

/// The bank account payouts go to: an IBAN, or a local account (country, bank code, number).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountRequest {
    pub holder: String,
    pub iban: Option<String>,
    pub country: Option<String>,
    pub bank_code: Option<String>,
    pub number: Option<String>,
    pub bic: Option<String>,
}

/// The account as stored, masked: only the last four digits of the number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BankAccount {
    pub version: i64,
    pub holder: String,
    /// `iban` or `local`.
    pub kind: String,
    pub country: String,
    pub last4: String,
    pub bic: Option<String>,
    /// Payouts started at once for orders that waited for this fix.
    pub retried_payouts: Vec<String>,
}

/// One message to the merchant (also delivered by webhook).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: i64,
    /// `order.accepted`, `payout.succeeded`, `order.cancelled`, ...
    pub topic: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    /// When the webhook receiver acknowledged it, if it did.
    pub delivered_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<Event>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn order_no(text: &str, field: &str) -> ApiResult<OrderNo> {
    OrderNo::parse(text).map_err(|e| ApiError::invalid(field, e))
}

fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(n) if (1..=PAGE_LIMIT_MAX).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            format!("limit must be 1 to {PAGE_LIMIT_MAX}, got {n}"),
            Some("limit"),
        )),
    }
}

/// Cursors are the id of the last item of the previous page.
pub fn parse_cursor(cursor: Option<&str>) -> ApiResult<i64> {
    match cursor {
        None => Ok(0),
        Some(c) => {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::bad_request("cursor is not one we gave out", Some("cursor"))
            })
        }
    }
}

fn time_param(text: Option<&str>, field: &str) -> ApiResult<Option<String>> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|d| fmt_time(d.with_timezone(&Utc)))
            .map_err(|e| {
                ApiError::bad_request(format!("{field}: {e} (write RFC 3339)"), Some(field))
            })
    })
    .transpose()
}

fn payout_dto(p: PayoutRow, last4: String) -> Payout {
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

async fn withdrawal_of(state: &AppState, order: OrderRow) -> ApiResult<Withdrawal> {
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

fn with_location(mut response: Response, order_no: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/withdrawals/{order_no}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Handlers

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

/// What the merchant has with us, per currency.
#[utoipa::path(
    get, path = "/v1/balance", tag = "merchant",
    responses((status = 200, body = Balance), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn get_balance(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<Balance>> {
    let m = caller.0.clone();
    let accounts = [
        LedgerAccount::MerchantAvailable(m.clone()),
        LedgerAccount::MerchantWithdrawing(m.clone()),
        LedgerAccount::MerchantInTransit(m.clone()),
        LedgerAccount::MerchantReceivable(m.clone()),
        LedgerAccount::MerchantShortfall(m.clone()),
    ]
    .map(|a| a.to_string());
    // Summed by the store without overflow (store::sums).
    let rows = state.engine().db().balances_of(&accounts).await?;
    let mut by_currency = std::collections::BTreeMap::<String, CurrencyBalance>::new();
    for (account, currency, total) in rows {
        let b = by_currency
            .entry(currency.clone())
            .or_insert_with(|| CurrencyBalance {
                currency,
                available_minor: 0,
                withdrawing_minor: 0,
                in_transit_minor: 0,
                receivable_minor: 0,
                shortfall_minor: 0,
            });
        let amount = natural_sign(&account, total);
        let slot = match accounts.iter().position(|a| *a == account) {
            Some(0) => &mut b.available_minor,
            Some(1) => &mut b.withdrawing_minor,
            Some(2) => &mut b.in_transit_minor,
            Some(3) => &mut b.receivable_minor,
            _ => &mut b.shortfall_minor,
        };
        *slot = amount;
    }
    Ok(Json(Balance {
        merchant: m.to_string(),
        balances: by_currency.into_values().collect(),
    }))
}

fn account_field(e: &AccountError, default: &'static str) -> &'static str {
    match e {
        AccountError::BadBankCode { .. } => "bank_code",
        AccountError::BadLocalNumber { .. } => "number",
        AccountError::CountryUsesIban(_) | AccountError::BadCountryCode(_) => "country",
        AccountError::BicWrongLength(_) | AccountError::BadBic(_) => "bic",
        AccountError::BadHolderName(_) => "holder",
        _ => default,
    }
}

pub(crate) fn parse_bank_account(req: &BankAccountRequest) -> ApiResult<CoreBankAccount> {
    let holder = HolderName::parse(&req.holder).map_err(|e| ApiError::invalid("holder", e))?;
    let bic = req
        .bic
        .as_deref()
        .map(Bic::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("bic", e))?;
    let local = (&req.country, &req.bank_code, &req.number);
    let number: AccountNumber = match (&req.iban, local) {
        (Some(iban), (None, None, None)) => Iban::parse(iban)
            .map_err(|e| ApiError::invalid(account_field(&e, "iban"), e))?
            .into(),
        (None, (Some(country), Some(code), Some(number))) => {
            let country =
                CountryCode::parse(country).map_err(|e| ApiError::invalid("country", e))?;
            LocalAccount::new(country, code, number)
                .map_err(|e| ApiError::invalid(account_field(&e, "number"), e))?
                .into()
        }
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "iban",
                "give either an IBAN or country, bank_code and number, not both",
            ))
        }
        (None, (None, _, _)) if req.bank_code.is_none() && req.number.is_none() => {
            return Err(ApiError::invalid(
                "iban",
                "give an IBAN, or country, bank_code and number",
            ))
        }
        (None, (country, code, _)) => {
            let missing = if country.is_none() {
                "country"
            } else if code.is_none() {
                "bank_code"
            } else {
                "number"
            };
            return Err(ApiError::invalid(
                missing,
                "a local account needs country, bank_code and number",
            ));
        }
    };
    Ok(CoreBankAccount::new(holder, number, bic))
}

/// Sets the account payouts go to (a new version; earlier payouts keep theirs). Orders waiting
/// for an account fix are paid again at once where their channel allows it.
#[utoipa::path(
    put, path = "/v1/bank-account", tag = "merchant",
    request_body = BankAccountRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = BankAccount),
        (status = 422, description = "The IBAN, BIC, bank code, number or holder is wrong", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn put_bank_account(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiJson(req): ApiJson<BankAccountRequest>,
) -> ApiResult<Json<BankAccount>> {
    let account = parse_bank_account(&req)?;
    let set = state
        .engine()
        .set_bank_account(&caller.0, &account, Utc::now(), &caller.actor())
        .await?;
    Ok(Json(BankAccount {
        version: set.account.version,
        holder: set.account.holder_name,
        kind: set.account.kind,
        country: set.account.country,
        last4: set.account.last4,
        bic: set.account.bic,
        retried_payouts: set.retried,
    }))
}

/// The merchant's messages (the outbox), oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/events", tag = "merchant",
    params(PageQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = page_limit(q.limit)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    let mut events = state
        .engine()
        .db()
        .outbox_page_of_merchant(caller.0.as_str(), after, limit + 1)
        .await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next_cursor = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(EventPage {
        data: events
            .into_iter()
            .map(|e| Event {
                id: e.id,
                topic: e.topic,
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                created_at: e.created_at,
                delivered_at: e.delivered_at,
            })
            .collect(),
        next_cursor,
    }))
}

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
