//! Audit verification: the chain and the ledger.

use super::*;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditReport {
    /// The hash chain and every tracked row agree.
    pub audit_ok: bool,
    /// What does not match, first found first.
    pub findings: Vec<String>,
    /// Every journal balances and the totals per currency are zero.
    pub ledger_ok: bool,
    pub unbalanced_journals: Vec<i64>,
    pub totals: std::collections::BTreeMap<String, i64>,
}

/// Walks the audit chain and checks every row against it; checks the books.
#[utoipa::path(
    get, path = "/ops/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditReport)),
    security(("operator_session" = []))
)]
pub async fn audit_verify(
    State(state): State<AppState>,
    _caller: OperatorCaller,
) -> ApiResult<Json<AuditReport>> {
    let db = state.engine().db();
    let findings = db.verify_audit().await?;
    let ledger = db.ledger_check().await?;
    Ok(Json(AuditReport {
        audit_ok: findings.is_empty(),
        findings: findings.into_iter().map(|f| f.what).collect(),
        ledger_ok: ledger.is_ok(),
        unbalanced_journals: ledger.unbalanced.iter().map(|(id, _, _)| *id).collect(),
        totals: ledger.totals,
    }))
}
