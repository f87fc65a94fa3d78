//! The payout (attempt) state machine of DESIGN §3 as one pure function:
//! (payout as known, event, policy, as-of) → a transition with its journal, "nothing changes",
//! or a refusal that says why.
//!
//! ```text
//! pending ──submit──▶ submitted ──paid──────────▶ succeeded ──return──▶ returned
//!    │                 │      │                      ▲
//!    │ cancel          │      └──rejected──▶ failed  │
//!    ▼                 │                       ▲     │
//! cancelled            └──deadline──▶ expired ─┴─────┘
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, MerchantId, PayoutNo};
use crate::ledger::{Journal, JournalKind, LedgerAccount, LedgerError, Posting};
use crate::money::{Money, MoneyError};
use crate::policy::{ChannelPolicy, ResultMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutState {
    Pending,
    Submitted,
    Succeeded,
    Failed,
    Returned,
    Cancelled,
    Expired,
}

impl PayoutState {
    pub const ALL: [PayoutState; 7] = [
        PayoutState::Pending,
        PayoutState::Submitted,
        PayoutState::Succeeded,
        PayoutState::Failed,
        PayoutState::Returned,
        PayoutState::Cancelled,
        PayoutState::Expired,
    ];

    /// Live: its money may still move. At most one live payout per order.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            PayoutState::Pending | PayoutState::Submitted | PayoutState::Expired
        )
    }

    /// Final for this attempt: the order may go on with a new attempt.
    pub fn is_final_failure(self) -> bool {
        matches!(
            self,
            PayoutState::Failed | PayoutState::Returned | PayoutState::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutState::Pending => "pending",
            PayoutState::Submitted => "submitted",
            PayoutState::Succeeded => "succeeded",
            PayoutState::Failed => "failed",
            PayoutState::Returned => "returned",
            PayoutState::Cancelled => "cancelled",
            PayoutState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Result<PayoutState, String> {
        PayoutState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown payout state {s:?}"))
    }
}

impl fmt::Display for PayoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a payout's money is reserved before it goes to the bank, and goes back to on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// The order's reservation (`withdrawing`): every ordinary payout.
    Order,
    /// What a bank underpaid (`shortfall`): a top-up payout.
    Shortfall,
}

impl Funding {
    pub fn as_str(self) -> &'static str {
        match self {
            Funding::Order => "order",
            Funding::Shortfall => "shortfall",
        }
    }

    pub fn parse(s: &str) -> Result<Funding, String> {
        match s {
            "order" => Ok(Funding::Order),
            "shortfall" => Ok(Funding::Shortfall),
            _ => Err(format!("unknown funding {s:?}")),
        }
    }
}

/// What the rules need to know about one payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutFacts {
    pub payout_no: PayoutNo,
    pub merchant: MerchantId,
    pub channel: ChannelId,
    pub state: PayoutState,
    /// The amount instructed to the bank.
    pub amount: Money,
    /// What the bank moved, once it says it paid.
    pub paid: Option<Money>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// When it became `succeeded`; the return window counts from here.
    pub succeeded_at: Option<DateTime<Utc>>,
    pub funded_from: Funding,
}

/// One thing a bank said about one payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BankResult {
    /// The bank took the instruction; not yet paid.
    Accepted { reference: Option<String> },
    Paid {
        amount: Money,
        reference: Option<String>,
        value_date: Option<NaiveDate>,
    },
    Rejected {
        reason_code: String,
        reason_text: Option<String>,
    },
    /// Paid, then sent back by the beneficiary's bank.
    Returned {
        reason_code: String,
        reason_text: Option<String>,
    },
}

