//! Merchants: added, shown, their bank account and API keys; funds and withdrawals.

use crate::*;

pub(crate) async fn run(cli: &Cli, ctx: &Ctx) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Merchant(MerchantCmd::Add { id, name }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(cli, false).await?;
            let row = engine
                .add_merchant(&id, name, ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"merchant": row.id, "name": row.name}),
                || format!("merchant {} added", row.id),
            );
        }
        Command::Merchant(MerchantCmd::Account(AccountCmd::Set(a))) => {
            let id = merchant_id(&a.merchant)?;
            let account = bank_account(a)?;
            let engine = open_engine(cli, false).await?;
            let set = engine
                .set_bank_account(&id, &account, ctx.as_of, &ctx.actor)
                .await?;
            let (row, retried) = (&set.account, &set.retried);
            ctx.out(
                &serde_json::json!({"account": account.masked_view(), "version": row.version, "retried_payouts": retried}),
                || {
                    let mut text = format!(
                        "merchant {id} bank account set: {} (version {})",
                        account.masked(),
                        row.version
                    );
                    if !retried.is_empty() {
                        text.push_str(&format!("\norders waiting for this fix paid again: {}", retried.join(", ")));
                    }
                    text
                },
            );
        }
        Command::Merchant(MerchantCmd::Show { id }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(cli, false).await?;
            let view = engine.merchant_view(&id).await?;
            ctx.out(&view, || print::merchant(&view));
        }
        Command::Fund {
            merchant,
            amount,
            currency,
            reference,
        } => {
            let m = merchant_id(merchant)?;
            let amount = money(amount, currency)?;
            let engine = open_engine(cli, false).await?;
            let journal = engine
                .fund(&m, amount, reference.as_deref(), ctx.as_of, &ctx.actor)
                .await?;
            ctx.out(
                &serde_json::json!({"merchant": m, "amount_minor": amount.amount_minor(), "currency": amount.currency(), "journal_id": journal}),
                || format!("merchant {m} funded with {amount} (journal {journal})"),
            );
        }
        Command::Withdraw {
            merchant,
            order_no,
            amount,
            currency,
        } => {
            let req = WithdrawRequest {
                merchant: merchant_id(merchant)?,
                order_no: OrderNo::parse(order_no).map_err(|e| invalid("order_no", e))?,
                amount: money(amount, currency)?,
            };
            let engine = open_engine(cli, false).await?;
            let outcome = engine.withdraw(&req, ctx.as_of, &ctx.actor).await?;
            let o = outcome.order();
            let created = matches!(outcome, WithdrawOutcome::Created(_));
            ctx.out(
                &serde_json::json!({"order_no": o.order_no, "merchant": o.merchant_id, "state": o.state,
                    "amount_minor": o.amount_minor, "currency": o.currency, "created": created}),
                || {
                    if created {
                        format!("order {} accepted for {}: {}", o.order_no, o.merchant_id, o.state)
                    } else {
                        format!("order {} already exists (same request): {}", o.order_no, o.state)
                    }
                },
            );
        }
        Command::Merchant(MerchantCmd::ApiKey {
            id: Some(id),
            expires,
            action: None,
        }) => {
            let id = merchant_id(id)?;
            let engine = open_engine(cli, false).await?;
            let key = disburse_server::credentials::issue_api_key(
                &engine, &id, *expires, ctx.as_of, &ctx.actor,
            )
            .await?;
            ctx.out(&serde_json::json!({"merchant": id, "api_key": key}), || {
                format!("API key for {id} (shown once; keep it secret):\n{key}")
            });
        }
        Command::Merchant(MerchantCmd::ApiKey {
            action: Some(action),
            ..
        }) => {
            let engine = open_engine(cli, false).await?;
            commands::hardening::api_key(&engine, ctx, action).await?;
        }
        Command::Merchant(MerchantCmd::ApiKey {
            id: None,
            action: None,
            ..
        }) => return Err(invalid("merchant", "name the merchant")),
        _ => unreachable!("main dispatches only the merchant commands here"),
    }
    Ok(ExitCode::SUCCESS)
}
