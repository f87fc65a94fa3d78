//! The operator console at `/console`: the exception desk in a browser, server-rendered HTML
//! (maud), readable without JavaScript, in English and Simplified Chinese.
//!
//! It decides nothing and writes no business SQL: pages are drawn from the engine's read models
//! (`overview`, `exceptions`, `order_view`, `corrections`, `payout_order`, `discrepancy_desk`,
//! `batches`, `preview_results`, `reconcile`) and every change is an engine use case (`propose_correction`,
//! `approve_correction`, `reject_correction`, `resolve_discrepancy`, `import_results`, the queue's
//! `claim_exception`, `release_exception`, `comment_exception`, `handle_exception`,
//! `record_manual_result` for a paper notice, `decide_statement_entry` for a suggested match)
//! attributed to the signed-in operator. Its only table is `console_sessions` (see [`session`]). Roles are checked
//! here before the engine is asked (viewer reads, operator proposes, approver decides) and again
//! by the engine; every form that changes something carries the session's CSRF token, checked on
//! the server (403 without it).

mod audit;
mod files;
mod i18n;
mod merchants;
mod pages;
mod reconciliation;
mod results;
pub mod session;

pub use files::remove_stale_uploads;

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{NaiveDate, Utc};
use disburse_core::correction::CorrectionKind;
use disburse_core::{Currency, MerchantId, Money, OrderNo, PayoutNo};
use disburse_engine::{OrderRef, Resolution};
use maud::Markup;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::ClientAddr;
use crate::error::ApiError;
use crate::AppState;
use i18n::{tr, Lang, LANG_COOKIE, T};
use session::{Signed, COOKIE, CSRF_FIELD, LOGIN_CSRF_COOKIE};

/// Forms are small; nothing the console takes is larger.
const FORM_MAX_BYTES: usize = 64 * 1024;
/// Exceptions per page.
pub const PAGE_SIZE: usize = 25;

const CSS: &str = include_str!("../../assets/console.css");

/// The console's routes, with the state they share. Mounted beside the APIs, outside their
/// problem+json layer: the console answers in HTML, errors included.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/assets/console.css", get(css))
        .route("/console/lang", get(switch_lang))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/exceptions", get(exceptions))
        .route("/console/exceptions.csv", get(exceptions_csv))
        .route("/console/exceptions/{action}", post(work_item))
        .route("/console/search", get(search))
        .route("/console/orders/{merchant}/{order_no}", get(order))
        .route("/console/corrections", get(corrections).post(propose))
        .route("/console/corrections/{id}/approve", post(approve))
        .route("/console/corrections/{id}/reject", post(reject))
        .route("/console/discrepancies", get(discrepancies))
        .route(
            "/console/discrepancies/{id}/resolve",
            post(resolve_discrepancy),
        )
        .route("/console/batches", get(files::batches))
        .route("/console/batches/{id}/file", get(files::batch_file))
        .route("/console/batches/{id}/sheet", get(files::batch_sheet))
        .route("/console/files/apply", post(files::apply))
        .route("/console/audit", get(audit::audit))
        .route("/console/audit.csv", get(audit::audit_csv))
        .route("/console/audit/verify", post(audit::verify))
        .route("/console/ledger", get(audit::ledger))
        .route("/console/ledger.csv", get(audit::ledger_csv))
        .route("/console/merchants", get(merchants::list))
        .route("/console/merchants/{id}", get(merchants::one))
        .route(
            "/console/merchants/{id}/account",
            post(merchants::fix_account),
        )
        .route("/console/reconciliation", get(reconciliation::page_of))
        .route(
            "/console/reconciliation/entries/{entry}/{decision}",
            post(reconciliation::decide),
        )
        .route("/console/payouts/{payout_no}/result", get(results::form))
        .layer(RequestBodyLimitLayer::new(FORM_MAX_BYTES))
        // A notice's evidence file, with the form's few short fields.
        .merge(
            Router::new()
                .route("/console/payouts/{payout_no}/result", post(results::enter))
                .layer(DefaultBodyLimit::max(
                    results::EVIDENCE_MAX_BYTES + FORM_MAX_BYTES,
                ))
                .layer(RequestBodyLimitLayer::new(
                    results::EVIDENCE_MAX_BYTES + FORM_MAX_BYTES,
                )),
        )
        // A result file is as large as the API takes; streamed to disk, never held whole.
        .merge(
            Router::new()
                .route("/console/files/preview", post(files::preview))
                .layer(DefaultBodyLimit::max(crate::UPLOAD_MAX_BYTES))
                .layer(RequestBodyLimitLayer::new(crate::UPLOAD_MAX_BYTES)),
        )
        .with_state(state)
}

