//! The console's pages. maud escapes every value it is given, so nothing recorded (a reason, a
//! bank's text, a merchant's name) can become markup. Account numbers appear only as the last four
//! digits the engine's views carry.

use disburse_engine::{CorrectionView, DiscrepancyView, ExceptionItem, OrderView, Overview};
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

pub(super) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf); }
}

pub(super) fn layout(
    lang: Lang,
    title: &str,
    here: &str,
    signed: Option<&Signed>,
    body: Markup,
) -> Markup {
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
                            a href="/console" { (tr(lang, T::Overview)) }
                            a href="/console/exceptions" { (tr(lang, T::Exceptions)) }
                            a href="/console/search" { (tr(lang, T::Orders)) }
                            a href="/console/corrections" { (tr(lang, T::Corrections)) }
                            a href="/console/discrepancies" { (tr(lang, T::Discrepancies)) }
                            a href="/console/batches" { (tr(lang, T::BatchesAndFiles)) }
                            a href="/console/reconciliation" { (tr(lang, T::Reconciliation)) }
                            a href="/console/merchants" { (tr(lang, T::Merchants)) }
                            a href="/console/audit" { (tr(lang, T::Audit)) }
                            a href="/console/ledger" { (tr(lang, T::Ledger)) }
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
    /// Claims and notes, by item id.
    pub work: std::collections::HashMap<String, disburse_engine::ItemWork>,
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
        "waiting_for_account_fix" => i.merchant.as_ref().map(|m| {
            (
                format!("{}#fix", super::merchants::merchant_href(m)),
                tr(lang, T::FixAccount),
            )
        }),
        k if k.starts_with("discrepancy_") => Some((
            "/console/discrepancies".to_string(),
            tr(lang, T::Discrepancies),
        )),
        _ => None,
    }
}

/// One form of the queue's work column: the item, where to come back, the session's token.
fn work_form(signed: &Signed, back: &str, item: &str, action: &str, body: Markup) -> Markup {
    html! {
        form.work method="post" action={ "/console/exceptions/" (action) } {
            (csrf(signed))
            input type="hidden" name="item" value=(item);
            input type="hidden" name="back" value=(back);
            (body)
        }
    }
}

