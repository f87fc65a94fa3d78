//! Audit and ledger in the console: the audit log filtered by actor, action, subject and time
//! (and exported to CSV), `verify` run from the page, balances and the trial balance per
//! currency (exported too). Every export goes through the formats crate's CSV writer, which
//! neutralises cells a spreadsheet would read as a formula.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use disburse_engine::views_support::MoneyView;
use disburse_engine::{csv_export, AuditFilter, BooksCheck, LedgerView};
use maud::{html, Markup};

use super::i18n::{tr, Lang, T};
use super::pages::{csrf, enc, layout, state_change};
use super::session::Signed;
use super::signed_form;
use super::{api_problem, field_error, html as page, signed_in, Posted};
use crate::error::ApiError;
use crate::AppState;

/// Events on the page; an export takes up to the store's cap.
const PAGE_EVENTS: i64 = 500;
const EXPORT_EVENTS: i64 = 10_000;

/// The filter as typed, kept to show it back and to build the export link.
struct Typed {
    actor: String,
    action: String,
    subject: String,
    from: String,
    to: String,
}

fn typed(q: &HashMap<String, String>) -> Typed {
    let get = |k: &str| -> String {
        q.get(k)
            .map(|v| v.trim().chars().take(120).collect())
            .unwrap_or_default()
    };
    Typed {
        actor: get("actor"),
        action: get("action"),
        subject: get("subject"),
        from: get("from"),
        to: get("to"),
    }
}

fn day(field: &str, text: &str) -> Result<Option<NaiveDate>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|e| field_error(field, format!("{text:?} is not a date YYYY-MM-DD: {e}")))
}

fn filter_of(t: &Typed, limit: i64) -> Result<AuditFilter, ApiError> {
    let some = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
    let stamp = |d: NaiveDate| format!("{}T00:00:00.000000Z", d.format("%Y-%m-%d"));
    let to = match day("to", &t.to)? {
        // Inclusive of the day typed: up to the start of the next.
        Some(d) => Some(stamp(
            d.succ_opt().ok_or_else(|| field_error("to", "too late"))?,
        )),
        None => None,
    };
    Ok(AuditFilter {
        actor: some(&t.actor),
        action: some(&t.action),
        subject: some(&t.subject),
        from: day("from", &t.from)?.map(stamp),
        to,
        limit,
    })
}

fn query_string(t: &Typed) -> String {
    format!(
        "actor={}&action={}&subject={}&from={}&to={}",
        enc(&t.actor),
        enc(&t.action),
        enc(&t.subject),
        enc(&t.from),
        enc(&t.to)
    )
}

pub(super) fn csv_response(name: &str, bytes: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    audit_page_with(state, headers, q, None).await
}

