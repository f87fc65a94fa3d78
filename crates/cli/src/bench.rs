//! `disburse bench`: how fast result files are applied, measured against a floor.
//!
//! On a fresh SQLite database (or scratch PostgreSQL databases, with `--db postgres://…`) it seeds
//! submitted payouts, writes a pain.002 and a CSV result file with one line per payout, and imports
//! each in a child process (`disburse results import`), timing it from spawn to exit and reading
//! the children's peak RSS. In the same run it measures an independent floor
//! ([`crate::bench_floor`]): the same rows written by direct prepared statements into a copy of the
//! seeded database, sharing nothing with Disburse's write path; and, when given `--peer`, a peer
//! program writing the same rows (the Python script it was compared with). Last, it times the
//! pain.001 writer on as many transfers.

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
    /// Import speed over the Python peer's (present when the peer ran).
    pub ratio_pain002_to_peer: Option<f64>,
    pub ratio_csv_to_peer: Option<f64>,
    pub pain001_write_seconds: f64,
}

pub(crate) fn payout_no(set: usize, i: usize) -> String {
    format!("PO{}{:09}", set, i)
}

/// Payouts in `state`, each with its order, for one merchant: one set per (channel, count), set
/// `k` numbered by [`payout_no`]`(k, i)`, of [`amount_of`]`(i)`.
pub(crate) async fn seed(
    db: &Db,
    sets: &[(&str, usize)],
    at: &str,
    state: &str,
) -> anyhow::Result<()> {
    disburse_store::bench::seed_payouts(db, sets, at, state, payout_no, |i| {
        amount_of(i).amount_minor()
    })
    .await?;
    Ok(())
}

pub(crate) fn amount_of(i: usize) -> Money {
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

/// Runs `disburse <command> FILE --channel C --json` (an import) as its own process, timed from
/// spawn to exit; `check` refuses a summary that shows the run did not do its work. Returns wall
/// seconds and the child's peak RSS in MB, which the child reads from its own /proc/self/status
/// (VmHWM) just before it exits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn import_child(
    exe: &Path,
    db_url: &str,
    key: &Path,
    command: [&str; 2],
    file: &Path,
    channel: &str,
    as_of: &str,
    check: impl Fn(&serde_json::Value) -> anyhow::Result<()>,
) -> anyhow::Result<(f64, Option<f64>)> {
    let started = Instant::now();
    let out = std::process::Command::new(exe)
        .args(["--db", db_url, "--key-file"])
        .arg(key)
        .args(["--as-of", as_of, "--json"])
        .args(command)
        .arg(file)
        .args(["--channel", channel])
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        command.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    check(&summary)?;
    let rss = summary["peak_rss_kb"].as_u64().map(|kb| kb as f64 / 1024.0);
    Ok((seconds, rss))
}

/// A result import must apply every line.
fn no_exceptions(summary: &serde_json::Value) -> anyhow::Result<()> {
    anyhow::ensure!(
        summary["exceptions"] == 0,
        "import had exceptions: {summary}"
    );
    Ok(())
}

/// Where the benchmark runs: a SQLite file in the bench directory, or scratch databases on a
/// PostgreSQL server (created for the run, dropped after it).
enum Target {
    Sqlite {
        db: PathBuf,
        floor: PathBuf,
    },
    Postgres {
        server: String,
        db: String,
        floor: String,
    },
}

impl Target {
    fn import_url(&self) -> String {
        match self {
            Target::Sqlite { db, .. } => db.display().to_string(),
            Target::Postgres { server, db, .. } => with_database(server, db),
        }
    }
}

/// The URL of database `name` on the server of `url`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 => &base[..i],
        _ => base,
    };
    format!("{server}/{name}{query}")
}

/// What the Python peer printed: `peer-samerows: N lines in S s = R lines/s (...)`.
fn run_peer(script: &Path, n: usize, dir: &Path) -> anyhow::Result<f64> {
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["--n", &n.to_string(), "--dir"])
        .arg(dir)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the peer {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let seconds = text
        .split(" lines in ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("the peer printed {text:?}, not 'N lines in S s'"))?;
    Ok(seconds)
}

pub async fn run(
    lines: usize,
    dir: Option<PathBuf>,
    db_url: &str,
    peer: Option<&Path>,
    as_of: DateTime<Utc>,
) -> anyhow::Result<BenchReport> {
    let dir = dir.unwrap_or_else(disburse_store::testing::temp_dir);
    std::fs::create_dir_all(&dir)?;
    let target = if db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") {
        let tag = format!("disburse_bench_{}", std::process::id());
        let t = Target::Postgres {
            server: db_url.to_string(),
            db: tag.clone(),
            floor: format!("{tag}_floor"),
        };
        if let Target::Postgres { db, floor, .. } = &t {
            for name in [db, floor] {
                disburse_store::bench::drop_scratch_database(db_url, name).await?;
            }
            disburse_store::bench::create_scratch_database(db_url, db).await?;
        }
        t
    } else {
        let t = Target::Sqlite {
            db: dir.join("bench.db"),
            floor: dir.join("floor.db"),
        };
        if let Target::Sqlite { db, floor } = &t {
            for path in [db, floor] {
                for suffix in ["", "-wal", "-shm"] {
                    std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
                }
            }
        }
        t
    };
    let result = measure(lines, &dir, &target, peer, as_of).await;
    if let Target::Postgres { server, db, floor } = &target {
        for name in [db, floor] {
            disburse_store::bench::drop_scratch_database(server, name)
                .await
                .ok();
        }
    }
    result
}

