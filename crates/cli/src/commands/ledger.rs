//! The ledger: balances and the check that every journal balances.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Ledger(LedgerCmd::Balances) => {
            let engine = open_engine(cli, false).await?;
            let balances = engine.db().balances().await?;
            print::balances(ctx, &balances);
        }
        Command::Ledger(LedgerCmd::Check) => {
            let engine = open_engine(cli, false).await?;
            let check = engine.db().ledger_check().await?;
            ctx.out(&check, || print::ledger_check(&check));
            if !check.is_ok() {
                return Ok(ExitCode::from(1));
            }
        }
        _ => unreachable!("main dispatches only the ledger commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
