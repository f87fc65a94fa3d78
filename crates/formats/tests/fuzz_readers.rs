//! Issue #9 item 16: the bank file readers fuzzed on stable Rust, with no extra tooling.
//!
//! A small mutation loop: start from the real samples (`bankfiles/samples`: pain.002, camt.053,
//! camt.054) and the CSV result files of both profiles, mutate them (bit flips, interesting
//! bytes and XML/CSV tokens, deleted, duplicated, spliced and truncated ranges), and feed each
//! input to every reader. For every input, each reader must
//! - not panic,
//! - not loop: it ends within a bounded number of items and a bounded time,
//! - name a line in every error, within the input (1 ..= lines + 1).
//!
//! `cargo test` runs a short, fixed-seed round (same inputs every run). CI runs a longer one with
//! a fresh seed: `DISBURSE_FUZZ_SECONDS=90 cargo test -p disburse-formats --test fuzz_readers`;
//! `DISBURSE_FUZZ_SEED=N` replays a run. A failing input is written to
//! `target/fuzz-failures/` and its file named in the panic message, so it can become a
//! regression test.

use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use disburse_formats::{
    read_camt053, read_camt054, read_csv_results, read_csv_statement, read_pain002,
    read_xml_results, CsvProfile, CsvStatementProfile, ReadError,
};

/// The XML samples the XML readers start from.
const XML_SAMPLES: &[&str] = &[
    "pain002-v03ch02-postfinance-rejected-AC01-NARR.xml",
    "pain002-v03ch02-postfinance-rejected-AM10.xml",
    "pain002-v10-de-vop-match-RCVC.xml",
    "pain002-v10-de-vop-name-mismatch-RVNM.xml",
    "camt053-v02-fi-fkl-statement.xml",
    "camt053-v04-ch-statement-with-returned-credit-transfers.xml",
    "camt053-v08-viafintech-example.xml",
    "camt054-v02-fi-fkl-credit-notification-with-returns-AC01.xml",
    "camt054-v04-postfinance-credit-transfer-return-AC01.xml",
    "camt054-v04-postfinance-return-AC01-2019.xml",
    "camt054-v08-genkgo-example.xml",
];

/// Tokens that make parsers take their rarer paths.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x1F600;",
    b"&unknown;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
    b"\"",
    b"'",
    b",",
    b";",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\xC3",
    b"\xFF",
    b"99999999999999999999999",
    b"-0.00",
    b"1e5",
    b"0.001",
    b"EUR",
    b"XXX",
    b"2026-02-30",
    b"<Amt Ccy=\"EUR\">",
    b"</Amt>",
    b"<TxSts>",
    b"<Sts>",
    b"xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.08\"",
];

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [b'<', b'>', b'&', b'"', b'\n', 0, 0xFF, b',', b'/'][rng.below(9)];
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                input.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(256)).min(len);
                let copy = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(512)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                // Lines repeated: a long file of one record.
                if let Some(nl) = input.iter().position(|b| *b == b'\n') {
                    let line = input[..=nl].to_vec();
                    for _ in 0..rng.below(20) {
                        input.splice(0..0, line.iter().copied());
                    }
                }
            }
        }
    }
    // Keep inputs small enough for many runs per second.
    input.truncate(256 * 1024);
}

/// Runs one reader over one input; returns what is wrong, if anything.
fn check_reader(
    name: &str,
    input: &[u8],
    items: impl Iterator<Item = Result<impl Sized, ReadError>>,
) -> Option<String> {
    let lines = input.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    // A record takes at least a few bytes; more items than bytes means the reader is stuck.
    let max_items = input.len() + 16;
    let started = Instant::now();
    for (n, item) in items.enumerate() {
        if n > max_items {
            return Some(format!("{name}: more than {max_items} items: it loops"));
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Some(format!("{name}: still reading after 5 s: it loops"));
        }
        if let Err(e) = item {
            let line = e.line();
            // Some files have one line ending in '\r' only, or none: allow one past the count.
            if line == 0 || line > lines + 1 {
                return Some(format!(
                    "{name}: error names line {line} of a {lines}-line input: {e}"
                ));
            }
        }
    }
    None
}

struct Readers {
    english: CsvProfile,
    chinese: CsvProfile,
    english_statement: CsvStatementProfile,
    myanmar_statement: CsvStatementProfile,
}

impl Readers {
    fn new() -> Readers {
        Readers {
            english: CsvProfile::from_toml(include_str!("../profiles/englishbank.toml")).unwrap(),
            chinese: CsvProfile::from_toml(include_str!("../profiles/chinabank.toml")).unwrap(),
            english_statement: CsvStatementProfile::from_toml(include_str!(
                "../profiles/englishbank-statement.toml"
            ))
            .unwrap(),
            myanmar_statement: CsvStatementProfile::from_toml(include_str!(
                "../profiles/myanmarbank-statement.toml"
            ))
            .unwrap(),
        }
    }

