//! Imported bank files and stored evidence files, as the engine reads them.

use crate::rows::{BankFileRow, EvidenceRow};
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

/// Values per `IN (…)` list of a set read.
const IN_LIST_MAX: usize = 500;

impl Db {
    /// The bank files with these ids (unknown ids are left out), by set reads.
    pub async fn bank_files_by_ids(&self, ids: &[i64]) -> Result<Vec<BankFileRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for group in ids.chunks(IN_LIST_MAX) {
            let list: Vec<String> = (1..=group.len()).map(|i| format!("${i}")).collect();
            let binds: Vec<Bind> = group.iter().map(|id| Bind::Int(*id)).collect();
            out.extend(
                self.fetch_all::<BankFileRow>(
                    &format!("WHERE id IN ({}) ORDER BY id", list.join(", ")),
                    &binds,
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// The bank file with these contents (by SHA-256), if it was imported or started.
    pub async fn bank_file_by_sha256(&self, sha256: &str) -> Result<Option<BankFileRow>> {
        self.fetch_optional("WHERE sha256 = $1", &[Bind::Text(sha256.to_string())])
            .await
    }
}

impl WriteTx<'_> {
    /// Evidence already stored with these contents (by SHA-256).
    pub async fn evidence_by_sha256(&mut self, sha256: &str) -> Result<Option<EvidenceRow>> {
        self.fetch_optional("WHERE sha256 = $1", &[Bind::Text(sha256.to_string())])
            .await
    }
}