impl BankResult {
    pub fn name(&self) -> &'static str {
        match self {
            BankResult::Accepted { .. } => "accepted",
            BankResult::Paid { .. } => "paid",
            BankResult::Rejected { .. } => "rejected",
            BankResult::Returned { .. } => "returned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutEvent {
    Submit,
    Cancel,
    Bank(BankResult),
    /// Time passed: check the deadline and the presumed-success window as of the given time.
    Sweep,
}

/// Why a bank result or a command could not be applied. Kept and shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("payout {payout} is {state}; it cannot {action}")]
    NotAllowed {
        payout: PayoutNo,
        state: PayoutState,
        action: &'static str,
    },
    /// A bank result that contradicts what is recorded: raised for a person, never applied.
    #[error("payout {payout} is {state}, but the bank now says {said}")]
    Conflict {
        payout: PayoutNo,
        state: PayoutState,
        said: String,
    },
    #[error("payout {payout} was instructed in {instructed}, the bank answered in {answered}")]
    CurrencyMismatch {
        payout: PayoutNo,
        instructed: crate::Currency,
        answered: crate::Currency,
    },
    #[error("paid amount must be positive, got {0}")]
    BadAmount(Money),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A difference between what was instructed and what the bank moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountDifference {
    pub instructed: Money,
    pub paid: Money,
}

impl AmountDifference {
    /// Positive: the bank paid more than instructed (the merchant owes us); negative: less.
    pub fn overpaid_by(&self) -> Money {
        Money::from_minor(
            self.paid.amount_minor() - self.instructed.amount_minor(),
            self.paid.currency(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: PayoutState,
    pub to: PayoutState,
    pub journal: Option<Journal>,
    /// Set when the bank paid: what it moved.
    pub paid: Option<Money>,
    pub difference: Option<AmountDifference>,
    /// The payout had expired: this result arrived after the deadline.
    pub late: bool,
    /// Presumed paid because a failures-only bank stayed silent.
    pub presumed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Changed(Transition),
    /// Nothing to do: a repeated result, a sign of life, or nothing due yet.
    Unchanged(&'static str),
}

/// The one transition function of a payout.
pub fn decide(
    payout: &PayoutFacts,
    event: &PayoutEvent,
    policy: &ChannelPolicy,
    as_of: DateTime<Utc>,
) -> Result<Decision, Refusal> {
    use PayoutState as S;
    let not_allowed = |action| Refusal::NotAllowed {
        payout: payout.payout_no.clone(),
        state: payout.state,
        action,
    };
    let conflict = |said: String| Refusal::Conflict {
        payout: payout.payout_no.clone(),
        state: payout.state,
        said,
    };
    match (payout.state, event) {
        (S::Pending, PayoutEvent::Submit) => {
            changed(payout, S::Submitted, submitted_journal(payout)?)
        }
        (_, PayoutEvent::Submit) => Err(not_allowed("be submitted")),
        (S::Pending, PayoutEvent::Cancel) => changed(payout, S::Cancelled, None),
        (_, PayoutEvent::Cancel) => Err(not_allowed("be cancelled")),

        (S::Submitted, PayoutEvent::Sweep) => {
            let submitted_at = payout.submitted_at.unwrap_or(as_of);
            if let Some(at) = policy.presumed_success_at(submitted_at) {
                if as_of >= at {
                    let mut t = succeed(payout, payout.amount)?;
                    t.presumed = true;
                    return Ok(Decision::Changed(t));
                }
            }
            if as_of >= policy.deadline_at(submitted_at) {
                return changed(payout, S::Expired, None);
            }
            Ok(Decision::Unchanged("within the bank's window"))
        }
        (_, PayoutEvent::Sweep) => Ok(Decision::Unchanged("nothing is due")),

        (S::Pending | S::Cancelled, PayoutEvent::Bank(_)) => Err(not_allowed(
            "take a bank result: it was never sent to a bank",
        )),

        (S::Submitted | S::Expired, PayoutEvent::Bank(result)) => {
            let late = payout.state == S::Expired;
            let mut t = match result {
                BankResult::Accepted { .. } => {
                    return Ok(Decision::Unchanged(
                        "the bank accepted it; waiting for the result",
                    ))
                }
                BankResult::Paid { amount, .. } => succeed(payout, *amount)?,
                BankResult::Rejected { .. } => failed(payout, S::Failed)?,
                BankResult::Returned { .. } => failed(payout, S::Returned)?,
            };
            t.late = late;
            Ok(Decision::Changed(t))
        }

        (S::Succeeded, PayoutEvent::Bank(result)) => match result {
            BankResult::Accepted { .. } => Ok(Decision::Unchanged("already paid")),
            BankResult::Paid { amount, .. } => {
                check_currency(payout, *amount)?;
                if Some(*amount) == payout.paid {
                    Ok(Decision::Unchanged("already paid with this amount"))
                } else {
                    Err(conflict(format!("paid {amount}")))
                }
            }
            BankResult::Returned { .. } => returned_after_success(payout),
            // A bank that reports only failures may tell us late that a presumed payment failed;
            // within the return window that is a return, after it a person must look.
            BankResult::Rejected { reason_code, .. } => {
                let within_window = payout
                    .succeeded_at
                    .is_some_and(|at| as_of <= at + policy.return_window);
                if policy.result_mode == ResultMode::FailuresOnly && within_window {
                    returned_after_success(payout)
                } else {
                    Err(conflict(format!("rejected ({reason_code})")))
                }
            }
        },

        (S::Failed, PayoutEvent::Bank(result)) => match result {
            BankResult::Rejected { .. } | BankResult::Returned { .. } => {
                Ok(Decision::Unchanged("already failed"))
            }
            BankResult::Accepted { .. } => Err(conflict("accepted".into())),
            BankResult::Paid { amount, .. } => Err(conflict(format!("paid {amount}"))),
        },
        (S::Returned, PayoutEvent::Bank(result)) => match result {
            BankResult::Returned { .. } | BankResult::Rejected { .. } => {
                Ok(Decision::Unchanged("already returned"))
            }
            BankResult::Accepted { .. } => Ok(Decision::Unchanged("already returned")),
            BankResult::Paid { amount, .. } => Err(conflict(format!("paid {amount}"))),
        },
    }
}

fn changed(
    payout: &PayoutFacts,
    to: PayoutState,
    journal: Option<Journal>,
) -> Result<Decision, Refusal> {
    Ok(Decision::Changed(Transition {
        from: payout.state,
        to,
        journal,
        paid: None,
        difference: None,
        late: false,
        presumed: false,
    }))
}

fn check_currency(payout: &PayoutFacts, amount: Money) -> Result<(), Refusal> {
    if amount.currency() != payout.amount.currency() {
        return Err(Refusal::CurrencyMismatch {
            payout: payout.payout_no.clone(),
            instructed: payout.amount.currency(),
            answered: amount.currency(),
        });
    }
    Ok(())
}

/// (where the money is reserved, in transit, the channel's bank account).
fn accounts(payout: &PayoutFacts) -> (LedgerAccount, LedgerAccount, LedgerAccount) {
    (
        match payout.funded_from {
            Funding::Order => LedgerAccount::MerchantWithdrawing(payout.merchant.clone()),
            Funding::Shortfall => LedgerAccount::MerchantShortfall(payout.merchant.clone()),
        },
        LedgerAccount::MerchantInTransit(payout.merchant.clone()),
        LedgerAccount::ChannelBank(payout.channel.clone()),
    )
}

fn submitted_journal(payout: &PayoutFacts) -> Result<Option<Journal>, Refusal> {
    let (withdrawing, in_transit, _) = accounts(payout);
    Ok(Some(Journal::transfer(
        JournalKind::PayoutSubmitted,
        withdrawing,
        in_transit,
        payout.amount,
    )?))
}

/// in_transit X → bank P; the difference to receivable (overpaid) or shortfall (underpaid).
pub(crate) fn succeed(payout: &PayoutFacts, paid: Money) -> Result<Transition, Refusal> {
    check_currency(payout, paid)?;
    if !paid.is_positive() {
        return Err(Refusal::BadAmount(paid));
    }
    let (_, in_transit, bank) = accounts(payout);
    let instructed = payout.amount;
    let difference = AmountDifference { instructed, paid };
    let over = difference.overpaid_by();
    let diff_account = if over.is_positive() {
        LedgerAccount::MerchantReceivable(payout.merchant.clone())
    } else {
        LedgerAccount::MerchantShortfall(payout.merchant.clone())
    };
    let journal = Journal::new(
        JournalKind::PayoutSucceeded,
        vec![
            Posting {
                account: in_transit,
                amount: instructed,
            },
            Posting {
                account: bank,
                amount: paid.checked_neg()?,
            },
            Posting {
                account: diff_account,
                amount: over,
            },
        ],
    )?;
    Ok(Transition {
        from: payout.state,
        to: PayoutState::Succeeded,
        journal: Some(journal),
        paid: Some(paid),
        difference: (!over.is_zero()).then_some(difference),
        late: false,
        presumed: false,
    })
}

/// in_transit → withdrawing: the money is reserved for the order again, for a new attempt.
pub(crate) fn failed(payout: &PayoutFacts, to: PayoutState) -> Result<Transition, Refusal> {
    let (withdrawing, in_transit, _) = accounts(payout);
    let kind = if to == PayoutState::Returned {
        JournalKind::PayoutReturned
    } else {
        JournalKind::PayoutFailed
    };
    Ok(Transition {
        from: payout.state,
        to,
        journal: Some(Journal::transfer(
            kind,
            in_transit,
            withdrawing,
            payout.amount,
        )?),
        paid: None,
        difference: None,
        late: false,
        presumed: false,
    })
}

/// The reverse of `succeed`: bank P back, withdrawing X restored, the difference closed.
pub(crate) fn returned_after_success(payout: &PayoutFacts) -> Result<Decision, Refusal> {
    let (withdrawing, _, bank) = accounts(payout);
    let paid = payout.paid.unwrap_or(payout.amount);
    let over = AmountDifference {
        instructed: payout.amount,
        paid,
    }
    .overpaid_by();
    let diff_account = if over.is_positive() {
        LedgerAccount::MerchantReceivable(payout.merchant.clone())
    } else {
        LedgerAccount::MerchantShortfall(payout.merchant.clone())
    };
    let journal = Journal::new(
        JournalKind::PayoutReturned,
        vec![
            Posting {
                account: bank,
                amount: paid,
            },
            Posting {
                account: withdrawing,
                amount: payout.amount.checked_neg()?,
            },
            Posting {
                account: diff_account,
                amount: over.checked_neg()?,
            },
        ],
    )?;
    Ok(Decision::Changed(Transition {
        from: payout.state,
        to: PayoutState::Returned,
        journal: Some(journal),
        paid: None,
        difference: None,
        late: false,
        presumed: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
    }

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Eur)
    }

    fn payout(state: PayoutState) -> PayoutFacts {
        PayoutFacts {
            payout_no: PayoutNo::from_sequence(1),
            merchant: MerchantId::parse("acme").unwrap(),
            channel: ChannelId::parse("sepa").unwrap(),
            state,
            amount: eur(25000),
            paid: (state == PayoutState::Succeeded).then_some(eur(25000)),
            submitted_at: Some(t0()),
            succeeded_at: (state == PayoutState::Succeeded).then_some(t0() + Duration::days(1)),
            funded_from: Funding::Order,
        }
    }

    fn paid(minor: i64) -> PayoutEvent {
        PayoutEvent::Bank(BankResult::Paid {
            amount: eur(minor),
            reference: Some("REF".into()),
            value_date: None,
        })
    }

    fn rejected() -> PayoutEvent {
        PayoutEvent::Bank(BankResult::Rejected {
            reason_code: "AC01".into(),
            reason_text: None,
        })
    }

    fn returned() -> PayoutEvent {
        PayoutEvent::Bank(BankResult::Returned {
            reason_code: "AC04".into(),
            reason_text: None,
        })
    }

    fn accepted() -> PayoutEvent {
        PayoutEvent::Bank(BankResult::Accepted { reference: None })
    }

    /// Expected: `Some(state)` for a transition, `None` for unchanged; `Err(())` for a refusal.
    fn check(state: PayoutState, event: PayoutEvent, expected: Result<Option<PayoutState>, ()>) {
        let got = decide(&payout(state), &event, &ChannelPolicy::standard(), t0());
        let got = match got {
            Ok(Decision::Changed(t)) => Ok(Some(t.to)),
            Ok(Decision::Unchanged(_)) => Ok(None),
            Err(_) => Err(()),
        };
        assert_eq!(got, expected, "{state} + {event:?}");
    }

    #[test]
    fn transition_table() {
        use PayoutState as S;
        check(S::Pending, PayoutEvent::Submit, Ok(Some(S::Submitted)));
        check(S::Submitted, PayoutEvent::Submit, Err(()));
        check(S::Pending, PayoutEvent::Cancel, Ok(Some(S::Cancelled)));
        check(S::Submitted, PayoutEvent::Cancel, Err(()));
        check(S::Pending, paid(25000), Err(()));
        check(S::Cancelled, paid(25000), Err(()));
        check(S::Submitted, accepted(), Ok(None));
        check(S::Submitted, paid(25000), Ok(Some(S::Succeeded)));
        check(S::Submitted, rejected(), Ok(Some(S::Failed)));
        check(S::Submitted, returned(), Ok(Some(S::Returned)));
        check(S::Expired, paid(25000), Ok(Some(S::Succeeded)));
        check(S::Expired, rejected(), Ok(Some(S::Failed)));
        check(S::Expired, accepted(), Ok(None));
        check(S::Succeeded, paid(25000), Ok(None));
        check(S::Succeeded, paid(24000), Err(()));
        check(S::Succeeded, rejected(), Err(()));
        check(S::Succeeded, returned(), Ok(Some(S::Returned)));
        check(S::Failed, rejected(), Ok(None));
        check(S::Failed, paid(25000), Err(()));
        check(S::Returned, returned(), Ok(None));
        check(S::Returned, paid(25000), Err(()));
    }

    #[test]
    fn every_transition_journal_balances_and_moves_the_instructed_amount() {
        use PayoutState as S;
        for state in S::ALL {
            for event in [
                PayoutEvent::Submit,
                paid(25000),
                paid(26000),
                paid(1),
                rejected(),
                returned(),
            ] {
                if let Ok(Decision::Changed(t)) =
                    decide(&payout(state), &event, &ChannelPolicy::standard(), t0())
                {
                    if let Some(j) = &t.journal {
                        crate::ledger::check_balanced("t", j.postings().iter().map(|p| p.amount))
                            .unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn underpayment_posts_the_shortfall_and_reports_the_difference() {
        let d = decide(
            &payout(PayoutState::Submitted),
            &paid(24000),
            &ChannelPolicy::standard(),
            t0(),
        )
        .unwrap();
        let Decision::Changed(t) = d else { panic!() };
        assert_eq!(t.difference.unwrap().overpaid_by(), eur(-1000));
        let shortfall = t
            .journal
            .unwrap()
            .postings()
            .iter()
            .find(|p| p.account.to_string() == "merchant:acme:shortfall")
            .unwrap()
            .amount;
        assert_eq!(shortfall, eur(-1000));
    }

    #[test]
    fn other_currency_is_refused() {
        let event = PayoutEvent::Bank(BankResult::Paid {
            amount: Money::from_minor(25000, Currency::Usd),
            reference: None,
            value_date: None,
        });
        let err = decide(
            &payout(PayoutState::Submitted),
            &event,
            &ChannelPolicy::standard(),
            t0(),
        )
        .unwrap_err();
        assert!(matches!(err, Refusal::CurrencyMismatch { .. }));
    }

    #[test]
    fn sweep_waits_within_the_window_and_expires_after_the_deadline() {
        let policy = ChannelPolicy::standard();
        let p = payout(PayoutState::Submitted);
        let before = t0() + Duration::days(10) - Duration::seconds(1);
        assert!(matches!(
            decide(&p, &PayoutEvent::Sweep, &policy, before),
            Ok(Decision::Unchanged(_))
        ));
        let Ok(Decision::Changed(t)) =
            decide(&p, &PayoutEvent::Sweep, &policy, t0() + Duration::days(10))
        else {
            panic!()
        };
        assert_eq!(t.to, PayoutState::Expired);
        assert!(t.journal.is_none(), "money stays in transit when expired");
    }

    #[test]
    fn failures_only_channel_presumes_success_then_takes_a_late_failure_as_return() {
        let policy = ChannelPolicy {
            result_mode: ResultMode::FailuresOnly,
            presume_success_after: Some(Duration::days(3)),
            ..ChannelPolicy::standard()
        };
        let p = payout(PayoutState::Submitted);
        let Ok(Decision::Changed(t)) =
            decide(&p, &PayoutEvent::Sweep, &policy, t0() + Duration::days(3))
        else {
            panic!()
        };
        assert_eq!(t.to, PayoutState::Succeeded);
        assert!(t.presumed);
        let succeeded = payout(PayoutState::Succeeded);
        let Ok(Decision::Changed(t)) =
            decide(&succeeded, &rejected(), &policy, t0() + Duration::days(5))
        else {
            panic!()
        };
        assert_eq!(t.to, PayoutState::Returned);
        assert!(decide(&succeeded, &rejected(), &policy, t0() + Duration::days(90)).is_err());
    }

    #[test]
    fn late_results_are_marked_late() {
        let Ok(Decision::Changed(t)) = decide(
            &payout(PayoutState::Expired),
            &paid(25000),
            &ChannelPolicy::standard(),
            t0(),
        ) else {
            panic!()
        };
        assert!(t.late);
    }
}
