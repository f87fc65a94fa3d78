//! Runs the README's walkthrough exactly as written, and checks what each situation must leave.

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../../README.md");

/// The walkthrough's command lines: (arguments after `disburse`, expected to be refused).
fn walkthrough_lines() -> Vec<(Vec<String>, bool)> {
    let start = README
        .find("<!-- walkthrough:start -->")
        .expect("README has the walkthrough");
    let end = README
        .find("<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    let mut lines = Vec::new();
    for line in README[start..end].lines() {
        let Some(rest) = line.trim().strip_prefix("disburse ") else {
            continue;
        };
        let (command, comment) = match rest.split_once("  #") {
            Some((c, comment)) => (c.trim(), comment),
            None => (rest.trim(), ""),
        };
        let refused = comment.trim_start().starts_with("refused");
        lines.push((shell_words(command), refused));
    }
    lines
}

/// Splits a command line the way sh does for the quoting the README uses ("...").
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(current);
    }
    words
}

fn disburse(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_disburse"))
        .current_dir(dir)
        .env("DISBURSE_DB", "walkthrough.db")
        .env_remove("DISBURSE_KEY_FILE")
        .env_remove("DISBURSE_ACCOUNT_KEY")
        .env_remove("DISBURSE_OPERATOR")
        .env_remove("DISBURSE_CONFIG")
        .args(args)
        .output()
        .expect("run disburse")
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = disburse(dir, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn the_readme_walkthrough_plays_every_situation() {
    let dir = disburse_store::testing::temp_dir();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    std::os::unix::fs::symlink(examples, dir.join("examples")).unwrap();
    let lines = walkthrough_lines();
    assert!(
        lines.len() > 30,
        "the walkthrough was found: {} lines",
        lines.len()
    );
    for (args, refused) in &lines {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = disburse(&dir, &args);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            !out.status.success(),
            *refused,
            "disburse {args:?}:\n{said}"
        );
    }

    // 1: one order, two payouts, the failed one kept.
    let w1 = json(&dir, &["order", "show", "W1"]);
    assert_eq!(w1["state"], "paid");
    let states: Vec<(&str, &str)> = w1["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["payout_no"].as_str().unwrap(),
                p["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("PO0000000001", "failed"), ("PO0000000002", "succeeded")]
    );
    // 2: corrected by bert, proposed by olga.
    let w2 = json(&dir, &["order", "show", "W2"]);
    assert_eq!(w2["state"], "paid");
    let corrected = w2["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "payout.corrected.confirm_succeeded")
        .unwrap();
    assert_eq!(
        (
            corrected["detail"]["proposed_by"].as_str(),
            corrected["detail"]["approved_by"].as_str()
        ),
        (Some("olga"), Some("bert"))
    );
    // 3: paid late, one payout only.
    let w3 = json(&dir, &["order", "show", "W3"]);
    assert_eq!(
        (
            w3["state"].as_str(),
            w3["payouts"].as_array().unwrap().len()
        ),
        (Some("paid"), 1)
    );
    assert!(w3["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "payout.succeeded_late"));
    // 4: both discrepancies settled, one by write-off, one by a top-up.
    let all = json(&dir, &["discrepancy", "list", "--all"]);
    let settled: Vec<(&str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["direction"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        settled,
        [
            ("overpaid", "settled"),
            ("underpaid", "settled"),
            ("underpaid", "settled")
        ]
    );
    // 4, the SEPA pair: the ACSC assumed 100.00, the camt.054 booked 99.50 and decided.
    let w6 = json(&dir, &["order", "show", "W6"]);
    let first = &w6["payouts"][0];
    assert_eq!(
        (
            first["state"].as_str(),
            first["paid_amount"]["amount_minor"].as_i64()
        ),
        (Some("succeeded"), Some(9950)),
        "{w6}"
    );
    assert!(w6["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "payout.rebooked"));
    let third = &all.as_array().unwrap()[2];
    assert_eq!(third["amount"]["amount_minor"], 50, "{third}");
    // Its history reads as a person writes it.
    assert!(
        third["history"]
            .to_string()
            .contains("top-up now on channel sandbox-api by olga"),
        "{third}"
    );
    // The merchant heard "paid" once for W6; the top-up has a message of its own.
    let paid = w6["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["topic"] == "order.paid")
        .count();
    assert_eq!(paid, 1, "{w6}");
    assert!(json(&dir, &["discrepancy", "list"])
        .as_array()
        .unwrap()
        .is_empty());
    // Nothing is left for a person but the conflict the bank file raised in situation 2.
    let items = json(&dir, &["exceptions", "list"]);
    let kinds: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["conflict"], "{items}");
    std::fs::remove_dir_all(dir).ok();
}
