//! DESIGN §5.3: audit events are append-only and hash-chained, and `verify` finds any row changed
//! or removed behind the system's back. Each tampering is plain SQL on a fresh database holding
//! the same small history, on SQLite and PostgreSQL.

mod common;

use common::*;
use disburse_core::{OrderNo, PayoutNo};
use disburse_engine::WithdrawRequest;
use disburse_store::testing::TestBackend;
use disburse_store::{Bind, JournalLineRow, JournalRow};

/// What the history wrote, named so a tampering and its expected finding can point at it.
struct History {
    /// `{name}` → value, substituted into the SQL and the expected finding.
    names: Vec<(&'static str, String)>,
}

impl History {
    fn fill(&self, template: &str) -> String {
        let mut out = template.to_string();
        for (name, value) in &self.names {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        assert!(
            !out.contains('{'),
            "unknown placeholder left in {template:?}: {out:?}"
        );
        out
    }
}

/// The sequence number of the only audit event with this action and subject.
async fn seq_of(app: &App, action: &str, subject: &str) -> i64 {
    let events = app
        .engine
        .db()
        .audit_events_of(&[subject.to_string()])
        .await
        .unwrap();
    let found: Vec<i64> = events
        .iter()
        .filter(|e| e.action == action)
        .map(|e| e.seq)
        .collect();
    assert_eq!(found.len(), 1, "{action} {subject}: {found:?}");
    found[0]
}

/// Merchant, account, funding, two orders, two payouts on sandbox-api: one paid, one rejected
/// AC01 (which flags the merchant's account). Returns the names of what was written.
async fn build_history(app: &App) -> History {
    let e = &app.engine;
    funded_merchant(e, "acme", "1000.00").await;
    withdraw(e, "acme", "W1", "250.00").await;
    withdraw(e, "acme", "W2", "100.00").await;
    let paid_payout = e
        .create_payout(&order("W1"), Some("sandbox-api"), t0(), &ops())
        .await
        .map(|s| s.into_payout().expect("a payout"))
        .unwrap();
    let failed_payout = e
        .create_payout(&order("W2"), Some("sandbox-api"), t0(), &ops())
        .await
        .map(|s| s.into_payout().expect("a payout"))
        .unwrap();
    apply(e, &paid_payout.payout_no, paid("250.00"), day(1))
        .await
        .unwrap();
    apply(e, &failed_payout.payout_no, rejected("AC01"), day(1))
        .await
        .unwrap();
    assert_eq!(
        e.db()
            .merchant("acme")
            .await
            .unwrap()
            .unwrap()
            .account_status,
        "needs_update"
    );

    let db = e.db();
    let succeeded_journal: JournalRow = db
        .fetch_optional(
            "WHERE payout_id = $1 AND kind = 'payout_succeeded'",
            &[Bind::Int(paid_payout.id)],
        )
        .await
        .unwrap()
        .expect("the paid payout has its journal");
    let line: JournalLineRow = db
        .fetch_optional(
            "WHERE journal_id = $1 ORDER BY id",
            &[Bind::Int(succeeded_journal.id)],
        )
        .await
        .unwrap()
        .unwrap();
    let max_line: JournalLineRow = db
        .fetch_optional("ORDER BY id DESC", &[])
        .await
        .unwrap()
        .unwrap();
    let max_payout = db
        .fetch_optional::<disburse_store::PayoutRow>("ORDER BY id DESC", &[])
        .await
        .unwrap()
        .unwrap();
    let account = db.current_bank_account("acme").await.unwrap().unwrap();
    let head = db.count("audit_events").await.unwrap();

    let paid_subject = format!("payout:{}", paid_payout.payout_no);
    let failed_subject = format!("payout:{}", failed_payout.payout_no);
    let mid = seq_of(app, "payout.created", &paid_subject).await;
    let paid_seq = seq_of(app, "payout.succeeded", &paid_subject).await;
    let failed_seq = seq_of(app, "payout.failed", &failed_subject).await;
    let account_seq = seq_of(app, "merchant.bank_account_set", "merchant:acme").await;
    assert_eq!(failed_seq, head, "the rejection is the last event");
    assert!(mid > 1 && mid < head);
    assert_eq!(succeeded_journal.audit_seq, paid_seq);
    let new_payout = max_payout.id + 100;

    let names = vec![
        ("line", line.id.to_string()),
        ("line_seq", succeeded_journal.audit_seq.to_string()),
        ("journal", succeeded_journal.id.to_string()),
        ("new_line_1", (max_line.id + 100).to_string()),
        ("new_line_2", (max_line.id + 101).to_string()),
        ("mid", mid.to_string()),
        ("mid_next", (mid + 1).to_string()),
        ("last", head.to_string()),
        ("last_prev", (head - 1).to_string()),
        ("paid_payout", paid_payout.id.to_string()),
        ("paid_no", paid_payout.payout_no.clone()),
        ("paid_seq", paid_seq.to_string()),
        ("failed_payout", failed_payout.id.to_string()),
        ("failed_seq", failed_seq.to_string()),
        ("new_payout", new_payout.to_string()),
        (
            "new_payout_no",
            PayoutNo::from_sequence(new_payout).to_string(),
        ),
        ("order", paid_payout.order_id.to_string()),
        ("account", account.id.to_string()),
        ("account_seq", account_seq.to_string()),
    ];
    History { names }
}

/// One tampering: plain SQL behind the system's back, the finding `verify` must put first, and
/// whether the books still balance afterwards (the ledger check alone would then miss it).
struct Tampering {
    name: &'static str,
    sql: &'static str,
    first_finding: &'static str,
    books_still_balance: bool,
}

const TAMPERINGS: &[Tampering] = &[
    Tampering {
        name: "update a journal line's amount",
        sql: "UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE id = {line}",
        first_finding: "journal_lines row {line} differs from what audit event {line_seq} recorded",
        books_still_balance: false,
    },
    Tampering {
        name: "delete a journal line",
        sql: "DELETE FROM journal_lines WHERE id = {line}",
        first_finding: "journal_lines row {line} (written by audit event {line_seq}) was deleted",
        books_still_balance: false,
    },
    Tampering {
        name: "insert a balanced pair of journal lines",
        sql: "INSERT INTO journal_lines (id, journal_id, account, currency, amount_minor) VALUES \
              ({new_line_1}, {journal}, 'merchant:acme:available', 'EUR', -100000), \
              ({new_line_2}, {journal}, 'platform:EUR:collections', 'EUR', 100000)",
        first_finding: "journal_lines row {new_line_1} was inserted behind the system's back",
        // Every journal balances, but the balance rows no longer are the sum of the lines.
        books_still_balance: false,
    },
    Tampering {
        name: "raise a merchant's balance row",
        sql: "UPDATE account_balances SET balance_minor = balance_minor - 100000 \
              WHERE account = 'merchant:acme:available' AND currency = 'EUR'",
        first_finding: "the balance of merchant:acme:available in EUR reads",
        books_still_balance: false,
    },
    Tampering {
        name: "update an audit event's actor",
        sql: "UPDATE audit_events SET actor = 'operator:mallory' WHERE seq = {mid}",
        first_finding: "audit event {mid} (payout.created payout:{paid_no}) was changed after it was written",
        books_still_balance: true,
    },
    Tampering {
        name: "delete the last audit event",
        sql: "DELETE FROM audit_events WHERE seq = {last}",
        first_finding: "the audit chain ends at event {last_prev} but the head says {last}",
        books_still_balance: true,
    },
    Tampering {
        name: "delete an audit event in the middle",
        sql: "DELETE FROM audit_events WHERE seq = {mid}",
        first_finding: "audit event {mid} is missing (next stored event is {mid_next})",
        books_still_balance: true,
    },
    Tampering {
        name: "update a payout's state",
        sql: "UPDATE payouts SET state = 'failed' WHERE id = {paid_payout}",
        first_finding: "payouts row {paid_payout} differs from what audit event {paid_seq} recorded",
        books_still_balance: true,
    },
    Tampering {
        name: "delete a payout",
        sql: "DELETE FROM payouts WHERE id = {failed_payout}",
        first_finding: "payouts row {failed_payout} (written by audit event {failed_seq}) was deleted",
        books_still_balance: true,
    },
    Tampering {
        name: "insert a copy of a payout under a new number",
        sql: "INSERT INTO payouts (id, payout_no, order_id, merchant_id, channel_id, currency, \
              amount_minor, bank_account_id, state, paid_amount_minor, bank_reference, reason_code, \
              reason_text, value_date, submitted_at, succeeded_at, batch_id, created_at, updated_at, \
              funded_from) \
              SELECT {new_payout}, '{new_payout_no}', order_id, merchant_id, channel_id, currency, \
              amount_minor, bank_account_id, state, paid_amount_minor, bank_reference, reason_code, \
              reason_text, value_date, submitted_at, succeeded_at, batch_id, created_at, updated_at, \
              funded_from FROM payouts WHERE id = {paid_payout}",
        first_finding: "payouts row {new_payout} was inserted behind the system's back",
        books_still_balance: true,
    },
    Tampering {
        name: "update an order's amount",
        sql: "UPDATE orders SET amount_minor = amount_minor * 10 WHERE id = {order}",
        first_finding: "orders row {order} differs from what audit event {paid_seq} recorded",
        books_still_balance: true,
    },
    Tampering {
        name: "update a merchant's account status",
        sql: "UPDATE merchants SET account_status = 'ok' WHERE id = 'acme'",
        first_finding: "merchants row acme differs from what audit event {failed_seq} recorded",
        books_still_balance: true,
    },
    Tampering {
        name: "update a bank account's last four digits",
        sql: "UPDATE bank_accounts SET last4 = '0000' WHERE id = {account}",
        first_finding: "bank_accounts row {account} differs from what audit event {account_seq} recorded",
        books_still_balance: true,
    },
];

fn backend_of(app: &App) -> TestBackend {
    if app.url.starts_with("postgres") {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    }
}

/// Runs one tampering on a fresh database with the history; returns what went wrong, if anything.
async fn check(backend: TestBackend, t: &Tampering) -> Option<String> {
    let (app, _guard) = common::app(backend, "tamper").await.expect("backend");
    let history = build_history(&app).await;
    let db = app.engine.db();
    let clean = db.verify_audit().await.unwrap();
    assert!(clean.is_empty(), "{}: before tampering: {clean:?}", t.name);
    let sql = history.fill(t.sql);
    let changed = db
        .execute_raw(&sql)
        .await
        .unwrap_or_else(|e| panic!("{}: {sql}: {e}", t.name));
    assert!(changed >= 1, "{}: {sql} changed no row", t.name);
    let expected = history.fill(t.first_finding);
    let findings = db.verify_audit().await.unwrap();
    let books = db.ledger_check().await.unwrap();
    app.engine.db().close().await;
    let mut wrong = Vec::new();
    match findings.first() {
        None => wrong.push("verify found nothing".to_string()),
        Some(f) if !f.what.contains(&expected) => wrong.push(format!(
            "first finding {:?}, expected it to contain {expected:?} (all: {findings:?})",
            f.what
        )),
        Some(_) => {}
    }
    if books.is_ok() != t.books_still_balance {
        wrong.push(format!(
            "ledger check ok = {}, expected {} ({books:?})",
            books.is_ok(),
            t.books_still_balance
        ));
    }
    (!wrong.is_empty()).then(|| format!("{}: {}", t.name, wrong.join("; ")))
}

both_backends!(every_tampering_is_found_and_named, |app: App| async move {
    let backend = backend_of(&app);
    // The untouched history verifies clean and its books balance.
    build_history(&app).await;
    assert_books_and_audit(&app.engine).await;
    let mut failures = Vec::new();
    for t in TAMPERINGS {
        if let Some(f) = check(backend, t).await {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
});

both_backends!(
    restoring_the_changed_value_verifies_clean_again,
    |app: App| async move {
        // Digests are of content: putting back exactly what was there makes the row match again.
        let history = build_history(&app).await;
        let db = app.engine.db();
        let pairs = [
            (
                "UPDATE orders SET amount_minor = amount_minor + 1 WHERE id = {order}",
                "UPDATE orders SET amount_minor = amount_minor - 1 WHERE id = {order}",
                "orders row {order} differs",
            ),
            (
                "UPDATE payouts SET state = 'failed' WHERE id = {paid_payout}",
                "UPDATE payouts SET state = 'succeeded' WHERE id = {paid_payout}",
                "payouts row {paid_payout} differs",
            ),
            (
                "UPDATE audit_events SET actor = 'operator:mallory' WHERE seq = {mid}",
                "UPDATE audit_events SET actor = 'operator:alice' WHERE seq = {mid}",
                "audit event {mid} (payout.created payout:{paid_no}) was changed",
            ),
            (
                "UPDATE journal_lines SET amount_minor = amount_minor + 7 WHERE id = {line}",
                "UPDATE journal_lines SET amount_minor = amount_minor - 7 WHERE id = {line}",
                "journal_lines row {line} differs",
            ),
        ];
        for (change, restore, finding) in pairs {
            assert_eq!(db.execute_raw(&history.fill(change)).await.unwrap(), 1);
            let findings = db.verify_audit().await.unwrap();
            let expected = history.fill(finding);
            // A changed line also leaves its account's balance row off the lines' sum.
            let others_are_balance_rows = findings
                .iter()
                .skip(1)
                .all(|f| f.what.starts_with("the balance of "));
            assert!(
                !findings.is_empty()
                    && findings[0].what.contains(&expected)
                    && others_are_balance_rows,
                "after {change:?}: expected {expected:?} (and balance rows), got {findings:?}"
            );
            assert_eq!(db.execute_raw(&history.fill(restore)).await.unwrap(), 1);
            let findings = db.verify_audit().await.unwrap();
            assert!(findings.is_empty(), "after {restore:?}: {findings:?}");
        }
        assert_books_and_audit(&app.engine).await;
    }
);

both_backends!(
    verify_reports_nothing_while_writers_run,
    |app: App| async move {
        // Issue #9 item 2: monitoring runs `audit verify` at any time. Another engine (another
        // process's pool) keeps writing orders and fundings while verify runs again and again;
        // every run must see one consistent state of chain, head and tables.
        funded_merchant(&app.engine, "acme", "100000.00").await;
        let writer = app.second_engine().await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    withdraw(&writer, "acme", &format!("L{n}"), "1.00").await;
                    writer
                        .fund(&m("acme"), eur("1.00"), None, t0(), &ops())
                        .await
                        .unwrap();
                }
                n
            })
        };
        let db = app.engine.db();
        let mut alarms = Vec::new();
        let runs = 25;
        for _ in 0..runs {
            let findings = db.verify_audit().await.unwrap();
            if !findings.is_empty() {
                alarms.push(findings[0].what.clone());
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writing.await.unwrap();
        assert!(written > 1, "the writer wrote while verify ran ({written})");
        assert!(
            alarms.is_empty(),
            "{} of {runs} verify runs raised a false alarm while {written} orders were written: {:?}",
            alarms.len(),
            alarms.first()
        );
        assert_books_and_audit(&app.engine).await;
    }
);

both_backends!(
    a_withdrawal_trusts_the_balance_row_and_a_changed_row_is_found,
    |app: App| async move {
        // The hot path reads one balance row, never the account's history: a row lowered behind
        // the system's back is what the next withdrawal sees, and verify and the ledger check
        // both name it.
        let e = &app.engine;
        funded_merchant(e, "acme", "100.00").await;
        let db = e.db();
        assert_eq!(
            db.balance("merchant:acme:available", "EUR").await.unwrap(),
            -10000
        );
        assert!(db.verify_audit().await.unwrap().is_empty());
        assert_eq!(
            db.execute_raw(
                "UPDATE account_balances SET balance_minor = -500 \
                 WHERE account = 'merchant:acme:available' AND currency = 'EUR'"
            )
            .await
            .unwrap(),
            1
        );
        let refused = e
            .withdraw(
                &WithdrawRequest {
                    merchant: m("acme"),
                    order_no: OrderNo::parse("W1").unwrap(),
                    amount: eur("10.00"),
                },
                t0(),
                &ops(),
            )
            .await;
        assert!(refused.is_err(), "5.00 available by the row: {refused:?}");
        let findings = db.verify_audit().await.unwrap();
        assert!(
            findings.iter().any(|f| f.what.contains(
                "the balance of merchant:acme:available in EUR reads -500 but its journal lines sum to -10000"
            )),
            "{findings:?}"
        );
        let books = db.ledger_check().await.unwrap();
        assert!(!books.is_ok());
        assert_eq!(
            books.balance_rows_off,
            vec![disburse_store::BalanceRowOff {
                account: "merchant:acme:available".into(),
                currency: "EUR".into(),
                row_minor: -500,
                lines_minor: -10000,
            }]
        );
    }
);
