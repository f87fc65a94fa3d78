//! Storage: sqlx over SQLite (embedded default) and PostgreSQL through one set of runtime queries
//! (`sqlx::Any`), one schema written in the portable subset of SQL, and one transaction per change.
//!
//! This crate knows tables and rows; it makes no business decision. Every write goes through
//! [`WriteTx`], which records the digest of each row written and appends the hash-chained audit
//! event in the same transaction.

mod bank_files;
mod batches;
pub mod bench;
mod claims;
mod corrections;
mod credentials;
mod discrepancies;
mod exceptions;
mod idempotency;
mod merchants;
mod metrics;
mod operators;
mod orders;
mod pages;
mod payouts;
mod plans;
pub mod rows;
pub mod service;
mod sessions;
mod statements;
mod sums;
pub mod testing;
mod tx;
mod verify;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

pub use claims::Claim;
pub use credentials::{LoginFacts, LoginFailures};
pub use idempotency::{IdempotencyRecord, IdempotentAnswer};
pub use pages::OrderPage;
pub use plans::QueryPlan;
pub use rows::*;
pub use sessions::{ConsoleSession, OperatorSession};
pub use statements::StatementKey;
pub use tx::{NewAuditEvent, WriteTx};
pub use verify::{BalanceRowOff, LedgerCheck, TamperFinding};
pub use webhooks::{
    ClaimedDelivery, DeliveryListing, FailedAttempt, UnqueuedMessage, ENQUEUE_ROUND,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(
        "no audit chain key: set DISBURSE_CHAIN_KEY or --chain-key-file (or let the engine derive \
         it from the account key)"
    )]
    NoChainKey,
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database URL {0:?} is neither sqlite: nor postgres:")]
    UnknownBackend(String),
    #[error("stored data is not what the system wrote: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The name of the unique constraint a write violated, if that is what failed; lets the caller
    /// turn a lost race into a plain refusal.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            StoreError::Sql(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Some(e.constraint().unwrap_or(e.message()).to_string())
            }
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Hashes the audit chain; never stored in the database. Without it nothing can be written
    /// or verified.
    chain_key: Option<disburse_core::crypto::ChainKey>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `disburse.db`, `./x.db`, `sqlite://x.db` or `sqlite::memory:` → SQLite; `postgres://…` → PostgreSQL.
