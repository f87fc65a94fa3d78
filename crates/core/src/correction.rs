//! Corrections: the only way to change a final or expired payout. A correction never edits what
//! was recorded; it reverses the journal that was wrong and restates what should have been, as
//! new journals. Who may propose and approve, and that the two differ, is decided here too.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ledger::{Journal, JournalKind, LedgerAccount};
use crate::money::Money;
use crate::payout::{self, AmountDifference, PayoutFacts, PayoutState, Refusal};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?} (viewer, operator, approver, admin)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// "a viewer", "an operator": for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Viewer => "a viewer",
            Role::Operator => "an operator",
            Role::Approver => "an approver",
            Role::Admin => "an admin",
        }
    }

    /// Makers: operators, approvers and admins may propose.
    pub fn may_propose(self) -> bool {
        self >= Role::Operator
    }

    /// Checkers: approvers and admins may approve or reject.
    pub fn may_approve(self) -> bool {
        self >= Role::Approver
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionRefusal {
    #[error("{who} is {role}; only operators, approvers and admins may {action}")]
    MayNotPropose {
        who: String,
        role: &'static str,
        action: &'static str,
    },
    #[error("{who} is {role}; only approvers and admins may {action}")]
    MayNotApprove {
        who: String,
        role: &'static str,
        action: &'static str,
    },
    #[error("{who} proposed this correction; a different person must approve it")]
    OwnProposal { who: String },
}

pub fn check_may_propose(
    who: &str,
    role: Role,
    action: &'static str,
) -> Result<(), PermissionRefusal> {
    if role.may_propose() {
        Ok(())
    } else {
        Err(PermissionRefusal::MayNotPropose {
            who: who.to_string(),
            role: role.with_article(),
            action,
        })
    }
}

/// Maker-checker: an approver, and not the maker.
pub fn check_may_decide(
    who: &str,
    role: Role,
    proposed_by: &str,
    action: &'static str,
) -> Result<(), PermissionRefusal> {
    if !role.may_approve() {
        return Err(PermissionRefusal::MayNotApprove {
            who: who.to_string(),
            role: role.with_article(),
            action,
        });
    }
    if who == proposed_by {
        return Err(PermissionRefusal::OwnProposal {
            who: who.to_string(),
        });
    }
    Ok(())
}

/// What a correction says should have been recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CorrectionKind {
    /// The bank did pay (an expired payout, or one marked failed by mistake).
    ConfirmSucceeded {
        paid: Money,
        bank_reference: String,
        value_date: Option<NaiveDate>,
    },
    /// The bank did not pay (an expired payout, or one marked succeeded by mistake).
    ConfirmFailed { reason_code: String },
    /// The bank paid another amount than recorded.
    AmendPaidAmount { paid: Money },
    /// The money came back after it was paid.
    RecordReturn { reason_code: String },
    /// Cancel the payout's order: its reserved money goes back to the merchant's balance. Decided
    /// at the order's level (see `order::cancel`), not by [`decide`].
    CancelOrder,
}

impl CorrectionKind {
    pub fn name(&self) -> &'static str {
        match self {
            CorrectionKind::ConfirmSucceeded { .. } => "confirm_succeeded",
            CorrectionKind::ConfirmFailed { .. } => "confirm_failed",
            CorrectionKind::AmendPaidAmount { .. } => "amend_paid_amount",
            CorrectionKind::RecordReturn { .. } => "record_return",
            CorrectionKind::CancelOrder => "cancel_order",
        }
    }
}

/// The order's other payouts, as far as a correction must know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtherPayouts {
    /// Another payout of the order is live: its money may still move.
    pub live: bool,
    /// Another payout of the order succeeded: confirming this one means it was paid twice.
    pub succeeded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionDecision {
    pub to: PayoutState,
    /// In order: reversals of what was wrong, then restatements of what is right.
    pub journals: Vec<Journal>,
    pub paid: Option<Money>,
    pub difference: Option<AmountDifference>,
    /// The order was paid twice: the merchant owes this back.
    pub duplicate: Option<Money>,
}

