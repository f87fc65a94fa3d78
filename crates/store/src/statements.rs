//! The reads a statement import makes: set reads per chunk of entries (payouts by number and by
//! the bank's reference, batches by message id and by control sum, what each batch paid), and
//! the statement's place in its account's sequence. Plain reads: nothing here is kept in the
//! transaction's rows, so a million entries hold no more memory than one chunk.

use sqlx::Row;

use crate::rows::{BatchRow, ExceptionRow, PayoutRow, StatementEntryRow, StatementRow, Tracked};
use crate::tx::WriteTx;
use crate::{Bind, Db, Result};

/// The exceptions a statement import raises: what the reconciliation lists as open.
pub const STATEMENT_EXCEPTION_KINDS: [&str; 7] = [
    "statement_break",
    "statement_gap",
    "statement_unbalanced",
    "statement_entry_currency",
    "unexplained_debit",
    "debit_for_failed_payout",
    "statement_amount_differs",
];

impl Db {
    /// A channel's statements in their account's sequence.
    pub async fn statements_of_channel(&self, channel: &str) -> Result<Vec<StatementRow>> {
        self.fetch_all(
            "WHERE channel_id = $1 ORDER BY electronic_sequence, id",
            &[Bind::Text(channel.into())],
        )
        .await
    }

    /// A statement's entries in the order they were stored (the file's).
    pub async fn entries_of_statement(&self, statement: i64) -> Result<Vec<StatementEntryRow>> {
        self.fetch_all(
            "WHERE statement_id = $1 ORDER BY id",
            &[Bind::Int(statement)],
        )
        .await
    }

    /// The open exceptions statement imports raised, oldest first.
    pub async fn open_statement_exceptions(&self) -> Result<Vec<ExceptionRow>> {
        let kinds: Vec<String> = STATEMENT_EXCEPTION_KINDS
            .iter()
            .enumerate()
            .map(|(i, _)| format!("${}", i + 1))
            .collect();
        let binds: Vec<Bind> = STATEMENT_EXCEPTION_KINDS
            .iter()
            .map(|k| Bind::Text(k.to_string()))
            .collect();
        self.fetch_all(
            &format!(
                "WHERE status = 'open' AND kind IN ({}) ORDER BY id",
                kinds.join(", ")
            ),
            &binds,
        )
        .await
    }
}

/// Values per `IN (…)` list.
const IN_LIST_MAX: usize = 500;

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// By number and by reference alone, the channel checked on the rows: with `channel_id = $1` in
// the condition SQLite (which keeps no statistics) chose the channel's state index and read
// every payout of the channel per chunk — quadratic in a big statement.
pub(crate) const CHANNEL_PAYOUTS_BY_NUMBERS: &str = "WHERE payout_no IN ";
pub(crate) const CHANNEL_PAYOUTS_BY_BANK_REFERENCES: &str = "WHERE bank_reference IN ";
pub(crate) const CHANNEL_BATCHES_BY_MESSAGE_IDS: &str = "WHERE channel_id = $1 AND message_id IN ";
pub(crate) const CHANNEL_BATCHES_BY_CONTROL_SUMS: &str =
    "WHERE channel_id = $1 AND currency = $2 AND control_sum_minor IN ";
pub(crate) const PAID_OF_BATCHES: &str = "SELECT batch_id, \
     CAST(COALESCE(SUM(paid_amount_minor + returned_minor), 0) AS BIGINT) AS paid_minor FROM payouts \
     WHERE paid_amount_minor IS NOT NULL AND batch_id IN ";
pub(crate) const STATEMENT_ALREADY_IMPORTED: &str = "WHERE channel_id = $6 AND (sha256 = $1 OR \
     (account_digest = $2 AND electronic_sequence = $3 AND COALESCE(from_date, '') = $4 \
     AND COALESCE(to_date, '') = $5))";
pub(crate) const STATEMENT_ENTRIES_STORED: &str = "SELECT COUNT(*) AS stored, \
     MAX(line) AS last_line FROM statement_entries WHERE statement_id = $1";
pub(crate) const STATEMENT_ENTRY_COUNTS: &str = "SELECT match_status, COUNT(*) AS n \
     FROM statement_entries WHERE statement_id = $1 GROUP BY match_status ORDER BY match_status";
pub(crate) const PREVIOUS_STATEMENT: &str = "WHERE account_digest = $1 AND \
     electronic_sequence < $2 AND channel_id = $3 ORDER BY electronic_sequence DESC LIMIT 1";

/// A statement as its account's sequence knows it: by account, sequence number and period.
#[derive(Debug, Clone)]
pub struct StatementKey<'a> {
    pub channel: &'a str,
    pub sha256: &'a str,
    pub account_digest: &'a str,
    pub electronic_sequence: Option<i64>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
}

