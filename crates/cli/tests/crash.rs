//! DESIGN §5.5: a crash at any point of an import leaves whole chunks applied, and running the
//! import again finishes it without doubling anything. The test kills the process for real.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use disburse_core::account::{BankAccount, HolderName, Iban};
use disburse_core::crypto::AccountKey;
use disburse_core::{Currency, MerchantId, Money, OperatorName, OrderNo};
use disburse_engine::{Actor, Config, Engine, OrderRef, WithdrawRequest};
use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;

const PAYOUTS: usize = 2400;

/// `one_line`: the whole status report on one physical line, as some banks send it (the
/// PostFinance samples): resuming "after line 1" would skip everything.
async fn crash_and_resume(backend: TestBackend, one_line: bool) {
    let name = if one_line {
        "import_crash_1l"
    } else {
        "import_crash"
    };
    let Some(db) = TestDb::fresh(backend, name).await else {
        return;
    };
    let dir = disburse_store::testing::temp_dir();
    let key = AccountKey::generate();
    let key_file = dir.join("k.key");
    std::fs::write(&key_file, key.to_hex()).unwrap();
    let engine = Engine::new(
        Db::open(&db.url).await.unwrap(),
        Config::builtin(),
        key.clone(),
    );
    // The chain key the `disburse` child derives from the same account key.
    let chain_key = disburse_core::crypto::ChainKey::derived_from(&key);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let ops = Actor::operator(&OperatorName::parse("alice").unwrap());
    let acme = MerchantId::parse("acme").unwrap();
    engine.add_merchant(&acme, "Acme", t0, &ops).await.unwrap();
    let account = BankAccount::new(
        HolderName::parse("Acme").unwrap(),
        Iban::parse("DE89370400440532013000").unwrap().into(),
        None,
    );
    engine
        .set_bank_account(&acme, &account, t0, &ops)
        .await
        .unwrap();
    engine
        .fund(
            &acme,
            Money::parse("1000000.00", Currency::Eur).unwrap(),
            None,
            t0,
            &ops,
        )
        .await
        .unwrap();
    let mut nos = Vec::with_capacity(PAYOUTS);
    for i in 0..PAYOUTS {
        let order_no = OrderNo::parse(&format!("W{i}")).unwrap();
        let req = WithdrawRequest {
            merchant: acme.clone(),
            order_no: order_no.clone(),
            amount: Money::from_minor(1000 + i as i64, Currency::Eur),
        };
        engine.withdraw(&req, t0, &ops).await.unwrap();
        let p = engine
            .create_payout(
                &OrderRef {
                    order_no,
                    merchant: None,
                },
                Some("sepa-file"),
                t0,
                &ops,
            )
            .await
            .map(|s| s.into_payout().expect("a payout"))
            .unwrap();
        nos.push((p.payout_no, p.amount_minor));
    }
    let (batch, _) = engine
        .create_batch("sepa-file", t0, &ops)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.payout_count as usize, PAYOUTS);

    let file = dir.join("big-status.xml");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let end = if one_line { "" } else { "\n" };
    write!(w, r#"<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt><GrpHdr><MsgId>S</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>P</OrgnlPmtInfId>{end}"#, batch.message_id).unwrap();
    for (no, minor) in &nos {
        let amount = Money::from_minor(*minor, Currency::Eur).to_decimal_string();
        write!(w, "<TxInfAndSts><OrgnlEndToEndId>{no}</OrgnlEndToEndId><TxSts>ACSC</TxSts><OrgnlTxRef><Amt><InstdAmt Ccy=\"EUR\">{amount}</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>{end}").unwrap();
    }
    writeln!(w, "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").unwrap();
    drop(w);

    let import = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_disburse"));
        c.args([
            "--db",
            &db.url,
            "--key-file",
            key_file.to_str().unwrap(),
            "--as-of",
            "2026-11-03T12:00:00Z",
            "--json",
            "results",
            "import",
        ])
        .arg(&file);
        c
    };
    let succeeded = |db: Db| async move {
        let n = db
            .count_where("payouts", "state = 'succeeded'")
            .await
            .unwrap();
        let journals = db
            .count_where("journals", "kind = 'payout_succeeded'")
            .await
            .unwrap();
        let done = db
            .count_where("bank_files", "last_line_done > 0")
            .await
            .unwrap();
        db.close().await;
        (n, journals, done)
    };

    // Start the import and kill it (SIGKILL: no cleanup of any kind) once a chunk is committed.
    let mut child = import().spawn().unwrap();
    let started = Instant::now();
    loop {
        let (n, _, _) = succeeded(Db::open(&db.url).await.unwrap()).await;
        if n > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no chunk committed in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let (n, journals, _) = succeeded(Db::open(&db.url).await.unwrap()).await;
    assert!(
        n > 0 && (n as usize) < PAYOUTS,
        "killed mid-way: {n} of {PAYOUTS}"
    );
    assert_eq!(
        n % disburse_engine::CHUNK_RECORDS as i64,
        0,
        "only whole chunks are applied: {n}"
    );
    assert_eq!(journals, n, "one journal per applied line");
    let check = Db::open(&db.url)
        .await
        .unwrap()
        .with_chain_key(chain_key.clone());
    assert!(check.ledger_check().await.unwrap().is_ok());
    assert!(
        check.verify_audit().await.unwrap().is_empty(),
        "a killed import leaves a consistent trail"
    );
    check.close().await;

    // Running it again finishes the file, resuming after the last chunk, doubling nothing.
    let out = import().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["resumed_after_record"].as_i64().unwrap(),
        n,
        "resumed after the records applied, however many lines: {summary}"
    );
    assert_eq!(
        summary["applied"].as_i64().unwrap(),
        PAYOUTS as i64 - n,
        "{summary}"
    );
    let (n, journals, _) = succeeded(Db::open(&db.url).await.unwrap()).await;
    assert_eq!((n as usize, journals as usize), (PAYOUTS, PAYOUTS));
    // And once more: already imported.
    let out = import().output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["already_imported"], true);
    let check = Db::open(&db.url)
        .await
        .unwrap()
        .with_chain_key(chain_key.clone());
    assert!(check.ledger_check().await.unwrap().is_ok());
    assert!(check.verify_audit().await.unwrap().is_empty());
    check.close().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_import_leaves_whole_chunks_and_a_rerun_finishes_it_sqlite() {
    crash_and_resume(TestBackend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_import_of_a_one_line_file_is_resumed_by_record_sqlite() {
    crash_and_resume(TestBackend::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_import_of_a_one_line_file_is_resumed_by_record_postgres() {
    crash_and_resume(TestBackend::Postgres, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_import_leaves_whole_chunks_and_a_rerun_finishes_it_postgres() {
    crash_and_resume(TestBackend::Postgres, false).await;
}

/// A statement import killed after some chunks are stored keeps whole chunks, and the same file
/// again goes on after them: every entry once, the statement closed once, the trail intact.
async fn statement_crash_and_resume(backend: TestBackend) {
    const ENTRIES: usize = 100_000;
    let Some(db) = TestDb::fresh(backend, "statement_crash").await else {
        return;
    };
    let dir = disburse_store::testing::temp_dir();
    let key = AccountKey::generate();
    let key_file = dir.join("k.key");
    std::fs::write(&key_file, key.to_hex()).unwrap();
    let chain_key = disburse_core::crypto::ChainKey::derived_from(&key);
    // Credits that are not ours: each entry is decided without a payout behind it.
    let file = dir.join("big-statement.xml");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let bal = |code: &str, amount: &str| {
        format!("<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-03</Dt></Dt></Bal>")
    };
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>S</MsgId><CreDtTm>2026-11-03T20:00:00</CreDtTm></GrpHdr><Stmt><Id>S1</Id><ElctrncSeqNb>1</ElctrncSeqNb><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>{}{}"#, bal("OPBD", "0.00"), bal("CLBD", &format!("{ENTRIES}.00"))).unwrap();
    for i in 0..ENTRIES {
        writeln!(w, "<Ntry><Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-03</Dt></BookgDt><AcctSvcrRef>IN-{i}</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd></Ntry>").unwrap();
    }
    writeln!(w, "</Stmt></BkToCstmrStmt></Document>").unwrap();
    drop(w);
    let import = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_disburse"));
        c.args([
            "--db",
            &db.url,
            "--key-file",
            key_file.to_str().unwrap(),
            "--as-of",
            "2026-11-03T21:00:00Z",
            "--json",
            "statements",
            "import",
        ])
        .arg(&file)
        .args(["--channel", "sepa-file"]);
        c
    };
    // One watcher, opened before the import starts: polling must be quicker than a chunk.
    let watcher = Db::open(&db.url).await.unwrap();
    let stored = || async { watcher.count("statement_entries").await.unwrap() };
    let mut child = import().spawn().unwrap();
    let started = Instant::now();
    while stored().await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no chunk stored in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let n = stored().await;
    assert!(
        n > 0 && (n as usize) < ENTRIES,
        "killed mid-way: {n} of {ENTRIES}"
    );
    assert_eq!(
        n % disburse_engine::STATEMENT_CHUNK_ENTRIES as i64,
        0,
        "only whole chunks are stored: {n}"
    );
    let check = Db::open(&db.url)
        .await
        .unwrap()
        .with_chain_key(chain_key.clone());
    assert!(
        check.verify_audit().await.unwrap().is_empty(),
        "a killed import leaves a consistent trail"
    );
    check.close().await;

    let out = import().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["resumed"], true, "{summary}");
    assert_eq!(summary["by_status"]["not_ours"], ENTRIES, "{summary}");
    assert_eq!(stored().await as usize, ENTRIES);
    let out = import().output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["already_imported"], true, "{summary}");
    watcher.close().await;
    let check = Db::open(&db.url).await.unwrap().with_chain_key(chain_key);
    assert!(check.verify_audit().await.unwrap().is_empty());
    assert_eq!(
        check
            .count_where("audit_events", "action = 'statement.imported'")
            .await
            .unwrap(),
        1,
        "the statement is closed once"
    );
    check.close().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_statement_import_keeps_whole_chunks_and_a_rerun_finishes_it_sqlite() {
    statement_crash_and_resume(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_statement_import_keeps_whole_chunks_and_a_rerun_finishes_it_postgres() {
    statement_crash_and_resume(TestBackend::Postgres).await;
}
