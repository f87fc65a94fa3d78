//! Deciding, once and reproducibly, what the bank will say about every transfer of a batch and on
//! which day.

use chrono::{Days, NaiveDate};
use disburse_core::Money;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{OutcomeKind, OutcomeMix, SandboxConfig};
use crate::util::fnv64;

/// Everything the sandbox bank will say about one batch, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankPlan {
    /// The MsgId of the pain.001 the plan answers.
    pub batch_message_id: String,
    pub submitted_on: NaiveDate,
    /// One per transfer, in the order they were given.
    pub transfers: Vec<PlannedTransfer>,
    /// Every answer, sorted by day, then by the order of the transfers. Silent transfers have
    /// none; a transfer paid late has two (accepted, paid); a transfer returned after it was paid
    /// has two (paid, returned).
    pub answers: Vec<PlannedAnswer>,
}

/// What the bank decided for one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTransfer {
    pub end_to_end_id: String,
    pub instructed: Money,
    pub kind: OutcomeKind,
}

/// One thing the bank will say about one transfer, on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAnswer {
    pub end_to_end_id: String,
    /// The amount of the instruction (not what was paid: see [`Answer::Paid`]).
    pub instructed: Money,
    pub answer: Answer,
    /// The day the bank says it (the date of the file that carries it, and the booking and value
    /// date of a payment or return).
    pub on_day: NaiveDate,
}

/// What the bank says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Answer {
    /// The bank took the instruction; no money has moved yet (pain.002 `ACCP`).
    Accepted,
    /// The money left our account: `amount` is what the bank really paid, which may differ from
    /// the instructed amount (pain.002 `ACSC`, camt.054 booked debit).
    Paid {
        amount: Money,
        bank_reference: String,
    },
    /// The bank refused the instruction with an ISO 20022 reason `code` (pain.002 `RJCT`).
    Rejected { code: String },
    /// The money came back after it was paid, with an ISO 20022 return reason `code` (camt.054
    /// credit with return information): `amount` is what came back, all of what was paid or,
    /// for a partial return, part of it.
    Returned { code: String, amount: Money },
}

impl Answer {
    /// `accepted`, `paid`, `rejected` or `returned`.
    pub fn name(&self) -> &'static str {
        match self {
            Answer::Accepted => "accepted",
            Answer::Paid { .. } => "paid",
            Answer::Rejected { .. } => "rejected",
            Answer::Returned { .. } => "returned",
        }
    }

    /// The reason code of a rejection or a return.
    pub fn reason_code(&self) -> Option<&str> {
        match self {
            Answer::Rejected { code } | Answer::Returned { code, .. } => Some(code),
            Answer::Accepted | Answer::Paid { .. } => None,
        }
    }
}

impl PlannedAnswer {
    /// The bank's reference for this answer (AcctSvcrRef, at most 35 characters): the
    /// `bank_reference` of a payment, and for the other answers one derived from the end-to-end
    /// id, the day and the answer, so that every answer has its own.
    pub fn bank_reference(&self) -> String {
        let (letter, code) = match &self.answer {
            Answer::Paid { bank_reference, .. } => return bank_reference.clone(),
            Answer::Accepted => ('A', ""),
            Answer::Rejected { code } => ('J', code.as_str()),
            Answer::Returned { code, .. } => ('R', code.as_str()),
        };
        let key = format!("{}|{}|{letter}|{code}", self.end_to_end_id, self.on_day);
        format!("SBX{letter}{:016X}", fnv64(key.as_bytes()))
    }

    /// The amount of money this answer moves: the paid amount of a payment, the instructed
    /// amount of a return, none for an acceptance or a rejection.
    pub fn moved_amount(&self) -> Option<Money> {
        match &self.answer {
            Answer::Paid { amount, .. } => Some(*amount),
            Answer::Returned { amount, .. } => Some(*amount),
            Answer::Accepted | Answer::Rejected { .. } => None,
        }
    }
}

impl BankPlan {
    /// The answers due on `day`, in plan order.
    pub fn answers_on(&self, day: NaiveDate) -> Vec<&PlannedAnswer> {
        self.answers.iter().filter(|a| a.on_day == day).collect()
    }

    /// Every day on which the bank says something, in order, without repeats.
    pub fn answer_days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = self.answers.iter().map(|a| a.on_day).collect();
        days.dedup();
        days
    }

    /// The last day on which the bank says something (`None` if it never does).
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.answers.last().map(|a| a.on_day)
    }

    /// What was decided for the transfer `end_to_end_id`.
    pub fn transfer(&self, end_to_end_id: &str) -> Option<&PlannedTransfer> {
        self.transfers
            .iter()
            .find(|t| t.end_to_end_id == end_to_end_id)
    }

    /// How many transfers got `kind`.
    pub fn count(&self, kind: OutcomeKind) -> usize {
        self.transfers.iter().filter(|t| t.kind == kind).count()
    }
}