/// A whole page, with the headers every console page has: not cached, not framed, no script or
/// style from elsewhere.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Response, cookie: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A page that says why something was not done.
fn problem(lang: Lang, signed: Option<&Signed>, status: StatusCode, text: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => tr(lang, T::Forbidden),
        StatusCode::NOT_FOUND => tr(lang, T::NotFound),
        _ => tr(lang, T::Refused),
    };
    html(status, pages::problem(lang, signed, title, text))
}

fn api_problem(lang: Lang, signed: Option<&Signed>, e: ApiError) -> Response {
    if let ApiError::Internal(message) = &e {
        tracing::error!(error = %message, "console: internal error");
    }
    let p = e.problem();
    problem(lang, signed, e.status(), &p.detail)
}

/// The signed-in operator, or the sign-in page to go to.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    let lang = Lang::of(headers);
    let Some(token) = session::cookie(headers, COOKIE) else {
        return Err(redirect("/console/login"));
    };
    match session::resolve(state.engine(), &token, Utc::now()).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(redirect("/console/login")),
        Err(e) => Err(api_problem(lang, None, e)),
    }
}

/// A posted form's fields.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

type Posted = Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>;

/// The form's fields if it carries this session's CSRF token; the 403 page otherwise.
/// A posted form of a signed-in operator, its CSRF token checked: what every console form handler
/// starts with. The error is the answer to send (the sign-in page, or the refusal).
async fn signed_form(
    state: &AppState,
    headers: &HeaderMap,
    form: Posted,
) -> Result<(Lang, Signed, Fields), Box<Response>> {
    let lang = Lang::of(headers);
    let signed = signed_in(state, headers).await.map_err(Box::new)?;
    let fields = checked_form(lang, &signed, form)?;
    Ok((lang, signed, fields))
}

/// 403 with the reason a role may not do this.
fn forbidden(lang: Lang, signed: &Signed, why: T) -> Response {
    problem(lang, Some(signed), StatusCode::FORBIDDEN, tr(lang, why))
}

fn checked_form(lang: Lang, signed: &Signed, form: Posted) -> Result<Fields, Box<Response>> {
    let fields = Fields(form.map(|Form(f)| f).unwrap_or_default());
    if session::same_token(fields.get(CSRF_FIELD), &signed.csrf) {
        Ok(fields)
    } else {
        tracing::warn!(operator = %signed.name, "console: form refused without a valid CSRF token");
        Err(Box::new(problem(
            lang,
            Some(signed),
            StatusCode::FORBIDDEN,
            tr(lang, T::CsrfRefused),
        )))
    }
}

/// The overview: money in transit, exceptions by kind and age, import lag, today's files.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.engine().overview(Utc::now()).await {
        Ok(o) => html(StatusCode::OK, pages::overview(lang, &signed, &o)),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

