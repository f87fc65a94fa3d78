//! Setting up: `init` and the configured channels.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Init => {
            let engine = open_engine(cli, true).await?;
            let channels = engine.config().channels.len();
            ctx.out(
                &serde_json::json!({"database": redact_url(&cli.db), "channels": channels}),
                || {
                    format!(
                        "initialized {} ({channels} channels configured)",
                        redact_url(&cli.db)
                    )
                },
            );
        }
        Command::Channels => {
            let config = Config::load(cli.config.as_deref())?;
            print::channels(ctx, &config);
        }
        _ => unreachable!("main dispatches only the setup commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
