//! `disburse bench`: how fast result files are applied, measured against a floor.
//!
//! On a fresh SQLite database it seeds submitted payouts, writes a pain.002 and a CSV result file
//! with one line per payout, and imports each in a child process (`disburse results import`), timing
//! it from spawn to exit and reading the children's peak RSS. In the same run it measures a floor:
//! a bare loop writing the same rows (payout and order updates, journal, journal lines, outbox
//! message, audit event) into the same database, same transaction size, with no parsing and no
//! rules. The ratio import/floor is what the import costs beyond the writes themselves. Last, it
//! times the pain.001 writer on as many transfers.

// Floats here are seconds and rates of a measurement, never money.
#![allow(clippy::float_arithmetic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use disburse_core::{Currency, Money};
use disburse_formats::{CreditTransfer, CreditorAccount, Pain001Header};
use disburse_store::Db;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Measure {
    pub what: String,
    pub lines: u64,
    pub seconds: f64,
    pub lines_per_second: f64,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub database: String,
    pub how: String,
    pub measures: Vec<Measure>,
    pub ratio_pain002_to_floor: f64,
    pub ratio_csv_to_floor: f64,
    pub pain001_write_seconds: f64,
}

const SEED_ROWS_PER_STATEMENT: usize = 500;

fn payout_no(set: usize, i: usize) -> String {
    format!("PO{}{:09}", set, i)
}

/// Payouts in state `submitted`, each with its order, for one merchant: `sets` groups of `n`.
async fn seed(db: &Db, n: usize, channels: &[&str], at: &str) -> anyhow::Result<()> {
    db.execute_raw(&format!(
        "INSERT INTO merchants (id, name, account_status, created_at, updated_at) VALUES ('bench', 'Bench GmbH', 'ok', '{at}', '{at}')"
    ))
    .await?;
    db.execute_raw(&format!(
        "INSERT INTO bank_accounts (id, merchant_id, version, holder_name, kind, country, last4, bic, sealed_number, created_at) \
         VALUES (1, 'bench', 1, 'Bench GmbH', 'iban', 'DE', '3000', NULL, 'v1:unused-in-bench', '{at}')"
    ))
    .await?;
    for (set, channel) in channels.iter().enumerate() {
        for start in (0..n).step_by(SEED_ROWS_PER_STATEMENT) {
            let end = (start + SEED_ROWS_PER_STATEMENT).min(n);
            let mut orders = String::from("INSERT INTO orders (id, merchant_id, order_no, currency, amount_minor, bank_account_id, state, created_at, updated_at) VALUES ");
            let mut payouts = String::from("INSERT INTO payouts (id, payout_no, order_id, merchant_id, channel_id, currency, amount_minor, bank_account_id, state, submitted_at, created_at, updated_at) VALUES ");
            for i in start..end {
                let id = (set * n + i + 1) as i64;
                let amount = 1000 + (i % 9000) as i64;
                if i > start {
                    orders.push(',');
                    payouts.push(',');
                }
                orders.push_str(&format!(
                    "({id}, 'bench', 'B{set}-{i}', 'EUR', {amount}, 1, 'paying', '{at}', '{at}')"
                ));
                payouts.push_str(&format!(
                    "({id}, '{}', {id}, 'bench', '{channel}', 'EUR', {amount}, 1, 'submitted', '{at}', '{at}', '{at}')",
                    payout_no(set, i)
                ));
            }
            db.execute_raw(&orders).await?;
            db.execute_raw(&payouts).await?;
        }
    }
    let total = (channels.len() * n) as i64;
    db.execute_raw(&format!(
        "UPDATE sequences SET value = {total} WHERE name IN ('payout', 'order')"
    ))
    .await?;
    db.execute_raw("UPDATE sequences SET value = 1 WHERE name = 'bank_account'")
        .await?;
    Ok(())
}

fn amount_of(i: usize) -> Money {
    Money::from_minor(1000 + (i % 9000) as i64, Currency::Eur)
}

fn write_pain002(path: &Path, set: usize, n: usize) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>"#
    )?;
    writeln!(
        w,
        "<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-03T10:00:00</CreDtTm></GrpHdr>"
    )?;
    writeln!(w, "<OrgnlGrpInfAndSts><OrgnlMsgId>BENCH-1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>")?;
    writeln!(w, "<OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId>")?;
    for i in 0..n {
        writeln!(
            w,
            "<TxInfAndSts><OrgnlEndToEndId>{}</OrgnlEndToEndId><TxSts>ACSC</TxSts><AcctSvcrRef>R{i}</AcctSvcrRef><OrgnlTxRef><Amt><InstdAmt Ccy=\"EUR\">{}</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>",
            payout_no(set, i),
            amount_of(i).to_decimal_string()
        )?;
    }
    writeln!(w, "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>")?;
    w.flush()?;
    Ok(())
}