async fn css() -> Response {
    let mut r = CSS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

/// The language switch: remembers the choice and goes back to the page it was chosen on.
async fn switch_lang(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let lang = q.get("to").and_then(|t| Lang::parse(t)).unwrap_or(Lang::En);
    // Only back into the console: the switch is no open redirect.
    let back = q
        .get("back")
        .filter(|b| b.starts_with("/console") && !b.starts_with("//") && !b.contains('\\'))
        .map(String::as_str)
        .unwrap_or("/console/exceptions");
    with_cookie(
        redirect(back),
        session::set_cookie(
            LANG_COOKIE,
            lang.tag(),
            365 * 24 * 3600,
            session::behind_tls(&headers),
        ),
    )
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await.is_ok() {
        return redirect("/console/exceptions");
    }
    fresh_login_form(&headers, StatusCode::OK, false)
}

fn fresh_login_form(headers: &HeaderMap, status: StatusCode, wrong: bool) -> Response {
    let lang = Lang::of(headers);
    let csrf = crate::auth::random_token("");
    with_cookie(
        html(status, pages::login(lang, &csrf, wrong)),
        session::set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, session::behind_tls(headers)),
    )
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    form: Posted,
) -> Response {
    let lang = Lang::of(&headers);
    let fields = Fields(form.map(|Form(f)| f).unwrap_or_default());
    let expected = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !session::same_token(fields.get(CSRF_FIELD), &expected) {
        return problem(lang, None, StatusCode::FORBIDDEN, tr(lang, T::CsrfRefused));
    }
    let name = fields.get("name").trim();
    match session::sign_in(&state, name, fields.get("password"), address, Utc::now()).await {
        Ok(token) => {
            let secure = session::behind_tls(&headers);
            let r = with_cookie(
                redirect("/console/exceptions"),
                session::set_cookie(COOKIE, &token, session::ABSOLUTE_HOURS * 3600, secure),
            );
            with_cookie(r, session::set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure))
        }
        Err(ApiError::Unauthorized(_)) => {
            fresh_login_form(&headers, StatusCode::UNAUTHORIZED, true)
        }
        // Throttled (429, with Retry-After) or locked out (403): the page says why.
        Err(e) => {
            let retry = match &e {
                ApiError::TooManyRequests {
                    retry_after_secs, ..
                } => Some(*retry_after_secs),
                _ => None,
            };
            let mut r = api_problem(lang, None, e);
            if let Some(secs) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                r.headers_mut().insert(header::RETRY_AFTER, secs);
            }
            r
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let (lang, signed, _) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if let Err(e) = session::sign_out(state.engine(), &signed).await {
        return api_problem(lang, Some(&signed), e);
    }
    with_cookie(
        redirect("/console/login"),
        session::set_cookie(COOKIE, "", 0, session::behind_tls(&headers)),
    )
}

