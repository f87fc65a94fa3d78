//! Merchants and their bank accounts, as the engine's use cases read them.

use crate::rows::{BankAccountRow, MerchantRow};
use crate::tx::WriteTx;
use crate::{Bind, Result};

/// Values per `IN (…)` list of a set read.
const IN_LIST_MAX: usize = 500;

/// A merchant's current account: the highest version.
const CURRENT_ACCOUNT: &str = "WHERE merchant_id = $1 ORDER BY version DESC LIMIT 1";

impl WriteTx<'_> {
    /// The merchant's current bank account (its latest version), if it has one.
    pub async fn current_bank_account(
        &mut self,
        merchant_id: &str,
    ) -> Result<Option<BankAccountRow>> {
        self.fetch_optional(CURRENT_ACCOUNT, &[Bind::Text(merchant_id.to_string())])
            .await
    }

    /// One bank account version by id.
    pub async fn bank_account(&mut self, id: i64) -> Result<Option<BankAccountRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    /// The bank accounts with these ids (unknown ids are left out), by set reads.
    pub async fn bank_accounts_by_ids(&mut self, ids: &[i64]) -> Result<Vec<BankAccountRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for group in ids.chunks(IN_LIST_MAX) {
            let list: Vec<String> = (1..=group.len()).map(|i| format!("${i}")).collect();
            let binds: Vec<Bind> = group.iter().map(|id| Bind::Int(*id)).collect();
            out.extend(
                self.fetch_all::<BankAccountRow>(
                    &format!("WHERE id IN ({}) ORDER BY id", list.join(", ")),
                    &binds,
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// The merchant, if its account is flagged (a bank said the account is wrong).
    pub async fn merchant_with_flagged_account(
        &mut self,
        merchant_id: &str,
    ) -> Result<Option<MerchantRow>> {
        self.fetch_optional(
            "WHERE id = $1 AND account_status = 'needs_update'",
            &[Bind::Text(merchant_id.to_string())],
        )
        .await
    }
}
