//! Webhooks to a local receiver: signed, retried while it is down, in order per order, dead-lettered
//! after the last attempt, redelivered on request, and delivered once by two dispatchers.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::*;

/// A port with nobody listening on it (yet).
async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn set_webhook(app: &TestApp, key: &str, port: u16) -> String {
    let a = app
        .send_json(
            reqwest::Method::PUT,
            "/v1/webhook",
            key,
            Some(&format!("set-hook-{port}")),
            json!({"url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string()
}

/// Runs the dispatcher until `done` holds or 20 s pass.
async fn dispatch_until(
    d: &disburse_server::Dispatcher,
    mut done: impl FnMut() -> bool,
) -> Vec<disburse_server::Tick> {
    let mut ticks = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done in time: {ticks:?}"
        );
        ticks.push(d.run_once().await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ticks
}

both_backends!(
    webhooks_are_signed_and_retried_until_the_receiver_is_up,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let port = free_port().await;
        let secret = set_webhook(&app, &key, port).await;
        assert!(secret.starts_with("whsec_"));
        // The secret is nowhere in the database in clear: not where the service keeps it to
        // sign, not in the stored answer an Idempotency-Key would replay.
        for sql in [
            "SELECT secret AS v FROM merchant_webhooks",
            "SELECT COALESCE(response_body, '') AS v FROM idempotency_keys",
        ] {
            use sqlx::Row;
            let rows = sqlx::query(sql)
                .fetch_all(app.engine.db().pool())
                .await
                .unwrap();
            assert!(!rows.is_empty(), "{sql}: nothing stored");
            for row in rows {
                let stored: String = row.try_get("v").unwrap();
                assert!(!stored.contains(&secret), "{sql} holds the secret in clear");
            }
        }
        // Setting the URL again does not show the secret again.
        let again = app
            .put(
                "/v1/webhook",
                &key,
                json!({"url": format!("http://127.0.0.1:{port}/hook")}),
            )
            .await;
        assert!(again.json.get("secret").is_none(), "{again:?}");
        assert_eq!(
            app.get("/v1/webhook", &key).await.json["url"],
            format!("http://127.0.0.1:{port}/hook")
        );
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);

        // The receiver is down: attempts fail and are retried with backoff.
        let d = quick_dispatcher(app.engine.clone(), 8);
        let first = d.run_once().await.unwrap();
        assert_eq!(
            (first.enqueued, first.claimed, first.failed),
            (1, 1, 1),
            "{first:?}"
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        let second = d.run_once().await.unwrap();
        assert_eq!(second.failed, 1, "{second:?}");
        // Not due yet right after a failure: nothing is claimed.
        assert_eq!(d.run_once().await.unwrap().claimed, 0);
        let events = app.get("/v1/events", &key).await;
        assert!(events.json["data"][0]["delivered_at"].is_null());
        let backlog = app.send(Method::GET, "/metrics", None, &[], None).await;
        let text = String::from_utf8_lossy(&backlog.bytes).to_string();
        assert!(
            text.contains("disburse_webhook_backlog{status=\"pending\"} 1"),
            "{text}"
        );

        // It comes up: the message is delivered, signed with the merchant's secret.
        let receiver = Receiver::new();
        *receiver.secret.lock().unwrap() = secret.clone();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let server = receiver.serve(listener);
        dispatch_until(&d, || !receiver.seen().is_empty()).await;
        let seen = receiver.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].topic, "order.accepted");
        assert_eq!(seen[0].order_no.as_deref(), Some("W1"));
        assert!(
            seen[0].signature_ok,
            "the signature verifies with the secret"
        );
        let events = app.get("/v1/events", &key).await;
        assert!(
            events.json["data"][0]["delivered_at"].is_string(),
            "{events:?}"
        );
        // Delivered once: nothing more to do.
        assert_eq!(d.run_once().await.unwrap().claimed, 0);

        // A rotated secret signs what comes next; the old one no longer verifies.
        let rotated = app
            .send(
                Method::POST,
                "/v1/webhook/rotate-secret",
                Some(&key),
                &[],
                None,
            )
            .await;
        assert_eq!(rotated.status, 200, "{rotated:?}");
        let new_secret = rotated.json["secret"].as_str().unwrap().to_string();
        assert_ne!(new_secret, secret);
        assert_eq!(app.withdraw(&key, "W2", 1_000).await.status, 201);
        dispatch_until(&d, || receiver.seen().len() == 2).await;
        assert!(!receiver.seen()[1].signature_ok, "old secret");
        *receiver.secret.lock().unwrap() = new_secret;
        assert_eq!(app.withdraw(&key, "W3", 1_000).await.status, 201);
        dispatch_until(&d, || receiver.seen().len() == 3).await;
        assert!(receiver.seen()[2].signature_ok, "new secret");
        server.abort();
    }
);

