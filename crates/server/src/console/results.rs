//! A paper channel's bank notice entered by hand: for a payout of a `manual` channel an operator
//! says what the bank's notice says (rejected with a reason code, or returned) and uploads the
//! notice itself. Both go to `Engine::record_manual_result`, the use case of the CLI's
//! `payout result … --evidence --evidence-file`: the file is stored by its SHA-256 with the
//! result, and the rules are the engine's, never repeated here.

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use disburse_core::{BankResult, PayoutNo};
use disburse_engine::{Actor, ApplyOutcome, ChannelKind, PayoutOrder};
use maud::{html, Markup};

use super::forbidden;
use super::i18n::{tr, Lang, T};
use super::pages::{csrf, enc, layout, order_href};
use super::session::{self, Signed, CSRF_FIELD};
use super::{api_problem, html as page, problem, redirect, signed_in};
use crate::error::ApiError;
use crate::AppState;

/// The largest evidence file taken: a scanned notice, kept in the database.
pub const EVIDENCE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The payout, if it is one of a manual channel; a page saying why not otherwise.
async fn paper_payout(
    state: &AppState,
    lang: Lang,
    signed: &Signed,
    payout_no: &str,
) -> Result<PayoutOrder, Response> {
    let not_found = || {
        problem(
            lang,
            Some(signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {payout_no}", tr(lang, T::NotFound)),
        )
    };
    let Ok(no) = PayoutNo::parse(payout_no) else {
        return Err(not_found());
    };
    let p = match state.engine().payout_order(no.as_str()).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(api_problem(lang, Some(signed), e.into())),
    };
    let manual = state
        .engine()
        .config()
        .channel(&p.channel)
        .is_ok_and(|c| c.kind == ChannelKind::Manual);
    if !manual {
        return Err(problem(
            lang,
            Some(signed),
            StatusCode::CONFLICT,
            &format!("{} ({})", tr(lang, T::NotPaperChannel), p.channel),
        ));
    }
    Ok(p)
}

fn refused_role(lang: Lang, signed: &Signed) -> Option<Response> {
    (!signed.role.may_propose()).then(|| {
        problem(
            lang,
            Some(signed),
            StatusCode::FORBIDDEN,
            tr(lang, T::MayNotHandleFiles),
        )
    })
}

fn form_page(lang: Lang, signed: &Signed, p: &PayoutOrder) -> Markup {
    let here = format!("/console/payouts/{}/result", enc(&p.payout_no));
    layout(
        lang,
        tr(lang, T::EnterNotice),
        &here,
        Some(signed),
        html! {
            p.summary {
                (tr(lang, T::Payout)) " " b { (p.payout_no) } " · " (tr(lang, T::State)) ": " b.state { (p.state) }
                " · " (tr(lang, T::Channel)) ": " (p.channel) " · "
                a href=(order_href(&p.merchant, &p.order_no)) { (p.merchant) " / " (p.order_no) }
            }
            form.card id="notice" method="post" action=(here) enctype="multipart/form-data" {
                (csrf(signed))
                label { (tr(lang, T::Outcome))
                    select name="outcome" required {
                        option value="rejected" { (tr(lang, T::OutcomeRejected)) }
                        option value="returned" { (tr(lang, T::OutcomeReturned)) }
                    }
                }
                label { (tr(lang, T::ReasonCode)) input name="reason" required pattern="[A-Z0-9]{4}" maxlength="4" placeholder="AC01"; }
                label { (tr(lang, T::Reason)) input name="text" maxlength="140"; }
                label { (tr(lang, T::Evidence)) input name="evidence" required maxlength="140"; }
                label { (tr(lang, T::EvidenceFile)) input type="file" name="file" required; }
                button type="submit" { (tr(lang, T::EnterNotice)) }
            }
        },
    )
}

/// The form for a paper payout's notice.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payout_no): Path<String>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = refused_role(lang, &signed) {
        return r;
    }
    match paper_payout(&state, lang, &signed, &payout_no).await {
        Ok(p) => page(StatusCode::OK, form_page(lang, &signed, &p)),
        Err(r) => r,
    }
}

/// What the notice form sent.
#[derive(Default)]
struct Notice {
    csrf: String,
    outcome: String,
    reason: String,
    text: String,
    evidence: String,
    file: Option<(String, Vec<u8>)>,
}

