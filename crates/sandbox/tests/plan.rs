//! The plan: deterministic, in the proportions of the mix, with sane amounts and days.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;

use chrono::Days;
use common::*;
use disburse_core::{Currency, Money};
use disburse_sandbox::{
    answer_file, plan, Answer, OutcomeKind, OutcomeMix, PlannedAnswer, SandboxConfig,
};
use proptest::prelude::*;

#[test]
fn same_seed_gives_the_same_plan_and_identical_bytes() {
    let batch = transfers(40, Currency::Eur);
    let config = SandboxConfig::demo(42);
    let a = plan(&config, batch.clone(), "B-1", submitted());
    let b = plan(&config, batch.clone(), "B-1", submitted());
    assert_eq!(a, b);
    assert_eq!(all_files(&a), all_files(&b));

    // From the pain.001 bytes, through the formats reader: the same again, day by day.
    let file = pain001("B-1", &batch);
    let last = a.last_day().unwrap();
    let mut d = submitted();
    while d <= last {
        let once = answer_file(&config, Cursor::new(&file), submitted(), d, ACCOUNT).unwrap();
        let twice = answer_file(&config, Cursor::new(&file), submitted(), d, ACCOUNT).unwrap();
        assert_eq!(once, twice, "{d}");
        let from_plan = disburse_sandbox::render_day(&a, d, ACCOUNT).unwrap();
        assert_eq!(once, from_plan, "{d}: the file and the plan agree");
        d = d + Days::new(1);
    }

    // Another seed or another batch id deals differently.
    let kinds = |p: &disburse_sandbox::BankPlan| -> Vec<OutcomeKind> {
        p.transfers.iter().map(|t| t.kind).collect()
    };
    let other_seed = plan(&SandboxConfig::demo(43), batch.clone(), "B-1", submitted());
    assert_ne!(kinds(&a), kinds(&other_seed));
    let other_batch = plan(&config, batch, "B-2", submitted());
    assert_ne!(kinds(&a), kinds(&other_batch));
}

#[test]
fn demo_mix_gives_every_kind_in_a_batch_of_40() {
    for seed in 0..200 {
        let p = plan(
            &SandboxConfig::demo(seed),
            transfers(40, Currency::Eur),
            "DEMO-1",
            submitted(),
        );
        assert_eq!(p.transfers.len(), 40);
        for kind in OutcomeKind::MIX {
            assert!(
                p.count(kind) >= 1,
                "seed {seed}: no {kind} in {:?}",
                p.transfers
            );
        }
        let answers: BTreeSet<&str> = p.answers.iter().map(|a| a.answer.name()).collect();
        assert_eq!(
            answers,
            BTreeSet::from(["accepted", "paid", "rejected", "returned"]),
            "seed {seed}"
        );
    }
    // Even a batch of 12 has one of each.
    let p = plan(
        &SandboxConfig::demo(7),
        transfers(12, Currency::Eur),
        "DEMO-2",
        submitted(),
    );
    for kind in OutcomeKind::MIX {
        assert!(p.count(kind) >= 1, "{kind}");
    }
    assert!(p.count(OutcomeKind::PaidExact) >= 3);
}

#[test]
fn default_mix_is_mostly_paid_exactly() {
    let p = plan(
        &SandboxConfig::default(),
        transfers(1000, Currency::Eur)
            .into_iter()
            .map(|(id, _)| (id, Money::from_minor(10_000, Currency::Eur))),
        "BIG",
        submitted(),
    );
    let mix = OutcomeMix::default();
    for kind in OutcomeKind::MIX {
        assert_eq!(p.count(kind), mix.weight(kind) as usize, "{kind}");
    }
    let single = plan(
        &SandboxConfig::default(),
        [("PO-1", Money::from_minor(500, Currency::Eur))],
        "ONE",
        submitted(),
    );
    assert_eq!(single.transfers.len(), 1);
}

/// The answers of one transfer, in order.
fn answers_of<'a>(p: &'a disburse_sandbox::BankPlan, id: &str) -> Vec<&'a PlannedAnswer> {
    p.answers.iter().filter(|a| a.end_to_end_id == id).collect()
}

