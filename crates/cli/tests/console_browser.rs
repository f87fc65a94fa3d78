//! The operator console, black-box in a real headless browser: `disburse serve` on a loopback
//! port, Debian's chromium driven by Python playwright (`console_browser.py`, the scenario).
//!
//! Needs `/usr/bin/chromium` and a Python with playwright: `target/console-venv/bin/python` (what
//! `.ci/run` installs) or `DISBURSE_BROWSER_PYTHON`. Without them the test says so and passes;
//! with `DISBURSE_REQUIRE_BROWSER=1` (CI) it fails instead. Screenshots of every page are written
//! to `target/console-screenshots/` on each run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "correct horse battery staple";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Python that can import playwright, or why there is none.
fn browser_python() -> Result<PathBuf, String> {
    if !Path::new(CHROMIUM).exists() {
        return Err(format!(
            "{CHROMIUM} is not installed (apt-get install chromium)"
        ));
    }
    let python = std::env::var_os("DISBURSE_BROWSER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/console-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import playwright (python3 -m venv target/console-venv && target/console-venv/bin/pip install playwright)",
            python.display()
        ))
    }
}

fn disburse(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_disburse"));
    c.current_dir(dir)
        .env("DISBURSE_DB", "console.db")
        .env_remove("DISBURSE_KEY_FILE")
        .env_remove("DISBURSE_ACCOUNT_KEY")
        .env_remove("DISBURSE_OPERATOR")
        .env_remove("DISBURSE_CONFIG");
    c
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = disburse(dir).args(args).output().expect("run disburse");
    assert!(
        out.status.success(),
        "disburse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_password(dir: &Path, name: &str) {
    let mut child = disburse(dir)
        .args(["operator", "password", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run disburse");
    writeln!(child.stdin.take().expect("stdin"), "{PASSWORD}").expect("write password");
    assert!(child.wait().expect("wait").success(), "password for {name}");
}

/// Situations 1 and 2 of the walkthrough, up to the correction the browser plays.
fn seed(dir: &Path) {
    let examples = workspace().join("examples/walkthrough");
    let example = |f: &str| examples.join(f).to_string_lossy().into_owned();
    run(dir, &["init"]);
    run(
        dir,
        &[
            "--operator",
            "ada",
            "operator",
            "add",
            "ada",
            "--role",
            "admin",
        ],
    );
    for (name, role) in [
        ("olga", "operator"),
        ("bert", "approver"),
        ("vera", "viewer"),
    ] {
        run(
            dir,
            &["--operator", "ada", "operator", "add", name, "--role", role],
        );
    }
    for name in ["ada", "olga", "bert", "vera"] {
        set_password(dir, name);
    }
    run(dir, &["merchant", "add", "acme", "--name", "Acme GmbH"]);
    run(
        dir,
        &[
            "merchant",
            "account",
            "set",
            "acme",
            "--holder",
            "Acme GmbH",
            "--iban",
            "DE89370400440532013000",
        ],
    );
    run(dir, &["fund", "acme", "1100.00", "EUR"]);
    // An order that waits for an account fix.
    run(dir, &["withdraw", "acme", "W1", "100.00", "EUR"]);
    run(dir, &["payout", "create", "W1"]);
    run(dir, &["batch", "create", "--channel", "sepa-file"]);
    run(
        dir,
        &["results", "import", &example("1-pain002-rejected-AC04.xml")],
    );
    run(
        dir,
        &[
            "merchant",
            "account",
            "set",
            "acme",
            "--holder",
            "Acme GmbH",
            "--iban",
            "DE02120300000000202051",
        ],
    );
    run(dir, &["batch", "create", "--channel", "sepa-file"]);
    run(dir, &["results", "import", &example("1-camt054-paid.xml")]);
    // Situation 2: marked failed by mistake; the bank's statement says paid (a conflict).
    run(dir, &["withdraw", "acme", "W2", "200.00", "EUR"]);
    run(dir, &["payout", "create", "W2", "--channel", "sandbox-api"]);
    run(
        dir,
        &[
            "payout",
            "result",
            "PO0000000003",
            "rejected",
            "--reason",
            "AC01",
            "--evidence",
            "phone call",
        ],
    );
    run(dir, &["results", "import", &example("2-camt054-paid.xml")]);
    // A batch whose result file the browser uploads, previews and applies (another merchant:
    // acme's account waits for a fix after situation 2's AC01).
    run(dir, &["merchant", "add", "beta", "--name", "Beta GmbH"]);
    run(
        dir,
        &[
            "merchant",
            "account",
            "set",
            "beta",
            "--holder",
            "Beta GmbH",
            "--iban",
            "DE89370400440532013000",
        ],
    );
    run(dir, &["fund", "beta", "500.00", "EUR"]);
    run(dir, &["withdraw", "beta", "W3", "100.00", "EUR"]);
    run(dir, &["payout", "create", "W3"]);
    run(dir, &["batch", "create", "--channel", "sepa-file"]);
}

/// Situations 1, 3 and 4 of DESIGN §1, each with a merchant of its own, up to where a person
/// takes over, and a statement of the SEPA bank's account for the reconciliation page. What the
/// bank does later (batch files, answers) the scenario does through the CLI and uploads.
/// Returns the payout that is past its deadline (situation 3).
fn seed_situations(dir: &Path) -> String {
    for m in ["gamma", "delta", "epsilon"] {
        run(dir, &["merchant", "add", m, "--name", &format!("{m} Ltd")]);
        run(
            dir,
            &[
                "merchant",
                "account",
                "set",
                m,
                "--holder",
                &format!("{m} Ltd"),
                "--iban",
                "DE89370400440532013000",
            ],
        );
        run(dir, &["fund", m, "1000.00", "EUR"]);
    }
    // Situation 3: sent seven days ago to a bank that promises five; the sweep (now) escalates it.
    let sent = (chrono::Utc::now() - chrono::Duration::days(7)).to_rfc3339();
    run(
        dir,
        &["--as-of", &sent, "withdraw", "delta", "D3", "300.00", "EUR"],
    );
    let payout: serde_json::Value = serde_json::from_str(&run(
        dir,
        &[
            "--json",
            "--as-of",
            &sent,
            "payout",
            "create",
            "D3",
            "--channel",
            "sandbox-api",
        ],
    ))
    .expect("payout json");
    let expired = payout["payout_no"].as_str().expect("payout_no").to_string();
    run(dir, &["sweep"]);
    // The SEPA bank's statement: the payout of batch 2 (matched), the upload's payout, still
    // waiting (suggested, for a person), a fee, and a debit nobody ordered.
    let entry = |amount: &str, reference: &str, e2e: Option<&str>, fee: bool| {
        let (fmly, sub) = if fee {
            ("CCRD", "CHRG")
        } else {
            ("ICDT", "ESCT")
        };
        let details = e2e.map(|id| format!(
            "<NtryDtls><TxDtls><Refs><EndToEndId>{id}</EndToEndId></Refs><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls></NtryDtls>"
        )).unwrap_or_default();
        format!(
            "<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <BookgDt><Dt>2026-11-04</Dt></BookgDt><ValDt><Dt>2026-11-04</Dt></ValDt><AcctSvcrRef>{reference}</AcctSvcrRef>\
             <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{fmly}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>{details}</Ntry>\n"
        )
    };
    let bal = |code: &str, amount: &str| {
        format!(
            "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-04</Dt></Dt></Bal>"
        )
    };
    let statement = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-11-04T20:00:00</CreDtTm></GrpHdr>\n<Stmt><Id>S1</Id><ElctrncSeqNb>1</ElctrncSeqNb>\
         <FrToDt><FrDtTm>2026-11-04T00:00:00</FrDtTm><ToDtTm>2026-11-04T23:59:59</ToDtTm></FrToDt>\
         <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n{}{}\n{}{}{}{}</Stmt></BkToCstmrStmt></Document>\n",
        bal("OPBD", STATEMENT_OPENING),
        bal("CLBD", STATEMENT_CLOSING),
        entry("100.00", "BOOK-PO0000000002", Some("PO0000000002"), false),
        entry("100.00", "BOOK-4", Some(UPLOAD_PAYOUT), false),
        entry(STATEMENT_FEE, "FEE-1", None, true),
        entry(STATEMENT_UNEXPLAINED, "UNKNOWN-1", None, false),
    );
    std::fs::write(dir.join("statement-1.xml"), statement).expect("write statement");
    run(
        dir,
        &[
            "statements",
            "import",
            "statement-1.xml",
            "--channel",
            "sepa-file",
        ],
    );
    expired
}

/// The statement's balances and the amounts the reconciliation page must show from it.
const STATEMENT_OPENING: &str = "1000.00";
const STATEMENT_CLOSING: &str = "790.50";
const STATEMENT_FEE: &str = "2.50";
const STATEMENT_UNEXPLAINED: &str = "7.00";

/// The payout and message of the batch the browser answers with an uploaded result file.
const UPLOAD_PAYOUT: &str = "PO0000000004";
const UPLOAD_MESSAGE: &str = "DSB-sepa-file-00000003";

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("address")
}

/// Waits until `serve` answers `/healthz` on its loopback port.
fn wait_ready(addr: SocketAddr, serve: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = serve.try_wait().expect("serve status") {
            panic!("disburse serve exited early: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("disburse serve did not answer on {addr} within 30 s");
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn console_in_a_real_browser() {
    let python = match browser_python() {
        Ok(p) => p,
        Err(why) => {
            if std::env::var("DISBURSE_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("DISBURSE_REQUIRE_BROWSER=1 but no browser: {why}");
            }
            eprintln!("skipped: the console browser test needs a browser: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    seed(dir.path());
    let expired = seed_situations(dir.path());
    let addr = free_port();
    let serve = disburse(dir.path())
        .args(["serve", "--api-only", "--listen", &addr.to_string()])
        .env("DISBURSE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start disburse serve");
    let mut serve = Serving(serve);
    wait_ready(addr, &mut serve.0);
    let shots = workspace().join("target/console-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py");
    let out = Command::new(python)
        .arg(script)
        // The bank's side of the situations (batch files out, the clock) is played with the CLI.
        .env("DISBURSE_BIN", env!("CARGO_BIN_EXE_disburse"))
        .env("DISBURSE_DIR", dir.path())
        .args([
            format!("http://{addr}"),
            shots.to_string_lossy().into_owned(),
            PASSWORD.to_string(),
            "PO0000000003".to_string(),
            UPLOAD_PAYOUT.to_string(),
            UPLOAD_MESSAGE.to_string(),
            expired,
            STATEMENT_FEE.to_string(),
            STATEMENT_UNEXPLAINED.to_string(),
        ])
        .output()
        .expect("run the browser scenario");
    drop(serve);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser scenario failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("console browser scenario OK"), "{stdout}");
    for page in [
        "login",
        "overview",
        "batches",
        "upload-preview",
        "batches-imported",
        "merchant",
        "audit-verified",
        "ledger",
        "discrepancies",
        "exceptions",
        "order-before",
        "corrections-maker",
        "refused-csrf",
        "refused-viewer-propose",
        "corrections-checker-zh",
        "order-after-zh",
        "s1-upload-rejected",
        "s1-merchant-fixed",
        "s1-order-both-payouts",
        "s3-expired",
        "s3-checker-approves",
        "s3-late-conflict",
        "s4-discrepancy-open",
        "s4-write-off-proposed",
        "s4-settled",
        "reconciliation",
        "reconciliation-confirmed",
    ] {
        let png = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            png.display()
        );
    }
}