pub fn normalize_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        let sep = if rest.contains('?') { '&' } else { '?' };
        let with_mode = if rest.contains("mode=") || rest == ":memory:" {
            url.to_string()
        } else {
            format!("{url}{sep}mode=rwc")
        };
        Ok((Backend::Sqlite, with_mode))
    } else if !url.contains("://") {
        Ok((Backend::Sqlite, format!("sqlite://{url}?mode=rwc")))
    } else {
        Err(StoreError::UnknownBackend(url.to_string()))
    }
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. busy_timeout: a second writer
                        // (another process) waits its turn instead of failing. cache_size: 32 MiB
                        // of pages per connection (SQLite's default is 2 MiB): an import's set
                        // reads walk the payout indexes of millions of rows, and with the default
                        // every page came back from the OS by pread, chunk after chunk.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; \
                             PRAGMA cache_size = -32768;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let db = Db {
            pool,
            backend,
            chain_key: None,
        };
        // Whatever command creates the SQLite file (`init`, `demo`, `serve`), it and its WAL hold
        // the books: owner-only from the start.
        service::restrict_sqlite_files(&db).await?;
        Ok(db)
    }

    /// The key the audit chain is hashed with (see `disburse_core::crypto::ChainKey`).
    pub fn with_chain_key(mut self, key: disburse_core::crypto::ChainKey) -> Db {
        self.chain_key = Some(key);
        self
    }

    pub fn has_chain_key(&self) -> bool {
        self.chain_key.is_some()
    }

    pub(crate) fn chain_key(&self) -> Result<&disburse_core::crypto::ChainKey> {
        self.chain_key.as_ref().ok_or(StoreError::NoChainKey)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. It takes the audit head first, which serializes writers.
    pub async fn write(&self) -> Result<WriteTx<'static>> {
        WriteTx::begin(&self.pool, self.backend, self.chain_key()?.clone()).await
    }

    pub async fn fetch_all<T: Tracked>(&self, where_sql: &str, binds: &[Bind]) -> Result<Vec<T>> {
        let sql = format!("{} {}", T::SELECT, where_sql);
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| T::from_row(r).map_err(StoreError::from))
            .collect()
    }

    pub async fn fetch_optional<T: Tracked>(
        &self,
        where_sql: &str,
        binds: &[Bind],
    ) -> Result<Option<T>> {
        Ok(self
            .fetch_all::<T>(where_sql, binds)
            .await?
            .into_iter()
            .next())
    }

    pub async fn merchant(&self, id: &str) -> Result<Option<MerchantRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Text(id.into())])
            .await
    }

    pub async fn current_bank_account(&self, merchant_id: &str) -> Result<Option<BankAccountRow>> {
        self.fetch_optional(
            "WHERE merchant_id = $1 ORDER BY version DESC LIMIT 1",
            &[Bind::Text(merchant_id.into())],
        )
        .await
    }

    pub async fn bank_account(&self, id: i64) -> Result<Option<BankAccountRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    /// Orders with this number (one per merchant at most), optionally of one merchant.
    pub async fn orders_by_no(
        &self,
        order_no: &str,
        merchant_id: Option<&str>,
    ) -> Result<Vec<OrderRow>> {
        match merchant_id {
            Some(m) => {
                self.fetch_all(
                    "WHERE order_no = $1 AND merchant_id = $2",
                    &[Bind::Text(order_no.into()), Bind::Text(m.into())],
                )
                .await
            }
            None => {
                self.fetch_all(
                    "WHERE order_no = $1 ORDER BY id",
                    &[Bind::Text(order_no.into())],
                )
                .await
            }
        }
    }

    pub async fn order(&self, id: i64) -> Result<Option<OrderRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    pub async fn payouts_of_order(&self, order_id: i64) -> Result<Vec<PayoutRow>> {
        self.fetch_all("WHERE order_id = $1 ORDER BY id", &[Bind::Int(order_id)])
            .await
    }

    pub async fn payout_by_no(&self, payout_no: &str) -> Result<Option<PayoutRow>> {
        self.fetch_optional("WHERE payout_no = $1", &[Bind::Text(payout_no.into())])
            .await
    }

    pub async fn payouts_in_state(&self, state: &str) -> Result<Vec<PayoutRow>> {
        self.fetch_all("WHERE state = $1 ORDER BY id", &[Bind::Text(state.into())])
            .await
    }

    /// Payouts in any of these states, oldest first (the console's money in transit).
    pub async fn payouts_in_states(&self, states: &[&str]) -> Result<Vec<PayoutRow>> {
        let mut out = Vec::new();
        for state in states {
            out.extend(self.payouts_in_state(state).await?);
        }
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    /// The result file imported last for a channel, if any.
    pub async fn last_bank_file_of_channel(&self, channel_id: &str) -> Result<Option<BankFileRow>> {
        self.fetch_optional(
            "WHERE channel_id = $1 ORDER BY id DESC LIMIT 1",
            &[Bind::Text(channel_id.into())],
        )
        .await
    }

    /// Every merchant, by id.
    pub async fn merchants(&self) -> Result<Vec<MerchantRow>> {
        self.fetch_all("ORDER BY id", &[]).await
    }

    /// The result file imported last without naming its channel (XML files need none), if any.
    pub async fn last_bank_file_without_channel(&self) -> Result<Option<BankFileRow>> {
        self.fetch_optional("WHERE channel_id IS NULL ORDER BY id DESC LIMIT 1", &[])
            .await
    }

    /// Result files whose import started at or after `since` (a stored timestamp), in order.
    pub async fn bank_files_started_since(&self, since: &str) -> Result<Vec<BankFileRow>> {
        self.fetch_all(
            "WHERE started_at >= $1 ORDER BY id",
            &[Bind::Text(since.into())],
        )
        .await
    }

    /// Batches made at or after `since` (a stored timestamp), in order.
    pub async fn batches_created_since(&self, since: &str) -> Result<Vec<BatchRow>> {
        self.fetch_all(
            "WHERE created_at >= $1 ORDER BY id",
            &[Bind::Text(since.into())],
        )
        .await
    }

    /// Where and when a batch's file was written, if it was.
    pub async fn batch_file_write(&self, batch_id: i64) -> Result<Option<BatchFileWriteRow>> {
        self.fetch_optional("WHERE batch_id = $1", &[Bind::Int(batch_id)])
            .await
    }

    pub async fn journals_of_order(
        &self,
        order_id: i64,
    ) -> Result<Vec<(JournalRow, Vec<JournalLineRow>)>> {
        let journals: Vec<JournalRow> = self
            .fetch_all("WHERE order_id = $1 ORDER BY id", &[Bind::Int(order_id)])
            .await?;
        let mut out = Vec::with_capacity(journals.len());
        for j in journals {
            let lines = self
                .fetch_all("WHERE journal_id = $1 ORDER BY id", &[Bind::Int(j.id)])
                .await?;
            out.push((j, lines));
        }
        Ok(out)
    }

    /// Audit events matching a filter, newest first, at most `filter.limit`.
    pub async fn audit_events_filtered(&self, filter: &AuditFilter) -> Result<Vec<AuditEventRow>> {
        let mut conditions = Vec::new();
        let mut binds = Vec::new();
        let mut add = |sql: &str, value: &Option<String>| {
            if let Some(v) = value {
                binds.push(v.clone());
                conditions.push(sql.replace('?', &format!("${}", binds.len())));
            }
        };
        add("actor = ?", &filter.actor);
        // Prefixes: `payout.` finds every payout action, `payout:PO…` one payout.
        add(
            "action LIKE ? ESCAPE '!'",
            &filter.action.as_deref().map(like_prefix),
        );
        add(
            "subject LIKE ? ESCAPE '!'",
            &filter.subject.as_deref().map(like_prefix),
        );
        add("at >= ?", &filter.from);
        add("at < ?", &filter.to);
        let where_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "{} {where_sql} ORDER BY seq DESC LIMIT {}",
            AuditEventRow::SELECT,
            filter.limit.clamp(1, 10_000)
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| AuditEventRow::from_row(r).map_err(StoreError::from))
            .collect()
    }

    pub async fn audit_events_of(&self, subjects: &[String]) -> Result<Vec<AuditEventRow>> {
        let mut out = Vec::new();
        for subject in subjects {
            let rows = sqlx::query(&format!(
                "{} WHERE subject = $1 ORDER BY seq",
                AuditEventRow::SELECT
            ))
            .bind(subject.clone())
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                out.push(AuditEventRow::from_row(r)?);
            }
        }
        out.sort_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        Ok(out)
    }

    pub async fn outbox_of_merchant(&self, merchant_id: &str) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(&format!(
            "{} WHERE merchant_id = $1 ORDER BY id",
            OutboxRow::SELECT
        ))
        .bind(merchant_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| OutboxRow::from_row(r).map_err(StoreError::from))
            .collect()
    }

    /// Balance of one account in one currency (debit positive): its row in `account_balances`.
    pub async fn balance(&self, account: &str, currency: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT balance_minor FROM account_balances WHERE account = $1 AND currency = $2",
        )
        .bind(account.to_string())
        .bind(currency.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get("balance_minor")?,
            None => 0,
        })
    }

    /// Every non-zero balance: (account, currency, debit-positive minor units).
    pub async fn balances(&self) -> Result<Vec<(String, String, i64)>> {
        self.balances_where("", &[]).await
    }

    /// The non-zero balances of the given accounts, in every currency.
    pub async fn balances_of(&self, accounts: &[String]) -> Result<Vec<(String, String, i64)>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=accounts.len()).map(|i| format!("${i}")).collect();
        let condition = format!("AND account IN ({})", placeholders.join(", "));
        self.balances_where(&condition, accounts).await
    }

    async fn balances_where(
        &self,
        condition: &str,
        binds: &[String],
    ) -> Result<Vec<(String, String, i64)>> {
        let sql = format!(
            "SELECT account, currency, balance_minor FROM account_balances \
             WHERE balance_minor <> 0 {condition} ORDER BY account, currency"
        );
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                r.try_get("account")?,
                r.try_get("currency")?,
                r.try_get("balance_minor")?,
            ));
        }
        Ok(out)
    }

    /// Journals that do not sum to zero per currency, and the total per currency.
    pub async fn ledger_check(&self) -> Result<LedgerCheck> {
        verify::ledger_check(&self.pool).await
    }

    /// Walks the keyed chain and compares every tracked row with it (see `verify.rs`).
    pub async fn verify_audit(&self) -> Result<Vec<TamperFinding>> {
        verify::verify_audit(&self.pool, self.backend, self.chain_key()?, None).await
    }

    /// [`Db::verify_audit`], and also that the chain still holds the anchor's event with the
    /// anchor's hash and has not become shorter than it.
    pub async fn verify_audit_against(
        &self,
        anchor: &disburse_core::audit::Anchor,
    ) -> Result<Vec<TamperFinding>> {
        verify::verify_audit(&self.pool, self.backend, self.chain_key()?, Some(anchor)).await
    }

    /// Reads an anchor file's text and checks its signature under this database's chain key.
    pub fn read_anchor(
        &self,
        text: &str,
    ) -> Result<std::result::Result<disburse_core::audit::Anchor, disburse_core::audit::AnchorError>>
    {
        Ok(disburse_core::audit::Anchor::read(text, self.chain_key()?))
    }

    /// Cuts a signed checkpoint of the head, after verifying the chain in the same snapshot:
    /// an anchor is only cut on a chain that verifies (the findings are returned otherwise).
    pub async fn cut_anchor(
        &self,
        cut_at: DateTime<Utc>,
    ) -> Result<std::result::Result<disburse_core::audit::Anchor, Vec<TamperFinding>>> {
        verify::cut_anchor(
            &self.pool,
            self.backend,
            self.chain_key()?,
            &fmt_time(cut_at),
        )
        .await
    }

    /// Runs one statement of raw SQL: for tests that tamper with the records on purpose.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    /// Rows of `table` matching a fixed condition written by the caller (never user input).
    pub async fn count_where(&self, table: &str, condition: &str) -> Result<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {condition}"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn count(&self, table: &str) -> Result<i64> {
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// A value bound to a `$n` parameter.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &[Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b.clone() {
            Bind::Text(v) => q.bind(v),
            Bind::Int(v) => q.bind(v),
            Bind::OptText(v) => q.bind(v),
            Bind::OptInt(v) => q.bind(v),
        };
    }
    q
}

/// Times are stored as RFC 3339 UTC with microseconds: sortable text that round-trips exactly.
/// Which audit events to read: each given part must match (actor exactly; action and subject by
/// prefix; `from` inclusive, `to` exclusive, as stored timestamps).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: i64,
}

/// A LIKE pattern matching text that starts with `prefix` (its `%`, `_` and `!` escaped).
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
