//! Test helpers: a fresh engine on a fresh database (SQLite or PostgreSQL) per test.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::crypto::AccountKey;
use disburse_core::{BankResult, Currency, MerchantId, Money, OrderNo, PayoutNo};
use disburse_engine::{
    Actor, ApplyOutcome, Config, Engine, OrderRef, ResultSource, WithdrawRequest,
};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;
use std::path::PathBuf;

pub struct App {
    pub engine: Engine,
    pub url: String,
    pub key: AccountKey,
}

/// Generates `<name>_sqlite` and `<name>_postgres` tests from one async body taking `App`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                // The guard keeps the database until the test ends.
                let (app, _guard) = common::app(
                    disburse_store::testing::TestBackend::Sqlite,
                    stringify!($name),
                )
                .await
                .unwrap();
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((app, _guard)) = common::app(
                    disburse_store::testing::TestBackend::Postgres,
                    stringify!($name),
                )
                .await
                {
                    ($body)(app).await;
                }
            }
        }
    };
}

pub async fn app(backend: TestBackend, name: &str) -> Option<(App, TestDb)> {
    let db = TestDb::fresh(backend, name).await?;
    let key = AccountKey::generate();
    let engine = Engine::new(
        Db::open(&db.url).await.expect("open db"),
        Config::builtin(),
        key.clone(),
    );
    Some((
        App {
            engine,
            url: db.url.clone(),
            key,
        },
        db,
    ))
}

impl App {
    /// A second engine (its own connection pool) on the same database: another process.
    pub async fn second_engine(&self) -> Engine {
        Engine::new(
            Db::open(&self.url).await.expect("open db"),
            Config::builtin(),
            self.key.clone(),
        )
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

pub fn day(n: i64) -> DateTime<Utc> {
    t0() + Duration::days(n)
}

pub fn ops() -> Actor {
    Actor::operator(&disburse_core::OperatorName::parse("alice").unwrap())
}

pub fn eur(text: &str) -> Money {
    Money::parse(text, Currency::Eur).unwrap()
}

pub fn m(id: &str) -> MerchantId {
    MerchantId::parse(id).unwrap()
}

pub fn order(no: &str) -> OrderRef {
    OrderRef {
        order_no: OrderNo::parse(no).unwrap(),
        merchant: None,
    }
}

pub fn iban_account(iban: &str) -> BankAccount {
    BankAccount::new(
        HolderName::parse("Acme GmbH").unwrap(),
        Iban::parse(iban).unwrap().into(),
        None,
    )
}

pub const IBAN_1: &str = "DE89370400440532013000";
pub const IBAN_2: &str = "DE02120300000000202051";

/// A merchant with an IBAN and a funded EUR balance.
pub async fn funded_merchant(e: &Engine, id: &str, amount: &str) {
    e.add_merchant(&m(id), "Acme GmbH", t0(), &ops())
        .await
        .unwrap();
    e.set_bank_account(&m(id), &iban_account(IBAN_1), t0(), &ops())
        .await
        .unwrap();
    e.fund(
        &m(id),
        eur(amount),
        Some("collections 2026-11-01"),
        t0(),
        &ops(),
    )
    .await
    .unwrap();
}

pub async fn withdraw(e: &Engine, merchant: &str, no: &str, amount: &str) {
    e.withdraw(
        &WithdrawRequest {
            merchant: m(merchant),
            order_no: OrderNo::parse(no).unwrap(),
            amount: eur(amount),
        },
        t0(),
        &ops(),
    )
    .await
    .unwrap();
}

pub fn paid(amount: &str) -> BankResult {
    BankResult::Paid {
        amount: Some(eur(amount)),
        instructed: None,
        reference: Some("BANKREF-1".into()),
        value_date: None,
    }
}

pub fn rejected(code: &str) -> BankResult {
    BankResult::Rejected {
        reason_code: code.into(),
        reason_text: Some("account closed".into()),
        instructed: None,
    }
}

pub async fn apply(
    e: &Engine,
    payout_no: &str,
    r: BankResult,
    at: DateTime<Utc>,
) -> disburse_engine::Result<ApplyOutcome> {
    e.apply_bank_result(
        &PayoutNo::parse(payout_no).unwrap(),
        &r,
        &ResultSource::Manual {
            evidence: "bank notice".into(),
        },
        at,
        &ops(),
    )
    .await
}

/// Books balanced, totals zero, audit chain and every row intact.
pub async fn assert_books_and_audit(e: &Engine) {
    let check = e.db().ledger_check().await.unwrap();
    assert!(check.is_ok(), "ledger check failed: {check:?}");
    let findings = e.db().verify_audit().await.unwrap();
    assert!(findings.is_empty(), "audit verify failed: {findings:?}");
}

/// A snapshot of everything stored, to assert that a refused command wrote nothing.
pub async fn snapshot(e: &Engine) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "merchants",
        "bank_accounts",
        "orders",
        "payouts",
        "journals",
        "journal_lines",
        "audit_events",
        "outbox",
    ] {
        out.push(e.db().count(t).await.unwrap());
    }
    out
}

/// A pain.002.001.10 status report for `msg_id`: (EndToEndId, status, reason, paid amount EUR).
pub fn pain002(msg_id: &str, lines: &[(&str, &str, Option<&str>, Option<&str>)]) -> String {
    let mut tx = String::new();
    for (e2e, status, reason, amount) in lines {
        tx.push_str(&format!(
            "      <TxInfAndSts>\n        <OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>\n        <TxSts>{status}</TxSts>\n"
        ));
        if let Some(r) = reason {
            tx.push_str(&format!(
                "        <StsRsnInf><Rsn><Cd>{r}</Cd></Rsn></StsRsnInf>\n"
            ));
        }
        tx.push_str("        <AcctSvcrRef>BANK-REF-");
        tx.push_str(e2e);
        tx.push_str("</AcctSvcrRef>\n");
        if let Some(a) = amount {
            tx.push_str(&format!(
                "        <OrgnlTxRef><Amt><InstdAmt Ccy=\"EUR\">{a}</InstdAmt></Amt></OrgnlTxRef>\n"
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

pub fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Orders W1..=Wn of 100.00 EUR for a funded acme, each with a payout on sepa-file, sent in one
/// batch: the batch, its file, and the payout numbers.
pub async fn send_batch(
    e: &Engine,
    n: usize,
) -> (disburse_engine::BatchSummary, Vec<u8>, Vec<String>) {
    funded_merchant(e, "acme", "1000.00").await;
    let mut nos = Vec::new();
    for i in 1..=n {
        withdraw(e, "acme", &format!("W{i}"), "100.00").await;
        let started = e
            .create_payout(&order(&format!("W{i}")), None, t0(), &ops())
            .await
            .unwrap();
        nos.push(started.into_payout().expect("a payout").payout_no);
    }
    let (batch, bytes) = e
        .create_batch("sepa-file", t0(), &ops())
        .await
        .unwrap()
        .unwrap();
    (batch, bytes, nos)
}

/// [`send_batch`], for tests that need the message id and the payout numbers.
pub async fn sent(e: &Engine, n: usize) -> (String, Vec<String>) {
    let (batch, _, nos) = send_batch(e, n).await;
    (batch.message_id, nos)
}
