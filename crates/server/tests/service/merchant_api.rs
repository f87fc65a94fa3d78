//! The merchant API, black-box: withdrawals, isolation, idempotency, bad input.

use chrono::Utc;
use disburse_core::{BankResult, OrderNo, PayoutNo};
use disburse_engine::{OrderRef, ResultSource};
use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::common::*;

both_backends!(
    create_a_withdrawal_and_read_it_back,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let a = app.withdraw(&key, "W1", 25_000).await;
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(a.headers["location"], "/v1/withdrawals/W1");
        assert_eq!(a.json["order_no"], "W1");
        assert_eq!(a.json["state"], "open");
        assert_eq!(a.json["amount_minor"], 25_000);
        assert_eq!(a.json["currency"], "EUR");
        assert_eq!(a.json["payouts"], json!([]));

        let got = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(got.status, 200, "{got:?}");
        assert_eq!(got.json, a.json);

        // The same request again (no idempotency key) answers with the same order: 200.
        let again = app.withdraw(&key, "W1", 25_000).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.json["order_no"], "W1");
        // Another amount under the same number is refused.
        app.withdraw(&key, "W1", 30_000)
            .await
            .assert_problem(409, None);

        let balance = app.get("/v1/balance", &key).await;
        assert_eq!(balance.status, 200);
        assert_eq!(
            balance.json["balances"],
            json!([{"currency": "EUR", "available_minor": 75_000, "withdrawing_minor": 25_000,
                "in_transit_minor": 0, "receivable_minor": 0, "shortfall_minor": 0}])
        );

        // The bank rejects the first payout for a closed account; the merchant fixes its account
        // through the API and the order is paid again under a new payout number.
        let e = &app.engine;
        let order = OrderRef {
            order_no: OrderNo::parse("W1").unwrap(),
            merchant: None,
        };
        let p1 = e
            .create_payout(&order, None, Utc::now(), &desk())
            .await
            .unwrap()
            .into_payout()
            .unwrap();
        assert_eq!(p1.channel_id, "sepa-file");
        e.create_batch("sepa-file", Utc::now(), &desk())
            .await
            .unwrap()
            .unwrap();
        e.apply_bank_result(
            &PayoutNo::parse(&p1.payout_no).unwrap(),
            &BankResult::Rejected {
                reason_code: "AC04".into(),
                reason_text: Some("account closed".into()),
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
        let failed = app.get("/v1/withdrawals/W1", &key).await;
        assert_eq!(failed.json["state"], "action_required", "{failed:?}");
        assert_eq!(failed.json["payouts"][0]["state"], "failed");
        assert_eq!(failed.json["payouts"][0]["reason_code"], "AC04");

        let fixed = app
            .put(
                "/v1/bank-account",
                &key,
                json!({"holder": "Acme GmbH", "iban": IBAN_2}),
            )
            .await;
        assert_eq!(fixed.status, 200, "{fixed:?}");
        assert_eq!(fixed.json["version"], 2);
        assert_eq!(fixed.json["last4"], "2051");
        assert!(
            fixed.to_string_lossy().contains("2051") && !fixed.to_string_lossy().contains(IBAN_2),
            "the account number is masked: {fixed:?}"
        );
        let retried = fixed.json["retried_payouts"].as_array().unwrap().clone();
        assert_eq!(retried.len(), 1, "{fixed:?}");

        let after = app.get("/v1/withdrawals/W1", &key).await;
        let payouts = after.json["payouts"].as_array().unwrap();
        assert_eq!(payouts.len(), 2, "{after:?}");
        assert_eq!(payouts[0]["payout_no"], p1.payout_no.as_str());
        assert_eq!(payouts[0]["state"], "failed");
        assert_eq!(payouts[0]["bank_account_last4"], "3000");
        assert_eq!(payouts[1]["payout_no"], retried[0]);
        assert_eq!(payouts[1]["bank_account_last4"], "2051");
        assert_eq!(
            after.json["order_no"], "W1",
            "the order number never changes"
        );
        assert_eq!(after.json["discrepancies"], json!([]));

        // The list, and the messages the merchant got.
        let list = app.get("/v1/withdrawals", &key).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json["data"][0]["order_no"], "W1");
        assert_eq!(list.json["next_cursor"], serde_json::Value::Null);
        let events = app.get("/v1/events", &key).await;
        let topics: Vec<&str> = events.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["topic"].as_str().unwrap())
            .collect();
        assert!(topics.contains(&"order.accepted"), "{topics:?}");
    }
);

