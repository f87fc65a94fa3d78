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

/// How we know what a succeeded payout paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidBasis {
    /// The bank booked it (camt.054/053, a CSV amount column) or a person confirmed it: what the
    /// bank moved. A different booked amount later is a conflict for a person.
    Booked,
    /// Taken as paid in full without a booking: a pain.002 ACSC (a status, whose amount only
    /// echoes the instruction), or a failures-only bank's silence. A booking later decides.
    Assumed,
}

impl PaidBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PaidBasis::Booked => "booked",
            PaidBasis::Assumed => "assumed",
        }
    }

    pub fn parse(s: &str) -> Result<PaidBasis, String> {
        match s {
            "booked" => Ok(PaidBasis::Booked),
            "assumed" => Ok(PaidBasis::Assumed),
            _ => Err(format!("unknown paid basis {s:?}")),
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
    /// How `paid` is known; `None` (recorded before bases were kept) counts as booked.
    pub paid_basis: Option<PaidBasis>,
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
        /// What the bank moved, when it says (a booking). `None`: a status without a booking
        /// (pain.002 ACSC), taken as paid in full until a booking says otherwise.
        amount: Option<Money>,
        /// The instructed amount as the bank echoes it; must be ours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instructed: Option<Money>,
        reference: Option<String>,
        value_date: Option<NaiveDate>,
    },
    Rejected {
        reason_code: String,
        reason_text: Option<String>,
        /// The instructed amount as the bank echoes it; must be ours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instructed: Option<Money>,
    },
    /// Paid, then sent back by the beneficiary's bank.
    Returned {
        reason_code: String,
        reason_text: Option<String>,
        /// What came back; less than was paid is a partial return. `None`: all of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Money>,
    },
}

impl BankResult {
    /// A booked payment of `amount`.
    pub fn booked(amount: Money, reference: Option<String>) -> BankResult {
        BankResult::Paid {
            amount: Some(amount),
            instructed: None,
            reference,
            value_date: None,
        }
    }

    /// A rejection with its reason code.
    pub fn rejected(reason_code: &str) -> BankResult {
        BankResult::Rejected {
            reason_code: reason_code.to_string(),
            reason_text: None,
            instructed: None,
        }
    }

    /// A return of everything paid.
    pub fn returned(reason_code: &str) -> BankResult {
        BankResult::Returned {
            reason_code: reason_code.to_string(),
            reason_text: None,
            amount: None,
        }
    }

