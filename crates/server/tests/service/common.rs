//! Black-box helpers: the whole service on port 0 over a fresh database (SQLite, or PostgreSQL
//! when a server answers), a typed client, and a tiny webhook receiver.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::Utc;
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::correction::Role;
use disburse_core::crypto::AccountKey;
use disburse_core::{Currency, MerchantId, Money, OperatorName};
use disburse_engine::{Actor, Config, Engine};
use disburse_server::AppState;
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;
use serde_json::Value;

/// Generates `<name>::sqlite` and `<name>::postgres` from one async body taking `TestApp`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        $crate::both_backends!($name, $crate::common::test_settings(), $body);
    };
    ($name:ident, $settings:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::spawn_app_with(
                    disburse_store::testing::TestBackend::Sqlite,
                    stringify!($name),
                    $settings,
                )
                .await
                .expect("sqlite is always there");
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::common::spawn_app_with(
                    disburse_store::testing::TestBackend::Postgres,
                    stringify!($name),
                    $settings,
                )
                .await
                {
                    ($body)(app).await;
                }
            }
        }
    };
}

pub const IBAN_1: &str = "DE89370400440532013000";
pub const IBAN_2: &str = "DE02120300000000202051";

pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub client: reqwest::Client,
    pub db_url: String,
    pub key: AccountKey,
    pub dir: std::path::PathBuf,
    server: tokio::task::JoinHandle<()>,
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The builtin channels, with their inbox and outbox directories under `dir`.
pub fn config_in(dir: &std::path::Path) -> Config {
    let mut config = Config::builtin();
    for c in &mut config.channels {
        c.outbox_dir = dir.join(c.id.as_str()).join("outbox");
        c.inbox_dir = dir.join(c.id.as_str()).join("inbox");
    }
    config
}

pub async fn spawn_app(backend: TestBackend, name: &str) -> Option<TestApp> {
    spawn_app_with(backend, name, test_settings()).await
}

/// The settings of the test service: the defaults, plus the development allow-list that lets
/// webhooks reach the tests' own loopback receivers over http.
pub fn test_settings() -> disburse_server::ServiceSettings {
    disburse_server::ServiceSettings {
        webhooks: disburse_server::urlguard::UrlPolicy::loopback_for_development(),
        ..disburse_server::ServiceSettings::default()
    }
}

/// The service with these settings on a fresh database.
pub async fn spawn_app_with(
    backend: TestBackend,
    name: &str,
    settings: disburse_server::ServiceSettings,
) -> Option<TestApp> {
    let db = TestDb::fresh(backend, name).await?;
    let key = AccountKey::generate();
    let dir = disburse_store::testing::temp_dir();
    let engine = Arc::new(Engine::new(
        Db::open(&db.url).await.expect("open db"),
        config_in(&dir),
        key.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = settings.http.clone();
    let app = disburse_server::router(AppState::with_settings(engine.clone(), settings));
    let server = tokio::spawn(async move {
        disburse_server::serve_http(listener, app, limits, std::future::pending())
            .await
            .expect("server runs");
    });
    Some(TestApp {
        base: format!("http://{addr}"),
        addr,
        engine,
        client: reqwest::Client::new(),
        db_url: db.url.clone(),
        key,
        dir,
        server,
        _db: db,
    })
}

/// An answer: status, headers, body as JSON (Null when it is not JSON) and as bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub bytes: Bytes,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json answer with this status (and field, when given).
    pub fn assert_problem(&self, status: u16, field: Option<&str>) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.json["status"], status, "{self:?}");
        assert!(self.json["type"].as_str().is_some(), "{self:?}");
        assert!(self.json["title"].as_str().is_some(), "{self:?}");
        assert!(self.json["detail"].as_str().is_some(), "{self:?}");
        if let Some(f) = field {
            assert_eq!(self.json["field"], f, "{self:?}");
        }
    }
}

pub fn eur(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Eur)
}

pub fn iban_account(iban: &str) -> BankAccount {
    BankAccount::new(
        HolderName::parse("Acme GmbH").unwrap(),
        Iban::parse(iban).unwrap().into(),
        None,
    )
}

pub fn desk() -> Actor {
    Actor::system("test")
}

