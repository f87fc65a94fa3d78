//! Issue #9, the service: hostile text, replays, credentials, held webhooks, login throttle,
//! webhook URL guard, slow clients.

use chrono::Utc;
use disburse_core::correction::Role;
use disburse_core::{BankResult, OrderNo, PayoutNo};
use disburse_engine::{OrderRef, ResultSource};
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::*;

/// A rejected payout of `order_no` on the sandbox API channel, for corrections.
async fn rejected_payout(app: &TestApp, order_no: &str) -> String {
    let p = app
        .engine
        .create_payout(
            &OrderRef {
                order_no: OrderNo::parse(order_no).unwrap(),
                merchant: None,
            },
            Some("sandbox-api"),
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap()
        .into_payout()
        .unwrap();
    app.engine
        .apply_bank_result(
            &PayoutNo::parse(&p.payout_no).unwrap(),
            &BankResult::Rejected {
                reason_code: "AC04".into(),
                reason_text: None,
                instructed: None,
            },
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

async fn login(app: &TestApp, name: &str, password: &str) -> Answer {
    app.send_json(
        Method::POST,
        "/ops/v1/login",
        "",
        None,
        json!({"name": name, "password": password}),
    )
    .await
}

both_backends!(
    nul_and_control_characters_are_refused_naming_the_field,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        // Cancel reason.
        app.post(
            "/v1/withdrawals/W1/cancel",
            &key,
            json!({"reason": "no\u{0}thanks"}),
        )
        .await
        .assert_problem(422, Some("reason"));
        app.post(
            "/v1/withdrawals/W1/cancel",
            &key,
            json!({"reason": "x".repeat(501)}),
        )
        .await
        .assert_problem(422, Some("reason"));
        // Login name and password.
        login(&app, "ad\u{0}a", "whatever it is")
            .await
            .assert_problem(422, Some("name"));
        login(&app, "ada", "pass\u{0}word-long-enough")
            .await
            .assert_problem(422, Some("password"));
        // Correction reason, evidence and reason code.
        assert_eq!(app.withdraw(&key, "W2", 1_000).await.status, 201);
        let payout_no = rejected_payout(&app, "W2").await;
        let olga = app.operator("olga", Role::Operator).await;
        let proposal = |reason: &str, code: &str| {
            json!({
                "payout_no": payout_no,
                "correction": {"kind": "record_return", "reason_code": code},
                "reason": reason,
                "evidence": "bank letter 7",
            })
        };
        app.post(
            "/ops/v1/corrections",
            &olga,
            proposal("bank\u{0}said", "AC04"),
        )
        .await
        .assert_problem(422, Some("reason"));
        app.post(
            "/ops/v1/corrections",
            &olga,
            proposal("bank said", "AC\u{0}4"),
        )
        .await
        .assert_problem(422, Some("correction.reason_code"));
        app.post(
            "/ops/v1/corrections/1/reject",
            &olga,
            json!({"reason": "\u{1b}[31m"}),
        )
        .await
        .assert_problem(422, Some("reason"));
        // Nothing of it reached the books: the order is still open, no correction exists.
        let w = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(w.json["state"], "open", "{w:?}");
        assert!(app.engine.corrections(None).await.unwrap().is_empty());
    }
);

both_backends!(duplicate_json_keys_are_refused, |app: TestApp| async move {
    let key = app.merchant("acme", 100_000).await;
    let a = app
        .send(
            Method::POST,
            "/v1/withdrawals",
            Some(&key),
            &[("content-type", "application/json")],
            Some(
                br#"{"order_no": "W1", "amount_minor": 1, "amount_minor": 90000, "currency": "EUR"}"#
                    .to_vec(),
            ),
        )
        .await;
    a.assert_problem(400, Some("amount_minor"));
    assert_eq!(app.get("/v1/withdrawals/W1", &key).await.status, 404);
});

both_backends!(
    replays_keep_location_expire_and_never_show_a_secret_again,
    |app: TestApp| async move {
        use sqlx::Row;
        let key = app.merchant("acme", 100_000).await;
        let body = json!({"order_no": "W1", "amount_minor": 100, "currency": "EUR"});
        let first = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                body.clone(),
            )
            .await;
        let replay = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                body.clone(),
            )
            .await;
        assert_eq!(first.status, 201);
        assert_eq!(replay.status, 201, "{replay:?}");
        assert_eq!(replay.headers["idempotent-replayed"], "true");
        assert_eq!(replay.headers["location"], "/v1/withdrawals/W1");
        assert_eq!(first.headers["location"], replay.headers["location"]);

        // 25 hours later the key is a new key: the request runs again (the order exists: 200).
        sqlx::query("UPDATE idempotency_keys SET created_at = $1")
            .bind(disburse_store::fmt_time(
                Utc::now() - chrono::Duration::hours(25),
            ))
            .execute(app.engine.db().pool())
            .await
            .unwrap();
        let late = app
            .send_json(Method::POST, "/v1/withdrawals", &key, Some("k-1"), body)
            .await;
        assert_eq!(late.status, 200, "{late:?}");
        assert!(late.headers.get("idempotent-replayed").is_none());

        // A secret is shown once: a replay of the answer that made it has none.
        let hook = json!({"url": "https://shop.example/hooks"});
        let set = app
            .send_json(Method::PUT, "/v1/webhook", &key, Some("w-1"), hook.clone())
            .await;
        assert!(set.json["secret"].as_str().unwrap().starts_with("whsec_"));
        let again = app
            .send_json(Method::PUT, "/v1/webhook", &key, Some("w-1"), hook)
            .await;
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.json["url"], "https://shop.example/hooks");
        assert!(again.json.get("secret").is_none(), "{again:?}");
        for _ in 0..2 {
            let rotated = app
                .send(
                    Method::POST,
                    "/v1/webhook/rotate-secret",
                    Some(&key),
                    &[("idempotency-key", "r-1")],
                    None,
                )
                .await;
            assert_eq!(rotated.status, 200, "{rotated:?}");
            let replayed = rotated.headers.get("idempotent-replayed").is_some();
            assert_eq!(
                rotated.json.get("secret").is_some(),
                !replayed,
                "{rotated:?}"
            );
        }
        let stored = sqlx::query("SELECT COUNT(*) AS n FROM idempotency_keys")
            .fetch_one(app.engine.db().pool())
            .await
            .unwrap();
        assert_eq!(stored.try_get::<i64, _>("n").unwrap(), 3);
        // The sweeper's purge removes what is past retention.
        let purged = disburse_server::purge_expired_idempotency(
            app.engine.db(),
            Utc::now() + chrono::Duration::hours(25),
        )
        .await
        .unwrap();
        assert_eq!(purged, 3);
    }
);

