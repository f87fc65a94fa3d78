//! Bank answers as banks send them (DESIGN §8.1), on SQLite and PostgreSQL.
//!
//! The expected outcomes come from the ISO 20022 message definitions, not from our sandbox: a
//! pain.002's `OrgnlTxRef/Amt/InstdAmt` echoes the amount *instructed*; what the bank moved is the
//! amount a camt.054 books; the most specific status wins; a line that contradicts the payout is
//! never applied.

mod common;

use common::*;
use disburse_core::correction::{CorrectionKind, Role};
use disburse_core::{OperatorName, PayoutNo};
use disburse_engine::{EngineError, ImportSummary};
use disburse_store::{Claim, DiscrepancyRow, PayoutRow};

async fn import(
    app: &App,
    path: &std::path::Path,
    channel: Option<&str>,
) -> disburse_engine::Result<ImportSummary> {
    app.engine
        .import_results(path, channel, day(2), &ops(), &|_, _| {})
        .await
}

/// One booked entry of a camt.054.001.08, as banks write them: the entry amount, direction and
/// status, the bank's reference, and one TxDtls with the end-to-end id, the amount booked for the
/// transaction and the instructed amount.
struct Booking<'a> {
    e2e: &'a str,
    amount: &'a str,
    ccy: &'a str,
    credit: bool,
    instructed: Option<&'a str>,
    reference: &'a str,
    return_code: Option<&'a str>,
}

fn camt054(bookings: &[Booking]) -> String {
    let mut entries = String::new();
    for b in bookings {
        let (dir, sub) = if b.credit {
            ("CRDT", "RRTN")
        } else {
            ("DBIT", "ESCT")
        };
        let code = format!(
            "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>"
        );
        let instructed = b
            .instructed
            .map(|i| {
                format!(
                    "<AmtDtls><InstdAmt><Amt Ccy=\"{}\">{i}</Amt></InstdAmt></AmtDtls>",
                    b.ccy
                )
            })
            .unwrap_or_default();
        let rtr = b
            .return_code
            .map(|c| format!("<RtrInf><Rsn><Cd>{c}</Cd></Rsn></RtrInf>"))
            .unwrap_or_default();
        entries.push_str(&format!(
            "<Ntry><Amt Ccy=\"{ccy}\">{amt}</Amt><CdtDbtInd>{dir}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <BookgDt><Dt>2026-11-03</Dt></BookgDt><ValDt><Dt>2026-11-03</Dt></ValDt>\
             <AcctSvcrRef>{r}</AcctSvcrRef>{code}<NtryDtls><TxDtls><Refs><AcctSvcrRef>{r}</AcctSvcrRef>\
             <EndToEndId>{e2e}</EndToEndId></Refs><Amt Ccy=\"{ccy}\">{amt}</Amt><CdtDbtInd>{dir}</CdtDbtInd>\
             {instructed}{code}{rtr}</TxDtls></NtryDtls></Ntry>\n",
            ccy = b.ccy,
            amt = b.amount,
            r = b.reference,
            e2e = b.e2e,
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\">\
         <BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>N1</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>\
         <Ntfctn><Id>N1</Id><CreDtTm>2026-11-03T10:00:00</CreDtTm><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n\
         {entries}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n"
    )
}

fn debit<'a>(e2e: &'a str, amount: &'a str, instructed: &'a str) -> Booking<'a> {
    Booking {
        e2e,
        amount,
        ccy: "EUR",
        credit: false,
        instructed: Some(instructed),
        reference: "BANKREF1",
        return_code: None,
    }
}

async fn payout(app: &App, no: &str) -> PayoutRow {
    app.engine.db().payout_by_no(no).await.unwrap().unwrap()
}

async fn open_discrepancies(app: &App) -> Vec<DiscrepancyRow> {
    app.engine.discrepancies(true).await.unwrap()
}

async fn exception_kinds(app: &App) -> Vec<String> {
    let mut kinds: Vec<String> = app
        .engine
        .exceptions(day(2))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.kind)
        .collect();
    kinds.sort();
    kinds
}