/// Who has the item, what was written about it, and (for operators) the forms to work it.
fn item_work(
    lang: Lang,
    signed: &Signed,
    back: &str,
    i: &ExceptionItem,
    work: Option<&disburse_engine::ItemWork>,
) -> Markup {
    let claimed = work.and_then(|w| w.claimed.as_ref());
    let mine = claimed.is_some_and(|(by, _)| by == signed.name.as_str());
    let may_work = signed.role.may_propose();
    html! {
        td.claim {
            @if let Some((by, at)) = claimed { strong { (by) } br; small { (at) } }
            @if let Some(h) = work.and_then(|w| w.handled()) {
                p.handled { (tr(lang, T::HandledBy)) " " strong { (h.written_by) } " " small { (h.written_at) } ": " (h.note) }
            }
        }
        td.work {
            @if let Some(w) = work {
                @if !w.notes.is_empty() {
                    ul.notes { @for n in w.notes.iter().filter(|n| n.kind == "comment") {
                        li { strong { (n.written_by) } " " small { (n.written_at) } ": " (n.note) }
                    } }
                }
            }
            @if may_work {
                @if claimed.is_none() {
                    (work_form(signed, back, &i.id, "claim", html! { button type="submit" { (tr(lang, T::Claim)) } }))
                } @else if mine || signed.role == disburse_core::correction::Role::Admin {
                    (work_form(signed, back, &i.id, "release", html! { button type="submit" { (tr(lang, T::Release)) } }))
                }
                (work_form(signed, back, &i.id, "comment", html! {
                    input name="note" required maxlength="2000" aria-label=(tr(lang, T::Comment)) placeholder=(tr(lang, T::Comment));
                    button type="submit" { (tr(lang, T::Comment)) }
                }))
                @if claimed.is_none() || mine {
                    (work_form(signed, back, &i.id, "handle", html! {
                        input name="note" required maxlength="2000" aria-label=(tr(lang, T::Note)) placeholder=(tr(lang, T::Note));
                        button type="submit" { (tr(lang, T::MarkHandled)) }
                    }))
                }
            }
        }
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
                a.button id="export" href={ "/console/exceptions.csv?kind=" (enc(&p.kind)) "&merchant=" (enc(&p.merchant)) } { (tr(lang, T::ExportCsv)) }
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
                        th { (tr(lang, T::ClaimedBy)) } th { (tr(lang, T::Work)) }
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
                                (item_work(lang, signed, &here, i, p.work.get(&i.id)))
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

/// "before → after" of an audit event that changed a state.
pub(super) fn state_change(detail: &serde_json::Value) -> Option<String> {
    let state = |k: &str| detail.get(k)?.get("state")?.as_str();
    state("before")
        .zip(state("after"))
        .map(|(b, a)| format!("{b} → {a}"))
}

fn timeline(v: &OrderView) -> Vec<Entry> {
    let mut entries = Vec::new();
    for e in &v.audit_events {
        let d = &e.detail;
        let state_change = state_change(d);
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

/// The order page; `paper` are its payouts of a manual channel, whose bank notices are entered
/// by hand.
pub fn order(lang: Lang, signed: &Signed, v: &OrderView, paper: &[String]) -> Markup {
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
                        td {
                            a href={ "/console/corrections?payout=" (enc(&p.payout_no)) "#propose" } { (tr(lang, T::ProposeCorrection)) }
                            @if paper.contains(&p.payout_no) && signed.role.may_propose() {
                                br; a href={ "/console/payouts/" (enc(&p.payout_no)) "/result" } { (tr(lang, T::EnterNotice)) }
                            }
                        }
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

/// The age buckets' names, in [`disburse_engine::AGE_BUCKETS`] order.
const AGE_NAMES: [T; 4] = [T::AgeUnder1h, T::Age1To24h, T::Age1To3d, T::AgeOver3d];
/// One colour per age bucket, young to old (presentation attributes, not inline style: the
/// console's CSP allows no inline style).
const AGE_COLOURS: [&str; 4] = ["#7fb3e8", "#1f5fbf", "#e8a33d", "#b42318"];
const CHART_WIDTH: i64 = 640;
const CHART_LABEL_WIDTH: i64 = 170;
const CHART_ROW_HEIGHT: i64 = 24;

/// A bar's length in pixels: `value` of `max`, on the chart's bar area. Integer arithmetic in
/// 128 bits so no amount overflows.
fn bar_px(value: i64, max: i64) -> i64 {
    let area = i128::from(CHART_WIDTH - CHART_LABEL_WIDTH - 80);
    if max <= 0 || value <= 0 {
        return 0;
    }
    let px = i128::from(value) * area / i128::from(max);
    i64::try_from(px).unwrap_or(0).max(1)
}

/// The stacked bar's pieces: (age bucket, x, width) of each non-empty bucket, and where the
/// bar ends.
fn segments(values: &[i64; 4], max: i64) -> (Vec<(usize, i64, i64)>, i64) {
    let mut x = CHART_LABEL_WIDTH;
    let mut out = Vec::new();
    for (b, v) in values.iter().enumerate() {
        let w = bar_px(*v, max);
        if w > 0 {
            out.push((b, x, w));
            x += w;
        }
    }
    (out, x)
}

/// A horizontal bar chart drawn on the server, one stacked bar per row, split by age. `rows`
/// carry a label, the four values and the text shown after the bar.
fn age_chart(lang: Lang, id: &str, title: &str, rows: &[(String, [i64; 4], String)]) -> Markup {
    let max = rows
        .iter()
        .map(|(_, v, _)| v.iter().fold(0i64, |a, b| a.saturating_add(*b)))
        .max()
        .unwrap_or(0);
    let legend_y = rows.len() as i64 * CHART_ROW_HEIGHT + 8;
    let height = legend_y + 22;
    html! {
        svg.chart id=(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
            width=(CHART_WIDTH) height=(height) viewBox={ "0 0 " (CHART_WIDTH) " " (height) } {
            title { (title) }
            @for (n, (label, values, total)) in rows.iter().enumerate() {
                @let y = n as i64 * CHART_ROW_HEIGHT;
                text x="0" y=(y + 16) font-size="12" fill="#1d2330" { (label) }
                @let (segments, end) = segments(values, max);
                @for (b, x, w) in segments {
                    rect x=(x) y=(y + 4) width=(w) height=(CHART_ROW_HEIGHT - 8) fill=(AGE_COLOURS[b]) data-age=(b) {
                        title { (tr(lang, AGE_NAMES[b])) ": " (values[b]) }
                    }
                }
                text x=(end + 6) y=(y + 16) font-size="12" fill="#5b6475" { (total) }
            }
            @for (b, name) in AGE_NAMES.iter().enumerate() {
                @let lx = CHART_LABEL_WIDTH + b as i64 * 110;
                rect x=(lx) y=(legend_y + 4) width="10" height="10" fill=(AGE_COLOURS[b]) {}
                text x=(lx + 14) y=(legend_y + 13) font-size="11" fill="#5b6475" { (tr(lang, *name)) }
            }
        }
    }
}

fn age_heads(lang: Lang) -> Markup {
    html! { @for name in AGE_NAMES { th { (tr(lang, name)) } } }
}

pub fn overview(lang: Lang, signed: &Signed, o: &Overview) -> Markup {
    let mut currencies: Vec<&str> = o.in_transit.iter().map(|t| t.currency.as_str()).collect();
    currencies.sort();
    currencies.dedup();
    layout(
        lang,
        tr(lang, T::Overview),
        "/console",
        Some(signed),
        html! {
            p.summary { small { (o.as_of) } }
            h2 id="in-transit" { (tr(lang, T::InTransit)) }
            p { small { (tr(lang, T::InTransitHint)) } }
            @if o.in_transit.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                // Amounts of different currencies do not share a scale: one chart each.
                @for c in &currencies {
                    @let rows: Vec<(String, [i64; 4], String)> = o.in_transit.iter()
                        .filter(|t| t.currency == *c)
                        .map(|t| (t.channel.clone(), t.sums.clone().map(|m| m.amount_minor), t.total.text.clone()))
                        .collect();
                    (age_chart(lang, &format!("chart-transit-{c}"), &format!("{} {c}", tr(lang, T::InTransit)), &rows))
                }
                table.list id="transit" {
                    thead { tr { th { (tr(lang, T::Channel)) } th { (tr(lang, T::Currency)) } (age_heads(lang)) th { (tr(lang, T::Total)) } } }
                    tbody { @for t in &o.in_transit {
                        tr data-channel=(t.channel) {
                            td { (t.channel) } td { (t.currency) }
                            @for (n, s) in t.sums.iter().enumerate() {
                                td.num { (s.text) br; small { (t.counts[n]) " ×" } }
                            }
                            td.num { b { (t.total.text) } }
                        }
                    } }
                }
            }
            h2 id="exceptions-by-kind" { (tr(lang, T::ExceptionsByKind)) }
            @if o.exceptions.is_empty() { p { (tr(lang, T::NoExceptions)) } } @else {
                @let rows: Vec<(String, [i64; 4], String)> = o.exceptions.iter()
                    .map(|e| (e.kind.clone(), e.counts, e.total.to_string()))
                    .collect();
                (age_chart(lang, "chart-exceptions", tr(lang, T::ExceptionsByKind), &rows))
                table.list id="exception-kinds" {
                    thead { tr { th { (tr(lang, T::Kind)) } (age_heads(lang)) th { (tr(lang, T::Total)) } } }
                    tbody { @for e in &o.exceptions {
                        tr data-kind=(e.kind) {
                            td { a href={ "/console/exceptions?kind=" (enc(&e.kind)) } { code { (e.kind) } } }
                            @for n in e.counts { td.num { (n) } }
                            td.num { b { (e.total) } }
                        }
                    } }
                }
            }
            h2 id="import-lag" { (tr(lang, T::ImportLag)) }
            table.list id="lag" {
                thead { tr {
                    th { (tr(lang, T::Channel)) } th { (tr(lang, T::Kind)) } th { (tr(lang, T::LastFile)) }
                    th { (tr(lang, T::HoursSince)) } th { (tr(lang, T::AwaitingResult)) } th { (tr(lang, T::OldestAwaiting)) }
                } }
                tbody { @for l in &o.import_lag {
                    tr data-channel=(l.channel) {
                        td { (l.channel) } td { (l.kind) }
                        td { @if let (Some(f), Some(at)) = (&l.last_file, &l.last_file_at) { (f) br; small { (at) } } @else { (tr(lang, T::Never)) } }
                        td.num { @if let Some(h) = l.hours_since_last_file { (h) } @else { "—" } }
                        td.num { (l.awaiting_result) }
                        td.num { @if let Some(h) = l.oldest_awaiting_hours { (h) } @else { "—" } }
                    }
                }
                @if let Some(f) = &o.last_file_without_channel {
                    tr data-channel="" {
                        td colspan="2" { small { (tr(lang, T::NoChannelNamed)) } }
                        td { (f.file_name) br; small { (f.started_at) } }
                        td.num { (f.hours_since) }
                        td.num { "—" } td.num { "—" }
                    }
                } }
            }
            h2 id="batches-today" { (tr(lang, T::BatchesToday)) }
            @if o.batches_today.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="batches-today-list" {
                    thead { tr {
                        th { (tr(lang, T::Batch)) } th { (tr(lang, T::Channel)) } th { (tr(lang, T::File)) }
                        th { (tr(lang, T::Count)) } th { (tr(lang, T::Total)) } th { (tr(lang, T::Written)) } th { (tr(lang, T::When)) }
                    } }
                    tbody { @for b in &o.batches_today {
                        tr data-batch=(b.batch_id) {
                            td { (b.batch_id) } td { (b.channel) } td { code { (b.file_name) } }
                            td.num { (b.payout_count) }
                            td.num { (disburse_engine::views_support::MoneyView::new(b.control_sum_minor, &b.currency).text) }
                            td { @if let Some(w) = &b.file_written { (w.written_at) } @else { (tr(lang, T::NotWritten)) } }
                            td { (b.created_at) }
                        }
                    } }
                }
            }
            h2 id="files-today" { (tr(lang, T::FilesToday)) }
            @if o.files_today.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="files-today-list" {
                    thead { tr {
                        th { (tr(lang, T::File)) } th { (tr(lang, T::Channel)) } th { (tr(lang, T::Status)) }
                        th { (tr(lang, T::Records)) } th { (tr(lang, T::Applied)) } th { (tr(lang, T::Unchanged)) }
                        th { (tr(lang, T::Exceptions)) } th { (tr(lang, T::When)) }
                    } }
                    tbody { @for f in &o.files_today {
                        tr {
                            td { code { (f.file_name) } } td { @if let Some(c) = &f.channel { (c) } } td { (f.status) }
                            td.num { (f.records_total) } td.num { (f.applied) } td.num { (f.unchanged) }
                            td.num { (f.exceptions) } td { (f.started_at) }
                        }
                    } }
                }
            }
        },
    )
}

/// One settling action's form: a resolution, what it needs, the reason, the session's token.
fn resolve_form(
    lang: Lang,
    signed: &Signed,
    id: i64,
    resolution: &str,
    label: T,
    extra: Markup,
) -> Markup {
    html! {
        form.inline.resolve method="post" action={ "/console/discrepancies/" (id) "/resolve" } data-resolution=(resolution) {
            (csrf(signed))
            input type="hidden" name="resolution" value=(resolution);
            (extra)
            input name="reason" placeholder=(tr(lang, T::WhyResolved)) aria-label=(tr(lang, T::WhyResolved)) required;
            button type="submit" { (tr(lang, label)) }
        }
    }
}

/// The actions a person in this role may take on a discrepancy in its state; the engine
/// checks each again.
fn discrepancy_actions(lang: Lang, signed: &Signed, d: &DiscrepancyView) -> Markup {
    let me = signed.name.as_str();
    let open = d.status != "settled";
    html! {
        @if open && signed.role.may_propose() {
            @if d.owed_to_us {
                @if d.status == "open" {
                    (resolve_form(lang, signed, d.id, "refund_received", T::RefundReceived, html! {
                        input name="reference" placeholder=(tr(lang, T::RefundReference)) aria-label=(tr(lang, T::RefundReference)) required;
                    }))
                    (resolve_form(lang, signed, d.id, "propose_write_off", T::ProposeWriteOff, html! {}))
                    (resolve_form(lang, signed, d.id, "net_against_next", T::NetAgainstNext, html! {}))
                }
                @if d.status == "write_off_proposed" && signed.role.may_approve()
                    && d.write_off_proposed_by.as_deref() != Some(me) {
                    (resolve_form(lang, signed, d.id, "approve_write_off", T::ApproveWriteOff, html! {}))
                }
            } @else if d.topup_payout_no.is_none() && d.status == "open" {
                (resolve_form(lang, signed, d.id, "top_up_now", T::TopUpNow, html! {
                    input name="channel" placeholder=(tr(lang, T::TopUpChannel)) aria-label=(tr(lang, T::TopUpChannel));
                }))
                (resolve_form(lang, signed, d.id, "add_to_next", T::AddToNext, html! {}))
            }
        }
    }
}

pub fn discrepancies(
    lang: Lang,
    signed: &Signed,
    all: bool,
    list: &[DiscrepancyView],
    done: bool,
) -> Markup {
    let here = if all {
        "/console/discrepancies?all=1"
    } else {
        "/console/discrepancies"
    };
    layout(
        lang,
        tr(lang, T::Discrepancies),
        here,
        Some(signed),
        html! {
            @if done { p.done role="status" { (tr(lang, T::DiscrepancyResolved)) } }
            nav.filters {
                @if all { a href="/console/discrepancies" { (tr(lang, T::OpenOnly)) } }
                @else { a href="/console/discrepancies?all=1" { (tr(lang, T::ShowAll)) } }
            }
            @if list.is_empty() { p { (tr(lang, T::NoDiscrepancies)) } } @else {
                table.list id="discrepancies" {
                    thead { tr {
                        th { "#" } th { (tr(lang, T::Merchant)) } th { (tr(lang, T::Order)) } th { (tr(lang, T::Payout)) }
                        th { (tr(lang, T::Direction)) } th { (tr(lang, T::Amount)) } th { (tr(lang, T::Status)) }
                        th { (tr(lang, T::History)) } th { (tr(lang, T::Told)) } th { (tr(lang, T::Action)) }
                    } }
                    tbody { @for d in list {
                        tr data-discrepancy=(d.id) data-status=(d.status) {
                            td { (d.id) }
                            td { (d.merchant) }
                            td { a href=(order_href(&d.merchant, &d.order_no)) { (d.order_no) } }
                            td { (d.origin_payout_no)
                                @if let Some(t) = &d.topup_payout_no { br; small { "top-up " a href={ "/console/search?q=" (enc(t)) } { (t) } } } }
                            td { (d.direction) br; small { (tr(lang, if d.owed_to_us { T::OwedToUs } else { T::OwedToMerchant })) } }
                            td.num { (d.amount.text) @if d.settled.amount_minor > 0 { br; small { (tr(lang, T::Settled)) " " (d.settled.text) } } }
                            td.state { (d.status)
                                @if let Some(r) = &d.resolution { br; small { (r) } }
                                @if let Some(by) = &d.write_off_proposed_by { br; small { (tr(lang, T::WriteOffProposedBy)) " " (by) } } }
                            td { ul.lines { @for h in &d.history { li { small { time { (h.at) } } " " (h.what) } } } }
                            td.told { ul.lines { @for m in &d.told { li { code { (m.topic) } " " small { time { (m.created_at) } } br; code.payload { (m.payload.to_string()) } } } } }
                            td { (discrepancy_actions(lang, signed, d)) }
                        }
                    } }
                }
            }
        },
    )
}