async fn audit_page_with(
    state: AppState,
    headers: HeaderMap,
    q: HashMap<String, String>,
    verified: Option<BooksCheck>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = typed(&q);
    let filter = match filter_of(&t, PAGE_EVENTS) {
        Ok(f) => f,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    match state.engine().audit_log(&filter).await {
        Ok(events) => page(
            StatusCode::OK,
            audit_page(lang, &signed, &t, &events, verified.as_ref()),
        ),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

fn audit_page(
    lang: Lang,
    signed: &Signed,
    t: &Typed,
    events: &[disburse_engine::views_support::AuditView],
    verified: Option<&BooksCheck>,
) -> Markup {
    let here = format!("/console/audit?{}", query_string(t));
    layout(
        lang,
        tr(lang, T::Audit),
        &here,
        Some(signed),
        html! {
            @if let Some(v) = verified {
                @if v.is_ok() {
                    p.done role="status" id="verify-result" data-ok="true" { (tr(lang, T::VerifyOk)) }
                } @else {
                    div.error role="alert" id="verify-result" data-ok="false" {
                        p { (tr(lang, T::VerifyFailed)) }
                        ul {
                            @for f in &v.audit_findings { li { (f) } }
                            @for j in &v.unbalanced_journals { li { "journal " (j) " does not balance" } }
                            @for m in &v.totals { @if m.amount_minor != 0 { li { "ledger total " (m.text) } } }
                        }
                    }
                }
            }
            form.inline method="post" action="/console/audit/verify" {
                (csrf(signed))
                button type="submit" id="verify" { (tr(lang, T::Verify)) }
            }
            form.filters method="get" action="/console/audit" {
                label { (tr(lang, T::Actor)) input name="actor" value=(t.actor) placeholder="operator:ada"; }
                label { (tr(lang, T::ActionPrefix)) input name="action" value=(t.action) placeholder="payout."; }
                label { (tr(lang, T::SubjectPrefix)) input name="subject" value=(t.subject) placeholder="payout:PO"; }
                label { (tr(lang, T::From)) input type="date" name="from" value=(t.from); }
                label { (tr(lang, T::To)) input type="date" name="to" value=(t.to); }
                button type="submit" { (tr(lang, T::Filter)) }
                a.button href={ "/console/audit.csv?" (query_string(t)) } id="export" { (tr(lang, T::ExportCsv)) }
            }
            p { (events.len()) " " (tr(lang, T::Shown)) " " (PAGE_EVENTS) ")" }
            table.list id="audit" {
                thead { tr {
                    th { "#" } th { (tr(lang, T::When)) } th { (tr(lang, T::Actor)) } th { (tr(lang, T::What)) }
                    th { (tr(lang, T::Details)) }
                } }
                tbody { @for e in events {
                    tr data-seq=(e.seq) {
                        td { (e.seq) }
                        td { time { (e.at) } }
                        td { (e.actor) }
                        td { code { (e.action) } br; (e.subject) }
                        td {
                            @if let Some(c) = state_change(&e.detail) { span.state { (c) } " " }
                            @if let Some(r) = &e.reason { (r) }
                            br; code.payload { (e.detail.to_string()) }
                        }
                    }
                } }
            }
        },
    )
}

pub async fn audit_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = match filter_of(&typed(&q), EXPORT_EVENTS) {
        Ok(f) => f,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    let events = match state.engine().audit_log(&filter).await {
        Ok(e) => e,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.at.clone(),
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                e.reason.clone().unwrap_or_default(),
                e.detail.to_string(),
            ]
        })
        .collect();
    match csv_export(
        &[
            "seq", "at", "actor", "action", "subject", "reason", "detail",
        ],
        &rows,
    ) {
        Ok(bytes) => csv_response("audit.csv", bytes),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

/// `verify` from the page: a read, but a heavy one, so a form (with its token) asks for it.
pub async fn verify(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let (lang, signed, _) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match state.engine().verify_books().await {
        Ok(check) => {
            tracing::info!(operator = %signed.name, ok = check.is_ok(), "console: verify run");
            audit_page_with(state, headers, HashMap::new(), Some(check)).await
        }
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

pub async fn ledger(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.engine().ledger_view().await {
        Ok(v) => page(StatusCode::OK, ledger_page(lang, &signed, &v)),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}

fn ledger_page(lang: Lang, signed: &Signed, v: &LedgerView) -> Markup {
    layout(
        lang,
        tr(lang, T::Ledger),
        "/console/ledger",
        Some(signed),
        html! {
            h2 { (tr(lang, T::TrialBalance)) }
            table.list id="trial" {
                thead { tr { th { (tr(lang, T::Currency)) } th { (tr(lang, T::Debits)) } th { (tr(lang, T::Credits)) } th { (tr(lang, T::Net)) } } }
                tbody { @for t in &v.trial {
                    tr data-currency=(t.currency) {
                        td { (t.currency) } td.num { (t.debits.text) } td.num { (t.credits.text) } td.num { b { (t.net.text) } }
                    }
                } }
            }
            h2 { (tr(lang, T::Balances)) " " a.button href="/console/ledger.csv" id="export" { (tr(lang, T::ExportCsv)) } }
            table.list id="balances" {
                thead { tr { th { (tr(lang, T::Account)) } th { (tr(lang, T::Amount)) } } }
                tbody { @for b in &v.balances {
                    tr { td { code { (b.account) } } td.num { (b.amount.text) } }
                } }
            }
        },
    )
}

pub async fn ledger_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match state.engine().ledger_view().await {
        Ok(v) => v,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    let minor = |m: &MoneyView| {
        vec![
            m.amount_minor.to_string(),
            m.currency.clone(),
            m.text.clone(),
        ]
    };
    let rows: Vec<Vec<String>> = v
        .balances
        .iter()
        .map(|b| {
            let mut row = vec![b.account.clone()];
            row.extend(minor(&b.amount));
            row
        })
        .collect();
    match csv_export(&["account", "amount_minor", "currency", "amount"], &rows) {
        Ok(bytes) => csv_response("balances.csv", bytes),
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}
