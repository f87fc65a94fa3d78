//! Discrepancies: listed and resolved.

use crate::*;

pub(crate) async fn run(
    cli: &Cli,
    ctx: &Ctx,
    operator: &OperatorName,
) -> Result<ExitCode, Failure> {
    // The operator running the command, owned as the arms use it.
    let operator = operator.clone();
    match &cli.command {
        Command::Discrepancy(cmd) => {
            let engine = open_engine(cli, false).await?;
            let (id, resolution, why) = match cmd {
                DiscrepancyCmd::List { all } => {
                    let rows = engine.discrepancies(!all).await?;
                    let views: Vec<_> = rows.iter().map(print::discrepancy_json).collect();
                    ctx.out(&views, || print::discrepancies(&rows));
                    return Ok(ExitCode::SUCCESS);
                }
                DiscrepancyCmd::Refund { id, reference, why } => (
                    *id,
                    disburse_engine::Resolution::RefundReceived {
                        reference: reference.clone(),
                    },
                    why,
                ),
                DiscrepancyCmd::WriteOff { id, why } => {
                    (*id, disburse_engine::Resolution::ProposeWriteOff, why)
                }
                DiscrepancyCmd::ApproveWriteOff { id, why } => {
                    (*id, disburse_engine::Resolution::ApproveWriteOff, why)
                }
                DiscrepancyCmd::Net { id, why } => {
                    (*id, disburse_engine::Resolution::NetAgainstNext, why)
                }
                DiscrepancyCmd::AddToNext { id, why } => {
                    (*id, disburse_engine::Resolution::AddToNext, why)
                }
                DiscrepancyCmd::TopUp { id, channel, why } => (
                    *id,
                    disburse_engine::Resolution::TopUpNow {
                        channel: channel.clone(),
                    },
                    why,
                ),
            };
            let row = engine
                .resolve_discrepancy(id, &resolution, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&print::discrepancy_json(&row), || {
                format!(
                    "discrepancy {} is {}{}",
                    row.id,
                    row.status,
                    row.resolution
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                        + &row
                            .topup_payout_no
                            .as_ref()
                            .map(|p| format!(" (top-up payout {p})"))
                            .unwrap_or_default()
                )
            });
        }
        _ => unreachable!("main dispatches only the discrepancies commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
