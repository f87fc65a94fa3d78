//! Discrepancies (a bank paid more or less than instructed, or twice), as the engine reads them.

use crate::rows::DiscrepancyRow;
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

impl Db {
    /// Every discrepancy, oldest first.
    pub async fn discrepancies(&self) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }

    /// The discrepancies not yet settled, oldest first.
    pub async fn unsettled_discrepancies(&self) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all("WHERE status <> 'settled' ORDER BY id", &[])
            .await
    }
}

impl WriteTx<'_> {
    pub async fn discrepancy(&mut self, id: i64) -> Result<Option<DiscrepancyRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    /// A payout's discrepancies not yet settled, oldest first.
    pub async fn unsettled_discrepancies_of_payout(
        &mut self,
        payout_no: &str,
    ) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all(
            "WHERE origin_payout_no = $1 AND status <> 'settled' ORDER BY id",
            &[Bind::Text(payout_no.to_string())],
        )
        .await
    }

    /// A payout's amount discrepancies (overpaid or underpaid, settled or not), oldest first.
    pub async fn amount_discrepancies_of_payout(
        &mut self,
        payout_no: &str,
    ) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all(
            "WHERE origin_payout_no = $1 AND direction IN ('overpaid', 'underpaid') ORDER BY id",
            &[Bind::Text(payout_no.to_string())],
        )
        .await
    }

    /// The discrepancy a top-up payout pays, if it is one.
    pub async fn discrepancy_of_top_up(
        &mut self,
        topup_payout_no: &str,
    ) -> Result<Option<DiscrepancyRow>> {
        self.fetch_optional(
            "WHERE topup_payout_no = $1",
            &[Bind::Text(topup_payout_no.to_string())],
        )
        .await
    }

    /// A merchant's discrepancies in a currency that wait for its next payout (netted against
    /// it or added to it), oldest first.
    pub async fn discrepancies_for_next_payout(
        &mut self,
        merchant_id: &str,
        currency: &str,
    ) -> Result<Vec<DiscrepancyRow>> {
        self.fetch_all(
            "WHERE merchant_id = $1 AND currency = $2 AND status IN ('netting', 'adding') ORDER BY id",
            &[
                Bind::Text(merchant_id.to_string()),
                Bind::Text(currency.to_string()),
            ],
        )
        .await
    }
}
