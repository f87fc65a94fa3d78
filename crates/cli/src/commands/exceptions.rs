//! The exception queue: listed, shown, claimed, released, commented, handled.

use crate::*;

pub(crate) async fn run(
    cli: &Cli,
    ctx: &Ctx,
    operator: &OperatorName,
) -> Result<ExitCode, Failure> {
    // The operator running the command, owned as the arms use it.
    let operator = operator.clone();
    match &cli.command {
        Command::Exceptions(ExceptionsCmd::List) => {
            let engine = open_engine(cli, false).await?;
            let items = engine.exceptions(ctx.as_of).await?;
            ctx.out(&items, || print::exceptions(&items));
        }
        Command::Exceptions(ExceptionsCmd::Show { id }) => {
            let engine = open_engine(cli, false).await?;
            let items = engine.exceptions(ctx.as_of).await?;
            let item = items.into_iter().find(|i| i.id == *id).ok_or_else(|| {
                Failure::from(EngineError::NotFound {
                    what: "exception",
                    id: id.clone(),
                })
            })?;
            let work = engine
                .exception_work()
                .await?
                .remove(&item.id)
                .unwrap_or_default();
            // The item as before, with what people have done about it beside it.
            let mut shown = serde_json::to_value(&item).unwrap_or_default();
            if let Some(o) = shown.as_object_mut() {
                o.insert(
                    "work".into(),
                    serde_json::to_value(&work).unwrap_or_default(),
                );
            }
            ctx.out(&shown, || {
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            });
        }
        Command::Exceptions(ExceptionsCmd::Claim { id }) => {
            let engine = open_engine(cli, false).await?;
            let row = engine.claim_exception(id, ctx.as_of, &operator).await?;
            let shown = serde_json::json!({"item_id": row.item_id, "claimed_by": row.claimed_by, "claimed_at": row.claimed_at});
            ctx.out(&shown, || {
                format!(
                    "{} claimed by {} since {}",
                    row.item_id, row.claimed_by, row.claimed_at
                )
            });
        }
        Command::Exceptions(ExceptionsCmd::Release { id }) => {
            let engine = open_engine(cli, false).await?;
            engine.release_exception(id, ctx.as_of, &operator).await?;
            let done = serde_json::json!({"item_id": id.trim(), "released_by": operator.as_str()});
            ctx.out(&done, || format!("{} released by {operator}", id.trim()));
        }
        Command::Exceptions(ExceptionsCmd::Comment { id, note }) => {
            let engine = open_engine(cli, false).await?;
            let row = engine
                .comment_exception(id, note, ctx.as_of, &operator)
                .await?;
            let shown = note_json(&row);
            ctx.out(&shown, || {
                format!(
                    "comment {} on {} by {}",
                    row.id, row.item_id, row.written_by
                )
            });
        }
        Command::Exceptions(ExceptionsCmd::Handle { id, note }) => {
            let engine = open_engine(cli, false).await?;
            let row = engine
                .handle_exception(id, note, ctx.as_of, &operator)
                .await?;
            let shown = note_json(&row);
            ctx.out(&shown, || {
                format!(
                    "{} marked handled by {}: {} (it leaves the queue when its condition ends)",
                    row.item_id, row.written_by, row.note
                )
            });
        }
        _ => unreachable!("main dispatches only the exceptions commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
