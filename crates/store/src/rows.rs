//! Rows as stored: plain values, no rules. Each tracked table knows its canonical columns, used
//! both when the system writes a row (its digest goes into the audit event) and when `audit
//! verify` reads it back; the two must agree, so both go through `columns()`.

use disburse_core::audit::{row_digest, RowDigest};
use sqlx::any::AnyRow;
use sqlx::Row;

pub trait Tracked {
    const TABLE: &'static str;
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

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}
fn n(v: i64) -> Option<String> {
    Some(v.to_string())
}
fn on(v: Option<i64>) -> Option<String> {
    v.map(|v| v.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub account_status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Tracked for MerchantRow {
    const TABLE: &'static str = "merchants";
    const INT_COLUMNS_HINT: &'static [&'static str] = &[];
    const SELECT: &'static str =
        "SELECT id, name, account_status, created_at, updated_at FROM merchants";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", s(&self.id)),
            ("name", s(&self.name)),
            ("account_status", s(&self.account_status)),
            ("created_at", s(&self.created_at)),
            ("updated_at", s(&self.updated_at)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(MerchantRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            account_status: row.try_get("account_status")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccountRow {
    pub id: i64,
    pub merchant_id: String,
    pub version: i64,
    pub holder_name: String,
    pub kind: String,
    pub country: String,
    pub last4: String,
    pub bic: Option<String>,
    pub sealed_number: String,
    pub created_at: String,
}

impl Tracked for BankAccountRow {
    const TABLE: &'static str = "bank_accounts";
    const INT_COLUMNS_HINT: &'static [&'static str] = &["id", "version"];
    const SELECT: &'static str = "SELECT id, merchant_id, version, holder_name, kind, country, last4, bic, sealed_number, created_at FROM bank_accounts";
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", n(self.id)),
            ("merchant_id", s(&self.merchant_id)),
            ("version", n(self.version)),
            ("holder_name", s(&self.holder_name)),
            ("kind", s(&self.kind)),
            ("country", s(&self.country)),
            ("last4", s(&self.last4)),
            ("bic", self.bic.clone()),
            ("sealed_number", s(&self.sealed_number)),
            ("created_at", s(&self.created_at)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(BankAccountRow {
            id: row.try_get("id")?,
            merchant_id: row.try_get("merchant_id")?,
            version: row.try_get("version")?,
            holder_name: row.try_get("holder_name")?,
            kind: row.try_get("kind")?,
            country: row.try_get("country")?,
            last4: row.try_get("last4")?,
            bic: row.try_get("bic")?,
            sealed_number: row.try_get("sealed_number")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: i64,
    pub merchant_id: String,
    pub order_no: String,
    pub currency: String,
    pub amount_minor: i64,
    pub bank_account_id: i64,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    pub adjustment_minor: i64,
}

impl Tracked for OrderRow {
    const TABLE: &'static str = "orders";
    const INT_COLUMNS_HINT: &'static [&'static str] =
        &["id", "amount_minor", "bank_account_id", "adjustment_minor"];
    const SELECT: &'static str = "SELECT id, merchant_id, order_no, currency, amount_minor, bank_account_id, state, created_at, updated_at, adjustment_minor FROM orders";
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", n(self.id)),
            ("merchant_id", s(&self.merchant_id)),
            ("order_no", s(&self.order_no)),
            ("currency", s(&self.currency)),
            ("amount_minor", n(self.amount_minor)),
            ("bank_account_id", n(self.bank_account_id)),
            ("state", s(&self.state)),
            ("created_at", s(&self.created_at)),
            ("updated_at", s(&self.updated_at)),
            ("adjustment_minor", n(self.adjustment_minor)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(OrderRow {
            id: row.try_get("id")?,
            merchant_id: row.try_get("merchant_id")?,
            order_no: row.try_get("order_no")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
            bank_account_id: row.try_get("bank_account_id")?,
            state: row.try_get("state")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            adjustment_minor: row.try_get("adjustment_minor")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRow {
    pub id: i64,
    pub payout_no: String,
    pub order_id: i64,
    pub merchant_id: String,
    pub channel_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub bank_account_id: i64,
    pub state: String,
    pub paid_amount_minor: Option<i64>,
    pub bank_reference: Option<String>,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    pub value_date: Option<String>,
    pub submitted_at: Option<String>,
    pub succeeded_at: Option<String>,
    pub batch_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub funded_from: String,
}

impl Tracked for PayoutRow {
    const TABLE: &'static str = "payouts";
    const INT_COLUMNS_HINT: &'static [&'static str] = &[
        "id",
        "order_id",
        "amount_minor",
        "bank_account_id",
        "paid_amount_minor",
        "batch_id",
    ];
    const SELECT: &'static str = "SELECT id, payout_no, order_id, merchant_id, channel_id, currency, amount_minor, bank_account_id, state, paid_amount_minor, bank_reference, reason_code, reason_text, value_date, submitted_at, succeeded_at, batch_id, created_at, updated_at, funded_from FROM payouts";
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", n(self.id)),
            ("payout_no", s(&self.payout_no)),
            ("order_id", n(self.order_id)),
            ("merchant_id", s(&self.merchant_id)),
            ("channel_id", s(&self.channel_id)),
            ("currency", s(&self.currency)),
            ("amount_minor", n(self.amount_minor)),
            ("bank_account_id", n(self.bank_account_id)),
            ("state", s(&self.state)),
            ("paid_amount_minor", on(self.paid_amount_minor)),
            ("bank_reference", self.bank_reference.clone()),
            ("reason_code", self.reason_code.clone()),
            ("reason_text", self.reason_text.clone()),
            ("value_date", self.value_date.clone()),
            ("submitted_at", self.submitted_at.clone()),
            ("succeeded_at", self.succeeded_at.clone()),
            ("batch_id", on(self.batch_id)),
            ("created_at", s(&self.created_at)),
            ("updated_at", s(&self.updated_at)),
            ("funded_from", s(&self.funded_from)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(PayoutRow {
            id: row.try_get("id")?,
            payout_no: row.try_get("payout_no")?,
            order_id: row.try_get("order_id")?,
            merchant_id: row.try_get("merchant_id")?,
            channel_id: row.try_get("channel_id")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
            bank_account_id: row.try_get("bank_account_id")?,
            state: row.try_get("state")?,
            paid_amount_minor: row.try_get("paid_amount_minor")?,
            bank_reference: row.try_get("bank_reference")?,
            reason_code: row.try_get("reason_code")?,
            reason_text: row.try_get("reason_text")?,
            value_date: row.try_get("value_date")?,
            submitted_at: row.try_get("submitted_at")?,
            succeeded_at: row.try_get("succeeded_at")?,
            batch_id: row.try_get("batch_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            funded_from: row.try_get("funded_from")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    pub kind: String,
    pub merchant_id: Option<String>,
    pub order_id: Option<i64>,
    pub payout_id: Option<i64>,
    pub audit_seq: i64,
    pub created_at: String,
}

impl Tracked for JournalRow {
    const TABLE: &'static str = "journals";
    const INT_COLUMNS_HINT: &'static [&'static str] = &["id", "order_id", "payout_id", "audit_seq"];
    const SELECT: &'static str =
        "SELECT id, kind, merchant_id, order_id, payout_id, audit_seq, created_at FROM journals";
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", n(self.id)),
            ("kind", s(&self.kind)),
            ("merchant_id", self.merchant_id.clone()),
            ("order_id", on(self.order_id)),
            ("payout_id", on(self.payout_id)),
            ("audit_seq", n(self.audit_seq)),
            ("created_at", s(&self.created_at)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(JournalRow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            merchant_id: row.try_get("merchant_id")?,
            order_id: row.try_get("order_id")?,
            payout_id: row.try_get("payout_id")?,
            audit_seq: row.try_get("audit_seq")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLineRow {
    pub id: i64,
    pub journal_id: i64,
    pub account: String,
    pub currency: String,
    pub amount_minor: i64,
}

impl Tracked for JournalLineRow {
    const TABLE: &'static str = "journal_lines";
    const INT_COLUMNS_HINT: &'static [&'static str] = &["id", "journal_id", "amount_minor"];
    const SELECT: &'static str =
        "SELECT id, journal_id, account, currency, amount_minor FROM journal_lines";
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn columns(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("id", n(self.id)),
            ("journal_id", n(self.journal_id)),
            ("account", s(&self.account)),
            ("currency", s(&self.currency)),
            ("amount_minor", n(self.amount_minor)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(JournalLineRow {
            id: row.try_get("id")?,
            journal_id: row.try_get("journal_id")?,
            account: row.try_get("account")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
        })
    }
}

/// Not tracked by digest: the dispatcher marks delivery on it. Its creation is in the audit event.
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

/// Declares a tracked row type: the struct, its column list, and its digest and reading code,
/// from one list of `column: type` pairs (i64 and Option<i64> columns are BIGINT, the rest TEXT).
macro_rules! tracked_row {
    ($name:ident, $table:literal, key = $key:ident, ints = [$($int:literal),*], { $($col:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(pub $col: $ty),*
        }

        impl Tracked for $name {
            const TABLE: &'static str = $table;
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

tracked_row!(BatchRow, "batches", key = id,
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
});

tracked_row!(BankFileRow, "bank_files", key = id,
    ints = ["id", "size_bytes", "records_total", "last_line_done", "applied", "unchanged", "exceptions"], {
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
});

tracked_row!(EvidenceRow, "evidence", key = sha256,
    ints = ["size_bytes"], {
    sha256: String,
    file_name: String,
    size_bytes: i64,
    content_b64: String,
    stored_at: String,
    stored_by: String,
});

tracked_row!(ExceptionRow, "exceptions", key = id,
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
});

tracked_row!(OperatorRow, "operators", key = name, ints = [], {
    name: String,
    role: String,
    created_at: String,
    created_by: String,
});

tracked_row!(CorrectionRow, "corrections", key = id, ints = ["id"], {
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
});

tracked_row!(DiscrepancyRow, "discrepancies", key = id, ints = ["id", "amount_minor", "order_id", "settled_minor"], {
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
});
