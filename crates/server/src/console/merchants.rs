//! Merchants in the console: the list, one merchant (account masked to its last four digits,
//! balances, orders) and the account fix, the engine's `set_bank_account`, which pays the
//! orders waiting for it. The number typed in the form is never shown back, logged or put in
//! an error: pages and messages carry the last four digits only.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use disburse_core::MerchantId;
use disburse_engine::{Actor, MerchantLine, MerchantView};
use maud::{html, Markup};

use super::i18n::{tr, Lang, T};
use super::pages::{csrf, enc, layout, order_href};
use super::session::Signed;
use super::{api_problem, html as page, problem, redirect, signed_in, Fields, Posted};
use super::{forbidden, signed_form};
use crate::merchant::BankAccountRequest;
use crate::AppState;

pub fn merchant_href(id: &str) -> String {
    format!("/console/merchants/{}", enc(id))
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.engine().merchant_lines().await {
        Ok(lines) => page(StatusCode::OK, list_page(lang, &signed, &lines)),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

fn list_page(lang: Lang, signed: &Signed, lines: &[MerchantLine]) -> Markup {
    layout(
        lang,
        tr(lang, T::Merchants),
        "/console/merchants",
        Some(signed),
        html! {
            @if lines.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="merchants" {
                    thead { tr {
                        th { (tr(lang, T::Merchant)) } th { (tr(lang, T::Name)) }
                        th { (tr(lang, T::AccountStatus)) } th { (tr(lang, T::Account)) }
                    } }
                    tbody { @for m in lines {
                        tr data-merchant=(m.id) {
                            td { a href=(merchant_href(&m.id)) { (m.id) } }
                            td { (m.name) }
                            td.state { (m.account_status) }
                            td { @if let Some(l) = &m.account_last4 { "****" (l) } @else { (tr(lang, T::NoAccount)) } }
                        }
                    } }
                }
            }
        },
    )
}

pub async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let not_found = || {
        problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {id}", tr(lang, T::NotFound)),
        )
    };
    let Ok(m) = MerchantId::parse(&id) else {
        return not_found();
    };
    match state.engine().merchant_view(&m).await {
        Ok(v) => page(
            StatusCode::OK,
            merchant_page(lang, &signed, &v, q.get("retried").map(String::as_str)),
        ),
        Err(disburse_engine::EngineError::NotFound { .. }) => not_found(),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

fn text_of(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn merchant_page(lang: Lang, signed: &Signed, v: &MerchantView, retried: Option<&str>) -> Markup {
    let title = format!("{} {}", tr(lang, T::Merchant), v.id);
    layout(
        lang,
        &title,
        &merchant_href(&v.id),
        Some(signed),
        html! {
            @if let Some(r) = retried {
                p.done role="status" { (tr(lang, T::AccountFixed)) " " (if r.is_empty() { "—" } else { r }) }
            }
            p.summary { (v.name) " · " (tr(lang, T::AccountStatus)) ": " b.state id="account-status" { (v.account_status) } }
            h2 { (tr(lang, T::BankAccountTitle)) }
            @if let Some(a) = &v.bank_account {
                table.list id="account" { tbody {
                    tr { th { (tr(lang, T::Account)) } td { code { (text_of(a, "masked")) } } }
                    tr { th { (tr(lang, T::Holder)) } td { (text_of(a, "holder")) } }
                    tr { th { (tr(lang, T::Kind)) } td { (text_of(a, "kind")) " · " (text_of(a, "country")) } }
                    tr { th { "BIC" } td { (text_of(a, "bic")) } }
                    tr { th { (tr(lang, T::Version)) } td { (text_of(a, "version")) } }
                } }
            } @else { p { (tr(lang, T::NoAccount)) } }
            h2 { (tr(lang, T::Balances)) }
            @if v.balances.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="balances" { tbody { @for b in &v.balances {
                    tr { td { code { (b.account) } } td.num { (b.amount.text) } }
                } } }
            }
            h2 { (tr(lang, T::Orders)) }
            @if v.orders.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="orders" {
                    thead { tr { th { (tr(lang, T::Order)) } th { (tr(lang, T::State)) } th { (tr(lang, T::Amount)) } } }
                    tbody { @for (no, state, amount) in &v.orders {
                        tr data-order=(no) {
                            td { a href=(order_href(&v.id, no)) { (no) } }
                            td.state { (state) }
                            td.num { (amount.text) }
                        }
                    } }
                }
            }
            @if signed.role.may_propose() {
                h2 id="fix" { (tr(lang, T::FixAccount)) }
                p { small { (tr(lang, T::FixAccountHint)) } }
                form.card method="post" action={ (merchant_href(&v.id)) "/account" } autocomplete="off" {
                    (csrf(signed))
                    label { (tr(lang, T::Holder)) input name="holder" required; }
                    label { (tr(lang, T::Iban)) input name="iban" spellcheck="false"; }
                    label { (tr(lang, T::Country)) input name="country" maxlength="2"; }
                    label { (tr(lang, T::BankCode)) input name="bank_code"; }
                    label { (tr(lang, T::AccountNumber)) input name="number" spellcheck="false"; }
                    label { (tr(lang, T::Bic)) input name="bic"; }
                    button type="submit" { (tr(lang, T::FixAccount)) }
                }
            }
        },
    )
}

fn optional(fields: &Fields, name: &str) -> Option<String> {
    Some(fields.get(name).trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The account fix: a new version of the merchant's account through the engine, which pays
/// the orders that waited for it.
pub async fn fix_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Posted,
) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !signed.role.may_propose() {
        return forbidden(lang, &signed, T::MayNotFixAccount);
    }
    let Ok(m) = MerchantId::parse(&id) else {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {id}", tr(lang, T::NotFound)),
        );
    };
    let request = BankAccountRequest {
        holder: fields.get("holder").trim().to_string(),
        iban: optional(&fields, "iban"),
        country: optional(&fields, "country"),
        bank_code: optional(&fields, "bank_code"),
        number: optional(&fields, "number"),
        bic: optional(&fields, "bic"),
    };
    let account = match crate::merchant::parse_bank_account(&request) {
        Ok(a) => a,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    match state
        .engine()
        .set_bank_account(&m, &account, Utc::now(), &Actor::operator(&signed.name))
        .await
    {
        Ok(set) => {
            tracing::info!(operator = %signed.name, merchant = %m, last4 = %set.account.last4,
                retried = set.retried.len(), "console: bank account fixed");
            redirect(&format!(
                "{}?retried={}",
                merchant_href(m.as_str()),
                enc(&set.retried.join(" "))
            ))
        }
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}
