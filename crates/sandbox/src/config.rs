//! How the sandbox bank behaves: a seed and the mix of outcomes it deals out.

use serde::{Deserialize, Serialize};

/// Everything that decides what the sandbox bank answers. The same config, the same transfers,
/// the same batch message id and the same submission date always give the same plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SandboxConfig {
    /// Seed of the random generator (`rand::rngs::StdRng`). It is combined with the batch message
    /// id, so two batches under one seed get different (but reproducible) outcomes.
    pub seed: u64,
    pub mix: OutcomeMix,
}

impl SandboxConfig {
    /// The [`OutcomeMix::demo`] mix under `seed`: every kind of outcome in a batch of 12 or more.
    pub fn demo(seed: u64) -> SandboxConfig {
        SandboxConfig {
            seed,
            mix: OutcomeMix::demo(),
        }
    }
}

/// Relative weights, in per mille by convention, of what happens to each transfer of a batch,
/// plus the one timing knob the mix needs ([`OutcomeMix::late_after_days`]).
///
/// Weights need not sum to 1000: a batch of `n` transfers gets `n × weight / sum` of each kind,
/// the whole parts exactly and the fractions drawn at random (see [`crate::plan()`]). A mix whose
/// weights are all zero pays everything exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutcomeMix {
    /// Paid the instructed amount, a day or two after submission.
    pub paid_exact: u32,
    /// Rejected with `AC01` (account identifier wrong), on the day of submission or the next.
    pub rejected_ac01: u32,
    /// Rejected with `AC04` (account closed).
    pub rejected_ac04: u32,
    /// Rejected with `AM04` (insufficient funds).
    pub rejected_am04: u32,
    /// The bank never says anything about the transfer.
    pub silent: u32,
    /// Paid 1–5 % more than instructed (at least one minor unit more).
    pub overpaid: u32,
    /// Paid 1–5 % less than instructed (at least one minor unit less, never zero or less).
    pub underpaid: u32,
    /// Accepted (`ACCP`) on the day of submission, paid exactly, but the paid answer comes only
    /// after [`OutcomeMix::late_after_days`].
    pub late_paid: u32,
    /// Paid exactly, then returned (`AC04` or `MS03`) two to five days later.
    pub returned_after_paid: u32,
    /// Not a weight: a late payment is answered 1–3 days after this many days from submission.
    /// The default, 10, is the deadline the design gives file channels.
    pub late_after_days: u32,
}

impl Default for OutcomeMix {
    /// Mostly paid (93 %), with a few of every kind of trouble.
    fn default() -> Self {
        OutcomeMix {
            paid_exact: 930,
            rejected_ac01: 15,
            rejected_ac04: 10,
            rejected_am04: 5,
            silent: 5,
            overpaid: 5,
            underpaid: 5,
            late_paid: 15,
            returned_after_paid: 10,
            late_after_days: 10,
        }
    }
}

impl OutcomeMix {
    /// For `disburse demo`: 28 % paid exactly and 9 % of each other kind, so that every kind
    /// appears at least once in any batch of 12 transfers or more (three or more of each in a
    /// batch of 40).
    pub fn demo() -> OutcomeMix {
        OutcomeMix {
            paid_exact: 280,
            rejected_ac01: 90,
            rejected_ac04: 90,
            rejected_am04: 90,
            silent: 90,
            overpaid: 90,
            underpaid: 90,
            late_paid: 90,
            returned_after_paid: 90,
            late_after_days: 10,
        }
    }

    /// Every transfer paid exactly, and nothing else.
    pub fn all_paid() -> OutcomeMix {
        OutcomeMix::only(OutcomeKind::PaidExact)
    }

