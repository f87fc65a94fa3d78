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

// One room per resource; they share the imports above (`use super::*`) and are re-exported
// whole, so routes and the OpenAPI document name `merchant::<handler>` as before.
mod balance;
mod bank_account;
mod events;
mod webhook;
mod withdrawals;

pub use balance::*;
pub use bank_account::*;
pub use events::*;
pub use webhook::*;
pub use withdrawals::*;

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
