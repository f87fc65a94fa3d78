//! The exception queue's stored rows (exceptions, who claimed an item, notes on it), as the
//! engine reads them.

use crate::rows::{ExceptionClaimRow, ExceptionNoteRow, ExceptionRow};
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

impl Db {
    /// Exceptions still open, oldest first.
    pub async fn open_exceptions(&self) -> Result<Vec<ExceptionRow>> {
        self.fetch_all("WHERE status = 'open' ORDER BY id", &[])
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
