//! Batches and result files in the console: the list of batches, a batch's file to download,
//! the paper channel's instruction sheet to print, and a result file uploaded, previewed
//! (exactly what importing it would change, from the import itself run in a transaction that
//! is rolled back) and only then applied.
//!
//! An uploaded file waits for its "apply" in a directory of its own under the system's
//! temporary directory, named by a random token the preview page's form carries; applying it
//! (or finding it already imported) removes it. One previewed and never applied is removed once
//! it is older than [`STAGED_MAX_AGE`]: at each preview and apply, and when `serve` starts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use disburse_engine::{Actor, BatchSummary, ImportPreview};
use maud::{html, Markup};

use super::i18n::{tr, Lang, T};
use super::pages::{csrf, enc, layout, state_change};
use super::session::{self, Signed, CSRF_FIELD};
use super::{api_problem, html as page, problem, redirect, signed_in, Posted};
use super::{forbidden, signed_form};
use crate::error::ApiError;
use crate::AppState;

/// The directory uploaded files wait in until applied.
fn staging_root() -> PathBuf {
    std::env::temp_dir().join("disburse-console-uploads")
}

/// How long a previewed upload waits for its "apply" before it is removed.
pub const STAGED_MAX_AGE: Duration = Duration::from_secs(3600);

/// Removes the uploads previewed more than [`STAGED_MAX_AGE`] ago and never applied; returns
/// how many. Called at each preview and apply, and when `serve` starts.
pub fn remove_stale_uploads() -> usize {
    let removed = remove_stale_in(&staging_root(), SystemTime::now(), STAGED_MAX_AGE);
    if removed > 0 {
        tracing::info!(removed, "console: stale upload previews removed");
    }
    removed
}

/// The sweep itself, on any directory and clock: each staged upload (a directory named by a
/// token) last written more than `max_age` before `now` is removed with its file.
fn remove_stale_in(root: &std::path::Path, now: SystemTime, max_age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(dir) = name.to_str().and_then(staged_in(root)) else {
            continue;
        };
        // The newest of the directory and what it holds: a file still being written is fresh.
        let newest = std::iter::once(dir.clone())
            .chain(
                std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok())
                    .map(|e| e.path()),
            )
            .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .max();
        let stale = newest.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > max_age));
        if stale && std::fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The staged upload a token names, if the token is one this console could have made.
fn staged(token: &str) -> Option<PathBuf> {
    staged_in(&staging_root())(token)
}

fn staged_in(root: &std::path::Path) -> impl Fn(&str) -> Option<PathBuf> + '_ {
    move |token| {
        let ok = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| root.join(token))
    }
}

/// The one file in a staged upload's directory.
fn staged_file(dir: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_file())
}

/// The refusal page when the role may not handle bank files (viewers read only).
fn refused_files(lang: Lang, signed: &Signed) -> Option<Response> {
    (!signed.role.may_propose()).then(|| {
        problem(
            lang,
            Some(signed),
            StatusCode::FORBIDDEN,
            tr(lang, T::MayNotHandleFiles),
        )
    })
}

