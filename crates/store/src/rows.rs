//! Rows as stored: plain values, no rules. Each tracked table knows its canonical columns, used
//! both when the system writes a row (its digest goes into the audit event) and when `audit
//! verify` reads it back; the two must agree, so both go through `columns()`.

use disburse_core::audit::{row_digest, RowDigest};
use sqlx::any::AnyRow;
use sqlx::Row;

pub trait Tracked {
    const TABLE: &'static str;
    /// The primary key's column; also the first of `columns()`.
    const KEY: &'static str;
    /// Every column, in a fixed order, as text.
    const SELECT: &'static str;
    /// Columns stored as BIGINT; the rest are TEXT.
    const INT_COLUMNS_HINT: &'static [&'static str];
    fn key(&self) -> String;
    fn columns(&self) -> Vec<(&'static str, Option<String>)>;
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error>
    where
        Self: Sized;
    fn digest(&self) -> RowDigest {
        row_digest(Self::TABLE, &self.key(), &self.columns())
    }
}

/// Declares every tracked row type at once, and from the same declarations the one list of
/// tracked tables: [`TRACKED_TABLES`] and `check_all_tracked` (what `audit verify` compares with
/// the chain). A table is covered by declaring its row here; there is no second list to forget.
macro_rules! tracked_rows {
    ($( $(#[$meta:meta])* $name:ident, $table:literal, key = $key:ident, ints = [$($int:literal),*], { $($col:ident : $ty:ty),* $(,)? } );* $(;)?) => {
        $( tracked_row!($(#[$meta])* $name, $table, key = $key, ints = [$($int),*], { $($col : $ty),* }); )*

        /// Every table whose rows the audit chain covers, in the order `audit verify` reads them.
        pub const TRACKED_TABLES: &[&str] = &[$($table),*];

        /// Compares every row of every tracked table with the last digest the chain holds for it.
        pub(crate) async fn check_all_tracked(
            conn: &mut sqlx::AnyConnection,
            latest: &mut crate::verify::Latest,
            findings: &mut Vec<crate::verify::TamperFinding>,
        ) -> crate::Result<()> {
            $( crate::verify::check_table::<$name>(conn, latest, findings).await?; )*
            Ok(())
        }

        /// The digest of every row now stored in the named tracked tables.
        pub(crate) async fn digests_of_tables(
            conn: &mut sqlx::AnyConnection,
            tables: &[&str],
        ) -> crate::Result<Vec<RowDigest>> {
            let mut out = Vec::new();
            $(
                if tables.contains(&$table) {
                    let sql = format!("{} ORDER BY {}", <$name as Tracked>::SELECT, stringify!($key));
                    for raw in sqlx::query(&sql).fetch_all(&mut *conn).await? {
                        out.push($name::from_row(&raw)?.digest());
                    }
                }
            )*
            Ok(out)
        }
    };
}

/// Declares a tracked row type: the struct, its column list, and its digest and reading code,
/// from one list of `column: type` pairs (i64 and Option<i64> columns are BIGINT, the rest TEXT).
macro_rules! tracked_row {
    ($(#[$meta:meta])* $name:ident, $table:literal, key = $key:ident, ints = [$($int:literal),*], { $($col:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(pub $col: $ty),*
        }

        impl Tracked for $name {
            const TABLE: &'static str = $table;
            const KEY: &'static str = stringify!($key);
            const SELECT: &'static str = concat!("SELECT ", tracked_row!(@cols $($col),*), " FROM ", $table);
            const INT_COLUMNS_HINT: &'static [&'static str] = &[$($int),*];
            fn key(&self) -> String {
                self.$key.to_string()
            }
            fn columns(&self) -> Vec<(&'static str, Option<String>)> {
                vec![$((stringify!($col), ToColumn::to_column(&self.$col))),*]
            }
            fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
                Ok($name { $($col: row.try_get(stringify!($col))?),* })
            }
        }
    };
    (@cols $first:ident $(, $rest:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($rest))*)
    };
}

pub trait ToColumn {
    fn to_column(&self) -> Option<String>;
}
impl ToColumn for String {
    fn to_column(&self) -> Option<String> {
        Some(self.clone())
    }
}
impl ToColumn for i64 {
    fn to_column(&self) -> Option<String> {
        Some(self.to_string())
    }
}
impl ToColumn for Option<String> {
    fn to_column(&self) -> Option<String> {
        self.clone()
    }
}
impl ToColumn for Option<i64> {
    fn to_column(&self) -> Option<String> {
        self.map(|v| v.to_string())
    }
}

tracked_rows! {
MerchantRow, "merchants", key = id, ints = [], {
    id: String,
    name: String,
    account_status: String,
    created_at: String,
    updated_at: String,
};

BankAccountRow, "bank_accounts", key = id, ints = ["id", "version"], {
    id: i64,
    merchant_id: String,
    version: i64,
    holder_name: String,
    kind: String,
    country: String,
    last4: String,
    bic: Option<String>,
    sealed_number: String,
    created_at: String,
};

OrderRow, "orders", key = id, ints = ["id", "amount_minor", "bank_account_id", "adjustment_minor"], {
    id: i64,
    merchant_id: String,
    order_no: String,
    currency: String,
    amount_minor: i64,
    bank_account_id: i64,
    state: String,
    created_at: String,
    updated_at: String,
    adjustment_minor: i64,
};

PayoutRow, "payouts", key = id, ints = ["id", "order_id", "amount_minor", "bank_account_id", "paid_amount_minor", "batch_id", "returned_minor"], {
    id: i64,
    payout_no: String,
    order_id: i64,
    merchant_id: String,
    channel_id: String,
    currency: String,
    amount_minor: i64,
    bank_account_id: i64,
    state: String,
    paid_amount_minor: Option<i64>,
    bank_reference: Option<String>,
    reason_code: Option<String>,
    reason_text: Option<String>,
    value_date: Option<String>,
    submitted_at: Option<String>,
    succeeded_at: Option<String>,
    batch_id: Option<i64>,
    created_at: String,
    updated_at: String,
    funded_from: String,
    paid_basis: Option<String>,
    returned_minor: i64,
};

JournalRow, "journals", key = id, ints = ["id", "order_id", "payout_id", "audit_seq"], {
    id: i64,
    kind: String,
    merchant_id: Option<String>,
    order_id: Option<i64>,
    payout_id: Option<i64>,
    audit_seq: i64,
    created_at: String,
};

JournalLineRow, "journal_lines", key = id, ints = ["id", "journal_id", "amount_minor"], {
    id: i64,
    journal_id: i64,
    account: String,
    currency: String,
    amount_minor: i64,
};

BatchRow, "batches", key = id,
    ints = ["id", "payout_count", "control_sum_minor"], {
    id: i64,
    channel_id: String,
    currency: String,
    message_id: String,
    file_name: String,
    format: String,
    sha256: String,
    payout_count: i64,
    control_sum_minor: i64,
    content_b64: String,
    created_at: String,
};

BankFileRow, "bank_files", key = id,
    ints = ["id", "size_bytes", "records_total", "last_line_done", "applied", "unchanged", "exceptions", "records_done"], {
    id: i64,
    sha256: String,
    file_name: String,
    channel_id: Option<String>,
    format: String,
    size_bytes: i64,
    status: String,
    records_total: i64,
    last_line_done: i64,
    applied: i64,
    unchanged: i64,
    exceptions: i64,
    started_at: String,
    finished_at: Option<String>,
    records_done: i64,
};

EvidenceRow, "evidence", key = sha256,
    ints = ["size_bytes"], {
    sha256: String,
    file_name: String,
    size_bytes: i64,
    content_b64: String,
    stored_at: String,
    stored_by: String,
};

ExceptionRow, "exceptions", key = id,
    ints = ["id", "amount_minor", "bank_file_id", "line"], {
    id: i64,
    kind: String,
    status: String,
    payout_no: Option<String>,
    merchant_id: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    bank_file_id: Option<i64>,
    line: Option<i64>,
    reason: String,
    detail: String,
    created_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
};

OperatorRow, "operators", key = name, ints = [], {
    name: String,
    role: String,
    created_at: String,
    created_by: String,
};

/// Who works on an exceptions-queue item now (absent: nobody).
ExceptionClaimRow, "exception_claims", key = item_id, ints = [], {
    item_id: String,
    claimed_by: String,
    claimed_at: String,
};

/// A comment on an exceptions-queue item, or the note of whoever marked it handled.
ExceptionNoteRow, "exception_notes", key = id, ints = ["id"], {
    id: i64,
    item_id: String,
    kind: String,
    note: String,
    written_by: String,
    written_at: String,
};

CorrectionRow, "corrections", key = id, ints = ["id"], {
    id: i64,
    payout_no: String,
    kind: String,
    payload: String,
    reason: String,
    evidence: String,
    payout_state: String,
    payout_updated_at: String,
    status: String,
    proposed_by: String,
    proposed_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decision_reason: Option<String>,
};

DiscrepancyRow, "discrepancies", key = id, ints = ["id", "amount_minor", "order_id", "settled_minor"], {
    id: i64,
    merchant_id: String,
    direction: String,
    amount_minor: i64,
    currency: String,
    origin_payout_no: String,
    order_id: i64,
    status: String,
    opened_at: String,
    settled_at: Option<String>,
    resolution: Option<String>,
    topup_payout_no: Option<String>,
    write_off_proposed_by: Option<String>,
    history: String,
    settled_minor: i64,
};

StatementRow, "statements", key = id,
    ints = ["id", "electronic_sequence", "legal_sequence", "opening_minor", "closing_minor", "entries"], {
    id: i64,
    channel_id: String,
    account_digest: String,
    account_last4: String,
    statement_id: Option<String>,
    message_id: Option<String>,
    electronic_sequence: Option<i64>,
    legal_sequence: Option<i64>,
    from_date: Option<String>,
    to_date: Option<String>,
    currency: String,
    opening_minor: i64,
    closing_minor: i64,
    entries: i64,
    file_name: String,
    sha256: String,
    imported_at: String,
};

StatementEntryRow, "statement_entries", key = id,
    ints = ["id", "statement_id", "line", "amount_minor", "batch_id"], {
    id: i64,
    statement_id: i64,
    line: i64,
    amount_minor: i64,
    currency: String,
    kind: String,
    booking_date: Option<String>,
    bank_reference: Option<String>,
    end_to_end_id: Option<String>,
    batch_reference: Option<String>,
    match_status: String,
    match_rule: Option<String>,
    payout_no: Option<String>,
    batch_id: Option<i64>,
    note: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
};

/// A message to a merchant as it was written: the part of an outbox row that must never change.
/// Its delivery bookkeeping (`delivered_at`, `attempts`, written by the dispatcher) is not covered.
OutboxMessageRow, "outbox", key = id, ints = ["id", "audit_seq"], {
    id: i64,
    merchant_id: String,
    topic: String,
    payload: String,
    audit_seq: i64,
    created_at: String,
};

/// A merchant's API key (its SHA-256; the key itself is never stored).
ApiKeyRow, "api_keys", key = key_hash, ints = [], {
    key_hash: String,
    merchant_id: String,
    key_prefix: String,
    created_at: String,
    revoked_at: Option<String>,
    expires_at: Option<String>,
};

/// Where a merchant's webhooks go, and its signing secret (sealed with the account key).
MerchantWebhookRow, "merchant_webhooks", key = merchant_id, ints = [], {
    merchant_id: String,
    url: String,
    secret: String,
    updated_at: String,
};

/// An operator's password (argon2 PHC string).
OperatorCredentialRow, "operator_credentials", key = name, ints = [], {
    name: String,
    password_hash: String,
    updated_at: String,
};

/// A batch file that reached the disk (see migration 0008).
BatchFileWriteRow, "batch_file_writes", key = batch_id, ints = ["batch_id"], {
    batch_id: i64,
    path: String,
    written_at: String,
};
}

/// Tables the chain began to cover with migration 0008: an older database's switch-point event
/// records the digests of the rows they already hold.
pub(crate) const COVERED_FROM_0008: &[&str] = &[
    "outbox",
    "api_keys",
    "merchant_webhooks",
    "operator_credentials",
    "batch_file_writes",
];

/// An outbox row with its delivery bookkeeping, as the dispatcher reads it. What was written
/// (everything but `delivered_at` and `attempts`) is covered by [`OutboxMessageRow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub merchant_id: String,
    pub topic: String,
    pub payload: String,
    pub audit_seq: i64,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub attempts: i64,
}

impl OutboxRow {
    pub const SELECT: &'static str = "SELECT id, merchant_id, topic, payload, audit_seq, created_at, delivered_at, attempts FROM outbox";
    pub fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(OutboxRow {
            id: row.try_get("id")?,
            merchant_id: row.try_get("merchant_id")?,
            topic: row.try_get("topic")?,
            payload: row.try_get("payload")?,
            audit_seq: row.try_get("audit_seq")?,
            created_at: row.try_get("created_at")?,
            delivered_at: row.try_get("delivered_at")?,
            attempts: row.try_get("attempts")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEventRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub reason: Option<String>,
    pub detail: String,
    pub rows_written: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEventRow {
    pub const SELECT: &'static str = "SELECT seq, at, actor, action, subject, reason, detail, rows_written, prev_hash, hash FROM audit_events";

    pub fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(AuditEventRow {
            seq: row.try_get("seq")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            subject: row.try_get("subject")?,
            reason: row.try_get("reason")?,
            detail: row.try_get("detail")?,
            rows_written: row.try_get("rows_written")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    /// The text the chain hash covers: every column but the hash itself, as a JSON array so no
    /// value can be confused with a separator.
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.subject,
            self.reason,
            self.detail,
            self.rows_written,
            self.prev_hash
        ])
        .to_string()
    }
}
