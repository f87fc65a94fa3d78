//! Orders: shown, paid again, cancelled.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Order(OrderCmd::Show { order_no, merchant }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(cli, false).await?;
            let view = engine.order_view(&r).await?;
            ctx.out(&view, || print::order(&view));
        }
        Command::Order(OrderCmd::Retry {
            order_no,
            merchant,
            channel,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(cli, false).await?;
            let started = engine
                .retry_order(&r, channel.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            print::payout_start(ctx, &r.order_no, &started, "paid again");
        }
        Command::Order(OrderCmd::Cancel {
            order_no,
            merchant,
            reason,
        }) => {
            let r = order_ref(order_no, merchant.as_deref())?;
            let engine = open_engine(cli, false).await?;
            let o = engine
                .cancel_order(&r, reason, ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"order_no": o.order_no, "state": o.state}),
                || {
                    format!(
                        "order {} cancelled; {} {} back to available",
                        o.order_no, o.amount_minor, o.currency
                    )
                },
            );
        }
        _ => unreachable!("main dispatches only the order commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