#[test]
fn each_kind_is_answered_on_its_days() {
    let p = plan(
        &SandboxConfig::demo(3),
        transfers(200, Currency::Eur),
        "DAYS",
        submitted(),
    );
    let offset = |a: &PlannedAnswer| (a.on_day - submitted()).num_days();
    let mut sorted = p.answers.clone();
    sorted.sort_by_key(|a| a.on_day);
    assert_eq!(sorted, p.answers, "answers are in day order");
    for t in &p.transfers {
        let answers = answers_of(&p, &t.end_to_end_id);
        let shape: Vec<(&str, i64)> = answers
            .iter()
            .map(|a| (a.answer.name(), offset(a)))
            .collect();
        let context = format!("{} {}: {shape:?}", t.end_to_end_id, t.kind);
        for a in &answers {
            assert_eq!(a.instructed, t.instructed, "{context}");
        }
        match t.kind {
            OutcomeKind::PaidExact | OutcomeKind::Overpaid | OutcomeKind::Underpaid => {
                assert!(matches!(shape[..], [("paid", 1..=2)]), "{context}")
            }
            OutcomeKind::RejectedAc01 | OutcomeKind::RejectedAc04 | OutcomeKind::RejectedAm04 => {
                assert!(matches!(shape[..], [("rejected", 0..=1)]), "{context}");
                let want = &t.kind.as_str()[9..].to_ascii_uppercase();
                assert_eq!(
                    answers[0].answer.reason_code(),
                    Some(want.as_str()),
                    "{context}"
                );
            }
            OutcomeKind::Silent => assert!(shape.is_empty(), "{context}"),
            OutcomeKind::LatePaid => {
                assert!(
                    matches!(shape[..], [("accepted", 0), ("paid", 11..=13)]),
                    "{context}"
                );
                assert_eq!(answers[1].moved_amount(), Some(t.instructed), "{context}");
            }
            OutcomeKind::ReturnedAfterPaid => {
                assert!(
                    matches!(shape[..], [("paid", 1..=2), ("returned", 3..=7)]),
                    "{context}"
                );
                let gap = offset(answers[1]) - offset(answers[0]);
                assert!((2..=5).contains(&gap), "{context}");
                assert_eq!(answers[0].moved_amount(), Some(t.instructed), "{context}");
                // All of it comes back, or (after the longest delay) half of it.
                let half = disburse_core::Money::from_minor(
                    t.instructed.amount_minor() / 2,
                    t.instructed.currency(),
                );
                let back = answers[1].moved_amount();
                assert!(
                    back == Some(t.instructed) || (gap == 5 && back == Some(half)),
                    "{context}: {back:?}"
                );
                assert!(
                    matches!(answers[1].answer.reason_code(), Some("AC04" | "MS03")),
                    "{context}"
                );
            }
            OutcomeKind::RejectedInvalidAmount => panic!("{context}: amounts are positive"),
        }
    }
    // Both return codes are used.
    let codes: BTreeSet<&str> = p
        .answers
        .iter()
        .filter(|a| matches!(a.answer, Answer::Returned { .. }))
        .filter_map(|a| a.answer.reason_code())
        .collect();
    assert_eq!(codes, BTreeSet::from(["AC04", "MS03"]));
    // What comes back is never more than was paid, and some returns are partial.
    let mut partial = 0;
    for a in &p.answers {
        if let Answer::Returned { amount, .. } = &a.answer {
            assert!(
                amount.is_positive() && amount.amount_minor() <= a.instructed.amount_minor(),
                "{a:?}"
            );
            if amount.amount_minor() < a.instructed.amount_minor() {
                partial += 1;
            }
        }
    }
    assert!(partial > 0, "a partial return among the returns");
    // Every answer has its own bank reference.
    let refs: BTreeSet<String> = p.answers.iter().map(|a| a.bank_reference()).collect();
    assert_eq!(refs.len(), p.answers.len());
    assert!(refs.iter().all(|r| r.len() <= 35));
}

