//! Running the service: `serve`, the sandbox bank, the API channel worker.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::SandboxBank {
            serve:
                Some(SandboxBankCmd::Serve {
                    listen,
                    seed,
                    faults,
                    secret_env,
                    slow,
                    hang,
                    callback_url,
                }),
            ..
        } => {
            let faults =
                disburse_sandbox::api::FaultMix::parse(faults).map_err(|e| invalid("faults", e))?;
            let secret = std::env::var(secret_env).map_err(|_| {
                invalid(
                    "secret-env",
                    format!("environment variable {secret_env} is not set"),
                )
            })?;
            let duration = |field: &'static str, s: &str| {
                humantime::parse_duration(s)
                    .map_err(|e| invalid(field, format!("{s:?}: {e} (write e.g. 300ms or 30s)")))
            };
            let opts = disburse_server::bank_api::SandboxBankOptions {
                seed: *seed,
                faults,
                secret: secret.trim().as_bytes().to_vec(),
                slow: duration("slow", slow)?,
                hang: duration("hang", hang)?,
                callback_url: callback_url.clone(),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr().context("listener address")?;
            emit(&format!("sandbox bank listening on http://{addr}"));
            disburse_server::bank_api::serve_sandbox_bank(listener, opts, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
        Command::ApiChannel(ApiChannelCmd::Run {
            channel,
            rounds,
            until_settled,
            pause,
        }) => {
            let engine = open_engine(cli, false).await?;
            let pause = humantime::parse_duration(pause)
                .map_err(|e| invalid("pause", format!("{pause:?}: {e}")))?;
            let mut worker =
                disburse_server::bank_api::ApiChannelWorker::new(&engine, Some(channel))
                    .map_err(|e| invalid("channel", format!("{e:#}")))?;
            let mut reports = Vec::new();
            for round in 0..*rounds {
                if round > 0 {
                    tokio::time::sleep(pause).await;
                }
                let as_of = cli.as_of.unwrap_or_else(Utc::now);
                let report = worker
                    .round(&engine, as_of)
                    .await
                    .pop()
                    .expect("one channel, one report")?;
                let pending = engine.api_channel_pending(channel).await?;
                let settled = report.settled() && pending == 0;
                reports.push(report);
                if *until_settled && settled {
                    break;
                }
            }
            ctx.out(&reports, || {
                reports
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        format!(
                            "round {}: {} sent ({} again under the same key), {} status queries; {} paid, {} rejected, {} accepted, {} unknown, {} exceptions{}",
                            i + 1, r.sent, r.resent, r.status_queries, r.paid.len(), r.rejected.len(),
                            r.accepted.len(), r.unknown.len(), r.exceptions.len(),
                            r.held.as_deref().map(|h| format!(" — held: {h}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::SandboxBank {
            pain001,
            submitted_on,
            day,
            out,
            seed,
            account_iban,
            ..
        } => {
            let required = |field: &'static str| {
                invalid(field, "required (or run `disburse sandbox-bank serve`)")
            };
            let pain001 = pain001.as_ref().ok_or_else(|| required("pain001"))?;
            let submitted_on = submitted_on
                .as_deref()
                .ok_or_else(|| required("submitted-on"))?;
            let day = day.as_deref().ok_or_else(|| required("day"))?;
            let out = out.as_ref().ok_or_else(|| required("out"))?;
            let date = |field: &'static str, s: &str| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|e| invalid(field, format!("{s:?}: {e} (write YYYY-MM-DD)")))
            };
            let file = std::fs::File::open(pain001)
                .map_err(|e| invalid("pain001", format!("{}: {e}", pain001.display())))?;
            let files = disburse_sandbox::answer_file(
                &disburse_sandbox::SandboxConfig::demo(*seed),
                std::io::BufReader::new(file),
                date("submitted-on", submitted_on)?,
                date("day", day)?,
                account_iban,
            )
            .map_err(|e| invalid("pain001", format!("{}: {e}", pain001.display())))?;
            let mut written = Vec::new();
            for (name, bytes) in files {
                written.push(write_file(out, &name, &bytes)?);
            }
            ctx.out(&written, || {
                if written.is_empty() {
                    format!("the bank says nothing on {day}")
                } else {
                    written
                        .iter()
                        .map(|p| format!("wrote {}", p.display()))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        Command::Serve {
            listen,
            api_only,
            workers_only,
            json_logs,
        } => {
            let engine = std::sync::Arc::new(open_engine(cli, false).await?);
            let opts = disburse_server::ServeOptions {
                listen: *listen,
                api: !workers_only,
                workers: !api_only,
                json_logs: *json_logs,
            };
            eprintln!(
                "disburse serving on http://{listen} (api: {}, workers: {})",
                opts.api, opts.workers
            );
            disburse_server::serve(engine, opts, shutdown_signal()).await?;
        }
        _ => unreachable!("main dispatches only the serve commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
