//! One end-to-end test per situation of DESIGN §1, driven by real-format bank files (pain.002,
//! camt.054, bank CSV), on SQLite and PostgreSQL. Each asserts states, journals, balances, the
//! audit trail and the messages to the merchant, and ends with the ledger check and audit verify.

mod common;

use common::*;
use disburse_core::correction::{CorrectionKind, Role};
use disburse_core::{Currency, Money, OperatorName, PayoutNo};
use disburse_engine::{Engine, Resolution};
use disburse_sandbox::{write_camt054, Answer, PlannedAnswer};

fn person(name: &str) -> OperatorName {
    OperatorName::parse(name).unwrap()
}

/// ada (admin), olga (operator, the maker), bert (approver, the checker), vic (viewer).
async fn desk(e: &Engine) {
    e.add_operator(&person("ada"), Role::Admin, t0(), &person("ada"))
        .await
        .unwrap();
    for (name, role) in [
        ("olga", Role::Operator),
        ("bert", Role::Approver),
        ("vic", Role::Viewer),
    ] {
        e.add_operator(&person(name), role, t0(), &person("ada"))
            .await
            .unwrap();
    }
}

/// A camt.054 with one booked debit per (payout, paid amount), as the bank sends it.
fn camt054_paid(paid: &[(&str, &str)]) -> String {
    let answers: Vec<PlannedAnswer> = paid
        .iter()
        .map(|(no, amount)| PlannedAnswer {
            end_to_end_id: no.to_string(),
            instructed: eur(amount),
            answer: Answer::Paid {
                amount: eur(amount),
                bank_reference: format!("BOOK-{no}"),
            },
            on_day: day(12).date_naive(),
        })
        .collect();
    let refs: Vec<&PlannedAnswer> = answers.iter().collect();
    let mut out = Vec::new();
    write_camt054(&refs, "DE89370400440532013000", day(12), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

async fn import_text(
    e: &Engine,
    name: &str,
    text: &str,
    channel: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> disburse_engine::ImportSummary {
    let dir = disburse_store::testing::temp_dir();
    let path = write(&dir, name, text);
    let s = e
        .import_results(&path, channel, at, &ops(), &|_, _| {})
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).ok();
    s
}

fn topics(v: &disburse_engine::OrderView) -> Vec<&str> {
    v.messages.iter().map(|m| m.topic.as_str()).collect()
}

both_backends!(
    situation_1_failed_because_the_account_is_wrong_is_paid_again_as_a_new_payout_of_the_same_order,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 1).await;
        let s = import_text(
            e,
            "status.xml",
            &pain002(&msg, &[(&nos[0], "RJCT", Some("AC04"), None)]),
            None,
            day(1),
        )
        .await;
        assert_eq!(s.applied, 1);
        let v = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(
            (v.state.as_str(), v.payouts[0].state.as_str()),
            ("action_required", "failed")
        );
        assert_eq!(
            e.merchant_view(&m("acme")).await.unwrap().account_status,
            "needs_update"
        );
        assert!(e
            .exceptions(day(1))
            .await
            .unwrap()
            .iter()
            .any(|i| i.kind == "waiting_for_account_fix"));
        assert_eq!(
            &topics(&v)[topics(&v).len() - 2..],
            ["payout.failed", "order.action_required"]
        );

        // The merchant fixes its account: the waiting order gets a new payout at once (sepa-file
        // retries automatically), with a new payout number; the order keeps its number.
        let set = e
            .set_bank_account(&m("acme"), &iban_account(IBAN_2), day(2), &ops())
            .await
            .unwrap();
        assert_eq!(set.retried.len(), 1);
        let retry = &set.retried[0];
        assert_ne!(retry, &nos[0]);
        let (batch2, bytes) = e
            .create_batch("sepa-file", day(2), &ops())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(batch2.message_id, msg);
        assert!(
            String::from_utf8(bytes).unwrap().contains(IBAN_2),
            "paid to the fixed account"
        );
        let s = import_text(
            e,
            "camt054.xml",
            &camt054_paid(&[(retry, "100.00")]),
            None,
            day(3),
        )
        .await;
        assert_eq!((s.applied, s.exceptions), (1, 0));

        let v = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(v.state, "paid");
        let payouts: Vec<(&str, &str, Option<&str>, &str)> = v
            .payouts
            .iter()
            .map(|p| {
                (
                    p.payout_no.as_str(),
                    p.state.as_str(),
                    p.reason_code.as_deref(),
                    p.bank_account_last4.as_str(),
                )
            })
            .collect();
        assert_eq!(
            payouts,
            [
                (nos[0].as_str(), "failed", Some("AC04"), "3000"),
                (retry.as_str(), "succeeded", None, "2051")
            ]
        );
        let kinds: Vec<&str> = v.journals.iter().map(|j| j.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "order_accepted",
                "payout_submitted",
                "payout_failed",
                "payout_submitted",
                "payout_succeeded"
            ]
        );
        assert!(v
            .audit_events
            .iter()
            .any(|a| a.action == "payout.retried_after_account_fix"));
        assert_eq!(topics(&v).last(), Some(&"order.paid"));
        assert_eq!(
            e.db()
                .balance("merchant:acme:withdrawing", "EUR")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:in_transit", "EUR")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            e.db()
                .balance("channel:sepa-file:bank", "EUR")
                .await
                .unwrap(),
            -10000
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(situation_2_an_operator_marked_a_paid_payout_failed_and_a_correction_approved_by_another_fixes_it, |app: App| async move {
    let e = &app.engine;
    desk(e).await;
    let (_, nos) = sent(e, 1).await;
    let no = PayoutNo::parse(&nos[0]).unwrap();
    // The mistake: typed in as rejected.
    e.record_manual_result(&no, &rejected("AC01"), "phone call, misheard", None, day(1), &ops()).await.unwrap();
    // The bank's statement says it was paid: that conflicts, so it is raised, not applied.
    let s = import_text(e, "camt054.xml", &camt054_paid(&[(&nos[0], "100.00")]), None, day(3)).await;
    assert_eq!((s.applied, s.exceptions), (0, 1));
    assert!(e.exceptions(day(3)).await.unwrap().iter().any(|i| i.kind == "conflict" && i.payout_no.as_deref() == Some(nos[0].as_str())));

    let kind = CorrectionKind::ConfirmSucceeded { paid: eur("100.00"), bank_reference: format!("BOOK-{}", nos[0]), value_date: None };
    let err = e.propose_correction(&no, &kind, "bank statement shows it paid", "camt054.xml", day(3), &person("vic")).await.unwrap_err();
    assert!(err.to_string().contains("viewer"), "a viewer cannot propose: {err}");
    // An approver who proposes cannot approve it too; another person rejects it, with a reason.
    let own = e.propose_correction(&no, &kind, "statement", "camt054.xml", day(3), &person("bert")).await.unwrap();
    let err = e.approve_correction(own.id, day(3), &person("bert")).await.unwrap_err();
    assert!(err.to_string().contains("different person"), "a maker cannot approve its own: {err}");
    e.reject_correction(own.id, "evidence should cite the line", day(3), &person("ada")).await.unwrap();
    assert!(e.approve_correction(own.id, day(3), &person("ada")).await.is_err(), "a rejected correction stays rejected");

    let c = e.propose_correction(&no, &kind, "bank statement shows it paid", "camt054.xml line 12", day(3), &person("olga")).await.unwrap();
    assert!(e.exceptions(day(3)).await.unwrap().iter().any(|i| i.kind == "correction_waiting_for_approval"));
    for who in ["olga", "vic"] {
        let err = e.approve_correction(c.id, day(3), &person(who)).await.unwrap_err();
        assert!(err.to_string().contains("only approvers and admins"), "{who}: {err}");
    }
    let before = e.db().payout_by_no(&nos[0]).await.unwrap().unwrap();
    assert_eq!(e.merchant_view(&m("acme")).await.unwrap().account_status, "needs_update", "the mistaken AC01 flagged the account");
    e.approve_correction(c.id, day(4), &person("bert")).await.unwrap();
    assert_eq!(e.merchant_view(&m("acme")).await.unwrap().account_status, "ok", "the account took the money: it was never wrong");

    let v = e.order_view(&order("W1")).await.unwrap();
    assert_eq!((v.state.as_str(), v.payouts[0].state.as_str()), ("paid", "succeeded"));
    let kinds: Vec<&str> = v.journals.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["order_accepted", "payout_submitted", "payout_failed", "correction_reversal", "correction_restatement"]);
    // Nothing was edited away: the failure's journal is still there, reversed by a new one.
    assert_eq!(e.db().count_where("journals", "kind = 'payout_failed'").await.unwrap(), 1);
    let event = v.audit_events.iter().find(|a| a.action == "payout.corrected.confirm_succeeded").unwrap();
    assert_eq!(event.detail["proposed_by"], "olga");
    assert_eq!(event.detail["approved_by"], "bert");
    assert_eq!(event.detail["before"]["state"], "failed");
    assert!(event.actor.contains("bert"));
    assert_eq!(topics(&v).last(), Some(&"correction.applied"));
    assert_ne!(before.updated_at, e.db().payout_by_no(&nos[0]).await.unwrap().unwrap().updated_at);
    // Applied once: approving again is refused.
    assert!(e.approve_correction(c.id, day(4), &person("ada")).await.is_err());
    assert_eq!(e.db().balance("merchant:acme:withdrawing", "EUR").await.unwrap(), 0);
    assert_eq!(e.db().balance("channel:sepa-file:bank", "EUR").await.unwrap(), -10000);
    assert_books_and_audit(e).await;
});

both_backends!(
    situation_3_no_result_for_a_long_time_is_escalated_then_settled_late_or_by_correction,
    |app: App| async move {
        let e = &app.engine;
        desk(e).await;
        let (msg, nos) = sent(e, 3).await;
        // Inside the bank's window nothing happens; past the 10-day deadline all three expire.
        assert!(e.sweep(day(9), &ops()).await.unwrap().expired.is_empty());
        assert_eq!(e.sweep(day(10), &ops()).await.unwrap().expired.len(), 3);
        assert_eq!(
            e.exceptions(day(10))
                .await
                .unwrap()
                .iter()
                .filter(|i| i.kind == "expired_payout")
                .count(),
            3
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:in_transit", "EUR")
                .await
                .unwrap(),
            -30000,
            "money stays reserved"
        );
        let err = e
            .create_payout(&order("W1"), None, day(10), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap_err();
        assert!(
            err.to_string().contains("live payout"),
            "nothing paid again automatically: {err}"
        );

        // W1: the bank's answer arrives late and agrees: applied, citing its file.
        let s = import_text(
            e,
            "late.xml",
            &camt054_paid(&[(&nos[0], "100.00")]),
            None,
            day(12),
        )
        .await;
        assert_eq!(s.applied, 1);
        let v = e.order_view(&order("W1")).await.unwrap();
        let late = v
            .audit_events
            .iter()
            .find(|a| a.action == "payout.succeeded_late")
            .unwrap();
        assert_eq!(late.detail["source"]["name"], "late.xml");
        // A later rejection of the same payout conflicts: raised, not applied.
        let s = import_text(
            e,
            "conflict.xml",
            &pain002(&msg, &[(&nos[0], "RJCT", Some("AC01"), None)]),
            None,
            day(13),
        )
        .await;
        assert_eq!((s.applied, s.exceptions), (0, 1));
        assert_eq!(
            e.db().payout_by_no(&nos[0]).await.unwrap().unwrap().state,
            "succeeded"
        );

        // W2: the operator learns from the bank that it was paid: a correction, maker and checker.
        let no2 = PayoutNo::parse(&nos[1]).unwrap();
        let kind = CorrectionKind::ConfirmSucceeded {
            paid: eur("100.00"),
            bank_reference: "PHONE-1".into(),
            value_date: None,
        };
        let c = e
            .propose_correction(
                &no2,
                &kind,
                "bank confirmed by phone",
                "call ref 991",
                day(14),
                &person("olga"),
            )
            .await
            .unwrap();
        e.approve_correction(c.id, day(14), &person("bert"))
            .await
            .unwrap();
        assert_eq!(e.order_view(&order("W2")).await.unwrap().state, "paid");

        // W3: a correction proposed, then the bank's late file changes the payout: approval is stale.
        let no3 = PayoutNo::parse(&nos[2]).unwrap();
        let fail = CorrectionKind::ConfirmFailed {
            reason_code: "AC01".into(),
        };
        let c3 = e
            .propose_correction(
                &no3,
                &fail,
                "bank says never paid",
                "email 12",
                day(14),
                &person("olga"),
            )
            .await
            .unwrap();
        import_text(
            e,
            "late3.xml",
            &camt054_paid(&[(&nos[2], "100.00")]),
            None,
            day(15),
        )
        .await;
        let err = e
            .approve_correction(c3.id, day(15), &person("bert"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stale"), "{err}");
        assert_eq!(
            e.db().payout_by_no(&nos[2]).await.unwrap().unwrap().state,
            "succeeded"
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:in_transit", "EUR")
                .await
                .unwrap(),
            0
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    situation_3_an_old_payout_found_paid_after_the_new_one_was_paid_opens_a_duplicate_discrepancy,
    |app: App| async move {
        let e = &app.engine;
        desk(e).await;
        let (msg, nos) = sent(e, 1).await;
        // Rejected for lack of funds at the bank (not the merchant's account): paid again at once.
        import_text(
            e,
            "s.xml",
            &pain002(&msg, &[(&nos[0], "RJCT", Some("AM04"), None)]),
            None,
            day(1),
        )
        .await;
        let second = e
            .retry_order(&order("W1"), Some("sandbox-api"), day(1), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        apply(e, &second.payout_no, paid("100.00"), day(2))
            .await
            .unwrap();
        // Then the statement shows the first one was paid after all.
        let no = PayoutNo::parse(&nos[0]).unwrap();
        let kind = CorrectionKind::ConfirmSucceeded {
            paid: eur("100.00"),
            bank_reference: "STMT-7".into(),
            value_date: None,
        };
        let c = e
            .propose_correction(
                &no,
                &kind,
                "statement shows both paid",
                "camt053 2026-11-05",
                day(5),
                &person("olga"),
            )
            .await
            .unwrap();
        e.approve_correction(c.id, day(5), &person("bert"))
            .await
            .unwrap();
        let open = e.discrepancies(true).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].direction.as_str(), open[0].amount_minor),
            ("duplicate", 10000)
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            10000,
            "the merchant owes it back"
        );
        let v = e.order_view(&order("W1")).await.unwrap();
        assert_eq!(v.state, "paid");
        assert!(topics(&v).contains(&"discrepancy.opened"));
        // Settled when the merchant refunds it.
        e.resolve_discrepancy(
            open[0].id,
            &Resolution::RefundReceived {
                reference: "SEPA-IN-1".into(),
            },
            "merchant returned the duplicate",
            day(7),
            &person("olga"),
        )
        .await
        .unwrap();
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            0
        );
        assert!(e.discrepancies(true).await.unwrap().is_empty());
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    situation_4_a_bank_paid_a_different_amount_and_the_difference_is_tracked_until_settled,
    |app: App| async move {
        let e = &app.engine;
        desk(e).await;
        funded_merchant(e, "acme", "1000.00").await;
        for (no, amount) in [("W1", "250.00"), ("W2", "100.00")] {
            withdraw(e, "acme", no, amount).await;
            e.create_payout(&order(no), Some("eb-csv"), t0(), &ops())
                .await
                .map(|s| s.into_payout().expect("a payout"))
                .unwrap();
        }
        let (_, bytes) = e
            .create_batch("eb-csv", t0(), &ops())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("PO0000000001") && text.contains("PO0000000002"),
            "{text}"
        );
        let csv = "Payment Reference,Bank Reference,Status,Amount,Currency,Value Date,Reason Code,Reason\n\
               PO0000000001,EB-1,PAID,260.00,EUR,03/11/2026,,\n\
               PO0000000002,EB-2,PAID,90.00,EUR,03/11/2026,,\n";
        let s = import_text(e, "results.csv", csv, Some("eb-csv"), day(1)).await;
        assert_eq!((s.applied, s.exceptions), (2, 0));
        let open = e.discrepancies(true).await.unwrap();
        let dirs: Vec<(&str, i64)> = open
            .iter()
            .map(|d| (d.direction.as_str(), d.amount_minor))
            .collect();
        assert_eq!(dirs, [("overpaid", 1000), ("underpaid", 1000)]);
        for no in ["W1", "W2"] {
            let v = e.order_view(&order(no)).await.unwrap();
            assert_eq!(v.state, "paid");
            assert!(
                topics(&v).contains(&"discrepancy.opened"),
                "the merchant is told: {:?}",
                topics(&v)
            );
        }
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            1000
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:shortfall", "EUR")
                .await
                .unwrap(),
            -1000
        );
        let kinds: Vec<String> = e
            .exceptions(day(1))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.kind)
            .collect();
        assert!(
            kinds.contains(&"discrepancy_overpaid".to_string())
                && kinds.contains(&"discrepancy_underpaid".to_string())
        );

        // Overpaid: written off — proposed by one person, approved by another.
        let over = open[0].id;
        e.resolve_discrepancy(
            over,
            &Resolution::ProposeWriteOff,
            "too small to chase",
            day(2),
            &person("bert"),
        )
        .await
        .unwrap();
        let err = e
            .resolve_discrepancy(
                over,
                &Resolution::ApproveWriteOff,
                "ok",
                day(2),
                &person("bert"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("different person"), "{err}");
        let err = e
            .resolve_discrepancy(
                over,
                &Resolution::ApproveWriteOff,
                "ok",
                day(2),
                &person("olga"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("only approvers"), "{err}");
        let settled = e
            .resolve_discrepancy(
                over,
                &Resolution::ApproveWriteOff,
                "agreed",
                day(2),
                &person("ada"),
            )
            .await
            .unwrap();
        assert_eq!(settled.status, "settled");
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            e.db()
                .balance("platform:EUR:write_offs", "EUR")
                .await
                .unwrap(),
            1000
        );

        // Underpaid: topped up at once, as a new payout of the same order drawn from the shortfall.
        let under = open[1].id;
        let d = e
            .resolve_discrepancy(
                under,
                &Resolution::TopUpNow {
                    channel: Some("sandbox-api".into()),
                },
                "pay what is missing",
                day(2),
                &person("olga"),
            )
            .await
            .unwrap();
        let topup = d.topup_payout_no.clone().unwrap();
        assert_eq!(d.status, "topping_up");
        let p = e.db().payout_by_no(&topup).await.unwrap().unwrap();
        assert_eq!(
            (p.amount_minor, p.funded_from.as_str(), p.state.as_str()),
            (1000, "shortfall", "submitted")
        );
        apply(e, &topup, paid("10.00"), day(3)).await.unwrap();
        assert!(
            e.discrepancies(true).await.unwrap().is_empty(),
            "settled when the top-up is paid"
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:shortfall", "EUR")
                .await
                .unwrap(),
            0
        );
        let v = e.order_view(&order("W2")).await.unwrap();
        assert_eq!((v.state.as_str(), v.payouts.len()), ("paid", 2));
        let history: serde_json::Value =
            serde_json::from_str(&e.discrepancies(false).await.unwrap()[1].history).unwrap();
        assert_eq!(
            history.as_array().unwrap().len(),
            3,
            "opened, top-up created, top-up paid: {history}"
        );
        assert_books_and_audit(e).await;
        let _ = (Money::zero(Currency::Eur), Currency::Eur);
    }
);

both_backends!(
    situation_4_netting_never_makes_a_payout_negative_and_carries_the_rest_over,
    |app: App| async move {
        let e = &app.engine;
        desk(e).await;
        funded_merchant(e, "acme", "2000.00").await;
        // W1: the bank pays 400.00 for 250.00 — the merchant owes 150.00. W2: pays 90.00 for 100.00.
        for (no, amount) in [("W1", "250.00"), ("W2", "100.00")] {
            withdraw(e, "acme", no, amount).await;
            e.create_payout(&order(no), Some("eb-csv"), t0(), &ops())
                .await
                .map(|s| s.into_payout().expect("a payout"))
                .unwrap();
        }
        e.create_batch("eb-csv", t0(), &ops())
            .await
            .unwrap()
            .unwrap();
        let csv = "Payment Reference,Bank Reference,Status,Amount,Currency,Value Date,Reason Code,Reason\n\
               PO0000000001,EB-1,PAID,400.00,EUR,03/11/2026,,\n\
               PO0000000002,EB-2,PAID,90.00,EUR,03/11/2026,,\n";
        import_text(e, "results.csv", csv, Some("eb-csv"), day(1)).await;
        let open = e.discrepancies(true).await.unwrap();
        let (over, under) = (open[0].id, open[1].id);
        e.resolve_discrepancy(
            over,
            &Resolution::NetAgainstNext,
            "deduct from next payouts",
            day(2),
            &person("olga"),
        )
        .await
        .unwrap();
        e.resolve_discrepancy(
            under,
            &Resolution::AddToNext,
            "pay with the next payout",
            day(2),
            &person("olga"),
        )
        .await
        .unwrap();
        // Resolutions that do not fit the direction are refused.
        assert!(e
            .resolve_discrepancy(over, &Resolution::AddToNext, "x", day(2), &person("olga"))
            .await
            .is_err());

        // W3 (100.00): the 10.00 owed is added, and 110.00 is netted — fully: no payout, order paid.
        withdraw(e, "acme", "W3", "100.00").await;
        let started = e
            .create_payout(&order("W3"), Some("sandbox-api"), day(3), &ops())
            .await
            .unwrap();
        assert!(
            matches!(
                started,
                disburse_engine::PayoutStart::SettledByNetting {
                    netted_minor: 11000,
                    ..
                }
            ),
            "{started:?}"
        );
        let v3 = e.order_view(&order("W3")).await.unwrap();
        assert_eq!((v3.state.as_str(), v3.payouts.len()), ("paid", 0));
        assert!(v3
            .audit_events
            .iter()
            .any(|a| a.action == "order.paid_by_netting"));
        let d = &e.discrepancies(false).await.unwrap()[0];
        assert_eq!(
            (d.settled_minor, d.status.as_str()),
            (11000, "netting"),
            "40.00 still to net"
        );

        // W4 (80.00): 40.00 netted, the payout is 40.00; the discrepancy is settled.
        withdraw(e, "acme", "W4", "80.00").await;
        let p4 = e
            .create_payout(&order("W4"), Some("sandbox-api"), day(3), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        assert_eq!(p4.amount_minor, 4000);
        assert!(
            e.discrepancies(true).await.unwrap().is_empty(),
            "both settled"
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:receivable", "EUR")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            e.db()
                .balance("merchant:acme:shortfall", "EUR")
                .await
                .unwrap(),
            0
        );
        // If that payout fails, paying again pays what is still owed: 40.00, not 80.00.
        apply(e, &p4.payout_no, rejected("AM04"), day(4))
            .await
            .unwrap();
        let again = e
            .retry_order(&order("W4"), Some("sandbox-api"), day(5), &ops())
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        assert_eq!(again.amount_minor, 4000);
        apply(e, &again.payout_no, paid("40.00"), day(6))
            .await
            .unwrap();
        assert_eq!(
            e.db()
                .balance("merchant:acme:withdrawing", "EUR")
                .await
                .unwrap(),
            0
        );
        let v4 = e.order_view(&order("W4")).await.unwrap();
        assert!(
            v4.journals.iter().any(|j| j.kind == "discrepancy_settled"),
            "the journal shows the netting"
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(situation_3_an_escalated_payout_the_bank_never_paid_is_failed_and_its_order_cancelled_by_corrections, |app: App| async move {
    let e = &app.engine;
    desk(e).await;
    let (_, nos) = sent(e, 1).await;
    e.sweep(day(10), &ops()).await.unwrap();
    let no = PayoutNo::parse(&nos[0]).unwrap();
    // While the payout is expired the money may still be at the bank: no cancelling yet.
    let err = e.propose_correction(&no, &CorrectionKind::CancelOrder, "merchant withdraws the request", "email", day(11), &person("olga")).await.unwrap_err();
    assert!(err.to_string().contains("live payout"), "{err}");
    // The bank confirms it never paid: failed, by maker and checker.
    let fail = CorrectionKind::ConfirmFailed { reason_code: "NARR".into() };
    let c = e.propose_correction(&no, &fail, "bank confirms it was never executed", "bank letter 2026-11-13", day(11), &person("olga")).await.unwrap();
    e.approve_correction(c.id, day(11), &person("bert")).await.unwrap();
    assert_eq!(e.db().balance("merchant:acme:in_transit", "EUR").await.unwrap(), 0);
    // Then the order is cancelled, also by maker and checker; the money is available again.
    let c = e.propose_correction(&no, &CorrectionKind::CancelOrder, "merchant withdraws the request", "email 2026-11-13", day(12), &person("olga")).await.unwrap();
    let err = e.approve_correction(c.id, day(12), &person("olga")).await.unwrap_err();
    assert!(err.to_string().contains("only approvers"), "{err}");
    e.approve_correction(c.id, day(12), &person("bert")).await.unwrap();
    let v = e.order_view(&order("W1")).await.unwrap();
    assert_eq!(v.state, "cancelled");
    let event = v.audit_events.iter().find(|a| a.action == "order.corrected.cancel_order").unwrap();
    assert_eq!((event.detail["proposed_by"].as_str(), event.detail["approved_by"].as_str()), (Some("olga"), Some("bert")));
    assert_eq!(e.db().balance("merchant:acme:withdrawing", "EUR").await.unwrap(), 0);
    assert_eq!(e.db().balance("merchant:acme:available", "EUR").await.unwrap(), -100000, "all 1000.00 available again");
    assert_books_and_audit(e).await;
});