async fn outbox_topics(app: &App) -> Vec<String> {
    app.engine
        .db()
        .outbox_of_merchant("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.topic)
        .collect()
}

/// Issue case 1, in the order given: the ACSC pays in full as assumed, the camt.054 books 99.50
/// and decides; in the other order the ACSC changes nothing. Either way: succeeded, paid 99.50,
/// an open underpayment of 0.50 the merchant is told of, our bank account −99.50, no conflict.
async fn booked_amount_decides(app: App, camt_first: bool) {
    let e = &app.engine;
    let (msg, nos) = sent(e, 1).await;
    let no = &nos[0];
    let dir = disburse_store::testing::temp_dir();
    let status = write(
        &dir,
        "status.xml",
        &pain002(&msg, &[(no, "ACSC", None, Some("100.00"))]),
    );
    let booking = write(&dir, "camt.xml", &camt054(&[debit(no, "99.50", "100.00")]));
    let (first, second) = if camt_first {
        (&booking, &status)
    } else {
        (&status, &booking)
    };
    let a = import(&app, first, None).await.unwrap();
    assert_eq!((a.applied, a.exceptions), (1, 0), "{a:?}");
    let b = import(&app, second, None).await.unwrap();
    assert_eq!(b.exceptions, 0, "{b:?}");
    let p = payout(&app, no).await;
    assert_eq!(p.state, "succeeded");
    assert_eq!(p.paid_amount_minor, Some(9950));
    assert_eq!(p.paid_basis.as_deref(), Some("booked"));
    let open = open_discrepancies(&app).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].direction.as_str(), open[0].amount_minor),
        ("underpaid", 50)
    );
    assert_eq!(
        e.db()
            .balance("channel:sepa-file:bank", "EUR")
            .await
            .unwrap(),
        -9950,
        "our bank account moved what the bank booked"
    );
    assert_eq!(
        e.db()
            .balance("merchant:acme:shortfall", "EUR")
            .await
            .unwrap(),
        -50,
        "we owe the merchant the 0.50"
    );
    let topics = outbox_topics(&app).await;
    assert_eq!(
        topics.iter().filter(|t| *t == "order.paid").count(),
        1,
        "told once that it was paid: {topics:?}"
    );
    assert!(
        topics.iter().any(|t| t == "discrepancy.opened"),
        "{topics:?}"
    );
    let kinds = exception_kinds(&app).await;
    assert!(!kinds.iter().any(|k| k == "conflict"), "{kinds:?}");
    assert_books_and_audit(e).await;
    std::fs::remove_dir_all(dir).ok();
}

both_backends!(
    pain002_acsc_then_camt054_books_what_the_bank_moved,
    |app: App| async move {
        booked_amount_decides(app, false).await;
    }
);

both_backends!(
    camt054_then_pain002_acsc_books_what_the_bank_moved,
    |app: App| async move {
        booked_amount_decides(app, true).await;
    }
);

both_backends!(
    a_second_different_booking_is_a_conflict_raised_once,
    |app: App| async move {
        let e = &app.engine;
        let (_, nos) = sent(e, 1).await;
        let no = &nos[0];
        let dir = disburse_store::testing::temp_dir();
        let one = write(&dir, "c1.xml", &camt054(&[debit(no, "100.00", "100.00")]));
        import(&app, &one, None).await.unwrap();
        // The bank then books another amount, and re-sends that report (other bytes, same fact).
        let other = camt054(&[debit(no, "90.00", "100.00")]);
        let two = write(&dir, "c2.xml", &other);
        let three = write(
            &dir,
            "c3.xml",
            &other.replace("<MsgId>N1</MsgId>", "<MsgId>N2</MsgId>"),
        );
        let s2 = import(&app, &two, None).await.unwrap();
        assert_eq!(s2.exceptions, 1, "{s2:?}");
        import(&app, &three, None).await.unwrap();
        let kinds = exception_kinds(&app).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "conflict").count(),
            1,
            "the same fact raised again opens no second exception: {kinds:?}"
        );
        assert_eq!(payout(&app, no).await.paid_amount_minor, Some(10000));
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// Issue case 2: GrpSts RJCT and PmtInfSts RJCT, then TxSts RJCT AC01 for one transaction. The
// transaction's own status wins (AC01, account flagged); a payout of the batch the report does
// not list individually is rejected by the group status.
both_backends!(the_most_specific_status_wins, |app: App| async move {
    let e = &app.engine;
    let (msg, nos) = sent(e, 2).await;
    let dir = disburse_store::testing::temp_dir();
    let text = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>S1</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{msg}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId><GrpSts>RJCT</GrpSts></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{msg}</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>
<TxInfAndSts><OrgnlEndToEndId>{no}</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf></TxInfAndSts>
</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>
"#,
        no = nos[0]
    );
    let s = import(&app, &write(&dir, "rjct.xml", &text), None)
        .await
        .unwrap();
    assert_eq!((s.applied, s.exceptions), (2, 0), "{s:?}");
    let own = payout(&app, &nos[0]).await;
    assert_eq!(
        (own.state.as_str(), own.reason_code.as_deref()),
        ("failed", Some("AC01")),
        "the transaction's own reason is kept"
    );
    let merchant = e.db().merchant("acme").await.unwrap().unwrap();
    assert_eq!(
        merchant.account_status, "needs_update",
        "AC01 flags the account"
    );
    let by_group = payout(&app, &nos[1]).await;
    assert_eq!(
        (by_group.state.as_str(), by_group.reason_code.as_deref()),
        ("failed", Some("NARR"))
    );
    assert_books_and_audit(e).await;
    std::fs::remove_dir_all(dir).ok();
});

