//! `disburse bench-http`: withdrawal creation over HTTP, against the ceiling of a trivial endpoint
//! of the same server in the same run.
//!
//! The service (API only, no workers) runs in this process on a loopback port; the load generator
//! runs in the same process too, with `connections` keep-alive HTTP/1.1 clients, each sending its
//! next request when the previous answer arrived. Every withdrawal is a real one: a fresh order
//! number and Idempotency-Key, written with its journal, audit event and outbox message.

// Floats here are seconds, rates and percentiles of a measurement, never money.
#![allow(clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::crypto::AccountKey;
use disburse_core::{Currency, MerchantId, Money, OperatorName};
use disburse_engine::{Actor, Config, Engine};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct HttpMeasure {
    pub database: String,
    pub endpoint: String,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct HttpReport {
    pub how: String,
    pub measures: Vec<HttpMeasure>,
    /// Per database: withdrawals per second over trivial requests per second, same run.
    pub ratios: Vec<(String, f64)>,
}

async fn load(
    base: &str,
    key: &str,
    connections: usize,
    duration: Duration,
    create: bool,
    tag: &str,
) -> anyhow::Result<(u64, u64, f64, Vec<u32>)> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()?;
        let (base, key, tag) = (base.to_string(), key.to_string(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let t = Instant::now();
                let answer = if create {
                    client
                        .post(format!("{base}/v1/withdrawals"))
                        .bearer_auth(&key)
                        .header("Idempotency-Key", format!("{tag}-{c}-{i}"))
                        .json(&serde_json::json!({"order_no": format!("{tag}-{c}-{i}"), "amount_minor": 100 + (i % 900) as i64, "currency": "EUR"}))
                        .send()
                        .await
                } else {
                    client.get(format!("{base}/healthz")).send().await
                };
                let ok = match answer {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                latencies_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if !ok {
                    errors += 1;
                }
            }
            (latencies_us, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok((all.len() as u64, errors, seconds, all))
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[idx]) / 1000.0
}

async fn one_database(
    url: &str,
    label: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Vec<HttpMeasure>> {
    let engine = Arc::new(Engine::new(
        Db::open(url).await?,
        Config::builtin(),
        AccountKey::generate(),
    ));
    let now = Utc::now();
    let admin = Actor::operator(&OperatorName::parse("bench")?);
    let merchant = MerchantId::parse("bench")?;
    engine
        .add_merchant(&merchant, "Bench GmbH", now, &admin)
        .await?;
    let account = BankAccount::new(
        HolderName::parse("Bench GmbH")?,
        Iban::parse("DE89370400440532013000")?.into(),
        None,
    );
    engine
        .set_bank_account(&merchant, &account, now, &admin)
        .await?;
    engine
        .fund(
            &merchant,
            Money::parse("100000000.00", Currency::Eur)?,
            None,
            now,
            &admin,
        )
        .await?;
    let key = disburse_server::create_api_key(&engine, &merchant, now).await?;
    let app = disburse_server::router(disburse_server::AppState::new(engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut out = Vec::new();
    for (create, endpoint) in [
        (false, "GET /healthz (trivial)"),
        (true, "POST /v1/withdrawals"),
    ] {
        let (n, errors, seconds, lat) =
            load(&base, &key, connections, duration, create, label).await?;
        out.push(HttpMeasure {
            database: label.to_string(),
            endpoint: endpoint.to_string(),
            requests: n,
            errors,
            seconds,
            per_second: n as f64 / seconds,
            p50_ms: percentile_ms(&lat, 0.50),
            p99_ms: percentile_ms(&lat, 0.99),
        });
    }
    server.abort();
    engine.db().close().await;
    Ok(out)
}

pub async fn run(connections: usize, seconds: u64) -> anyhow::Result<HttpReport> {
    let duration = Duration::from_secs(seconds);
    let mut measures = Vec::new();
    let sqlite = TestDb::fresh(TestBackend::Sqlite, "bench-http")
        .await
        .ok_or_else(|| anyhow::anyhow!("no temp dir"))?;
    measures.extend(one_database(&sqlite.url, "SQLite", connections, duration).await?);
    match TestDb::fresh(TestBackend::Postgres, "bench-http").await {
        Some(pg) => {
            measures.extend(one_database(&pg.url, "PostgreSQL", connections, duration).await?)
        }
        None => eprintln!("PostgreSQL figures NOT measured: no server at DISBURSE_TEST_POSTGRES"),
    }
    let mut ratios = Vec::new();
    for db in ["SQLite", "PostgreSQL"] {
        let rate = |e: &str| {
            measures
                .iter()
                .find(|m| m.database == db && m.endpoint.starts_with(e))
                .map(|m| m.per_second)
        };
        if let (Some(w), Some(t)) = (rate("POST"), rate("GET")) {
            ratios.push((db.to_string(), w / t));
        }
    }
    Ok(HttpReport {
        ratios,
        how: format!(
            "the service (API only, release build) on a loopback port, and in the same process a load generator of {connections} \
             keep-alive HTTP/1.1 connections (reqwest), each sending its next request when the previous answer arrived, for \
             {seconds} s per endpoint; every POST is a new withdrawal (new order number and Idempotency-Key) written with its \
             journal, audit event and outbox message; latency is per request, send to last byte; the trivial endpoint (GET \
             /healthz) of the same server in the same run is the ceiling of the HTTP stack on this machine"
        ),
        measures,
    })
}
