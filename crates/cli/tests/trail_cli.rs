//! Issue #9 items 11 and 15 through the binary: `batch list` / `batch export --unwritten` for a
//! batch whose file never reached the disk, `audit anchor` and `audit verify --anchor`.

use std::path::PathBuf;
use std::process::{Command, Output};

use disburse_store::testing::{TestBackend, TestDb};
use disburse_store::Db;

struct Cli {
    db: TestDb,
    dir: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_disburse"))
            .current_dir(&self.dir)
            .env_remove("DISBURSE_ACCOUNT_KEY")
            .env_remove("DISBURSE_CHAIN_KEY")
            .env_remove("DISBURSE_CONFIG")
            .args(["--db", &self.db.url, "--key-file"])
            .arg(self.dir.join("test.key"))
            .args(["--as-of", "2026-11-02T09:00:00Z", "--operator", "alice"])
            .args(args)
            .output()
            .expect("run disburse")
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

    async fn sql(&self, statement: &str) {
        let db = Db::open(&self.db.url).await.unwrap();
        db.execute_raw(statement).await.unwrap();
        db.close().await;
    }
}

async fn flow(backend: TestBackend) {
    let Some(db) = TestDb::fresh(backend, "trail_cli").await else {
        return;
    };
    let dir = match db.dir() {
        Some(d) => d.clone(),
        None => disburse_store::testing::temp_dir(),
    };
    let cli = Cli { db, dir };
    cli.ok(&["init"]);
    cli.ok(&["merchant", "add", "acme", "--name", "Acme GmbH"]);
    cli.ok(&[
        "merchant",
        "account",
        "set",
        "acme",
        "--holder",
        "Acme GmbH",
        "--iban",
        "DE89 3704 0044 0532 0130 00",
    ]);
    cli.ok(&["fund", "acme", "1000.00", "EUR"]);
    cli.ok(&["withdraw", "acme", "W1", "250.00", "EUR"]);
    cli.ok(&["payout", "create", "W1", "--channel", "sepa-file"]);

    // The file cannot be written (a file is where the directory should be): the batch is
    // committed, and everyone can see its file is missing.
    std::fs::write(cli.dir.join("blocked"), b"x").unwrap();
    let out = cli.run(&[
        "batch",
        "create",
        "--channel",
        "sepa-file",
        "--out",
        "blocked",
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("batch export"), "{said}");
    let list = cli.ok(&["batch", "list"]);
    assert!(list.contains("FILE NOT WRITTEN"), "{list}");
    let exceptions = cli.ok(&["exceptions", "list"]);
    assert!(
        exceptions.contains("batch_file_not_written"),
        "{exceptions}"
    );
    let exported = cli.ok(&["batch", "export", "--unwritten"]);
    assert!(exported.contains("written to"), "{exported}");
    assert!(!cli.ok(&["batch", "list"]).contains("FILE NOT WRITTEN"));
    // A copy elsewhere is byte for byte what the outbox holds.
    cli.ok(&["batch", "export", "1", "--out", "copy.xml"]);
    let outbox: Vec<_> = std::fs::read_dir(cli.dir.join("bank/sepa-file/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(
        std::fs::read(&outbox[0]).unwrap(),
        std::fs::read(cli.dir.join("copy.xml")).unwrap()
    );

    // Anchor, then cut the last event (a funding) with its rows and fix the head.
    cli.ok(&["fund", "acme", "5.00", "EUR"]);
    let anchored = cli.ok(&["audit", "anchor", "--out", "anchor.json"]);
    assert!(anchored.contains("anchor written"), "{anchored}");
    cli.ok(&["audit", "verify", "--anchor", "anchor.json"]);
    cli.sql("DELETE FROM journal_lines WHERE journal_id = (SELECT MAX(id) FROM journals)")
        .await;
    cli.sql("DELETE FROM journals WHERE id = (SELECT MAX(id) FROM journals)")
        .await;
    // A forger who knows the schema restates the balance rows from the remaining lines too.
    cli.sql(
        "UPDATE account_balances SET balance_minor = (SELECT COALESCE(SUM(l.amount_minor), 0) \
         FROM journal_lines l WHERE l.account = account_balances.account \
         AND l.currency = account_balances.currency)",
    )
    .await;
    cli.sql("DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")
        .await;
    cli.sql(
        "UPDATE audit_head SET seq = seq - 1, hash = (SELECT hash FROM audit_events \
         WHERE seq = (SELECT MAX(seq) FROM audit_events)) WHERE id = 1",
    )
    .await;
    cli.ok(&["audit", "verify"]);
    let verify = cli.run(&["audit", "verify", "--anchor", "anchor.json"]);
    assert_eq!(verify.status.code(), Some(1));
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("removed from its end"), "{said}");
    // An edited anchor is refused, naming the anchor.
    let text = std::fs::read_to_string(cli.dir.join("anchor.json")).unwrap();
    std::fs::write(
        cli.dir.join("edited.json"),
        text.replacen("\"seq\": ", "\"seq\": 1", 1),
    )
    .unwrap();
    let out = cli.run(&["audit", "verify", "--anchor", "edited.json"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("anchor") && said.contains("signature"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritten_batches_and_anchors_through_the_binary_sqlite() {
    flow(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritten_batches_and_anchors_through_the_binary_postgres() {
    flow(TestBackend::Postgres).await;
}