// Issue case 3: answers in another currency, for another instructed amount, of another channel
// or for more than was paid are exceptions, never applied.
both_backends!(
    answers_that_contradict_the_payout_are_never_applied,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 3).await;
        let dir = disburse_store::testing::temp_dir();
        let before = snapshot(e).await;
        // A rejection echoing USD 999.00 for a EUR 100.00 payout.
        let usd = pain002(&msg, &[(&nos[0], "RJCT", Some("AC01"), Some("999.00"))])
            .replace("Ccy=\"EUR\"", "Ccy=\"USD\"");
        // A rejection echoing another instructed amount in the right currency.
        let other_amount = pain002(&msg, &[(&nos[1], "RJCT", Some("AC01"), Some("999.00"))]);
        // A status report for another message than the one the payout was sent in.
        let other_message = pain002("DSB-OTHER-1", &[(&nos[2], "RJCT", Some("AC01"), None)]);
        for (name, text) in [
            ("usd.xml", usd),
            ("amount.xml", other_amount),
            ("message.xml", other_message),
        ] {
            let s = import(&app, &write(&dir, name, &text), None).await.unwrap();
            assert_eq!((s.applied, s.exceptions), (0, 1), "{name}: {s:?}");
        }
        // A file of another channel, though it names our payout.
        let ok = pain002(&msg, &[(&nos[0], "ACSC", None, Some("100.00"))]);
        let s = import(&app, &write(&dir, "eb.xml", &ok), Some("eb-csv"))
            .await
            .unwrap();
        assert_eq!((s.applied, s.exceptions), (0, 1), "{s:?}");
        assert_eq!(
            snapshot(e).await[..3],
            before[..3],
            "no payout, journal or line changed"
        );
        for no in &nos {
            assert_eq!(payout(&app, no).await.state, "submitted");
        }
        let kinds = exception_kinds(&app).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "contradiction").count(),
            4,
            "{kinds:?}"
        );
        let items = e.exceptions(day(2)).await.unwrap();
        assert!(items.iter().all(|i| i.kind != "contradiction"
            || i.source.as_deref().is_some_and(|s| s.contains(" line "))));

        // Paid, then a return in USD, then one of more than was paid: both refused.
        let paid = write(
            &dir,
            "paid.xml",
            &camt054(&[debit(&nos[0], "100.00", "100.00")]),
        );
        import(&app, &paid, None).await.unwrap();
        for (name, ccy, amount) in [
            ("usd-return.xml", "USD", "5.00"),
            ("big-return.xml", "EUR", "100.01"),
        ] {
            let text = camt054(&[Booking {
                e2e: &nos[0],
                amount,
                ccy,
                credit: true,
                instructed: None,
                reference: "RET1",
                return_code: Some("AC04"),
            }]);
            let s = import(&app, &write(&dir, name, &text), None).await.unwrap();
            assert_eq!((s.applied, s.exceptions), (0, 1), "{name}: {s:?}");
        }
        let p = payout(&app, &nos[0]).await;
        assert_eq!(
            (p.state.as_str(), p.paid_amount_minor),
            ("succeeded", Some(10000))
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// A partial return is a return of that amount: the payout stays paid at what remains, and what
// came back is owed to the merchant and tracked as a discrepancy.
both_backends!(
    a_partial_return_is_a_return_of_that_amount,
    |app: App| async move {
        let e = &app.engine;
        let (_, nos) = sent(e, 1).await;
        let no = &nos[0];
        let dir = disburse_store::testing::temp_dir();
        import(
            &app,
            &write(&dir, "paid.xml", &camt054(&[debit(no, "100.00", "100.00")])),
            None,
        )
        .await
        .unwrap();
        let back = camt054(&[Booking {
            e2e: no,
            amount: "30.00",
            ccy: "EUR",
            credit: true,
            instructed: None,
            reference: "RET1",
            return_code: Some("AC04"),
        }]);
        let s = import(&app, &write(&dir, "back.xml", &back), None)
            .await
            .unwrap();
        assert_eq!((s.applied, s.exceptions), (1, 0), "{s:?}");
        let p = payout(&app, no).await;
        assert_eq!(
            (p.state.as_str(), p.paid_amount_minor),
            ("succeeded", Some(7000))
        );
        assert_eq!(
            e.db()
                .balance("channel:sepa-file:bank", "EUR")
                .await
                .unwrap(),
            -7000
        );
        let open = open_discrepancies(&app).await;
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].direction.as_str(), open[0].amount_minor),
            ("underpaid", 3000)
        );
        assert!(outbox_topics(&app)
            .await
            .iter()
            .any(|t| t == "payout.partially_returned"));
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// Issue case 6: an unknown status, a missing one and a NUL byte are exceptions naming file,
// line and field, never "unchanged".
both_backends!(
    unknown_and_empty_statuses_are_exceptions,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 2).await;
        let dir = disburse_store::testing::temp_dir();
        let acsx = pain002(&msg, &[(&nos[0], "ACSX", None, None)]);
        let missing =
            pain002(&msg, &[(&nos[1], "ACSC", None, None)]).replace("<TxSts>ACSC</TxSts>", "");
        let nul = pain002(&msg, &[(&nos[1], "ACSC", None, None)])
            .replace("<TxSts>ACSC</TxSts>", "<TxSts>AC\u{0}SC</TxSts>");
        for (name, text) in [
            ("acsx.xml", acsx),
            ("missing.xml", missing),
            ("nul.xml", nul),
        ] {
            let s = import(&app, &write(&dir, name, &text), None).await.unwrap();
            assert_eq!(
                (s.applied, s.unchanged, s.exceptions),
                (0, 0, 1),
                "{name}: {s:?}"
            );
            let items = e.exceptions(day(2)).await.unwrap();
            let item = items
                .iter()
                .find(|i| {
                    i.kind == "unrecognised_status"
                        && i.source.as_deref().is_some_and(|s| s.starts_with(name))
                })
                .unwrap_or_else(|| panic!("{name}: {items:?}"));
            assert!(
                item.reason.contains("TxSts") && item.reason.contains(" line "),
                "{item:?}"
            );
        }
        for no in &nos {
            assert_eq!(payout(&app, no).await.state, "submitted");
        }
        std::fs::remove_dir_all(dir).ok();
    }
);

