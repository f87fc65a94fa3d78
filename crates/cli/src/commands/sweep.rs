//! The sweep: expired payouts escalated, silent ones presumed paid.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Sweep => {
            let engine = open_engine(cli, false).await?;
            let report = engine.sweep(ctx.as_of, &Actor::system("sweeper")).await?;
            ctx.out(&report, || {
                format!(
                    "sweep as of {}: {} expired (escalated to a person, money still in transit), {} presumed paid, {} still waiting{}",
                    ctx.as_of.to_rfc3339(),
                    report.expired.len(),
                    report.presumed_succeeded.len(),
                    report.still_waiting,
                    if report.expired.is_empty() { String::new() } else { format!("\n  expired: {}", report.expired.join(", ")) }
                )
            });
        }
        _ => unreachable!("main dispatches only the sweep commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
