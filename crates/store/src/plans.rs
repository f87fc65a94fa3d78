//! The query plans of the hot lookups: every read an importer or a worker makes per line or per
//! chunk, as the store asks it. `Db::hot_query_plans` explains each on the live database, so a
//! test can prove that every one of them is served by an index on both backends (and a person can
//! print them when a figure looks wrong).

use sqlx::{Executor, Row};

use crate::payouts::PAYOUTS_IN_STATE_AFTER;
use crate::rows::*;
use crate::statements::{
    CHANNEL_BATCHES_BY_CONTROL_SUMS, CHANNEL_BATCHES_BY_MESSAGE_IDS,
    CHANNEL_PAYOUTS_BY_BANK_REFERENCES, CHANNEL_PAYOUTS_BY_NUMBERS, PAID_OF_BATCHES,
    PREVIOUS_STATEMENT, STATEMENT_ALREADY_IMPORTED, STATEMENT_ENTRIES_STORED,
    STATEMENT_ENTRY_COUNTS,
};
use crate::tx::{OPEN_EXCEPTION_OF_FACT, OPEN_PAYOUTS_OF_AMOUNT, PAYOUTS_BY_BANK_REFERENCE};
use crate::{bind_all, Backend, Bind, Db, Result};

/// One hot query and how the database would run it.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub name: &'static str,
    pub sql: String,
    /// The plan as the backend prints it, one step per line.
    pub plan: Vec<String>,
    /// The index the query is written for, where a wrong one would also pass for "indexed": a
    /// planner without statistics (SQLite) may pick an index that reads a whole channel.
    pub expected_index: Option<&'static str>,
}

impl QueryPlan {
    /// True when every table the plan reads is reached through an index, never scanned whole.
    pub fn uses_indexes_only(&self) -> bool {
        let scans = self.plan.iter().any(|step| {
            // SQLite: "SCAN payouts" reads the table; "SEARCH … USING INDEX" does not.
            // PostgreSQL: "Seq Scan on payouts".
            (step.trim_start().starts_with("SCAN ") && !step.contains("USING COVERING INDEX"))
                || step.contains("Seq Scan")
        });
        let indexed = self.plan.iter().any(|step| {
            step.contains("USING INDEX")
                || step.contains("USING COVERING INDEX")
                || step.contains("USING PRIMARY KEY")
                || step.contains("USING INTEGER PRIMARY KEY")
                || step.contains("Index Scan")
                || step.contains("Index Only Scan")
        });
        indexed && !scans
    }

    /// True unless the query names its index and the plan uses another.
    pub fn uses_expected_index(&self) -> bool {
        self.expected_index
            .is_none_or(|index| self.plan.iter().any(|step| step.contains(index)))
    }
}

/// The indexes some hot queries must use, by name (the same on both backends).
fn expected_index(name: &str) -> Option<&'static str> {
    Some(match name {
        "a payout by the bank's reference" => "payouts_bank_reference",
        "a statement chunk's payouts by the bank's reference" => "payouts_bank_reference",
        "a statement chunk's batches by control sum" => "batches_control_sum",
        "what a statement chunk's batches paid" => "payouts_batch",
        "how much of a statement is stored" => "statement_entries_by_statement",
        "a statement's entries by status" => "statement_entries_by_statement",
        _ => return None,
    })
}

