//! The engine writes no SQL: every read and write it makes is an intention-named function of the
//! store (ARCHITECTURE.md, "no SQL outside store"). This test keeps that absence true: no string
//! literal in an engine source file holds a `WHERE`, `SELECT` or `ORDER BY` clause.

use std::path::{Path, PathBuf};

const SQL_WORDS: [&str; 3] = ["WHERE ", "SELECT ", "ORDER BY "];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("engine source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of a Rust source file (normal and raw), with the line each starts on.
/// Comments are skipped, so a doc comment may name SQL; char literals and lifetimes are told
/// apart well enough for our sources.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            // r"…", r#"…"#, …
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
            let start_line = line;
            let mut text = String::new();
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&ch) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        text.push(ch);
                        j += 1;
                    }
                }
            }
            out.push((start_line, text));
            i = j;
        } else if c == '"' {
            let start_line = line;
            let mut text = String::new();
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    // An escaped newline continues the literal without the line break and the
                    // next line's indentation, as the compiler reads it.
                    if chars.get(j + 1) == Some(&'\n') {
                        line += 1;
                        j += 2;
                        while j < chars.len() && chars[j].is_whitespace() {
                            if chars[j] == '\n' {
                                line += 1;
                            }
                            j += 1;
                        }
                        continue;
                    }
                    text.push(chars[j]);
                    j += 1;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                text.push(chars[j]);
                j += 1;
            }
            out.push((start_line, text));
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '"') is skipped whole; a lifetime ('a) is not a literal.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
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

#[test]
fn the_lexer_finds_literals_and_skips_comments() {
    let src = "// \"WHERE x\"\nlet a = 'x'; let b: &'static str = \"SELECT a FROM \\\n    t\";\n/* \"ORDER BY \" */ let c = r#\"q \"WHERE \"#; let d = '\"';";
    let found = string_literals(src);
    assert_eq!(
        found,
        vec![
            (2, "SELECT a FROM t".to_string()),
            (4, "q \"WHERE ".to_string())
        ]
    );
}

#[test]
fn no_engine_source_file_holds_sql() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "the engine's sources are found");
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("source file");
        for (line, literal) in string_literals(&text) {
            // Case-sensitive: prose ("select a channel") is not SQL.
            if SQL_WORDS.iter().any(|w| literal.contains(w)) {
                found.push(format!(
                    "{}:{line}: {literal:?}",
                    path.strip_prefix(&src).unwrap_or(&path).display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL in the engine (it belongs in a store function named for what it reads):\n{}",
        found.join("\n")
    );
}
