//! Result files uploaded and imported.

use super::*;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub file_id: i64,
    pub file_name: String,
    pub sha256: String,
    pub format: String,
    /// The same file was imported before: nothing changed.
    pub already_imported: bool,
    pub resumed_after_line: u64,
    pub read: u64,
    pub applied: u64,
    pub unchanged: u64,
    /// Lines that could not be applied; each is in the exceptions queue with file and line.
    pub exceptions: u64,
    pub outcomes: std::collections::BTreeMap<String, u64>,
}

impl From<disburse_engine::ImportSummary> for ImportResult {
    fn from(s: disburse_engine::ImportSummary) -> Self {
        ImportResult {
            file_id: s.file_id,
            file_name: s.file_name,
            sha256: s.sha256,
            format: s.format,
            already_imported: s.already_imported,
            resumed_after_line: s.resumed_after_line,
            read: s.read,
            applied: s.applied,
            unchanged: s.unchanged,
            exceptions: s.exceptions,
            outcomes: s.outcomes,
        }
    }
}

/// The multipart form of a result-file upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ResultFileUpload {
    /// The bank's file: pain.002, camt.054, camt.053 or the channel's CSV.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The channel it came from; needed for CSV files.
    pub channel: Option<String>,
}

/// A file name safe to create: letters, digits, `.`, `-`, `_`; at most 100 characters.
pub(crate) fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "upload".to_string()
    } else {
        cleaned
    }
}

pub(crate) fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if crate::http::is_body_timeout(&format!("{e:?} {}", e.body_text())) {
        ApiError::RequestTimeout(crate::http::BODY_TIMEOUT_TEXT.into())
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the upload is too large: {}", e.body_text()))
    } else {
        ApiError::bad_request(
            format!("the upload cannot be read: {}", e.body_text()),
            None,
        )
    }
}

/// Uploads a bank result file and imports it (the same file twice is "already imported").
#[utoipa::path(
    post, path = "/ops/v1/result-files", tag = "files",
    request_body(content = ResultFileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = ImportResult),
        (status = 400, description = "Not a multipart form with a `file`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer may not import", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A broken file, refused whole", body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn upload_result_file(
    State(state): State<AppState>,
    caller: OperatorCaller,
    mut form: Multipart,
) -> ApiResult<Json<ImportResult>> {
    caller.require(caller.role.may_propose(), "import result files")?;
    let dir = tempfile::tempdir().map_err(ApiError::internal)?;
    let mut path = None;
    let mut channel = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                let name = safe_file_name(field.file_name().unwrap_or("upload"));
                let p = dir.path().join(name);
                let mut out = tokio::fs::File::create(&p)
                    .await
                    .map_err(ApiError::internal)?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                        .await
                        .map_err(ApiError::internal)?;
                }
                tokio::io::AsyncWriteExt::flush(&mut out)
                    .await
                    .map_err(ApiError::internal)?;
                path = Some(p);
            }
            Some("channel") => {
                let text = field.text().await.map_err(multipart_error)?;
                crate::input::check_text("channel", &text)?;
                if !text.trim().is_empty() {
                    channel = Some(text.trim().to_string());
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    format!(
                        "unexpected form field {other:?}; send `file` and optionally `channel`"
                    ),
                    other,
                ))
            }
        }
    }
    let path =
        path.ok_or_else(|| ApiError::bad_request("the form has no `file` field", Some("file")))?;
    let summary = state
        .engine()
        .import_results(
            &path,
            channel.as_deref(),
            Utc::now(),
            &Actor::operator(&caller.name),
            &|_, _| {},
        )
        .await
        // The file is named as the operator sent it, never by where we put it.
        .map_err(|e| {
            let shown = path.file_name().map(|n| n.to_string_lossy().to_string());
            ApiError::from(e)
                .redact(
                    &path.display().to_string(),
                    shown.as_deref().unwrap_or("upload"),
                )
                .redact(&dir.path().display().to_string(), "")
        })?;
    tracing::info!(operator = %caller.name, file.name = %summary.file_name, file.sha256 = %summary.sha256,
        applied = summary.applied, exceptions = summary.exceptions, "result file imported");
    Ok(Json(summary.into()))
}