/// Decides a correction under the channel's bound on believable amounts (the same rule as bank
/// results: a paid amount beyond `answer_bound_multiple` times the instruction is refused).
pub fn decide_within(
    payout: &PayoutFacts,
    kind: &CorrectionKind,
    others: OtherPayouts,
    policy: &crate::policy::ChannelPolicy,
) -> Result<CorrectionDecision, Refusal> {
    if let CorrectionKind::ConfirmSucceeded { paid, .. }
    | CorrectionKind::AmendPaidAmount { paid } = kind
    {
        if paid.amount_minor() > policy.answer_bound_minor(payout.amount.amount_minor()) {
            return Err(Refusal::OutOfBounds {
                payout: payout.payout_no.clone(),
                instructed: payout.amount,
                amount: *paid,
                multiple: policy.answer_bound_multiple,
            });
        }
    }
    decide(payout, kind, others)
}

/// Decides a correction. Pure: what to record, or why it cannot be.
pub fn decide(
    payout: &PayoutFacts,
    kind: &CorrectionKind,
    others: OtherPayouts,
) -> Result<CorrectionDecision, Refusal> {
    use PayoutState as S;
    let not_allowed = |action| Refusal::NotAllowed {
        payout: payout.payout_no.clone(),
        state: payout.state,
        action,
    };
    let reversed_success = || -> Result<Journal, Refusal> {
        let paid = payout.paid.unwrap_or(payout.amount);
        let original = payout::succeed(payout, paid)?;
        Ok(original
            .journal
            .expect("success always has a journal")
            .reversed(JournalKind::CorrectionReversal)?)
    };
    let restated = |t: payout::Transition| -> Journal {
        t.journal
            .expect("success and failure always have a journal")
            .renamed(JournalKind::CorrectionRestatement)
    };
    match (payout.state, kind) {
        (S::Expired | S::Failed, CorrectionKind::ConfirmSucceeded { paid, .. }) => {
            if others.live {
                return Err(not_allowed(
                    "be confirmed paid while another payout of its order is live; settle that one first",
                ));
            }
            let mut journals = Vec::new();
            if payout.state == S::Failed {
                // The failure moved the money back to the reservation; undo that first.
                let failure = payout::failed(payout, S::Failed)?;
                journals.push(
                    failure
                        .journal
                        .expect("failure has a journal")
                        .reversed(JournalKind::CorrectionReversal)?,
                );
            }
            let success = payout::succeed(payout, *paid)?;
            let difference = success.difference.clone();
            journals.push(restated(success));
            let mut duplicate = None;
            if payout.state == S::Failed && others.succeeded {
                // The reservation was already spent by the other payout: what this one paid is
                // now owed to us by the merchant.
                journals.push(Journal::transfer(
                    JournalKind::DuplicatePayment,
                    LedgerAccount::MerchantReceivable(payout.merchant.clone()),
                    reserve_account(payout),
                    payout.amount,
                )?);
                duplicate = Some(payout.amount);
            }
            Ok(CorrectionDecision {
                to: S::Succeeded,
                journals,
                paid: Some(*paid),
                difference,
                duplicate,
            })
        }
        (S::Expired, CorrectionKind::ConfirmFailed { .. }) => {
            let failure = payout::failed(payout, S::Failed)?;
            Ok(CorrectionDecision {
                to: S::Failed,
                journals: vec![restated(failure)],
                paid: None,
                difference: None,
                duplicate: None,
            })
        }
        (S::Succeeded, CorrectionKind::ConfirmFailed { .. }) => {
            let failure = payout::failed(payout, S::Failed)?;
            Ok(CorrectionDecision {
                to: S::Failed,
                journals: vec![reversed_success()?, restated(failure)],
                paid: None,
                difference: None,
                duplicate: None,
            })
        }
        (S::Succeeded, CorrectionKind::AmendPaidAmount { paid }) => {
            if Some(*paid) == payout.paid {
                return Err(not_allowed("be amended to the amount it already has"));
            }
            let success = payout::succeed(payout, *paid)?;
            let difference = success.difference.clone();
            Ok(CorrectionDecision {
                to: S::Succeeded,
                journals: vec![reversed_success()?, restated(success)],
                paid: Some(*paid),
                difference,
                duplicate: None,
            })
        }
        (S::Succeeded, CorrectionKind::RecordReturn { .. }) => {
            let payout::Decision::Changed(t) = payout::returned_after_success(payout)? else {
                unreachable!("a return after success always changes the payout")
            };
            Ok(CorrectionDecision {
                to: S::Returned,
                journals: vec![t.journal.expect("a return has a journal")],
                paid: None,
                difference: None,
                duplicate: None,
            })
        }
        (_, kind) => Err(not_allowed(match kind {
            CorrectionKind::ConfirmSucceeded { .. } => {
                "be confirmed paid by a correction (only expired or failed payouts can)"
            }
            CorrectionKind::ConfirmFailed { .. } => {
                "be confirmed failed by a correction (only expired or succeeded payouts can)"
            }
            CorrectionKind::AmendPaidAmount { .. } => {
                "have its paid amount amended (only succeeded payouts can)"
            }
            CorrectionKind::RecordReturn { .. } => {
                "be recorded as returned (only succeeded payouts can)"
            }
            CorrectionKind::CancelOrder => "decide an order's cancellation (the order does)",
        })),
    }
}

