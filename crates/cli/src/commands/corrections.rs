//! Corrections, maker-checker: proposed, approved, rejected, listed.

use crate::*;

pub(crate) async fn run(
    cli: &Cli,
    ctx: &Ctx,
    operator: &OperatorName,
) -> Result<ExitCode, Failure> {
    // The operator running the command, owned as the arms use it.
    let operator = operator.clone();
    match &cli.command {
        Command::Correction(CorrectionCmd::Propose {
            payout_no,
            kind,
            why,
            evidence,
        }) => {
            let no = PayoutNo::parse(payout_no).map_err(|e| invalid("payout_no", e))?;
            let engine = open_engine(cli, false).await?;
            let currency = payout_currency(&engine, &no).await?;
            let amount =
                |a: &str| Money::parse_positive(a, currency).map_err(|e| invalid("amount", e));
            let kind = match kind {
                CorrectionKindCmd::ConfirmSucceeded {
                    amount: a,
                    reference,
                    value_date,
                } => disburse_core::correction::CorrectionKind::ConfirmSucceeded {
                    paid: amount(a)?,
                    bank_reference: reference.clone(),
                    value_date: value_date
                        .as_deref()
                        .map(disburse_engine::parse_value_date)
                        .transpose()?,
                },
                CorrectionKindCmd::ConfirmFailed { reason } => {
                    disburse_core::correction::CorrectionKind::ConfirmFailed {
                        reason_code: reason_code(reason)?,
                    }
                }
                CorrectionKindCmd::AmendPaid { amount: a } => {
                    disburse_core::correction::CorrectionKind::AmendPaidAmount { paid: amount(a)? }
                }
                CorrectionKindCmd::RecordReturn { reason } => {
                    disburse_core::correction::CorrectionKind::RecordReturn {
                        reason_code: reason_code(reason)?,
                    }
                }
                CorrectionKindCmd::CancelOrder => {
                    disburse_core::correction::CorrectionKind::CancelOrder
                }
            };
            let why = why.clone().unwrap_or_default();
            let evidence = evidence.clone().unwrap_or_default();
            let row = engine
                .propose_correction(&no, &kind, &why, &evidence, ctx.as_of, &operator)
                .await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!(
                    "correction {} proposed by {} for payout {}: {} — waiting for an approver",
                    row.id, row.proposed_by, row.payout_no, row.kind
                )
            });
        }
        Command::Correction(CorrectionCmd::Approve { id }) => {
            let engine = open_engine(cli, false).await?;
            let row = engine.approve_correction(*id, ctx.as_of, &operator).await?;
            let payout = engine.db().payout_by_no(&row.payout_no).await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!(
                    "correction {} ({}) proposed by {} approved by {} and applied: payout {} is {}",
                    row.id,
                    row.kind,
                    row.proposed_by,
                    operator,
                    row.payout_no,
                    payout.map(|p| p.state).unwrap_or_default()
                )
            });
        }
        Command::Correction(CorrectionCmd::Reject { id, why }) => {
            let engine = open_engine(cli, false).await?;
            let row = engine
                .reject_correction(*id, why, ctx.as_of, &operator)
                .await?;
            ctx.out(&disburse_engine::CorrectionView::from(row.clone()), || {
                format!("correction {} rejected by {operator}: {why}", row.id)
            });
        }
        Command::Correction(CorrectionCmd::List { status }) => {
            let engine = open_engine(cli, false).await?;
            let rows = engine.corrections(status.as_deref()).await?;
            ctx.out(&rows, || print::corrections(&rows));
        }
        _ => unreachable!("main dispatches only the corrections commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
