//! Tools outside the production commands: the demo and the benchmarks (their code is in
//! `demo.rs` and `bench*.rs`; only their dispatch is here).

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Demo { dir, days, seed } => {
            let text = demo::run(dir.clone(), *days, *seed).await?;
            emit(&text);
        }
        Command::BenchHttp {
            connections,
            seconds,
        } => {
            let report = bench_http::run(*connections, *seconds).await?;
            ctx.out(&report, || print::bench_http(&report));
        }
        Command::Bench { lines, dir, peer } => {
            let report =
                bench::run(*lines, dir.clone(), &cli.db, peer.as_deref(), ctx.as_of).await?;
            ctx.out(&report, || print::bench(&report));
        }
        Command::BenchStatements { entries, dir } => {
            let report = bench_statements::run(*entries, dir.clone(), &cli.db, ctx.as_of).await?;
            ctx.out(&report, || print::bench_statements(&report));
        }
        _ => unreachable!("main dispatches only the tools commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
