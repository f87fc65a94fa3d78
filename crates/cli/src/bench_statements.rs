//! `disburse bench-statements`: how fast bank statements are imported and matched.
//!
//! On a fresh SQLite database (or a scratch PostgreSQL database, with `--db postgres://…`) it
//! seeds succeeded payouts, writes a camt.053.001.08 statement and a CSV statement (profile
//! `englishbank-statement`) with one debit per payout, each naming its payout by EndToEndId /
//! payment reference, and imports each in a child process (`disburse statements import`), timed
//! from spawn to exit, with the child's own peak RSS. A statement a tenth the size is imported
//! first, so the two peak RSS figures show whether memory grows with the file.

// Floats here are seconds and rates of a measurement, never money.
#![allow(clippy::float_arithmetic)]

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use disburse_store::Db;
use serde::Serialize;

use crate::bench::{amount_of, import_child, payout_no, seed, with_database, Measure};

#[derive(Debug, Serialize)]
pub struct StatementBenchReport {
    pub database: String,
    pub how: String,
    pub measures: Vec<Measure>,
}

/// Our account at the bank, as every channel's default debtor account.
const ACCOUNT: &str = "DE89370400440532013000";

/// Opening balance: more than the statements debit, so the account never runs dry.
fn opening_minor(n: usize) -> i64 {
    (n as i64 + 1) * 10_000
}

fn total_minor(n: usize) -> i64 {
    (0..n).map(|i| amount_of(i).amount_minor()).sum()
}

fn decimal(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// A camt.053.001.08 statement of `n` booked debits, one per payout of `set`, opening at
/// `opening` (the previous statement's closing balance); returns its closing balance.
fn write_camt053(
    path: &Path,
    set: usize,
    n: usize,
    sequence: u64,
    opening: i64,
) -> anyhow::Result<i64> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let closing = opening - total_minor(n);
    let bal = |code: &str, minor: i64| {
        format!(
            "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-03</Dt></Dt></Bal>",
            decimal(minor)
        )
    };
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>"#
    )?;
    writeln!(
        w,
        "<GrpHdr><MsgId>BENCH-STMT-{set}</MsgId><CreDtTm>2026-11-03T20:00:00</CreDtTm></GrpHdr>"
    )?;
    writeln!(
        w,
        "<Stmt><Id>BENCH-{set}</Id><ElctrncSeqNb>{sequence}</ElctrncSeqNb><FrToDt><FrDtTm>2026-11-03T00:00:00</FrDtTm><ToDtTm>2026-11-03T23:59:59</ToDtTm></FrToDt><Acct><Id><IBAN>{ACCOUNT}</IBAN></Id></Acct>"
    )?;
    writeln!(w, "{}{}", bal("OPBD", opening), bal("CLBD", closing))?;
    for i in 0..n {
        let amount = amount_of(i).to_decimal_string();
        writeln!(
            w,
            "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-03</Dt></BookgDt><ValDt><Dt>2026-11-03</Dt></ValDt><AcctSvcrRef>S{set}-{i}</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd><NtryDtls><TxDtls><Refs><EndToEndId>{}</EndToEndId></Refs><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls></NtryDtls></Ntry>",
            payout_no(set, i)
        )?;
    }
    writeln!(w, "</Stmt></BkToCstmrStmt></Document>")?;
    w.flush()?;
    Ok(closing)
}

/// The English bank's CSV statement of `n` debits, one per payout of `set`.
fn write_csv(path: &Path, set: usize, n: usize) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "Date,Value Date,Account,Statement No,Type,Payment Reference,Bank Reference,Batch Reference,Paid Out,Paid In,Balance"
    )?;
    let mut balance = opening_minor(n);
    for i in 0..n {
        let amount = amount_of(i).amount_minor();
        balance -= amount;
        writeln!(
            w,
            "03/11/2026,03/11/2026,{ACCOUNT},1,PAYMENT,{},EB-S{set}-{i},,{},,{}",
            payout_no(set, i),
            decimal(amount),
            decimal(balance)
        )?;
    }
    w.flush()?;
    Ok(())
}

