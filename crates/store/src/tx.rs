//! One write transaction: rows, their digests, and the audit events that cover them.

use std::any::Any as AnyType;
use std::collections::{BTreeMap, HashMap};

use disburse_core::audit::{chain_hmac, RowDigest, DELETED};
use disburse_core::crypto::ChainKey;
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
    chain_key: ChainKey,
    head_seq: i64,
    head_hash: String,
    /// A database older than migration 0008 whose chain is not keyed yet: the digests of the
    /// rows of the newly covered tables as this transaction found them. The first event of the
    /// transaction is preceded by the `audit.chain_keyed` event that records them.
    switch_baseline: Option<Vec<RowDigest>>,
    /// The seq of the switch event once written: stored in the head at commit.
    keyed_from: Option<i64>,
    /// Digests of rows written since the last audit event; the next event carries them.
    pending: Vec<RowDigest>,
    /// Ids reserved in blocks for internal sequences (journals, lines, outbox, exceptions):
    /// one sequence update per block instead of per row; a block twice the size of the last,
    /// so a one-change transaction reserves few and a 500-line chunk asks a handful of times.
    /// Unused ids leave gaps, which nobody reads.
    id_blocks: HashMap<String, IdBlock>,
    /// The unit of work: rows of the cached tables as this transaction last read or wrote them,
    /// by table and key. A chunk's facts are loaded once with set queries, every later read of
    /// them in the transaction (earlier lines' changes included) is answered from here.
    cache: HashMap<(&'static str, String), Box<dyn AnyType + Send + Sync>>,
    /// Payout numbers of the cached payouts → their ids (a payout's number never changes).
    payout_ids: HashMap<String, i64>,
    /// Updates of payouts and orders not yet written, per table by key; written set-based (one
    /// UPDATE … FROM (VALUES …) per run of rows) before any other statement could see them.
    deferred: BTreeMap<&'static str, DeferredUpdates>,
    /// Statements sent to the database so far: what a set-based chunk saves, measured.
    statements: u64,
    /// How the long statements (multi-row, `IN` lists) number their parameters.
    placeholders: Placeholders,
    /// Rows of append-only tables (journals, journal lines, outbox, audit events) waiting to be
    /// written as multi-row INSERTs: nothing in a transaction reads them back before a flush, and
    /// one statement per table per flush instead of one per row is most of an import's cost.
    appends: Vec<(&'static str, String, Vec<Bind>)>,
    /// Balances (`account_balances`) of the accounts this transaction read or posted to, as they
    /// stand with every journal line staged so far; the changed ones are written at the next
    /// flush, beside the lines.
    balances: HashMap<(String, String), Balance>,
}

/// One account's balance in one currency, as the transaction holds it.
#[derive(Debug, Clone, Copy)]
struct Balance {
    minor: i64,
    /// Changed since read: written at the next flush.
    changed: bool,
}

/// Tables whose inserts are buffered until a read needs them or commit: the append-only ones,
/// and statement entries (written by the million in one import; decided later, one by one, in
/// transactions of their own).
const BUFFERED: [&str; 5] = [
    "journals",
    "journal_lines",
    "outbox",
    "audit_events",
    "statement_entries",
];
/// Tables whose rows the transaction keeps as it last saw them, answering reads by key.
const CACHED: [&str; 4] = ["payouts", "orders", "merchants", "batches"];
/// Cached tables whose updates wait to be written set-based (the hot rows of an import).
const DEFERRED: [&str; 2] = ["payouts", "orders"];
/// Values per `IN (…)` list of a set read.
const SET_READ_MAX: usize = 500;

/// Parameters of the multi-row statements. PostgreSQL needs `$n`. SQLite takes `$n` too, but
/// sqlx binds every argument by asking SQLite its name, a lookup that walks all the statement's
/// named parameters: quadratic in a 5,000-parameter INSERT (a third of an import's time was
/// spent there). Anonymous `?` parameters have no names to walk.
#[derive(Debug, Clone, Copy)]
enum Placeholders {
    Dollar,
    Question,
}

impl Placeholders {
    fn of(backend: crate::Backend) -> Placeholders {
        match backend {
            crate::Backend::Postgres => Placeholders::Dollar,
            crate::Backend::Sqlite => Placeholders::Question,
        }
    }

    /// The parameter numbered `n` (from 1), written into `sql`.
    fn push(self, sql: &mut String, n: usize) {
        use std::fmt::Write;
        match self {
            Placeholders::Dollar => write!(sql, "${n}").expect("writing to a String"),
            Placeholders::Question => sql.push('?'),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct IdBlock {
    next: i64,
    end: i64,
    size: i64,
}

/// One table's deferred updates: its column names and, by key, each row's latest values.
#[derive(Debug, Default)]
struct DeferredUpdates {
    names: Vec<&'static str>,
    rows: BTreeMap<String, Vec<Bind>>,
}
/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bound-parameter limits.
const APPEND_ROWS_MAX: usize = 200;

/// Sequences whose numbers people see stay gapless; the others are reserved in blocks.
/// Numbers people see and type (`discrepancy top-up 3`, `correction approve 1`, `E12`) have no
/// gaps; internal ids are reserved in blocks.
const GAPLESS: [&str; 7] = [
    "payout",
    "order",
    "bank_account",
    "batch",
    "discrepancy",
    "correction",
    "exception",
];
const ID_BLOCK: i64 = 16;
const ID_BLOCK_MAX: i64 = 4096;

impl WriteTx<'static> {
    pub(crate) async fn begin(
        pool: &AnyPool,
        backend: crate::Backend,
        chain_key: ChainKey,
    ) -> Result<WriteTx<'static>> {
        let mut tx = pool.begin().await?;
        // Taking the head row first makes this transaction the only writer until it ends.
        let row = sqlx::query(
            "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, keyed_from",
        )
        .fetch_one(&mut *tx)
        .await?;
        let keyed_from: Option<i64> = row.try_get("keyed_from")?;
        let switch_baseline = match keyed_from {
            Some(_) => None,
            None => Some(digests_of_tables(&mut tx, COVERED_FROM_0008).await?),
        };
        Ok(WriteTx {
            tx,
            chain_key,
            switch_baseline,
            keyed_from,
            head_seq: row.try_get("seq")?,
            head_hash: row.try_get("hash")?,
            pending: Vec::new(),
            id_blocks: HashMap::new(),
            appends: Vec::new(),
            cache: HashMap::new(),
            payout_ids: HashMap::new(),
            deferred: BTreeMap::new(),
            balances: HashMap::new(),
            statements: 1,
            placeholders: Placeholders::of(backend),
        })
    }
}

impl<'c> WriteTx<'c> {
    /// The transaction's connection, for the service's operational tables (sessions, lockouts,
    /// credentials, webhook state). It does not see what is still buffered: appended rows and
    /// deferred updates of payouts and orders (call [`WriteTx::flush`] first to read those).
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// `n` parameters for an `IN (…)` list that is the statement's only parameters: anonymous
    /// `?` on SQLite (see [`Placeholders`]: sqlx looks each named one up by walking them all),
    /// `$1…$n` on PostgreSQL.
    pub(crate) fn in_list_placeholders(&self, n: usize) -> String {
        let mut sql = String::with_capacity(n * 4);
        for i in 1..=n {
            if i > 1 {
                sql.push_str(", ");
            }
            self.placeholders.push(&mut sql, i);
        }
        sql
    }

    /// Statements this transaction has sent to the database (its begin and head included).
    pub fn statements(&self) -> u64 {
        self.statements
    }

    /// The next `count` ids of a sequence; returns the first.
    pub async fn next_ids(&mut self, sequence: &str, count: i64) -> Result<i64> {
        self.statements += 1;
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
        let size = match self.id_blocks.get_mut(sequence) {
            Some(block) if block.next < block.end => {
                block.next += 1;
                return Ok(block.next - 1);
            }
            Some(block) => (block.size * 2).min(ID_BLOCK_MAX),
            None => ID_BLOCK,
        };
        let first = self.next_ids(sequence, size).await?;
        self.id_blocks.insert(
            sequence.to_string(),
            IdBlock {
                next: first + 1,
                end: first + size,
                size,
            },
        );
        Ok(first)
    }

    async fn exec(&mut self, sql: &str, binds: &[Bind]) -> Result<u64> {
        self.statements += 1;
        Ok(bind_all(sqlx::query(sql), binds)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    /// Inserts a tracked row: every column of `columns()`, in order.
    pub async fn insert<T: Tracked + Clone + Send + Sync + 'static>(
        &mut self,
        row: &T,
    ) -> Result<()> {
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
        if let Some(line) = (row as &dyn AnyType).downcast_ref::<JournalLineRow>() {
            self.post(&line.account, &line.currency, line.amount_minor)
                .await?;
        }
        if BUFFERED.contains(&T::TABLE) {
            self.append(
                T::TABLE,
                format!("INSERT INTO {} ({})", T::TABLE, names.join(", ")),
                binds,
            )
            .await?;
        } else {
            // A unique index sees the table as stored: its deferred updates go first (a payout
            // that failed frees its order for the next one only once written).
            self.flush_updates().await?;
            self.exec(&sql, &binds).await?;
        }
        self.remember(row);
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

    /// Writes everything buffered: deferred updates, then appended rows and the balances they
    /// moved.
    pub async fn flush(&mut self) -> Result<()> {
        self.flush_updates().await?;
        self.flush_appends().await?;
        self.flush_balances().await
    }

    /// Adds a journal line's amount to its account's balance. A balance that would leave what
    /// an `i64` of minor units holds refuses the whole transaction: bounds on every amount that
    /// enters make this unreachable by the rules, so reaching it means input nobody checked.
    async fn post(&mut self, account: &str, currency: &str, amount_minor: i64) -> Result<()> {
        let current = self.balance(account, currency).await?;
        let minor = current.checked_add(amount_minor).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "posting {amount_minor} {currency} minor units to {account} (balance {current}) \
                 goes beyond what an amount can hold"
            ))
        })?;
        self.balances.insert(
            (account.to_string(), currency.to_string()),
            Balance {
                minor,
                changed: true,
            },
        );
        Ok(())
    }

    /// Writes the balances changed since the last flush: one multi-row upsert per run of rows.
    async fn flush_balances(&mut self) -> Result<()> {
        let mut changed: Vec<(String, String, i64)> = Vec::new();
        for ((account, currency), b) in self.balances.iter_mut() {
            if b.changed {
                changed.push((account.clone(), currency.clone(), b.minor));
                b.changed = false;
            }
        }
        // A fixed order: two transactions never write the same rows in different orders.
        changed.sort();
        for group in changed.chunks(APPEND_ROWS_MAX) {
            let mut sql = String::from(
                "INSERT INTO account_balances (account, currency, balance_minor) VALUES ",
            );
            let mut binds = Vec::with_capacity(3 * group.len());
            for (r, (account, currency, minor)) in group.iter().enumerate() {
                push_placeholders(self.placeholders, &mut sql, r, 3);
                binds.push(Bind::Text(account.clone()));
                binds.push(Bind::Text(currency.clone()));
                binds.push(Bind::Int(*minor));
            }
            sql.push_str(
                " ON CONFLICT (account, currency) DO UPDATE SET balance_minor = excluded.balance_minor",
            );
            self.exec(&sql, &binds).await?;
        }
        Ok(())
    }

    /// Writes the deferred updates: per table, one `UPDATE … FROM (VALUES …)` per run of rows,
    /// each of which must find its row.
    async fn flush_updates(&mut self) -> Result<()> {
        let deferred = std::mem::take(&mut self.deferred);
        for (table, updates) in deferred {
            let width = updates.names.len();
            let key = updates.names[0];
            let sets: Vec<String> = updates
                .names
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, n)| format!("{n} = v.column{}", i + 1))
                .collect();
            let rows: Vec<(String, Vec<Bind>)> = updates.rows.into_iter().collect();
            for group in rows.chunks(APPEND_ROWS_MAX) {
                // SQLite and PostgreSQL both name a VALUES list's columns column1, column2, ….
                let mut sql = format!("UPDATE {table} SET {} FROM (VALUES ", sets.join(", "));
                let mut binds = Vec::with_capacity(width * group.len());
                for (r, (_, row_binds)) in group.iter().enumerate() {
                    push_placeholders(self.placeholders, &mut sql, r, width);
                    binds.extend(row_binds.iter().cloned());
                }
                sql.push_str(&format!(") AS v WHERE {table}.{key} = v.column1"));
                let n = self.exec(&sql, &binds).await?;
                if n != group.len() as u64 {
                    return Err(StoreError::Corrupt(format!(
                        "{table}: {} row(s) to update, {n} found",
                        group.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Writes buffered append-only rows: one multi-row INSERT per table and run of rows.
    async fn flush_appends(&mut self) -> Result<()> {
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
                    push_placeholders(self.placeholders, &mut sql, r, width);
                    binds.extend(row_binds.iter().cloned());
                }
                self.exec(&sql, &binds).await?;
            }
        }
        Ok(())
    }

    /// Rewrites a tracked row (identified by its key) with its new values. Payouts and orders
    /// are written at the next flush, set-based; the transaction answers reads of them from
    /// what it holds meanwhile.
    pub async fn update<T: Tracked + Clone + Send + Sync + 'static>(
        &mut self,
        row: &T,
    ) -> Result<()> {
        let cols = row.columns();
        if DEFERRED.contains(&T::TABLE) {
            let binds = typed_binds(&cols, T::INT_COLUMNS_HINT);
            let pending = self.deferred.entry(T::TABLE).or_default();
            if pending.names.is_empty() {
                pending.names = cols.iter().map(|(n, _)| *n).collect();
            }
            pending.rows.insert(row.key(), binds);
            self.remember(row);
            self.pending.push(row.digest());
            return Ok(());
        }
        if BUFFERED.contains(&T::TABLE) {
            // The row may still be waiting in the buffer.
            self.flush_appends().await?;
        }
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
        self.remember(row);
        self.pending.push(row.digest());
        Ok(())
    }

    /// Deletes a tracked row; the next audit event records the deletion, so the row must stay
    /// absent from then on.
    pub async fn delete<T: Tracked>(&mut self, row: &T) -> Result<()> {
        self.flush_updates().await?;
        if BUFFERED.contains(&T::TABLE) {
            self.flush_appends().await?;
        }
        self.cache.remove(&(T::TABLE, row.key()));
        let cols = row.columns();
        let sql = format!("DELETE FROM {} WHERE {} = $1", T::TABLE, cols[0].0);
        let binds = typed_binds(&cols[..1], T::INT_COLUMNS_HINT);
        let n = self.exec(&sql, &binds).await?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "{} {} deleted {n} rows",
                T::TABLE,
                row.key()
            )));
        }
        self.pending.push(RowDigest {
            table: T::TABLE.to_string(),
            key: row.key(),
            sha256: DELETED.to_string(),
        });
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
        let seq = self.next_audit_seq();
        let message = OutboxMessageRow {
            id,
            merchant_id: merchant_id.into(),
            topic: topic.into(),
            payload: payload.to_string(),
            audit_seq: seq,
            created_at: at.into(),
        };
        self.pending.push(message.digest());
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

    /// The sequence number the next audit event will get; journals and messages cite it. On a
    /// database whose chain is switched to keyed by this transaction, the switch event comes
    /// first.
    pub fn next_audit_seq(&self) -> i64 {
        self.head_seq + 1 + i64::from(self.switch_baseline.is_some())
    }

    /// Appends one audit event covering every row written since the previous one.
    pub async fn audit(&mut self, event: NewAuditEvent) -> Result<i64> {
        if let Some(baseline) = self.switch_baseline.take() {
            let seq = self
                .append_event(
                    NewAuditEvent {
                        at: event.at.clone(),
                        actor: "system:trail".into(),
                        action: "audit.chain_keyed".into(),
                        subject: "audit:chain".into(),
                        reason: Some(
                            "migration 0008: events from here on are keyed (HMAC-SHA256); rows \
                             of the newly covered tables are recorded as found"
                                .into(),
                        ),
                        detail: serde_json::json!({ "tables": COVERED_FROM_0008, "rows": baseline.len() }),
                    },
                    baseline,
                )
                .await?;
            self.keyed_from = Some(seq);
        }
        let pending = std::mem::take(&mut self.pending);
        self.append_event(event, pending).await
    }

    async fn append_event(&mut self, event: NewAuditEvent, rows: Vec<RowDigest>) -> Result<i64> {
        let seq = self.head_seq + 1;
        let rows_written = serde_json::to_string(&rows).expect("digests serialize");
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
        let hash = chain_hmac(&self.chain_key, &row.prev_hash, &row.canonical());
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
        Ok(seq)
    }

    /// Commits. Refuses if a row was written that no audit event covers: every change is
    /// explained, or none is stored.
    pub async fn commit(self) -> Result<()> {
        self.commit_counted().await.map(|_| ())
    }

    /// [`WriteTx::commit`], returning how many statements the transaction sent in all.
    pub async fn commit_counted(mut self) -> Result<u64> {
        if !self.pending.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "{} row(s) written without an audit event",
                self.pending.len()
            )));
        }
        self.flush().await?;
        self.exec(
            "UPDATE audit_head SET seq = $1, hash = $2, keyed_from = COALESCE(keyed_from, $3) \
             WHERE id = 1",
            &[
                Bind::Int(self.head_seq),
                Bind::Text(self.head_hash.clone()),
                Bind::OptInt(self.keyed_from),
            ],
        )
        .await?;
        self.tx.commit().await?;
        Ok(self.statements + 1)
    }

    /// The seq of the last audit event, this transaction's included.
    pub fn head_seq(&self) -> i64 {
        self.head_seq
    }

    /// The audit events after `seq`, this transaction's included (a preview reads what a run
    /// would write before rolling it back).
    pub async fn audit_events_after(&mut self, seq: i64) -> Result<Vec<AuditEventRow>> {
        self.flush().await?;
        self.statements += 1;
        let rows = sqlx::query(&format!(
            "{} WHERE seq > $1 ORDER BY seq",
            AuditEventRow::SELECT
        ))
        .bind(seq)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| AuditEventRow::from_row(r).map_err(StoreError::from))
            .collect()
    }

    /// The journals (with their lines) recorded by audit events after `seq`, in order.
    pub async fn journals_after(
        &mut self,
        seq: i64,
    ) -> Result<Vec<(JournalRow, Vec<JournalLineRow>)>> {
        let journals: Vec<JournalRow> = self
            .fetch_all("WHERE audit_seq > $1 ORDER BY id", &[Bind::Int(seq)])
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

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// `($k, …, $k+width-1)` for row `r` of a multi-row statement, comma-separated from the last.
fn push_placeholders(style: Placeholders, sql: &mut String, r: usize, width: usize) {
    if r > 0 {
        sql.push_str(", ");
    }
    sql.push('(');
    for c in 0..width {
        if c > 0 {
            sql.push_str(", ");
        }
        style.push(sql, r * width + c + 1);
    }
    sql.push(')');
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
        // The read must see every write so far to the tables it names (its own, or one in a
        // subquery or join of its condition).
        self.flush_for(T::TABLE, where_sql).await?;
        self.statements += 1;
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

    /// The balance of an account in a currency (debit positive), with every line this
    /// transaction has staged: one row read, never a sum over the account's history.
    pub async fn balance(&mut self, account: &str, currency: &str) -> Result<i64> {
        let key = (account.to_string(), currency.to_string());
        if let Some(b) = self.balances.get(&key) {
            return Ok(b.minor);
        }
        self.statements += 1;
        let row = sqlx::query(
            "SELECT balance_minor FROM account_balances WHERE account = $1 AND currency = $2",
        )
        .bind(account.to_string())
        .bind(currency.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        let minor = match row {
            Some(r) => r.try_get("balance_minor")?,
            None => 0,
        };
        self.balances.insert(
            key,
            Balance {
                minor,
                changed: false,
            },
        );
        Ok(minor)
    }
}

/// The unit of work: reads by key answered from what the transaction holds, set reads that fill
/// it for a whole chunk at once.
impl<'c> WriteTx<'c> {
    /// Writes what a read of `table` under `condition` must see: deferred updates and appended
    /// rows of every table the read names.
    async fn flush_for(&mut self, table: &str, condition: &str) -> Result<()> {
        let names = |t: &str| table == t || condition.contains(t);
        if DEFERRED.iter().any(|t| names(t)) {
            self.flush_updates().await?;
        }
        if BUFFERED.iter().any(|t| names(t)) {
            self.flush_appends().await?;
        }
        if names("account_balances") {
            self.flush_balances().await?;
        }
        Ok(())
    }

    fn remember<T: Tracked + Clone + Send + Sync + 'static>(&mut self, row: &T) {
        if !CACHED.contains(&T::TABLE) {
            return;
        }
        if let Some(p) = (row as &dyn AnyType).downcast_ref::<PayoutRow>() {
            self.payout_ids.insert(p.payout_no.clone(), p.id);
        }
        self.cache
            .insert((T::TABLE, row.key()), Box::new(row.clone()));
    }

    fn cached<T: Tracked + Clone + 'static>(&self, key: &str) -> Option<T> {
        self.cache
            .get(&(T::TABLE, key.to_string()))
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
    }

    /// Loads the rows whose `column` is one of `values` into the transaction's rows (a row it
    /// already holds stays as it holds it: that copy is the newer). `values` not yet held only.
    async fn load_where_in<T: Tracked + Clone + Send + Sync + 'static>(
        &mut self,
        column: &str,
        values: Vec<Bind>,
    ) -> Result<()> {
        for group in values.chunks(SET_READ_MAX) {
            let mut sql = format!("{} WHERE {column} IN (", T::SELECT);
            for i in 1..=group.len() {
                if i > 1 {
                    sql.push_str(", ");
                }
                self.placeholders.push(&mut sql, i);
            }
            sql.push(')');
            self.statements += 1;
            let rows = bind_all(sqlx::query(&sql), group)
                .fetch_all(&mut *self.tx)
                .await?;
            for r in &rows {
                let row = T::from_row(r)?;
                if !self.cache.contains_key(&(T::TABLE, row.key())) {
                    self.remember(&row);
                }
            }
        }
        Ok(())
    }

    /// The row with this key, from what the transaction holds or else from the database.
    pub async fn get<T: Tracked + Clone + Send + Sync + 'static>(
        &mut self,
        key: Bind,
    ) -> Result<Option<T>> {
        debug_assert!(CACHED.contains(&T::TABLE), "{} is not cached", T::TABLE);
        let text = bind_text(&key);
        if let Some(row) = self.cached::<T>(&text) {
            return Ok(Some(row));
        }
        self.load_where_in::<T>(T::KEY, vec![key]).await?;
        Ok(self.cached::<T>(&text))
    }

    /// Loads many rows by key at once (a chunk's orders, merchants, batches).
    pub async fn prefetch<T: Tracked + Clone + Send + Sync + 'static>(
        &mut self,
        keys: impl IntoIterator<Item = Bind>,
    ) -> Result<()> {
        let mut missing: Vec<Bind> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            let text = bind_text(&key);
            if !self.cache.contains_key(&(T::TABLE, text.clone())) && seen.insert(text) {
                missing.push(key);
            }
        }
        self.load_where_in::<T>(T::KEY, missing).await
    }

    pub async fn order(&mut self, id: i64) -> Result<Option<OrderRow>> {
        self.get(Bind::Int(id)).await
    }

    pub async fn merchant(&mut self, id: &str) -> Result<Option<MerchantRow>> {
        self.get(Bind::Text(id.to_string())).await
    }

    pub async fn batch(&mut self, id: i64) -> Result<Option<BatchRow>> {
        self.get(Bind::Int(id)).await
    }

    /// The payouts with these numbers (unknown numbers are left out), loaded with set reads
    /// together with their orders and batches, so that deciding a chunk's lines reads nothing
    /// more per line.
    pub async fn payouts_by_numbers(&mut self, numbers: &[String]) -> Result<Vec<PayoutRow>> {
        let mut missing: Vec<Bind> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in numbers {
            if !self.payout_ids.contains_key(n) && seen.insert(n.as_str()) {
                missing.push(Bind::Text(n.clone()));
            }
        }
        self.load_where_in::<PayoutRow>("payout_no", missing)
            .await?;
        let found: Vec<PayoutRow> = numbers
            .iter()
            .filter_map(|n| self.payout_ids.get(n))
            .filter_map(|id| self.cached::<PayoutRow>(&id.to_string()))
            .collect();
        let orders: Vec<Bind> = found.iter().map(|p| Bind::Int(p.order_id)).collect();
        self.prefetch::<OrderRow>(orders).await?;
        let batches: Vec<Bind> = found
            .iter()
            .filter_map(|p| p.batch_id)
            .map(Bind::Int)
            .collect();
        self.prefetch::<BatchRow>(batches).await?;
        Ok(found)
    }

    pub async fn payout_by_no(&mut self, payout_no: &str) -> Result<Option<PayoutRow>> {
        if let Some(id) = self.payout_ids.get(payout_no) {
            return Ok(self.cached::<PayoutRow>(&id.to_string()));
        }
        self.load_where_in::<PayoutRow>("payout_no", vec![Bind::Text(payout_no.to_string())])
            .await?;
        Ok(self
            .payout_ids
            .get(payout_no)
            .and_then(|id| self.cached::<PayoutRow>(&id.to_string())))
    }
}