/// Every kind in the queue, and the items the query's `kind` and `merchant` keep.
async fn filtered_exceptions(
    state: &AppState,
    q: &HashMap<String, String>,
) -> Result<(Vec<String>, Vec<disburse_engine::ExceptionItem>), ApiError> {
    let items = state
        .engine()
        .exceptions(Utc::now())
        .await
        .map_err(ApiError::from)?;
    let mut kinds: Vec<String> = items.iter().map(|i| i.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let kind = q.get("kind").map(|k| k.trim()).unwrap_or("");
    let merchant = q.get("merchant").map(|m| m.trim()).unwrap_or("");
    let filtered = items
        .into_iter()
        .filter(|i| kind.is_empty() || i.kind == kind)
        .filter(|i| merchant.is_empty() || i.merchant.as_deref() == Some(merchant))
        .collect();
    Ok((kinds, filtered))
}

/// The filtered queue, all of it, as CSV (formula cells neutralised).
async fn exceptions_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let items = match filtered_exceptions(&state, &q).await {
        Ok((_, items)) => items,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    let rows: Vec<Vec<String>> = items
        .into_iter()
        .map(|i| {
            vec![
                i.id,
                i.kind,
                i.age_hours.to_string(),
                i.amount
                    .as_ref()
                    .map(|a| a.amount_minor.to_string())
                    .unwrap_or_default(),
                i.amount.map(|a| a.currency).unwrap_or_default(),
                i.merchant.unwrap_or_default(),
                i.order_no.unwrap_or_default(),
                i.payout_no.unwrap_or_default(),
                i.reason,
                i.action,
                i.source.unwrap_or_default(),
            ]
        })
        .collect();
    let headers_row = [
        "id",
        "kind",
        "age_hours",
        "amount_minor",
        "currency",
        "merchant",
        "order_no",
        "payout_no",
        "reason",
        "needs",
        "source",
    ];
    match disburse_engine::csv_export(&headers_row, &rows) {
        Ok(bytes) => audit::csv_response("exceptions.csv", bytes),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// The exceptions queue, filtered by kind and merchant, a page at a time.
async fn exceptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (kinds, filtered) = match filtered_exceptions(&state, &q).await {
        Ok(v) => v,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    let kind = q.get("kind").map(|k| k.trim()).unwrap_or("");
    let merchant = q.get("merchant").map(|m| m.trim()).unwrap_or("");
    let pages_total = filtered.len().div_ceil(PAGE_SIZE).max(1);
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages_total);
    let shown: Vec<_> = filtered
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .cloned()
        .collect();
    let work = match state.engine().exception_work().await {
        Ok(w) => w,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    html(
        StatusCode::OK,
        pages::exceptions(
            lang,
            &signed,
            &pages::ExceptionsPage {
                work,
                kinds,
                kind: kind.to_string(),
                merchant: merchant.to_string(),
                page,
                pages_total,
                total: filtered.len(),
                items: shown,
            },
        ),
    )
}

/// Working a queue item: `claim`, `release`, `comment` or `handle` (the last two with a `note`).
/// Viewers are refused here before the engine is asked (it refuses them again).
async fn work_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(action): Path<String>,
    form: Posted,
) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !signed.role.may_propose() {
        return forbidden(lang, &signed, T::MayNotWork);
    }
    let item = fields.get("item").trim();
    if item.is_empty() {
        return api_problem(
            lang,
            Some(&signed),
            field_error("item", "name the queue item"),
        );
    }
    let note = fields.get("note");
    let engine = state.engine();
    let now = Utc::now();
    let done = match action.as_str() {
        "claim" => engine
            .claim_exception(item, now, &signed.name)
            .await
            .map(|_| ()),
        "release" => engine.release_exception(item, now, &signed.name).await,
        "comment" => engine
            .comment_exception(item, note, now, &signed.name)
            .await
            .map(|_| ()),
        "handle" => engine
            .handle_exception(item, note, now, &signed.name)
            .await
            .map(|_| ()),
        _ => {
            return problem(
                lang,
                Some(&signed),
                StatusCode::NOT_FOUND,
                tr(lang, T::NotFound),
            )
        }
    };
    match done {
        Ok(()) => {
            // Back to the queue page the form was on; never anywhere else.
            let back = fields.get("back");
            let back = if back.starts_with("/console/exceptions")
                && !back.contains("//")
                && !back.contains('\\')
            {
                back
            } else {
                "/console/exceptions"
            };
            redirect(back)
        }
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// Search by order number or payout number: one match opens the order, several are listed.
async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let text: String = q
        .get("q")
        .map(|t| t.trim().chars().take(64).collect())
        .unwrap_or_default();
    let mut found: Vec<(String, String)> = Vec::new();
    let mut anchor = String::new();
    if !text.is_empty() {
        if PayoutNo::parse(&text).is_ok() {
            match state.engine().payout_order(&text).await {
                Ok(Some(p)) => {
                    anchor = format!("#{}", p.payout_no);
                    found.push((p.merchant, p.order_no));
                }
                Ok(None) => {}
                Err(e) => return api_problem(lang, Some(&signed), e.into()),
            }
        }
        if found.is_empty() && OrderNo::parse(&text).is_ok() {
            match state.engine().orders_numbered(&text).await {
                Ok(orders) => found = orders,
                Err(e) => return api_problem(lang, Some(&signed), e.into()),
            }
        }
    }
    if let [(merchant, order_no)] = found.as_slice() {
        return redirect(&format!(
            "{}{anchor}",
            pages::order_href(merchant, order_no)
        ));
    }
    html(StatusCode::OK, pages::search(lang, &signed, &text, &found))
}

/// One order: every payout, and one timeline of what happened to them and why.
async fn order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((merchant, order_no)): Path<(String, String)>,
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
            &format!("{}: {merchant} / {order_no}", tr(lang, T::NotFound)),
        )
    };
    let (Ok(m), Ok(o)) = (MerchantId::parse(&merchant), OrderNo::parse(&order_no)) else {
        return not_found();
    };
    let view = state
        .engine()
        .order_view(&OrderRef {
            order_no: o,
            merchant: Some(m),
        })
        .await;
    match view {
        Ok(v) => {
            let config = state.engine().config();
            let paper: Vec<String> = v
                .payouts
                .iter()
                .filter(|p| {
                    config
                        .channel(&p.channel)
                        .is_ok_and(|c| c.kind == disburse_engine::ChannelKind::Manual)
                })
                .map(|p| p.payout_no.clone())
                .collect();
            html(StatusCode::OK, pages::order(lang, &signed, &v, &paper))
        }
        Err(disburse_engine::EngineError::NotFound { .. }) => not_found(),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// Corrections: waiting for my approval, proposed by me, all; and the form to propose one.
async fn corrections(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let all = match state.engine().corrections(None).await {
        Ok(c) => c,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    let done = match q.get("done").map(String::as_str) {
        Some("proposed") => Some(T::Proposed),
        Some("approved") => Some(T::Approved),
        Some("rejected") => Some(T::Rejected),
        _ => None,
    };
    let payout: String = q
        .get("payout")
        .map(|p| p.trim().chars().take(32).collect())
        .unwrap_or_default();
    html(
        StatusCode::OK,
        pages::corrections(lang, &signed, &all, done, &payout),
    )
}

fn field_error(field: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(field, format!("{field}: {detail}"))
}

fn short_text(fields: &Fields, field: &str) -> Result<String, ApiError> {
    let v = fields.get(field).trim();
    if v.is_empty() || v.chars().count() > 140 {
        return Err(field_error(field, "must be 1 to 140 characters"));
    }
    Ok(v.to_string())
}

/// What the propose form says should have been recorded, with amounts in the payout's currency.
fn correction_kind(fields: &Fields, currency: Currency) -> Result<CorrectionKind, ApiError> {
    let paid = || {
        Money::parse_positive(fields.get("amount").trim(), currency)
            .map_err(|e| field_error("amount", e))
    };
    Ok(match fields.get("kind") {
        "confirm_succeeded" => CorrectionKind::ConfirmSucceeded {
            paid: paid()?,
            bank_reference: short_text(fields, "bank_reference")?,
            value_date: match fields.get("value_date").trim() {
                "" => None,
                d => Some(
                    NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|e| field_error("value_date", format!("{d:?}: {e}")))?,
                ),
            },
        },
        "confirm_failed" => CorrectionKind::ConfirmFailed {
            reason_code: short_text(fields, "reason_code")?,
        },
        "amend_paid_amount" => CorrectionKind::AmendPaidAmount { paid: paid()? },
        "record_return" => CorrectionKind::RecordReturn {
            reason_code: short_text(fields, "reason_code")?,
        },
        "cancel_order" => CorrectionKind::CancelOrder,
        other => return Err(field_error("kind", format!("unknown kind {other:?}"))),
    })
}

async fn propose(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !signed.role.may_propose() {
        return forbidden(lang, &signed, T::MayNotPropose);
    }
    let result = async {
        let payout_no = PayoutNo::parse(fields.get("payout_no").trim())
            .map_err(|e| field_error("payout_no", e))?;
        let payout = state
            .engine()
            .payout_order(payout_no.as_str())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no payout {payout_no}")))?;
        let currency = Currency::parse(&payout.currency).map_err(ApiError::internal)?;
        let kind = correction_kind(&fields, currency)?;
        state
            .engine()
            .propose_correction(
                &payout_no,
                &kind,
                fields.get("reason").trim(),
                fields.get("evidence").trim(),
                Utc::now(),
                &signed.name,
            )
            .await?;
        Ok::<(), ApiError>(())
    }
    .await;
    match result {
        Ok(()) => redirect("/console/corrections?done=proposed"),
        Err(e) => api_problem(lang, Some(&signed), e),
    }
}

/// The correction a checker decides: refused here when the role may not decide or the checker
/// is its maker (the engine refuses both again).
async fn decidable(
    state: &AppState,
    lang: Lang,
    signed: &Signed,
    id: &str,
) -> Result<i64, Response> {
    if !signed.role.may_approve() {
        return Err(problem(
            lang,
            Some(signed),
            StatusCode::FORBIDDEN,
            tr(lang, T::MayNotApprove),
        ));
    }
    let not_found = || {
        problem(
            lang,
            Some(signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {id}", tr(lang, T::NotFound)),
        )
    };
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return Err(not_found());
    };
    let all = state
        .engine()
        .corrections(None)
        .await
        .map_err(|e| api_problem(lang, Some(signed), e.into()))?;
    let c = all.iter().find(|c| c.id == id).ok_or_else(not_found)?;
    if c.proposed_by == signed.name.as_str() {
        return Err(problem(
            lang,
            Some(signed),
            StatusCode::FORBIDDEN,
            tr(lang, T::OwnProposal),
        ));
    }
    Ok(id)
}

async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Posted,
) -> Response {
    let (lang, signed, _) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let id = match decidable(&state, lang, &signed, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state
        .engine()
        .approve_correction(id, Utc::now(), &signed.name)
        .await
    {
        Ok(_) => redirect("/console/corrections?done=approved"),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Posted,
) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let id = match decidable(&state, lang, &signed, &id).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    match state
        .engine()
        .reject_correction(id, fields.get("reason").trim(), Utc::now(), &signed.name)
        .await
    {
        Ok(_) => redirect("/console/corrections?done=rejected"),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// Discrepancies, open ones (or all), with what was done and what the merchant was told.
async fn discrepancies(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let all = q.get("all").is_some_and(|v| v == "1");
    match state.engine().discrepancy_desk(!all).await {
        Ok(list) => html(
            StatusCode::OK,
            pages::discrepancies(lang, &signed, all, &list, q.contains_key("done")),
        ),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// What a settle form asks for, as the engine's resolution.
fn resolution_of(fields: &Fields) -> Result<Resolution, ApiError> {
    Ok(match fields.get("resolution") {
        "refund_received" => Resolution::RefundReceived {
            reference: short_text(fields, "reference")?,
        },
        "propose_write_off" => Resolution::ProposeWriteOff,
        "approve_write_off" => Resolution::ApproveWriteOff,
        "top_up_now" => Resolution::TopUpNow {
            channel: Some(fields.get("channel").trim())
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        },
        "net_against_next" => Resolution::NetAgainstNext,
        "add_to_next" => Resolution::AddToNext,
        other => {
            return Err(field_error(
                "resolution",
                format!("unknown resolution {other:?}"),
            ))
        }
    })
}

/// Settles (or starts settling) a discrepancy through the engine's use case. Approving a
/// write-off needs the approver role and another person than its proposer, refused here and
/// again by the engine.
async fn resolve_discrepancy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Posted,
) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let refuse = |t: T| problem(lang, Some(&signed), StatusCode::FORBIDDEN, tr(lang, t));
    let resolution = match resolution_of(&fields) {
        Ok(r) => r,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    let approving = resolution == Resolution::ApproveWriteOff;
    if approving && !signed.role.may_approve() {
        return refuse(T::MayNotApproveWriteOff);
    }
    if !signed.role.may_propose() {
        return refuse(T::MayNotResolve);
    }
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {id}", tr(lang, T::NotFound)),
        );
    };
    if approving {
        let open = match state.engine().discrepancies(true).await {
            Ok(d) => d,
            Err(e) => return api_problem(lang, Some(&signed), e.into()),
        };
        let mine = open.iter().any(|d| {
            d.id == id && d.write_off_proposed_by.as_deref() == Some(signed.name.as_str())
        });
        if mine {
            return refuse(T::OwnWriteOff);
        }
    }
    match state
        .engine()
        .resolve_discrepancy(
            id,
            &resolution,
            fields.get("reason").trim(),
            Utc::now(),
            &signed.name,
        )
        .await
    {
        Ok(_) => redirect("/console/discrepancies?done=1"),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}
