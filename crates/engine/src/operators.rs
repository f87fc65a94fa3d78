//! Named operators and their roles: who may propose, approve and resolve at the desk.

use chrono::{DateTime, Utc};
use disburse_core::correction::Role;
use disburse_core::OperatorName;
use disburse_store::{fmt_time, NewAuditEvent, OperatorRow, WriteTx};
use serde_json::json;

use crate::error::{corrupt, refused};
use crate::{Actor, Engine, EngineError, Result};

impl Engine {
    pub(crate) async fn operator_role(tx: &mut WriteTx<'_>, who: &OperatorName) -> Result<Role> {
        let row: OperatorRow =
            tx.operator(who.as_str())
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    what: "operator",
                    id: format!("{who} (add people with `disburse operator add`)"),
                })?;
        Role::parse(&row.role).map_err(corrupt)
    }

    /// Adds a named person. The first operator may be added by anyone and must be an admin;
    /// after that only admins add people.
    pub async fn add_operator(
        &self,
        name: &OperatorName,
        role: Role,
        as_of: DateTime<Utc>,
        by: &OperatorName,
    ) -> Result<OperatorRow> {
        let mut tx = self.db.write().await?;
        let existing: Vec<OperatorRow> = tx.operators().await?;
        if existing.is_empty() {
            if role != Role::Admin {
                return Err(EngineError::invalid(
                    "role",
                    "the first operator must be an admin",
                ));
            }
        } else {
            let by_role = Self::operator_role(&mut tx, by).await?;
            if by_role != Role::Admin {
                return Err(refused(format!(
                    "{by} is a {}; only admins add operators",
                    by_role.as_str()
                )));
            }
        }
        if existing.iter().any(|o| o.name == name.as_str()) {
            return Err(refused(format!("operator {name} already exists")));
        }
        let at = fmt_time(as_of);
        let row = OperatorRow {
            name: name.to_string(),
            role: role.as_str().into(),
            created_at: at.clone(),
            created_by: by.to_string(),
        };
        tx.insert(&row).await?;
        tx.audit(NewAuditEvent {
            at,
            actor: Actor::operator(by).as_str().into(),
            action: "operator.added".into(),
            subject: format!("operator:{name}"),
            reason: None,
            detail: json!({"role": role.as_str()}),
        })
        .await?;
        tx.commit().await?;
        Ok(row)
    }
}
