//! What a channel promises and how long we wait for it. An input to every time-dependent rule,
//! never a global: two banks behave differently and the rules must say which one they apply.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How a bank tells us what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultMode {
    /// Every payout gets a result: paid or rejected.
    Explicit,
    /// Only failures are reported (paper banks): silence for long enough means paid.
    FailuresOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPolicy {
    /// Past this after submission with no result, a payout is escalated (expired).
    pub result_deadline: Duration,
    pub result_mode: ResultMode,
    /// For `FailuresOnly` channels: a silent payout counts as succeeded after this.
    pub presume_success_after: Option<Duration>,
    /// How long after success a bank may still return the money.
    pub return_window: Duration,
    /// A bank's answer (a booked amount, a correction's amount, a top-up) beyond this many times
    /// the instructed amount is not believed: it goes to a person (default 2).
    pub answer_bound_multiple: u32,
}

impl ChannelPolicy {
    /// The bank promises five days; we wait ten before a person looks (DESIGN §1.3).
    pub fn standard() -> ChannelPolicy {
        ChannelPolicy {
            result_deadline: Duration::days(10),
            result_mode: ResultMode::Explicit,
            presume_success_after: None,
            return_window: Duration::days(60),
            answer_bound_multiple: 2,
        }
    }

    /// The largest amount believed for a payout of `instructed` minor units.
    pub fn answer_bound_minor(&self, instructed_minor: i64) -> i64 {
        instructed_minor.saturating_mul(i64::from(self.answer_bound_multiple.max(1)))
    }

    pub fn deadline_at(&self, submitted_at: DateTime<Utc>) -> DateTime<Utc> {
        submitted_at + self.result_deadline
    }

    /// When a silent payout on a failures-only channel counts as paid; `None` for explicit banks.
    pub fn presumed_success_at(&self, submitted_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.result_mode {
            ResultMode::FailuresOnly => self.presume_success_after.map(|d| submitted_at + d),
            ResultMode::Explicit => None,
        }
    }
}
