//! The console's pages. maud escapes every value it is given, so nothing recorded (a reason, a
//! bank's text, a merchant's name) can become markup. Account numbers appear only as the last four
//! digits the engine's views carry.

use disburse_engine::{CorrectionView, ExceptionItem, OrderView};
use maud::{html, Markup, DOCTYPE};

use super::i18n::{tr, Lang, T};
use super::session::{Signed, CSRF_FIELD};

/// Percent-encodes one path or query component.
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn order_href(merchant: &str, order_no: &str) -> String {
    format!("/console/orders/{}/{}", enc(merchant), enc(order_no))
}

fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf); }
}

fn layout(lang: Lang, title: &str, here: &str, signed: Option<&Signed>, body: Markup) -> Markup {
    let other = match lang {
        Lang::En => (Lang::ZhCn, "中文"),
        Lang::ZhCn => (Lang::En, "English"),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (tr(lang, T::Console)) }
                // No favicon request (and no 404 for it).
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    strong.brand { (tr(lang, T::Console)) }
                    @if let Some(s) = signed {
                        nav {
                            a href="/console/exceptions" { (tr(lang, T::Exceptions)) }
                            a href="/console/search" { (tr(lang, T::Orders)) }
                            a href="/console/corrections" { (tr(lang, T::Corrections)) }
                        }
                        span.who {
                            (tr(lang, T::SignedInAs)) " " b { (s.name.as_str()) } " (" (s.role.as_str()) ")"
                        }
                        form.inline method="post" action="/console/logout" {
                            (csrf(s))
                            button type="submit" { (tr(lang, T::SignOut)) }
                        }
                    }
                    a.lang href={ "/console/lang?to=" (other.0.tag()) "&back=" (enc(here)) } lang=(other.0.tag()) { (other.1) }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn problem(lang: Lang, signed: Option<&Signed>, title: &str, text: &str) -> Markup {
    layout(
        lang,
        title,
        "/console/exceptions",
        signed,
        html! {
            p.error role="alert" { (text) }
            p { a href="/console/exceptions" { (tr(lang, T::Back)) } }
        },
    )
}

pub fn login(lang: Lang, csrf_token: &str, wrong: bool) -> Markup {
    layout(
        lang,
        tr(lang, T::SignIn),
        "/console/login",
        None,
        html! {
            @if wrong { p.error role="alert" { (tr(lang, T::WrongPassword)) } }
            form.card method="post" action="/console/login" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf_token);
                label { (tr(lang, T::Name)) input name="name" autocomplete="username" required; }
                label { (tr(lang, T::Password)) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (tr(lang, T::SignIn)) }
            }
        },
    )
}

pub struct ExceptionsPage {
    pub kinds: Vec<String>,
    pub kind: String,
    pub merchant: String,
    pub page: usize,
    pub pages_total: usize,
    pub total: usize,
    pub items: Vec<ExceptionItem>,
}

fn page_href(p: &ExceptionsPage, page: usize) -> String {
    format!(
        "/console/exceptions?kind={}&merchant={}&page={page}",
        enc(&p.kind),
        enc(&p.merchant)
    )
}

/// Where a person acts on an item.
fn item_action(lang: Lang, i: &ExceptionItem) -> Option<(String, &'static str)> {
    match i.kind.as_str() {
        "correction_waiting_for_approval" => Some((
            "/console/corrections#waiting".to_string(),
            tr(lang, T::Corrections),
        )),
        "expired_payout" | "payout_failed" | "conflict" => i.payout_no.as_ref().map(|p| {
            (
                format!("/console/corrections?payout={}#propose", enc(p)),
                tr(lang, T::ProposeCorrection),
            )
        }),
        _ => None,
    }
}

