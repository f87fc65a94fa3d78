//! The operator API, black-box: sessions and roles, corrections, discrepancies, files, audit.

use chrono::Utc;
use disburse_core::correction::Role;
use disburse_core::{BankResult, OrderNo, PayoutNo};
use disburse_engine::{OrderRef, ResultSource};
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::*;

fn order(no: &str) -> OrderRef {
    OrderRef {
        order_no: OrderNo::parse(no).unwrap(),
        merchant: None,
    }
}

/// A payout of `order_no` on the sandbox API channel (sent at once), then the bank's `result`.
async fn sandbox_payout(app: &TestApp, order_no: &str, result: BankResult) -> String {
    let p = app
        .engine
        .create_payout(&order(order_no), Some("sandbox-api"), Utc::now(), &desk())
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    app.engine
        .apply_bank_result(
            &PayoutNo::parse(&p.payout_no).unwrap(),
            &result,
            &ResultSource::Manual {
                evidence: "bank notice".into(),
            },
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap();
    p.payout_no
}

fn rejected() -> BankResult {
    BankResult::Rejected {
        reason_code: "AC04".into(),
        reason_text: Some("account closed".into()),
        instructed: None,
    }
}

both_backends!(operators_log_in_and_out, |app: TestApp| async move {
    let token = app.operator("ada", Role::Admin).await;
    let me = app.get("/ops/v1/me", &token).await;
    assert_eq!(me.json, json!({"operator": "ada", "role": "admin"}));
    let wrong = app
        .send_json(
            Method::POST,
            "/ops/v1/login",
            "",
            None,
            json!({"name": "ada", "password": "not the password"}),
        )
        .await;
    wrong.assert_problem(401, None);
    let nobody = app
        .send_json(
            Method::POST,
            "/ops/v1/login",
            "",
            None,
            json!({"name": "nobody", "password": "whatever it is"}),
        )
        .await;
    nobody.assert_problem(401, None);
    assert_eq!(
        nobody.json["detail"], wrong.json["detail"],
        "not told apart"
    );
    app.get("/ops/v1/me", "dso_forged")
        .await
        .assert_problem(401, None);
    // A merchant's API key is not a session.
    let key = app.merchant("acme", 0).await;
    app.get("/ops/v1/exceptions", &key)
        .await
        .assert_problem(401, None);
    let out = app
        .send(Method::POST, "/ops/v1/logout", Some(&token), &[], None)
        .await;
    assert_eq!(out.status, 204);
    app.get("/ops/v1/me", &token)
        .await
        .assert_problem(401, None);
    // Passwords are checked: too short is refused.
    let short = disburse_server::set_operator_password(
        &app.engine,
        &disburse_core::OperatorName::parse("ada").unwrap(),
        "short",
        Utc::now(),
    )
    .await;
    assert!(short.is_err());
});

both_backends!(
    a_viewer_cannot_approve_a_correction,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 10_000).await.status, 201);
        let payout_no = sandbox_payout(&app, "W1", rejected()).await;
        let ada = app.operator("ada", Role::Admin).await;
        let olga = app.operator("olga", Role::Operator).await;
        let bert = app.operator("bert", Role::Approver).await;
        let vic = app.operator("vic", Role::Viewer).await;

        let exceptions = app.get("/ops/v1/exceptions", &vic).await;
        assert_eq!(exceptions.status, 200, "{exceptions:?}");
        assert!(
            exceptions
                .json
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["order_no"] == "W1"),
            "{exceptions:?}"
        );

        let proposal = json!({
            "payout_no": payout_no,
            "correction": {"kind": "confirm_succeeded", "paid_amount_minor": 10_000,
                "currency": "EUR", "bank_reference": "BANK-REF-9", "value_date": "2026-11-03"},
            "reason": "marked failed by mistake; the bank paid",
            "evidence": "bank statement line 17, reference BANK-REF-9",
        });
        // A viewer may not propose.
        app.post("/ops/v1/corrections", &vic, proposal.clone())
            .await
            .assert_problem(403, None);
        let proposed = app
            .post("/ops/v1/corrections", &olga, proposal.clone())
            .await;
        assert_eq!(proposed.status, 201, "{proposed:?}");
        assert_eq!(proposed.json["status"], "proposed");
        assert_eq!(proposed.json["proposed_by"], "olga");
        let id = proposed.json["id"].as_i64().unwrap();
        let approve = format!("/ops/v1/corrections/{id}/approve");

        // Neither a viewer nor an operator may approve.
        let by_viewer = app
            .send(Method::POST, &approve, Some(&vic), &[], None)
            .await;
        by_viewer.assert_problem(403, None);
        assert!(by_viewer.json["detail"]
            .as_str()
            .unwrap()
            .contains("viewer"));
        app.send(Method::POST, &approve, Some(&olga), &[], None)
            .await
            .assert_problem(403, None);
        let listed = app.get("/ops/v1/corrections?status=proposed", &vic).await;
        assert_eq!(listed.json.as_array().unwrap().len(), 1);

        // An approver does; the payout is recorded as paid.
        let approved = app
            .send(Method::POST, &approve, Some(&bert), &[], None)
            .await;
        assert_eq!(approved.status, 200, "{approved:?}");
        assert_eq!(approved.json["status"], "applied");
        assert_eq!(approved.json["decided_by"], "bert");
        let seen = app.get("/ops/v1/merchants/acme/withdrawals/W1", &vic).await;
        assert_eq!(seen.json["state"], "paid", "{seen:?}");
        assert_eq!(seen.json["payouts"][0]["state"], "succeeded");
        assert_eq!(
            app.get("/v1/withdrawals/W1", &key).await.json["state"],
            "paid"
        );
        // Decided once.
        app.send(Method::POST, &approve, Some(&ada), &[], None)
            .await
            .assert_problem(409, None);

        // A second proposal, rejected with a reason; and the maker may not decide their own.
        let ret = json!({
            "payout_no": payout_no,
            "correction": {"kind": "record_return", "reason_code": "AC04"},
            "reason": "bank says returned", "evidence": "phone call",
        });
        let by_ada = app.post("/ops/v1/corrections", &ada, ret).await;
        assert_eq!(by_ada.status, 201, "{by_ada:?}");
        let id2 = by_ada.json["id"].as_i64().unwrap();
        app.send(
            Method::POST,
            &format!("/ops/v1/corrections/{id2}/approve"),
            Some(&ada),
            &[],
            None,
        )
        .await
        .assert_problem(409, None);
        app.post(
            &format!("/ops/v1/corrections/{id2}/reject"),
            &vic,
            json!({"reason": "no"}),
        )
        .await
        .assert_problem(403, None);
        let rejected = app
            .post(
                &format!("/ops/v1/corrections/{id2}/reject"),
                &bert,
                json!({"reason": "the bank confirmed it was paid"}),
            )
            .await;
        assert_eq!(rejected.status, 200, "{rejected:?}");
        assert_eq!(rejected.json["status"], "rejected");
        // Bad input on the operator side is a 4xx problem too.
        for (path, body, status, field) in [
            (
                "/ops/v1/corrections",
                json!({"payout_no": payout_no}),
                422,
                Some("correction"),
            ),
            (
                "/ops/v1/corrections",
                json!({"payout_no": payout_no, "correction": {"kind": "nonsense"}, "reason": "r", "evidence": "e"}),
                422,
                Some("correction.kind"),
            ),
            (
                "/ops/v1/corrections",
                json!({"payout_no": payout_no, "correction": {"kind": "amend_paid_amount", "paid_amount_minor": -1, "currency": "EUR"}, "reason": "r", "evidence": "e"}),
                422,
                Some("paid_amount_minor"),
            ),
            (
                "/ops/v1/corrections",
                json!({"payout_no": "PO9999999999", "correction": {"kind": "confirm_failed", "reason_code": "AC04"}, "reason": "r", "evidence": "e"}),
                404,
                None,
            ),
            ("/ops/v1/corrections/abc/approve", json!({}), 404, None),
            ("/ops/v1/corrections/424242/approve", json!({}), 404, None),
        ] {
            app.post(path, &ada, body)
                .await
                .assert_problem(status, field);
        }
        // Every action is attributed in the audit trail, and the chain holds.
        let report = app.get("/ops/v1/audit/verify", &vic).await;
        assert_eq!(report.status, 200);
        assert_eq!(report.json["audit_ok"], true, "{report:?}");
        assert_eq!(report.json["ledger_ok"], true, "{report:?}");
        let db = app.engine.db();
        assert_eq!(
            db.count_where(
                "audit_events",
                "actor = 'operator:bert' AND action LIKE 'payout.corrected.%'"
            )
            .await
            .unwrap(),
            1
        );
    }
);