/// Return reasons dealt to [`OutcomeKind::ReturnedAfterPaid`].
const RETURN_CODES: [&str; 2] = ["AC04", "MS03"];

/// Plans what the bank says about `transfers` (end-to-end id and instructed amount), a batch
/// with MsgId `batch_message_id` received on `submitted_on`.
///
/// Deterministic: the same config, transfers (in the same order), batch message id and date give
/// the same plan. How it decides:
///
/// - **Which outcome.** A batch of `n` gets `n × weight / total` transfers of each kind of the
///   mix: the whole parts exactly, each remaining transfer drawn with the fractional parts as
///   weights; then the outcomes are shuffled over the transfers. The generator is a
///   `StdRng` seeded from `config.seed` and the batch message id.
/// - **When** (calendar days after `submitted_on`): rejections on day 0 or 1; payments
///   (exact, over, under) on day 1 or 2; a late payment is accepted on day 0 and paid on day
///   `late_after_days` + 1..=3; a returned payment is paid on day 1 or 2 and returned 2 to 5
///   days later with `AC04` or `MS03`; silent transfers get no answer.
/// - **How much.** Over- and underpayments differ from the instructed amount by 1 to 5 %,
///   at least one minor unit. An underpayment never leaves zero or less: a transfer of one minor
///   unit cannot be underpaid and is paid exactly instead (so is an overpayment that would
///   overflow); its [`PlannedTransfer::kind`] then says `paid_exact`.
/// - An instructed amount of zero or less is rejected with `AM12` on day 0
///   ([`OutcomeKind::RejectedInvalidAmount`]), whatever the mix says.
pub fn plan<S: Into<String>>(
    config: &SandboxConfig,
    transfers: impl IntoIterator<Item = (S, Money)>,
    batch_message_id: &str,
    submitted_on: NaiveDate,
) -> BankPlan {
    let transfers: Vec<(String, Money)> = transfers
        .into_iter()
        .map(|(id, amount)| (id.into(), amount))
        .collect();
    let mut rng = StdRng::seed_from_u64(config.seed ^ fnv64(batch_message_id.as_bytes()));
    let deck = deal(&config.mix, transfers.len(), &mut rng);
    let day = |offset: u64| {
        submitted_on
            .checked_add_days(Days::new(offset))
            .unwrap_or(NaiveDate::MAX)
    };
    let late_after = u64::from(config.mix.late_after_days);

    let mut planned = Vec::with_capacity(transfers.len());
    let mut answers = Vec::with_capacity(transfers.len() + transfers.len() / 4);
    for ((end_to_end_id, instructed), dealt) in transfers.into_iter().zip(deck) {
        // The same draws for every transfer, whatever its outcome, so that one transfer's
        // outcome never shifts another's days, amounts or references.
        let paid_after: u64 = rng.gen_range(1..=2);
        let rejected_after: u64 = rng.gen_range(0..=1);
        let late_extra: u64 = rng.gen_range(1..=3);
        let returned_after: u64 = rng.gen_range(2..=5);
        let basis_points: i64 = rng.gen_range(100..=500);
        let reference = format!("SBXP{:016X}", rng.gen::<u64>());
        let return_code = RETURN_CODES[usize::from(rng.gen::<bool>())];

        let amount = instructed.amount_minor();
        let mut kind = dealt;
        let mut paid_amount = instructed;
        if amount <= 0 {
            kind = OutcomeKind::RejectedInvalidAmount;
        } else if kind == OutcomeKind::Overpaid || kind == OutcomeKind::Underpaid {
            let difference = difference(amount, basis_points);
            let paid = if kind == OutcomeKind::Overpaid {
                amount.checked_add(difference)
            } else {
                Some(amount - difference.min(amount - 1)).filter(|&p| p != amount)
            };
            match paid {
                Some(paid) => paid_amount = Money::from_minor(paid, instructed.currency()),
                None => kind = OutcomeKind::PaidExact,
            }
        }

        let answer = |answer: Answer, on_day: NaiveDate| PlannedAnswer {
            end_to_end_id: end_to_end_id.clone(),
            instructed,
            answer,
            on_day,
        };
        let paid = Answer::Paid {
            amount: paid_amount,
            bank_reference: reference,
        };
        let rejected = |code: &str| Answer::Rejected {
            code: code.to_string(),
        };
        match kind {
            OutcomeKind::PaidExact | OutcomeKind::Overpaid | OutcomeKind::Underpaid => {
                answers.push(answer(paid, day(paid_after)));
            }
            OutcomeKind::RejectedAc01 => {
                answers.push(answer(rejected("AC01"), day(rejected_after)));
            }
            OutcomeKind::RejectedAc04 => {
                answers.push(answer(rejected("AC04"), day(rejected_after)));
            }
            OutcomeKind::RejectedAm04 => {
                answers.push(answer(rejected("AM04"), day(rejected_after)));
            }
            OutcomeKind::RejectedInvalidAmount => {
                answers.push(answer(rejected("AM12"), day(0)));
            }
            OutcomeKind::Silent => {}
            OutcomeKind::LatePaid => {
                answers.push(answer(Answer::Accepted, day(0)));
                answers.push(answer(paid, day(late_after.saturating_add(late_extra))));
            }
            OutcomeKind::ReturnedAfterPaid => {
                answers.push(answer(paid, day(paid_after)));
                // One return in four (the last of the return delays) gives back only half: a
                // partial return, as banks send for part-collected funds.
                let back = if returned_after == 5 && paid_amount.amount_minor() >= 2 {
                    Money::from_minor(paid_amount.amount_minor() / 2, paid_amount.currency())
                } else {
                    paid_amount
                };
                let returned = Answer::Returned {
                    code: return_code.to_string(),
                    amount: back,
                };
                answers.push(answer(returned, day(paid_after + returned_after)));
            }
        }
        planned.push(PlannedTransfer {
            end_to_end_id,
            instructed,
            kind,
        });
    }
    // Stable: within a day, answers keep the order of their transfers.
    answers.sort_by_key(|a| a.on_day);
    BankPlan {
        batch_message_id: batch_message_id.to_string(),
        submitted_on,
        transfers: planned,
        answers,
    }
}