    /// Every transfer gets `kind` (a mix of one kind; [`OutcomeKind::RejectedInvalidAmount`]
    /// is not drawn from a mix, so it gives [`OutcomeMix::all_paid`]).
    pub fn only(kind: OutcomeKind) -> OutcomeMix {
        let mut mix = OutcomeMix {
            paid_exact: 0,
            rejected_ac01: 0,
            rejected_ac04: 0,
            rejected_am04: 0,
            silent: 0,
            overpaid: 0,
            underpaid: 0,
            late_paid: 0,
            returned_after_paid: 0,
            late_after_days: 10,
        };
        match mix.weight_mut(kind) {
            Some(w) => *w = 1000,
            None => mix.paid_exact = 1000,
        }
        mix
    }

    /// The weight of `kind` (0 for [`OutcomeKind::RejectedInvalidAmount`]).
    pub fn weight(&self, kind: OutcomeKind) -> u32 {
        match kind {
            OutcomeKind::PaidExact => self.paid_exact,
            OutcomeKind::RejectedAc01 => self.rejected_ac01,
            OutcomeKind::RejectedAc04 => self.rejected_ac04,
            OutcomeKind::RejectedAm04 => self.rejected_am04,
            OutcomeKind::Silent => self.silent,
            OutcomeKind::Overpaid => self.overpaid,
            OutcomeKind::Underpaid => self.underpaid,
            OutcomeKind::LatePaid => self.late_paid,
            OutcomeKind::ReturnedAfterPaid => self.returned_after_paid,
            OutcomeKind::RejectedInvalidAmount => 0,
        }
    }

    fn weight_mut(&mut self, kind: OutcomeKind) -> Option<&mut u32> {
        Some(match kind {
            OutcomeKind::PaidExact => &mut self.paid_exact,
            OutcomeKind::RejectedAc01 => &mut self.rejected_ac01,
            OutcomeKind::RejectedAc04 => &mut self.rejected_ac04,
            OutcomeKind::RejectedAm04 => &mut self.rejected_am04,
            OutcomeKind::Silent => &mut self.silent,
            OutcomeKind::Overpaid => &mut self.overpaid,
            OutcomeKind::Underpaid => &mut self.underpaid,
            OutcomeKind::LatePaid => &mut self.late_paid,
            OutcomeKind::ReturnedAfterPaid => &mut self.returned_after_paid,
            OutcomeKind::RejectedInvalidAmount => return None,
        })
    }

    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        OutcomeKind::MIX
            .iter()
            .map(|&k| u64::from(self.weight(k)))
            .sum()
    }
}

/// What the sandbox bank decided to do with one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    PaidExact,
    RejectedAc01,
    RejectedAc04,
    RejectedAm04,
    Silent,
    Overpaid,
    Underpaid,
    LatePaid,
    ReturnedAfterPaid,
    /// Not drawn from the mix: what the bank does with an instructed amount of zero or less
    /// (rejected with `AM12`, on the day of submission).
    RejectedInvalidAmount,
}

impl OutcomeKind {
    /// The kinds an [`OutcomeMix`] deals out, in the order of its fields.
    pub const MIX: [OutcomeKind; 9] = [
        OutcomeKind::PaidExact,
        OutcomeKind::RejectedAc01,
        OutcomeKind::RejectedAc04,
        OutcomeKind::RejectedAm04,
        OutcomeKind::Silent,
        OutcomeKind::Overpaid,
        OutcomeKind::Underpaid,
        OutcomeKind::LatePaid,
        OutcomeKind::ReturnedAfterPaid,
    ];

    /// `paid_exact`, `rejected_ac01`... (the field name in [`OutcomeMix`]).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::PaidExact => "paid_exact",
            OutcomeKind::RejectedAc01 => "rejected_ac01",
            OutcomeKind::RejectedAc04 => "rejected_ac04",
            OutcomeKind::RejectedAm04 => "rejected_am04",
            OutcomeKind::Silent => "silent",
            OutcomeKind::Overpaid => "overpaid",
            OutcomeKind::Underpaid => "underpaid",
            OutcomeKind::LatePaid => "late_paid",
            OutcomeKind::ReturnedAfterPaid => "returned_after_paid",
            OutcomeKind::RejectedInvalidAmount => "rejected_invalid_amount",
        }
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