impl Answer {
    fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.bytes).to_string()
    }
}

both_backends!(lists_filter_and_page_by_cursor, |app: TestApp| async move {
    let key = app.merchant("acme", 100_000).await;
    for n in 1..=5 {
        assert_eq!(
            app.withdraw(&key, &format!("W{n}"), 1_000).await.status,
            201
        );
    }
    let cancel = app
        .send_json(
            Method::POST,
            "/v1/withdrawals/W2/cancel",
            &key,
            None,
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{cancel:?}");
    assert_eq!(cancel.json["state"], "cancelled");
    // Without a body, too.
    let cancel = app
        .send(
            Method::POST,
            "/v1/withdrawals/W3/cancel",
            Some(&key),
            &[],
            None,
        )
        .await;
    assert_eq!(cancel.json["state"], "cancelled", "{cancel:?}");

    let page1 = app.get("/v1/withdrawals?limit=2", &key).await;
    let nos = |a: &Answer| -> Vec<String> {
        a.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(nos(&page1), ["W1", "W2"]);
    let cursor = page1.json["next_cursor"].as_str().unwrap().to_string();
    let page2 = app
        .get(&format!("/v1/withdrawals?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(nos(&page2), ["W3", "W4"]);
    let cursor = page2.json["next_cursor"].as_str().unwrap().to_string();
    let page3 = app
        .get(&format!("/v1/withdrawals?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(nos(&page3), ["W5"]);
    assert!(page3.json["next_cursor"].is_null());

    let cancelled = app.get("/v1/withdrawals?status=cancelled", &key).await;
    assert_eq!(nos(&cancelled), ["W2", "W3"]);
    let from = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let window = app
        .send(Method::GET, "/v1/withdrawals", Some(&key), &[], None)
        .await;
    assert_eq!(nos(&window).len(), 5);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/v1/withdrawals", app.base),
        &[("created_from", from.as_str()), ("created_to", to.as_str())],
    )
    .unwrap();
    let in_window = app
        .get(&format!("{}?{}", url.path(), url.query().unwrap()), &key)
        .await;
    assert_eq!(nos(&in_window).len(), 5, "{in_window:?}");
    let url = reqwest::Url::parse_with_params(
        &format!("{}/v1/withdrawals", app.base),
        &[("created_to", from.as_str())],
    )
    .unwrap();
    let before = app
        .get(&format!("{}?{}", url.path(), url.query().unwrap()), &key)
        .await;
    assert_eq!(nos(&before).len(), 0, "{before:?}");

    let balance = app.get("/v1/balance", &key).await;
    assert_eq!(balance.json["balances"][0]["available_minor"], 97_000);
    assert_eq!(balance.json["balances"][0]["withdrawing_minor"], 3_000);

    let events = app.get("/v1/events?limit=3", &key).await;
    assert_eq!(events.json["data"].as_array().unwrap().len(), 3);
    let cursor = events.json["next_cursor"].as_str().unwrap().to_string();
    let rest = app.get(&format!("/v1/events?cursor={cursor}"), &key).await;
    assert_eq!(rest.json["data"].as_array().unwrap().len(), 4, "{rest:?}");
});

both_backends!(
    a_merchant_cannot_see_another_merchants_orders,
    |app: TestApp| async move {
        let acme = app.merchant("acme", 100_000).await;
        let other = app.merchant("other", 100_000).await;
        assert_eq!(app.withdraw(&acme, "W1", 1_000).await.status, 201);
        app.get("/v1/withdrawals/W1", &other)
            .await
            .assert_problem(404, None);
        app.send(
            Method::POST,
            "/v1/withdrawals/W1/cancel",
            Some(&other),
            &[],
            None,
        )
        .await
        .assert_problem(404, None);
        let list = app.get("/v1/withdrawals", &other).await;
        assert_eq!(list.json["data"], json!([]));
        assert_eq!(app.get("/v1/events", &other).await.json["data"], json!([]));
        // The same order number is the other merchant's own, separate order.
        assert_eq!(app.withdraw(&other, "W1", 2_000).await.status, 201);
        assert_eq!(
            app.get("/v1/withdrawals/W1", &acme).await.json["amount_minor"],
            1_000
        );
        assert_eq!(
            app.get("/v1/withdrawals/W1", &other).await.json["amount_minor"],
            2_000
        );
        // No key, or a wrong one: 401.
        app.send(Method::GET, "/v1/withdrawals/W1", None, &[], None)
            .await
            .assert_problem(401, None);
        app.get("/v1/withdrawals/W1", "dsk_0000")
            .await
            .assert_problem(401, None);
        // An operator session is not an API key.
        let session = app
            .operator("root", disburse_core::correction::Role::Admin)
            .await;
        app.get("/v1/withdrawals/W1", &session)
            .await
            .assert_problem(401, None);
    }
);

both_backends!(
    two_identical_concurrent_posts_with_one_key_make_one_order,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let body = json!({"order_no": "W1", "amount_minor": 1_000, "currency": "EUR"});
        let (a, b) = tokio::join!(
            app.send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                body.clone()
            ),
            app.send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                body.clone()
            ),
        );
        assert_eq!(a.status, 201, "{a:?}");
        assert_eq!(b.status, 201, "{b:?}");
        assert_eq!(a.bytes, b.bytes, "the very same body");
        assert_eq!(app.engine.db().count("orders").await.unwrap(), 1);
        // Later, the same key and body (keys in another order) get the stored answer.
        let c = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                json!({"currency": "EUR", "amount_minor": 1_000, "order_no": "W1"}),
            )
            .await;
        assert_eq!(c.status, 201);
        assert_eq!(c.bytes, a.bytes);
        assert_eq!(c.headers[disburse_server::REPLAYED_HEADER], "true");
        // Many at once.
        let body2 = json!({"order_no": "W2", "amount_minor": 2_000, "currency": "EUR"});
        let answers = futures_join_all(
            (0..6)
                .map(|_| {
                    app.send_json(
                        Method::POST,
                        "/v1/withdrawals",
                        &key,
                        Some("k-2"),
                        body2.clone(),
                    )
                })
                .collect(),
        )
        .await;
        for x in &answers {
            assert_eq!(x.status, 201, "{x:?}");
            assert_eq!(x.bytes, answers[0].bytes);
        }
        assert_eq!(app.engine.db().count("orders").await.unwrap(), 2);
        // A refusal is an answer too: the same key gets the same 409.
        let too_much = json!({"order_no": "W3", "amount_minor": 1_000_000, "currency": "EUR"});
        let r1 = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-3"),
                too_much.clone(),
            )
            .await;
        r1.assert_problem(409, None);
        let r2 = app
            .send_json(Method::POST, "/v1/withdrawals", &key, Some("k-3"), too_much)
            .await;
        assert_eq!((r2.status, r2.bytes.clone()), (r1.status, r1.bytes.clone()));
        // Keys are per merchant: another merchant's k-1 is its own.
        let other = app.merchant("other", 100_000).await;
        let o = app
            .send_json(Method::POST, "/v1/withdrawals", &other, Some("k-1"), body)
            .await;
        assert_eq!(o.status, 201);
        assert_eq!(app.engine.db().count("orders").await.unwrap(), 3);
    }
);

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for d in done {
        out.push(d.expect("every future finished"));
    }
    out
}

