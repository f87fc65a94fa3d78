//! The files: valid against the official schemas, and read back by `disburse_formats` as what
//! the plan says.

mod common;

use std::io::BufReader;

use common::*;
use disburse_core::{Currency, Money};
use disburse_formats::results::{CamtVersion, Pain002Version};
use disburse_formats::{
    detect, read_camt054, read_pain002, BankOutcome, Detected, ResultLine, ResultRecord,
};
use disburse_sandbox::{
    camt054_file_name, file_created_at, pain002_file_name, plan, write_camt054, write_pain002,
    Answer, BankPlan, OutcomeMix, PlannedAnswer, SandboxConfig, SandboxError,
};

const PAIN002_XSD: &str = "pain.002.001.10.xsd";
const CAMT054_XSD: &str = "camt.054.001.08.xsd";

fn demo_plan() -> BankPlan {
    plan(
        &SandboxConfig::demo(2025),
        transfers(40, Currency::Eur),
        "DEMO-2025-03-03",
        submitted(),
    )
}

/// A plan over EUR, JPY (no decimals) and KWD (three decimals) at once.
fn currencies_plan() -> BankPlan {
    let mut batch = transfers(12, Currency::Eur);
    batch.extend(
        transfers(12, Currency::Jpy)
            .into_iter()
            .map(|(id, m)| (format!("{id}J"), m)),
    );
    batch.extend(
        transfers(12, Currency::Kwd)
            .into_iter()
            .map(|(id, m)| (format!("{id}K"), m)),
    );
    plan(&SandboxConfig::demo(5), batch, "MULTI", submitted())
}

fn schema_of(name: &str) -> &'static str {
    if name.starts_with("pain002-") {
        PAIN002_XSD
    } else {
        assert!(name.starts_with("camt054-"), "{name}");
        CAMT054_XSD
    }
}

