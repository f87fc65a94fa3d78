//! Bank files through the engine: batches out, results in, on SQLite and PostgreSQL.

mod common;

use common::*;
use disburse_engine::ImportSummary;

async fn import(
    app: &App,
    path: &std::path::Path,
    channel: Option<&str>,
) -> disburse_engine::Result<ImportSummary> {
    app.engine
        .import_results(path, channel, day(2), &ops(), &|_, _| {})
        .await
}

/// Three EUR orders paid through the SEPA file channel, sent as one pain.001 batch.
async fn three_payouts_in_a_batch(app: &App) -> (String, Vec<String>) {
    let (batch, bytes, nos) = send_batch(&app.engine, 3).await;
    assert_eq!(batch.payout_count, 3);
    assert_eq!(batch.control_sum_minor, 30000);
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains(&format!("<EndToEndId>{}</EndToEndId>", nos[0])));
    (batch.message_id, nos)
}

both_backends!(
    batch_is_recorded_and_gives_back_the_same_bytes,
    |app: App| async move {
        let e = &app.engine;
        let (_, nos) = three_payouts_in_a_batch(&app).await;
        for no in &nos {
            assert_eq!(
                e.db().payout_by_no(no).await.unwrap().unwrap().state,
                "submitted"
            );
        }
        let (first, bytes) = e.batch_file(1).await.unwrap();
        let (_, again) = e.batch_file(1).await.unwrap();
        assert_eq!(bytes, again);
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), first.sha256);
        assert!(
            e.create_batch("sepa-file", t0(), &ops())
                .await
                .unwrap()
                .is_none(),
            "nothing left pending"
        );
        assert_books_and_audit(e).await;
    }
);

both_backends!(
    pain002_results_are_applied_and_unknown_lines_become_exceptions,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = three_payouts_in_a_batch(&app).await;
        let dir = disburse_store::testing::temp_dir();
        let file = write(
            &dir,
            "status.xml",
            &pain002(
                &msg,
                &[
                    (&nos[0], "ACSC", None, Some("100.00")),
                    (&nos[1], "RJCT", Some("AC01"), None),
                    (&nos[2], "ACCP", None, None),
                    ("PO9999999999", "ACSC", None, Some("5.00")),
                    (&nos[0], "ACSC", None, Some("100.00")),
                ],
            ),
        );
        let s = import(&app, &file, None).await.unwrap();
        assert_eq!(
            (s.read, s.applied, s.unchanged, s.exceptions),
            (5, 2, 2, 1),
            "{s:?}"
        );
        assert_eq!(
            e.db().payout_by_no(&nos[0]).await.unwrap().unwrap().state,
            "succeeded"
        );
        let failed = e.db().payout_by_no(&nos[1]).await.unwrap().unwrap();
        assert_eq!(
            (failed.state.as_str(), failed.reason_code.as_deref()),
            ("failed", Some("AC01"))
        );
        assert_eq!(
            e.db().payout_by_no(&nos[2]).await.unwrap().unwrap().state,
            "submitted"
        );
        let items = e.exceptions(day(2)).await.unwrap();
        let unknown = items
            .iter()
            .find(|i| i.kind == "unknown_payout")
            .expect("exception for the unknown payout");
        assert!(
            unknown
                .source
                .as_deref()
                .unwrap()
                .starts_with("status.xml line "),
            "{unknown:?}"
        );
        assert!(unknown.reason.contains("PO9999999999"));
        assert!(items.iter().any(|i| i.kind == "waiting_for_account_fix"));
        // The audit event of the paid payout cites the file and line.
        let view = e.order_view(&order("W1")).await.unwrap();
        let paid = view
            .audit_events
            .iter()
            .find(|a| a.action == "payout.succeeded")
            .unwrap();
        assert_eq!(paid.detail["source"]["name"], "status.xml");
        assert!(paid.detail["source"]["line"].as_u64().unwrap() > 1);

        // The same file again: already imported, nothing changes.
        let before = snapshot(e).await;
        let again = import(&app, &file, None).await.unwrap();
        assert!(again.already_imported);
        assert_eq!(snapshot(e).await, before);
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(broken_files_are_refused_whole, |app: App| async move {
    let e = &app.engine;
    let (msg, nos) = three_payouts_in_a_batch(&app).await;
    let dir = disburse_store::testing::temp_dir();
    let full = pain002(
        &msg,
        &[(&nos[0], "ACSC", None, None), (&nos[1], "ACSC", None, None)],
    );
    let truncated = &full[..full.rfind("<TxInfAndSts>").unwrap() + 40];
    let before = snapshot(e).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated.xml", truncated.to_string(), "truncated.xml"),
        ("empty.xml", String::new(), "empty"),
        (
            "instruction.xml",
            String::from_utf8(e.batch_file(1).await.unwrap().1).unwrap(),
            "pain.001",
        ),
        (
            "future.xml",
            full.replace("pain.002.001.10", "pain.002.001.99"),
            "pain.002.001.99",
        ),
        (
            "notes.txt",
            "hello, this is not a result file\n".into(),
            "--channel",
        ),
    ];
    for (name, text, needle) in cases {
        let path = write(&dir, name, &text);
        let err = import(&app, &path, None).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{name}: {err}");
        assert_eq!(snapshot(e).await, before, "{name} changed something");
    }
    std::fs::remove_dir_all(dir).ok();
});

