//! One merchant's order as operators see it.

use super::*;

/// One merchant's order with every payout and discrepancy.
#[utoipa::path(
    get, path = "/ops/v1/merchants/{merchant}/withdrawals/{order_no}", tag = "exceptions",
    params(
        ("merchant" = String, Path, description = "Merchant id", pattern = "^[a-z0-9_-]{1,64}$"),
        ("order_no" = String, Path, description = "The merchant's order number", pattern = "^[A-Za-z0-9._/-]{1,35}$"),
    ),
    responses((status = 200, body = Withdrawal), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator_session" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    _caller: OperatorCaller,
    Path((merchant, no)): Path<(String, String)>,
) -> ApiResult<Json<Withdrawal>> {
    let not_found = || ApiError::NotFound(format!("no order {no:?} of merchant {merchant:?}"));
    if MerchantId::parse(&merchant).is_err() || OrderNo::parse(&no).is_err() {
        return Err(not_found());
    }
    load_withdrawal(&state, &merchant, &no)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}