both_backends!(
    upload_errors_name_no_server_path,
    |app: TestApp| async move {
        let olga = app.operator("olga", Role::Operator).await;
        let (ct, body) =
            crate::ops_api::multipart("broken.xml", b"<?xml version=\"1.0\"?><Document><x", None);
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
        let detail = broken.json["detail"].as_str().unwrap();
        let tmp = std::env::temp_dir().display().to_string();
        assert!(
            !detail.contains(&tmp) && !detail.contains("/tmp"),
            "{detail}"
        );
        assert!(detail.contains("broken.xml"), "{detail}");
    }
);

/// The SQLite file and its WAL are owner-only once the service has started on them.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = disburse_store::testing::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("books.db");
    std::fs::File::create(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = file.display().to_string();
    let engine = std::sync::Arc::new(disburse_engine::Engine::new(
        disburse_store::Db::open(&url).await.unwrap(),
        config_in(&dir),
        disburse_core::crypto::AccountKey::generate(),
    ));
    let opts = disburse_server::ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        api: true,
        workers: false,
        json_logs: false,
    };
    disburse_server::serve(engine.clone(), opts, async {})
        .await
        .unwrap();
    // A write after the start goes through a WAL made with the main file's mode.
    disburse_server::create_api_key(
        &engine,
        &disburse_core::MerchantId::parse("nobody").unwrap(),
        Utc::now(),
    )
    .await
    .ok();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{url}{suffix}"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", p.display());
    }
    std::fs::remove_dir_all(dir).ok();
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action = $1")
        .bind(action.to_string())
        .fetch_one(app.engine.db().pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

both_backends!(
    api_keys_are_revoked_rotated_and_expire,
    |app: TestApp| async move {
        use disburse_server::credentials;
        let acme = disburse_core::MerchantId::parse("acme").unwrap();
        let who = desk();
        let first = app.merchant("acme", 0).await;
        assert_eq!(app.get("/v1/balance", &first).await.status, 200);
        // Rotation with an overlap: both keys work until the overlap ends.
        let r = credentials::rotate_api_key(
            &app.engine,
            &acme,
            chrono::Duration::hours(1),
            None,
            Utc::now(),
            &who,
        )
        .await
        .unwrap();
        assert_eq!(r.old_key_prefixes, vec![first[..12].to_string()]);
        assert_eq!(app.get("/v1/balance", &first).await.status, 200);
        assert_eq!(app.get("/v1/balance", &r.api_key).await.status, 200);
        // Without overlap the older keys stop at once.
        let r2 = credentials::rotate_api_key(
            &app.engine,
            &acme,
            chrono::Duration::zero(),
            None,
            Utc::now(),
            &who,
        )
        .await
        .unwrap();
        app.get("/v1/balance", &first)
            .await
            .assert_problem(401, None);
        app.get("/v1/balance", &r.api_key)
            .await
            .assert_problem(401, None);
        assert_eq!(app.get("/v1/balance", &r2.api_key).await.status, 200);
        // Revoked: refused at once.
        credentials::revoke_api_key(
            &app.engine,
            &acme,
            &r2.key_prefix,
            Some("leaked"),
            Utc::now(),
            &who,
        )
        .await
        .unwrap();
        app.get("/v1/balance", &r2.api_key)
            .await
            .assert_problem(401, None);
        assert!(
            credentials::revoke_api_key(&app.engine, &acme, &r2.key_prefix, None, Utc::now(), &who)
                .await
                .is_err(),
            "revoked once"
        );
        // An expiring key works until its time, then not.
        assert!(
            credentials::issue_api_key(
                &app.engine,
                &acme,
                Some(Utc::now() - chrono::Duration::hours(1)),
                Utc::now(),
                &who
            )
            .await
            .is_err(),
            "an expiry in the past is refused"
        );
        let short = credentials::issue_api_key(
            &app.engine,
            &acme,
            Some(Utc::now() + chrono::Duration::hours(1)),
            Utc::now(),
            &who,
        )
        .await
        .unwrap();
        assert_eq!(app.get("/v1/balance", &short).await.status, 200);
        sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE expires_at IS NOT NULL")
            .bind(disburse_store::fmt_time(
                Utc::now() - chrono::Duration::seconds(1),
            ))
            .execute(app.engine.db().pool())
            .await
            .unwrap();
        app.get("/v1/balance", &short)
            .await
            .assert_problem(401, None);
        let keys = credentials::list_api_keys(&app.engine, &acme)
            .await
            .unwrap();
        assert_eq!(keys.len(), 4);
        assert!(keys.iter().all(|k| k.key_prefix.len() == 12), "{keys:?}");
        assert_eq!(audit_count(&app, "merchant.api_key_issued").await, 2);
        assert_eq!(audit_count(&app, "merchant.api_key_rotated").await, 2);
        assert_eq!(audit_count(&app, "merchant.api_key_revoked").await, 1);
    }
);

both_backends!(
    operator_sessions_are_listed_and_revoked,
    |app: TestApp| async move {
        let ada = app.operator("ada", Role::Admin).await;
        let olga = app.operator("olga", Role::Operator).await;
        app.get("/ops/v1/sessions", &olga)
            .await
            .assert_problem(403, None);
        let list = app.get("/ops/v1/sessions", &ada).await;
        assert_eq!(list.status, 200, "{list:?}");
        let sessions = list.json.as_array().unwrap().clone();
        assert!(
            !list.bytes.windows(4).any(|w| w == b"dso_"),
            "no token shown"
        );
        let olgas: Vec<_> = sessions
            .iter()
            .filter(|s| s["operator"] == "olga")
            .collect();
        assert_eq!(olgas.len(), 1, "{sessions:?}");
        let id = olgas[0]["id"].as_str().unwrap();
        assert_eq!(app.get("/ops/v1/me", &olga).await.status, 200);
        app.post(&format!("/ops/v1/sessions/{id}/revoke"), &olga, json!({}))
            .await
            .assert_problem(403, None);
        let revoked = app
            .post(&format!("/ops/v1/sessions/{id}/revoke"), &ada, json!({}))
            .await;
        assert_eq!(
            (revoked.status, &revoked.json["revoked"]),
            (200, &json!(1)),
            "{revoked:?}"
        );
        app.get("/ops/v1/me", &olga).await.assert_problem(401, None);
        assert_eq!(app.get("/ops/v1/me", &ada).await.status, 200);
        app.post(&format!("/ops/v1/sessions/{id}/revoke"), &ada, json!({}))
            .await
            .assert_problem(404, None);
        assert_eq!(audit_count(&app, "operator.session_revoked").await, 1);
        // All of an operator's sessions, as the CLI does it.
        let n = disburse_server::credentials::revoke_sessions(
            &app.engine,
            &disburse_server::credentials::SessionTarget::Operator(
                disburse_core::OperatorName::parse("ada").unwrap(),
            ),
            Utc::now(),
            &desk(),
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
        app.get("/ops/v1/me", &ada).await.assert_problem(401, None);
    }
);

both_backends!(
    messages_behind_a_dead_letter_are_shown_as_held,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        let set = app
            .put(
                "/v1/webhook",
                &key,
                json!({"url": format!("http://127.0.0.1:{port}/hook")}),
            )
            .await;
        *receiver.secret.lock().unwrap() = set.json["secret"].as_str().unwrap().to_string();
        *receiver.fail_first.lock().unwrap() = 3;
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        assert_eq!(
            app.post("/v1/withdrawals/W1/cancel", &key, json!({}))
                .await
                .status,
            200
        );
        let d = quick_dispatcher(app.engine.clone(), 3);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while *receiver.fail_first.lock().unwrap() > 0 {
            assert!(tokio::time::Instant::now() < deadline);
            d.run_once().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let vic = app.operator("vic", Role::Viewer).await;
        let dead = app.get("/ops/v1/webhooks/deliveries", &vic).await;
        assert_eq!(dead.json.as_array().unwrap().len(), 1, "{dead:?}");
        assert_eq!(dead.json[0]["held_behind"], 1, "{dead:?}");
        let dead_id = dead.json[0]["outbox_id"].as_i64().unwrap();
        let held = app
            .get("/ops/v1/webhooks/deliveries?status=held", &vic)
            .await;
        assert_eq!(held.status, 200, "{held:?}");
        let held = held.json.as_array().unwrap().clone();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0]["status"], "held");
        assert_eq!(held[0]["blocked_by"], dead_id);
        assert_eq!(held[0]["topic"], "order.cancelled");
        let pending = app
            .get("/ops/v1/webhooks/deliveries?status=pending", &vic)
            .await;
        assert_eq!(
            pending.json,
            json!([]),
            "a held message is not counted as pending"
        );
        let summary = app.get("/ops/v1/webhooks/dead-letters", &vic).await;
        assert_eq!(summary.json, json!({"dead": 1, "held": 1}), "{summary:?}");
        // Redelivered: the dead letter and the one behind it go out, in order.
        let olga = app.operator("olga", Role::Operator).await;
        let r = app
            .send(
                Method::POST,
                &format!("/ops/v1/webhooks/deliveries/{dead_id}/redeliver"),
                Some(&olga),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 202);
        while receiver.seen().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline);
            d.run_once().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let topics: Vec<_> = receiver.seen().iter().map(|s| s.topic.clone()).collect();
        assert_eq!(topics, ["order.accepted", "order.cancelled"]);
        let summary = app.get("/ops/v1/webhooks/dead-letters", &vic).await;
        assert_eq!(summary.json, json!({"dead": 0, "held": 0}));
        server.abort();
    }
);

