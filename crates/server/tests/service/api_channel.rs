//! `http-api` channels against the sandbox bank over loopback (started here on 127.0.0.1:0), one
//! fault of the mix at a time: whatever the bank did, our books end as the bank's own ledger says
//! it moved, and no payout was executed twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::crypto::AccountKey;
use disburse_core::{Currency, MerchantId, Money, OperatorName, OrderNo};
use disburse_engine::{Actor, Config, Engine, WithdrawRequest};
use disburse_sandbox::api::{signature_header, ApiFault, FaultMix};
use disburse_server::bank_api::{serve_sandbox_bank, ApiChannelWorker, SandboxBankOptions};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;
use serde_json::Value;

const SECRET: &str = "test-secret-of-the-api-bank-0123456789";
const CHANNEL: &str = "api-bank";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn ops() -> Actor {
    Actor::operator(&OperatorName::parse("alice").unwrap())
}

/// The sandbox bank on a loopback port of its own; its base URL.
async fn start_bank(seed: u64, faults: FaultMix) -> String {
    start_bank_calling(seed, faults, None).await
}

/// The sandbox bank, POSTing its callbacks to `callback_url` if given.
async fn start_bank_calling(seed: u64, faults: FaultMix, callback_url: Option<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = SandboxBankOptions {
        seed,
        faults,
        secret: SECRET.as_bytes().to_vec(),
        slow: Duration::from_millis(100),
        hang: Duration::from_millis(1500),
        callback_url,
    };
    tokio::spawn(serve_sandbox_bank(listener, opts, std::future::pending()));
    format!("http://{addr}")
}

struct Setup {
    engine: Arc<Engine>,
    bank: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn setup(backend: TestBackend, name: &str, faults: FaultMix) -> Option<Setup> {
    let db = TestDb::fresh(backend, name).await?;
    let bank = start_bank(42, faults).await;
    setup_at(db, bank).await
}

async fn setup_at(db: TestDb, bank: String) -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("api-bank.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let toml = format!(
        r#"
[[channel]]
id = "{CHANNEL}"
kind = "http-api"
name = "API bank"
currencies = ["EUR"]
result_deadline = "5d"

[channel.api]
base_url = "{bank}"
secret_file = "{}"
request_timeout = "500ms"
requests_per_second = 2000
concurrency = 4
status_backoff_first = "1s"
status_backoff_max = "4s"
breaker_failures = 1000
"#,
        secret_file.display()
    );
    let config = Config::parse(&toml, "test.toml").unwrap();
    let engine = Engine::new(
        Db::open(&db.url).await.unwrap(),
        config,
        AccountKey::generate(),
    );
    Some(Setup {
        engine: Arc::new(engine),
        bank,
        _db: db,
        _dir: dir,
    })
}

/// `n` orders of one merchant, each with a payout pending on the API channel.
async fn orders(e: &Engine, n: usize) -> Vec<String> {
    let m = MerchantId::parse("acme").unwrap();
    e.add_merchant(&m, "Acme GmbH", t0(), &ops()).await.unwrap();
    e.set_bank_account(
        &m,
        &BankAccount::new(
            HolderName::parse("Acme GmbH").unwrap(),
            Iban::parse("DE89370400440532013000").unwrap().into(),
            None,
        ),
        t0(),
        &ops(),
    )
    .await
    .unwrap();
    e.fund(
        &m,
        Money::from_minor(10_000_000, Currency::Eur),
        Some("collections"),
        t0(),
        &ops(),
    )
    .await
    .unwrap();
    for i in 0..n {
        e.withdraw(
            &WithdrawRequest {
                merchant: m.clone(),
                order_no: OrderNo::parse(&format!("ORD-{i}")).unwrap(),
                amount: Money::from_minor(10_000 + 137 * i as i64, Currency::Eur),
            },
            t0(),
            &ops(),
        )
        .await
        .unwrap();
    }
    e.pay_open_orders(t0(), &ops(), 1000).await.unwrap();
    let pending = e.db().payouts_in_state("pending").await.unwrap();
    assert_eq!(pending.len(), n, "every order has a pending API payout");
    pending.into_iter().map(|p| p.payout_no).collect()
}