/// Every batch, newest first, and the form to upload a result file.
pub async fn batches(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut list = match state.engine().batches().await {
        Ok(b) => b,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    list.reverse();
    let channels: Vec<String> = state
        .engine()
        .config()
        .channels
        .iter()
        .filter(|c| !c.kind.sends_immediately())
        .map(|c| c.id.to_string())
        .collect();
    page(
        StatusCode::OK,
        batches_page(lang, &signed, &list, &channels, q.get("imported")),
    )
}

fn batches_page(
    lang: Lang,
    signed: &Signed,
    list: &[BatchSummary],
    channels: &[String],
    imported: Option<&String>,
) -> Markup {
    layout(
        lang,
        tr(lang, T::BatchesAndFiles),
        "/console/batches",
        Some(signed),
        html! {
            @if let Some(f) = imported { p.done role="status" { (tr(lang, T::Imported)) " " code { (f) } } }
            @if signed.role.may_propose() {
                h2 id="upload" { (tr(lang, T::UploadResultFile)) }
                form.card method="post" action="/console/files/preview" enctype="multipart/form-data" {
                    (csrf(signed))
                    label { (tr(lang, T::Channel))
                        select name="channel" {
                            option value="" { (tr(lang, T::ChannelFromFile)) }
                            @for c in channels { option value=(c) { (c) } }
                        }
                    }
                    label { (tr(lang, T::File)) input type="file" name="file" required; }
                    button type="submit" { (tr(lang, T::Preview)) }
                }
            }
            h2 { (tr(lang, T::Batches)) }
            @if list.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                table.list id="batches" {
                    thead { tr {
                        th { (tr(lang, T::Batch)) } th { (tr(lang, T::Channel)) } th { (tr(lang, T::File)) }
                        th { (tr(lang, T::Count)) } th { (tr(lang, T::Total)) } th { (tr(lang, T::Written)) }
                        th { (tr(lang, T::When)) } th { (tr(lang, T::Action)) }
                    } }
                    tbody { @for b in list {
                        tr data-batch=(b.batch_id) {
                            td { (b.batch_id) br; small { code { (b.message_id) } } }
                            td { (b.channel) }
                            td { code { (b.file_name) } br; small { (b.format) " · " code { (b.sha256.get(..12).unwrap_or(&b.sha256)) } } }
                            td.num { (b.payout_count) }
                            td.num { (disburse_engine::views_support::MoneyView::new(b.control_sum_minor, &b.currency).text) }
                            td { @if let Some(w) = &b.file_written { (w.written_at) } @else { (tr(lang, T::NotWritten)) } }
                            td { (b.created_at) }
                            td { @if signed.role.may_propose() {
                                a.button href={ "/console/batches/" (b.batch_id) "/file" } download { (tr(lang, T::Download)) }
                                @if b.format == "instruction-sheet" {
                                    " " a.button href={ "/console/batches/" (b.batch_id) "/sheet" } target="_blank" rel="noopener" { (tr(lang, T::PrintSheet)) }
                                }
                            } }
                        }
                    } }
                }
            }
        },
    )
}

/// A batch's file, byte for byte as first written, as a download. It carries full account
/// numbers (the bank needs them): operators and up only.
pub async fn batch_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    file_response(state, headers, id, false).await
}

/// The paper channel's instruction sheet, shown to print (it is self-contained HTML).
pub async fn batch_sheet(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    file_response(state, headers, id, true).await
}

