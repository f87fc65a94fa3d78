//! Operators: added, passwords set, sessions, lockouts lifted.

use crate::*;

pub(crate) async fn run(
    cli: &Cli,
    ctx: &Ctx,
    operator: &OperatorName,
) -> Result<ExitCode, Failure> {
    // The operator running the command, owned as the arms use it.
    let operator = operator.clone();
    match &cli.command {
        Command::Operator(OperatorCmd::Password { name }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| invalid("password", e))?;
            let engine = open_engine(cli, false).await?;
            disburse_server::set_operator_password(
                &engine,
                &name,
                password.trim_end_matches(['\r', '\n']),
                ctx.as_of,
            )
            .await?;
            ctx.out(
                &serde_json::json!({"operator": name, "password_set": true}),
                || format!("password of {name} set"),
            );
        }
        Command::Operator(OperatorCmd::Session(cmd)) => {
            let engine = open_engine(cli, false).await?;
            commands::hardening::session(&engine, ctx, cmd).await?;
        }
        Command::Operator(OperatorCmd::Unlock { name }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let engine = open_engine(cli, false).await?;
            let was_locked = disburse_server::credentials::unlock_operator(
                &engine, &name, ctx.as_of, &ctx.actor,
            )
            .await?;
            ctx.out(
                &serde_json::json!({"operator": name, "was_locked": was_locked}),
                || {
                    if was_locked {
                        format!("{name} unlocked")
                    } else {
                        format!("{name} was not locked out; failed logins forgotten")
                    }
                },
            );
        }
        Command::Operator(OperatorCmd::Add { name, role }) => {
            let name = OperatorName::parse(name).map_err(|e| invalid("operator", e))?;
            let role =
                disburse_core::correction::Role::parse(role).map_err(|e| invalid("role", e))?;
            let engine = open_engine(cli, false).await?;
            let row = engine
                .add_operator(&name, role, ctx.as_of, &operator)
                .await?;
            ctx.out(
                &serde_json::json!({"operator": row.name, "role": row.role}),
                || format!("operator {} added as {}", row.name, row.role),
            );
        }
        _ => unreachable!("main dispatches only the operator commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