both_backends!(
    discrepancies_are_resolved_by_operators,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 10_000).await.status, 201);
        sandbox_payout(
            &app,
            "W1",
            BankResult::Paid {
                amount: Some(eur(9_000)),
                instructed: None,
                reference: Some("BANK-1".into()),
                value_date: None,
            },
        )
        .await;
        let olga = app.operator("olga", Role::Operator).await;
        let vic = app.operator("vic", Role::Viewer).await;
        let list = app.get("/ops/v1/discrepancies", &vic).await;
        let items = list.json.as_array().unwrap();
        assert_eq!(items.len(), 1, "{list:?}");
        assert_eq!(items[0]["direction"], "underpaid");
        assert_eq!(items[0]["amount_minor"], 1_000);
        assert_eq!(items[0]["merchant"], "acme");
        let id = items[0]["id"].as_i64().unwrap();
        // The merchant sees it on its order.
        let w = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(w.json["discrepancies"][0]["direction"], "underpaid");

        let path = format!("/ops/v1/discrepancies/{id}/resolve");
        app.post(
            &path,
            &vic,
            json!({"resolution": "top_up_now", "reason": "pay the rest"}),
        )
        .await
        .assert_problem(403, None);
        app.post(
            &path,
            &olga,
            json!({"resolution": "refund_received", "reason": "x"}),
        )
        .await
        .assert_problem(422, Some("reference"));
        app.post(
            &path,
            &olga,
            json!({"resolution": "refund_received", "reference": "R1", "reason": "x"}),
        )
        .await
        .assert_problem(409, None);
        app.post(
            &path,
            &olga,
            json!({"resolution": "forget_it", "reason": "x"}),
        )
        .await
        .assert_problem(422, Some("resolution"));
        let topped = app
            .post(
                &path,
                &olga,
                json!({"resolution": "top_up_now", "reason": "pay the rest now"}),
            )
            .await;
        assert_eq!(topped.status, 200, "{topped:?}");
        assert_eq!(topped.json["status"], "topping_up");
        assert!(topped.json["topup_payout_no"].is_string());
        let w = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(w.json["payouts"].as_array().unwrap().len(), 2, "{w:?}");
    }
);

