//! One write transaction: rows, their digests, and the audit events that cover them.

use disburse_core::audit::{chain_hash, RowDigest};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::rows::*;
use crate::{bind_all, Bind, Result, StoreError};

/// An audit event to append: what happened, to what, who did it and why.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub at: String,
    pub actor: String,
    pub action: String,
    /// `payout:PO0000000001`, `order:acme/W1`, `merchant:acme`.
    pub subject: String,
    pub reason: Option<String>,
    /// Before and after, evidence, the file and line a bank result came from.
    pub detail: serde_json::Value,
}

pub struct WriteTx<'c> {
    tx: Transaction<'c, Any>,
    head_seq: i64,
    head_hash: String,
    /// Digests of rows written since the last audit event; the next event carries them.
    pending: Vec<RowDigest>,
    /// Ids reserved in blocks for internal sequences (journals, lines, outbox, exceptions):
    /// one sequence update per block instead of per row. Unused ids leave gaps, which nobody reads.
    id_blocks: std::collections::HashMap<String, (i64, i64)>,
    /// Rows of append-only tables (journals, journal lines, outbox, audit events) waiting to be
    /// written as multi-row INSERTs: nothing in a transaction reads them back before a flush, and
    /// one statement per table per flush instead of one per row is most of an import's cost.
    appends: Vec<(&'static str, String, Vec<Bind>)>,
}

/// Tables written only by appending; their rows are buffered until a read needs them or commit.
const APPEND_ONLY: [&str; 4] = ["journals", "journal_lines", "outbox", "audit_events"];
/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bound-parameter limits.
const APPEND_ROWS_MAX: usize = 200;

/// Sequences whose numbers people see stay gapless; the others are reserved in blocks.
const GAPLESS: [&str; 4] = ["payout", "order", "bank_account", "batch"];
const ID_BLOCK: i64 = 64;

impl WriteTx<'static> {
    pub(crate) async fn begin(pool: &AnyPool) -> Result<WriteTx<'static>> {
        let mut tx = pool.begin().await?;
        // Taking the head row first makes this transaction the only writer until it ends.
        let row = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *tx)
            .await?;
        Ok(WriteTx {
            tx,
            head_seq: row.try_get("seq")?,
            head_hash: row.try_get("hash")?,
            pending: Vec::new(),
            id_blocks: std::collections::HashMap::new(),
            appends: Vec::new(),
        })
    }
}

impl<'c> WriteTx<'c> {
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// The next `count` ids of a sequence; returns the first.
    pub async fn next_ids(&mut self, sequence: &str, count: i64) -> Result<i64> {
        let row =
            sqlx::query("UPDATE sequences SET value = value + $1 WHERE name = $2 RETURNING value")
                .bind(count)
                .bind(sequence.to_string())
                .fetch_one(&mut *self.tx)
                .await?;
        let last: i64 = row.try_get("value")?;
        Ok(last - count + 1)
    }

    pub async fn next_id(&mut self, sequence: &str) -> Result<i64> {
        if GAPLESS.contains(&sequence) {
            return self.next_ids(sequence, 1).await;
        }
        if let Some((next, end)) = self.id_blocks.get_mut(sequence) {
            if *next < *end {
                *next += 1;
                return Ok(*next - 1);
            }
        }
        let first = self.next_ids(sequence, ID_BLOCK).await?;
        self.id_blocks
            .insert(sequence.to_string(), (first + 1, first + ID_BLOCK));
        Ok(first)
    }