pub fn exceptions(lang: Lang, signed: &Signed, p: &ExceptionsPage) -> Markup {
    let here = page_href(p, p.page);
    layout(
        lang,
        tr(lang, T::Exceptions),
        &here,
        Some(signed),
        html! {
            form.filters method="get" action="/console/exceptions" {
                label { (tr(lang, T::Kind))
                    select name="kind" {
                        option value="" { (tr(lang, T::AnyKind)) }
                        @for k in &p.kinds {
                            option value=(k) selected[*k == p.kind] { (k) }
                        }
                    }
                }
                label { (tr(lang, T::Merchant)) input name="merchant" value=(p.merchant); }
                button type="submit" { (tr(lang, T::Filter)) }
            }
            @if p.items.is_empty() {
                p { (tr(lang, T::NoExceptions)) }
            } @else {
                table.list id="exceptions" {
                    thead { tr {
                        th { "#" } th { (tr(lang, T::Kind)) } th { (tr(lang, T::Age)) }
                        th { (tr(lang, T::Amount)) } th { (tr(lang, T::Merchant)) }
                        th { (tr(lang, T::Order)) } th { (tr(lang, T::Payout)) }
                        th { (tr(lang, T::Reason)) } th { (tr(lang, T::Needs)) } th { (tr(lang, T::Action)) }
                    } }
                    tbody {
                        @for i in &p.items {
                            tr data-kind=(i.kind) {
                                td { (i.id) }
                                td { code { (i.kind) } }
                                td.num { (i.age_hours) " " (tr(lang, T::Hours)) }
                                td.num { @if let Some(a) = &i.amount { (a.text) } }
                                td { @if let Some(m) = &i.merchant { (m) } }
                                td { @if let (Some(m), Some(o)) = (&i.merchant, &i.order_no) {
                                    a href=(order_href(m, o)) { (o) }
                                } }
                                td { @if let Some(po) = &i.payout_no {
                                    a href={ "/console/search?q=" (enc(po)) } { (po) }
                                } }
                                td { (i.reason) @if let Some(s) = &i.source { br; small { (tr(lang, T::Source)) ": " (s) } } }
                                td { (i.action) }
                                td { @if let Some((href, label)) = item_action(lang, i) { a.button href=(href) { (label) } } }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if p.page > 1 { a rel="prev" href=(page_href(p, p.page - 1)) { (tr(lang, T::Previous)) } }
                span { (tr(lang, T::PageOf)) " " (p.page) " / " (p.pages_total) " · " (p.total) }
                @if p.page < p.pages_total { a rel="next" href=(page_href(p, p.page + 1)) { (tr(lang, T::Next)) } }
            }
        },
    )
}

pub fn search(lang: Lang, signed: &Signed, q: &str, found: &[(String, String)]) -> Markup {
    layout(
        lang,
        tr(lang, T::Orders),
        &format!("/console/search?q={}", enc(q)),
        Some(signed),
        html! {
            form.filters method="get" action="/console/search" role="search" {
                label { (tr(lang, T::SearchHint)) input name="q" value=(q) required; }
                button type="submit" { (tr(lang, T::Search)) }
            }
            @if !q.is_empty() {
                @if found.is_empty() {
                    p { (tr(lang, T::NothingFound)) }
                } @else {
                    ul { @for (m, o) in found { li { a href=(order_href(m, o)) { (m) " / " (o) } } } }
                }
            }
        },
    )
}

struct Entry {
    at: String,
    /// Audit before journal before message at the same instant: the order they were written in.
    rank: u8,
    what_kind: T,
    who: String,
    what: String,
    detail: Markup,
}

/// What caused a change: the bank file and line, the person's evidence, the batch, the sweeper.
fn source_text(source: &serde_json::Value) -> Option<String> {
    let s = |k: &str| source.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match source.get("kind")?.as_str()? {
        "file" => Some(format!(
            "{} line {}",
            s("name"),
            source.get("line").and_then(|l| l.as_u64()).unwrap_or(0)
        )),
        "manual" => Some(format!("evidence: {}", s("evidence"))),
        "batch" => Some(format!(
            "batch {} ({})",
            source.get("batch_id").and_then(|b| b.as_i64()).unwrap_or(0),
            s("file")
        )),
        "api" => Some("bank API".into()),
        "sweep" => Some("deadline sweeper".into()),
        other => Some(other.to_string()),
    }
}

fn timeline(v: &OrderView) -> Vec<Entry> {
    let mut entries = Vec::new();
    for e in &v.audit_events {
        let d = &e.detail;
        let state_change = d
            .get("before")
            .and_then(|b| b.get("state"))
            .and_then(|s| s.as_str())
            .zip(
                d.get("after")
                    .and_then(|a| a.get("state"))
                    .and_then(|s| s.as_str()),
            )
            .map(|(b, a)| format!("{b} → {a}"));
        let source = d.get("source").and_then(source_text);
        let evidence = d.get("evidence").and_then(|e| e.as_str());
        entries.push(Entry {
            at: e.at.clone(),
            rank: 0,
            what_kind: T::AuditEvents,
            who: e.actor.clone(),
            what: format!("{} {}", e.action, e.subject),
            detail: html! {
                @if let Some(s) = &state_change { span.state { (s) } " " }
                @if let Some(r) = &e.reason { (r) " " }
                @if let Some(s) = &source { br; small.source { (s) } }
                @if let Some(ev) = evidence { br; small.source { "evidence: " (ev) } }
            },
        });
    }
    for j in &v.journals {
        entries.push(Entry {
            at: j.created_at.clone(),
            rank: 1,
            what_kind: T::Journals,
            who: String::new(),
            what: format!("{} {}", j.kind, j.payout_no.as_deref().unwrap_or_default()),
            detail: html! {
                ul.lines { @for l in &j.lines { li { code { (l.account) } " " (l.amount.text) } } }
            },
        });
    }
    for m in &v.messages {
        entries.push(Entry {
            at: m.created_at.clone(),
            rank: 2,
            what_kind: T::Messages,
            who: "→ ".to_string() + &v.merchant,
            what: m.topic.clone(),
            detail: html! { code.payload { (m.payload.to_string()) } },
        });
    }
    entries.sort_by(|a, b| a.at.cmp(&b.at).then(a.rank.cmp(&b.rank)));
    entries
}

pub fn order(lang: Lang, signed: &Signed, v: &OrderView) -> Markup {
    let title = format!("{} {} / {}", tr(lang, T::Order), v.merchant, v.order_no);
    layout(
        lang,
        &title,
        &order_href(&v.merchant, &v.order_no),
        Some(signed),
        html! {
            p.summary {
                (tr(lang, T::State)) ": " b.state { (v.state) } " · "
                (tr(lang, T::Amount)) ": " (v.amount.text) " · " (v.created_at)
            }
            h2 { (tr(lang, T::Payouts)) }
            table.list id="payouts" {
                thead { tr {
                    th { (tr(lang, T::Payout)) } th { (tr(lang, T::State)) } th { (tr(lang, T::Channel)) }
                    th { (tr(lang, T::Amount)) } th { (tr(lang, T::Paid)) } th { (tr(lang, T::Account)) }
                    th { (tr(lang, T::BankReference)) } th { (tr(lang, T::ReasonCode)) } th { (tr(lang, T::Action)) }
                } }
                tbody { @for p in &v.payouts {
                    tr id=(p.payout_no) {
                        td { (p.payout_no) }
                        td.state { (p.state) }
                        td { (p.channel) }
                        td.num { (p.amount.text) }
                        td.num { @if let Some(a) = &p.paid_amount { (a.text) } }
                        td { "****" (p.bank_account_last4) }
                        td { @if let Some(r) = &p.bank_reference { (r) } }
                        td { @if let Some(c) = &p.reason_code { (c) } @if let Some(t) = &p.reason_text { " " (t) } }
                        td { a href={ "/console/corrections?payout=" (enc(&p.payout_no)) "#propose" } { (tr(lang, T::ProposeCorrection)) } }
                    }
                } }
            }
            h2 { (tr(lang, T::Timeline)) }
            table.list id="timeline" {
                thead { tr { th { (tr(lang, T::When)) } th { } th { (tr(lang, T::Who)) } th { (tr(lang, T::What)) } th { (tr(lang, T::Details)) } } }
                tbody { @for e in timeline(v) {
                    tr {
                        td { time { (e.at) } }
                        td { span.tag { (tr(lang, e.what_kind)) } }
                        td { (e.who) }
                        td { code { (e.what) } }
                        td { (e.detail) }
                    }
                } }
            }
        },
    )
}

fn kind_label(lang: Lang, kind: &str) -> &str {
    match kind {
        "confirm_succeeded" => tr(lang, T::KindConfirmSucceeded),
        "confirm_failed" => tr(lang, T::KindConfirmFailed),
        "amend_paid_amount" => tr(lang, T::KindAmendPaidAmount),
        "record_return" => tr(lang, T::KindRecordReturn),
        "cancel_order" => tr(lang, T::KindCancelOrder),
        other => other,
    }
}

fn correction_rows(
    lang: Lang,
    signed: &Signed,
    list: &[&CorrectionView],
    decide: bool,
    id: &str,
) -> Markup {
    html! {
        @if list.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
            table.list id=(id) {
                thead { tr {
                    th { "#" } th { (tr(lang, T::Payout)) } th { (tr(lang, T::Kind)) } th { (tr(lang, T::Reason)) }
                    th { (tr(lang, T::Evidence)) } th { (tr(lang, T::ProposedBy)) } th { (tr(lang, T::Status)) }
                    th { (tr(lang, T::Decided)) }
                } }
                tbody { @for c in list {
                    tr data-correction=(c.id) {
                        td { (c.id) }
                        td { a href={ "/console/search?q=" (enc(&c.payout_no)) } { (c.payout_no) } }
                        td { (kind_label(lang, &c.kind)) br; small { code { (c.payload.to_string()) } } }
                        td { (c.reason) }
                        td { (c.evidence) }
                        td { (c.proposed_by) br; small { (c.proposed_at) } }
                        td.state { (c.status) }
                        td {
                            @if let Some(by) = &c.decided_by {
                                (by) @if let Some(r) = &c.decision_reason { ": " (r) }
                            } @else if decide {
                                form.inline method="post" action={ "/console/corrections/" (c.id) "/approve" } {
                                    (csrf(signed))
                                    button type="submit" name="approve" { (tr(lang, T::Approve)) }
                                }
                                form.inline method="post" action={ "/console/corrections/" (c.id) "/reject" } {
                                    (csrf(signed))
                                    input name="reason" placeholder=(tr(lang, T::RejectReason)) aria-label=(tr(lang, T::RejectReason)) required;
                                    button type="submit" name="reject" { (tr(lang, T::Reject)) }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

pub fn corrections(
    lang: Lang,
    signed: &Signed,
    all: &[CorrectionView],
    done: Option<T>,
    payout: &str,
) -> Markup {
    let me = signed.name.as_str();
    let waiting: Vec<&CorrectionView> = all
        .iter()
        .filter(|c| c.status == "proposed" && c.proposed_by != me)
        .collect();
    let mine: Vec<&CorrectionView> = all.iter().filter(|c| c.proposed_by == me).collect();
    let everything: Vec<&CorrectionView> = all.iter().rev().take(50).collect();
    let kinds = [
        "confirm_succeeded",
        "confirm_failed",
        "amend_paid_amount",
        "record_return",
        "cancel_order",
    ];
    layout(
        lang,
        tr(lang, T::Corrections),
        "/console/corrections",
        Some(signed),
        html! {
            @if let Some(t) = done { p.done role="status" { (tr(lang, t)) } }
            @if signed.role.may_approve() {
                h2 id="waiting" { (tr(lang, T::WaitingForMe)) }
                (correction_rows(lang, signed, &waiting, true, "waiting-list"))
            }
            @if signed.role.may_propose() {
                h2 id="propose" { (tr(lang, T::ProposeCorrection)) }
                form.card method="post" action="/console/corrections" {
                    (csrf(signed))
                    label { (tr(lang, T::Payout)) input name="payout_no" value=(payout) required; }
                    label { (tr(lang, T::Kind))
                        select name="kind" { @for k in kinds { option value=(k) { (kind_label(lang, k)) } } }
                    }
                    label { (tr(lang, T::PaidAmount)) input name="amount" inputmode="decimal" placeholder="200.00"; }
                    label { (tr(lang, T::BankReference)) input name="bank_reference"; }
                    label { (tr(lang, T::ValueDate)) input type="date" name="value_date"; }
                    label { (tr(lang, T::ReasonCode)) input name="reason_code" placeholder="AC04"; }
                    label { (tr(lang, T::Reason)) textarea name="reason" rows="2" required {} }
                    label { (tr(lang, T::Evidence)) textarea name="evidence" rows="2" required {} }
                    button type="submit" { (tr(lang, T::Propose)) }
                }
                h2 { (tr(lang, T::ProposedByMe)) }
                (correction_rows(lang, signed, &mine, false, "mine-list"))
            }
            h2 { (tr(lang, T::AllProposed)) }
            (correction_rows(lang, signed, &everything, false, "all-list"))
        },
    )
}