fn tight_login() -> disburse_server::ServiceSettings {
    disburse_server::ServiceSettings {
        login: disburse_server::LoginLimits {
            failures_per_name: 3,
            attempts_per_address: 1000,
            window: std::time::Duration::from_secs(60),
            lockout_after: 100,
            hashing_concurrency: 1,
        },
        ..test_settings()
    }
}

fn lockout_login() -> disburse_server::ServiceSettings {
    let mut s = tight_login();
    s.login.failures_per_name = 1000;
    s.login.lockout_after = 4;
    s
}

fn address_login() -> disburse_server::ServiceSettings {
    let mut s = tight_login();
    s.login.failures_per_name = 1000;
    s.login.attempts_per_address = 5;
    s
}

both_backends!(
    login_is_throttled_per_name,
    tight_login(),
    |app: TestApp| async move {
        let _ada = app.operator("ada", Role::Admin).await;
        for _ in 0..3 {
            login(&app, "ada", "not the password at all")
                .await
                .assert_problem(401, None);
        }
        // The right password too: the name waits out its window.
        let throttled = login(&app, "ada", "ada-correct-horse-battery").await;
        throttled.assert_problem(429, None);
        let wait: u64 = throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=61).contains(&wait), "{wait}");
        // Another name is not affected; failed logins are in the audit trail.
        let _bert = app.operator("bert", Role::Approver).await;
        assert_eq!(audit_count(&app, "operator.login_failed").await, 3);
        login(&app, "nobody", "not the password at all")
            .await
            .assert_problem(401, None);
        let unknown: i64 = {
            use sqlx::Row;
            sqlx::query(
                "SELECT COUNT(*) AS n FROM audit_events WHERE subject = 'operator:(unknown)'",
            )
            .fetch_one(app.engine.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
        };
        assert_eq!(unknown, 1, "an unknown name is audited without the name");
    }
);