    async fn exec(&mut self, sql: &str, binds: &[Bind]) -> Result<u64> {
        Ok(bind_all(sqlx::query(sql), binds)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    /// Inserts a tracked row: every column of `columns()`, in order.
    pub async fn insert<T: Tracked>(&mut self, row: &T) -> Result<()> {
        let cols = row.columns();
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            T::TABLE,
            names.join(", "),
            params.join(", ")
        );
        let binds = typed_binds(&cols, T::INT_COLUMNS_HINT);
        if APPEND_ONLY.contains(&T::TABLE) {
            self.append(
                T::TABLE,
                format!("INSERT INTO {} ({})", T::TABLE, names.join(", ")),
                binds,
            )
            .await?;
        } else {
            self.exec(&sql, &binds).await?;
        }
        self.pending.push(row.digest());
        Ok(())
    }

    async fn append(
        &mut self,
        table: &'static str,
        insert_head: String,
        binds: Vec<Bind>,
    ) -> Result<()> {
        self.appends.push((table, insert_head, binds));
        if self.appends.len() >= APPEND_ROWS_MAX * 2 {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes buffered append-only rows: one multi-row INSERT per table and run of rows.
    pub async fn flush(&mut self) -> Result<()> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let appends = std::mem::take(&mut self.appends);
        // Parents before children (journals before their lines), in the order first written.
        let mut order: Vec<&'static str> = Vec::new();
        for (t, _, _) in &appends {
            if !order.contains(t) {
                order.push(t);
            }
        }
        for table in order {
            let rows: Vec<&(&'static str, String, Vec<Bind>)> =
                appends.iter().filter(|(t, _, _)| *t == table).collect();
            for group in rows.chunks(APPEND_ROWS_MAX) {
                let head = &group[0].1;
                let width = group[0].2.len();
                let mut sql = format!("{head} VALUES ");
                let mut binds = Vec::with_capacity(width * group.len());
                for (r, (_, _, row_binds)) in group.iter().enumerate() {
                    if r > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    for c in 0..width {
                        if c > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("${}", r * width + c + 1));
                    }
                    sql.push(')');
                    binds.extend(row_binds.iter().cloned());
                }
                self.exec(&sql, &binds).await?;
            }
        }
        Ok(())
    }

    /// Rewrites a tracked row (identified by `id`) with its new values.
    pub async fn update<T: Tracked>(&mut self, row: &T) -> Result<()> {
        let cols = row.columns();
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, (n, _))| format!("{n} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = $1",
            T::TABLE,
            sets.join(", "),
            cols[0].0
        );
        let binds = typed_binds(&cols, T::INT_COLUMNS_HINT);
        let n = self.exec(&sql, &binds).await?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "{} {} updated {n} rows",
                T::TABLE,
                row.key()
            )));
        }
        self.pending.push(row.digest());
        Ok(())
    }

    pub async fn insert_outbox(
        &mut self,
        merchant_id: &str,
        topic: &str,
        payload: &serde_json::Value,
        at: &str,
    ) -> Result<()> {
        let id = self.next_id("outbox").await?;
        let seq = self.head_seq + 1;
        self.append(
            "outbox",
            "INSERT INTO outbox (id, merchant_id, topic, payload, audit_seq, created_at, attempts)"
                .into(),
            vec![
                Bind::Int(id),
                Bind::Text(merchant_id.into()),
                Bind::Text(topic.into()),
                Bind::Text(payload.to_string()),
                Bind::Int(seq),
                Bind::Text(at.into()),
                Bind::Int(0),
            ],
        )
        .await?;
        Ok(())
    }

    /// The sequence number the next audit event will get; journals cite it.
    pub fn next_audit_seq(&self) -> i64 {
        self.head_seq + 1
    }

    /// Appends one audit event covering every row written since the previous one.
    pub async fn audit(&mut self, event: NewAuditEvent) -> Result<i64> {
        let seq = self.head_seq + 1;
        let rows_written = serde_json::to_string(&self.pending).expect("digests serialize");
        let row = AuditEventRow {
            seq,
            at: event.at,
            actor: event.actor,
            action: event.action,
            subject: event.subject,
            reason: event.reason,
            detail: event.detail.to_string(),
            rows_written,
            prev_hash: self.head_hash.clone(),
            hash: String::new(),
        };
        let hash = chain_hash(&row.prev_hash, &row.canonical());
        self.append(
            "audit_events",
            "INSERT INTO audit_events (seq, at, actor, action, subject, reason, detail, rows_written, prev_hash, hash)".into(),
            vec![
                Bind::Int(seq),
                Bind::Text(row.at),
                Bind::Text(row.actor),
                Bind::Text(row.action),
                Bind::Text(row.subject),
                Bind::OptText(row.reason),
                Bind::Text(row.detail),
                Bind::Text(row.rows_written),
                Bind::Text(row.prev_hash),
                Bind::Text(hash.clone()),
            ],
        )
        .await?;
        self.head_seq = seq;
        self.head_hash = hash;
        self.pending.clear();
        Ok(seq)
    }

    /// Commits. Refuses if a row was written that no audit event covers: every change is
    /// explained, or none is stored.
    pub async fn commit(mut self) -> Result<()> {
        if !self.pending.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "{} row(s) written without an audit event",
                self.pending.len()
            )));
        }
        self.flush().await?;
        self.exec(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
            &[Bind::Int(self.head_seq), Bind::Text(self.head_hash.clone())],
        )
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Binds columns as their SQL types: integer columns as i64, the rest as text.
fn typed_binds(cols: &[(&'static str, Option<String>)], int_columns: &[&str]) -> Vec<Bind> {
    cols.iter()
        .map(|(name, v)| {
            if int_columns.contains(name) {
                Bind::OptInt(
                    v.as_ref()
                        .map(|s| s.parse().expect("integer column holds an integer")),
                )
            } else {
                Bind::OptText(v.clone())
            }
        })
        .collect()
}

impl<'c> WriteTx<'c> {
    /// Reads inside the transaction: decisions must see the state they change.
    pub async fn fetch_all<T: Tracked>(
        &mut self,
        where_sql: &str,
        binds: &[Bind],
    ) -> Result<Vec<T>> {
        if APPEND_ONLY.contains(&T::TABLE) {
            self.flush().await?;
        }
        let sql = format!("{} {}", T::SELECT, where_sql);
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| T::from_row(r).map_err(StoreError::from))
            .collect()
    }

    pub async fn fetch_optional<T: Tracked>(
        &mut self,
        where_sql: &str,
        binds: &[Bind],
    ) -> Result<Option<T>> {
        Ok(self
            .fetch_all::<T>(where_sql, binds)
            .await?
            .into_iter()
            .next())
    }

    pub async fn balance(&mut self, account: &str, currency: &str) -> Result<i64> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total FROM journal_lines \
             WHERE account = $1 AND currency = $2",
        )
        .bind(account.to_string())
        .bind(currency.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("total")?)
    }
}
