//! The day's reconciliation of a channel in the console: the engine's read model
//! `Engine::reconcile` (the same report as `disburse reconcile`), with its sections — the
//! statements and their continuity, what matched, what a person must confirm, what is only on
//! the statement or only in our books, and the books against the bank with the difference
//! explained. A suggested match is confirmed or rejected here through
//! `Engine::decide_statement_entry` (operators and up; the engine checks the role again).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use disburse_engine::views_support::MoneyView;
use disburse_engine::{EntryLine, Reconciliation};
use maud::{html, Markup};

use super::i18n::{tr, Lang, T};
use super::pages::{csrf, enc, layout};
use super::session::Signed;
use super::{api_problem, forbidden, html as page, problem, redirect, signed_form, signed_in};
use super::{field_error, Posted};
use crate::AppState;

fn amount(minor: i64, currency: Option<&str>) -> String {
    match currency {
        Some(c) => MoneyView::new(minor, c).text,
        None => minor.to_string(),
    }
}

/// `/console/reconciliation?channel=C`: the channel's reconciliation as of now; without a
/// channel, the channels to choose from.
pub async fn page_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let channels: Vec<String> = state
        .engine()
        .config()
        .channels
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let channel = q.get("channel").map(|c| c.trim()).unwrap_or("");
    let report = if channel.is_empty() {
        None
    } else if !channels.iter().any(|c| c == channel) {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {channel}", tr(lang, T::NotFound)),
        );
    } else {
        match state.engine().reconcile(channel, Utc::now()).await {
            Ok(r) => Some(r),
            Err(e) => return api_problem(lang, Some(&signed), e.into()),
        }
    };
    let done = q.get("done").map(String::as_str);
    page(
        StatusCode::OK,
        reconciliation_page(lang, &signed, &channels, report.as_ref(), done),
    )
}

fn here(channel: &str) -> String {
    format!("/console/reconciliation?channel={}", enc(channel))
}

fn reconciliation_page(
    lang: Lang,
    signed: &Signed,
    channels: &[String],
    r: Option<&Reconciliation>,
    done: Option<&str>,
) -> Markup {
    let chosen = r.map(|r| r.channel.as_str()).unwrap_or("");
    let path = if chosen.is_empty() {
        "/console/reconciliation".to_string()
    } else {
        here(chosen)
    };
    layout(
        lang,
        tr(lang, T::Reconciliation),
        &path,
        Some(signed),
        html! {
            @match done {
                Some("confirmed") => { p.done role="status" { (tr(lang, T::MatchConfirmed)) } }
                Some("rejected") => { p.done role="status" { (tr(lang, T::MatchRejected)) } }
                _ => {}
            }
            form.filters method="get" action="/console/reconciliation" {
                label { (tr(lang, T::Channel))
                    select name="channel" {
                        @for c in channels {
                            option value=(c) selected[c.as_str() == chosen] { (c) }
                        }
                    }
                }
                button type="submit" { (tr(lang, T::Show)) }
            }
            @if let Some(r) = r { (report(lang, signed, r)) }
            @else { p { (tr(lang, T::ChooseChannel)) } }
        },
    )
}