async fn measure(
    lines: usize,
    dir: &Path,
    target: &Target,
    peer: Option<&Path>,
    as_of: DateTime<Utc>,
) -> anyhow::Result<BenchReport> {
    let db_url = target.import_url();
    let key = dir.join("bench.key");
    let account_key = disburse_core::crypto::AccountKey::generate();
    std::fs::write(&key, account_key.to_hex())?;
    let at = disburse_store::fmt_time(as_of);
    // The chain key the child imports derive from the same account key.
    let db = Db::open(&db_url)
        .await?
        .with_chain_key(disburse_core::crypto::ChainKey::derived_from(&account_key));
    eprintln!(
        "seeding {} submitted payouts in 2 sets of {lines} ...",
        2 * lines
    );
    seed(
        &db,
        &[("sepa-file", lines), ("eb-csv", lines)],
        &at,
        "submitted",
    )
    .await?;
    // The floor's database is a copy of the seeded one: same rows, same indexes, its own file.
    match target {
        Target::Sqlite { floor, .. } => {
            db.copy_sqlite_to(floor).await?;
        }
        Target::Postgres {
            server,
            db: name,
            floor,
        } => {
            db.close().await;
            disburse_store::bench::copy_scratch_database(server, floor, name).await?;
        }
    }
    db.close().await;
    let pain002 = dir.join("bench-pain002.xml");
    let csv = dir.join("bench-results.csv");
    write_pain002(&pain002, 0, lines)?;
    write_csv(&csv, 1, lines)?;
    let exe = std::env::current_exe()?;
    let as_of_text = as_of.to_rfc3339();
    let mut measures = Vec::new();
    let n = lines as u64;
    let per_s = |s: f64| n as f64 / s;

    eprintln!("importing the pain.002 ...");
    let (p_s, rss_after_pain) = import_child(
        &exe,
        &db_url,
        &key,
        ["results", "import"],
        &pain002,
        "sepa-file",
        &as_of_text,
        no_exceptions,
    )?;
    eprintln!("importing the CSV ...");
    let (c_s, rss_after_csv) = import_child(
        &exe,
        &db_url,
        &key,
        ["results", "import"],
        &csv,
        "eb-csv",
        &as_of_text,
        no_exceptions,
    )?;

    eprintln!("floor: the same rows by direct prepared statements ...");
    let numbers: Vec<String> = (0..lines).map(|i| payout_no(0, i)).collect();
    let floor_key: [u8; 32] = rand::random();
    let chunk = disburse_engine::CHUNK_RECORDS;
    let (floor_s, floor_what) = match target {
        Target::Sqlite { floor, .. } => (
            crate::bench_floor::sqlite(floor, &numbers, chunk, &at, &floor_key)?,
            "floor: same rows, rusqlite prepared statements",
        ),
        Target::Postgres { server, floor, .. } => (
            crate::bench_floor::postgres(
                &with_database(server, floor),
                &numbers,
                chunk,
                &at,
                &floor_key,
            )
            .await?,
            "floor: same rows, sqlx PgConnection prepared",
        ),
    };
    let peer_s = match (peer, target) {
        (Some(script), Target::Sqlite { .. }) => {
            eprintln!("the peer: {} ...", script.display());
            Some(run_peer(script, lines, &dir.join("peer"))?)
        }
        _ => None,
    };

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
        what: floor_what.into(),
        lines: n,
        seconds: floor_s,
        lines_per_second: per_s(floor_s),
        peak_rss_mb: None,
    });
    if let Some(s) = peer_s {
        measures.push(Measure {
            what: "peer: Python script, same rows (sqlite3)".into(),
            lines: n,
            seconds: s,
            lines_per_second: per_s(s),
            peak_rss_mb: None,
        });
    }

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
        database: match target {
            Target::Sqlite { db, .. } => {
                format!("SQLite (bundled, WAL, synchronous=NORMAL) at {}", db.display())
            }
            Target::Postgres { db, .. } => format!(
                "PostgreSQL, scratch database {db} on the server of --db (dropped after the run)"
            ),
        },
        how: format!(
            "{lines} submitted payouts per set seeded by multi-row INSERTs; each import runs as a child process \
             `disburse results import` (timed spawn to exit: hashing, a checking pass, then applying {chunk} lines per \
             transaction through the payout state machine with journal, outbox message and audit event per line); peak \
             RSS is the import process's own high-water mark (VmHWM, read just before it exits); the floor writes the \
             same rows per line (read payout and order, update both, journal with 2 lines, outbox message, audit event \
             with SHA-256 row digests and an HMAC-SHA256 chain) by direct prepared statements that share nothing with \
             Disburse's write path, into a copy of the seeded database, {chunk} lines per transaction; the peer, when \
             given, is run as `python3 SCRIPT --n {lines}` and its own timing is taken; the pain.001 figure times the \
             writer alone on {lines} transfers held in memory, to a file"
        ),
        ratio_pain002_to_floor: floor_s / p_s,
        ratio_csv_to_floor: floor_s / c_s,
        ratio_pain002_to_peer: peer_s.map(|s| s / p_s),
        ratio_csv_to_peer: peer_s.map(|s| s / c_s),
        pain001_write_seconds: w_s,
        measures,
    })
}