both_backends!(
    messages_of_one_order_go_out_in_order,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        *receiver.secret.lock().unwrap() = set_webhook(&app, &key, port).await;
        // W1 accepted then cancelled; W2 accepted. The first delivery fails.
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        let c = app
            .send(
                Method::POST,
                "/v1/withdrawals/W1/cancel",
                Some(&key),
                &[],
                None,
            )
            .await;
        assert_eq!(c.status, 200);
        assert_eq!(app.withdraw(&key, "W2", 1_000).await.status, 201);
        *receiver.fail_first.lock().unwrap() = 1;
        let d = quick_dispatcher(app.engine.clone(), 8);
        let first = d.run_once().await.unwrap();
        // W1's second message waits for its first; W2's goes out.
        assert_eq!(first.claimed, 2, "{first:?}");
        dispatch_until(&d, || receiver.seen().len() == 3).await;
        let seen = receiver.seen();
        let w1: Vec<&str> = seen
            .iter()
            .filter(|r| r.order_no.as_deref() == Some("W1"))
            .map(|r| r.topic.as_str())
            .collect();
        assert_eq!(w1, ["order.accepted", "order.cancelled"], "{seen:?}");
        assert!(seen.iter().all(|r| r.signature_ok));
        server.abort();
    }
);

both_backends!(
    a_message_is_dead_lettered_after_its_last_attempt_and_redelivered_on_request,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        *receiver.secret.lock().unwrap() = set_webhook(&app, &key, port).await;
        *receiver.fail_first.lock().unwrap() = 3;
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        let d = quick_dispatcher(app.engine.clone(), 3);
        let ticks = dispatch_until(&d, || *receiver.fail_first.lock().unwrap() == 0).await;
        assert_eq!(ticks.iter().map(|t| t.dead).sum::<u64>(), 1, "{ticks:?}");
        assert!(receiver.seen().is_empty());
        // Dead: not tried again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(d.run_once().await.unwrap().claimed, 0);

        let viewer = app
            .operator("vic", disburse_core::correction::Role::Viewer)
            .await;
        let ops = app
            .operator("olga", disburse_core::correction::Role::Operator)
            .await;
        let dead = app.get("/ops/v1/webhooks/deliveries", &viewer).await;
        assert_eq!(dead.status, 200, "{dead:?}");
        let list = dead.json.as_array().unwrap();
        assert_eq!(list.len(), 1, "{dead:?}");
        assert_eq!(list[0]["status"], "dead");
        assert_eq!(list[0]["attempts"], 3);
        assert_eq!(list[0]["last_status"], 500);
        assert_eq!(list[0]["order_no"], "W1");
        let id = list[0]["outbox_id"].as_i64().unwrap();
        // A viewer may look, not act.
        app.send(
            Method::POST,
            &format!("/ops/v1/webhooks/deliveries/{id}/redeliver"),
            Some(&viewer),
            &[],
            None,
        )
        .await
        .assert_problem(403, None);
        let r = app
            .send(
                Method::POST,
                &format!("/ops/v1/webhooks/deliveries/{id}/redeliver"),
                Some(&ops),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{r:?}");
        dispatch_until(&d, || receiver.seen().len() == 1).await;
        assert!(receiver.seen()[0].signature_ok);
        let delivered = app
            .get("/ops/v1/webhooks/deliveries?status=delivered", &viewer)
            .await;
        assert_eq!(delivered.json[0]["outbox_id"], id);
        app.send(
            Method::POST,
            "/ops/v1/webhooks/deliveries/999999/redeliver",
            Some(&ops),
            &[],
            None,
        )
        .await
        .assert_problem(404, None);
        // The redelivery request is in the audit trail, and the chain holds.
        let events = app
            .engine
            .db()
            .count_where("audit_events", "action = 'webhook.redelivery_requested'")
            .await
            .unwrap();
        assert_eq!(events, 1);
        assert!(app.engine.db().verify_audit().await.unwrap().is_empty());
        server.abort();
    }
);