both_backends!(
    login_is_throttled_per_address,
    address_login(),
    |app: TestApp| async move {
        // Each operator() helper logs in once from this address.
        let _ada = app.operator("ada", Role::Admin).await;
        for i in 0..4 {
            login(&app, &format!("guess{i}"), "not the password at all")
                .await
                .assert_problem(401, None);
        }
        let a = login(&app, "ada", "ada-correct-horse-battery").await;
        a.assert_problem(429, None);
        assert!(a.headers.get("retry-after").is_some());
    }
);

both_backends!(
    repeated_failures_lock_out_until_an_admin_unlocks,
    lockout_login(),
    |app: TestApp| async move {
        let root = app.operator("root", Role::Admin).await;
        let _ada = app.operator("ada", Role::Operator).await;
        for _ in 0..4 {
            login(&app, "ada", "not the password at all")
                .await
                .assert_problem(401, None);
        }
        login(&app, "ada", "ada-correct-horse-battery")
            .await
            .assert_problem(403, None);
        assert_eq!(audit_count(&app, "operator.locked_out").await, 1);
        let u = app
            .post("/ops/v1/operators/ada/unlock", &root, json!({}))
            .await;
        assert_eq!(
            u.json,
            json!({"operator": "ada", "was_locked": true}),
            "{u:?}"
        );
        assert_eq!(audit_count(&app, "operator.unlocked").await, 1);
        let ok = login(&app, "ada", "ada-correct-horse-battery").await;
        assert_eq!(ok.status, 200, "{ok:?}");
        // A success forgets earlier failures.
        login(&app, "ada", "not the password at all")
            .await
            .assert_problem(401, None);
        assert_eq!(
            login(&app, "ada", "ada-correct-horse-battery").await.status,
            200
        );
        assert!(app.engine.db().verify_audit().await.unwrap().is_empty());
    }
);

