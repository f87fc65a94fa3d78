//! Statements and three-way reconciliation (DESIGN §8.3), on SQLite and PostgreSQL: the real
//! camt.053 samples, and statements of our own account as a bank writes them (one debit for a
//! whole batch, a fee, a debit nobody ordered, a gap in the sequence).

mod common;

use common::*;
use disburse_core::correction::Role;
use disburse_core::OperatorName;
use disburse_engine::StatementSummary;

fn samples(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bankfiles/samples")
        .join(name)
}

async fn import(app: &App, path: &std::path::Path, channel: &str) -> StatementSummary {
    app.engine
        .import_statement(path, Some(channel), day(3), &ops())
        .await
        .unwrap()
}

/// One entry of a statement: amount (signed, debit negative), and what identifies it.
struct Line<'a> {
    amount: &'a str,
    debit: bool,
    subfamily: &'a str,
    reference: &'a str,
    end_to_end_id: Option<&'a str>,
    batch_message_id: Option<&'a str>,
}

/// A camt.053.001.08 statement in EUR of our account (the channels' debtor IBAN).
fn statement(seq: u64, day: &str, opening: &str, closing: &str, lines: &[Line]) -> String {
    statement_in("EUR", seq, day, opening, closing, lines)
}

fn statement_in(
    ccy: &str,
    seq: u64,
    day: &str,
    opening: &str,
    closing: &str,
    lines: &[Line],
) -> String {
    let mut entries = String::new();
    for l in lines {
        let dir = if l.debit { "DBIT" } else { "CRDT" };
        let fmly = if l.subfamily == "CHRG" {
            "CCRD"
        } else {
            "ICDT"
        };
        let details = match (l.end_to_end_id, l.batch_message_id) {
            (Some(e2e), _) => format!(
                "<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs><Amt Ccy=\"{ccy}\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd></TxDtls></NtryDtls>",
                l.amount
            ),
            (None, Some(msg)) => format!(
                "<NtryDtls><Btch><MsgId>{msg}</MsgId><NbOfTxs>3</NbOfTxs></Btch></NtryDtls>"
            ),
            (None, None) => String::new(),
        };
        entries.push_str(&format!(
            "<Ntry><Amt Ccy=\"{ccy}\">{}</Amt><CdtDbtInd>{dir}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>{}</AcctSvcrRef>\
             <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{fmly}</Cd><SubFmlyCd>{}</SubFmlyCd></Fmly></Domn></BkTxCd>{details}</Ntry>\n",
            l.amount, l.reference, l.subfamily
        ));
    }
    let bal = |code: &str, amount: &str| {
        format!(
            "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{ccy}\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>STMT-{seq}</MsgId><CreDtTm>{day}T20:00:00</CreDtTm></GrpHdr>\n<Stmt><Id>S{seq}</Id><ElctrncSeqNb>{seq}</ElctrncSeqNb>\
         <FrToDt><FrDtTm>{day}T00:00:00</FrDtTm><ToDtTm>{day}T23:59:59</ToDtTm></FrToDt>\
         <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n{}{}\n{entries}</Stmt></BkToCstmrStmt></Document>\n",
        bal("OPBD", opening),
        bal("CLBD", closing)
    )
}

fn debit<'a>(amount: &'a str, reference: &'a str) -> Line<'a> {
    Line {
        amount,
        debit: true,
        subfamily: "ESCT",
        reference,
        end_to_end_id: None,
        batch_message_id: None,
    }
}

/// Orders of a Myanmar merchant, each paid by the paper bank (mm-paper) in one printed batch:
/// (order number, MMK amount) → the payout numbers.
async fn paper_payouts(e: &disburse_engine::Engine, orders: &[(&str, &str)]) -> Vec<String> {
    use disburse_core::account::{BankAccount, CountryCode, HolderName, LocalAccount};
    use disburse_core::{Currency, Money, OrderNo};
    let yangon = m("yangon");
    e.add_merchant(&yangon, "Yangon Traders", t0(), &ops())
        .await
        .unwrap();
    let account =
        LocalAccount::new(CountryCode::parse("MM").unwrap(), "KBZ0001", "0123456789").unwrap();
    e.set_bank_account(
        &yangon,
        &BankAccount::new(
            HolderName::parse("Yangon Traders").unwrap(),
            account.into(),
            None,
        ),
        t0(),
        &ops(),
    )
    .await
    .unwrap();
    let mmk = |t: &str| Money::parse(t, Currency::Mmk).unwrap();
    e.fund(&yangon, mmk("9000000.00"), None, t0(), &ops())
        .await
        .unwrap();
    let mut nos = Vec::new();
    for (no, amount) in orders {
        e.withdraw(
            &disburse_engine::WithdrawRequest {
                merchant: yangon.clone(),
                order_no: OrderNo::parse(no).unwrap(),
                amount: mmk(amount),
            },
            t0(),
            &ops(),
        )
        .await
        .unwrap();
        let p = e
            .create_payout(&order(no), Some("mm-paper"), t0(), &ops())
            .await
            .unwrap()
            .into_payout()
            .unwrap();
        nos.push(p.payout_no);
    }
    e.create_batch("mm-paper", t0(), &ops())
        .await
        .unwrap()
        .unwrap();
    nos
}

async fn kinds(app: &App) -> Vec<String> {
    let mut k: Vec<String> = app
        .engine
        .exceptions(day(3))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.kind)
        .collect();
    k.sort();
    k
}