pub async fn run(
    entries: usize,
    dir: Option<PathBuf>,
    db_url: &str,
    as_of: DateTime<Utc>,
) -> anyhow::Result<StatementBenchReport> {
    let dir = dir.unwrap_or_else(disburse_store::testing::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let postgres = db_url.starts_with("postgres://") || db_url.starts_with("postgresql://");
    let scratch = format!("disburse_bench_statements_{}", std::process::id());
    let url = if postgres {
        disburse_store::bench::create_scratch_database(db_url, &scratch).await?;
        with_database(db_url, &scratch)
    } else {
        let db = dir.join("bench-statements.db");
        for suffix in ["", "-wal", "-shm"] {
            std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
        }
        db.display().to_string()
    };
    let result = measure(entries, &dir, &url, as_of).await;
    if postgres {
        disburse_store::bench::drop_scratch_database(db_url, &scratch)
            .await
            .ok();
    }
    let (measures, how) = result?;
    Ok(StatementBenchReport {
        database: if postgres {
            format!("PostgreSQL, scratch database {scratch} on the server of --db (dropped after the run)")
        } else {
            format!("SQLite (bundled, WAL, synchronous=NORMAL) at {url}")
        },
        how,
        measures,
    })
}

async fn measure(
    n: usize,
    dir: &Path,
    url: &str,
    as_of: DateTime<Utc>,
) -> anyhow::Result<(Vec<Measure>, String)> {
    let small = (n / 10).max(1);
    let key = dir.join("bench.key");
    let account_key = disburse_core::crypto::AccountKey::generate();
    std::fs::write(&key, account_key.to_hex())?;
    let at = disburse_store::fmt_time(as_of);
    let db = Db::open(url)
        .await?
        .with_chain_key(disburse_core::crypto::ChainKey::derived_from(&account_key));
    eprintln!(
        "seeding {} succeeded payouts ({small} + {n} on sepa-file, {n} on eb-csv) ...",
        small + 2 * n
    );
    // Set 0: the small statement; set 1: the large one; set 2: the CSV statement.
    seed(
        &db,
        &[("sepa-file", small), ("sepa-file", n), ("eb-csv", n)],
        &at,
        "succeeded",
    )
    .await?;
    db.close().await;
    let small_xml = dir.join("bench-camt053-small.xml");
    let xml = dir.join("bench-camt053.xml");
    let csv = dir.join("bench-statement.csv");
    eprintln!("writing the statements ...");
    // The two camt.053 are statements 1 and 2 of one account: the second opens where the first closed.
    let closing = write_camt053(&small_xml, 0, small, 1, opening_minor(small + n))?;
    write_camt053(&xml, 1, n, 2, closing)?;
    write_csv(&csv, 2, n)?;
    let exe = std::env::current_exe()?;
    let as_of_text = as_of.to_rfc3339();
    let mut measures = Vec::new();
    for (what, file, channel, count) in [
        (
            "import camt.053.001.08 (a tenth the size)",
            &small_xml,
            "sepa-file",
            small,
        ),
        ("import camt.053.001.08", &xml, "sepa-file", n),
        (
            "import CSV statement (englishbank-statement)",
            &csv,
            "eb-csv",
            n,
        ),
    ] {
        eprintln!("{what}: {count} entries ...");
        let (s, rss) = import_child(
            &exe,
            url,
            &key,
            ["statements", "import"],
            file,
            channel,
            &as_of_text,
            |summary| {
                anyhow::ensure!(
                    summary["by_status"]["matched"] == count && summary["exceptions_total"] == 0,
                    "the statement did not match every entry: {summary}"
                );
                Ok(())
            },
        )?;
        measures.push(Measure {
            what: what.into(),
            lines: count as u64,
            seconds: s,
            lines_per_second: count as f64 / s,
            peak_rss_mb: rss,
        });
    }
    for f in [&small_xml, &xml, &csv] {
        std::fs::remove_file(f).ok();
    }
    let how = format!(
        "succeeded payouts seeded by multi-row INSERTs; each statement has one booked debit per payout naming it \
         (EndToEndId in camt.053, the payment reference in the CSV) and is imported as a child process \
         `disburse statements import` (timed spawn to exit: hashing the file, a checking pass over the whole \
         statement, then matching and storing {} entries per chunk: set reads of the chunk's payouts, batches and \
         references, the match decided in memory, multi-row inserts, one audit event per chunk, one transaction for \
         the statement); every entry must come out matched; peak RSS is the import process's own high-water mark \
         (VmHWM, read just before it exits), for a statement of {small} and of {n} entries",
        disburse_engine::STATEMENT_CHUNK_ENTRIES
    );
    Ok((measures, how))
}