/// A key as the cache holds it: the text `Tracked::key` gives.
fn bind_text(b: &Bind) -> String {
    match b {
        Bind::Text(s) | Bind::OptText(Some(s)) => s.clone(),
        Bind::Int(i) | Bind::OptInt(Some(i)) => i.to_string(),
        Bind::OptText(None) | Bind::OptInt(None) => String::new(),
    }
}

/// The importer's per-line lookups beyond a payout's number, as the store asks them (their plans
/// are listed by [`crate::Db::hot_query_plans`]).
pub(crate) const PAYOUTS_BY_BANK_REFERENCE: &str = "WHERE bank_reference = $1 LIMIT 2";
pub(crate) const OPEN_PAYOUTS_OF_AMOUNT: &str =
    "WHERE state IN ('submitted', 'expired') AND currency = $1 AND amount_minor = $2 LIMIT 2";
pub(crate) const OPEN_EXCEPTION_OF_FACT: &str =
    "WHERE payout_no = $1 AND kind = $2 AND status = 'open' AND reason = $3";

impl<'c> WriteTx<'c> {
    /// Payouts carrying the bank's reference (two at most: more than one is no match).
    pub async fn payouts_by_bank_reference(&mut self, reference: &str) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            PAYOUTS_BY_BANK_REFERENCE,
            &[Bind::Text(reference.to_string())],
        )
        .await
    }

    /// Payouts still waiting for a result with exactly this amount (two at most).
    pub async fn open_payouts_of_amount(
        &mut self,
        currency: &str,
        amount_minor: i64,
    ) -> Result<Vec<PayoutRow>> {
        self.fetch_all(
            OPEN_PAYOUTS_OF_AMOUNT,
            &[Bind::Text(currency.to_string()), Bind::Int(amount_minor)],
        )
        .await
    }

    /// Is this fact (kind, payout, reason) already an open exception?
    pub async fn open_exception_of_fact(
        &mut self,
        payout_no: &str,
        kind: &str,
        reason: &str,
    ) -> Result<Option<ExceptionRow>> {
        self.fetch_optional(
            OPEN_EXCEPTION_OF_FACT,
            &[
                Bind::Text(payout_no.to_string()),
                Bind::Text(kind.to_string()),
                Bind::Text(reason.to_string()),
            ],
        )
        .await
    }
}
