//! Bank statements: imported, suggestions confirmed or rejected, the reconciliation report.

use crate::*;

pub(crate) async fn run(
    cli: &Cli,
    ctx: &Ctx,
    operator: &OperatorName,
) -> Result<ExitCode, Failure> {
    // The operator running the command, owned as the arms use it.
    let operator = operator.clone();
    match &cli.command {
        Command::Statements(StatementsCmd::Import { file, channel }) => {
            let engine = open_engine(cli, false).await?;
            let s = engine
                .import_statement(file, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            let mut json = serde_json::to_value(&s).expect("serializable");
            json["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
            ctx.out(&json, || print::statement_summary(&s));
        }
        Command::Statements(StatementsCmd::Confirm { entry, why })
        | Command::Statements(StatementsCmd::Reject { entry, why }) => {
            let confirm = matches!(
                cli.command,
                Command::Statements(StatementsCmd::Confirm { .. })
            );
            let engine = open_engine(cli, false).await?;
            let row = engine
                .decide_statement_entry(*entry, confirm, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&serde_json::json!({"entry": row.id, "match_status": row.match_status, "decided_by": row.decided_by}), || {
                format!("statement entry {} is {} ({})", row.id, row.match_status, row.note)
            });
        }
        Command::Reconcile { channel, html } => {
            let engine = open_engine(cli, false).await?;
            let r = engine.reconcile(channel, ctx.as_of).await?;
            if let Some(path) = html {
                std::fs::write(path, print::reconciliation_html(&r))
                    .map_err(|e| invalid("html", format!("{}: {e}", path.display())))?;
            }
            ctx.out(&r, || print::reconciliation(&r));
        }
        _ => unreachable!("main dispatches only the statements commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