fn hot_queries() -> Vec<(&'static str, String, Vec<Bind>)> {
    let t = |s: &str| Bind::Text(s.to_string());
    let two_numbers = vec![t("PO0000000001"), t("PO0000000002")];
    vec![
        (
            "a chunk's payouts by number",
            format!("{} WHERE payout_no IN ($1, $2)", PayoutRow::SELECT),
            two_numbers,
        ),
        (
            "their orders by id",
            format!("{} WHERE id IN ($1, $2)", OrderRow::SELECT),
            vec![Bind::Int(1), Bind::Int(2)],
        ),
        (
            "their batches by id",
            format!("{} WHERE id IN ($1, $2)", BatchRow::SELECT),
            vec![Bind::Int(1), Bind::Int(2)],
        ),
        (
            "their merchants by id",
            format!("{} WHERE id IN ($1)", MerchantRow::SELECT),
            vec![t("acme")],
        ),
        (
            "a payout by the bank's reference",
            format!("{} {PAYOUTS_BY_BANK_REFERENCE}", PayoutRow::SELECT),
            vec![t("BANKREF1")],
        ),
        (
            "an open payout of an amount",
            format!("{} {OPEN_PAYOUTS_OF_AMOUNT}", PayoutRow::SELECT),
            vec![t("EUR"), Bind::Int(10000)],
        ),
        (
            "an open exception of the same fact",
            format!("{} {OPEN_EXCEPTION_OF_FACT}", ExceptionRow::SELECT),
            vec![t("PO0000000001"), t("conflict"), t("reason")],
        ),
        (
            "a bank file by its SHA-256",
            format!("{} WHERE sha256 = $1", BankFileRow::SELECT),
            vec![t("00")],
        ),
        (
            "the batch a group status names",
            format!("{} WHERE message_id = $1", BatchRow::SELECT),
            vec![t("DSB-sepa-file-00000001")],
        ),
        (
            "the waiting payouts of a batch",
            format!(
                "{} WHERE batch_id = $1 AND state IN ('submitted', 'expired') ORDER BY id",
                PayoutRow::SELECT
            ),
            vec![Bind::Int(1)],
        ),
        (
            "a statement chunk's payouts by number",
            format!("{} {CHANNEL_PAYOUTS_BY_NUMBERS}($1, $2)", PayoutRow::SELECT),
            vec![t("PO0000000001"), t("PO0000000002")],
        ),
        (
            "a statement chunk's payouts by the bank's reference",
            format!(
                "{} {CHANNEL_PAYOUTS_BY_BANK_REFERENCES}($2, $3)",
                PayoutRow::SELECT
            ),
            vec![t("sepa-file"), t("R1"), t("R2")],
        ),
        (
            "a statement chunk's batches by message id",
            format!("{} {CHANNEL_BATCHES_BY_MESSAGE_IDS}($2)", BatchRow::SELECT),
            vec![t("sepa-file"), t("DSB-sepa-file-00000001")],
        ),
        (
            "a statement chunk's batches by control sum",
            format!("{} {CHANNEL_BATCHES_BY_CONTROL_SUMS}($3)", BatchRow::SELECT),
            vec![t("sepa-file"), t("EUR"), Bind::Int(10000)],
        ),
        (
            "what a statement chunk's batches paid",
            format!("{PAID_OF_BATCHES}($1) GROUP BY batch_id"),
            vec![Bind::Int(1)],
        ),
        (
            "a statement imported before",
            format!("{} {STATEMENT_ALREADY_IMPORTED}", StatementRow::SELECT),
            vec![t("00"), t("00"), Bind::Int(1), t(""), t(""), t("sepa-file")],
        ),
        (
            "how much of a statement is stored",
            STATEMENT_ENTRIES_STORED.to_string(),
            vec![Bind::Int(1)],
        ),
        (
            "a statement's entries by status",
            STATEMENT_ENTRY_COUNTS.to_string(),
            vec![Bind::Int(1)],
        ),
        (
            "the statement before in the account's sequence",
            format!("{} {PREVIOUS_STATEMENT}", StatementRow::SELECT),
            vec![t("00"), Bind::Int(2), t("sepa-file")],
        ),
        (
            "a sweep's (or the queue's) page of payouts in a state",
            format!("{} {PAYOUTS_IN_STATE_AFTER} LIMIT 500", PayoutRow::SELECT),
            vec![t("submitted"), Bind::Int(0)],
        ),
        (
            "an import's claim",
            "SELECT holder, expires_at FROM import_claims WHERE sha256 = $1".to_string(),
            vec![t("00")],
        ),
    ]
}

impl Db {
    /// Explains every hot query on this database. On PostgreSQL sequential scans are disabled
    /// for the explaining session, so a small test table still shows whether an index *can*
    /// serve the query (the planner would rightly scan a table of ten rows otherwise).
    pub async fn hot_query_plans(&self) -> Result<Vec<QueryPlan>> {
        let mut conn = self.pool().acquire().await?;
        if self.backend() == Backend::Postgres {
            conn.execute("SET enable_seqscan = off").await?;
        }
        let mut out = Vec::new();
        for (name, sql, binds) in hot_queries() {
            let explain = match self.backend() {
                Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
                Backend::Postgres => format!("EXPLAIN {sql}"),
            };
            let rows = bind_all(sqlx::query(&explain), &binds)
                .fetch_all(&mut *conn)
                .await?;
            let plan = rows
                .iter()
                .map(|r| match self.backend() {
                    Backend::Sqlite => r.try_get::<String, _>("detail"),
                    Backend::Postgres => r.try_get::<String, _>(0),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(QueryPlan {
                name,
                sql,
                plan,
                expected_index: expected_index(name),
            });
        }
        if self.backend() == Backend::Postgres {
            conn.execute("RESET enable_seqscan").await?;
        }
        Ok(out)
    }
}
