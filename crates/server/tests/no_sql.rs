//! An invariant as an absence: only the store writes SQL. No source file of the server or the
//! CLI names `sqlx::` or holds an SQL string literal (a statement or a WHERE/ORDER BY fragment).
//!
//! `bench_floor.rs` is excepted by design: it is the independent floor the benchmark compares
//! Disburse's write path with, so it must write its rows without our store.

use std::path::{Path, PathBuf};

/// Files allowed to hold SQL, with why. Anything not listed fails the test.
const EXCEPTED: &[(&str, &str)] = &[(
    "cli/src/bench_floor.rs",
    "the independent floor: the same rows by direct prepared statements, not our store",
)];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of Rust source text (comments skipped; escapes left as written).
fn string_literals(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) {
            // A raw string r"…" or r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            let start = j;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            out.push(chars[start..j.min(chars.len())].iter().collect());
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            let mut s = String::new();
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    s.push(chars[j]);
                    j += 1;
                }
                if j < chars.len() {
                    s.push(chars[j]);
                }
                j += 1;
            }
            out.push(s);
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('"', '\'', '\n') is skipped whole; a lifetime is one quote.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a literal reads as SQL: a statement, or a fragment of one.
fn is_sql(literal: &str) -> bool {
    let s = literal.trim_start();
    (s.contains("SELECT ") && s.contains(" FROM "))
        || s.contains("INSERT INTO ")
        || s.contains("DELETE FROM ")
        || (s.contains("UPDATE ") && s.contains(" SET "))
        || s.starts_with("WHERE ")
        || s.starts_with("ORDER BY ")
        || s.contains(" = $1")
        || s.starts_with("PRAGMA ")
        || s.starts_with("CREATE ")
        || s.starts_with("DROP ")
}

#[test]
fn only_the_store_writes_sql() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut seen_excepted = Vec::new();
    for krate in ["server", "cli"] {
        let mut files = Vec::new();
        sources(&crates.join(krate).join("src"), &mut files);
        assert!(!files.is_empty(), "no sources under {krate}/src");
        for file in files {
            let rel = file
                .strip_prefix(&crates)
                .expect("under crates/")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&file).expect("readable source");
            let mut hits: Vec<String> = Vec::new();
            if text.contains("sqlx::") {
                hits.push("names sqlx::".into());
            }
            for literal in string_literals(&text) {
                if is_sql(&literal) {
                    hits.push(format!("SQL literal {literal:?}"));
                }
            }
            if EXCEPTED.iter().any(|(f, _)| *f == rel) {
                seen_excepted.push(rel);
                continue;
            }
            for hit in hits {
                found.push(format!("{rel}: {hit}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside the store (move it into an intention-named store function):\n{}",
        found.join("\n")
    );
    for (file, why) in EXCEPTED {
        assert!(
            seen_excepted.iter().any(|f| f == file),
            "{file} is excepted ({why}) but no longer exists: drop it from the list"
        );
    }
}

#[test]
fn the_detector_sees_sql() {
    let text = r##"
        let a = sqlx_free("SELECT a FROM t WHERE x = $1");
        // "DELETE FROM t" in a comment is not code
        let b = "WHERE merchant_id = $1 ORDER BY id";
        let c = r#"UPDATE t SET a = 1"#;
        let d = '"'; let e = "plain text, ORDER of BY";
    "##;
    let sql: Vec<String> = string_literals(text)
        .into_iter()
        .filter(|l| is_sql(l))
        .collect();
    assert_eq!(
        sql,
        [
            "SELECT a FROM t WHERE x = $1",
            "WHERE merchant_id = $1 ORDER BY id",
            "UPDATE t SET a = 1"
        ]
    );
}