/// 1 to 5 % (`basis_points` / 10 000) of a positive `amount`, at least 1.
fn difference(amount: i64, basis_points: i64) -> i64 {
    let share = i128::from(amount) * i128::from(basis_points) / 10_000;
    // At most 5 % of an i64: always fits.
    i64::try_from(share).unwrap_or(i64::MAX).max(1)
}

/// `n` outcomes in the proportions of `mix`, shuffled (see [`plan`]).
fn deal(mix: &OutcomeMix, n: usize, rng: &mut StdRng) -> Vec<OutcomeKind> {
    let total = u128::from(mix.total());
    if total == 0 || n == 0 {
        return vec![OutcomeKind::PaidExact; n];
    }
    let mut deck = Vec::with_capacity(n);
    let mut fractions = [0u64; OutcomeKind::MIX.len()];
    for (i, &kind) in OutcomeKind::MIX.iter().enumerate() {
        let share = n as u128 * u128::from(mix.weight(kind));
        let whole = usize::try_from(share / total).expect("at most n");
        deck.extend(std::iter::repeat_n(kind, whole));
        fractions[i] = u64::try_from(share % total).expect("below the total of u32 weights");
    }
    let remaining = n - deck.len();
    if remaining > 0 {
        // The fractions sum to remaining × total > 0, so the distribution exists.
        let draw = WeightedIndex::new(fractions).expect("positive fractions");
        for _ in 0..remaining {
            deck.push(OutcomeKind::MIX[draw.sample(rng)]);
        }
    }
    deck.shuffle(rng);
    deck
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_a_few_percent_and_never_zero() {
        assert_eq!(difference(1, 100), 1);
        assert_eq!(difference(99, 500), 4);
        assert_eq!(difference(10_000, 100), 100);
        assert_eq!(difference(10_000, 500), 500);
        assert!(difference(i64::MAX, 500) > 0);
    }

    #[test]
    fn deals_whole_shares_exactly() {
        let mut rng = StdRng::seed_from_u64(1);
        let deck = deal(&OutcomeMix::demo(), 100, &mut rng);
        assert_eq!(deck.len(), 100);
        assert_eq!(
            deck.iter()
                .filter(|&&k| k == OutcomeKind::PaidExact)
                .count(),
            28
        );
        for kind in &OutcomeKind::MIX[1..] {
            assert_eq!(deck.iter().filter(|&k| k == kind).count(), 9, "{kind}");
        }
        let zero = OutcomeMix {
            paid_exact: 0,
            ..OutcomeMix::only(OutcomeKind::PaidExact)
        };
        assert_eq!(
            deal(&zero, 3, &mut rng),
            vec![OutcomeKind::PaidExact; 3],
            "all weights zero: all paid"
        );
    }
}