// Issue case 7: an amount beyond the channel's bound is not believed (a bank result and a
// correction alike), and the balances stay summable.
both_backends!(
    amounts_beyond_the_bound_go_to_a_person,
    |app: App| async move {
        let e = &app.engine;
        let (_, nos) = sent(e, 2).await;
        let dir = disburse_store::testing::temp_dir();
        let huge = camt054(&[debit(&nos[0], "92233720368547758.07", "100.00")]);
        let s = import(&app, &write(&dir, "huge.xml", &huge), None)
            .await
            .unwrap();
        assert_eq!((s.applied, s.exceptions), (0, 1), "{s:?}");
        assert!(exception_kinds(&app)
            .await
            .iter()
            .any(|k| k == "out_of_bounds"));
        let twice = camt054(&[debit(&nos[1], "200.01", "100.00")]);
        let s = import(&app, &write(&dir, "twice.xml", &twice), None)
            .await
            .unwrap();
        assert_eq!((s.applied, s.exceptions), (0, 1), "just over 2x: {s:?}");
        assert_eq!(payout(&app, &nos[0]).await.state, "submitted");

        // A correction beyond the bound is refused at proposal.
        let ada = OperatorName::parse("ada").unwrap();
        e.add_operator(&ada, Role::Admin, t0(), &ada).await.unwrap();
        let err = e
            .propose_correction(
                &PayoutNo::parse(&nos[0]).unwrap(),
                &CorrectionKind::ConfirmSucceeded {
                    paid: disburse_core::Money::from_minor(i64::MAX, disburse_core::Currency::Eur),
                    bank_reference: "X".into(),
                    value_date: None,
                },
                "bank says so",
                "statement",
                day(3),
                &ada,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not believed"), "{err}");
        assert!(e.db().balances().await.is_ok());
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// Issue case 5: a file being imported is claimed; a second importer is told who holds it; a
// lapsed claim is taken over and the file imported exactly once.
both_backends!(
    one_importer_at_a_time_and_a_lapsed_claim_is_taken_over,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 1).await;
        let dir = disburse_store::testing::temp_dir();
        let text = pain002(&msg, &[(&nos[0], "ACSC", None, Some("100.00"))]);
        let path = write(&dir, "status.xml", &text);
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        let now = chrono::Utc::now();
        // Another live importer, on another machine, holds it.
        let claim = e
            .db()
            .claim_import(
                &sha,
                "other-host:4242:1",
                now,
                now + chrono::Duration::minutes(5),
            )
            .await
            .unwrap();
        assert_eq!(claim, Claim::Taken { took_over: None });
        let err = import(&app, &path, None).await.unwrap_err();
        assert!(matches!(err, EngineError::Busy(_)), "{err}");
        assert!(err.to_string().contains("other-host:4242:1"), "{err}");
        assert_eq!(payout(&app, &nos[0]).await.state, "submitted");
        // Its claim lapses (it stopped renewing): the next import takes over and finishes.
        e.db()
            .release_import_claim(&sha, "other-host:4242:1")
            .await
            .unwrap();
        let past = now - chrono::Duration::minutes(10);
        e.db()
            .claim_import(
                &sha,
                "other-host:4242:1",
                past,
                past + chrono::Duration::minutes(5),
            )
            .await
            .unwrap();
        let s = import(&app, &path, None).await.unwrap();
        assert_eq!(s.took_over_from.as_deref(), Some("other-host:4242:1"));
        assert_eq!(s.applied, 1);
        // Two importers at once: exactly one applies it, the other is told it is busy or that it
        // is already imported; never applied twice.
        let (msg2, no2) = one_more_batch(e).await;
        let text2 = pain002(&msg2, &[(&no2, "ACSC", None, Some("100.00"))]);
        let path2 = write(&dir, "status2.xml", &text2);
        let other = app.second_engine().await;
        let quiet = |_: u64, _: u64| {};
        let actor = ops();
        let (a, b) = tokio::join!(
            e.import_results(&path2, None, day(2), &actor, &quiet),
            other.import_results(&path2, None, day(2), &actor, &quiet)
        );
        let applied: u64 = [&a, &b]
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|s| !s.already_imported)
            .map(|s| s.applied)
            .sum();
        assert_eq!(applied, 1, "{a:?} {b:?}");
        for r in [&a, &b] {
            if let Err(err) = r {
                assert!(matches!(err, EngineError::Busy(_)), "{err}");
            }
        }
        assert_eq!(
            e.db()
                .count_where("journals", "kind = 'payout_succeeded'")
                .await
                .unwrap(),
            2
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

/// One more order and payout, sent in a batch of its own: (message id, payout number).
async fn one_more_batch(e: &disburse_engine::Engine) -> (String, String) {
    withdraw(e, "acme", "WX", "100.00").await;
    let p = e
        .create_payout(&order("WX"), None, t0(), &ops())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    let (batch, _) = e
        .create_batch("sepa-file", t0(), &ops())
        .await
        .unwrap()
        .unwrap();
    (batch.message_id, p.payout_no)
}
