//! An `http-api` worker killed (SIGKILL) between sending and recording: the requests reached the
//! bank (a `disburse sandbox-bank serve` process on a loopback port) and their answers never came
//! back. A new worker asks the bank's status under the same keys and records what it says: the
//! bank received exactly one instruction per payout and every payout ends as the bank moved it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::crypto::AccountKey;
use disburse_core::{Currency, MerchantId, Money, OperatorName, OrderNo};
use disburse_engine::{Actor, Config, Engine, WithdrawRequest};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;

const PAYOUTS: usize = 6;
const SECRET: &str = "crash-test-secret-0123456789abcdef";

/// Kills the child when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config_text(bank: &str, timeout: &str) -> String {
    format!(
        r#"
[[channel]]
id = "api-bank"
kind = "http-api"
currencies = ["EUR"]
result_deadline = "5d"

[channel.api]
base_url = "{bank}"
secret_env = "DISBURSE_BANK_API_SECRET"
request_timeout = "{timeout}"
concurrency = 16
status_backoff_first = "100ms"
status_backoff_max = "1s"
"#
    )
}

async fn killed_worker(backend: TestBackend) {
    let Some(db) = TestDb::fresh(backend, "api_kill").await else {
        return;
    };
    let dir = disburse_store::testing::temp_dir();
    // The bank: every first request is taken, then left unanswered for a minute.
    let mut bank = Command::new(env!("CARGO_BIN_EXE_disburse"));
    bank.args([
        "sandbox-bank",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "5",
        "--faults",
        "timeout=100",
        "--hang",
        "60s",
    ])
    .env("DISBURSE_BANK_API_SECRET", SECRET)
    .stdout(Stdio::piped());
    let mut bank = Killed(bank.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(bank.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("sandbox bank listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let key = AccountKey::generate();
    let key_file = dir.join("k.key");
    std::fs::write(&key_file, key.to_hex()).unwrap();
    let patient = dir.join("patient.toml");
    std::fs::write(&patient, config_text(&url, "120s")).unwrap();
    let brisk = dir.join("brisk.toml");
    std::fs::write(&brisk, config_text(&url, "2s")).unwrap();
    let engine = Engine::new(
        Db::open(&db.url).await.unwrap(),
        Config::parse(&config_text(&url, "2s"), "test").unwrap(),
        key.clone(),
    );
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let ops = Actor::operator(&OperatorName::parse("alice").unwrap());
    let acme = MerchantId::parse("acme").unwrap();
    engine.add_merchant(&acme, "Acme", t0, &ops).await.unwrap();
    engine
        .set_bank_account(
            &acme,
            &BankAccount::new(
                HolderName::parse("Acme").unwrap(),
                Iban::parse("DE89370400440532013000").unwrap().into(),
                None,
            ),
            t0,
            &ops,
        )
        .await
        .unwrap();
    engine
        .fund(
            &acme,
            Money::from_minor(1_000_000, Currency::Eur),
            None,
            t0,
            &ops,
        )
        .await
        .unwrap();
    for i in 0..PAYOUTS {
        engine
            .withdraw(
                &WithdrawRequest {
                    merchant: acme.clone(),
                    order_no: OrderNo::parse(&format!("W{i}")).unwrap(),
                    amount: Money::from_minor(5_000 + i as i64, Currency::Eur),
                },
                t0,
                &ops,
            )
            .await
            .unwrap();
    }
    engine.pay_open_orders(t0, &ops, 100).await.unwrap();
    let nos: Vec<String> = engine
        .db()
        .payouts_in_state("pending")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.payout_no)
        .collect();
    assert_eq!(nos.len(), PAYOUTS);

    let worker = |config: &std::path::Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_disburse"));
        c.arg("--db")
            .arg(&db.url)
            .arg("--key-file")
            .arg(&key_file)
            .arg("--config")
            .arg(config)
            .args(["--json", "api-channel", "run", "--channel", "api-bank"])
            .args(extra)
            .env("DISBURSE_BANK_API_SECRET", SECRET);
        c
    };
    let ledger = || async {
        reqwest::get(format!("{url}/ledger"))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };

    // The worker sends everything, then waits for answers that do not come: kill it there.
    let mut child = Killed(worker(&patient, &[]).stdout(Stdio::null()).spawn().unwrap());
    let started = Instant::now();
    loop {
        let l = ledger().await;
        if l["entries"].as_array().unwrap().len() == PAYOUTS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all sent: {l}"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the worker ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Sent and unrecorded: submitted, live, nothing paid in our books.
    assert_eq!(
        engine
            .db()
            .payouts_in_state("submitted")
            .await
            .unwrap()
            .len(),
        PAYOUTS
    );

    // A new worker asks, never sends again, and records what the bank did.
    let out = worker(
        &brisk,
        &["--rounds", "10", "--until-settled", "--pause", "150ms"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent: u64 = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 0, "nothing sent again: {reports}");
    let l = ledger().await;
    for no in &nos {
        let entry = l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == no.as_str())
            .unwrap_or_else(|| panic!("{no} not at the bank: {l}"));
        assert_eq!(entry["executions"], 1, "{entry}");
        assert_eq!(
            l["requests_by_key"][no], 1,
            "one instruction per payout: {l}"
        );
        assert_eq!(entry["status"]["status"], "paid", "{entry}");
        let ours = engine.db().payout_by_no(no).await.unwrap().unwrap();
        assert_eq!(ours.state, "succeeded", "{no}");
        assert_eq!(ours.paid_amount_minor, entry["moved_minor"].as_i64());
    }
    assert!(engine.db().ledger_check().await.unwrap().is_ok());
    assert!(engine.db().verify_audit().await.unwrap().is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_send_and_record_pays_each_payout_once_sqlite() {
    killed_worker(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_send_and_record_pays_each_payout_once_postgres() {
    killed_worker(TestBackend::Postgres).await;
}
