//! Service hardening (issue #9): the commands on credentials, sessions and held webhooks.

use crate::{invalid, merchant_id, ApiKeyCmd, Ctx, Failure, SessionCmd, WebhookCmd};
use disburse_core::OperatorName;
use disburse_engine::Engine;
use disburse_server::credentials::{self, SessionTarget};

fn api(e: disburse_server::ApiError) -> Failure {
    invalid("webhooks", e)
}

pub async fn api_key(engine: &Engine, ctx: &Ctx, cmd: &ApiKeyCmd) -> Result<(), Failure> {
    match cmd {
        ApiKeyCmd::List { merchant } => {
            let id = merchant_id(merchant)?;
            let keys = credentials::list_api_keys(engine, &id).await?;
            ctx.out(&keys, || {
                let mut out = format!("{} key(s) of {id}", keys.len());
                for k in &keys {
                    let state = match (&k.revoked_at, &k.expires_at) {
                        (Some(r), _) => format!("revoked {r}"),
                        (None, Some(x)) => format!("expires {x}"),
                        (None, None) => "no expiry".into(),
                    };
                    out.push_str(&format!(
                        "\n  {}…  created {}  {state}",
                        k.key_prefix, k.created_at
                    ));
                }
                out
            });
        }
        ApiKeyCmd::Revoke {
            merchant,
            prefix,
            reason,
        } => {
            let id = merchant_id(merchant)?;
            credentials::revoke_api_key(
                engine,
                &id,
                prefix,
                reason.as_deref(),
                ctx.as_of,
                &ctx.actor,
            )
            .await?;
            ctx.out(
                &serde_json::json!({"merchant": id, "revoked": prefix}),
                || format!("key {prefix}… of {id} revoked"),
            );
        }
        ApiKeyCmd::Rotate {
            merchant,
            overlap_hours,
            expires,
        } => {
            let id = merchant_id(merchant)?;
            let r = credentials::rotate_api_key(
                engine,
                &id,
                chrono::Duration::hours(*overlap_hours),
                *expires,
                ctx.as_of,
                &ctx.actor,
            )
            .await?;
            ctx.out(&r, || {
                format!(
                    "new API key for {id} (shown once; keep it secret):\n{}\n\
                     the old keys ({}) stop working at {}",
                    r.api_key,
                    r.old_key_prefixes.join(", "),
                    r.old_valid_until
                )
            });
        }
    }
    Ok(())
}

pub async fn session(engine: &Engine, ctx: &Ctx, cmd: &SessionCmd) -> Result<(), Failure> {
    let operator = |n: &str| OperatorName::parse(n).map_err(|e| invalid("operator", e));
    match cmd {
        SessionCmd::List { name } => {
            let name = name.as_deref().map(operator).transpose()?;
            let sessions = credentials::list_sessions(engine, name.as_ref(), ctx.as_of).await?;
            ctx.out(&sessions, || {
                let mut out = format!("{} open session(s)", sessions.len());
                for s in &sessions {
                    out.push_str(&format!(
                        "\n  {}  {}  since {}  until {}",
                        s.id, s.operator, s.created_at, s.expires_at
                    ));
                }
                out
            });
        }
        SessionCmd::Revoke { id, name } => {
            let target = match (id, name) {
                (Some(id), _) => SessionTarget::Id(id.clone()),
                (None, Some(n)) => SessionTarget::Operator(operator(n)?),
                (None, None) => return Err(invalid("session", "give an id or --name")),
            };
            let n = credentials::revoke_sessions(engine, &target, ctx.as_of, &ctx.actor).await?;
            ctx.out(&serde_json::json!({"revoked": n}), || {
                format!("{n} session(s) ended")
            });
        }
    }
    Ok(())
}

pub async fn webhook(engine: &Engine, ctx: &Ctx, cmd: &WebhookCmd) -> Result<(), Failure> {
    let (status, limit) = match cmd {
        WebhookCmd::Held { limit } => ("held", *limit),
        WebhookCmd::Dead { limit } => ("dead", *limit),
    };
    if !(1..=10_000).contains(&limit) {
        return Err(invalid("limit", "1 to 10000"));
    }
    let summary = disburse_server::webhooks_summary(engine)
        .await
        .map_err(api)?;
    let list = disburse_server::webhook_deliveries(engine, status, limit)
        .await
        .map_err(api)?;
    ctx.out(
        &serde_json::json!({"dead": summary.dead, "held": summary.held, "deliveries": list}),
        || {
            let mut out = format!(
                "{} dead letter(s); {} message(s) held behind them",
                summary.dead, summary.held
            );
            for d in &list {
                let what = if status == "held" {
                    format!("held behind message {}", d.blocked_by.unwrap_or_default())
                } else {
                    format!(
                        "dead after {} attempt(s), holds {}",
                        d.attempts, d.held_behind
                    )
                };
                out.push_str(&format!(
                    "\n  message {}  {}  {}  order {}  {what}",
                    d.outbox_id,
                    d.merchant,
                    d.topic,
                    d.order_no.as_deref().unwrap_or("-")
                ));
            }
            out
        },
    );
    Ok(())
}
