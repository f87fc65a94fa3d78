//! The merchant's balance per currency.

use super::*;

/// Balances in one currency, each as a non-negative amount in the normal case.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrencyBalance {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// What the merchant may withdraw.
    pub available_minor: i64,
    /// Reserved for open orders, not yet with a bank.
    pub withdrawing_minor: i64,
    /// Sent to a bank, outcome not final.
    pub in_transit_minor: i64,
    /// What the merchant owes (a bank overpaid it).
    pub receivable_minor: i64,
    /// What a bank underpaid and is still owed to the merchant.
    pub shortfall_minor: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub merchant: String,
    pub balances: Vec<CurrencyBalance>,
}

/// What the merchant has with us, per currency.
#[utoipa::path(
    get, path = "/v1/balance", tag = "merchant",
    responses((status = 200, body = Balance), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn get_balance(
    State(state): State<AppState>,
    caller: MerchantCaller,
) -> ApiResult<Json<Balance>> {
    let m = caller.0.clone();
    let accounts = [
        LedgerAccount::MerchantAvailable(m.clone()),
        LedgerAccount::MerchantWithdrawing(m.clone()),
        LedgerAccount::MerchantInTransit(m.clone()),
        LedgerAccount::MerchantReceivable(m.clone()),
        LedgerAccount::MerchantShortfall(m.clone()),
    ]
    .map(|a| a.to_string());
    // Summed by the store without overflow (store::sums).
    let rows = state.engine().db().balances_of(&accounts).await?;
    let mut by_currency = std::collections::BTreeMap::<String, CurrencyBalance>::new();
    for (account, currency, total) in rows {
        let b = by_currency
            .entry(currency.clone())
            .or_insert_with(|| CurrencyBalance {
                currency,
                available_minor: 0,
                withdrawing_minor: 0,
                in_transit_minor: 0,
                receivable_minor: 0,
                shortfall_minor: 0,
            });
        let amount = natural_sign(&account, total);
        let slot = match accounts.iter().position(|a| *a == account) {
            Some(0) => &mut b.available_minor,
            Some(1) => &mut b.withdrawing_minor,
            Some(2) => &mut b.in_transit_minor,
            Some(3) => &mut b.receivable_minor,
            _ => &mut b.shortfall_minor,
        };
        *slot = amount;
    }
    Ok(Json(Balance {
        merchant: m.to_string(),
        balances: by_currency.into_values().collect(),
    }))
}
