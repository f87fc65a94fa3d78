//! Batches: listed and their payment files downloaded.

use super::*;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    pub batch_id: i64,
    pub channel: String,
    pub message_id: String,
    pub file_name: String,
    pub format: String,
    pub sha256: String,
    pub payout_count: i64,
    pub control_sum_minor: i64,
    pub currency: String,
    pub created_at: String,
}

impl From<disburse_engine::BatchSummary> for Batch {
    fn from(b: disburse_engine::BatchSummary) -> Self {
        Batch {
            batch_id: b.batch_id,
            channel: b.channel,
            message_id: b.message_id,
            file_name: b.file_name,
            format: b.format,
            sha256: b.sha256,
            payout_count: b.payout_count,
            control_sum_minor: b.control_sum_minor,
            currency: b.currency,
            created_at: b.created_at,
        }
    }
}

/// Every batch file sent to a bank.
#[utoipa::path(
    get, path = "/ops/v1/batches", tag = "files",
    responses((status = 200, body = [Batch])),
    security(("operator_session" = []))
)]
pub async fn list_batches(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<Vec<Batch>>> {
    let batches = state.engine().batches().await?;
    Ok(Json(batches.into_iter().map(Batch::from).collect()))
}

/// A batch's file, byte for byte as it was first written.
#[utoipa::path(
    get, path = "/ops/v1/batches/{id}/file", tag = "files",
    params(("id" = i64, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("operator_session" = []))
)]
pub async fn download_batch(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&id, "batch")?;
    let (batch, bytes) = state.engine().batch_file(id).await?;
    let content_type = match batch.format.as_str() {
        f if f.starts_with("pain.") => "application/xml",
        "csv" => "text/csv",
        "instruction-sheet" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        safe_file_name(&batch.file_name)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