    /// Every reader over one input; the first thing wrong, or a panic's message.
    fn check(&self, input: &[u8]) -> Option<String> {
        let run = || {
            let r = || BufReader::new(input);
            check_reader("read_xml_results", input, read_xml_results(r()))
                .or_else(|| check_reader("read_pain002", input, read_pain002(r())))
                .or_else(|| check_reader("read_camt054", input, read_camt054(r())))
                .or_else(|| check_reader("read_camt053", input, read_camt053(r())))
                .or_else(|| {
                    check_reader(
                        "read_csv_results(englishbank)",
                        input,
                        read_csv_results(&self.english, r()),
                    )
                })
                .or_else(|| {
                    check_reader(
                        "read_csv_results(chinabank)",
                        input,
                        read_csv_results(&self.chinese, r()),
                    )
                })
                .or_else(|| {
                    check_reader(
                        "read_csv_statement(englishbank-statement)",
                        input,
                        read_csv_statement(&self.english_statement, r()),
                    )
                })
                .or_else(|| {
                    check_reader(
                        "read_csv_statement(myanmarbank-statement)",
                        input,
                        read_csv_statement(&self.myanmar_statement, r()),
                    )
                })
                .or_else(|| {
                    let head = &input[..input.len().min(disburse_formats::DETECT_HEAD_LEN)];
                    match disburse_formats::detect(head) {
                        Err(e) if e.line == 0 => Some(format!("detect: error names line 0: {e}")),
                        _ => None,
                    }
                })
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(found) => found,
            Err(panic) => Some(format!(
                "panicked: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bankfiles/samples");
    let mut seeds: Vec<Vec<u8>> = XML_SAMPLES
        .iter()
        .map(|name| {
            let path = samples.join(name);
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    seeds.push(include_bytes!("../profiles/englishbank-results.csv").to_vec());
    seeds.push(include_bytes!("../profiles/chinabank-results.csv").to_vec());
    seeds.push(include_bytes!("../profiles/englishbank-statement.csv").to_vec());
    seeds.push(include_bytes!("../profiles/myanmarbank-statement.csv").to_vec());
    seeds
}

fn save_failure(input: &[u8], what: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
    std::fs::create_dir_all(&dir).ok();
    let path = dir.join(format!(
        "{}.bin",
        input
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b))
                .wrapping_mul(0x100_0000_01b3))
    ));
    std::fs::write(&path, input).ok();
    eprintln!("{what}\n  input saved to {}", path.display());
    path
}

#[test]
fn readers_never_panic_never_loop_and_errors_name_a_line() {
    let seconds: u64 = std::env::var("DISBURSE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let seed: u64 = std::env::var("DISBURSE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if seconds > 0 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        } else {
            0x5eed_0016
        });
    // Without a time budget: a fixed number of inputs, the same every run.
    let budget = Duration::from_secs(seconds);
    let fixed_runs = 400usize;
    eprintln!("fuzz_readers: seed {seed}, {seconds} s (0: {fixed_runs} inputs)");
    // A panic is caught and reported with its input; keep the default hook from printing each.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let seeds = seeds();
    let readers = Readers::new();
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut failures = Vec::new();
    // The seeds themselves first.
    for s in &seeds {
        if let Some(what) = readers.check(s) {
            failures.push(format!("{what} ({})", save_failure(s, &what).display()));
        }
    }
    let mut runs = 0usize;
    while failures.len() < 5
        && if seconds > 0 {
            started.elapsed() < budget
        } else {
            runs < fixed_runs
        }
    {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        if let Some(what) = readers.check(&input) {
            failures.push(format!(
                "{what} ({})",
                save_failure(&input, &what).display()
            ));
        }
        runs += 1;
    }
    std::panic::set_hook(hook);
    eprintln!(
        "fuzz_readers: {runs} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failing input(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_harness_catches_a_loop_a_lineless_error_and_a_panic() {
    let input = b"a\nb\n";
    let endless = std::iter::repeat_with(|| Ok::<(), ReadError>(()));
    assert!(check_reader("endless", input, endless)
        .unwrap()
        .contains("loops"));
    let lineless = std::iter::once(Err::<(), ReadError>(ReadError::File(
        disburse_formats::FormatError::new(0, disburse_formats::FormatErrorKind::Empty),
    )));
    assert!(check_reader("lineless", input, lineless)
        .unwrap()
        .contains("line 0"));
    let beyond = std::iter::once(Err::<(), ReadError>(ReadError::File(
        disburse_formats::FormatError::new(9, disburse_formats::FormatErrorKind::Empty),
    )));
    assert!(check_reader("beyond", input, beyond).is_some());
    let panicking = std::panic::catch_unwind(|| {
        check_reader(
            "panicking",
            input,
            std::iter::from_fn(|| -> Option<Result<(), ReadError>> { panic!("boom") }),
        )
    });
    assert!(
        panicking.is_err(),
        "a panic reaches Readers::check's catch_unwind"
    );
}
