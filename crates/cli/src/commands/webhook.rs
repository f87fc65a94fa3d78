//! Held and dead webhook messages.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Webhook(cmd) => {
            let engine = open_engine(cli, false).await?;
            commands::hardening::webhook(&engine, ctx, cmd).await?;
        }
        _ => unreachable!("main dispatches only the webhook commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
