//! The foundation use cases, each on SQLite and PostgreSQL.

mod common;

use common::*;
use disburse_core::{OrderNo, PayoutState};
use disburse_engine::{ApplyOutcome, EngineError, WithdrawOutcome, WithdrawRequest};

both_backends!(newcomer_flow_pays_an_order_once, |app: App| async move {
    let e = &app.engine;
    funded_merchant(e, "acme", "1000.00").await;
    withdraw(e, "acme", "W1", "250.00").await;
    let p = e
        .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
        .await
        .map(|s| s.into_payout().expect("a payout"))
        .unwrap();
    assert_eq!(p.state, "submitted", "an API channel sends at once");
    let applied = apply(e, &p.payout_no, paid("250.00"), day(1))
        .await
        .unwrap();
    assert!(matches!(applied, ApplyOutcome::Applied(_)));

    let view = e.order_view(&order("W1")).await.unwrap();
    assert_eq!(view.state, "paid");
    assert_eq!(view.payouts.len(), 1);
    assert_eq!(view.payouts[0].state, "succeeded");
    let kinds: Vec<&str> = view.journals.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["order_accepted", "payout_submitted", "payout_succeeded"]
    );
    assert!(view.journals.iter().all(|j| j.balanced));
    let topics: Vec<&str> = view.messages.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, ["order.accepted", "payout.created", "order.paid"]);
    // One audit event per change: accepted, payout created (and sent), paid.
    let actions: Vec<&str> = view
        .audit_events
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["order.accepted", "payout.created", "payout.succeeded"]
    );

    let db = e.db();
    assert_eq!(
        db.balance("merchant:acme:available", "EUR").await.unwrap(),
        -75000
    );
    assert_eq!(
        db.balance("merchant:acme:withdrawing", "EUR")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.balance("merchant:acme:in_transit", "EUR").await.unwrap(),
        0
    );
    assert_eq!(
        db.balance("channel:sandbox-api:bank", "EUR").await.unwrap(),
        -25000
    );
    assert_eq!(
        db.balance("platform:EUR:collections", "EUR").await.unwrap(),
        100000
    );
    assert_books_and_audit(e).await;

    // The same paid result again changes nothing.
    let again = apply(e, &p.payout_no, paid("250.00"), day(2))
        .await
        .unwrap();
    assert!(matches!(again, ApplyOutcome::Unchanged(_)));
    // A paid order takes no second payout.
    let err = e
        .create_payout(&order("W1"), None, day(2), &ops())
        .await
        .map(|s| s.into_payout().expect("a payout"))
        .unwrap_err();
    assert!(err.to_string().contains("already paid"), "{err}");
});

both_backends!(
    withdrawal_is_idempotent_on_merchant_and_order_no,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        let req = WithdrawRequest {
            merchant: m("acme"),
            order_no: OrderNo::parse("W1").unwrap(),
            amount: eur("250.00"),
        };
        assert!(matches!(
            e.withdraw(&req, t0(), &ops()).await.unwrap(),
            WithdrawOutcome::Created(_)
        ));
        let before = snapshot(e).await;
        assert!(matches!(
            e.withdraw(&req, day(1), &ops()).await.unwrap(),
            WithdrawOutcome::Existing(_)
        ));
        let other = WithdrawRequest {
            amount: eur("300.00"),
            ..req.clone()
        };
        let err = e
            .withdraw(&other, day(1), &ops())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("W1") && err.contains("250.00") && err.contains("300.00"),
            "{err}"
        );
        // Another account under the same order number is refused too.
        e.set_bank_account(&m("acme"), &iban_account(IBAN_2), day(1), &ops())
            .await
            .unwrap();
        let before_acc = snapshot(e).await;
        let err = e
            .withdraw(&req, day(1), &ops())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("account"), "{err}");
        assert_eq!(snapshot(e).await, before_acc);
        assert_eq!(
            before[..3],
            before_acc[..3]
                .iter()
                .zip([0, 1, 0])
                .map(|(a, d)| a - d)
                .collect::<Vec<_>>()[..]
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    withdrawal_needs_the_available_balance,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "100.00").await;
        let before = snapshot(e).await;
        let req = WithdrawRequest {
            merchant: m("acme"),
            order_no: OrderNo::parse("W1").unwrap(),
            amount: eur("100.01"),
        };
        let err = e.withdraw(&req, t0(), &ops()).await.unwrap_err();
        assert!(matches!(err, EngineError::Refused(_)), "{err}");
        assert!(err.to_string().contains("insufficient"), "{err}");
        assert_eq!(snapshot(e).await, before);
    }
);