/// Rounds (time moving on five seconds a round) until nothing is open; the reports.
async fn run_until_settled(e: &Engine) -> Vec<disburse_engine::ApiRoundReport> {
    let mut worker = ApiChannelWorker::new(e, Some(CHANNEL)).unwrap();
    let mut reports = Vec::new();
    for round in 0..40 {
        let as_of = t0() + chrono::Duration::seconds(5 * (round + 1));
        let r = worker.round(e, as_of).await.pop().unwrap().unwrap();
        let done = r.settled() && e.api_channel_pending(CHANNEL).await.unwrap() == 0;
        reports.push(r);
        if done {
            return reports;
        }
    }
    panic!("not settled after 40 rounds: {:#?}", reports.last());
}

async fn bank_ledger(bank: &str) -> Value {
    reqwest::get(format!("{bank}/ledger"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every payout ends as the bank says: paid what it moved, rejected with its code; the bank
/// executed each key once; the channel's bank account in our books moved what the bank moved.
async fn assert_books_match_the_bank(e: &Engine, bank: &str, payouts: &[String]) -> Value {
    let ledger = bank_ledger(bank).await;
    let entries: BTreeMap<String, Value> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["key"].as_str().unwrap().to_string(), x.clone()))
        .collect();
    assert_eq!(
        entries.keys().cloned().collect::<Vec<_>>(),
        {
            let mut p = payouts.to_vec();
            p.sort();
            p
        },
        "the bank holds exactly our payouts"
    );
    let mut moved_total = 0i64;
    for no in payouts {
        let entry = &entries[no];
        assert_eq!(entry["executions"], 1, "{no} executed once: {entry}");
        let ours = e.db().payout_by_no(no).await.unwrap().unwrap();
        match entry["status"]["status"].as_str().unwrap() {
            "paid" => {
                let moved = entry["moved_minor"].as_i64().unwrap();
                moved_total += moved;
                assert_eq!(ours.state, "succeeded", "{no}: {entry}");
                assert_eq!(ours.paid_amount_minor, Some(moved), "{no}: {entry}");
                assert_eq!(
                    ours.bank_reference.as_deref(),
                    entry["status"]["bank_reference"].as_str()
                );
            }
            "rejected" => {
                assert_eq!(entry["moved_minor"], 0);
                assert_eq!(ours.state, "failed", "{no}: {entry}");
                assert_eq!(
                    ours.reason_code.as_deref(),
                    entry["status"]["reason_code"].as_str()
                );
            }
            other => panic!("{no} still {other} at the bank after settling: {entry}"),
        }
    }
    let ours_moved = e
        .db()
        .balance(&format!("channel:{CHANNEL}:bank"), "EUR")
        .await
        .unwrap();
    assert_eq!(
        ours_moved.abs(),
        moved_total,
        "our books moved what the bank moved out of our account"
    );
    let check = e.db().ledger_check().await.unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert!(e.db().verify_audit().await.unwrap().is_empty());
    ledger
}

async fn every_fault_ends_with_books_that_match_the_bank(backend: TestBackend) {
    for fault in ApiFault::ALL {
        let name = format!("api_fault_{}", fault.name().replace('-', "_"));
        let Some(s) = setup(backend, &name, FaultMix::only(fault)).await else {
            return;
        };
        let payouts = orders(&s.engine, 6).await;
        let reports = run_until_settled(&s.engine).await;
        let ledger = assert_books_match_the_bank(&s.engine, &s.bank, &payouts).await;
        let sent: usize = reports.iter().map(|r| r.sent).sum();
        let resent: usize = reports.iter().map(|r| r.resent).sum();
        let unknown_first = &reports[0].unknown;
        let requests: u64 = ledger["requests_by_key"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            requests, sent as u64,
            "{fault:?}: every send reached the bank"
        );
        match fault {
            // The request left and the answer was lost: unknown, resolved by a status query, never
            // sent again (the bank had it).
            ApiFault::TimeoutAfterAccept | ApiFault::ErrorAfterAccept => {
                assert_eq!(unknown_first.len(), 6, "{fault:?}: {:?}", reports[0]);
                assert_eq!(resent, 0, "{fault:?}");
                assert_eq!(sent, 6);
                assert!(reports.iter().map(|r| r.status_queries).sum::<usize>() >= 6);
            }
            // Refused before taking it: asked about, unknown to the bank, sent again under the
            // same key.
            ApiFault::ErrorBeforeAccept => {
                assert_eq!(unknown_first.len(), 6, "{:?}", reports[0]);
                assert_eq!(resent, 6);
                assert_eq!(sent, 12);
            }
            ApiFault::Throttle => {
                assert!(reports[0].held.as_deref().unwrap_or("").contains("429"));
                assert!(resent >= 1);
            }
            ApiFault::Reject => {
                assert_eq!(reports[0].rejected.len(), 6);
                assert_eq!(sent, 6);
            }
            ApiFault::OtherAmount => {
                assert_eq!(reports[0].paid.len(), 6);
                // Each difference is a discrepancy for a person, as from a file.
                let open = s.engine.exceptions(t0()).await.unwrap();
                assert!(
                    open.iter().filter(|i| i.kind.contains("paid")).count() >= 6,
                    "{open:?}"
                );
            }
            ApiFault::Slow => assert_eq!(sent, 6),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_with_books_that_match_the_bank_sqlite() {
    every_fault_ends_with_books_that_match_the_bank(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_with_books_that_match_the_bank_postgres() {
    every_fault_ends_with_books_that_match_the_bank(TestBackend::Postgres).await;
}

async fn the_whole_mix_settles(backend: TestBackend) {
    let Some(s) = setup(backend, "api_whole_mix", FaultMix::parse("all").unwrap()).await else {
        return;
    };
    let payouts = orders(&s.engine, 24).await;
    run_until_settled(&s.engine).await;
    assert_books_match_the_bank(&s.engine, &s.bank, &payouts).await;
    // A second worker (a restarted process) finds nothing to send and asks nothing.
    let mut again = ApiChannelWorker::new(&s.engine, Some(CHANNEL)).unwrap();
    let r = again
        .round(&s.engine, t0() + chrono::Duration::hours(1))
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!((r.sent, r.status_queries), (0, 0), "{r:?}");
    // The metrics name the channel.
    let mut text = String::new();
    disburse_server::bank_api::api_metrics().render(&mut text);
    assert!(
        text.contains("disburse_api_channel_requests_total{channel=\"api-bank\",kind=\"send\"}")
    );
    assert!(text.contains("disburse_api_channel_unknown_total{channel=\"api-bank\"}"));
    assert!(text.contains("disburse_api_channel_latency_seconds_count{channel=\"api-bank\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_mix_settles_sqlite() {
    the_whole_mix_settles(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_mix_settles_postgres() {
    the_whole_mix_settles(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bank_leaves_payouts_submitted_and_opens_the_breaker() {
    let Some(s) = setup(TestBackend::Sqlite, "api_unreachable", FaultMix::none()).await else {
        return;
    };
    // A port nobody listens on: bind one, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = s.engine.config().clone();
    let api = config.channels[0].api.as_mut().unwrap();
    api.base_url = format!("http://127.0.0.1:{port}");
    api.breaker_failures = 3;
    let e = Engine::new(s.engine.db().clone(), config, AccountKey::generate());
    orders(&e, 4).await;
    let mut worker = ApiChannelWorker::new(&e, Some(CHANNEL)).unwrap();
    let r = worker.round(&e, t0()).await.pop().unwrap().unwrap();
    assert_eq!(r.unknown.len(), 4, "{r:?}");
    assert!(r.paid.is_empty() && r.rejected.is_empty());
    // Live, not failed: the money may have moved as far as we know.
    assert_eq!(e.db().payouts_in_state("submitted").await.unwrap().len(), 4);
    let r = worker
        .round(&e, t0() + chrono::Duration::seconds(10))
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert!(
        r.held.as_deref().unwrap_or("").contains("circuit breaker"),
        "{r:?}"
    );
    assert_eq!(r.sent + r.status_queries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_fresh_and_idempotent() {
    use tower::ServiceExt;
    // The bank refuses every first request (503): the payout is sent, its outcome unknown.
    let Some(s) = setup(
        TestBackend::Sqlite,
        "api_callbacks",
        FaultMix::only(ApiFault::ErrorBeforeAccept),
    )
    .await
    else {
        return;
    };
    let payouts = orders(&s.engine, 1).await;
    let no = payouts[0].clone();
    let state = disburse_server::AppState::new(s.engine.clone());
    let app = disburse_server::router(state);
    let post = |body: String, ts: i64, secret: &str| {
        let path = format!("/bank-callbacks/{CHANNEL}");
        let sig = signature_header(secret.as_bytes(), "POST", &path, ts, body.as_bytes());
        axum::http::Request::post(path)
            .header("content-type", "application/json")
            .header("Bank-Signature", sig)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let now = Utc::now().timestamp();
    let paid = format!(
        r#"{{"event_id":"ev-1","payout_no":"{no}","status":"paid","bank_reference":"CB-1","amount_minor":10000,"currency":"EUR"}}"#
    );
    let body_of = |r: axum::response::Response| async move {
        let b = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&b).unwrap()
    };
    // A pending payout was never sent: a callback about it is refused by the rules and left to
    // a person, as a file line would be.
    let r = app
        .clone()
        .oneshot(post(paid.clone(), now, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(body_of(r).await["outcome"]
        .as_str()
        .unwrap()
        .contains("exception"));
    assert_eq!(
        s.engine
            .db()
            .payout_by_no(&no)
            .await
            .unwrap()
            .unwrap()
            .state,
        "pending"
    );
    let mut worker = ApiChannelWorker::new(&s.engine, Some(CHANNEL)).unwrap();
    let r = worker.round(&s.engine, t0()).await.pop().unwrap().unwrap();
    assert_eq!(r.unknown, vec![no.clone()]);
    let state_after_send = s
        .engine
        .db()
        .payout_by_no(&no)
        .await
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state_after_send, "submitted");
    // Bad signature, stale time: refused, nothing changed.
    let r = app
        .clone()
        .oneshot(post(paid.clone(), now, "wrong-secret-wrong-secret"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .clone()
        .oneshot(post(paid.clone(), now - 3600, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        s.engine
            .db()
            .payout_by_no(&no)
            .await
            .unwrap()
            .unwrap()
            .state,
        state_after_send
    );
    // Signed and fresh: taken; the same again changes nothing.
    let r = app
        .clone()
        .oneshot(post(paid.clone(), now, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body_of(r).await["outcome"], "applied");
    let r = app
        .clone()
        .oneshot(post(paid.clone(), now, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(
        body_of(r).await["outcome"],
        "applied",
        "the same news again changes nothing"
    );
    let p = s.engine.db().payout_by_no(&no).await.unwrap().unwrap();
    assert_eq!(p.state, "succeeded");
    // Out of order: an "accepted" after "paid" changes nothing either.
    let accepted = format!(
        r#"{{"event_id":"ev-0","payout_no":"{no}","status":"accepted","bank_reference":"CB-1"}}"#
    );
    let r = app
        .clone()
        .oneshot(post(accepted, now, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.engine
            .db()
            .payout_by_no(&no)
            .await
            .unwrap()
            .unwrap()
            .state,
        "succeeded"
    );
    // An unknown channel is 404; a bad body names what is wrong.
    let path = "/bank-callbacks/nope";
    let r = app
        .clone()
        .oneshot(
            axum::http::Request::post(path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .clone()
        .oneshot(post("{}".into(), now, SECRET))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let check = s.engine.db().ledger_check().await.unwrap();
    assert!(check.is_ok(), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_callback_is_applied_like_a_late_file_result() {
    use tower::ServiceExt;
    let Some(s) = setup(
        TestBackend::Sqlite,
        "api_late_callback",
        FaultMix::only(ApiFault::ErrorBeforeAccept),
    )
    .await
    else {
        return;
    };
    let no = orders(&s.engine, 1).await.remove(0);
    let mut worker = ApiChannelWorker::new(&s.engine, Some(CHANNEL)).unwrap();
    worker.round(&s.engine, t0()).await;
    // Nothing learned within the channel's five days: expired, for a person.
    let swept = s
        .engine
        .sweep(t0() + chrono::Duration::days(6), &ops())
        .await
        .unwrap();
    assert_eq!(swept.expired, vec![no.clone()]);
    // An expired payout is not asked about any more: the person decides.
    let r = worker
        .round(&s.engine, t0() + chrono::Duration::days(6))
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!((r.sent, r.status_queries), (0, 0), "{r:?}");
    // Then the bank's notification arrives: applied, marked late.
    let app = disburse_server::router(disburse_server::AppState::new(s.engine.clone()));
    let path = format!("/bank-callbacks/{CHANNEL}");
    let body = format!(
        r#"{{"event_id":"ev-9","payout_no":"{no}","status":"paid","bank_reference":"LATE-1","amount_minor":10000,"currency":"EUR"}}"#
    );
    let ts = Utc::now().timestamp();
    let sig = signature_header(SECRET.as_bytes(), "POST", &path, ts, body.as_bytes());
    let r = app
        .oneshot(
            axum::http::Request::post(&path)
                .header("content-type", "application/json")
                .header("Bank-Signature", sig)
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p = s.engine.db().payout_by_no(&no).await.unwrap().unwrap();
    assert_eq!(p.state, "succeeded");
    assert_eq!(p.bank_reference.as_deref(), Some("LATE-1"));
    let events = s
        .engine
        .db()
        .audit_events_of(&[format!("payout:{no}")])
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.action == "payout.succeeded_late"),
        "{:?}",
        events.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
}

/// The bank notifies `disburse serve` (the service on its own loopback port) of every final
/// word — some twice, some with an older "accepted" after it, some first with a bad signature —
/// while the worker asks about the same payouts: the books still end as the bank moved.
async fn callbacks_racing_status_queries_leave_the_books_matching(backend: TestBackend) {
    let Some(db) = TestDb::fresh(backend, "api_callbacks_race").await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = listener.local_addr().unwrap();
    let bank = start_bank_calling(
        9,
        FaultMix::parse("timeout=20,5xx-after=20,reject=15,other-amount=10").unwrap(),
        Some(format!("http://{service}/bank-callbacks/{CHANNEL}")),
    )
    .await;
    let s = setup_at(db, bank).await.unwrap();
    let app = disburse_server::router(disburse_server::AppState::new(s.engine.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let payouts = orders(&s.engine, 16).await;
    run_until_settled(&s.engine).await;
    // Every final word has been told (one or two callbacks per payout); wait for the last.
    let started = std::time::Instant::now();
    let ledger = loop {
        let l = bank_ledger(&s.bank).await;
        let told: std::collections::BTreeSet<String> = l["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["answer"] == 200)
            .map(|c| c["payout_no"].as_str().unwrap().to_string())
            .collect();
        if told.len() == payouts.len() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            break bank_ledger(&s.bank).await;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{l}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let callbacks = ledger["callbacks"].as_array().unwrap();
    for c in callbacks {
        let expected = if c["signed_correctly"] == true {
            200
        } else {
            401
        };
        assert_eq!(c["answer"], expected, "{c}");
    }
    assert!(
        callbacks.iter().any(|c| c["signed_correctly"] == false),
        "a bad signature was tried"
    );
    assert!(
        callbacks.len() > payouts.len(),
        "duplicates and late news were sent"
    );
    assert_books_match_the_bank(&s.engine, &s.bank, &payouts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_racing_status_queries_leave_the_books_matching_sqlite() {
    callbacks_racing_status_queries_leave_the_books_matching(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_racing_status_queries_leave_the_books_matching_postgres() {
    callbacks_racing_status_queries_leave_the_books_matching(TestBackend::Postgres).await;
}
