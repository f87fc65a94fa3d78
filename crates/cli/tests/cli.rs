//! The `disburse` binary as a newcomer uses it, on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;

struct Cli {
    db: TestDb,
    dir: PathBuf,
    key_file: PathBuf,
}

impl Cli {
    async fn new(backend: TestBackend, name: &str) -> Option<Cli> {
        let db = TestDb::fresh(backend, name).await?;
        let dir = match db.dir() {
            Some(d) => d.clone(),
            None => disburse_store::testing::temp_dir(),
        };
        let key_file = dir.join("test.key");
        Some(Cli { db, dir, key_file })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_disburse"))
            .current_dir(&self.dir)
            .env_remove("DISBURSE_ACCOUNT_KEY")
            .env_remove("DISBURSE_CONFIG")
            .args([
                "--db",
                &self.db.url,
                "--key-file",
                self.key_file.to_str().unwrap(),
            ])
            .args(["--as-of", "2026-11-02T09:00:00Z", "--operator", "alice"])
            .args(args)
            .output()
            .expect("run disburse")
    }

    /// The same command as another person (`--operator NAME`).
    fn run_as(&self, operator: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_disburse"))
            .current_dir(&self.dir)
            .env_remove("DISBURSE_ACCOUNT_KEY")
            .env_remove("DISBURSE_CONFIG")
            .args([
                "--db",
                &self.db.url,
                "--key-file",
                self.key_file.to_str().unwrap(),
            ])
            .args(["--as-of", "2026-11-02T09:00:00Z", "--operator", operator])
            .args(args)
            .output()
            .expect("run disburse")
    }

    /// `--json` output of a command that must succeed, as `operator`.
    fn json_as(&self, operator: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run_as(operator, &all);
        assert!(
            out.status.success(),
            "disburse {args:?} as {operator} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json output")
    }

    /// A command that must be refused for `operator`, saying `why` on one line.
    fn refused_as(&self, operator: &str, args: &[&str], why: &str) {
        let out = self.run_as(operator, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "disburse {args:?} as {operator} should fail"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(why), "{args:?} as {operator}: {stderr}");
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "disburse {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("json output")
    }

    /// Runs a command that must fail: non-zero exit, one line on stderr naming `field`.
    fn fails(&self, args: &[&str], field: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "disburse {args:?} should fail");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one-line error for {args:?}: {stderr}"
        );
        assert!(
            stderr.contains(field),
            "error for {args:?} should name {field:?}: {stderr}"
        );
    }

    async fn sql(&self, statement: &str) -> u64 {
        let db = Db::open(&self.db.url).await.unwrap();
        let n = db.execute_raw(statement).await.unwrap();
        db.close().await;
        n
    }

    async fn snapshot(&self) -> Vec<i64> {
        let db = Db::open(&self.db.url).await.unwrap();
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
            out.push(db.count(t).await.unwrap());
        }
        db.close().await;
        out
    }
}