async fn read_notice(form: &mut Multipart) -> Result<Notice, ApiError> {
    let mut n = Notice::default();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(crate::ops::multipart_error)?
    {
        let name = field.name().map(str::to_string);
        match name.as_deref() {
            Some("file") => {
                let file_name = crate::ops::safe_file_name(field.file_name().unwrap_or("notice"));
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(crate::ops::multipart_error)? {
                    if bytes.len() + chunk.len() > EVIDENCE_MAX_BYTES {
                        return Err(ApiError::invalid(
                            "file",
                            format!("the evidence file is larger than {EVIDENCE_MAX_BYTES} bytes"),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                if !bytes.is_empty() {
                    n.file = Some((file_name, bytes));
                }
            }
            Some(f @ (CSRF_FIELD | "outcome" | "reason" | "text" | "evidence")) => {
                let f = f.to_string();
                let value = field.text().await.map_err(crate::ops::multipart_error)?;
                if f != CSRF_FIELD {
                    crate::input::check_text(&f, &value)?;
                }
                let value = value.trim().to_string();
                match f.as_str() {
                    "outcome" => n.outcome = value,
                    "reason" => n.reason = value,
                    "text" => n.text = value,
                    "evidence" => n.evidence = value,
                    _ => n.csrf = value,
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    format!("unexpected form field {other:?}"),
                    other,
                ))
            }
        }
    }
    Ok(n)
}

/// The notice's result, as the bank's words: a 4-character ISO reason code, a short text.
fn notice_result(n: &Notice) -> Result<BankResult, ApiError> {
    let code_ok = n.reason.len() == 4
        && n.reason
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !code_ok {
        return Err(ApiError::invalid(
            "reason",
            format!(
                "reason: {:?} is not a 4-character ISO reason code like AC01",
                n.reason
            ),
        ));
    }
    if n.text.chars().count() > 140 {
        return Err(ApiError::invalid("text", "text: at most 140 characters"));
    }
    let reason_code = n.reason.clone();
    let reason_text = Some(n.text.clone()).filter(|t| !t.is_empty());
    match n.outcome.as_str() {
        "rejected" => Ok(BankResult::Rejected {
            reason_code,
            reason_text,
            instructed: None,
        }),
        "returned" => Ok(BankResult::Returned {
            reason_code,
            reason_text,
            amount: None,
        }),
        other => Err(ApiError::invalid(
            "outcome",
            format!("outcome: {other:?} is neither rejected nor returned"),
        )),
    }
}

/// The notice entered: through the CLI's use case, with the uploaded file as evidence.
pub async fn enter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payout_no): Path<String>,
    mut form: Multipart,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let notice = match read_notice(&mut form).await {
        Ok(n) => n,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    if !session::same_token(&notice.csrf, &signed.csrf) {
        return forbidden(lang, &signed, T::CsrfRefused);
    }
    if let Some(r) = refused_role(lang, &signed) {
        return r;
    }
    let p = match paper_payout(&state, lang, &signed, &payout_no).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let result = async {
        let bank_result = notice_result(&notice)?;
        if notice.evidence.is_empty() {
            return Err(ApiError::invalid(
                "evidence",
                "evidence: say which notice this is (its date, its reference)",
            ));
        }
        let (file_name, bytes) = notice.file.as_ref().ok_or_else(|| {
            ApiError::invalid("file", "file: upload the bank's notice as evidence")
        })?;
        let no = PayoutNo::parse(&p.payout_no).map_err(ApiError::internal)?;
        let outcome = state
            .engine()
            .record_manual_result(
                &no,
                &bank_result,
                &notice.evidence,
                Some((file_name.as_str(), bytes.as_slice())),
                Utc::now(),
                &Actor::operator(&signed.name),
            )
            .await?;
        Ok(outcome)
    }
    .await;
    match result {
        Ok(ApplyOutcome::Applied(_)) => redirect(&format!(
            "{}#{}",
            order_href(&p.merchant, &p.order_no),
            p.payout_no
        )),
        Ok(ApplyOutcome::Unchanged(why)) => problem(
            lang,
            Some(&signed),
            StatusCode::CONFLICT,
            &format!("{}: {why}", tr(lang, T::NoticeUnchanged)),
        ),
        Err(e) => api_problem(lang, Some(&signed), e),
    }
}