fn reserve_account(payout: &PayoutFacts) -> LedgerAccount {
    match payout.funded_from {
        payout::Funding::Order => LedgerAccount::MerchantWithdrawing(payout.merchant.clone()),
        payout::Funding::Shortfall => LedgerAccount::MerchantShortfall(payout.merchant.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChannelId, MerchantId, PayoutNo};
    use crate::ledger::check_balanced;
    use crate::payout::Funding;
    use crate::Currency;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Eur)
    }

    fn payout(state: PayoutState, paid: Option<i64>) -> PayoutFacts {
        PayoutFacts {
            payout_no: PayoutNo::from_sequence(1),
            merchant: MerchantId::parse("acme").unwrap(),
            channel: ChannelId::parse("sepa").unwrap(),
            state,
            amount: eur(10000),
            paid: paid.map(eur),
            paid_basis: paid.map(|_| crate::payout::PaidBasis::Booked),
            submitted_at: None,
            succeeded_at: None,
            funded_from: Funding::Order,
        }
    }

    /// Net effect of a decision per account, to compare with what should have been recorded.
    fn net(d: &CorrectionDecision) -> std::collections::BTreeMap<String, i64> {
        let mut m = std::collections::BTreeMap::new();
        for j in &d.journals {
            check_balanced("t", j.postings().iter().map(|p| p.amount)).unwrap();
            for p in j.postings() {
                *m.entry(p.account.to_string()).or_insert(0) += p.amount.amount_minor();
            }
        }
        m.retain(|_, v| *v != 0);
        m
    }

    fn confirm_paid(minor: i64) -> CorrectionKind {
        CorrectionKind::ConfirmSucceeded {
            paid: eur(minor),
            bank_reference: "REF".into(),
            value_date: None,
        }
    }

    #[test]
    fn failed_by_mistake_is_reversed_and_restated_as_paid() {
        let d = decide(
            &payout(PayoutState::Failed, None),
            &confirm_paid(10000),
            OtherPayouts::default(),
        )
        .unwrap();
        assert_eq!(d.to, PayoutState::Succeeded);
        let kinds: Vec<_> = d.journals.iter().map(|j| j.kind()).collect();
        assert_eq!(
            kinds,
            [
                JournalKind::CorrectionReversal,
                JournalKind::CorrectionRestatement
            ]
        );
        // Net: the reservation is spent and the bank paid, as if it had succeeded at once.
        let expected: std::collections::BTreeMap<String, i64> = [
            ("merchant:acme:withdrawing".to_string(), 10000),
            ("channel:sepa:bank".to_string(), -10000),
        ]
        .into();
        assert_eq!(net(&d), expected);
    }

    #[test]
    fn paid_twice_opens_a_receivable_for_the_second_payment() {
        let d = decide(
            &payout(PayoutState::Failed, None),
            &confirm_paid(10000),
            OtherPayouts {
                live: false,
                succeeded: true,
            },
        )
        .unwrap();
        assert_eq!(d.duplicate, Some(eur(10000)));
        let expected: std::collections::BTreeMap<String, i64> = [
            ("merchant:acme:receivable".to_string(), 10000),
            ("channel:sepa:bank".to_string(), -10000),
        ]
        .into();
        assert_eq!(net(&d), expected);
    }

    #[test]
    fn corrections_are_refused_where_they_would_pay_twice_or_make_no_sense() {
        let live = OtherPayouts {
            live: true,
            succeeded: false,
        };
        assert!(decide(
            &payout(PayoutState::Failed, None),
            &confirm_paid(10000),
            live
        )
        .is_err());
        assert!(decide(
            &payout(PayoutState::Submitted, None),
            &confirm_paid(10000),
            OtherPayouts::default()
        )
        .is_err());
        assert!(decide(
            &payout(PayoutState::Succeeded, Some(10000)),
            &confirm_paid(10000),
            OtherPayouts::default()
        )
        .is_err());
        assert!(decide(
            &payout(PayoutState::Succeeded, Some(10000)),
            &CorrectionKind::AmendPaidAmount { paid: eur(10000) },
            OtherPayouts::default()
        )
        .is_err());
        assert!(decide(
            &payout(PayoutState::Failed, None),
            &CorrectionKind::RecordReturn {
                reason_code: "AC04".into()
            },
            OtherPayouts::default()
        )
        .is_err());
    }

    #[test]
    fn amend_and_confirm_failed_net_to_the_truth() {
        let d = decide(
            &payout(PayoutState::Succeeded, Some(10000)),
            &CorrectionKind::AmendPaidAmount { paid: eur(9000) },
            OtherPayouts::default(),
        )
        .unwrap();
        let expected: std::collections::BTreeMap<String, i64> = [
            ("channel:sepa:bank".to_string(), 1000),
            ("merchant:acme:shortfall".to_string(), -1000),
        ]
        .into();
        assert_eq!(net(&d), expected);
        let d = decide(
            &payout(PayoutState::Succeeded, Some(10000)),
            &CorrectionKind::ConfirmFailed {
                reason_code: "AC01".into(),
            },
            OtherPayouts::default(),
        )
        .unwrap();
        let expected: std::collections::BTreeMap<String, i64> = [
            ("channel:sepa:bank".to_string(), 10000),
            ("merchant:acme:withdrawing".to_string(), -10000),
        ]
        .into();
        assert_eq!(net(&d), expected);
    }

    #[test]
    fn maker_checker() {
        assert!(check_may_propose("vic", Role::Viewer, "propose").is_err());
        assert!(check_may_propose("olga", Role::Operator, "propose").is_ok());
        assert!(check_may_decide("olga", Role::Operator, "ann", "approve").is_err());
        let own = check_may_decide("ann", Role::Approver, "ann", "approve").unwrap_err();
        assert_eq!(own, PermissionRefusal::OwnProposal { who: "ann".into() });
        assert!(check_may_decide("bob", Role::Approver, "ann", "approve").is_ok());
    }

    #[test]
    fn corrections_beyond_the_bound_are_refused() {
        let policy = crate::policy::ChannelPolicy::standard();
        let p = payout(PayoutState::Succeeded, Some(10000));
        let amend = |minor| CorrectionKind::AmendPaidAmount { paid: eur(minor) };
        assert!(decide_within(&p, &amend(20000), OtherPayouts::default(), &policy).is_ok());
        assert!(matches!(
            decide_within(&p, &amend(i64::MAX), OtherPayouts::default(), &policy),
            Err(Refusal::OutOfBounds { .. })
        ));
        let expired = payout(PayoutState::Expired, None);
        let confirm = CorrectionKind::ConfirmSucceeded {
            paid: eur(20001),
            bank_reference: "R".into(),
            value_date: None,
        };
        assert!(matches!(
            decide_within(&expired, &confirm, OtherPayouts::default(), &policy),
            Err(Refusal::OutOfBounds { .. })
        ));
    }
}
