//! Payouts: created by hand and their bank results recorded.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Payout(PayoutCmd::Create {
            order_no,
            merchant,
            channel,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(cli, false).await?;
            let started = engine
                .create_payout(&r, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            print::payout_start(ctx, &r.order_no, &started, "created");
        }
        Command::Payout(PayoutCmd::Result {
            payout_no,
            outcome,
            evidence,
            evidence_file,
        }) => {
            let no = PayoutNo::parse(payout_no).map_err(|e| invalid("payout_no", e))?;
            let engine = open_engine(cli, false).await?;
            let currency = payout_currency(&engine, &no).await?;
            let result = match outcome {
                OutcomeCmd::Accepted { reference } => BankResult::Accepted {
                    reference: reference.clone(),
                },
                OutcomeCmd::Paid {
                    amount,
                    reference,
                    value_date,
                } => BankResult::Paid {
                    amount: Some(
                        Money::parse_positive(amount, currency)
                            .map_err(|e| invalid("amount", e))?,
                    ),
                    instructed: None,
                    reference: reference.clone(),
                    value_date: value_date
                        .as_deref()
                        .map(disburse_engine::parse_value_date)
                        .transpose()?,
                },
                OutcomeCmd::Rejected { reason, text } => BankResult::Rejected {
                    reason_code: reason_code(reason)?,
                    reason_text: text.clone(),
                    instructed: None,
                },
                OutcomeCmd::Returned { reason, text } => BankResult::Returned {
                    reason_code: reason_code(reason)?,
                    reason_text: text.clone(),
                    amount: None,
                },
            };
            let evidence = evidence
                .clone()
                .filter(|e| !e.trim().is_empty())
                .ok_or_else(|| {
                    invalid(
                        "evidence",
                        "say where this result comes from (--evidence: bank notice, message, file)",
                    )
                })?;
            let file = match evidence_file {
                Some(path) => Some((
                    path.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                    std::fs::read(path).map_err(|e| {
                        invalid("evidence-file", format!("{}: {e}", path.display()))
                    })?,
                )),
                None => None,
            };
            match engine
                .record_manual_result(
                    &no,
                    &result,
                    &evidence,
                    file.as_ref().map(|(n, b)| (n.as_str(), b.as_slice())),
                    ctx.as_of,
                    &ctx.actor,
                )
                .await?
            {
                ApplyOutcome::Applied(p) => ctx.out(
                    &serde_json::json!({"payout_no": p.payout_no, "state": p.state, "applied": true}),
                    || format!("payout {}: {}", p.payout_no, p.state),
                ),
                ApplyOutcome::Unchanged(why) => ctx.out(
                    &serde_json::json!({"payout_no": no, "applied": false, "why": why}),
                    || format!("payout {no}: unchanged ({why})"),
                ),
            }
        }
        _ => unreachable!("main dispatches only the payout commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