both_backends!(
    the_same_key_with_another_body_is_422,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let first = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                json!({"order_no": "W1", "amount_minor": 1_000, "currency": "EUR"}),
            )
            .await;
        assert_eq!(first.status, 201);
        let second = app
            .send_json(
                Method::POST,
                "/v1/withdrawals",
                &key,
                Some("k-1"),
                json!({"order_no": "W1", "amount_minor": 2_000, "currency": "EUR"}),
            )
            .await;
        second.assert_problem(422, Some("Idempotency-Key"));
        // Another endpoint with the same key is another request too.
        let third = app
            .send_json(
                Method::PUT,
                "/v1/webhook",
                &key,
                Some("k-1"),
                json!({"url": "https://shop.example/hook"}),
            )
            .await;
        third.assert_problem(422, Some("Idempotency-Key"));
        assert_eq!(app.engine.db().count("orders").await.unwrap(), 1);
        // A bad key.
        app.send_json(
            Method::POST,
            "/v1/withdrawals",
            &key,
            Some("a b"),
            json!({"order_no": "W2", "amount_minor": 1_000, "currency": "EUR"}),
        )
        .await
        .assert_problem(400, Some("Idempotency-Key"));
    }
);

both_backends!(
    bad_input_is_a_4xx_problem_never_a_5xx,
    |app: TestApp| async move {
        let key = app.merchant("acme", 100_000).await;
        let json_ct = [("content-type", "application/json")];
        // (method, path, headers, body, status, field)
        type Case<'a> = (
            Method,
            &'a str,
            &'a [(&'a str, &'a str)],
            Vec<u8>,
            u16,
            Option<&'a str>,
        );
        let w = "/v1/withdrawals";
        let cases: Vec<Case> = vec![
            (Method::POST, w, &json_ct, b"{".to_vec(), 400, None),
            (Method::POST, w, &json_ct, b"".to_vec(), 400, None),
            (Method::POST, w, &json_ct, b"not json".to_vec(), 400, None),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 1, "currency": "EUR"} {}"#.to_vec(), 400, None),
            (Method::POST, w, &json_ct, br#"[1, 2]"#.to_vec(), 422, None),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": "100", "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": -5, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 0, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 1.5, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 1e3, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100000000000000000000000, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": null, "currency": "EUR"}"#.to_vec(), 422, Some("amount_minor")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100, "currency": "XXX"}"#.to_vec(), 422, Some("currency")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100, "currency": "eur"}"#.to_vec(), 422, Some("currency")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100, "currency": 978}"#.to_vec(), 422, Some("currency")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100}"#.to_vec(), 422, Some("currency")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W1", "amount_minor": 100, "currency": "EUR", "merchant": "other"}"#.to_vec(), 422, Some("merchant")),
            (Method::POST, w, &json_ct, br#"{"order_no": "W 1", "amount_minor": 100, "currency": "EUR"}"#.to_vec(), 422, Some("order_no")),
            (Method::POST, w, &json_ct, format!(r#"{{"order_no": "{}", "amount_minor": 100, "currency": "EUR"}}"#, "9".repeat(36)).into_bytes(), 422, Some("order_no")),
            (Method::POST, w, &[], br#"{"order_no": "W1", "amount_minor": 100, "currency": "EUR"}"#.to_vec(), 415, None),
            (Method::POST, w, &[("content-type", "text/plain")], br#"{"order_no": "W1", "amount_minor": 100, "currency": "EUR"}"#.to_vec(), 415, None),
            (Method::GET, "/v1/withdrawals?limit=abc", &[], vec![], 400, Some("limit")),
            (Method::GET, "/v1/withdrawals?limit=0", &[], vec![], 400, Some("limit")),
            (Method::GET, "/v1/withdrawals?limit=1000", &[], vec![], 400, Some("limit")),
            (Method::GET, "/v1/withdrawals?cursor=abc", &[], vec![], 400, Some("cursor")),
            (Method::GET, "/v1/withdrawals?cursor=-1", &[], vec![], 400, Some("cursor")),
            (Method::GET, "/v1/withdrawals?status=lost", &[], vec![], 400, Some("status")),
            (Method::GET, "/v1/withdrawals?created_from=yesterday", &[], vec![], 400, Some("created_from")),
            (Method::GET, "/v1/withdrawals?color=red", &[], vec![], 400, None),
            (Method::GET, "/v1/events?limit=-1", &[], vec![], 400, Some("limit")),
            (Method::GET, "/v1/withdrawals/W%201", &[], vec![], 404, None),
            (Method::GET, "/v1/withdrawals/NOPE", &[], vec![], 404, None),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "iban": "DE89370400440532013001"}"#.to_vec(), 422, Some("iban")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "", "iban": "DE89370400440532013000"}"#.to_vec(), 422, Some("holder")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "iban": "DE89370400440532013000", "bic": "X"}"#.to_vec(), 422, Some("bic")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "iban": "DE89370400440532013000", "country": "US", "bank_code": "1", "number": "1234"}"#.to_vec(), 422, Some("iban")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme"}"#.to_vec(), 422, Some("iban")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "country": "US", "number": "1234"}"#.to_vec(), 422, Some("bank_code")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "country": "DE", "bank_code": "1", "number": "1234"}"#.to_vec(), 422, Some("country")),
            (Method::PUT, "/v1/bank-account", &json_ct, br#"{"holder": "Acme", "country": "US", "bank_code": "123", "number": "1234"}"#.to_vec(), 422, Some("bank_code")),
            (Method::PUT, "/v1/webhook", &json_ct, br#"{"url": "ftp://shop.example/hook"}"#.to_vec(), 422, Some("url")),
            (Method::PUT, "/v1/webhook", &json_ct, br#"{"url": "not a url"}"#.to_vec(), 422, Some("url")),
            (Method::PUT, "/v1/webhook", &json_ct, br#"{"url": 5}"#.to_vec(), 422, Some("url")),
            (Method::POST, "/v1/webhook/rotate-secret", &[], vec![], 404, None),
            (Method::GET, "/v1/webhook", &[], vec![], 404, None),
            (Method::POST, "/v1/withdrawals/W1/cancel", &json_ct, br#"{"why": "x"}"#.to_vec(), 422, Some("why")),
            (Method::DELETE, w, &[], vec![], 405, None),
            (Method::GET, "/v1/nothing-here", &[], vec![], 404, None),
            (Method::GET, "/nothing-at-all", &[], vec![], 404, None),
        ];
        for (method, path, headers, body, status, field) in cases {
            let body = if body.is_empty() && method == Method::GET {
                None
            } else {
                Some(body)
            };
            let a = app
                .send(method.clone(), path, Some(&key), headers, body)
                .await;
            assert!(
                a.status < 500,
                "{method} {path}: a 5xx for bad input: {a:?}"
            );
            assert_eq!(a.status, status, "{method} {path}: {a:?}");
            a.assert_problem(status, field);
        }
        // A 10 MB body: refused with 413 from its declared length, before it is read.
        for idempotency in ["", "idempotency-key: big-1\r\n"] {
            let head = format!(
                "POST /v1/withdrawals HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
                 content-type: application/json\r\n{idempotency}content-length: {}\r\n\r\n",
                10 * 1024 * 1024
            );
            let answer = raw_http(app.addr, head.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
            assert!(answer.contains("application/problem+json"), "{answer}");
            assert!(answer.contains("\"status\":413"), "{answer}");
        }
        // Without a declared length (read until the limit): 413 as well.
        let big = {
            let mut b =
                br#"{"order_no": "W1", "amount_minor": 1, "currency": "EUR", "pad": ""#.to_vec();
            b.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
            b.extend(br#""}"#);
            b
        };
        let router = disburse_server::router(disburse_server::AppState::new(app.engine.clone()));
        for idempotency in [None, Some("big-2")] {
            let mut req = axum::http::Request::post("/v1/withdrawals")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json");
            if let Some(k) = idempotency {
                req = req.header("idempotency-key", k);
            }
            let req = req.body(axum::body::Body::from(big.clone())).unwrap();
            let res = tower::ServiceExt::oneshot(router.clone(), req)
                .await
                .unwrap();
            assert_eq!(res.status(), 413);
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
        // Nothing was written by any of them.
        assert_eq!(app.engine.db().count("orders").await.unwrap(), 0);
        assert_eq!(
            app.engine
                .db()
                .current_bank_account("acme")
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );
        // And a good request still works.
        assert_eq!(app.withdraw(&key, "W1", 100).await.status, 201);
    }
);

/// Sends raw bytes on a new connection and returns what comes back until the server closes
/// (or 5 s pass).
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&out[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok());
                    if length.is_some_and(|n| out.len() >= end + 4 + n) {
                        break;
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}