    fn amounts(&self) -> impl Iterator<Item = Money> {
        let (a, b) = match self {
            BankResult::Accepted { .. } => (None, None),
            BankResult::Paid {
                amount, instructed, ..
            } => (*amount, *instructed),
            BankResult::Rejected { instructed, .. } => (None, *instructed),
            BankResult::Returned { amount, .. } => (*amount, None),
        };
        a.into_iter().chain(b)
    }

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
    /// The answer is not about this payout as we sent it (another amount instructed, a return of
    /// more than was paid, another channel or batch): raised for a person, never applied.
    #[error("payout {payout}: {what}")]
    Contradiction { payout: PayoutNo, what: String },
    /// An amount beyond the channel's bound of the instructed amount: not believed.
    #[error("payout {payout} was instructed {instructed}; {amount} is more than {multiple} times that and is not believed")]
    OutOfBounds {
        payout: PayoutNo,
        instructed: Money,
        amount: Money,
        multiple: u32,
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
    /// How `paid` is known, when this transition sets or confirms it.
    pub paid_basis: Option<PaidBasis>,
    /// Set when a succeeded payout is booked again at another amount: what was recorded before.
    /// `difference` then holds the change (was → now), not the difference to the instruction.
    pub rebooked_from: Option<Money>,
    /// A partial return: what came back (the payout stays succeeded at what remains).
    pub partial_return: Option<Money>,
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
                    t.paid_basis = Some(PaidBasis::Assumed);
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
        (_, PayoutEvent::Bank(result)) if check_answer(payout, result, policy).is_err() => {
            Err(check_answer(payout, result, policy).expect_err("checked in the guard"))
        }

        (S::Submitted | S::Expired, PayoutEvent::Bank(result)) => {
            let late = payout.state == S::Expired;
            let mut t = match result {
                BankResult::Accepted { .. } => {
                    return Ok(Decision::Unchanged(
                        "the bank accepted it; waiting for the result",
                    ))
                }
                BankResult::Paid { amount, .. } => {
                    let mut t = succeed(payout, amount.unwrap_or(payout.amount))?;
                    t.paid_basis = Some(if amount.is_some() {
                        PaidBasis::Booked
                    } else {
                        PaidBasis::Assumed
                    });
                    t
                }
                BankResult::Rejected { .. } => failed(payout, S::Failed)?,
                // A return of part of it before we saw the debit: paid, less what came back.
                BankResult::Returned {
                    amount: Some(back), ..
                } if *back != payout.amount => {
                    let mut t = succeed(payout, payout.amount.checked_sub(*back)?)?;
                    t.paid_basis = Some(PaidBasis::Booked);
                    t.partial_return = Some(*back);
                    t
                }
                BankResult::Returned { .. } => failed(payout, S::Returned)?,
            };
            t.late = late;
            Ok(Decision::Changed(t))
        }

        (S::Succeeded, PayoutEvent::Bank(result)) => match result {
            BankResult::Accepted { .. } => Ok(Decision::Unchanged("already paid")),
            BankResult::Paid { amount: None, .. } => Ok(Decision::Unchanged("already paid")),
            BankResult::Paid {
                amount: Some(amount),
                ..
            } => {
                let recorded = payout.paid.unwrap_or(payout.amount);
                let assumed = payout.paid_basis == Some(PaidBasis::Assumed);
                match (assumed, *amount == recorded) {
                    (false, true) => Ok(Decision::Unchanged("already paid with this amount")),
                    (false, false) => Err(conflict(format!("paid {amount}"))),
                    // The booking confirms what was assumed: only how we know it changes.
                    (true, true) => Ok(Decision::Changed(Transition {
                        paid: Some(recorded),
                        paid_basis: Some(PaidBasis::Booked),
                        ..unchanged_state(payout)
                    })),
                    // The booked amount decides (DESIGN §8.1).
                    (true, false) => {
                        let mut t = rebook(payout, *amount)?;
                        t.paid_basis = Some(PaidBasis::Booked);
                        Ok(Decision::Changed(t))
                    }
                }
            }
            BankResult::Returned {
                amount: Some(back), ..
            } if *back != payout.paid.unwrap_or(payout.amount) => {
                let recorded = payout.paid.unwrap_or(payout.amount);
                let mut t = rebook(payout, recorded.checked_sub(*back)?)?;
                t.partial_return = Some(*back);
                t.paid_basis = payout.paid_basis;
                Ok(Decision::Changed(t))
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
            BankResult::Paid { amount, .. } => Err(conflict(paid_words(*amount))),
        },
        (S::Returned, PayoutEvent::Bank(result)) => match result {
            BankResult::Returned { .. } | BankResult::Rejected { .. } => {
                Ok(Decision::Unchanged("already returned"))
            }
            BankResult::Accepted { .. } => Ok(Decision::Unchanged("already returned")),
            BankResult::Paid { amount, .. } => Err(conflict(paid_words(*amount))),
        },
    }
}

fn paid_words(amount: Option<Money>) -> String {
    match amount {
        Some(amount) => format!("paid {amount}"),
        None => "paid".to_string(),
    }
}

fn changed(
    payout: &PayoutFacts,
    to: PayoutState,
    journal: Option<Journal>,
) -> Result<Decision, Refusal> {
    Ok(Decision::Changed(Transition {
        to,
        journal,
        ..unchanged_state(payout)
    }))
}

/// A transition that keeps the state and records nothing: the base the others fill in.
fn unchanged_state(payout: &PayoutFacts) -> Transition {
    Transition {
        from: payout.state,
        to: payout.state,
        journal: None,
        paid: None,
        difference: None,
        late: false,
        presumed: false,
        paid_basis: None,
        rebooked_from: None,
        partial_return: None,
    }
}

/// Is this answer about our payout as we sent it, and believable? Currency, the echoed instructed
/// amount, the bound on a booked amount, and a return of no more than was paid.
fn check_answer(
    payout: &PayoutFacts,
    result: &BankResult,
    policy: &ChannelPolicy,
) -> Result<(), Refusal> {
    for amount in result.amounts() {
        check_currency(payout, amount)?;
    }
    let contradiction = |what: String| Refusal::Contradiction {
        payout: payout.payout_no.clone(),
        what,
    };
    let instructed = match result {
        BankResult::Paid { instructed, .. } | BankResult::Rejected { instructed, .. } => {
            *instructed
        }
        _ => None,
    };
    if let Some(echoed) = instructed {
        if echoed != payout.amount {
            return Err(contradiction(format!(
                "the bank answers for an instruction of {echoed}, but we instructed {}",
                payout.amount
            )));
        }
    }
    match result {
        BankResult::Paid {
            amount: Some(amount),
            ..
        } => {
            if !amount.is_positive() {
                return Err(Refusal::BadAmount(*amount));
            }
            if amount.amount_minor() > policy.answer_bound_minor(payout.amount.amount_minor()) {
                return Err(Refusal::OutOfBounds {
                    payout: payout.payout_no.clone(),
                    instructed: payout.amount,
                    amount: *amount,
                    multiple: policy.answer_bound_multiple,
                });
            }
        }
        BankResult::Returned {
            amount: Some(back), ..
        } => {
            if !back.is_positive() {
                return Err(Refusal::BadAmount(*back));
            }
            let paid = payout.paid.unwrap_or(payout.amount);
            if back.amount_minor() > paid.amount_minor() {
                return Err(contradiction(format!(
                    "the bank returns {back}, more than the {paid} paid"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A succeeded payout booked again at `now` paid: the difference from what was recorded, as one
/// journal (bank account and the merchant's receivable or shortfall); the state stays succeeded.
fn rebook(payout: &PayoutFacts, now: Money) -> Result<Transition, Refusal> {
    let was = payout.paid.unwrap_or(payout.amount);
    let before = succeed(payout, was)?
        .journal
        .expect("success has a journal");
    let after = succeed(payout, now)?;
    let journal = Journal::difference(
        JournalKind::PayoutRebooked,
        &before,
        after.journal.as_ref().expect("success has a journal"),
    )?;
    Ok(Transition {
        journal: Some(journal),
        paid: Some(now),
        difference: Some(AmountDifference {
            instructed: was,
            paid: now,
        }),
        rebooked_from: Some(was),
        ..unchanged_state(payout)
    })
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
        to: PayoutState::Succeeded,
        journal: Some(journal),
        paid: Some(paid),
        difference: (!over.is_zero()).then_some(difference),
        ..unchanged_state(payout)
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
        to,
        journal: Some(Journal::transfer(
            kind,
            in_transit,
            withdrawing,
            payout.amount,
        )?),
        ..unchanged_state(payout)
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
        to: PayoutState::Returned,
        journal: Some(journal),
        ..unchanged_state(payout)
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
            paid_basis: (state == PayoutState::Succeeded).then_some(PaidBasis::Booked),
            submitted_at: Some(t0()),
            succeeded_at: (state == PayoutState::Succeeded).then_some(t0() + Duration::days(1)),
            funded_from: Funding::Order,
        }
    }

    fn paid(minor: i64) -> PayoutEvent {
        PayoutEvent::Bank(BankResult::booked(eur(minor), Some("REF".into())))
    }

    fn rejected() -> PayoutEvent {
        PayoutEvent::Bank(BankResult::rejected("AC01"))
    }

    fn returned() -> PayoutEvent {
        PayoutEvent::Bank(BankResult::returned("AC04"))
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
        let event = PayoutEvent::Bank(BankResult::booked(
            Money::from_minor(25000, Currency::Usd),
            None,
        ));
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

    fn status_paid(instructed: Option<i64>) -> PayoutEvent {
        PayoutEvent::Bank(BankResult::Paid {
            amount: None,
            instructed: instructed.map(eur),
            reference: Some("BANKREF1".into()),
            value_date: None,
        })
    }

    fn apply(p: &PayoutFacts, e: &PayoutEvent) -> Result<Decision, Refusal> {
        decide(p, e, &ChannelPolicy::standard(), t0())
    }

    /// What a decided transition leaves recorded: the next facts.
    fn after(p: &PayoutFacts, t: &Transition) -> PayoutFacts {
        PayoutFacts {
            state: t.to,
            paid: t.paid.or(p.paid),
            paid_basis: t.paid_basis.or(p.paid_basis),
            ..p.clone()
        }
    }

    fn net(journals: &[&Journal]) -> std::collections::BTreeMap<String, i64> {
        let mut net = std::collections::BTreeMap::new();
        for j in journals {
            for p in j.postings() {
                *net.entry(p.account.to_string()).or_default() += p.amount.amount_minor();
            }
        }
        net.retain(|_, v| *v != 0);
        net
    }

    #[test]
    fn the_booked_amount_decides_in_either_order() {
        // pain.002 ACSC echoing 250.00, then camt.054 booking 249.50.
        let submitted = payout(PayoutState::Submitted);
        let Ok(Decision::Changed(acsc)) = apply(&submitted, &status_paid(Some(25000))) else {
            panic!("ACSC pays")
        };
        assert_eq!(acsc.paid_basis, Some(PaidBasis::Assumed));
        assert_eq!(acsc.paid, Some(eur(25000)));
        let assumed = after(&submitted, &acsc);
        let Ok(Decision::Changed(booking)) = apply(&assumed, &paid(24950)) else {
            panic!("the booking rebooks")
        };
        assert_eq!(booking.to, PayoutState::Succeeded);
        assert_eq!(booking.paid, Some(eur(24950)));
        assert_eq!(booking.rebooked_from, Some(eur(25000)));
        assert_eq!(booking.difference.as_ref().unwrap().overpaid_by(), eur(-50));
        let one_way = net(&[
            acsc.journal.as_ref().unwrap(),
            booking.journal.as_ref().unwrap(),
        ]);

        // camt.054 first, then the ACSC: the ACSC changes nothing.
        let Ok(Decision::Changed(booked_first)) = apply(&submitted, &paid(24950)) else {
            panic!()
        };
        assert_eq!(booked_first.paid_basis, Some(PaidBasis::Booked));
        let booked = after(&submitted, &booked_first);
        assert!(matches!(
            apply(&booked, &status_paid(Some(25000))),
            Ok(Decision::Unchanged(_))
        ));
        let other_way = net(&[booked_first.journal.as_ref().unwrap()]);
        assert_eq!(one_way, other_way, "both orders end in the same books");
        assert_eq!(other_way["channel:sepa:bank"], -24950);
        assert_eq!(other_way["merchant:acme:shortfall"], -50);

        // A second, different booking of a booked payout is a conflict.
        let rebooked = after(&assumed, &booking);
        assert!(matches!(
            apply(&rebooked, &paid(24000)),
            Err(Refusal::Conflict { .. })
        ));
        // The same booking again changes nothing.
        assert!(matches!(
            apply(&rebooked, &paid(24950)),
            Ok(Decision::Unchanged(_))
        ));
    }

    #[test]
    fn answers_that_contradict_the_payout_are_refused() {
        let submitted = payout(PayoutState::Submitted);
        let usd_reject = PayoutEvent::Bank(BankResult::Rejected {
            reason_code: "AC01".into(),
            reason_text: None,
            instructed: Some(Money::from_minor(99900, Currency::Usd)),
        });
        assert!(matches!(
            apply(&submitted, &usd_reject),
            Err(Refusal::CurrencyMismatch { .. })
        ));
        let other_amount = PayoutEvent::Bank(BankResult::Rejected {
            reason_code: "AC01".into(),
            reason_text: None,
            instructed: Some(eur(99900)),
        });
        assert!(matches!(
            apply(&submitted, &other_amount),
            Err(Refusal::Contradiction { .. })
        ));
        assert!(matches!(
            apply(&submitted, &status_paid(Some(1))),
            Err(Refusal::Contradiction { .. })
        ));
        let usd_return = PayoutEvent::Bank(BankResult::Returned {
            reason_code: "AC04".into(),
            reason_text: None,
            amount: Some(Money::from_minor(500, Currency::Usd)),
        });
        assert!(matches!(
            apply(&payout(PayoutState::Succeeded), &usd_return),
            Err(Refusal::CurrencyMismatch { .. })
        ));
        let too_much_back = PayoutEvent::Bank(BankResult::Returned {
            reason_code: "AC04".into(),
            reason_text: None,
            amount: Some(eur(25001)),
        });
        assert!(matches!(
            apply(&payout(PayoutState::Succeeded), &too_much_back),
            Err(Refusal::Contradiction { .. })
        ));
    }

    #[test]
    fn booked_amounts_beyond_the_bound_are_not_believed() {
        let submitted = payout(PayoutState::Submitted);
        assert!(matches!(
            apply(&submitted, &paid(50000)),
            Ok(Decision::Changed(_))
        ));
        assert!(matches!(
            apply(&submitted, &paid(50001)),
            Err(Refusal::OutOfBounds { multiple: 2, .. })
        ));
        assert!(matches!(
            apply(&submitted, &paid(i64::MAX)),
            Err(Refusal::OutOfBounds { .. })
        ));
        let strict = ChannelPolicy {
            answer_bound_multiple: 1,
            ..ChannelPolicy::standard()
        };
        assert!(decide(&submitted, &paid(25001), &strict, t0()).is_err());
    }

    #[test]
    fn a_partial_return_keeps_the_payout_paid_at_what_remains() {
        let succeeded = payout(PayoutState::Succeeded);
        let back = PayoutEvent::Bank(BankResult::Returned {
            reason_code: "AC04".into(),
            reason_text: None,
            amount: Some(eur(5000)),
        });
        let Ok(Decision::Changed(t)) = apply(&succeeded, &back) else {
            panic!()
        };
        assert_eq!(t.to, PayoutState::Succeeded);
        assert_eq!(t.paid, Some(eur(20000)));
        assert_eq!(t.partial_return, Some(eur(5000)));
        assert_eq!(t.difference.as_ref().unwrap().overpaid_by(), eur(-5000));
        let n = net(&[t.journal.as_ref().unwrap()]);
        assert_eq!(
            n["channel:sepa:bank"], 5000,
            "the money came back to our account"
        );
        assert_eq!(
            n["merchant:acme:shortfall"], -5000,
            "we owe it to the merchant"
        );
        // All of it back is an ordinary return.
        let all = PayoutEvent::Bank(BankResult::Returned {
            reason_code: "AC04".into(),
            reason_text: None,
            amount: Some(eur(25000)),
        });
        let Ok(Decision::Changed(t)) = apply(&succeeded, &all) else {
            panic!()
        };
        assert_eq!(t.to, PayoutState::Returned);
    }

    proptest::proptest! {
        /// From the bank's side: whatever order the bank's messages come in (a status report
        /// that only echoes the instruction, a booking of what it moved, a partial return), the
        /// books end at what the bank moved: our bank account down by booked − returned, and the
        /// merchant owed (or owing) exactly the difference to the instruction.
        #[test]
        fn the_books_follow_what_the_bank_moved(
            instructed in 1i64..10_000_000,
            booked_permille in 1i64..=2000,
            status_first in proptest::bool::ANY,
            echo_status_again in proptest::bool::ANY,
            returned_permille in 0i64..1000,
        ) {
            let booked = (instructed * booked_permille / 1000).max(1);
            let returned = booked * returned_permille / 1000;
            let mut p = PayoutFacts {
                amount: eur(instructed),
                ..payout(PayoutState::Submitted)
            };
            let status = status_paid(Some(instructed));
            let booking = paid(booked);
            let mut events = if status_first {
                vec![status.clone(), booking]
            } else {
                vec![booking, status.clone()]
            };
            if echo_status_again {
                events.push(status);
            }
            if returned > 0 {
                events.push(PayoutEvent::Bank(BankResult::Returned {
                    reason_code: "AC04".into(),
                    reason_text: None,
                    amount: Some(eur(returned)),
                }));
            }
            let mut journals = Vec::new();
            for e in &events {
                match apply(&p, e) {
                    Ok(Decision::Changed(t)) => {
                        journals.extend(t.journal.clone());
                        p = after(&p, &t);
                    }
                    Ok(Decision::Unchanged(_)) => {}
                    Err(r) => proptest::prop_assert!(false, "{e:?} refused: {r}"),
                }
            }
            let refs: Vec<&Journal> = journals.iter().collect();
            let n = net(&refs);
            let moved = booked - returned;
            let bank = n.get("channel:sepa:bank").copied().unwrap_or(0);
            proptest::prop_assert_eq!(bank, -moved);
            let owed = n.get("merchant:acme:shortfall").copied().unwrap_or(0)
                + n.get("merchant:acme:receivable").copied().unwrap_or(0);
            proptest::prop_assert_eq!(owed, moved - instructed);
            proptest::prop_assert_eq!(n.get("merchant:acme:in_transit").copied().unwrap_or(0), instructed);
            if returned == booked {
                proptest::prop_assert_eq!(p.state, PayoutState::Returned);
            } else {
                proptest::prop_assert_eq!(p.state, PayoutState::Succeeded);
                proptest::prop_assert_eq!(p.paid, Some(eur(moved)));
            }
        }
    }
}