/// A pain.002.001.10 status report for `msg_id`: (EndToEndId, status, reason).
pub fn pain002_for(msg_id: &str, lines: &[(&str, &str, Option<&str>)]) -> String {
    let mut tx = String::new();
    for (e2e, status, reason) in lines {
        tx.push_str(&format!(
            "      <TxInfAndSts>\n        <OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>\n        <TxSts>{status}</TxSts>\n"
        ));
        if let Some(r) = reason {
            tx.push_str(&format!(
                "        <StsRsnInf><Rsn><Cd>{r}</Cd></Rsn></StsRsnInf>\n"
            ));
        }
        tx.push_str("      </TxInfAndSts>\n");
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>STATUS-1</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{msg_id}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>PMT-1</OrgnlPmtInfId>
{tx}    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"#
    )
}

/// A multipart/form-data body with a `file` part and optional `channel`.
pub fn multipart(file_name: &str, content: &[u8], channel: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "disburse-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    if let Some(c) = channel {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\n{c}\r\n"
            )
            .bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(content);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

both_backends!(
    result_files_are_uploaded_and_batches_downloaded,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 10_000).await.status, 201);
        let p = app
            .engine
            .create_payout(&order("W1"), None, Utc::now(), &desk())
            .await
            .unwrap()
            .into_payout()
            .unwrap();
        let (batch, bytes) = app
            .engine
            .create_batch("sepa-file", Utc::now(), &desk())
            .await
            .unwrap()
            .unwrap();
        let olga = app.operator("olga", Role::Operator).await;
        let vic = app.operator("vic", Role::Viewer).await;

        let batches = app.get("/ops/v1/batches", &vic).await;
        assert_eq!(batches.json[0]["batch_id"], batch.batch_id, "{batches:?}");
        let file = app
            .get(&format!("/ops/v1/batches/{}/file", batch.batch_id), &vic)
            .await;
        assert_eq!(file.status, 200);
        assert_eq!(file.bytes.as_ref(), bytes.as_slice(), "byte for byte");
        assert_eq!(file.content_type(), "application/xml");
        app.get("/ops/v1/batches/999/file", &vic)
            .await
            .assert_problem(404, None);

        let report = pain002_for(&batch.message_id, &[(&p.payout_no, "RJCT", Some("AC04"))]);
        let (ct, body) = multipart("status-1.xml", report.as_bytes(), None);
        let headers = [("content-type", ct.as_str())];
        app.send(
            Method::POST,
            "/ops/v1/result-files",
            Some(&vic),
            &headers,
            Some(body.clone()),
        )
        .await
        .assert_problem(403, None);
        let imported = app
            .send(
                Method::POST,
                "/ops/v1/result-files",
                Some(&olga),
                &headers,
                Some(body.clone()),
            )
            .await;
        assert_eq!(imported.status, 200, "{imported:?}");
        assert_eq!(imported.json["applied"], 1, "{imported:?}");
        assert_eq!(imported.json["file_name"], "status-1.xml");
        assert_eq!(imported.json["already_imported"], false);
        let again = app
            .send(
                Method::POST,
                "/ops/v1/result-files",
                Some(&olga),
                &headers,
                Some(body),
            )
            .await;
        assert_eq!(again.json["already_imported"], true, "{again:?}");
        let w = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(w.json["payouts"][0]["state"], "failed");
        assert_eq!(w.json["payouts"][0]["reason_code"], "AC04");

        // A broken file is refused whole, as a 4xx.
        let (ct, body) = multipart("broken.xml", &report.as_bytes()[..200], None);
        let broken = app
            .send(
                Method::POST,
                "/ops/v1/result-files",
                Some(&olga),
                &[("content-type", ct.as_str())],
                Some(body),
            )
            .await;
        assert!((400..500).contains(&broken.status), "{broken:?}");
        broken.assert_problem(broken.status, None);
        // Not a form at all.
        app.send(
            Method::POST,
            "/ops/v1/result-files",
            Some(&olga),
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await
        .assert_problem(400, None);
        let (ct, _) = multipart("x.xml", b"", None);
        let boundary = ct.split('=').nth(1).unwrap();
        let empty = app
            .send(
                Method::POST,
                "/ops/v1/result-files",
                Some(&olga),
                &[("content-type", ct.as_str())],
                Some(format!("--{boundary}--\r\n").into_bytes()),
            )
            .await;
        empty.assert_problem(400, Some("file"));

        let exceptions = app.get("/ops/v1/exceptions", &vic).await;
        let kinds: Vec<&str> = exceptions
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"waiting_for_account_fix"), "{kinds:?}");
    }
);

