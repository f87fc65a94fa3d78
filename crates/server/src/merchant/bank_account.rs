//! The bank account payouts go to.

use super::*;

/// The bank account payouts go to: an IBAN, or a local account (country, bank code, number).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountRequest {
    pub holder: String,
    pub iban: Option<String>,
    pub country: Option<String>,
    pub bank_code: Option<String>,
    pub number: Option<String>,
    pub bic: Option<String>,
}

/// The account as stored, masked: only the last four digits of the number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BankAccount {
    pub version: i64,
    pub holder: String,
    /// `iban` or `local`.
    pub kind: String,
    pub country: String,
    pub last4: String,
    pub bic: Option<String>,
    /// Payouts started at once for orders that waited for this fix.
    pub retried_payouts: Vec<String>,
}

pub(super) fn account_field(e: &AccountError, default: &'static str) -> &'static str {
    match e {
        AccountError::BadBankCode { .. } => "bank_code",
        AccountError::BadLocalNumber { .. } => "number",
        AccountError::CountryUsesIban(_) | AccountError::BadCountryCode(_) => "country",
        AccountError::BicWrongLength(_) | AccountError::BadBic(_) => "bic",
        AccountError::BadHolderName(_) => "holder",
        _ => default,
    }
}

pub(crate) fn parse_bank_account(req: &BankAccountRequest) -> ApiResult<CoreBankAccount> {
    let holder = HolderName::parse(&req.holder).map_err(|e| ApiError::invalid("holder", e))?;
    let bic = req
        .bic
        .as_deref()
        .map(Bic::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("bic", e))?;
    let local = (&req.country, &req.bank_code, &req.number);
    let number: AccountNumber = match (&req.iban, local) {
        (Some(iban), (None, None, None)) => Iban::parse(iban)
            .map_err(|e| ApiError::invalid(account_field(&e, "iban"), e))?
            .into(),
        (None, (Some(country), Some(code), Some(number))) => {
            let country =
                CountryCode::parse(country).map_err(|e| ApiError::invalid("country", e))?;
            LocalAccount::new(country, code, number)
                .map_err(|e| ApiError::invalid(account_field(&e, "number"), e))?
                .into()
        }
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "iban",
                "give either an IBAN or country, bank_code and number, not both",
            ))
        }
        (None, (None, _, _)) if req.bank_code.is_none() && req.number.is_none() => {
            return Err(ApiError::invalid(
                "iban",
                "give an IBAN, or country, bank_code and number",
            ))
        }
        (None, (country, code, _)) => {
            let missing = if country.is_none() {
                "country"
            } else if code.is_none() {
                "bank_code"
            } else {
                "number"
            };
            return Err(ApiError::invalid(
                missing,
                "a local account needs country, bank_code and number",
            ));
        }
    };
    Ok(CoreBankAccount::new(holder, number, bic))
}

/// Sets the account payouts go to (a new version; earlier payouts keep theirs). Orders waiting
/// for an account fix are paid again at once where their channel allows it.
#[utoipa::path(
    put, path = "/v1/bank-account", tag = "merchant",
    request_body = BankAccountRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe", pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, body = BankAccount),
        (status = 422, description = "The IBAN, BIC, bank code, number or holder is wrong", body = Problem, content_type = "application/problem+json"),
    ),
    security(("merchant_api_key" = []))
)]
pub async fn put_bank_account(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiJson(req): ApiJson<BankAccountRequest>,
) -> ApiResult<Json<BankAccount>> {
    let account = parse_bank_account(&req)?;
    let set = state
        .engine()
        .set_bank_account(&caller.0, &account, Utc::now(), &caller.actor())
        .await?;
    Ok(Json(BankAccount {
        version: set.account.version,
        holder: set.account.holder_name,
        kind: set.account.kind,
        country: set.account.country,
        last4: set.account.last4,
        bic: set.account.bic,
        retried_payouts: set.retried,
    }))
}
