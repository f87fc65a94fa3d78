//! Batches and the record of their files being written, as the engine reads them.

use crate::rows::{BatchFileWriteRow, BatchRow};
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

impl Db {
    /// Every batch, oldest first.
    pub async fn batches(&self) -> Result<Vec<BatchRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }

    pub async fn batch(&self, id: i64) -> Result<Option<BatchRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    /// Batches whose file was never written out, oldest first.
    pub async fn unwritten_batches(&self) -> Result<Vec<BatchRow>> {
        self.fetch_all(
            "WHERE id NOT IN (SELECT batch_id FROM batch_file_writes) ORDER BY id",
            &[],
        )
        .await
    }

    /// Every record of a batch file written (one per batch at most), in no particular order.
    pub async fn batch_file_writes(&self) -> Result<Vec<BatchFileWriteRow>> {
        self.fetch_all("", &[]).await
    }
}

impl WriteTx<'_> {
    /// Where and when a batch's file was written, if it was.
    pub async fn batch_file_write(&mut self, batch_id: i64) -> Result<Option<BatchFileWriteRow>> {
        self.fetch_optional("WHERE batch_id = $1", &[Bind::Int(batch_id)])
            .await
    }

    /// The batch whose message id a bank's answer names.
    pub async fn batch_by_message_id(&mut self, message_id: &str) -> Result<Option<BatchRow>> {
        self.fetch_optional(
            "WHERE message_id = $1",
            &[Bind::Text(message_id.to_string())],
        )
        .await
    }
}
