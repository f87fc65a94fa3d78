//! What the merchant hears, per situation (DESIGN §8.1, the merchant's messages): each message
//! once, in order, and "fix your account" only when the account is the cause.

mod common;

use common::*;
use disburse_engine::ImportSummary;

async fn import(app: &App, path: &std::path::Path) -> ImportSummary {
    app.engine
        .import_results(path, None, day(2), &ops(), &|_, _| {})
        .await
        .unwrap()
}

/// The topics the merchant was sent about order `order_no`, in order.
async fn heard(app: &App, order_no: &str) -> Vec<String> {
    app.engine
        .db()
        .outbox_of_merchant("acme")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| {
            serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["order_no"] == order_no
        })
        .map(|m| m.topic)
        .collect()
}

fn camt_debit(no: &str, amount: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\"><BkToCstmrDbtCdtNtfctn>\
         <GrpHdr><MsgId>N</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr><Ntfctn><Id>N</Id><CreDtTm>2026-11-03T10:00:00</CreDtTm>\
         <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd>\
         <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-03</Dt></BookgDt><AcctSvcrRef>B1</AcctSvcrRef><NtryDtls><TxDtls><Refs>\
         <EndToEndId>{no}</EndToEndId></Refs><Amt Ccy=\"EUR\">{amount}</Amt><AmtDtls><InstdAmt><Amt Ccy=\"EUR\">100.00</Amt></InstdAmt></AmtDtls>\
         </TxDtls></NtryDtls></Ntry>\n</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n"
    )
}

fn topics(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// Situation 4: the status says paid, the booking says 99.50. Paid is said once; the difference
// is its own message.
both_backends!(paid_with_another_booked_amount, |app: App| async move {
    let (msg, nos) = sent(&app.engine, 1).await;
    let dir = disburse_store::testing::temp_dir();
    import(
        &app,
        &write(
            &dir,
            "s.xml",
            &pain002(&msg, &[(&nos[0], "ACSC", None, Some("100.00"))]),
        ),
    )
    .await;
    import(&app, &write(&dir, "c.xml", &camt_debit(&nos[0], "99.50"))).await;
    assert_eq!(
        heard(&app, "W1").await,
        topics(&[
            "order.accepted",
            "payout.created",
            "payout.submitted",
            "order.paid",
            "discrepancy.opened"
        ])
    );
    std::fs::remove_dir_all(dir).ok();
});

// Situation 1: a closed account. The merchant must act, and hears so.
both_backends!(rejected_for_the_account, |app: App| async move {
    let (msg, nos) = sent(&app.engine, 1).await;
    let dir = disburse_store::testing::temp_dir();
    import(
        &app,
        &write(
            &dir,
            "s.xml",
            &pain002(&msg, &[(&nos[0], "RJCT", Some("AC04"), None)]),
        ),
    )
    .await;
    assert_eq!(
        heard(&app, "W1").await,
        topics(&[
            "order.accepted",
            "payout.created",
            "payout.submitted",
            "payout.failed",
            "order.action_required"
        ])
    );
});

// Our own account lacked funds (AM04): not the merchant's fault. It hears "delayed", its account
// is not flagged, and treasury sees an exception of its own.
both_backends!(rejected_for_our_funds, |app: App| async move {
    let e = &app.engine;
    let (msg, nos) = sent(e, 1).await;
    let dir = disburse_store::testing::temp_dir();
    import(
        &app,
        &write(
            &dir,
            "s.xml",
            &pain002(&msg, &[(&nos[0], "RJCT", Some("AM04"), None)]),
        ),
    )
    .await;
    assert_eq!(
        heard(&app, "W1").await,
        topics(&[
            "order.accepted",
            "payout.created",
            "payout.submitted",
            "payout.failed",
            "order.delayed"
        ])
    );
    assert_eq!(
        e.db()
            .merchant("acme")
            .await
            .unwrap()
            .unwrap()
            .account_status,
        "ok"
    );
    let items = e.exceptions(day(2)).await.unwrap();
    let item = items
        .iter()
        .find(|i| i.kind == "our_funds_short")
        .expect("{items:?}");
    assert!(item.action.starts_with("treasury"), "{item:?}");
});

// Situation 3: no answer within the deadline, then a late payment. Delayed, then paid; never
// "act".
both_backends!(expired_then_paid_late, |app: App| async move {
    let e = &app.engine;
    let (_, nos) = sent(e, 1).await;
    let report = e.sweep(day(30), &ops()).await.unwrap();
    assert_eq!(report.expired, nos);
    apply(e, &nos[0], paid("100.00"), day(31)).await.unwrap();
    assert_eq!(
        heard(&app, "W1").await,
        topics(&[
            "order.accepted",
            "payout.created",
            "payout.submitted",
            "order.delayed",
            "order.paid"
        ])
    );
});

// Orders in limbo: taken while the account is flagged, listed for a person, the merchant told
// once, all paid when the account is fixed.
both_backends!(
    orders_taken_while_the_account_is_flagged_are_paid_on_the_fix,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 1).await;
        let dir = disburse_store::testing::temp_dir();
        import(
            &app,
            &write(
                &dir,
                "s.xml",
                &pain002(&msg, &[(&nos[0], "RJCT", Some("AC01"), None)]),
            ),
        )
        .await;
        withdraw(e, "acme", "W2", "50.00").await;
        withdraw(e, "acme", "W3", "20.00").await;
        assert!(
            e.create_payout(&order("W2"), None, day(2), &ops())
                .await
                .is_err(),
            "no payout while the account is flagged"
        );
        assert_eq!(
            heard(&app, "W2").await,
            topics(&["order.accepted", "order.action_required"])
        );
        let items = e.exceptions(day(2)).await.unwrap();
        let waiting: Vec<_> = items
            .iter()
            .filter(|i| i.kind == "waiting_for_account_fix")
            .filter_map(|i| i.order_no.clone())
            .collect();
        assert_eq!(waiting, vec!["W1", "W2", "W3"], "{items:?}");
        let fixed = e
            .set_bank_account(
                &m("acme"),
                &iban_account("NL91ABNA0417164300"),
                day(3),
                &ops(),
            )
            .await
            .unwrap();
        assert_eq!(fixed.retried.len(), 3, "{:?}", fixed.retried);
        for no in ["W1", "W2", "W3"] {
            let view = e.order_view(&order(no)).await.unwrap();
            assert!(
                view.payouts
                    .iter()
                    .any(|p| p.state == "pending" || p.state == "submitted"),
                "{no}: {:?}",
                view.payouts
            );
        }
        assert!(e
            .exceptions(day(3))
            .await
            .unwrap()
            .iter()
            .all(|i| i.kind != "waiting_for_account_fix"));
        assert_eq!(
            heard(&app, "W2")
                .await
                .iter()
                .filter(|t| *t == "order.action_required")
                .count(),
            1,
            "told once"
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);
