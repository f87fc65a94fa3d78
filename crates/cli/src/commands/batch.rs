//! Batches: made, listed, their files exported.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Batch(BatchCmd::Create { channel, out }) => {
            let engine = open_engine(cli, false).await?;
            match engine
                .create_batch_file(channel, out.as_deref(), ctx.as_of, &ctx.actor)
                .await?
            {
                None => ctx.out(&serde_json::json!({"batch": null}), || {
                    format!("channel {channel}: no pending payouts")
                }),
                Some((batch, path)) => {
                    ctx.out(&serde_json::json!({"batch": batch, "path": path}), || {
                        format!(
                            "batch {} for channel {}: {} payouts, control sum {} {}, {} ({})\n  written to {}",
                            batch.batch_id, batch.channel, batch.payout_count,
                            print::minor(batch.control_sum_minor, &batch.currency), batch.currency,
                            batch.format, &batch.sha256[..16], path.display()
                        )
                    });
                }
            }
        }
        Command::Batch(BatchCmd::List) => {
            let engine = open_engine(cli, false).await?;
            let batches = engine.batches().await?;
            ctx.out(&batches, || print::batches(&batches));
        }
        Command::Batch(BatchCmd::Export {
            batch_id: None,
            out: None,
            unwritten: true,
        }) => {
            let engine = open_engine(cli, false).await?;
            let outcomes = engine
                .export_unwritten_batches(ctx.as_of, &ctx.actor)
                .await?;
            let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
            let shown: Vec<_> = outcomes
                .iter()
                .map(|(b, r)| match r {
                    Ok(path) => serde_json::json!({"batch_id": b.batch_id, "path": path}),
                    Err(e) => serde_json::json!({"batch_id": b.batch_id, "error": e.to_string()}),
                })
                .collect();
            ctx.out(&shown, || print::exported(&outcomes));
            if failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Batch(BatchCmd::Export {
            batch_id: Some(batch_id),
            out,
            unwritten: false,
        }) => {
            let engine = open_engine(cli, false).await?;
            let (batch, path) = match out {
                // A copy somewhere else: written whole (atomically), not recorded as sent.
                Some(out) => {
                    let (batch, bytes) = engine.batch_file(*batch_id).await?;
                    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
                    let name = out
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| invalid("out", "must name a file"))?;
                    let path = disburse_engine::write_atomically(
                        dir.unwrap_or(std::path::Path::new(".")),
                        name,
                        &bytes,
                    )
                    .map_err(|e| invalid("out", format!("{}: {e}", out.display())))?;
                    (batch, path)
                }
                // Into the channel's outbox, recorded as written.
                None => {
                    engine
                        .write_batch_file(*batch_id, None, ctx.as_of, &ctx.actor)
                        .await?
                }
            };
            ctx.out(&batch, || {
                format!(
                    "batch {} written to {} (sha256 {})",
                    batch.batch_id,
                    path.display(),
                    batch.sha256
                )
            });
        }
        Command::Batch(BatchCmd::Export { .. }) => {
            return Err(invalid(
                "batch_id",
                "give a batch id (with or without --out), or --unwritten alone",
            ));
        }
        _ => unreachable!("main dispatches only the batch commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