both_backends!(
    real_samples_are_read_checked_and_recognised_again,
    |app: App| async move {
        let e = &app.engine;
        let fi = samples("camt053-v02-fi-fkl-statement.xml");
        let s = import(&app, &fi, "sepa-file").await;
        assert_eq!(s.entries, 10);
        assert!(!s.already_imported);
        // It adds up (10,000.00 + 23,075.00 − 9,430.17 = 23,644.83), so no balance exception. Of its
        // four debits, one is the bank's charges (CHRG, 200.00: booked to the channel's fees), three
        // are someone else's payments: money left with no instruction of ours.
        assert!(
            !s.exceptions
                .iter()
                .any(|(k, _)| k == "statement_unbalanced"),
            "{:?}",
            s.exceptions
        );
        assert_eq!(s.by_status.get("unmatched"), Some(&3), "{s:?}");
        assert_eq!(s.by_status.get("fee"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("not_ours"), Some(&6), "{s:?}");
        assert_eq!(
            s.exceptions
                .iter()
                .filter(|(k, _)| k == "unexplained_debit")
                .count(),
            3
        );
        assert_eq!(
            e.db()
                .balance("channel:sepa-file:fees", "EUR")
                .await
                .unwrap(),
            20000
        );
        assert!(s
            .exceptions
            .iter()
            .all(|(_, r)| r.contains("camt053-v02-fi-fkl-statement.xml line ")));
        // The same file again, and the same statement under another message id: already imported.
        assert!(import(&app, &fi, "sepa-file").await.already_imported);
        let dir = disburse_store::testing::temp_dir();
        let text = std::fs::read_to_string(&fi)
            .unwrap()
            .replace("<MsgId>", "<MsgId>RESENT-");
        assert!(
            import(&app, &write(&dir, "again.xml", &text), "sepa-file")
                .await
                .already_imported
        );
        // A real statement that does not add up (and books EUR on a CHF account) is raised.
        let v08 = import(
            &app,
            &samples("camt053-v08-viafintech-example.xml"),
            "sepa-file",
        )
        .await;
        let raised: Vec<&str> = v08.exceptions.iter().map(|(k, _)| k.as_str()).collect();
        assert!(raised.contains(&"statement_unbalanced"), "{raised:?}");
        assert!(raised.contains(&"statement_entry_currency"), "{raised:?}");
        // And the Swiss one, with its returned credit transfers, is read whole.
        let ch = import(
            &app,
            &samples("camt053-v04-ch-statement-with-returned-credit-transfers.xml"),
            "sepa-file",
        )
        .await;
        assert_eq!(ch.entries, 13);
        assert!(
            !ch.exceptions
                .iter()
                .any(|(k, _)| k == "statement_unbalanced"),
            "{:?}",
            ch.exceptions
        );
        // A broken file is refused whole, naming the file and line.
        let broken = &std::fs::read_to_string(&fi).unwrap()[..6000];
        let err = e
            .import_statement(
                &write(&dir, "broken.xml", broken),
                Some("sepa-file"),
                day(3),
                &ops(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("broken.xml"), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    a_day_of_our_account_reconciles_to_the_cent,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 3).await;
        let dir = disburse_store::testing::temp_dir();
        // The bank said paid (camt.054) for the three payouts...
        for no in &nos {
            apply(e, no, paid("100.00"), day(2)).await.unwrap();
        }
        // ...and its statement books them as ONE debit for the batch, one fee, and one debit that
        // nobody ordered.
        let text = statement(
            1,
            "2026-11-03",
            "10000.00",
            "9487.50",
            &[
                Line {
                    batch_message_id: Some(&msg),
                    ..debit("300.00", "BATCH-DEBIT")
                },
                Line {
                    subfamily: "CHRG",
                    ..debit("2.50", "FEE-1")
                },
                debit("210.00", "WHO-1"),
            ],
        );
        let s = import(&app, &write(&dir, "stmt1.xml", &text), "sepa-file").await;
        assert_eq!(s.by_status.get("matched"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("fee"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("unmatched"), Some(&1), "{s:?}");
        assert_eq!(s.exceptions.len(), 1, "{:?}", s.exceptions);
        assert_eq!(s.exceptions[0].0, "unexplained_debit");
        assert!(s.exceptions[0].1.contains("210.00"), "{:?}", s.exceptions);
        // The fee is the channel's expense, not a payout's.
        assert_eq!(
            e.db()
                .balance("channel:sepa-file:fees", "EUR")
                .await
                .unwrap(),
            250
        );
        for no in &nos {
            assert_eq!(
                e.db()
                    .payout_by_no(no)
                    .await
                    .unwrap()
                    .unwrap()
                    .paid_amount_minor,
                Some(10000)
            );
        }
        let r = e.reconcile("sepa-file", day(10)).await.unwrap();
        assert_eq!(r.matched, 1);
        assert_eq!(r.fees_minor, 250);
        assert_eq!(r.unmatched.len(), 1);
        assert!(
            r.not_on_any_statement.is_empty(),
            "the batch debit covers all three: {r:?}"
        );
        let bvb = r.books_vs_bank.unwrap();
        // The bank moved −512.50; our books −302.50 (three payouts, the fee); the 210.00 nobody
        // ordered is the whole difference.
        assert_eq!(
            (bvb.bank_movement_minor, bvb.books_movement_minor),
            (-51250, -30250)
        );
        assert_eq!(bvb.explained_by_statement_only_minor, -21000);
        assert_eq!(bvb.unexplained_minor, 0);
        assert!(kinds(&app).await.contains(&"unexplained_debit".to_string()));
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    continuity_breaks_name_both_statements,
    |app: App| async move {
        let dir = disburse_store::testing::temp_dir();
        let first = statement(7, "2026-11-03", "1000.00", "1000.00", &[]);
        let s = import(&app, &write(&dir, "s7.xml", &first), "sepa-file").await;
        assert!(s.exceptions.is_empty(), "{:?}", s.exceptions);
        // Statement 9 (8 is missing) opens at another balance than 7 closed.
        let third = statement(9, "2026-11-05", "900.00", "900.00", &[]);
        let s = import(&app, &write(&dir, "s9.xml", &third), "sepa-file").await;
        let by_kind = |k: &str| {
            s.exceptions
                .iter()
                .find(|(kind, _)| kind == k)
                .map(|(_, r)| r.clone())
        };
        let gap = by_kind("statement_gap").expect("a gap");
        assert!(
            gap.contains("s9.xml") && gap.contains("s7.xml") && gap.contains("8..8"),
            "{gap}"
        );
        let brk = by_kind("statement_break").expect("a break");
        assert!(
            brk.contains("900.00") && brk.contains("1000.00") && brk.contains("s7.xml"),
            "{brk}"
        );
        let r = app.engine.reconcile("sepa-file", day(10)).await.unwrap();
        assert_eq!(r.statements.len(), 2);
        assert!(r.open_exceptions.iter().any(|(k, _)| k == "statement_gap"));
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    debits_for_failed_payouts_and_weak_matches_go_to_a_person,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = sent(e, 3).await;
        apply(e, &nos[0], rejected("AC04"), day(2)).await.unwrap();
        let dir = disburse_store::testing::temp_dir();
        let text = statement(
            1,
            "2026-11-03",
            "1000.00",
            "600.00",
            &[
                // A debit naming a payout we hold failed.
                Line {
                    end_to_end_id: Some(&nos[0]),
                    ..debit("100.00", "R1")
                },
                // A debit of exactly a batch's control sum, with no reference: only suggested.
                debit("300.00", "R2"),
            ],
        );
        let _ = msg;
        let s = import(&app, &write(&dir, "s.xml", &text), "sepa-file").await;
        assert!(
            s.exceptions
                .iter()
                .any(|(k, _)| k == "debit_for_failed_payout"),
            "{:?}",
            s.exceptions
        );
        assert_eq!(s.by_status.get("suggested"), Some(&1), "{s:?}");
        let r = e.reconcile("sepa-file", day(3)).await.unwrap();
        let suggested = r.suggested[0].entry;
        // A person decides: a viewer may not; an operator confirms it.
        let ada = OperatorName::parse("ada").unwrap();
        let vic = OperatorName::parse("vic").unwrap();
        let olga = OperatorName::parse("olga").unwrap();
        e.add_operator(&ada, Role::Admin, t0(), &ada).await.unwrap();
        e.add_operator(&vic, Role::Viewer, t0(), &ada)
            .await
            .unwrap();
        e.add_operator(&olga, Role::Operator, t0(), &ada)
            .await
            .unwrap();
        assert!(e
            .decide_statement_entry(suggested, true, "looked", day(3), &vic)
            .await
            .is_err());
        let row = e
            .decide_statement_entry(
                suggested,
                true,
                "the bank confirms it is batch 1",
                day(3),
                &olga,
            )
            .await
            .unwrap();
        assert_eq!(row.match_status, "matched");
        assert_eq!(row.decided_by.as_deref(), Some("olga"));
        assert!(
            e.decide_statement_entry(suggested, false, "again", day(3), &olga)
                .await
                .is_err(),
            "decided once"
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// A failures-only bank never says "paid"; its statement is the only proof that a silent payout
// was paid.
both_backends!(
    a_presumed_paid_paper_payout_is_confirmed_by_its_statement,
    |app: App| async move {
        let e = &app.engine;
        let no = paper_payouts(e, &[("P1", "2500000.00")]).await.remove(0);
        let swept = e.sweep(day(20), &ops()).await.unwrap();
        assert_eq!(swept.presumed_succeeded, vec![no.clone()]);
        let row = e.db().payout_by_no(&no).await.unwrap().unwrap();
        assert_eq!(
            (row.state.as_str(), row.paid_basis.as_deref()),
            ("succeeded", Some("assumed"))
        );
        let dir = disburse_store::testing::temp_dir();
        let text = statement_in(
            "MMK",
            1,
            "2026-11-05",
            "90000000.00",
            "87500000.00",
            &[Line {
                end_to_end_id: Some(&no),
                ..debit("2500000.00", "P")
            }],
        );
        let s = import(&app, &write(&dir, "paper.xml", &text), "mm-paper").await;
        assert_eq!(s.by_status.get("matched"), Some(&1), "{s:?}");
        assert!(s.exceptions.is_empty(), "{:?}", s.exceptions);
        let r = e.reconcile("mm-paper", day(21)).await.unwrap();
        assert!(
            r.not_on_any_statement.is_empty(),
            "the statement proves it: {r:?}"
        );
        assert_eq!(r.books_vs_bank.unwrap().unexplained_minor, 0);
        std::fs::remove_dir_all(dir).ok();
    }
);

/// The English bank's CSV statement (profile `englishbank-statement`, the layout its file in
/// `crates/formats/profiles` shows): one line per movement with the balance after it.
fn englishbank_statement(
    number: u64,
    opening_minor: i64,
    lines: &[(&str, &str, &str, i64)],
) -> String {
    let mut text = String::from(
        "Date,Value Date,Account,Statement No,Type,Payment Reference,Bank Reference,Batch Reference,Paid Out,Paid In,Balance\r\n",
    );
    let mut balance = opening_minor;
    let dec = |m: i64| format!("{}.{:02}", m / 100, m % 100);
    for (i, (kind, e2e, batch, signed_minor)) in lines.iter().enumerate() {
        balance += signed_minor;
        let (out, inn) = if *signed_minor < 0 {
            (dec(-signed_minor), String::new())
        } else {
            (String::new(), dec(*signed_minor))
        };
        text.push_str(&format!(
            "03/11/2026,03/11/2026,DE89370400440532013000,{number},{kind},{e2e},EB-{number}-{i},{batch},{out},{inn},{}\r\n",
            dec(balance)
        ));
    }
    text
}

both_backends!(
    a_csv_statement_books_a_batch_as_one_debit_and_the_fee_on_its_own,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        let mut nos = Vec::new();
        for i in 1..=3 {
            withdraw(e, "acme", &format!("W{i}"), "100.00").await;
            let p = e
                .create_payout(&order(&format!("W{i}")), Some("eb-csv"), t0(), &ops())
                .await
                .unwrap();
            nos.push(p.into_payout().unwrap().payout_no);
        }
        let (batch, _) = e
            .create_batch("eb-csv", t0(), &ops())
            .await
            .unwrap()
            .unwrap();
        for no in &nos {
            apply(e, no, paid("100.00"), day(2)).await.unwrap();
        }
        let dir = disburse_store::testing::temp_dir();
        // ONE debit of 300.00 for the batch, the bank's 2.50, and 210.00 nobody ordered.
        let text = englishbank_statement(
            1,
            1_000_000,
            &[
                ("BATCH", "", &batch.message_id, -30_000),
                ("CHARGE", "", "", -250),
                ("PAYMENT", "", "", -21_000),
                ("RECEIPT", "", "", 5_000),
            ],
        );
        let s = import(&app, &write(&dir, "eb-1.csv", &text), "eb-csv").await;
        assert_eq!(s.entries, 4);
        assert_eq!(s.by_status.get("matched"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("fee"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("unmatched"), Some(&1), "{s:?}");
        assert_eq!(s.by_status.get("not_ours"), Some(&1), "{s:?}");
        let kinds_raised: Vec<&str> = s.exceptions.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds_raised,
            vec!["unexplained_debit"],
            "{:?}",
            s.exceptions
        );
        assert!(
            s.exceptions[0].1.contains("eb-1.csv line 4"),
            "{:?}",
            s.exceptions
        );
        assert!(s.exceptions[0].1.contains("210.00"), "{:?}", s.exceptions);
        assert_eq!(s.exceptions_total, 1);
        assert_eq!(
            e.db().balance("channel:eb-csv:fees", "EUR").await.unwrap(),
            250,
            "the fee is the channel's expense, never a payout's"
        );
        let r = e.reconcile("eb-csv", day(3)).await.unwrap();
        assert_eq!(r.matched, 1);
        assert_eq!(r.statements.len(), 1);
        assert_eq!(r.statements[0].opening_minor, 1_000_000);
        assert_eq!(
            r.statements[0].closing_minor,
            1_000_000 - 30_000 - 250 - 21_000 + 5_000
        );

        // The same file again: already imported, nothing added.
        assert!(
            import(&app, &write(&dir, "eb-1-again.csv", &text), "eb-csv")
                .await
                .already_imported
        );
        // A statement whose balance column breaks is refused whole, naming file, line and field.
        let statements_before = e.db().count("statements").await.unwrap();
        let broken = englishbank_statement(
            2,
            953_750,
            &[("PAYMENT", "", "", -100), ("PAYMENT", "", "", -100)],
        )
        .replacen("9535.50\r\n", "9999.99\r\n", 1);
        let err = e
            .import_statement(
                &write(&dir, "eb-broken.csv", &broken),
                Some("eb-csv"),
                day(3),
                &ops(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eb-broken.csv") && err.contains("line 3") && err.contains("balance"),
            "{err}"
        );
        assert_eq!(e.db().count("statements").await.unwrap(), statements_before);
        // Statement 3 after 1: statement 2 is missing, and the exception names both.
        let next = englishbank_statement(3, 953_750, &[("CHARGE", "", "", -100)]);
        let s3 = import(&app, &write(&dir, "eb-3.csv", &next), "eb-csv").await;
        let gap = s3
            .exceptions
            .iter()
            .find(|(k, _)| k == "statement_gap")
            .expect("a gap");
        assert!(
            gap.1.contains("eb-3.csv") && gap.1.contains("eb-1.csv"),
            "{gap:?}"
        );
        assert!(
            !s3.exceptions.iter().any(|(k, _)| k == "statement_break"),
            "{:?}",
            s3.exceptions
        );
        // A CSV statement needs its channel: the layout says nothing of which bank it is.
        let err = e
            .import_statement(&write(&dir, "eb-4.csv", &next), None, day(3), &ops())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("--channel"), "{err}");
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// The Myanmar bank reports only failures; its CSV statement shows what it paid. A silent payout
// on it is confirmed; one it does not show is listed as not on any statement once the grace
// period has passed.
both_backends!(
    presumed_paid_paper_payouts_are_confirmed_or_not_by_the_csv_statement,
    |app: App| async move {
        let e = &app.engine;
        let nos = paper_payouts(e, &[("P1", "2500000.00"), ("P2", "1000000.00")]).await;
        let swept = e.sweep(day(20), &ops()).await.unwrap();
        assert_eq!(swept.presumed_succeeded.len(), 2, "{swept:?}");
        // The bank's statement: P1's 2,500,000.00 left the account; of P2 it says nothing.
        let text = format!(
            "Txn Date,Txn No,Reference,Amount,Balance,Statement\n\
             05-11-2026,MB-1,{},-2500000.00,\"87,500,000.00\",1\n",
            nos[0]
        );
        let dir = disburse_store::testing::temp_dir();
        let s = import(&app, &write(&dir, "mm-1.csv", &text), "mm-paper").await;
        assert_eq!(s.by_status.get("matched"), Some(&1), "{s:?}");
        assert!(s.exceptions.is_empty(), "{:?}", s.exceptions);
        // Three business days after it was presumed paid (the grace period), P2 is listed.
        let early = e.reconcile("mm-paper", day(21)).await.unwrap();
        assert!(
            early.not_on_any_statement.is_empty(),
            "inside the grace period: {early:?}"
        );
        let r = e.reconcile("mm-paper", day(27)).await.unwrap();
        let missing: Vec<&str> = r
            .not_on_any_statement
            .iter()
            .map(|p| p.payout_no.as_str())
            .collect();
        assert_eq!(
            missing,
            vec![nos[1].as_str()],
            "P1 is proven paid, P2 is not: {r:?}"
        );
        let b = r.books_vs_bank.expect("books against the bank");
        assert_eq!(
            b.explained_by_books_only_minor, 100_000_000,
            "P2's 1,000,000.00 is in our books only: {b:?}"
        );
        assert_eq!(b.unexplained_minor, 0, "{b:?}");
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);
