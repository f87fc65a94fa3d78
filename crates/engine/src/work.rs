//! Working the exceptions queue: an operator claims an item (so two people do not chase the same
//! bank), comments on it, and marks it handled with a note. Each is one transaction with one
//! audit event. Marking an item handled records what was done; the item leaves the queue when its
//! condition ends (the payout is answered, the account fixed), which only the rules decide.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use disburse_core::correction::Role;
use disburse_core::OperatorName;
use disburse_store::{fmt_time, ExceptionClaimRow, ExceptionNoteRow, NewAuditEvent};
use serde::Serialize;
use serde_json::json;

use crate::{Actor, Engine, EngineError, Result};

/// The longest comment or note taken, in characters.
pub const NOTE_MAX_CHARS: usize = 2000;

/// What people have done about one queue item.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ItemWork {
    /// Who has claimed it, and since when.
    pub claimed: Option<(String, String)>,
    /// Comments and handled notes, oldest first.
    pub notes: Vec<NoteView>,
}

impl ItemWork {
    /// The latest handled note, if the item was marked handled.
    pub fn handled(&self) -> Option<&NoteView> {
        self.notes.iter().rev().find(|n| n.kind == "handled")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteView {
    pub kind: String,
    pub note: String,
    pub written_by: String,
    pub written_at: String,
}

fn note_text(note: &str) -> Result<String> {
    let note = note.trim();
    if note.is_empty() {
        return Err(EngineError::invalid("note", "write what was done or seen"));
    }
    if note.chars().count() > NOTE_MAX_CHARS {
        return Err(EngineError::invalid(
            "note",
            format!("at most {NOTE_MAX_CHARS} characters"),
        ));
    }
    Ok(note.to_string())
}

impl Engine {
    /// The queue item, if it is in the queue now.
    async fn queued_item(&self, item_id: &str, as_of: DateTime<Utc>) -> Result<String> {
        let item_id = item_id.trim();
        if self
            .exceptions(as_of)
            .await?
            .iter()
            .any(|i| i.id == item_id)
        {
            Ok(item_id.to_string())
        } else {
            Err(EngineError::NotFound {
                what: "exceptions-queue item",
                id: item_id.to_string(),
            })
        }
    }

    async fn worker_role(
        tx: &mut disburse_store::WriteTx<'_>,
        who: &OperatorName,
        doing: &str,
    ) -> Result<Role> {
        let role = Self::operator_role(tx, who).await?;
        if !role.may_propose() {
            return Err(EngineError::Refused(format!(
                "{who} is {}; only operators and above {doing}",
                role.with_article()
            )));
        }
        Ok(role)
    }

    /// Takes an item: the queue shows who works on it, and nobody else can take it until it is
    /// released or handled. Claiming one's own claim again changes nothing.
    pub async fn claim_exception(
        &self,
        item_id: &str,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<ExceptionClaimRow> {
        let item_id = self.queued_item(item_id, as_of).await?;
        let mut tx = self.db.write().await?;
        Self::worker_role(&mut tx, by, "claim queue items").await?;
        let existing: Option<ExceptionClaimRow> = tx.exception_claim(&item_id).await?;
        if let Some(c) = existing {
            if c.claimed_by == by.as_str() {
                tx.rollback().await?;
                return Ok(c);
            }
            return Err(EngineError::Refused(format!(
                "{item_id} is claimed by {} since {}",
                c.claimed_by, c.claimed_at
            )));
        }
        let at = fmt_time(as_of);
        let row = ExceptionClaimRow {
            item_id: item_id.clone(),
            claimed_by: by.to_string(),
            claimed_at: at.clone(),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(by).as_str().into(),
            action: "exception.claimed".into(),
            subject: format!("exception:{item_id}"),
            reason: None,
            detail: json!({}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Gives an item back. Only its claimant, or an admin (someone left for the day), releases it.
    pub async fn release_exception(
        &self,
        item_id: &str,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<()> {
        let item_id = item_id.trim().to_string();
        let mut tx = self.db.write().await?;
        let role = Self::worker_role(&mut tx, by, "release queue items").await?;
        let claim: ExceptionClaimRow = tx
            .exception_claim(&item_id)
            .await?
            .ok_or_else(|| EngineError::Refused(format!("{item_id} is not claimed")))?;
        if claim.claimed_by != by.as_str() && role != Role::Admin {
            return Err(EngineError::Refused(format!(
                "{item_id} is claimed by {}; only they or an admin release it",
                claim.claimed_by
            )));
        }
        tx.delete(&claim).await?;
        tx.audit(NewAuditEvent {
            at: fmt_time(as_of),
            actor: Actor::operator(by).as_str().into(),
            action: "exception.released".into(),
            subject: format!("exception:{item_id}"),
            reason: None,
            detail: json!({"claimed_by": claim.claimed_by}),
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A comment on an item, for whoever looks at it next.
    pub async fn comment_exception(
        &self,
        item_id: &str,
        note: &str,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<ExceptionNoteRow> {
        let note = note_text(note)?;
        let item_id = self.queued_item(item_id, as_of).await?;
        let mut tx = self.db.write().await?;
        Self::worker_role(&mut tx, by, "comment on queue items").await?;
        let row = ExceptionNoteRow {
            id: tx.next_id("exception_note").await?,
            item_id: item_id.clone(),
            kind: "comment".into(),
            note: note.clone(),
            written_by: by.to_string(),
            written_at: fmt_time(as_of),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at: row.written_at.clone(),
            actor: Actor::operator(by).as_str().into(),
            action: "exception.commented".into(),
            subject: format!("exception:{item_id}"),
            reason: Some(note),
            detail: json!({"note": row.id}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Marks an item handled, saying what was done; the claim (the handler's own) ends with it.
    /// An item someone else has claimed is theirs to handle.
    pub async fn handle_exception(
        &self,
        item_id: &str,
        note: &str,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<ExceptionNoteRow> {
        let note = note_text(note)?;
        let item_id = self.queued_item(item_id, as_of).await?;
        let mut tx = self.db.write().await?;
        Self::worker_role(&mut tx, by, "mark queue items handled").await?;
        let claim: Option<ExceptionClaimRow> = tx.exception_claim(&item_id).await?;
        if let Some(c) = &claim {
            if c.claimed_by != by.as_str() {
                return Err(EngineError::Refused(format!(
                    "{item_id} is claimed by {}; they handle it, or release it first",
                    c.claimed_by
                )));
            }
            tx.delete(c).await?;
        }
        let row = ExceptionNoteRow {
            id: tx.next_id("exception_note").await?,
            item_id: item_id.clone(),
            kind: "handled".into(),
            note: note.clone(),
            written_by: by.to_string(),
            written_at: fmt_time(as_of),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at: row.written_at.clone(),
            actor: Actor::operator(by).as_str().into(),
            action: "exception.handled".into(),
            subject: format!("exception:{item_id}"),
            reason: Some(note),
            detail: json!({"note": row.id, "claim_released": claim.is_some()}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Claims and notes of every item, by item id.
    pub async fn exception_work(&self) -> Result<HashMap<String, ItemWork>> {
        let mut out: HashMap<String, ItemWork> = HashMap::new();
        let claims: Vec<ExceptionClaimRow> = self.db.exception_claims().await?;
        for c in claims {
            out.entry(c.item_id).or_default().claimed = Some((c.claimed_by, c.claimed_at));
        }
        let notes: Vec<ExceptionNoteRow> = self.db.exception_notes().await?;
        for n in notes {
            out.entry(n.item_id).or_default().notes.push(NoteView {
                kind: n.kind,
                note: n.note,
                written_by: n.written_by,
                written_at: n.written_at,
            });
        }
        Ok(out)
    }
}
