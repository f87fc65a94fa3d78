//! Named operators and their roles, as the engine reads them.

use crate::rows::OperatorRow;
use crate::tx::WriteTx;
use crate::{Bind, Result};

impl WriteTx<'_> {
    /// The operator of this name, read in the transaction.
    pub async fn operator(&mut self, name: &str) -> Result<Option<OperatorRow>> {
        self.fetch_optional("WHERE name = $1", &[Bind::Text(name.to_string())])
            .await
    }

    /// Every operator, by name.
    pub async fn operators(&mut self) -> Result<Vec<OperatorRow>> {
        self.fetch_all("ORDER BY name", &[]).await
    }
}
