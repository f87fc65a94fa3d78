//! The exception queue's stored rows (exceptions, who claimed an item, notes on it), as the
//! engine reads them.

use crate::rows::{ExceptionClaimRow, ExceptionNoteRow, ExceptionRow};
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

impl Db {
    /// Up to `limit` open exceptions with an id above `after_id`, oldest first: page through
    /// them all by passing the last id of a page as the next `after_id` (0 to start).
    pub async fn open_exceptions_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        self.fetch_all(
            &format!("WHERE status = 'open' AND id > $1 ORDER BY id LIMIT {limit}"),
            &[Bind::Int(after_id)],
        )
        .await
    }

    /// Every claim on a queue item, by item id.
    pub async fn exception_claims(&self) -> Result<Vec<ExceptionClaimRow>> {
        self.fetch_all("ORDER BY item_id", &[]).await
    }

    /// Every note on a queue item, oldest first.
    pub async fn exception_notes(&self) -> Result<Vec<ExceptionNoteRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }
}

impl WriteTx<'_> {
    /// Who claimed a queue item, if anyone.
    pub async fn exception_claim(&mut self, item_id: &str) -> Result<Option<ExceptionClaimRow>> {
        self.fetch_optional("WHERE item_id = $1", &[Bind::Text(item_id.to_string())])
            .await
    }
}