fn write_csv(path: &Path, set: usize, n: usize) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "Payment Reference,Bank Reference,Status,Amount,Currency,Value Date,Reason Code,Reason"
    )?;
    for i in 0..n {
        writeln!(
            w,
            "{},EB-{i},PAID,{},EUR,03/11/2026,,",
            payout_no(set, i),
            amount_of(i).to_decimal_string()
        )?;
    }
    w.flush()?;
    Ok(())
}

/// The floor: the same rows written by a bare loop through the same write path (`WriteTx`: row
/// digests, buffered multi-row appends, one audit event per line), `chunk` lines per transaction,
/// with no file, no parsing and no rules.
async fn floor(db: &Db, set: usize, n: usize, chunk: usize, at: &str) -> anyhow::Result<f64> {
    use disburse_store::{Bind, JournalLineRow, JournalRow, NewAuditEvent, OrderRow, PayoutRow};
    let started = Instant::now();
    for start in (0..n).step_by(chunk) {
        let mut tx = db.write().await?;
        for i in start..(start + chunk).min(n) {
            let mut p: PayoutRow = tx
                .fetch_optional("WHERE payout_no = $1", &[Bind::Text(payout_no(set, i))])
                .await?
                .ok_or_else(|| anyhow::anyhow!("seeded payout missing"))?;
            p.state = "succeeded".into();
            p.paid_amount_minor = Some(p.amount_minor);
            p.updated_at = at.to_string();
            tx.update(&p).await?;
            let j = tx.next_id("journal").await?;
            tx.insert(&JournalRow {
                id: j,
                kind: "payout_succeeded".into(),
                merchant_id: Some("bench".into()),
                order_id: Some(p.order_id),
                payout_id: Some(p.id),
                audit_seq: tx.next_audit_seq(),
                created_at: at.to_string(),
            })
            .await?;
            for (account, amount) in [
                ("merchant:bench:in_transit", p.amount_minor),
                ("channel:bench:bank", -p.amount_minor),
            ] {
                let id = tx.next_id("journal_line").await?;
                tx.insert(&JournalLineRow {
                    id,
                    journal_id: j,
                    account: account.into(),
                    currency: "EUR".into(),
                    amount_minor: amount,
                })
                .await?;
            }
            let mut o: OrderRow = tx
                .fetch_optional("WHERE id = $1", &[Bind::Int(p.order_id)])
                .await?
                .ok_or_else(|| anyhow::anyhow!("seeded order missing"))?;
            o.state = "paid".into();
            o.updated_at = at.to_string();
            tx.update(&o).await?;
            tx.insert_outbox(
                "bench",
                "order.paid",
                &serde_json::json!({"payout_no": p.payout_no}),
                at,
            )
            .await?;
            tx.audit(NewAuditEvent {
                at: at.to_string(),
                actor: "bench".into(),
                action: "payout.succeeded".into(),
                subject: format!("payout:{}", p.payout_no),
                reason: None,
                detail: serde_json::json!({"before": {"state": "submitted"}, "after": {"state": "succeeded"}}),
            })
            .await?;
        }
        tx.commit().await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Runs one import as its own process; returns wall seconds and the child's peak RSS in MB, which
/// the child reads from its own /proc/self/status (VmHWM) just before it exits.
fn import_child(
    exe: &Path,
    db_url: &str,
    key: &Path,
    file: &Path,
    channel: &str,
    as_of: &str,
) -> anyhow::Result<(f64, Option<f64>)> {
    let started = Instant::now();
    let out = std::process::Command::new(exe)
        .args(["--db", db_url, "--key-file"])
        .arg(key)
        .args(["--as-of", as_of, "--json", "results", "import"])
        .arg(file)
        .args(["--channel", channel])
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    anyhow::ensure!(
        summary["exceptions"] == 0,
        "import had exceptions: {summary}"
    );
    let rss = summary["peak_rss_kb"].as_u64().map(|kb| kb as f64 / 1024.0);
    Ok((seconds, rss))
}

pub async fn run(
    lines: usize,
    dir: Option<PathBuf>,
    as_of: DateTime<Utc>,
) -> anyhow::Result<BenchReport> {
    let dir = dir.unwrap_or_else(disburse_store::testing::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let db_path = dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db_path.display())).ok();
    }
    let db_url = db_path.display().to_string();
    let key = dir.join("bench.key");
    std::fs::write(&key, disburse_core::crypto::AccountKey::generate().to_hex())?;
    let at = disburse_store::fmt_time(as_of);
    let db = Db::open(&db_url).await?;
    eprintln!(
        "seeding {} submitted payouts in 3 sets of {lines} ...",
        3 * lines
    );
    seed(&db, lines, &["sepa-file", "eb-csv", "sepa-file"], &at).await?;
    let pain002 = dir.join("bench-pain002.xml");
    let csv = dir.join("bench-results.csv");
    write_pain002(&pain002, 0, lines)?;
    write_csv(&csv, 1, lines)?;
    let exe = std::env::current_exe()?;
    let as_of_text = as_of.to_rfc3339();
    let mut measures = Vec::new();

    eprintln!("floor: bare loop of the same writes ...");
    let floor_s = floor(&db, 2, lines, disburse_engine::CHUNK_RECORDS, &at).await?;
    db.close().await;

    eprintln!("importing the pain.002 ...");
    let (p_s, rss_after_pain) =
        import_child(&exe, &db_url, &key, &pain002, "sepa-file", &as_of_text)?;
    eprintln!("importing the CSV ...");
    let (c_s, rss_after_csv) = import_child(&exe, &db_url, &key, &csv, "eb-csv", &as_of_text)?;

    let n = lines as u64;
    let per_s = |s: f64| n as f64 / s;
    measures.push(Measure {
        what: "import pain.002.001.10 (ACSC with amount)".into(),
        lines: n,
        seconds: p_s,
        lines_per_second: per_s(p_s),
        peak_rss_mb: rss_after_pain,
    });
    measures.push(Measure {
        what: "import CSV (englishbank profile, PAID)".into(),
        lines: n,
        seconds: c_s,
        lines_per_second: per_s(c_s),
        peak_rss_mb: rss_after_csv,
    });
    measures.push(Measure {
        what: "floor: bare loop, same rows, same database".into(),
        lines: n,
        seconds: floor_s,
        lines_per_second: per_s(floor_s),
        peak_rss_mb: None,
    });

    eprintln!("writing pain.001 ...");
    let transfers: Vec<CreditTransfer> = (0..lines)
        .map(|i| CreditTransfer {
            end_to_end_id: payout_no(0, i),
            amount: amount_of(i),
            creditor_name: "Bench GmbH".into(),
            creditor_account: CreditorAccount::Iban("DE89370400440532013000".into()),
            creditor_bic: None,
            creditor_country: "DE".into(),
            remittance_info: format!("Payout {}", payout_no(0, i)),
        })
        .collect();
    let header = Pain001Header {
        message_id: "BENCH-PAIN001".into(),
        created_at: as_of,
        requested_execution_date: as_of.date_naive(),
        debtor_name: "Disburse Payments Ltd".into(),
        debtor_iban: "DE89370400440532013000".into(),
        debtor_bic: None,
        currency: Currency::Eur,
    };
    let started = Instant::now();
    disburse_formats::write_pain001(
        &header,
        &transfers,
        std::fs::File::create(dir.join("bench-pain001.xml"))?,
    )?;
    let w_s = started.elapsed().as_secs_f64();

    Ok(BenchReport {
        database: format!("SQLite (bundled, WAL, synchronous=NORMAL) at {}", db_path.display()),
        how: format!(
            "{lines} submitted payouts per set seeded by multi-row INSERTs; each import runs as a child process \
             `disburse results import` (timed spawn to exit: hashing, a checking pass, then applying {} lines per transaction \
             through the payout state machine with journal, outbox message and audit event per line); peak RSS is the \
             import process's own high-water mark (VmHWM of /proc/self/status, read just before it exits); \
             the floor writes the same rows per line (2 reads, 2 updates, journal, 2 journal lines, outbox, audit event) \
             through the same write path (row digests, buffered multi-row appends, hash chain) in a bare loop in this \
             process, same transaction size, no file, no parsing, no rules; the pain.001 figure times the \
             writer alone on {lines} transfers held in memory, to a file",
            disburse_engine::CHUNK_RECORDS
        ),
        ratio_pain002_to_floor: floor_s / p_s,
        ratio_csv_to_floor: floor_s / c_s,
        pain001_write_seconds: w_s,
        measures,
    })
}