impl TestApp {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            json,
            bytes,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(reqwest::Method::GET, path, Some(token), &[], None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send_json(reqwest::Method::POST, path, token, None, body)
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send_json(reqwest::Method::PUT, path, token, None, body)
            .await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        idempotency_key: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(k) = idempotency_key {
            headers.push(("idempotency-key", k));
        }
        self.send(
            method,
            path,
            Some(token),
            &headers,
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }

    /// A merchant with an IBAN, `funded_minor` EUR cents available, and an API key.
    pub async fn merchant(&self, id: &str, funded_minor: i64) -> String {
        let m = MerchantId::parse(id).unwrap();
        let now = Utc::now();
        self.engine
            .add_merchant(&m, "Acme GmbH", now, &desk())
            .await
            .unwrap();
        self.engine
            .set_bank_account(&m, &iban_account(IBAN_1), now, &desk())
            .await
            .unwrap();
        if funded_minor > 0 {
            self.engine
                .fund(&m, eur(funded_minor), Some("collections"), now, &desk())
                .await
                .unwrap();
        }
        disburse_server::create_api_key(&self.engine, &m, now)
            .await
            .unwrap()
    }

    pub async fn withdraw(&self, key: &str, order_no: &str, amount_minor: i64) -> Answer {
        self.post(
            "/v1/withdrawals",
            key,
            serde_json::json!({"order_no": order_no, "amount_minor": amount_minor, "currency": "EUR"}),
        )
        .await
    }

    /// An operator with a role and password, logged in; returns the session token. The first
    /// operator made is an admin, `root`, who adds the others.
    pub async fn operator(&self, name: &str, role: Role) -> String {
        let root = OperatorName::parse("root").unwrap();
        let now = Utc::now();
        if self.engine.db().count("operators").await.unwrap() == 0 {
            self.engine
                .add_operator(&root, Role::Admin, now, &root)
                .await
                .unwrap();
        }
        let person = OperatorName::parse(name).unwrap();
        if name != "root" {
            self.engine
                .add_operator(&person, role, now, &root)
                .await
                .unwrap();
        }
        let password = format!("{name}-correct-horse-battery");
        disburse_server::set_operator_password(&self.engine, &person, &password, now)
            .await
            .unwrap();
        let a = self
            .send_json(
                reqwest::Method::POST,
                "/ops/v1/login",
                "",
                None,
                serde_json::json!({"name": name, "password": password}),
            )
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.json["token"].as_str().unwrap().to_string()
    }
}

/// What a webhook receiver saw: each message's id, type, order number and whether its
/// signature verified.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: i64,
    pub topic: String,
    pub order_no: Option<String>,
    pub signature_ok: bool,
}

#[derive(Clone)]
pub struct Receiver {
    pub seen: Arc<Mutex<Vec<Received>>>,
    pub secret: Arc<Mutex<String>>,
    /// Answer 500 to this many requests first.
    pub fail_first: Arc<Mutex<u32>>,
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver {
            seen: Arc::new(Mutex::new(Vec::new())),
            secret: Arc::new(Mutex::new(String::new())),
            fail_first: Arc::new(Mutex::new(0)),
        }
    }

    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Serves on `listener` until the returned handle is aborted.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    {
                        let mut fail = me.fail_first.lock().unwrap();
                        if *fail > 0 {
                            *fail -= 1;
                            return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                    }
                    let sig = headers
                        .get(disburse_server::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let secret = me.secret.lock().unwrap().clone();
                    let ok = disburse_server::verify_signature(
                        &secret,
                        sig,
                        &body,
                        Utc::now().timestamp(),
                        300,
                    );
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    me.seen.lock().unwrap().push(Received {
                        id: v["id"].as_i64().unwrap_or(-1),
                        topic: v["type"].as_str().unwrap_or("").to_string(),
                        order_no: v["data"]["order_no"].as_str().map(str::to_string),
                        signature_ok: ok,
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        })
    }
}

/// A fast dispatcher for tests: short backoff and lease, the loopback allow-list.
pub fn quick_dispatcher(engine: Arc<Engine>, attempts_max: i64) -> disburse_server::Dispatcher {
    disburse_server::Dispatcher::new(engine, quick_dispatcher_config(attempts_max)).unwrap()
}

pub fn quick_dispatcher_config(attempts_max: i64) -> disburse_server::DispatcherConfig {
    disburse_server::DispatcherConfig {
        poll_interval: std::time::Duration::from_millis(20),
        claim_batch_max: 8,
        attempts_max,
        backoff_base: std::time::Duration::from_millis(50),
        backoff_max: std::time::Duration::from_millis(200),
        lease: std::time::Duration::from_secs(30),
        request_timeout: std::time::Duration::from_secs(5),
        url_policy: disburse_server::urlguard::UrlPolicy::loopback_for_development(),
    }
}
