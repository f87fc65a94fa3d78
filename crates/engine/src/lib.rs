//! Use cases. Each reads like the paragraph of DESIGN §1 it serves: open one write transaction,
//! load, decide with `disburse-core`, store the decision (state, journal, audit event, outbox
//! message) and commit. Nothing here knows SQL dialects, HTTP, or bank file layouts.

pub mod api_channel;
mod batches;
pub mod config;
mod console_views;
mod corrections;
mod discrepancies;
mod discrepancy_tracking;
mod error;
mod exceptions;
mod import;
pub mod keys;
mod operators;
mod orders;
mod payouts;
mod retry;
mod statements;
mod views;
mod work;

use chrono::{DateTime, Utc};
use disburse_core::account::{AccountNumber, BankAccount};
use disburse_core::crypto::{encrypt_account, AccountKey};
use disburse_core::{Journal, MerchantId, Money};
use disburse_store::{
    fmt_time, BankAccountRow, Db, JournalLineRow, JournalRow, MerchantRow, NewAuditEvent, WriteTx,
};
use serde_json::json;

pub use api_channel::{
    ApiChannelState, ApiRoundReport, BankAnswer, BankApi, BankStatus, Breaker, PaymentInstruction,
};
pub use batches::{csv_profile, write_atomically, BatchSummary, FileWritten};
pub use config::{ApiSecret, ApiSettings, Channel, ChannelKind, Config, SecretSource};
pub use console_views::{
    age_bucket, DiscrepancyView, ExceptionsOfKind, FileToday, HistoryEntry, ImportLag, InTransit,
    LastFile, MerchantLine, Overview, PayoutOrder, AGE_BUCKETS,
};
pub use console_views::{csv_export, BooksCheck, LedgerView, TrialBalance};
pub use corrections::CorrectionView;
pub use disburse_store::AuditFilter;
pub use discrepancies::Resolution;
pub use error::EngineError;
pub use exceptions::ExceptionItem;
pub use import::{ImportPreview, ImportSummary, PreviewPosting, CHUNK_RECORDS};
pub use orders::{OrderRef, WithdrawOutcome, WithdrawRequest};
pub use payouts::parse_value_date;
pub use payouts::{ApplyOutcome, PayoutStart, ResultSource, SweepReport};
pub use statements::{
    match_entry, statement_profile, EntryFacts, EntryLine, EntryMatch, MatchRules, Reconciliation,
    StatementSummary, NOT_ON_STATEMENT_AFTER_DAYS, STATEMENT_CHUNK_ENTRIES,
};
pub use views::{MerchantView, OrderView};
pub use work::{ItemWork, NoteView, NOTE_MAX_CHARS};