async fn file_response(state: AppState, headers: HeaderMap, id: String, sheet: bool) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = refused_files(lang, &signed) {
        return r;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            &format!("{}: {id}", tr(lang, T::NotFound)),
        );
    };
    let (batch, bytes) = match state.engine().batch_file(id).await {
        Ok(b) => b,
        Err(e) => return api_problem(lang, Some(&signed), e.into()),
    };
    let is_sheet = batch.format == "instruction-sheet";
    if sheet && !is_sheet {
        return problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            tr(lang, T::NotASheet),
        );
    }
    tracing::info!(operator = %signed.name, batch = id, sheet, "console: batch file fetched");
    let content_type = match batch.format.as_str() {
        f if f.starts_with("pain.") => "application/xml",
        "csv" => "text/csv",
        "instruction-sheet" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // The sheet runs nothing and loads nothing; its own <style> is all it needs.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    let disposition = if sheet { "inline" } else { "attachment" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{}\"",
        crate::ops::safe_file_name(&batch.file_name)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Reads the upload form: its CSRF token, the channel and the file, staged under a new token.
async fn stage_upload(form: &mut Multipart) -> Result<(String, String, String, PathBuf), ApiError> {
    let mut csrf = String::new();
    let mut channel = String::new();
    let mut staged_at = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(crate::ops::multipart_error)?
    {
        match field.name() {
            Some(CSRF_FIELD) => csrf = field.text().await.map_err(crate::ops::multipart_error)?,
            Some("channel") => {
                let text = field.text().await.map_err(crate::ops::multipart_error)?;
                crate::input::check_text("channel", &text)?;
                channel = text.trim().to_string();
            }
            Some("file") => {
                let name = crate::ops::safe_file_name(field.file_name().unwrap_or("upload"));
                let token = crate::auth::random_token("");
                let dir = staging_root().join(&token);
                std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
                let path = dir.join(name);
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?;
                while let Some(chunk) = field.chunk().await.map_err(crate::ops::multipart_error)? {
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                        .await
                        .map_err(ApiError::internal)?;
                }
                tokio::io::AsyncWriteExt::flush(&mut out)
                    .await
                    .map_err(ApiError::internal)?;
                staged_at = Some((token, path));
            }
            other => {
                return Err(ApiError::bad_request(
                    format!("unexpected form field {other:?}"),
                    other,
                ))
            }
        }
    }
    let (token, path) =
        staged_at.ok_or_else(|| ApiError::bad_request("the form has no file", Some("file")))?;
    Ok((csrf, channel, token, path))
}

/// The upload: staged, previewed, nothing applied. The page shows what importing it would
/// change and a form to apply it.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let lang = Lang::of(&headers);
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    remove_stale_uploads();
    let (token_csrf, channel, token, path) = match stage_upload(&mut form).await {
        Ok(v) => v,
        Err(e) => return api_problem(lang, Some(&signed), e),
    };
    let discard = || {
        if let Some(dir) = path.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    };
    if !session::same_token(&token_csrf, &signed.csrf) {
        discard();
        return forbidden(lang, &signed, T::CsrfRefused);
    }
    if let Some(r) = refused_files(lang, &signed) {
        discard();
        return r;
    }
    let channel_opt = Some(channel.as_str()).filter(|c| !c.is_empty());
    match state
        .engine()
        .preview_results(
            &path,
            channel_opt,
            Utc::now(),
            &Actor::operator(&signed.name),
        )
        .await
    {
        Ok(p) => {
            if p.summary.already_imported {
                discard();
            }
            page(
                StatusCode::OK,
                preview_page(lang, &signed, &p, &token, &channel),
            )
        }
        Err(e) => {
            discard();
            let shown = path.file_name().map(|n| n.to_string_lossy().to_string());
            api_problem(
                lang,
                Some(&signed),
                ApiError::from(e).redact(
                    &path.display().to_string(),
                    shown.as_deref().unwrap_or("upload"),
                ),
            )
        }
    }
}

fn preview_page(
    lang: Lang,
    signed: &Signed,
    p: &ImportPreview,
    token: &str,
    channel: &str,
) -> Markup {
    let s = &p.summary;
    let exceptions: Vec<_> = p
        .events
        .iter()
        .filter(|e| e.action.starts_with("exception."))
        .collect();
    let changes: Vec<_> = p
        .events
        .iter()
        .filter(|e| !e.action.starts_with("exception.") && !e.action.starts_with("bank_file."))
        .collect();
    layout(
        lang,
        tr(lang, T::PreviewTitle),
        "/console/batches",
        Some(signed),
        html! {
            p.summary {
                code { (s.file_name) } " · " (s.format) " · " code { (s.sha256.get(..12).unwrap_or(&s.sha256)) }
            }
            @if s.already_imported {
                p.done role="status" id="already-imported" { (tr(lang, T::AlreadyImported)) }
            } @else {
                p id="preview-counts" role="status" {
                    (tr(lang, T::Records)) " " b { (s.read) } " · "
                    (tr(lang, T::Applied)) " " b data-count="applied" { (s.applied) } " · "
                    (tr(lang, T::Unchanged)) " " b data-count="unchanged" { (s.unchanged) } " · "
                    (tr(lang, T::Exceptions)) " " b data-count="exceptions" { (s.exceptions) }
                }
                p { small { (tr(lang, T::PreviewNothingApplied)) } }
                h2 { (tr(lang, T::StateChanges)) }
                @if changes.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                    table.list id="preview-changes" {
                        thead { tr { th { (tr(lang, T::What)) } th { (tr(lang, T::State)) } th { (tr(lang, T::Details)) } } }
                        tbody { @for e in &changes {
                            tr data-subject=(e.subject) {
                                td { code { (e.action) } br; (e.subject) }
                                td.state { @if let Some(c) = state_change(&e.detail) { (c) } }
                                td { @if let Some(r) = &e.reason { (r) } }
                            }
                        } }
                    }
                }
                h2 { (tr(lang, T::Postings)) }
                @if p.postings.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                    table.list id="preview-postings" {
                        thead { tr { th { (tr(lang, T::Kind)) } th { (tr(lang, T::Merchant)) } th { (tr(lang, T::Details)) } } }
                        tbody { @for j in &p.postings {
                            tr {
                                td { code { (j.kind) } }
                                td { @if let Some(m) = &j.merchant { (m) } }
                                td { ul.lines { @for l in &j.lines { li { code { (l.account) } " " (l.amount.text) } } } }
                            }
                        } }
                    }
                }
                h2 { (tr(lang, T::Exceptions)) }
                @if exceptions.is_empty() { p { (tr(lang, T::NoneYet)) } } @else {
                    table.list id="preview-exceptions" {
                        thead { tr { th { (tr(lang, T::Kind)) } th { (tr(lang, T::Reason)) } th { (tr(lang, T::Details)) } } }
                        tbody { @for e in &exceptions {
                            tr {
                                td { code { (e.action.trim_start_matches("exception.")) } }
                                td { @if let Some(r) = &e.reason { (r) } }
                                td { code.payload { (e.detail.to_string()) } }
                            }
                        } }
                    }
                }
                form.card method="post" action="/console/files/apply" {
                    (csrf(signed))
                    input type="hidden" name="upload" value=(token);
                    input type="hidden" name="channel" value=(channel);
                    button type="submit" id="apply" { (tr(lang, T::ApplyFile)) }
                }
            }
            p { a href="/console/batches" { (tr(lang, T::Back)) } }
        },
    )
}