#[test]
fn every_file_validates_against_the_official_schema() {
    let mut checked = 0;
    for p in [demo_plan(), currencies_plan()] {
        for (_, name, bytes) in all_files(&p) {
            match xmllint(&bytes, schema_of(&name)) {
                None => return,
                Some(result) => result.unwrap_or_else(|e| {
                    panic!(
                        "{name} does not validate:\n{e}\n{}",
                        String::from_utf8_lossy(&bytes)
                    )
                }),
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");

    // Files without a single answer are valid too.
    let created = file_created_at(submitted());
    let mut empty = Vec::new();
    assert_eq!(
        write_pain002(&[], "B-1", created, 0, &mut empty).unwrap(),
        0
    );
    xmllint(&empty, PAIN002_XSD).unwrap().unwrap();
    let mut empty = Vec::new();
    assert_eq!(write_camt054(&[], ACCOUNT, created, &mut empty).unwrap(), 0);
    xmllint(&empty, CAMT054_XSD).unwrap().unwrap();

    // The check is real: what the schemas forbid is refused.
    let files = all_files(&demo_plan());
    let (_, _, pain002) = files
        .iter()
        .find(|(_, n, _)| n.starts_with("pain002"))
        .unwrap();
    let broken = String::from_utf8(pain002.clone())
        .unwrap()
        .replacen("<TxSts>", "<TxSts>X", 1);
    assert!(xmllint(broken.as_bytes(), PAIN002_XSD).unwrap().is_err());
    let (_, _, camt) = files
        .iter()
        .find(|(_, n, _)| n.starts_with("camt054"))
        .unwrap();
    let broken = String::from_utf8(camt.clone())
        .unwrap()
        .replacen("<Cd>BOOK</Cd>", "", 1);
    assert!(xmllint(broken.as_bytes(), CAMT054_XSD).unwrap().is_err());
}

/// What the formats crate should read for this answer: end-to-end id, outcome, amount, reason
/// code and bank reference.
type Expected = (
    String,
    BankOutcome,
    Option<Money>,
    Option<String>,
    Option<String>,
);

fn expected_line(a: &PlannedAnswer) -> Expected {
    let outcome = match &a.answer {
        Answer::Accepted => BankOutcome::Accepted,
        Answer::Paid { .. } => BankOutcome::Paid,
        Answer::Rejected { .. } => BankOutcome::Rejected,
        Answer::Returned { .. } => BankOutcome::Returned,
    };
    (
        a.end_to_end_id.clone(),
        outcome,
        a.moved_amount(),
        a.answer.reason_code().map(str::to_string),
        Some(a.bank_reference()),
    )
}

/// The transaction lines; a group status may only be a rejection of a report whose every
/// transaction is rejected (it then comes last, after the transactions' own statuses).
fn read_lines(records: Vec<Result<ResultRecord, disburse_formats::ReadError>>) -> Vec<ResultLine> {
    let mut lines = Vec::new();
    let mut group = None;
    for r in records {
        match r {
            Ok(ResultRecord::Transaction(line)) => {
                assert!(group.is_none(), "the group status comes last");
                lines.push(line)
            }
            Ok(ResultRecord::Group(g)) => {
                assert_eq!(g.status, BankOutcome::Rejected, "{g:?}");
                group = Some(g);
            }
            other => panic!("expected transaction lines, got {other:?}"),
        }
    }
    if group.is_some() {
        assert!(lines.iter().all(|l| l.outcome == BankOutcome::Rejected));
    }
    lines
}

#[test]
fn files_read_back_as_the_plan_through_the_formats_readers() {
    for p in [demo_plan(), currencies_plan()] {
        let mut seen_pain002 = 0;
        let mut seen_camt = 0;
        for d in p.answer_days() {
            let due = p.answers_on(d);
            let files = disburse_sandbox::render_day(&p, d, ACCOUNT).unwrap();
            for (name, bytes) in files {
                let head = &bytes[..bytes.len().min(disburse_formats::DETECT_HEAD_LEN)];
                if name.starts_with("pain002-") {
                    assert_eq!(name, pain002_file_name(&p.batch_message_id, d));
                    assert_eq!(
                        detect(head).unwrap(),
                        Detected::Pain002 {
                            version: Pain002Version::V10
                        }
                    );
                    let lines = read_lines(read_pain002(BufReader::new(&bytes[..])).collect());
                    let want: Vec<&&PlannedAnswer> = due
                        .iter()
                        .filter(|a| !matches!(a.answer, Answer::Returned { .. }))
                        .collect();
                    assert_eq!(lines.len(), want.len(), "{name}");
                    for (line, a) in lines.iter().zip(want) {
                        let (id, outcome, amount, code, reference) = expected_line(a);
                        assert_eq!(line.end_to_end_id.as_deref(), Some(id.as_str()), "{name}");
                        assert_eq!(line.outcome, outcome, "{name} {id}");
                        // A status report books nothing: InstdAmt echoes the instruction.
                        let _ = amount;
                        assert_eq!(line.amount, None, "{name} {id}: a status, not a booking");
                        assert_eq!(line.instructed_amount, Some(a.instructed), "{name} {id}");
                        assert_eq!(line.reason_code, code, "{name} {id}");
                        assert_eq!(line.bank_reference, reference, "{name} {id}");
                        assert_eq!(
                            line.original_message_id.as_deref(),
                            Some(p.batch_message_id.as_str())
                        );
                        let status = match a.answer {
                            Answer::Accepted => "ACCP",
                            Answer::Paid { .. } => "ACSC",
                            _ => "RJCT",
                        };
                        assert_eq!(line.bank_status.as_deref(), Some(status));
                        if let Answer::Paid { .. } = a.answer {
                            assert_eq!(line.value_date, Some(d), "{name} {id}");
                        }
                        if let Answer::Rejected { code } = &a.answer {
                            assert_eq!(
                                line.reason_text.as_deref(),
                                disburse_sandbox::reason_text(code)
                            );
                        }
                    }
                    seen_pain002 += lines.len();
                } else {
                    assert_eq!(name, camt054_file_name(&p.batch_message_id, d));
                    assert_eq!(
                        detect(head).unwrap(),
                        Detected::Camt054 {
                            version: CamtVersion::V08
                        }
                    );
                    let lines = read_lines(read_camt054(BufReader::new(&bytes[..])).collect());
                    let want: Vec<&&PlannedAnswer> = due
                        .iter()
                        .filter(|a| {
                            matches!(a.answer, Answer::Paid { .. } | Answer::Returned { .. })
                        })
                        .collect();
                    assert_eq!(lines.len(), want.len(), "{name}");
                    for (line, a) in lines.iter().zip(want) {
                        let (id, outcome, amount, code, reference) = expected_line(a);
                        assert_eq!(line.end_to_end_id.as_deref(), Some(id.as_str()), "{name}");
                        assert_eq!(line.outcome, outcome, "{name} {id}");
                        assert_eq!(line.amount, amount, "{name} {id}");
                        assert_eq!(line.reason_code, code, "{name} {id}");
                        assert_eq!(line.bank_reference, reference, "{name} {id}");
                        assert_eq!(line.value_date, Some(d), "{name} {id}");
                        assert_eq!(line.bank_status.as_deref(), Some("BOOK"));
                    }
                    seen_camt += lines.len();
                }
            }
        }
        // Everything was said, in one file or the other: every answer but a return is in a
        // pain.002, every payment and return in a camt.054.
        let not_returned = p
            .answers
            .iter()
            .filter(|a| !matches!(a.answer, Answer::Returned { .. }))
            .count();
        let moved = p
            .answers
            .iter()
            .filter(|a| a.moved_amount().is_some())
            .count();
        assert_eq!(seen_pain002, not_returned);
        assert_eq!(seen_camt, moved);
    }
}

#[test]
fn over_and_underpayments_read_back_with_the_amount_really_paid() {
    for kind in [
        disburse_sandbox::OutcomeKind::Overpaid,
        disburse_sandbox::OutcomeKind::Underpaid,
    ] {
        let p = plan(
            &SandboxConfig {
                seed: 11,
                mix: OutcomeMix::only(kind),
            },
            [("PO-X", Money::from_minor(10_000, Currency::Eur))],
            "DIFF",
            submitted(),
        );
        let a = &p.answers[0];
        let Answer::Paid { amount, .. } = &a.answer else {
            panic!("{a:?}")
        };
        assert_ne!(*amount, a.instructed, "{kind}");
        for (name, bytes) in disburse_sandbox::render_day(&p, a.on_day, ACCOUNT).unwrap() {
            let records: Vec<_> = if name.starts_with("pain002") {
                read_pain002(&bytes[..]).collect()
            } else {
                read_camt054(&bytes[..]).collect()
            };
            let lines = read_lines(records);
            if name.starts_with("pain002") {
                // The status report echoes what we instructed; only the booking says what moved.
                assert_eq!(lines[0].amount, None, "{kind} {name}");
                assert_eq!(
                    lines[0].instructed_amount,
                    Some(a.instructed),
                    "{kind} {name}"
                );
            } else {
                assert_eq!(lines[0].amount, Some(*amount), "{kind} {name}");
            }
        }
    }
}

#[test]
fn markup_in_ids_is_escaped_and_read_back() {
    let p = plan(
        &SandboxConfig {
            seed: 1,
            mix: OutcomeMix::all_paid(),
        },
        [("A&B<1>\"'", Money::from_minor(700, Currency::Eur))],
        "MSG&<1>",
        submitted(),
    );
    let d = p.answers[0].on_day;
    let files = disburse_sandbox::render_day(&p, d, ACCOUNT).unwrap();
    assert_eq!(
        files[0].0,
        format!("pain002-MSG__1_-{}.xml", d.format("%Y%m%d"))
    );
    for (name, bytes) in files {
        if let Some(result) = xmllint(&bytes, schema_of(&name)) {
            result.unwrap();
        }
        let records: Vec<_> = if name.starts_with("pain002") {
            read_pain002(&bytes[..]).collect()
        } else {
            read_camt054(&bytes[..]).collect()
        };
        let lines = read_lines(records);
        assert_eq!(
            lines[0].end_to_end_id.as_deref(),
            Some("A&B<1>\"'"),
            "{name}"
        );
    }
}

#[test]
fn what_a_schema_refuses_is_refused_before_writing() {
    let long = "X".repeat(36);
    let p = plan(
        &SandboxConfig {
            seed: 1,
            mix: OutcomeMix::all_paid(),
        },
        [(long.as_str(), Money::from_minor(700, Currency::Eur))],
        "B-1",
        submitted(),
    );
    let due: Vec<&PlannedAnswer> = p.answers.iter().collect();
    let created = file_created_at(submitted());
    let mut out = Vec::new();
    let err = write_pain002(&due, "B-1", created, due.len(), &mut out).unwrap_err();
    assert!(matches!(err, SandboxError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("end_to_end_id"), "{err}");
    assert!(out.is_empty(), "nothing written");
    let err = write_camt054(&due, ACCOUNT, created, &mut out).unwrap_err();
    assert!(err.to_string().contains("at most 35"), "{err}");
    assert!(out.is_empty());

    let err = write_camt054(&[], "DE89 3704 0044 0532 0130 00", created, &mut out).unwrap_err();
    assert!(err.to_string().contains("not an IBAN"), "{err}");
    assert!(!err.to_string().contains("0532 0130"), "masked: {err}");
    let err = write_pain002(&[], &"M".repeat(36), created, 0, &mut out).unwrap_err();
    assert!(err.to_string().contains("original_message_id"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn a_file_that_is_not_a_pain001_is_refused() {
    let files = all_files(&demo_plan());
    let err = disburse_sandbox::answer_file(
        &SandboxConfig::default(),
        &files[0].2[..],
        submitted(),
        submitted(),
        ACCOUNT,
    )
    .unwrap_err();
    assert!(matches!(err, SandboxError::Pain001(_)), "{err}");
    assert!(err.to_string().contains("pain.001"), "{err}");
}

#[test]
fn answer_file_reads_the_pain001_written_by_formats() {
    let batch = transfers(40, Currency::Eur);
    let file = pain001("B-77", &batch);
    let (message_id, read) = disburse_sandbox::read_pain001(&file[..]).unwrap();
    assert_eq!(message_id, "B-77");
    assert_eq!(read, batch);
    let config = SandboxConfig::demo(8);
    let p = plan(&config, batch, "B-77", submitted());
    let mut files = Vec::new();
    let last = p.last_day().unwrap();
    let mut d = submitted();
    while d <= last {
        files.extend(
            disburse_sandbox::answer_file(&config, &file[..], submitted(), d, ACCOUNT).unwrap(),
        );
        d = d.succ_opt().unwrap();
    }
    let want: Vec<(String, Vec<u8>)> = all_files(&p).into_iter().map(|(_, n, b)| (n, b)).collect();
    assert_eq!(files, want);
    assert!(files
        .iter()
        .any(|(n, _)| n == &format!("pain002-B-77-{}.xml", submitted().format("%Y%m%d"))));
}

/// The sandbox's statement is a valid camt.053.001.08 (checked by the official XSD where
/// xmllint is installed) and reads back, through the statement reader, to what was booked: a
/// batch as one debit, a return, a fee and a stray debit, opening + entries = closing.
#[test]
fn statements_validate_and_read_back_to_what_was_booked() {
    use disburse_formats::statements::{read_statements, EntryKind, StatementRecord};
    use disburse_sandbox::{write_camt053, Booking};
    let eur = |minor| Money::from_minor(minor, Currency::Eur);
    let bookings = [
        Booking::BatchDebit {
            message_id: "DSB-sepa-file-00000001".into(),
            transactions: 3,
            amount: eur(30_000),
        },
        Booking::Return {
            end_to_end_id: "PO0000000002".into(),
            code: "AC04".into(),
            amount: eur(10_000),
        },
        Booking::Fee { amount: eur(250) },
        Booking::Debit {
            reference: "WHO".into(),
            amount: eur(12_345),
        },
    ];
    let mut bytes = Vec::new();
    let closing = write_camt053(
        ACCOUNT,
        7,
        day(2026, 11, 2),
        day(2026, 11, 3),
        eur(100_000),
        &bookings,
        &mut bytes,
    )
    .unwrap();
    assert_eq!(closing, 100_000 - 30_000 + 10_000 - 250 - 12_345);
    if let Some(result) = xmllint(&bytes, "camt.053.001.08.xsd") {
        result.unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&bytes)));
    }
    let records: Vec<StatementRecord> = read_statements(&bytes[..]).map(|r| r.unwrap()).collect();
    let StatementRecord::Header(h) = &records[0] else {
        panic!("{records:?}")
    };
    assert_eq!(
        (h.electronic_sequence, h.opening, h.closing),
        (Some(7), Some(eur(100_000)), Some(eur(closing)))
    );
    let kinds: Vec<(EntryKind, i64)> = records[1..]
        .iter()
        .map(|r| match r {
            StatementRecord::Entry(e) => (e.kind, e.amount.amount_minor()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (EntryKind::Payment, -30_000),
            (EntryKind::Return, 10_000),
            (EntryKind::Charges, -250),
            (EntryKind::Payment, -12_345)
        ]
    );
}