both_backends!(
    the_queue_is_worked_through_the_ops_api,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 10_000).await.status, 201);
        sandbox_payout(&app, "W1", rejected()).await;
        let ada = app.operator("ada", Role::Admin).await;
        let olga = app.operator("olga", Role::Operator).await;
        let bert = app.operator("bert", Role::Approver).await;
        let vic = app.operator("vic", Role::Viewer).await;
        let queue = app.get("/ops/v1/exceptions", &olga).await;
        let item = queue
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["order_no"] == "W1")
            .expect("W1 waits in the queue")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let it = json!({"item_id": item});

        // A viewer reads the queue but may not work it.
        app.post("/ops/v1/exceptions/claim", &vic, it.clone())
            .await
            .assert_problem(403, None);
        // Olga claims it; claiming again is the same claim.
        let claimed = app
            .post("/ops/v1/exceptions/claim", &olga, it.clone())
            .await;
        assert_eq!(claimed.status, 200, "{claimed:?}");
        assert_eq!(claimed.json["item_id"], item.as_str());
        assert_eq!(claimed.json["claimed_by"], "olga");
        let again = app
            .post("/ops/v1/exceptions/claim", &olga, it.clone())
            .await;
        assert_eq!(again.json["claimed_at"], claimed.json["claimed_at"]);
        // Another person's claim: bert may neither claim, release nor handle it…
        let theirs = app
            .post("/ops/v1/exceptions/claim", &bert, it.clone())
            .await;
        theirs.assert_problem(409, None);
        assert!(
            theirs.json["detail"]
                .as_str()
                .unwrap()
                .contains("claimed by olga"),
            "{theirs:?}"
        );
        app.post("/ops/v1/exceptions/release", &bert, it.clone())
            .await
            .assert_problem(409, None);
        let note = json!({"item_id": item, "note": "called the bank"});
        app.post("/ops/v1/exceptions/handle", &bert, note.clone())
            .await
            .assert_problem(409, None);
        // …but may comment on it.
        let commented = app
            .post("/ops/v1/exceptions/comment", &bert, note.clone())
            .await;
        assert_eq!(commented.status, 201, "{commented:?}");
        assert_eq!(commented.json["notes"][0]["kind"], "comment");
        assert_eq!(commented.json["notes"][0]["written_by"], "bert");
        assert_eq!(
            commented.json["claimed_by"], "olga",
            "a comment keeps the claim"
        );
        // An empty note and an unknown item are refused.
        app.post(
            "/ops/v1/exceptions/comment",
            &bert,
            json!({"item_id": item, "note": "  "}),
        )
        .await
        .assert_problem(422, Some("note"));
        app.post(
            "/ops/v1/exceptions/claim",
            &olga,
            json!({"item_id": "E999999"}),
        )
        .await
        .assert_problem(404, None);
        // An admin releases anyone's claim (someone left for the day).
        let released = app
            .post("/ops/v1/exceptions/release", &ada, it.clone())
            .await;
        assert_eq!(released.status, 200, "{released:?}");
        assert!(released.json["claimed_by"].is_null(), "{released:?}");
        // Bert claims it now and marks it handled: the claim ends with it.
        assert_eq!(
            app.post("/ops/v1/exceptions/claim", &bert, it.clone())
                .await
                .status,
            200
        );
        let handled = app
            .post(
                "/ops/v1/exceptions/handle",
                &bert,
                json!({"item_id": item, "note": "merchant asked for a new account"}),
            )
            .await;
        assert_eq!(handled.status, 200, "{handled:?}");
        assert!(handled.json["claimed_by"].is_null());
        assert_eq!(handled.json["notes"][1]["kind"], "handled");
        // Each action is an audit event naming who did it.
        let actions: Vec<(String, String)> = app
            .engine
            .audit_log(&disburse_engine::AuditFilter {
                subject: Some(format!("exception:{item}")),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.subject == format!("exception:{item}"))
            .map(|e| (e.action, e.actor))
            .collect();
        for (action, who) in [
            ("exception.claimed", "operator:olga"),
            ("exception.commented", "operator:bert"),
            ("exception.released", "operator:ada"),
            ("exception.handled", "operator:bert"),
        ] {
            assert!(
                actions.iter().any(|(a, w)| a == action && w == who),
                "{action} by {who} in {actions:?}"
            );
        }
        // The OpenAPI document describes the four operations.
        let doc = app.get("/openapi.json", "").await;
        for op in ["claim", "release", "comment", "handle"] {
            assert!(
                doc.json["paths"][format!("/ops/v1/exceptions/{op}")]["post"].is_object(),
                "{op} documented"
            );
        }
    }
);
