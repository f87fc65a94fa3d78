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
        .args([
            format!("http://{addr}"),
            shots.to_string_lossy().into_owned(),
            PASSWORD.to_string(),
            "PO0000000003".to_string(),
            UPLOAD_PAYOUT.to_string(),
            UPLOAD_MESSAGE.to_string(),
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
    ] {
        let png = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            png.display()
        );
    }
}