fn key_is_private(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.trim().len(), 64, "a 256-bit key in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

async fn newcomer_flow(backend: TestBackend) {
    let Some(cli) = Cli::new(backend, "newcomer_flow").await else {
        return;
    };
    let init = cli.ok(&["init"]);
    assert!(init.contains("initialized"), "{init}");
    key_is_private(&cli.key_file);
    cli.ok(&["merchant", "add", "acme", "--name", "Acme GmbH"]);
    let set = cli.ok(&[
        "merchant",
        "account",
        "set",
        "acme",
        "--holder",
        "Acme GmbH",
        "--iban",
        "DE89 3704 0044 0532 0130 00",
    ]);
    assert!(
        set.contains("****3000") && !set.contains("0532013000"),
        "masked: {set}"
    );
    cli.ok(&["fund", "acme", "1000.00", "EUR"]);
    cli.ok(&["withdraw", "acme", "W1", "250.00", "EUR"]);
    let payout = cli.json(&["payout", "create", "W1", "--channel", "sandbox-api"]);
    let payout_no = payout["payout_no"].as_str().unwrap().to_string();
    cli.ok(&[
        "payout",
        "result",
        &payout_no,
        "paid",
        "--amount",
        "250.00",
        "--reference",
        "BANKREF1",
        "--evidence",
        "bank API answer",
    ]);

    let order = cli.json(&["order", "show", "W1"]);
    assert_eq!(order["state"], "paid");
    assert_eq!(order["amount"]["amount_minor"], 25000);
    assert_eq!(order["amount"]["currency"], "EUR");
    assert_eq!(order["payouts"].as_array().unwrap().len(), 1);
    assert_eq!(order["payouts"][0]["payout_no"], payout_no.as_str());
    assert!(order["journals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["balanced"] == true));
    let text = cli.ok(&["order", "show", "W1"]);
    assert!(
        text.contains("succeeded") && text.contains("payout_succeeded"),
        "{text}"
    );
    assert!(
        !cli.ok(&["merchant", "show", "acme", "--json"])
            .contains("0532013000"),
        "account masked"
    );

    let check = cli.run(&["ledger", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let verify = cli.run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // An UPDATE behind the system's back is found.
    assert_eq!(cli.sql("UPDATE payouts SET state = 'failed'").await, 1);
    let verify = cli.run(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        said.contains("payouts row") && said.contains("differs"),
        "{said}"
    );
    assert_eq!(cli.sql("UPDATE payouts SET state = 'succeeded'").await, 1);
    assert!(
        cli.run(&["audit", "verify"]).status.success(),
        "restoring the row restores the digest"
    );
    cli.sql("UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE id = 1")
        .await;
    assert_eq!(cli.run(&["audit", "verify"]).status.code(), Some(1));
    assert_eq!(
        cli.run(&["ledger", "check"]).status.code(),
        Some(1),
        "an unbalanced journal fails the ledger check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomer_flow_sqlite() {
    newcomer_flow(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomer_flow_postgres() {
    newcomer_flow(TestBackend::Postgres).await;
}

async fn bad_input(backend: TestBackend) {
    let Some(cli) = Cli::new(backend, "bad_input").await else {
        return;
    };
    cli.ok(&["init"]);
    cli.ok(&["merchant", "add", "acme", "--name", "Acme"]);
    cli.ok(&[
        "merchant",
        "account",
        "set",
        "acme",
        "--holder",
        "Acme",
        "--iban",
        "DE89370400440532013000",
    ]);
    cli.ok(&["fund", "acme", "1000.00", "EUR"]);
    cli.ok(&["withdraw", "acme", "W1", "250.00", "EUR"]);
    let before = cli.snapshot().await;
    let cases: &[(&[&str], &str)] = &[
        (&["fund", "acme", "100.255", "EUR"], "amount"),
        (&["fund", "acme", "1e3", "EUR"], "amount"),
        (&["fund", "acme", "1,000.00", "EUR"], "amount"),
        (&["fund", "acme", "-0", "EUR"], "amount"),
        (&["fund", "acme", "", "EUR"], "amount"),
        (&["fund", "acme", "１００", "EUR"], "amount"),
        (&["fund", "acme", "100", "XYZ"], "currency"),
        (&["fund", "nobody", "100", "EUR"], "merchant"),
        (&["withdraw", "acme", "W2", "12.345", "EUR"], "amount"),
        (&["withdraw", "acme", "W2", "10", "ABC"], "currency"),
        (&["withdraw", "ghost", "W2", "10", "EUR"], "merchant"),
        (&["withdraw", "acme", "W1", "300.00", "EUR"], "W1"),
        (&["withdraw", "acme", "W 2", "10", "EUR"], "order number"),
        (
            &["withdraw", "acme", "W2", "5000.00", "EUR"],
            "insufficient",
        ),
        (&["merchant", "add", "Bad Id", "--name", "x"], "merchant"),
        (&["merchant", "add", "acme", "--name", "again"], "acme"),
        (
            &[
                "merchant",
                "account",
                "set",
                "acme",
                "--holder",
                "Acme",
                "--iban",
                "DE89370400440532013001",
            ],
            "iban",
        ),
        (
            &[
                "merchant",
                "account",
                "set",
                "acme",
                "--holder",
                "Acme",
                "--iban",
                "DE8937040044053201300",
            ],
            "iban",
        ),
        (
            &[
                "merchant",
                "account",
                "set",
                "ghost",
                "--holder",
                "Acme",
                "--iban",
                "DE89370400440532013000",
            ],
            "merchant",
        ),
        (
            &[
                "merchant",
                "account",
                "set",
                "acme",
                "--holder",
                "",
                "--iban",
                "DE89370400440532013000",
            ],
            "holder",
        ),
        (&["merchant", "show", "ghost"], "merchant"),
        (&["payout", "create", "NOPE"], "order"),
        (
            &["payout", "create", "W1", "--channel", "pigeon"],
            "channel",
        ),
        (
            &[
                "payout",
                "result",
                "PO0000000099",
                "paid",
                "--amount",
                "1.00",
                "--evidence",
                "x",
            ],
            "payout",
        ),
        (&["order", "show", "NOPE"], "order"),
        (&["order", "cancel", "NOPE", "--reason", "x"], "order"),
    ];
    for (args, field) in cases {
        cli.fails(args, field);
        assert_eq!(cli.snapshot().await, before, "{args:?} wrote something");
    }
    // A time that is not RFC 3339 is refused by the argument parser, naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_disburse"))
        .current_dir(&cli.dir)
        .args([
            "--db",
            &cli.db.url,
            "--key-file",
            cli.key_file.to_str().unwrap(),
            "--as-of",
            "yesterday",
            "sweep",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let first = String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("--as-of") && first.contains("RFC 3339"),
        "{first}"
    );
    assert_eq!(cli.snapshot().await, before);
    // Results with bad money, against a real payout.
    let p = cli.json(&["payout", "create", "W1", "--channel", "sandbox-api"]);
    let no = p["payout_no"].as_str().unwrap().to_string();
    let before = cli.snapshot().await;
    cli.fails(
        &[
            "payout",
            "result",
            &no,
            "paid",
            "--amount",
            "250.001",
            "--evidence",
            "x",
        ],
        "amount",
    );
    cli.fails(
        &["payout", "result", &no, "paid", "--amount", "250.00"],
        "evidence",
    );
    cli.fails(
        &[
            "payout",
            "result",
            &no,
            "rejected",
            "--reason",
            "closed",
            "--evidence",
            "x",
        ],
        "reason",
    );
    assert_eq!(cli.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing_sqlite() {
    bad_input(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing_postgres() {
    bad_input(TestBackend::Postgres).await;
}

#[test]
fn demo_plays_the_situations_and_leaves_the_books_balanced_and_verified() {
    let dir = disburse_store::testing::temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_disburse"))
        .args(["demo", "--dir"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "1. rejected for a wrong or closed account, account fixed, paid again",
        "3. no answer within the deadline → expired and escalated",
        "4. paid a different amount",
        "5. banks differ",
        "waiting for a person",
        "money in transit",
        "zero, the books balance",
        "chain intact, every row matches",
        "API bank (api-bank, the sandbox bank's payment API",
        "the bank executed each at most 1 time(s)",
    ] {
        assert!(
            text.contains(needle),
            "demo summary lacks {needle:?}:\n{text}"
        );
    }
    // The demo writes its batch files as `batch create` does: the desk sees none missing.
    assert!(
        !text.contains("batch_file_not_written"),
        "the demo's batches must be recorded as written:\n{text}"
    );
    // Every situation actually happened: none of the counts is zero.
    assert!(
        !text.contains(": 0 order(s)")
            && !text.contains("0 overpaid, 0 underpaid")
            && !text.contains(" 0 of them found when a camt.054"),
        "{text}"
    );
    // The API bank's lost answers were resolved by asking, and our books moved what it moved.
    let api = text
        .lines()
        .skip_while(|l| !l.starts_with("API bank ("))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !api.contains(" 0 outcome(s) unknown") && !api.contains("by 0 status queries"),
        "{api}"
    );
    let books = api.split(" and moved ").nth(1).unwrap_or_default();
    let (bank, ours) = books
        .trim_end()
        .trim_end_matches(" EUR")
        .split_once(" EUR, our books ")
        .unwrap_or(("?", ""));
    assert_eq!(bank, ours, "{api}");
    // The day closes with each file bank's statement reconciled to the cent: batches booked as
    // one debit matched, the fee booked, the debit nobody ordered raised.
    assert!(
        text.contains("sepa-file: statement of")
            && text.contains("unexplained 0.00 EUR")
            && text.contains("unexplained 0.00 CNY")
            && text.contains("exception(s): unexplained_debit")
            && !text.contains("and 0 partial return(s)"),
        "{text}"
    );
    // The paper bank's CSV statement proves silent payouts presumed paid.
    let paper = text
        .split("mm-paper: CSV statement of")
        .nth(1)
        .unwrap_or_else(|| panic!("no paper statement: {text}"));
    let proven: u64 = paper
        .split("silent payouts presumed paid: ")
        .nth(1)
        .and_then(|rest| rest.split(" proven").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no paper statement line: {text}"));
    assert!(proven > 0, "{text}");
    // The batch files it sent are real: the pain.001s validate where xmllint is available.
    let outbox = dir.join("run/bank/sepa-file/outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    if Command::new("xmllint").arg("--version").output().is_ok() {
        let xsd = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bankfiles/xsd/pain.001.001.09.xsd"
        );
        for f in &files {
            let v = Command::new("xmllint")
                .args(["--noout", "--schema", xsd])
                .arg(f)
                .output()
                .unwrap();
            assert!(
                v.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&v.stderr)
            );
        }
    } else {
        eprintln!("xmllint not found: schema validation NOT run");
    }
    // The same demo again in the same directory is refused, not mixed into the old one.
    let again = Command::new(env!("CARGO_BIN_EXE_disburse"))
        .args(["demo", "--dir"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    std::fs::remove_dir_all(dir).ok();
}

/// `disburse exceptions list | head -1`: the reader goes away; the command ends quietly, as Unix
/// tools do, never with a panic about the closed pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_a_command_quietly() {
    let cli = Cli::new(TestBackend::Sqlite, "closed_pipe").await.unwrap();
    cli.ok(&["init"]);
    // Whatever command creates the books, the SQLite file is the owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cli.dir.join("disburse.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    cli.ok(&["merchant", "add", "acme", "--name", "Acme"]);
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_disburse"))
            .current_dir(&cli.dir)
            .args([
                "--db",
                &cli.db.url,
                "--key-file",
                cli.key_file.to_str().unwrap(),
            ])
            .args(["--as-of", "2026-11-02T09:00:00Z", "exceptions", "list"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.status.success(), "{:?} {stderr}", out.status);
    }
}

/// A statement in, the channel reconciled: text, JSON and an HTML page for an auditor, with no
/// account number in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_imported_and_the_channel_reconciled() {
    let cli = Cli::new(TestBackend::Sqlite, "statements_cli")
        .await
        .unwrap();
    cli.ok(&["init"]);
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bankfiles/samples/camt053-v02-fi-fkl-statement.xml"
    );
    let text = cli.ok(&["statements", "import", sample, "--channel", "sepa-file"]);
    assert!(text.contains("10 entries"), "{text}");
    assert!(text.contains("unexplained_debit"), "{text}");
    let again = cli.ok(&["statements", "import", sample, "--channel", "sepa-file"]);
    assert!(again.contains("already imported"), "{again}");
    let html = cli.dir.join("reconciliation.html");
    let report = cli.json(&[
        "reconcile",
        "--channel",
        "sepa-file",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(report["statements"].as_array().unwrap().len(), 1);
    assert_eq!(report["fees_minor"], 20000);
    assert_eq!(report["unmatched"].as_array().unwrap().len(), 3);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("Reconciliation of channel sepa-file"),
        "{page}"
    );
    assert!(
        !page.contains("FI7433010001222090"),
        "our account is never shown in clear"
    );
    assert!(!report.to_string().contains("FI7433010001222090"));
    // Each section a table an auditor reads: the three debits nobody ordered, the books against
    // the bank with what is left unexplained.
    let section = |id: &str| -> String {
        let start = page
            .find(&format!("<table id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no table {id}: {page}"));
        let end = page[start..].find("</table>").unwrap() + start;
        page[start..end].to_string()
    };
    assert_eq!(section("unmatched").matches("<tr>").count(), 1 + 3);
    assert!(section("books-vs-bank").contains("Unexplained"));
    assert!(section("statements").contains("camt053-v02-fi-fkl-statement.xml"));

    // A CSV statement, by the channel's statement profile.
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/formats/profiles/englishbank-statement.csv"
    );
    let text = cli.ok(&["statements", "import", csv, "--channel", "eb-csv"]);
    assert!(text.contains("5 entries"), "{text}");
    assert!(text.contains("fee: 1"), "{text}");
    assert!(!text.contains("GB33BUKB20201555555555"), "{text}");
}

/// The queue is worked from the CLI as from the console: claim, comment, release, handle, each
/// attributed to `--operator`, and another person's claim refused.
async fn queue_work(backend: TestBackend) {
    let Some(cli) = Cli::new(backend, "queue_work").await else {
        return;
    };
    cli.ok(&["init"]);
    for (name, role) in [
        ("alice", "admin"),
        ("olga", "operator"),
        ("bert", "approver"),
        ("vera", "viewer"),
    ] {
        cli.ok(&["operator", "add", name, "--role", role]);
    }
    cli.ok(&["merchant", "add", "acme", "--name", "Acme GmbH"]);
    cli.ok(&[
        "merchant",
        "account",
        "set",
        "acme",
        "--holder",
        "Acme GmbH",
        "--iban",
        "DE89370400440532013000",
    ]);
    cli.ok(&["fund", "acme", "100.00", "EUR"]);
    cli.ok(&["withdraw", "acme", "W1", "50.00", "EUR"]);
    let p = cli.json(&["payout", "create", "W1", "--channel", "sandbox-api"]);
    let payout_no = p["payout_no"].as_str().unwrap().to_string();
    cli.ok(&[
        "payout",
        "result",
        &payout_no,
        "rejected",
        "--reason",
        "AC04",
        "--evidence",
        "call",
    ]);
    let items = cli.json(&["exceptions", "list"]);
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["order_no"] == "W1")
        .expect("W1 in the queue")["id"]
        .as_str()
        .unwrap()
        .to_string();

    cli.refused_as(
        "vera",
        &["exceptions", "claim", &item],
        "only operators and above",
    );
    let claimed = cli.json_as("olga", &["exceptions", "claim", &item]);
    assert_eq!(claimed["claimed_by"], "olga");
    assert_eq!(claimed["item_id"], item.as_str());
    // Another person's claim: refused, naming who has it.
    cli.refused_as("bert", &["exceptions", "claim", &item], "claimed by olga");
    cli.refused_as("bert", &["exceptions", "release", &item], "claimed by olga");
    cli.refused_as(
        "bert",
        &["exceptions", "handle", &item, "--note", "done"],
        "claimed by olga",
    );
    let comment = cli.json_as(
        "bert",
        &[
            "exceptions",
            "comment",
            &item,
            "--note",
            "the bank says the account is closed",
        ],
    );
    assert_eq!(comment["kind"], "comment");
    assert_eq!(comment["written_by"], "bert");
    cli.refused_as(
        "bert",
        &["exceptions", "comment", &item, "--note", " "],
        "note",
    );
    let text =
        String::from_utf8(cli.run_as("olga", &["exceptions", "release", &item]).stdout).unwrap();
    assert!(text.contains("released by olga"), "{text}");
    let handled = cli.json_as(
        "bert",
        &[
            "exceptions",
            "handle",
            &item,
            "--note",
            "asked the merchant for a new account",
        ],
    );
    assert_eq!(handled["kind"], "handled");
    // `show` says what people did: no claim left, the comment and the handled note.
    let shown = cli.json(&["exceptions", "show", &item]);
    assert_eq!(shown["id"], item.as_str());
    assert!(shown["work"]["claimed"].is_null(), "{shown}");
    let notes = shown["work"]["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{shown}");
    assert_eq!(notes[1]["kind"], "handled");
    assert_eq!(notes[1]["written_by"], "bert");
    cli.refused_as("olga", &["exceptions", "claim", "E999999"], "E999999");
    assert!(cli.run(&["audit", "verify"]).status.success());
}

#[tokio::test]
async fn queue_work_sqlite() {
    queue_work(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn queue_work_postgres() {
    queue_work(TestBackend::Postgres).await;
}

/// The service runs on the wall clock: an --as-of it would ignore is refused, never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_as_of_it_would_ignore() {
    let cli = Cli::new(TestBackend::Sqlite, "serve_as_of").await.unwrap();
    // The harness passes --as-of to every command it runs.
    cli.fails(&["serve", "--listen", "127.0.0.1:0"], "as-of");
}
