//! The write path: a chunk of result lines is read with set queries, decided in memory (later
//! lines seeing earlier ones), and written set-based; every hot lookup is served by an index.
//! On SQLite and PostgreSQL.

mod common;

use common::*;

both_backends!(
    every_hot_lookup_is_served_by_an_index,
    |app: App| async move {
        let plans = app.engine.db().hot_query_plans().await.unwrap();
        assert!(plans.len() >= 10, "the hot queries are listed");
        let mut bad = Vec::new();
        for p in &plans {
            eprintln!("{}:\n  {}\n  {}", p.name, p.sql, p.plan.join("\n  "));
            if !p.uses_indexes_only() || !p.uses_expected_index() {
                bad.push(format!(
                    "{} (expects {:?}): {}",
                    p.name,
                    p.expected_index,
                    p.plan.join(" / ")
                ));
            }
        }
        assert!(bad.is_empty(), "lookups not served by an index: {bad:#?}");
    }
);

/// `n` orders of 1.00 EUR for acme, each with a submitted payout on sepa-file, in one batch.
async fn many_sent(app: &App, n: usize) -> (String, Vec<String>) {
    let e = &app.engine;
    funded_merchant(e, "acme", "100000.00").await;
    let mut nos = Vec::new();
    for i in 1..=n {
        withdraw(e, "acme", &format!("W{i}"), "1.00").await;
        let started = e
            .create_payout(&order(&format!("W{i}")), None, t0(), &ops())
            .await
            .unwrap();
        nos.push(started.into_payout().expect("a payout").payout_no);
    }
    let (batch, _) = e
        .create_batch("sepa-file", t0(), &ops())
        .await
        .unwrap()
        .unwrap();
    (batch.message_id, nos)
}

both_backends!(
    a_chunk_is_read_and_written_with_a_handful_of_statements,
    |app: App| async move {
        let e = &app.engine;
        let n = 600; // one full chunk and part of a second
        let (msg, nos) = many_sent(&app, n).await;
        let lines: Vec<(&str, &str, Option<&str>, Option<&str>)> = nos
            .iter()
            .map(|no| (no.as_str(), "ACSC", None, Some("1.00")))
            .collect();
        let dir = disburse_store::testing::temp_dir();
        let path = write(&dir, "status.xml", &pain002(&msg, &lines));
        let summary = e
            .import_results(&path, Some("sepa-file"), day(2), &ops(), &|_, _| {})
            .await
            .unwrap();
        assert_eq!((summary.applied, summary.exceptions), (n as u64, 0));
        // One statement per line would be 600 reads of payouts alone, and per line the old path
        // sent at least four (read payout, update payout, read order, update order).
        assert!(
            summary.sql_statements <= 120,
            "{} statements for {n} lines in 2 chunks",
            summary.sql_statements
        );
        for no in [&nos[0], &nos[499], &nos[500], &nos[n - 1]] {
            let p = e.db().payout_by_no(no).await.unwrap().unwrap();
            assert_eq!(p.state, "succeeded", "{no}");
            assert_eq!(p.paid_amount_minor, Some(100));
            let o = e.db().order(p.order_id).await.unwrap().unwrap();
            assert_eq!(o.state, "paid", "{no}'s order");
        }
        assert_eq!(
            e.db()
                .count_where("orders", "state = 'paid'")
                .await
                .unwrap(),
            n as i64
        );
        assert_eq!(
            e.db()
                .count_where("journals", "kind = 'payout_succeeded'")
                .await
                .unwrap(),
            n as i64
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    a_later_line_of_the_same_chunk_sees_what_an_earlier_one_changed,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = many_sent(&app, 2).await;
        // The bank says paid, then (same file, same chunk) rejected: the second line meets a
        // succeeded payout, which a rejection cannot undo — a conflict for a person, not a
        // failure applied over a success that was never written yet.
        let text = pain002(
            &msg,
            &[
                (&nos[0], "ACSC", None, Some("1.00")),
                (&nos[1], "ACSC", None, Some("1.00")),
                (&nos[0], "RJCT", Some("AC04"), Some("1.00")),
            ],
        );
        let dir = disburse_store::testing::temp_dir();
        let path = write(&dir, "status.xml", &text);
        let summary = e
            .import_results(&path, Some("sepa-file"), day(2), &ops(), &|_, _| {})
            .await
            .unwrap();
        assert_eq!((summary.applied, summary.exceptions), (2, 1), "{summary:?}");
        let p = e.db().payout_by_no(&nos[0]).await.unwrap().unwrap();
        assert_eq!(p.state, "succeeded");
        assert_eq!(p.reason_code, None);
        let merchant = e.db().merchant("acme").await.unwrap().unwrap();
        assert_eq!(merchant.account_status, "ok", "a conflict flags no account");
        let exceptions: Vec<disburse_store::ExceptionRow> =
            e.db().fetch_all("ORDER BY id", &[]).await.unwrap();
        assert_eq!(exceptions.len(), 1);
        assert_eq!(exceptions[0].kind, "conflict");
        assert_eq!(exceptions[0].payout_no.as_deref(), Some(nos[0].as_str()));
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    the_sweep_and_the_queue_page_through_payouts_by_id,
    |app: App| async move {
        let e = &app.engine;
        let (_, nos) = many_sent(&app, 5).await;
        // A page of two: each page is its own transaction and names where the next starts.
        let (first, next) = e.sweep_page(day(10), &ops(), 0, 2).await.unwrap();
        assert_eq!(first.expired, nos[..2].to_vec());
        let next = next.expect("more pages");
        let (second, next) = e.sweep_page(day(10), &ops(), next, 2).await.unwrap();
        assert_eq!(second.expired, nos[2..4].to_vec());
        let (third, next) = e
            .sweep_page(day(10), &ops(), next.unwrap(), 2)
            .await
            .unwrap();
        assert_eq!(third.expired, nos[4..].to_vec());
        assert_eq!(next, None, "a short page is the last");
        // The whole sweep pages through all of them (none is left submitted).
        let again = e.sweep(day(11), &ops()).await.unwrap();
        assert!(again.expired.is_empty() && again.still_waiting == 0);
        let expired: Vec<String> = e
            .exceptions(day(11))
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.kind == "expired_payout")
            .filter_map(|i| i.payout_no)
            .collect();
        assert_eq!(expired, nos);
        assert_books_and_audit(e).await;
    }
);