impl WriteTx<'_> {
    async fn rows_in<T: Tracked>(
        &mut self,
        head: &str,
        fixed: &[Bind],
        values: &[Bind],
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for group in values.chunks(IN_LIST_MAX) {
            let list = if fixed.is_empty() {
                self.in_list_placeholders(group.len())
            } else {
                placeholders(fixed.len() + 1, group.len())
            };
            let sql = format!("{head}({list})");
            let binds: Vec<Bind> = fixed.iter().chain(group).cloned().collect();
            out.extend(self.fetch_all::<T>(&sql, &binds).await?);
        }
        Ok(out)
    }

    /// The channel's payouts with these numbers (an entry's EndToEndId).
    pub async fn channel_payouts_by_numbers(
        &mut self,
        channel: &str,
        numbers: &[String],
    ) -> Result<Vec<PayoutRow>> {
        let values: Vec<Bind> = numbers.iter().cloned().map(Bind::Text).collect();
        self.rows_in(
            CHANNEL_PAYOUTS_BY_NUMBERS,
            &[Bind::Text(channel.into())],
            &values,
        )
        .await
    }

    /// The channel's payouts carrying these bank references.
    pub async fn channel_payouts_by_bank_references(
        &mut self,
        channel: &str,
        references: &[String],
    ) -> Result<Vec<PayoutRow>> {
        let values: Vec<Bind> = references.iter().cloned().map(Bind::Text).collect();
        let rows: Vec<PayoutRow> = self
            .rows_in(CHANNEL_PAYOUTS_BY_BANK_REFERENCES, &[], &values)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|p| p.channel_id == channel)
            .collect())
    }

    /// The channel's batches with these message ids (our pain.001's MsgId or PmtInfId).
    pub async fn channel_batches_by_message_ids(
        &mut self,
        channel: &str,
        ids: &[String],
    ) -> Result<Vec<BatchRow>> {
        let values: Vec<Bind> = ids.iter().cloned().map(Bind::Text).collect();
        self.rows_in(
            CHANNEL_BATCHES_BY_MESSAGE_IDS,
            &[Bind::Text(channel.into())],
            &values,
        )
        .await
    }

    /// The channel's batches in `currency` whose control sum is one of `sums` (minor units).
    pub async fn channel_batches_by_control_sums(
        &mut self,
        channel: &str,
        currency: &str,
        sums: &[i64],
    ) -> Result<Vec<BatchRow>> {
        let values: Vec<Bind> = sums.iter().copied().map(Bind::Int).collect();
        self.rows_in(
            CHANNEL_BATCHES_BY_CONTROL_SUMS,
            &[Bind::Text(channel.into()), Bind::Text(currency.into())],
            &values,
        )
        .await
    }

    /// What our books hold paid for each batch's payouts, returns included (a bank debits what
    /// it paid, whatever came back later): (batch id, minor units). Batches with nothing paid
    /// are left out.
    pub async fn paid_of_batches(&mut self, batch_ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        // The buffered updates of payouts must be in the table the sum reads.
        self.flush().await?;
        let mut out = Vec::new();
        for group in batch_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "{PAID_OF_BATCHES}({}) GROUP BY batch_id",
                self.in_list_placeholders(group.len())
            );
            let mut q = sqlx::query(&sql);
            for id in group {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.conn()).await? {
                out.push((
                    r.try_get::<i64, _>("batch_id")?,
                    r.try_get::<i64, _>("paid_minor")?,
                ));
            }
        }
        Ok(out)
    }

    /// The statement already imported as these bytes, or as the same statement of the account
    /// (sequence and period: banks recycle message ids, so those never identify one).
    pub async fn statement_already_imported(
        &mut self,
        key: &StatementKey<'_>,
    ) -> Result<Option<StatementRow>> {
        self.fetch_optional(
            STATEMENT_ALREADY_IMPORTED,
            &[
                Bind::Text(key.sha256.into()),
                Bind::Text(key.account_digest.into()),
                // A statement without a sequence number is the same only by its bytes.
                Bind::Int(key.electronic_sequence.unwrap_or(-1)),
                Bind::Text(key.from_date.clone().unwrap_or_default()),
                Bind::Text(key.to_date.clone().unwrap_or_default()),
                Bind::Text(key.channel.into()),
            ],
        )
        .await
    }

    /// How many entries of a statement are stored, and the last line stored (entries are
    /// stored in the file's order, a chunk per transaction).
    pub async fn statement_entries_stored(&mut self, statement: i64) -> Result<(i64, Option<i64>)> {
        self.flush().await?;
        let r = sqlx::query(STATEMENT_ENTRIES_STORED)
            .bind(statement)
            .fetch_one(&mut *self.conn())
            .await?;
        Ok((r.try_get("stored")?, r.try_get("last_line")?))
    }

    /// A statement's entries by match status.
    pub async fn statement_entry_counts(
        &mut self,
        statement: i64,
    ) -> Result<std::collections::BTreeMap<String, u64>> {
        self.flush().await?;
        let rows = sqlx::query(STATEMENT_ENTRY_COUNTS)
            .bind(statement)
            .fetch_all(&mut *self.conn())
            .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((r.try_get::<String, _>("match_status")?, n as u64))
            })
            .collect()
    }

    /// One statement entry, to decide it.
    pub async fn statement_entry(&mut self, id: i64) -> Result<Option<StatementEntryRow>> {
        self.fetch_optional("WHERE id = $1", &[Bind::Int(id)]).await
    }

    /// The statement of the account before this one in its sequence.
    pub async fn previous_statement(
        &mut self,
        key: &StatementKey<'_>,
    ) -> Result<Option<StatementRow>> {
        self.fetch_optional(
            PREVIOUS_STATEMENT,
            &[
                Bind::Text(key.account_digest.into()),
                Bind::Int(key.electronic_sequence.unwrap_or(i64::MAX)),
                Bind::Text(key.channel.into()),
            ],
        )
        .await
    }
}