#[test]
fn late_payments_follow_late_after_days() {
    let mix = OutcomeMix {
        late_after_days: 30,
        ..OutcomeMix::only(OutcomeKind::LatePaid)
    };
    let p = plan(
        &SandboxConfig { seed: 1, mix },
        transfers(20, Currency::Eur),
        "LATE",
        submitted(),
    );
    for a in p
        .answers
        .iter()
        .filter(|a| matches!(a.answer, Answer::Paid { .. }))
    {
        let days = (a.on_day - submitted()).num_days();
        assert!((31..=33).contains(&days), "{days}");
    }
}

#[test]
fn amounts_of_zero_or_less_are_rejected_with_am12() {
    let p = plan(
        &SandboxConfig::default(),
        [
            ("ZERO", Money::from_minor(0, Currency::Eur)),
            ("NEG", Money::from_minor(-5, Currency::Eur)),
        ],
        "BAD",
        submitted(),
    );
    for t in &p.transfers {
        assert_eq!(t.kind, OutcomeKind::RejectedInvalidAmount);
    }
    for a in &p.answers {
        assert_eq!(
            a.answer,
            Answer::Rejected {
                code: "AM12".into()
            }
        );
        assert_eq!(a.on_day, submitted());
    }
    assert_eq!(p.answers.len(), 2);
}

#[test]
fn a_transfer_of_one_minor_unit_cannot_be_underpaid() {
    let p = plan(
        &SandboxConfig {
            seed: 9,
            mix: OutcomeMix::only(OutcomeKind::Underpaid),
        },
        [
            ("TINY", Money::from_minor(1, Currency::Eur)),
            ("TWO", Money::from_minor(2, Currency::Eur)),
        ],
        "TINY",
        submitted(),
    );
    assert_eq!(p.transfers[0].kind, OutcomeKind::PaidExact);
    let paid = |id: &str| answers_of(&p, id)[0].moved_amount().unwrap().amount_minor();
    assert_eq!(paid("TINY"), 1);
    assert_eq!(p.transfers[1].kind, OutcomeKind::Underpaid);
    assert_eq!(paid("TWO"), 1);
}

fn currency() -> impl Strategy<Value = Currency> {
    (0..Currency::ALL.len()).prop_map(|i| Currency::ALL[i])
}

fn mix() -> impl Strategy<Value = OutcomeMix> {
    prop_oneof![
        Just(OutcomeMix::demo()),
        Just(OutcomeMix::default()),
        Just(OutcomeMix::only(OutcomeKind::Overpaid)),
        Just(OutcomeMix::only(OutcomeKind::Underpaid)),
    ]
}

proptest! {
    #[test]
    fn paid_amounts_are_positive_and_differences_never_zero(
        seed in any::<u64>(),
        mix in mix(),
        currency in currency(),
        amounts in prop::collection::vec(
            prop_oneof![1i64..=3, 1i64..=10_000, 1i64..=i64::MAX, Just(i64::MAX)],
            1..30,
        ),
    ) {
        let batch: Vec<(String, Money)> = amounts
            .iter()
            .enumerate()
            .map(|(i, &m)| (format!("P{i}"), Money::from_minor(m, currency)))
            .collect();
        let p = plan(&SandboxConfig { seed, mix }, batch, "PROP", submitted());
        for t in &p.transfers {
            let x = t.instructed.amount_minor();
            for a in answers_of(&p, &t.end_to_end_id) {
                let Answer::Paid { amount, .. } = &a.answer else { continue };
                prop_assert_eq!(amount.currency(), currency);
                let paid = amount.amount_minor();
                prop_assert!(paid > 0, "{} paid {}", t.end_to_end_id, paid);
                let most = (i128::from(x) * 5 / 100).max(1);
                let diff = i128::from(paid) - i128::from(x);
                match t.kind {
                    OutcomeKind::Overpaid => prop_assert!(diff > 0 && diff <= most, "{} {}", x, paid),
                    OutcomeKind::Underpaid => prop_assert!(diff < 0 && -diff <= most, "{} {}", x, paid),
                    _ => prop_assert_eq!(diff, 0),
                }
            }
        }
    }
}