/// Applies a previewed upload: the real import, attributed to the signed-in operator.
pub async fn apply(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let (lang, signed, fields) = match signed_form(&state, &headers, form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if let Some(r) = refused_files(lang, &signed) {
        return r;
    }
    remove_stale_uploads();
    let gone = || {
        problem(
            lang,
            Some(&signed),
            StatusCode::NOT_FOUND,
            tr(lang, T::UploadGone),
        )
    };
    let Some(dir) = staged(fields.get("upload")) else {
        return gone();
    };
    let Some(path) = staged_file(&dir) else {
        return gone();
    };
    let channel = Some(fields.get("channel").trim()).filter(|c| !c.is_empty());
    let result = state
        .engine()
        .import_results(
            &path,
            channel,
            Utc::now(),
            &Actor::operator(&signed.name),
            &|_, _| {},
        )
        .await;
    match result {
        Ok(s) => {
            std::fs::remove_dir_all(&dir).ok();
            tracing::info!(operator = %signed.name, file.name = %s.file_name, file.sha256 = %s.sha256,
                applied = s.applied, exceptions = s.exceptions, "console: result file imported");
            redirect(&format!("/console/batches?imported={}", enc(&s.file_name)))
        }
        Err(e) => {
            let shown = path.file_name().map(|n| n.to_string_lossy().to_string());
            api_problem(
                lang,
                Some(&signed),
                ApiError::from(e).redact(
                    &path.display().to_string(),
                    shown.as_deref().unwrap_or("upload"),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn a_stale_preview_is_removed_and_a_fresh_one_stays() {
        let root = tempfile::tempdir().unwrap();
        for t in ['a', 'b'] {
            let dir = root.path().join(token(t));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("result.xml"), b"<Document/>").unwrap();
        }
        // Something else in the directory is not ours to remove.
        std::fs::create_dir_all(root.path().join("not-a-token")).unwrap();
        let now = SystemTime::now();
        // Just written: nothing is stale yet.
        assert_eq!(remove_stale_in(root.path(), now, STAGED_MAX_AGE), 0);
        assert!(root.path().join(token('a')).exists());
        // An hour and a bit later, both are; only after `b` is touched again does it stay.
        let later = now + STAGED_MAX_AGE + Duration::from_secs(60);
        let fresh = root.path().join(token('b')).join("result.xml");
        let f = std::fs::File::options().write(true).open(&fresh).unwrap();
        f.set_modified(later).unwrap();
        assert_eq!(remove_stale_in(root.path(), later, STAGED_MAX_AGE), 1);
        assert!(
            !root.path().join(token('a')).exists(),
            "the stale preview is gone"
        );
        assert!(fresh.exists(), "the fresh preview stays");
        assert!(root.path().join("not-a-token").exists());
        // The sweep of the real directory runs without one.
        let _ = remove_stale_uploads();
    }
}
