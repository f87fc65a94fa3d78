//! Corrections (proposed by one person, decided by another), as the engine reads them.

use crate::rows::CorrectionRow;
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

impl Db {
    /// Corrections, optionally only those with one status, oldest first.
    pub async fn corrections(&self, status: Option<&str>) -> Result<Vec<CorrectionRow>> {
        match status {
            Some(s) => {
                self.fetch_all(
                    "WHERE status = $1 ORDER BY id",
                    &[Bind::Text(s.to_string())],
                )
                .await
            }
            None => self.fetch_all("ORDER BY id", &[]).await,
        }
    }
}

impl WriteTx<'_> {
    pub async fn correction(&mut self, id: i64) -> Result<Option<CorrectionRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }
}