both_backends!(
    two_dispatchers_deliver_each_message_once,
    |app: TestApp| async move {
        let key = app.merchant("acme", 10_000_000).await;
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        *receiver.secret.lock().unwrap() = set_webhook(&app, &key, port).await;
        const ORDERS: usize = 30;
        for n in 0..ORDERS {
            assert_eq!(app.withdraw(&key, &format!("W{n}"), 100).await.status, 201);
        }
        for n in 0..ORDERS / 3 {
            let c = app
                .send(
                    Method::POST,
                    &format!("/v1/withdrawals/W{n}/cancel"),
                    Some(&key),
                    &[],
                    None,
                )
                .await;
            assert_eq!(c.status, 200);
        }
        let expected = ORDERS + ORDERS / 3;
        // Two dispatchers, each with its own connection pool: two processes.
        let second = Arc::new(disburse_engine::Engine::new(
            disburse_store::Db::open(&app.db_url).await.unwrap(),
            config_in(&app.dir),
            app.key.clone(),
        ));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let d1 = tokio::spawn(quick_dispatcher(app.engine.clone(), 8).run(stopped.clone()));
        let d2 = tokio::spawn(quick_dispatcher(second, 8).run(stopped));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while receiver.seen().len() < expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                receiver.seen().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give a double delivery the time to show.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(true).unwrap();
        d1.await.unwrap();
        d2.await.unwrap();
        let seen = receiver.seen();
        let mut ids: Vec<i64> = seen.iter().map(|r| r.id).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "a message was delivered twice");
        assert_eq!(ids.len(), expected);
        for n in 0..ORDERS / 3 {
            let topics: Vec<&str> = seen
                .iter()
                .filter(|r| r.order_no.as_deref() == Some(&format!("W{n}")))
                .map(|r| r.topic.as_str())
                .collect();
            assert_eq!(topics, ["order.accepted", "order.cancelled"]);
        }
        assert!(seen.iter().all(|r| r.signature_ok));
        server.abort();
    }
);

both_backends!(
    messages_waiting_for_a_webhook_go_out_once_it_is_set,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        assert_eq!(app.withdraw(&key, "W1", 1_000).await.status, 201);
        let d = quick_dispatcher(app.engine.clone(), 8);
        let tick = d.run_once().await.unwrap();
        assert_eq!((tick.enqueued, tick.claimed), (1, 0), "{tick:?}");
        let vic = app
            .operator("vic", disburse_core::correction::Role::Viewer)
            .await;
        let waiting = app
            .get("/ops/v1/webhooks/deliveries?status=unrouted", &vic)
            .await;
        assert_eq!(waiting.json.as_array().unwrap().len(), 1, "{waiting:?}");
        let receiver = Receiver::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = receiver.serve(listener);
        *receiver.secret.lock().unwrap() = set_webhook(&app, &key, port).await;
        dispatch_until(&d, || receiver.seen().len() == 1).await;
        assert_eq!(receiver.seen()[0].topic, "order.accepted");
        assert!(receiver.seen()[0].signature_ok);
        server.abort();
    }
);