both_backends!(
    failed_for_a_wrong_account_is_paid_again_as_a_new_payout_of_the_same_order,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        withdraw(e, "acme", "W1", "250.00").await;
        let first = e
            .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        apply(e, &first.payout_no, rejected("AC04"), day(1))
            .await
            .unwrap();
        let view = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(view.state, "action_required");
        let merchant = e.merchant_view(&m("acme")).await.unwrap();
        assert_eq!(
            merchant.account_status, "needs_update",
            "AC04 (closed account) flags the account"
        );
        assert!(view
            .messages
            .iter()
            .any(|m| m.topic == "payout.failed" && m.payload["reason_code"] == "AC04"));
        assert!(view
            .messages
            .iter()
            .any(|m| m.topic == "order.action_required"));
        // The money is reserved for the order again.
        assert_eq!(
            e.db()
                .balance("merchant:acme:withdrawing", "EUR")
                .await
                .unwrap(),
            -25000
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:in_transit", "EUR")
                .await
                .unwrap(),
            0
        );

        // Not paid again to the account the bank refused.
        let err = e
            .create_payout(&order("W1"), Some("sandbox-api"), day(1), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap_err();
        assert!(err.to_string().contains("must be updated"), "{err}");

        e.set_bank_account(&m("acme"), &iban_account(IBAN_2), day(2), &ops())
            .await
            .unwrap();
        let second = e
            .create_payout(&order("W1"), Some("sandbox-api"), day(2), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        assert_ne!(second.payout_no, first.payout_no);
        assert_ne!(
            second.bank_account_id, first.bank_account_id,
            "paid to the fixed account"
        );
        apply(e, &second.payout_no, paid("250.00"), day(3))
            .await
            .unwrap();

        let view = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(view.order_no, "W1", "the order keeps its number");
        assert_eq!(view.state, "paid");
        let states: Vec<(&str, &str)> = view
            .payouts
            .iter()
            .map(|p| (p.payout_no.as_str(), p.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                (first.payout_no.as_str(), "failed"),
                (second.payout_no.as_str(), "succeeded")
            ]
        );
        assert_eq!(view.payouts[0].reason_code.as_deref(), Some("AC04"));
        assert_eq!(view.payouts[0].bank_account_last4, "3000");
        assert_eq!(view.payouts[1].bank_account_last4, "2051");
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    no_result_for_a_long_time_expires_then_a_late_result_is_applied,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        withdraw(e, "acme", "W1", "250.00").await;
        let p = e
            .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        // sandbox-api promises an answer within 5 days.
        let report = e.sweep(day(4), &ops()).await.unwrap();
        assert!(report.expired.is_empty());
        assert_eq!(report.still_waiting, 1);
        let report = e.sweep(day(5), &ops()).await.unwrap();
        assert_eq!(report.expired, std::slice::from_ref(&p.payout_no));
        let view = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(view.state, "action_required");
        assert_eq!(view.payouts[0].state, "expired");
        assert_eq!(
            e.db()
                .balance("merchant:acme:in_transit", "EUR")
                .await
                .unwrap(),
            -25000,
            "money stays reserved in transit"
        );
        // Nothing is paid again while the first payout may still land.
        let err = e
            .create_payout(&order("W1"), Some("sandbox-api"), day(6), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap_err();
        assert!(err.to_string().contains("live payout"), "{err}");
        // A second sweep does nothing more.
        assert!(e.sweep(day(7), &ops()).await.unwrap().expired.is_empty());
        // The bank's late answer agrees with nothing known against it: applied.
        apply(e, &p.payout_no, paid("250.00"), day(8))
            .await
            .unwrap();
        let view = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(view.state, "paid");
        assert!(view
            .audit_events
            .iter()
            .any(|a| a.action == "payout.succeeded_late"));
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    conflicting_result_is_refused_and_changes_nothing,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        withdraw(e, "acme", "W1", "250.00").await;
        let p = e
            .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        apply(e, &p.payout_no, rejected("AC01"), day(1))
            .await
            .unwrap();
        let before = snapshot(e).await;
        let err = apply(e, &p.payout_no, paid("250.00"), day(2))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("failed, but the bank now says paid"),
            "{err}"
        );
        assert_eq!(snapshot(e).await, before);
    }
);

both_backends!(
    underpaid_and_overpaid_post_the_difference,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        withdraw(e, "acme", "W1", "250.00").await;
        withdraw(e, "acme", "W2", "100.00").await;
        let p1 = e
            .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        let p2 = e
            .create_payout(&order("W2"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        apply(e, &p1.payout_no, paid("240.00"), day(1))
            .await
            .unwrap();
        apply(e, &p2.payout_no, paid("100.50"), day(1))
            .await
            .unwrap();
        assert_eq!(
            e.db()
                .balance("merchant:acme:shortfall", "EUR")
                .await
                .unwrap(),
            -1000
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            50
        );
        let v = e.order_view(&order("W1")).await.unwrap();
        assert!(v
            .messages
            .iter()
            .any(|m| m.topic == "discrepancy.opened" && m.payload["overpaid_by_minor"] == -1000));
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    cancel_gives_the_money_back_and_is_refused_while_at_a_bank,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        withdraw(e, "acme", "W1", "250.00").await;
        withdraw(e, "acme", "W2", "250.00").await;
        // W1 on a file channel: pending until a batch is sent; cancelling cancels the payout too.
        let pending = e
            .create_payout(&order("W1"), Some("sepa-file"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        assert_eq!(pending.state, "pending");
        e.cancel_order(&order("W1"), "merchant asked", day(1), &ops())
            .await
            .unwrap();
        let v = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(
            (v.state.as_str(), v.payouts[0].state.as_str()),
            ("cancelled", "cancelled")
        );
        // W2 sent to a bank: cannot be cancelled.
        e.create_payout(&order("W2"), Some("sandbox-api"), t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        let before = snapshot(e).await;
        let err = e
            .cancel_order(&order("W2"), "merchant asked", day(1), &ops())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("live payout"), "{err}");
        assert_eq!(snapshot(e).await, before);
        assert_eq!(
            e.db()
                .balance("merchant:acme:available", "EUR")
                .await
                .unwrap(),
            -75000
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    two_processes_creating_payouts_for_one_order_leave_one_live_payout,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        for i in 0..5 {
            withdraw(e, "acme", &format!("W{i}"), "10.00").await;
        }
        let other = app.second_engine().await;
        for i in 0..5 {
            let no = format!("W{i}");
            let (r, actor) = (order(&no), ops());
            let (a, b) = tokio::join!(
                e.create_payout(&r, Some("sandbox-api"), t0(), &actor),
                other.create_payout(&r, Some("sandbox-api"), t0(), &actor),
            );
            let (a, b) = (
                a.map(|s| s.into_payout().expect("a payout")),
                b.map(|s| s.into_payout().expect("a payout")),
            );
            assert!(
                a.is_ok() != b.is_ok(),
                "exactly one of two concurrent creations wins: {a:?} {b:?}"
            );
            let live = e
                .db()
                .payouts_in_state("submitted")
                .await
                .unwrap()
                .into_iter()
                .filter(|p| p.order_id == a.as_ref().or(b.as_ref()).unwrap().order_id)
                .count();
            assert_eq!(live, 1);
        }
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    payout_on_a_paper_channel_waits_pending_until_its_batch_is_sent,
    |app: App| async move {
        let e = &app.engine;
        e.add_merchant(&m("yangon"), "Yangon Traders", t0(), &ops())
            .await
            .unwrap();
        let account = disburse_core::account::BankAccount::new(
            disburse_core::account::HolderName::parse("Yangon Traders").unwrap(),
            disburse_core::account::LocalAccount::new(
                disburse_core::account::CountryCode::parse("MM").unwrap(),
                "KBZ001",
                "0123456789",
            )
            .unwrap()
            .into(),
            None,
        );
        e.set_bank_account(&m("yangon"), &account, t0(), &ops())
            .await
            .unwrap();
        let mmk = |t: &str| disburse_core::Money::parse(t, disburse_core::Currency::Mmk).unwrap();
        e.fund(&m("yangon"), mmk("500000.00"), None, t0(), &ops())
            .await
            .unwrap();
        e.withdraw(
            &WithdrawRequest {
                merchant: m("yangon"),
                order_no: OrderNo::parse("Y1").unwrap(),
                amount: mmk("100000.00"),
            },
            t0(),
            &ops(),
        )
        .await
        .unwrap();
        // Routed by currency and country to mm-paper, a batch channel: pending until its batch is
        // printed and sent, and no bank result can be recorded for it before that.
        let p = e
            .create_payout(&order("Y1"), None, t0(), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        assert_eq!(
            (p.channel_id.as_str(), p.state.as_str()),
            ("mm-paper", "pending")
        );
        let err = apply(
            e,
            &p.payout_no,
            disburse_core::BankResult::Accepted { reference: None },
            t0(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("never sent to a bank"), "{err}");
        assert_eq!(p.state, PayoutState::Pending.as_str());
        assert_books_and_audit(e).await;
    }
);
