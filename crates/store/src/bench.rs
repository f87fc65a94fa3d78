//! Rows and databases for the benchmarks (`disburse bench`, `disburse bench-statements`): seeded
//! by multi-row INSERTs straight into the tables, as fast as the database takes them. A fixture
//! the imports are measured against, never a path of the product: no audit event covers these
//! rows, so they are written only into a benchmark's own fresh database.

use std::path::Path;

use sqlx::Connection;

use crate::{Db, Result, StoreError};

/// Rows per seeding INSERT.
const SEED_ROWS_PER_STATEMENT: usize = 500;

/// Payouts in `state`, each with its order, for one merchant `bench`: one set per (channel,
/// count), payout `i` of set `k` numbered `payout_no(k, i)` with `amount_minor(i)` EUR.
pub async fn seed_payouts(
    db: &Db,
    sets: &[(&str, usize)],
    at: &str,
    state: &str,
    payout_no: impl Fn(usize, usize) -> String,
    amount_minor: impl Fn(usize) -> i64,
) -> Result<()> {
    db.execute_raw(&format!(
        "INSERT INTO merchants (id, name, account_status, created_at, updated_at) VALUES ('bench', 'Bench GmbH', 'ok', '{at}', '{at}')"
    ))
    .await?;
    db.execute_raw(&format!(
        "INSERT INTO bank_accounts (id, merchant_id, version, holder_name, kind, country, last4, bic, sealed_number, created_at) \
         VALUES (1, 'bench', 1, 'Bench GmbH', 'iban', 'DE', '3000', NULL, 'v1:unused-in-bench', '{at}')"
    ))
    .await?;
    let order_state = if state == "succeeded" {
        "paid"
    } else {
        "paying"
    };
    let mut offset = 0usize;
    for (set, (channel, n)) in sets.iter().enumerate() {
        let n = *n;
        for start in (0..n).step_by(SEED_ROWS_PER_STATEMENT) {
            let end = (start + SEED_ROWS_PER_STATEMENT).min(n);
            let mut orders = String::from("INSERT INTO orders (id, merchant_id, order_no, currency, amount_minor, bank_account_id, state, created_at, updated_at) VALUES ");
            let mut payouts = String::from("INSERT INTO payouts (id, payout_no, order_id, merchant_id, channel_id, currency, amount_minor, bank_account_id, state, submitted_at, created_at, updated_at) VALUES ");
            for i in start..end {
                let id = (offset + i + 1) as i64;
                let amount = amount_minor(i);
                if i > start {
                    orders.push(',');
                    payouts.push(',');
                }
                orders.push_str(&format!(
                    "({id}, 'bench', 'B{set}-{i}', 'EUR', {amount}, 1, '{order_state}', '{at}', '{at}')"
                ));
                payouts.push_str(&format!(
                    "({id}, '{}', {id}, 'bench', '{channel}', 'EUR', {amount}, 1, '{state}', '{at}', '{at}', '{at}')",
                    payout_no(set, i)
                ));
            }
            db.execute_raw(&orders).await?;
            db.execute_raw(&payouts).await?;
        }
        offset += n;
    }
    let total = offset as i64;
    db.execute_raw(&format!(
        "UPDATE sequences SET value = {total} WHERE name IN ('payout', 'order')"
    ))
    .await?;
    db.execute_raw("UPDATE sequences SET value = 1 WHERE name = 'bank_account'")
        .await?;
    Ok(())
}

/// A scratch database name: letters, digits and `_` only, since it is written into DDL.
fn checked(name: &str) -> Result<&str> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(StoreError::Corrupt(format!(
            "{name:?} is not a scratch database name"
        )))
    }
}

async fn admin(server_url: &str, sql: &str) -> Result<()> {
    let mut con = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(sql).execute(&mut con).await?;
    con.close().await?;
    Ok(())
}

/// A fresh, empty scratch database `name` on the PostgreSQL server of `server_url` (any of its
/// databases), replacing one left by an earlier run.
pub async fn create_scratch_database(server_url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    admin(server_url, &format!("DROP DATABASE IF EXISTS {name}")).await?;
    admin(server_url, &format!("CREATE DATABASE {name}")).await
}

/// A scratch database `name` holding a copy of `template` (which nobody may be connected to).
pub async fn copy_scratch_database(server_url: &str, name: &str, template: &str) -> Result<()> {
    let (name, template) = (checked(name)?, checked(template)?);
    admin(server_url, &format!("DROP DATABASE IF EXISTS {name}")).await?;
    admin(
        server_url,
        &format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await
}

/// Drops a scratch database, disconnecting whoever is still on it.
pub async fn drop_scratch_database(server_url: &str, name: &str) -> Result<()> {
    let name = checked(name)?;
    admin(
        server_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await
}

impl Db {
    /// A copy of this SQLite database in a new file: the same rows and indexes.
    pub async fn copy_sqlite_to(&self, path: &Path) -> Result<()> {
        let target = path.display().to_string().replace('\'', "''");
        self.execute_raw(&format!("VACUUM INTO '{target}'")).await?;
        Ok(())
    }
}
