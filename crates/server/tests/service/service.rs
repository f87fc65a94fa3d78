//! The service as a whole: health, metrics, the OpenAPI document, the workers and `serve`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use disburse_core::OrderNo;
use disburse_engine::OrderRef;
use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::common::*;

both_backends!(health_readiness_and_metrics, |app: TestApp| async move {
    let h = app.send(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!((h.status, h.json["status"].as_str()), (200, Some("ok")));
    let r = app.send(Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let key = app.merchant("acme", 100_000).await;
    assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
    app.engine
        .create_payout(
            &OrderRef {
                order_no: OrderNo::parse("W1").unwrap(),
                merchant: None,
            },
            None,
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    let m = app.send(Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(m.status, 200);
    assert!(m.content_type().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&m.bytes).to_string();
    for expected in [
            "# TYPE disburse_payouts gauge",
            "disburse_payouts{state=\"pending\"} 1",
            "disburse_orders{state=\"paying\"} 1",
            "# TYPE disburse_exceptions gauge",
            "disburse_webhook_backlog{status=\"dead\"} 0",
            "disburse_webhook_backlog{status=\"not_queued\"} ",
            "# TYPE disburse_import_lag_seconds gauge",
            "disburse_inbox_files{channel=\"sepa-file\"} ",
            "disburse_import_lag_seconds{channel=\"sepa-file\"} ",
            "# TYPE disburse_http_request_duration_seconds histogram",
            "disburse_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/withdrawals\",status=\"201\",le=\"+Inf\"} 1",
            "disburse_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
});

/// Every endpoint the service must have, as the OpenAPI document names it.
const EXPECTED: &[(&str, &str)] = &[
    ("post", "/v1/withdrawals"),
    ("get", "/v1/withdrawals"),
    ("get", "/v1/withdrawals/{order_no}"),
    ("post", "/v1/withdrawals/{order_no}/cancel"),
    ("get", "/v1/balance"),
    ("put", "/v1/bank-account"),
    ("get", "/v1/events"),
    ("put", "/v1/webhook"),
    ("get", "/v1/webhook"),
    ("post", "/v1/webhook/rotate-secret"),
    ("post", "/ops/v1/login"),
    ("post", "/ops/v1/logout"),
    ("get", "/ops/v1/me"),
    ("get", "/ops/v1/exceptions"),
    ("post", "/ops/v1/exceptions/claim"),
    ("post", "/ops/v1/exceptions/release"),
    ("post", "/ops/v1/exceptions/comment"),
    ("post", "/ops/v1/exceptions/handle"),
    ("get", "/ops/v1/merchants/{merchant}/withdrawals/{order_no}"),
    ("get", "/ops/v1/corrections"),
    ("post", "/bank-callbacks/{channel}"),
    ("post", "/ops/v1/corrections"),
    ("post", "/ops/v1/corrections/{id}/approve"),
    ("post", "/ops/v1/corrections/{id}/reject"),
    ("get", "/ops/v1/discrepancies"),
    ("post", "/ops/v1/discrepancies/{id}/resolve"),
    ("post", "/ops/v1/result-files"),
    ("get", "/ops/v1/batches"),
    ("get", "/ops/v1/batches/{id}/file"),
    ("get", "/ops/v1/audit/verify"),
    ("get", "/ops/v1/webhooks/deliveries"),
    ("post", "/ops/v1/webhooks/deliveries/{outbox_id}/redeliver"),
    ("get", "/ops/v1/webhooks/dead-letters"),
    ("get", "/ops/v1/sessions"),
    ("post", "/ops/v1/sessions/{id}/revoke"),
    ("post", "/ops/v1/operators/{name}/unlock"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

both_backends!(
    every_route_is_in_the_openapi_document,
    |app: TestApp| async move {
        let doc = app
            .send(Method::GET, "/openapi.json", None, &[], None)
            .await;
        assert_eq!(doc.status, 200);
        assert!(
            doc.json["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc.json["openapi"]
        );
        let mut documented = BTreeSet::new();
        for (path, item) in doc.json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
                documented.insert((method.clone(), path.clone()));
            }
        }
        let expected: BTreeSet<(String, String)> = EXPECTED
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            documented, expected,
            "the document and the endpoints differ"
        );
        // Each documented operation is routed (whatever it answers without credentials): the
        // router has no route the document misses, since both come from one registration, and
        // the document has no operation the router lacks.
        for (method, path) in &documented {
            let concrete = path
                .replace("{order_no}", "W1")
                .replace("{merchant}", "acme")
                .replace("{outbox_id}", "1")
                .replace("{name}", "ada")
                .replace("{id}", "1");
            let a = app
                .send(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &concrete,
                    None,
                    &[],
                    None,
                )
                .await;
            assert_ne!(a.status, 405, "{method} {path}: {a:?}");
            assert_ne!(
                a.json["type"], "urn:disburse:problem:no-route",
                "{method} {path}"
            );
        }
        // Schemas referenced are defined; problem answers are problem+json.
        let text = String::from_utf8_lossy(&doc.bytes).to_string();
        for schema in [
            "Withdrawal",
            "Payout",
            "Problem",
            "WithdrawalRequest",
            "Correction",
        ] {
            assert!(
                doc.json["components"]["schemas"][schema].is_object(),
                "{schema}"
            );
        }
        assert!(text.contains("application/problem+json"));
        assert!(doc.json["components"]["securitySchemes"]["merchant_api_key"].is_object());
        let post = &doc.json["paths"]["/v1/withdrawals"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/WithdrawalRequest"
        );
        assert!(post["security"][0]["merchant_api_key"].is_array(), "{post}");
        assert!(
            post["responses"]["422"]["content"]["application/problem+json"].is_object(),
            "{post}"
        );
        let upload = &doc.json["paths"]["/ops/v1/result-files"]["post"];
        assert!(
            upload["requestBody"]["content"]["multipart/form-data"].is_object(),
            "{upload}"
        );
        assert!(doc.json["paths"]["/ops/v1/login"]["post"]["security"].is_null());
        let _: Value = doc.json;
    }
);

both_backends!(
    the_inbox_watcher_imports_and_moves_files,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        let p = app
            .engine
            .create_payout(
                &OrderRef {
                    order_no: OrderNo::parse("W1").unwrap(),
                    merchant: None,
                },
                None,
                Utc::now(),
                &desk(),
            )
            .await
            .unwrap()
            .into_payout()
            .unwrap();
        // The batch submitter writes the file to the channel's outbox directory.
        let made = disburse_server::submit_batches(&app.engine, 10).await;
        assert_eq!(made.len(), 1, "{made:?}");
        let (batch, path) = &made[0];
        assert!(
            path.starts_with(app.dir.join("sepa-file").join("outbox")),
            "{path:?}"
        );
        assert!(!std::fs::read(path).unwrap().is_empty());
        assert!(disburse_server::submit_batches(&app.engine, 10)
            .await
            .is_empty());

        let inbox = app.dir.join("sepa-file").join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let report = crate::ops_api_pain002(&batch.message_id, &p.payout_no);
        std::fs::write(inbox.join("status-1.xml"), &report).unwrap();
        std::fs::write(inbox.join("broken.xml"), &report[..150]).unwrap();
        std::fs::write(inbox.join("later.xml.part"), "still copying").unwrap();
        let outcomes = disburse_server::import_inboxes(&app.engine, Duration::ZERO, 100).await;
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        let ok = outcomes.iter().find(|o| o.result.is_ok()).unwrap();
        assert_eq!(ok.moved_to, inbox.join("done").join("status-1.xml"));
        assert_eq!(ok.result.as_ref().unwrap().applied, 1);
        let bad = outcomes.iter().find(|o| o.result.is_err()).unwrap();
        assert_eq!(bad.moved_to, inbox.join("failed").join("broken.xml"));
        let note =
            std::fs::read_to_string(inbox.join("failed").join("broken.xml.error.txt")).unwrap();
        assert!(!note.trim().is_empty());
        assert!(
            inbox.join("later.xml.part").exists(),
            "a file being copied is left alone"
        );
        assert!(!inbox.join("status-1.xml").exists());
        // The same file dropped again is "already imported", and moved to done/ beside the first.
        std::fs::write(inbox.join("status-1.xml"), &report).unwrap();
        let again = disburse_server::import_inboxes(&app.engine, Duration::ZERO, 100).await;
        assert_eq!(again.len(), 1);
        assert!(again[0].result.as_ref().unwrap().already_imported);
        assert_eq!(again[0].moved_to, inbox.join("done").join("status-1.xml.1"));
        let w = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(w.json["payouts"][0]["state"], "failed");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_api_and_workers_and_stops_on_shutdown() {
    // Logs go through the test harness's capture (serve installs its own only if none is).
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let db = disburse_store::testing::TestDb::fresh(
        disburse_store::testing::TestBackend::Sqlite,
        "serve",
    )
    .await
    .unwrap();
    let dir = disburse_store::testing::temp_dir();
    let engine = Arc::new(disburse_engine::Engine::new(
        disburse_store::Db::open(&db.url).await.unwrap(),
        config_in(&dir),
        disburse_core::crypto::AccountKey::generate(),
    ));
    let m = disburse_core::MerchantId::parse("acme").unwrap();
    engine
        .add_merchant(&m, "Acme", Utc::now(), &desk())
        .await
        .unwrap();
    engine
        .set_bank_account(&m, &iban_account(IBAN_1), Utc::now(), &desk())
        .await
        .unwrap();
    engine
        .fund(&m, eur(10_000), None, Utc::now(), &desk())
        .await
        .unwrap();
    let key = disburse_server::create_api_key(&engine, &m, Utc::now())
        .await
        .unwrap();

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = disburse_server::WorkerSettings {
        payout_start_interval: Duration::from_millis(100),
        sweep_interval: Duration::from_millis(100),
        batch_interval: Duration::from_millis(100),
        inbox_interval: Duration::from_millis(100),
        inbox_settle: Duration::ZERO,
        ..Default::default()
    };
    let served = tokio::spawn(disburse_server::serve_with(
        engine.clone(),
        disburse_server::ServeOptions {
            listen: ([127, 0, 0, 1], port).into(),
            api: true,
            workers: true,
            json_logs: false,
        },
        settings,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server answers");
    let created = client
        .post(format!("{base}/v1/withdrawals"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"order_no": "W1", "amount_minor": 1_000, "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    engine
        .create_payout(
            &OrderRef {
                order_no: OrderNo::parse("W1").unwrap(),
                merchant: None,
            },
            None,
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    // The batch submitter picks the pending payout up.
    let outbox = dir.join("sepa-file").join("outbox");
    let mut written = false;
    for _ in 0..100 {
        if std::fs::read_dir(&outbox)
            .map(|d| d.count() > 0)
            .unwrap_or(false)
        {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written, "a batch file in {outbox:?}");
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve stops")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer listening"
    );
    std::fs::remove_dir_all(&dir).ok();
}