fn report(lang: Lang, signed: &Signed, r: &Reconciliation) -> Markup {
    let ccy = r.currency.as_deref();
    html! {
        p.summary id="reconciliation" data-channel=(r.channel) {
            (tr(lang, T::Channel)) " " b { (r.channel) } " · " (tr(lang, T::AsOf)) " " time { (r.as_of) }
            @if let Some(c) = ccy { " · " (c) }
        }
        h2 { (tr(lang, T::Statements)) }
        @if r.statements.is_empty() { p { (tr(lang, T::NoStatements)) } } @else {
            table.list id="statements" {
                thead { tr {
                    th { (tr(lang, T::Sequence)) } th { (tr(lang, T::Period)) } th { (tr(lang, T::Opening)) }
                    th { (tr(lang, T::Closing)) } th { (tr(lang, T::Entries)) } th { (tr(lang, T::File)) }
                    th { (tr(lang, T::Continuity)) }
                } }
                tbody { @for (i, s) in r.statements.iter().enumerate() {
                    @let previous = i.checked_sub(1).and_then(|p| r.statements.get(p));
                    tr data-statement=(s.statement) {
                        td { @if let Some(n) = s.electronic_sequence { (n) } @else { "—" } }
                        td { (s.from.as_deref().unwrap_or("?")) " … " (s.to.as_deref().unwrap_or("?")) }
                        td.num { (amount(s.opening_minor, ccy)) }
                        td.num { (amount(s.closing_minor, ccy)) }
                        td.num {
                            (s.entries)
                            // An import stopped half-way: what is stored of it so far.
                            @if s.entries_imported < s.entries {
                                br; b.incomplete { (s.entries_imported) " / " (s.entries) }
                            }
                        }
                        td { code { (s.file_name) } }
                        td.continuity {
                            @match previous {
                                None => { (tr(lang, T::FirstStatement)) }
                                Some(p) if p.closing_minor == s.opening_minor => { (tr(lang, T::OpensAtPreviousClosing)) }
                                Some(p) => {
                                    b { (tr(lang, T::OpeningDiffers)) } " " (amount(p.closing_minor, ccy))
                                }
                            }
                        }
                    }
                } }
            }
        }
        h2 { (tr(lang, T::Matched)) }
        p id="matched" data-count=(r.matched) {
            (r.matched) " " (tr(lang, T::EntriesMatched)) ", " b { (amount(r.matched_minor, ccy)) }
            " · " (tr(lang, T::BankFees)) " " b id="fees" { (amount(r.fees_minor, ccy)) }
        }
        h2 { (tr(lang, T::Suggested)) }
        p { small { (tr(lang, T::SuggestedHint)) } }
        (entries(lang, signed, "suggested", &r.suggested, ccy, &r.channel, true))
        h2 { (tr(lang, T::OnlyOnStatement)) }
        (entries(lang, signed, "unmatched", &r.unmatched, ccy, &r.channel, false))
        h2 { (tr(lang, T::OnlyInBooks)) " (" (disburse_engine::NOT_ON_STATEMENT_AFTER_DAYS) " " (tr(lang, T::BusinessDays)) ")" }
        @if r.not_on_any_statement.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
            table.list id="books-only" {
                thead { tr { th { (tr(lang, T::Payout)) } th { (tr(lang, T::Paid)) } th { (tr(lang, T::When)) } } }
                tbody { @for p in &r.not_on_any_statement {
                    tr data-payout=(p.payout_no) {
                        td { a href={ "/console/search?q=" (enc(&p.payout_no)) } { (p.payout_no) } }
                        td.num { (amount(p.paid_minor, ccy)) }
                        td { (p.succeeded_at) }
                    }
                } }
            }
        }
        h2 { (tr(lang, T::BooksVsBank)) }
        @if let Some(b) = &r.books_vs_bank {
            table.list id="books-vs-bank" { tbody {
                tr data-row="bank" { th { (tr(lang, T::BankMovement)) } td.num { (amount(b.bank_movement_minor, ccy)) } }
                tr data-row="books" { th { (tr(lang, T::BooksMovement)) } td.num { (amount(b.books_movement_minor, ccy)) } }
                tr data-row="difference" { th { (tr(lang, T::Difference)) } td.num { (amount(b.difference_minor, ccy)) } }
                tr data-row="statement-only" { th { (tr(lang, T::ExplainedStatementOnly)) } td.num { (amount(b.explained_by_statement_only_minor, ccy)) } }
                tr data-row="books-only" { th { (tr(lang, T::ExplainedBooksOnly)) } td.num { (amount(b.explained_by_books_only_minor, ccy)) } }
                tr data-row="unexplained" data-zero=(b.unexplained_minor == 0) {
                    th { (tr(lang, T::Unexplained)) } td.num { b { (amount(b.unexplained_minor, ccy)) } }
                }
            } }
        } @else { p { (tr(lang, T::NoStatements)) } }
        h2 { (tr(lang, T::StatementExceptions)) }
        @if r.open_exceptions.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
            table.list id="statement-exceptions" {
                thead { tr { th { (tr(lang, T::Kind)) } th { (tr(lang, T::Reason)) } } }
                tbody { @for (kind, reason) in &r.open_exceptions {
                    tr data-kind=(kind) { td { code { (kind) } } td { (reason) } }
                } }
            }
        }
    }
}

fn entries(
    lang: Lang,
    signed: &Signed,
    id: &str,
    list: &[EntryLine],
    ccy: Option<&str>,
    channel: &str,
    decide: bool,
) -> Markup {
    html! {
        @if list.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
            table.list id=(id) {
                thead { tr {
                    th { (tr(lang, T::Entry)) } th { (tr(lang, T::Statement)) } th { (tr(lang, T::Line)) }
                    th { (tr(lang, T::Amount)) } th { (tr(lang, T::Details)) }
                    @if decide { th { (tr(lang, T::Action)) } }
                } }
                tbody { @for e in list {
                    tr data-entry=(e.entry) {
                        td { (e.entry) }
                        td { (e.statement) }
                        td { (e.line) }
                        td.num { (amount(e.amount_minor, ccy)) }
                        td { (e.note) }
                        @if decide { td {
                            @if signed.role.may_propose() {
                                @for (verb, label) in [("confirm", T::ConfirmMatch), ("reject", T::RejectMatch)] {
                                    form.inline method="post" action={ "/console/reconciliation/entries/" (e.entry) "/" (verb) } data-decision=(verb) {
                                        (csrf(signed))
                                        input type="hidden" name="channel" value=(channel);
                                        input name="why" placeholder=(tr(lang, T::WhyResolved)) aria-label=(tr(lang, T::WhyResolved)) required;
                                        button type="submit" { (tr(lang, label)) }
                                    }
                                }
                            }
                        } }
                    }
                } }
            }
        }
    }
}

/// A person confirms a suggested match, or rejects it (a rejected debit becomes unexplained).
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((entry, verb)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if !signed.role.may_propose() {
        return forbidden(lang, &signed, T::MayNotDecideMatch);
    }
    let confirm = match verb.as_str() {
        "confirm" => true,
        "reject" => false,
        _ => {
            return problem(
                lang,
                Some(&signed),
                StatusCode::NOT_FOUND,
                tr(lang, T::NotFound),
            )
        }
    };
    let Some(entry) = entry.parse::<i64>().ok().filter(|n| *n > 0) else {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {entry}", tr(lang, T::NotFound)),
        );
    };
    let why = fields.get("why").trim();
    if why.is_empty() || why.chars().count() > 500 {
        return api_problem(
            lang,
            Some(&signed),
            field_error("why", "must be 1 to 500 characters"),
        );
    }
    match state
        .engine()
        .decide_statement_entry(entry, confirm, why, Utc::now(), &signed.name)
        .await
    {
        Ok(_) => {
            let channel = fields.get("channel").trim();
            let done = if confirm { "confirmed" } else { "rejected" };
            redirect(&format!("{}&done={done}", here(channel)))
        }
        Err(e) => api_problem(lang, Some(&signed), e.into()),
    }
}