both_backends!(
    a_result_in_another_currency_is_an_exception_not_a_payment,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = three_payouts_in_a_batch(&app).await;
        let dir = disburse_store::testing::temp_dir();
        let text = pain002(&msg, &[(&nos[0], "ACSC", None, Some("100.00"))])
            .replace("Ccy=\"EUR\"", "Ccy=\"USD\"");
        let s = import(&app, &write(&dir, "usd.xml", &text), None)
            .await
            .unwrap();
        assert_eq!((s.applied, s.exceptions), (0, 1));
        assert_eq!(
            e.db().payout_by_no(&nos[0]).await.unwrap().unwrap().state,
            "submitted"
        );
        let items = e.exceptions(day(2)).await.unwrap();
        assert!(
            items
                .iter()
                .any(|i| i.kind == "contradiction" && i.reason.contains("USD")),
            "{items:?}"
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    a_whole_message_rejected_by_the_bank_fails_every_payout_of_its_batch,
    |app: App| async move {
        let e = &app.engine;
        let (msg, nos) = three_payouts_in_a_batch(&app).await;
        let dir = disburse_store::testing::temp_dir();
        let text = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>S2</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{msg}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
      <GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM10</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"#
        );
        let s = import(&app, &write(&dir, "group.xml", &text), None)
            .await
            .unwrap();
        assert_eq!(s.applied, 3, "{s:?}");
        for no in &nos {
            let p = e.db().payout_by_no(no).await.unwrap().unwrap();
            assert_eq!(
                (p.state.as_str(), p.reason_code.as_deref()),
                ("failed", Some("AM10"))
            );
        }
        // AM10 (control sum) is not the merchant's account: no account fix is asked for.
        assert_eq!(
            e.merchant_view(&m("acme")).await.unwrap().account_status,
            "ok"
        );
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    chinese_bank_gbk_csv_results_are_applied,
    |app: App| async move {
        let e = &app.engine;
        e.add_merchant(&m("shenzhen"), "深圳贸易有限公司", t0(), &ops())
            .await
            .unwrap();
        let account = disburse_core::account::BankAccount::new(
            disburse_core::account::HolderName::parse("深圳贸易有限公司").unwrap(),
            disburse_core::account::LocalAccount::new(
                disburse_core::account::CountryCode::parse("CN").unwrap(),
                "102100099996",
                "6222020200112233445",
            )
            .unwrap()
            .into(),
            None,
        );
        e.set_bank_account(&m("shenzhen"), &account, t0(), &ops())
            .await
            .unwrap();
        let cny = |t: &str| disburse_core::Money::parse(t, disburse_core::Currency::Cny).unwrap();
        e.fund(&m("shenzhen"), cny("10000.00"), None, t0(), &ops())
            .await
            .unwrap();
        let mut nos = Vec::new();
        for (i, amount) in ["1234.50", "200.00", "300.00"].iter().enumerate() {
            let no = format!("C{i}");
            e.withdraw(
                &disburse_engine::WithdrawRequest {
                    merchant: m("shenzhen"),
                    order_no: disburse_core::OrderNo::parse(&no).unwrap(),
                    amount: cny(amount),
                },
                t0(),
                &ops(),
            )
            .await
            .unwrap();
            nos.push(
                e.create_payout(&order(&no), None, t0(), &ops())
                    .await
                    .map(|s| s.into_payout().expect("a payout"))
                    .unwrap()
                    .payout_no,
            );
        }
        let (batch, bytes) = e
            .create_batch("cn-csv", t0(), &ops())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(batch.format, "csv");
        let (decoded, _, had_errors) = encoding_rs::GBK.decode(&bytes);
        assert!(!had_errors, "the instruction file is GBK");
        assert!(
            decoded.contains("深圳贸易有限公司") && decoded.contains(&nos[0]),
            "{decoded}"
        );

        // A result file in the bank's layout (the shipped chinabank profile), GBK-encoded.
        let example = include_bytes!("../../formats/profiles/chinabank-results.csv");
        let (example_text, _, _) = encoding_rs::GBK.decode(example);
        let header = example_text.lines().next().unwrap();
        assert_eq!(header, "交易流水号,付款编号,金额,状态,失败原因,日期");
        let text = format!(
        "{header}\r\nCB1,{},\"1,234.50\",成功,,2026-11-03\r\nCB2,{},200.00,失败,收款人账号不存在,2026-11-03\r\nCB3,{},300.00,处理中,,2026-11-03\r\n",
        nos[0], nos[1], nos[2]
    );
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let dir = disburse_store::testing::temp_dir();
        let path = dir.join("回单.csv");
        std::fs::write(&path, &gbk).unwrap();
        let s = import(&app, &path, Some("cn-csv")).await.unwrap();
        assert_eq!(
            (s.read, s.applied, s.unchanged, s.exceptions),
            (3, 2, 1, 0),
            "{s:?}"
        );
        assert_eq!(
            e.db().payout_by_no(&nos[0]).await.unwrap().unwrap().state,
            "succeeded"
        );
        assert_eq!(
            e.db().payout_by_no(&nos[1]).await.unwrap().unwrap().state,
            "failed"
        );
        assert_eq!(
            e.db().payout_by_no(&nos[2]).await.unwrap().unwrap().state,
            "submitted"
        );
        // The same GBK bytes given to a channel whose profile says UTF-8 are refused whole,
        // naming the encoding, and nothing is applied.
        let before = snapshot(e).await;
        let renamed = dir.join("gbk-as-utf8.csv");
        let other_text = text.replace("CB1", "CB9");
        let (other_gbk, _, _) = encoding_rs::GBK.encode(&other_text);
        std::fs::write(&renamed, &other_gbk).unwrap();
        let err = e
            .import_results(&renamed, Some("eb-csv"), day(2), &ops(), &|_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().to_lowercase().contains("utf-8"), "{err}");
        assert_eq!(snapshot(e).await, before);
        // A channel without a CSV profile cannot read a CSV file.
        let err = e
            .import_results(&path, Some("sepa-file"), day(2), &ops(), &|_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CSV profile"), "{err}");
        assert_books_and_audit(e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    two_processes_making_batches_at_once_never_send_a_payout_twice,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "1000.00").await;
        for i in 0..6 {
            withdraw(e, "acme", &format!("W{i}"), "10.00").await;
            e.create_payout(&order(&format!("W{i}")), None, t0(), &ops())
                .await
                .map(|s| s.into_payout().expect("a payout"))
                .unwrap();
        }
        let other = app.second_engine().await;
        let actor = ops();
        let (a, b) = tokio::join!(
            e.create_batch("sepa-file", t0(), &actor),
            other.create_batch("sepa-file", t0(), &actor)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        // One of them takes every pending payout; the other finds none left.
        let counts: Vec<i64> = [a, b]
            .into_iter()
            .flatten()
            .map(|(batch, _)| batch.payout_count)
            .collect();
        assert_eq!(counts, [6], "{counts:?}");
        let payouts = e.db().payouts_in_state("submitted").await.unwrap();
        assert_eq!(payouts.len(), 6);
        assert!(payouts.iter().all(|p| p.batch_id == payouts[0].batch_id));
        assert_eq!(
            e.db()
                .count_where("journals", "kind = 'payout_submitted'")
                .await
                .unwrap(),
            6,
            "each submitted once"
        );
        assert_books_and_audit(e).await;
    }
);
