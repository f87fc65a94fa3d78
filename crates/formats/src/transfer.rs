//! What we instruct a bank to pay: the input of every outgoing format (pain.001, bank CSV, the
//! printed instruction sheet). One type for all of them, so each channel pays exactly the same data.

use disburse_core::{Currency, Money};

use crate::error::WriteError;

/// The beneficiary's account as the bank needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditorAccount {
    /// An IBAN, upper case, without spaces.
    Iban(String),
    /// A domestic account number that is not an IBAN, with the code of the bank that holds it
    /// (a CNAPS code in China, an ABA routing number in the US, a sort code in the UK...).
    Other { id: String, bank_code: String },
}

impl CreditorAccount {
    /// The account as one line of text: the IBAN, or `id` followed by the bank code.
    pub fn display_text(&self) -> String {
        match self {
            CreditorAccount::Iban(iban) => iban.clone(),
            CreditorAccount::Other { id, bank_code } => format!("{id} (bank code {bank_code})"),
        }
    }
}

/// One payout to instruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditTransfer {
    /// Our payout number; the bank echoes it back in every result, which is how results are matched.
    pub end_to_end_id: String,
    pub amount: Money,
    pub creditor_name: String,
    pub creditor_account: CreditorAccount,
    pub creditor_bic: Option<String>,
    /// ISO 3166 alpha-2 country of the beneficiary, upper case (`DE`, `CN`).
    pub creditor_country: String,
    /// Free text for the beneficiary's statement (at most 140 characters in pain.001).
    pub remittance_info: String,
}

/// What a writer put in a file: how many payouts and their sum (the control sum of the batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub count: usize,
    pub control_sum: Money,
}

/// Checks a batch is non-empty, in one currency (`currency`), of positive amounts, with unique
/// end-to-end ids, and returns its summary. Every writer calls this before writing a byte, so a
/// refused batch never leaves half a file behind.
pub(crate) fn summarize(
    transfers: &[CreditTransfer],
    currency: Currency,
) -> Result<BatchSummary, WriteError> {
    if transfers.is_empty() {
        return Err(WriteError::invalid(
            None,
            "transfers",
            "a batch needs at least one transfer",
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(transfers.len());
    let mut sum = Money::zero(currency);
    for t in transfers {
        let id = t.end_to_end_id.as_str();
        if !seen.insert(id) {
            return Err(WriteError::invalid(
                Some(id),
                "end_to_end_id",
                "appears twice in the batch; every payout must be instructed once",
            ));
        }
        if t.amount.currency() != currency {
            return Err(WriteError::invalid(
                Some(id),
                "amount",
                format!(
                    "is in {} but the batch is in {currency}",
                    t.amount.currency()
                ),
            ));
        }
        if !t.amount.is_positive() {
            return Err(WriteError::invalid(
                Some(id),
                "amount",
                format!("must be greater than zero, got {}", t.amount),
            ));
        }
        sum = sum
            .checked_add(t.amount)
            .map_err(|e| WriteError::invalid(Some(id), "amount", e.to_string()))?;
    }
    Ok(BatchSummary {
        count: transfers.len(),
        control_sum: sum,
    })
}
