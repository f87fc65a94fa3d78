//! Result files imported.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Results(ResultsCmd::Import { file, channel }) => {
            let engine = open_engine(cli, false).await?;
            let bar = print::progress_bar(ctx.json);
            let summary = engine
                .import_results(
                    file,
                    channel.as_deref(),
                    ctx.as_of,
                    &ctx.actor,
                    &|done, total| bar.update(done, total),
                )
                .await?;
            bar.finish();
            let mut json = serde_json::to_value(&summary).expect("serializable");
            json["peak_rss_kb"] = serde_json::json!(peak_rss_kb());
            ctx.out(&json, || print::import_summary(&summary));
        }
        _ => unreachable!("main dispatches only the results commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