/// Helpers the shells use to present views.
pub mod views_support {
    pub use crate::views::{natural_sign, AuditView, MoneyView};
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Who acts: a named operator, or a part of the system (`system:sweeper`, `file:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub fn operator(name: &disburse_core::OperatorName) -> Actor {
        Actor(format!("operator:{name}"))
    }
    pub fn system(part: &str) -> Actor {
        Actor(format!("system:{part}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A merchant's new bank account, and the payouts it started for orders that waited for it.
#[derive(Debug, Clone)]
pub struct AccountSet {
    pub account: BankAccountRow,
    pub retried: Vec<String>,
}

pub struct Engine {
    db: Db,
    config: Config,
    key: AccountKey,
    /// How long an import's claim on a file lasts without renewal (renewed every chunk).
    import_lease: chrono::Duration,
}

impl Engine {
    /// `db` hashes its audit chain with the chain key it was given ([`Db::with_chain_key`]); a
    /// database given none gets one derived from the account key, so the key is never stored.
    pub fn new(db: Db, config: Config, key: AccountKey) -> Engine {
        let db = if db.has_chain_key() {
            db
        } else {
            db.with_chain_key(disburse_core::crypto::ChainKey::derived_from(&key))
        };
        Engine {
            db,
            config,
            key,
            import_lease: chrono::Duration::minutes(2),
        }
    }

    /// Sets how long an import's claim on a file lasts without renewal (default two minutes).
    pub fn with_import_lease(mut self, lease: chrono::Duration) -> Engine {
        self.import_lease = lease;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn key(&self) -> &AccountKey {
        &self.key
    }

    /// Seals a secret for storage (AES-256-GCM with the account key): webhook signing secrets and
    /// stored API answers that contain them never sit in the database in clear.
    pub fn seal_secret(&self, plain: &str) -> String {
        encrypt_account(&self.key, plain)
    }

    /// Opens what [`Engine::seal_secret`] sealed; an error names no secret.
    pub fn open_secret(&self, sealed: &str) -> Result<String> {
        disburse_core::crypto::decrypt_account(&self.key, sealed)
            .map_err(|e| EngineError::Key(format!("cannot open a stored secret: {e}")))
    }

    pub async fn add_merchant(
        &self,
        id: &MerchantId,
        name: &str,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<MerchantRow> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 140 || name.chars().any(char::is_control) {
            return Err(EngineError::invalid(
                "name",
                "must be 1 to 140 printable characters",
            ));
        }
        let mut tx = self.db.write().await?;
        if tx.merchant(id.as_str()).await?.is_some() {
            return Err(EngineError::Refused(format!(
                "merchant {id} already exists"
            )));
        }
        let at = fmt_time(as_of);
        let row = MerchantRow {
            id: id.to_string(),
            name: name.to_string(),
            account_status: "none".into(),
            created_at: at.clone(),
            updated_at: at.clone(),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "merchant.added".into(),
            subject: format!("merchant:{id}"),
            reason: None,
            detail: json!({"after": {"name": name}}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(crate) async fn load_merchant(
        tx: &mut WriteTx<'_>,
        id: &MerchantId,
    ) -> Result<MerchantRow> {
        tx.merchant(id.as_str())
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "merchant",
                id: id.to_string(),
            })
    }

    /// A new version of the merchant's bank account; the old versions stay, so every payout keeps
    /// pointing at the account it was sent to.
    pub async fn set_bank_account(
        &self,
        merchant: &MerchantId,
        account: &BankAccount,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<AccountSet> {
        let mut tx = self.db.write().await?;
        let mut m = Self::load_merchant(&mut tx, merchant).await?;
        let previous: Option<BankAccountRow> = tx.current_bank_account(merchant.as_str()).await?;
        let at = fmt_time(as_of);
        let number: &AccountNumber = account.number();
        let row = BankAccountRow {
            id: tx.next_id("bank_account").await?,
            merchant_id: merchant.to_string(),
            version: previous.as_ref().map_or(1, |p| p.version + 1),
            holder_name: account.holder().as_str().to_string(),
            kind: number.kind().to_string(),
            country: number.country().as_str().to_string(),
            last4: number.last4().to_string(),
            bic: account.bic().map(|b| b.as_str().to_string()),
            sealed_number: encrypt_account(&self.key, &number.plain()),
            created_at: at.clone(),
        };
        tx.insert(&row).await?;
        let status_before = m.account_status.clone();
        m.account_status = "ok".into();
        m.updated_at = at.clone();
        tx.update(&m).await?;
        tx.audit(NewAuditEvent {
            at: at.clone(),
            actor: actor.as_str().into(),
            action: "merchant.bank_account_set".into(),
            subject: format!("merchant:{merchant}"),
            reason: None,
            detail: json!({
                "before": {"account_status": status_before, "version": previous.as_ref().map(|p| p.version), "last4": previous.as_ref().map(|p| p.last4.clone())},
                "after": {"account_status": "ok", "version": row.version, "account": account.masked_view()},
            }),
        })
        .await?;
        // Orders that waited for this fix are paid again at once where the channel allows it.
        let retried = if status_before == "needs_update" {
            self.auto_retry_waiting(&mut tx, merchant, as_of).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        Ok(AccountSet {
            account: row,
            retried,
        })
    }

    /// Money collected for a merchant becomes its available balance.
    pub async fn fund(
        &self,
        merchant: &MerchantId,
        amount: Money,
        reference: Option<&str>,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<i64> {
        if !amount.is_positive() {
            return Err(EngineError::invalid(
                "amount",
                format!("must be positive, got {amount}"),
            ));
        }
        let mut tx = self.db.write().await?;
        Self::load_merchant(&mut tx, merchant).await?;
        let journal = disburse_core::order::fund(merchant, amount)
            .map_err(|e| EngineError::Refused(e.to_string()))?;
        let at = fmt_time(as_of);
        let journal_id = write_journal(&mut tx, &journal, Some(merchant), None, None, &at).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: actor.as_str().into(),
            action: "merchant.funded".into(),
            subject: format!("merchant:{merchant}"),
            reason: reference.map(str::to_string),
            detail: json!({"amount_minor": amount.amount_minor(), "currency": amount.currency().code(), "journal_id": journal_id}),
        })
        .await?;
        tx.commit().await?;
        Ok(journal_id)
    }
}

/// Writes a journal and its lines; the rows' digests go into the next audit event.
pub(crate) async fn write_journal(
    tx: &mut WriteTx<'_>,
    journal: &Journal,
    merchant: Option<&MerchantId>,
    order_id: Option<i64>,
    payout_id: Option<i64>,
    at: &str,
) -> Result<i64> {
    let id = tx.next_id("journal").await?;
    let row = JournalRow {
        id,
        kind: journal.kind().as_str().to_string(),
        merchant_id: merchant.map(|m| m.to_string()),
        order_id,
        payout_id,
        audit_seq: tx.next_audit_seq(),
        created_at: at.to_string(),
    };
    tx.insert(&row).await?;
    for p in journal.postings() {
        let line_id = tx.next_id("journal_line").await?;
        tx.insert(&JournalLineRow {
            id: line_id,
            journal_id: id,
            account: p.account.to_string(),
            currency: p.amount.currency().code().to_string(),
            amount_minor: p.amount.amount_minor(),
        })
        .await?;
    }
    Ok(id)
}
