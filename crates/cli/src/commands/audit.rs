//! The audit chain: verified, and anchors cut.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Audit(AuditCmd::Verify { anchor }) => {
            let engine = open_engine(cli, false).await?;
            let findings = match anchor {
                None => engine.db().verify_audit().await?,
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| invalid("anchor", format!("{}: {e}", path.display())))?;
                    let anchor = engine
                        .db()
                        .read_anchor(&text)?
                        .map_err(|e| invalid("anchor", format!("{}: {e}", path.display())))?;
                    engine.db().verify_audit_against(&anchor).await?
                }
            };
            let events = engine.db().audit_event_count().await?;
            ctx.out(
                &serde_json::json!({"ok": findings.is_empty(), "events": events, "findings": findings}),
                || match findings.first() {
                    None => format!("audit verified: {events} events, chain intact, every row matches"),
                    Some(first) => format!(
                        "AUDIT FAILED: {}{}",
                        first.what,
                        if findings.len() > 1 { format!(" (and {} more findings)", findings.len() - 1) } else { String::new() }
                    ),
                },
            );
            if !findings.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Audit(AuditCmd::Anchor { out }) => {
            let engine = open_engine(cli, false).await?;
            match engine.db().cut_anchor(ctx.as_of).await? {
                Ok(anchor) => {
                    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
                    let name = out
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| invalid("out", "must name a file"))?;
                    disburse_engine::write_atomically(
                        dir.unwrap_or(std::path::Path::new(".")),
                        name,
                        anchor.to_text().as_bytes(),
                    )
                    .map_err(|e| invalid("out", format!("{}: {e}", out.display())))?;
                    ctx.out(&anchor, || {
                        format!(
                            "anchor written to {}: event {} hash {} at {} (keep it outside the database)",
                            out.display(),
                            anchor.seq,
                            &anchor.hash[..16],
                            anchor.cut_at
                        )
                    });
                }
                Err(findings) => {
                    return Err(Failure {
                        message: format!(
                            "no anchor cut: the chain does not verify: {}",
                            findings[0].what
                        ),
                        code: 1,
                    })
                }
            }
        }
        _ => unreachable!("main dispatches only the audit commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