/// Password checks are bounded: with one slot, a flood of logins runs one hash at a time and
/// the merchant API keeps answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_does_not_starve_the_api() {
    let mut settings = tight_login();
    settings.login.failures_per_name = 1000;
    let app = spawn_app_with(
        disburse_store::testing::TestBackend::Sqlite,
        "loginflood",
        settings,
    )
    .await
    .unwrap();
    let key = app.merchant("acme", 0).await;
    let _ada = app.operator("ada", Role::Admin).await;
    let base = app.base.clone();
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = format!("{base}/ops/v1/login");
        flood.spawn(async move {
            client
                .post(url)
                .json(&json!({"name": "ada", "password": "not the password at all"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    let started = std::time::Instant::now();
    let mut answered = 0;
    while started.elapsed() < std::time::Duration::from_millis(500) {
        let t = std::time::Instant::now();
        assert_eq!(app.get("/v1/balance", &key).await.status, 200);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        answered += 1;
    }
    assert!(
        answered >= 5,
        "{answered} balance answers in 500 ms during the flood"
    );
    while let Some(r) = flood.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 401);
    }
}

fn strict() -> disburse_server::ServiceSettings {
    disburse_server::ServiceSettings::default()
}

both_backends!(
    webhook_urls_inside_are_refused_at_registration,
    strict(),
    |app: TestApp| async move {
        let key = app.merchant("acme", 0).await;
        for bad in [
            "http://shop.example/hook",
            "https://127.0.0.1/hook",
            "https://0x7f.1/hook",
            "https://2130706433/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::1]/",
            "https://0.0.0.0/",
            "https://localhost/",
            "https://metadata.google.internal/",
        ] {
            app.put("/v1/webhook", &key, json!({"url": bad}))
                .await
                .assert_problem(422, Some("url"));
        }
        assert_eq!(
            app.get("/v1/webhook", &key).await.status,
            404,
            "nothing was set"
        );
        let ok = app
            .put(
                "/v1/webhook",
                &key,
                json!({"url": "https://shop.example/hook"}),
            )
            .await;
        assert_eq!(ok.status, 200, "{ok:?}");
    }
);

/// Names resolve to what the test says; lookups are counted.
struct FixedResolver(std::collections::HashMap<String, std::net::IpAddr>);

impl disburse_server::urlguard::HostResolver for FixedResolver {
    fn lookup(
        &self,
        host: &str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::io::Result<Vec<std::net::IpAddr>>>
                + Send
                + 'static,
        >,
    > {
        let found = self.0.get(host).copied();
        Box::pin(async move { Ok(found.into_iter().collect()) })
    }
}

fn resolver(entries: &[(&str, &str)]) -> std::sync::Arc<FixedResolver> {
    std::sync::Arc::new(FixedResolver(
        entries
            .iter()
            .map(|(h, ip)| (h.to_string(), ip.parse().unwrap()))
            .collect(),
    ))
}

async fn last_error(app: &TestApp) -> String {
    use sqlx::Row;
    sqlx::query(
        "SELECT COALESCE(last_error, '') AS e FROM webhook_deliveries ORDER BY outbox_id DESC",
    )
    .fetch_one(app.engine.db().pool())
    .await
    .unwrap()
    .try_get("e")
    .unwrap()
}

both_backends!(
    webhook_deliveries_inside_are_refused_without_connecting,
    strict(),
    |app: TestApp| async move {
        // A listener of our own, counting who connects: it must see nobody.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = accepted.clone();
        let watcher = tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(
            app.put(
                "/v1/webhook",
                &key,
                json!({"url": "https://evil.example/hook"})
            )
            .await
            .status,
            200
        );
        let mut config = quick_dispatcher_config(1);
        config.url_policy = disburse_server::urlguard::UrlPolicy::default();
        let d = disburse_server::Dispatcher::with_resolver(
            app.engine.clone(),
            config,
            resolver(&[
                ("evil.example", "10.0.0.1"),
                ("meta.example", "169.254.169.254"),
                ("mapped.example", "::ffff:169.254.169.254"),
                ("rebind.example", "127.0.0.1"),
            ]),
        )
        .unwrap();
        let mut order = 0;
        for (url, expected) in [
            // The name looked fine at registration; at delivery it resolves inside.
            (
                "https://evil.example/hook".to_string(),
                "10.0.0.1 is private",
            ),
            (
                "https://meta.example/".to_string(),
                "169.254.169.254 is link-local",
            ),
            ("https://mapped.example/".to_string(), "IPv4-mapped"),
            (
                format!("https://rebind.example:{port}/hook"),
                "127.0.0.1 is loopback",
            ),
            // Stored before the guard existed (or written by hand): refused all the same.
            (
                format!("https://127.0.0.1:{port}/hook"),
                "127.0.0.1 is loopback",
            ),
            (
                format!("http://shop.example:{port}/hook"),
                "http URLs are not allowed",
            ),
        ] {
            sqlx::query("UPDATE merchant_webhooks SET url = $1")
                .bind(url.clone())
                .execute(app.engine.db().pool())
                .await
                .unwrap();
            order += 1;
            assert_eq!(
                app.withdraw(&key, &format!("W{order}"), 100).await.status,
                201
            );
            let tick = d.run_once().await.unwrap();
            assert_eq!(tick.dead, 1, "{url}: {tick:?}");
            let error = last_error(&app).await;
            assert!(
                error.contains("refused") && error.contains(expected),
                "{url}: {error}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            d.connection_attempts(),
            0,
            "no address was handed to the client"
        );
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "nobody connected"
        );
        watcher.abort();
    }
);

both_backends!(
    the_development_allow_list_reaches_the_tests_own_receiver,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        let set = app
            .put(
                "/v1/webhook",
                &key,
                json!({"url": format!("http://receiver.test:{port}/hook")}),
            )
            .await;
        assert_eq!(set.status, 200, "{set:?}");
        *receiver.secret.lock().unwrap() = set.json["secret"].as_str().unwrap().to_string();
        assert_eq!(app.withdraw(&key, "W1", 100).await.status, 201);
        let d = disburse_server::Dispatcher::with_resolver(
            app.engine.clone(),
            quick_dispatcher_config(3),
            resolver(&[("receiver.test", "127.0.0.1")]),
        )
        .unwrap();
        let tick = d.run_once().await.unwrap();
        assert_eq!(tick.delivered, 1, "{tick:?} {}", last_error(&app).await);
        assert_eq!(receiver.seen().len(), 1);
        assert_eq!(d.connection_attempts(), 1, "one checked address handed out");
        server.abort();
    }
);

fn slow_client_limits() -> disburse_server::ServiceSettings {
    disburse_server::ServiceSettings {
        http: disburse_server::HttpLimits {
            header_read_timeout: std::time::Duration::from_millis(800),
            body_timeout: std::time::Duration::from_millis(800),
            upload_body_timeout: std::time::Duration::from_millis(800),
            max_connections: 3,
        },
        ..test_settings()
    }
}

/// Reads until the server closes the connection; what came and when it closed (None: still
/// open after `wait`).
async fn until_closed(
    s: &mut tokio::net::TcpStream,
    wait: std::time::Duration,
) -> (String, Option<std::time::Duration>) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + wait),
            s.read(&mut buf),
        )
        .await
        {
            Err(_) => return (String::from_utf8_lossy(&out).to_string(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).to_string(),
                    Some(started.elapsed()),
                )
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(
        disburse_store::testing::TestBackend::Sqlite,
        "slowclients",
        slow_client_limits(),
    )
    .await
    .unwrap();
    let wait = std::time::Duration::from_secs(4);
    let in_time = |closed: Option<std::time::Duration>, what: &str| {
        let t = closed.unwrap_or_else(|| panic!("{what}: still open after {wait:?}"));
        assert!(
            t >= std::time::Duration::from_millis(500) && t < std::time::Duration::from_secs(3),
            "{what}: {t:?}"
        );
    };
    // Partial headers, then nothing.
    let mut partial = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = until_closed(&mut partial, wait).await;
    in_time(closed, "partial headers");
    // A socket that never sends.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (_, closed) = until_closed(&mut idle, wait).await;
    in_time(closed, "idle socket");
    // A kept-alive connection after its answer.
    let mut kept = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = until_closed(&mut kept, wait).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    in_time(closed, "kept-alive idle connection");
    // A body that stops half way: 408, and the connection ends.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(
        b"POST /ops/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\": ",
    )
    .await
    .unwrap();
    let (answer, closed) = until_closed(&mut slow, wait).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    in_time(closed, "slow body");
    // Refused before its body was read: the connection is not reused for another request.
    let unread = app
        .send(
            Method::POST,
            "/v1/withdrawals",
            None,
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(unread.status, 401);
    assert_eq!(unread.headers["connection"], "close", "{unread:?}");
    let key = app.merchant("acme", 100_000).await;
    let read = app.withdraw(&key, "W1", 100).await;
    assert_eq!(read.status, 201);
    assert!(read.headers.get("connection").is_none(), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    let app = spawn_app_with(
        disburse_store::testing::TestBackend::Sqlite,
        "conncap",
        slow_client_limits(),
    )
    .await
    .unwrap();
    let mut hogs = Vec::new();
    for _ in 0..3 {
        hogs.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let url = format!("{}/healthz", app.base);
    assert!(
        client.get(&url).send().await.is_err(),
        "a fourth connection is not served"
    );
    // The idle ones are cut off by the header timeout; then there is room again.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let ok = client.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    drop(hogs);
}

both_backends!(
    the_openapi_document_lists_every_answer_and_constrains_fields,
    |app: TestApp| async move {
        let doc = app
            .send(Method::GET, "/openapi.json", None, &[], None)
            .await
            .json;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let has = |s: &str| responses.contains_key(s);
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if secured {
                    assert!(has("401"), "{method} {path}: 401");
                }
                if op.get("requestBody").is_some() {
                    for s in ["400", "413", "415", "422"] {
                        assert!(has(s), "{method} {path}: {s}");
                    }
                }
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                if params.iter().any(|p| p["in"] == "path") {
                    assert!(has("404"), "{method} {path}: 404");
                }
                if params.iter().any(|p| p["in"] == "query") {
                    assert!(has("400"), "{method} {path}: 400");
                }
                for (status, r) in responses {
                    if status.starts_with('4') {
                        assert!(
                            r["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status}: problem+json"
                        );
                    }
                }
            }
        }
        let schemas = &doc["components"]["schemas"];
        let request = &schemas["WithdrawalRequest"]["properties"];
        assert_eq!(request["order_no"]["pattern"], "^[A-Za-z0-9._/-]{1,35}$");
        assert_eq!(request["order_no"]["maxLength"], 35);
        assert_eq!(
            request["currency"]["$ref"],
            "#/components/schemas/CurrencyCode"
        );
        assert!(schemas["CurrencyCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("EUR")));
        assert_eq!(
            schemas["Withdrawal"]["properties"]["state"]["$ref"],
            "#/components/schemas/OrderStateName"
        );
        assert_eq!(
            schemas["OrderStateName"]["enum"],
            json!(["open", "paying", "paid", "action_required", "cancelled"])
        );
        assert_eq!(
            schemas["Payout"]["properties"]["state"]["$ref"],
            "#/components/schemas/PayoutStateName"
        );
        let login = &doc["paths"]["/ops/v1/login"]["post"]["responses"];
        assert!(
            login["429"].is_object(),
            "the throttle's answer is documented"
        );
    }
);
