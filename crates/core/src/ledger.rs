//! Double-entry books (DESIGN §4). A posting is a signed amount on an account: debit positive,
//! credit negative. A journal is a set of postings that sums to zero per currency; it can only be
//! built balanced, so an unbalanced journal cannot exist. Nothing is ever updated: a mistake is
//! undone by a new journal that reverses it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, MerchantId};
use crate::money::{Currency, Money, MoneyError};

/// An account of the books. Together with a currency it names one balance: a merchant paid in
/// two currencies has two `available` balances.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerAccount {
    /// Liability: what we owe the merchant and it may withdraw.
    MerchantAvailable(MerchantId),
    /// Liability: reserved for its open orders, not yet with a bank.
    MerchantWithdrawing(MerchantId),
    /// Liability: sent to a bank, outcome not final.
    MerchantInTransit(MerchantId),
    /// Asset: what the merchant owes us (a bank overpaid it).
    MerchantReceivable(MerchantId),
    /// Liability: what a bank underpaid and we still owe.
    MerchantShortfall(MerchantId),
    /// Asset: our money at that bank.
    ChannelBank(ChannelId),
    /// Expense: what that bank charged us (fees booked on its statements); never a payout's.
    ChannelFees(ChannelId),
    /// Asset: money collected for merchants, the source of their balances.
    PlatformCollections(Currency),
    /// Expense: receivables an approver decided not to collect.
    PlatformWriteOffs(Currency),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Asset,
    Liability,
}

impl LedgerAccount {
    pub fn kind(&self) -> AccountKind {
        match self {
            LedgerAccount::MerchantReceivable(_)
            | LedgerAccount::ChannelBank(_)
            | LedgerAccount::ChannelFees(_)
            | LedgerAccount::PlatformCollections(_)
            | LedgerAccount::PlatformWriteOffs(_) => AccountKind::Asset,
            _ => AccountKind::Liability,
        }
    }

    /// Parse the stored name back (`merchant:acme:available`).
    pub fn parse(name: &str) -> Result<LedgerAccount, String> {
        let parts: Vec<&str> = name.split(':').collect();
        let bad = || format!("unknown ledger account {name:?}");
        match parts.as_slice() {
            ["merchant", id, which] => {
                let id = MerchantId::parse(id).map_err(|_| bad())?;
                Ok(match *which {
                    "available" => LedgerAccount::MerchantAvailable(id),
                    "withdrawing" => LedgerAccount::MerchantWithdrawing(id),
                    "in_transit" => LedgerAccount::MerchantInTransit(id),
                    "receivable" => LedgerAccount::MerchantReceivable(id),
                    "shortfall" => LedgerAccount::MerchantShortfall(id),
                    _ => return Err(bad()),
                })
            }
            ["channel", id, "bank"] => Ok(LedgerAccount::ChannelBank(
                ChannelId::parse(id).map_err(|_| bad())?,
            )),
            ["channel", id, "fees"] => Ok(LedgerAccount::ChannelFees(
                ChannelId::parse(id).map_err(|_| bad())?,
            )),
            ["platform", ccy, "collections"] => Ok(LedgerAccount::PlatformCollections(
                Currency::parse(ccy).map_err(|_| bad())?,
            )),
            ["platform", ccy, "write_offs"] => Ok(LedgerAccount::PlatformWriteOffs(
                Currency::parse(ccy).map_err(|_| bad())?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerAccount::MerchantAvailable(m) => write!(f, "merchant:{m}:available"),
            LedgerAccount::MerchantWithdrawing(m) => write!(f, "merchant:{m}:withdrawing"),
            LedgerAccount::MerchantInTransit(m) => write!(f, "merchant:{m}:in_transit"),
            LedgerAccount::MerchantReceivable(m) => write!(f, "merchant:{m}:receivable"),
            LedgerAccount::MerchantShortfall(m) => write!(f, "merchant:{m}:shortfall"),
            LedgerAccount::ChannelBank(c) => write!(f, "channel:{c}:bank"),
            LedgerAccount::ChannelFees(c) => write!(f, "channel:{c}:fees"),
            LedgerAccount::PlatformCollections(c) => write!(f, "platform:{c}:collections"),
            LedgerAccount::PlatformWriteOffs(c) => write!(f, "platform:{c}:write_offs"),
        }
    }
}

/// One line of a journal: debit when positive, credit when negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: LedgerAccount,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("journal {kind} does not balance in {currency}: off by {off_minor} minor units")]
    Unbalanced {
        kind: String,
        currency: Currency,
        off_minor: i64,
    },
    #[error("journal {0} has no postings")]
    Empty(String),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Why money moved; stored with the journal so a person reading the books sees the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Funding,
    OrderAccepted,
    PayoutSubmitted,
    PayoutSucceeded,
    PayoutFailed,
    PayoutReturned,
    OrderCancelled,
    /// Undoes a journal recorded by mistake, line by line.
    CorrectionReversal,
    /// What should have been recorded, after a reversal.
    CorrectionRestatement,
    /// An order paid twice: the merchant owes the second payment back.
    DuplicatePayment,
    DiscrepancySettled,
    /// A paid payout booked again at what the bank moved (a camt booking after a pain.002 ACSC,
    /// a partial return): the difference from what was recorded, in one balanced journal.
    PayoutRebooked,
    /// A bank's charge booked on its statement: fees account debited, bank account credited.
    BankFees,
}

impl JournalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::Funding => "funding",
            JournalKind::OrderAccepted => "order_accepted",
            JournalKind::PayoutSubmitted => "payout_submitted",
            JournalKind::PayoutSucceeded => "payout_succeeded",
            JournalKind::PayoutFailed => "payout_failed",
            JournalKind::PayoutReturned => "payout_returned",
            JournalKind::OrderCancelled => "order_cancelled",
            JournalKind::CorrectionReversal => "correction_reversal",
            JournalKind::CorrectionRestatement => "correction_restatement",
            JournalKind::DuplicatePayment => "duplicate_payment",
            JournalKind::DiscrepancySettled => "discrepancy_settled",
            JournalKind::PayoutRebooked => "payout_rebooked",
            JournalKind::BankFees => "bank_fees",
        }
    }
}

/// A balanced set of postings. The only constructor checks the balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    kind: JournalKind,
    postings: Vec<Posting>,
}

impl Journal {
    /// Zero-amount postings are dropped (an exactly-paid payout has no discrepancy line).
    pub fn new(kind: JournalKind, postings: Vec<Posting>) -> Result<Journal, LedgerError> {
        let postings: Vec<Posting> = postings
            .into_iter()
            .filter(|p| !p.amount.is_zero())
            .collect();
        if postings.is_empty() {
            return Err(LedgerError::Empty(kind.as_str().to_string()));
        }
        check_balanced(kind.as_str(), postings.iter().map(|p| p.amount))?;
        Ok(Journal { kind, postings })
    }

    /// The common two-line journal, read as DESIGN §4 writes flows: `amount` goes from `from` to
    /// `to`. `from` is debited (+), `to` credited (−): a liability that receives money grows (we
    /// owe more), an asset that gives it shrinks. Funding, collections → available: the
    /// collections asset is debited and the merchant's available liability credited.
    pub fn transfer(
        kind: JournalKind,
        from: LedgerAccount,
        to: LedgerAccount,
        amount: Money,
    ) -> Result<Journal, LedgerError> {
        Journal::new(
            kind,
            vec![
                Posting {
                    account: from,
                    amount,
                },
                Posting {
                    account: to,
                    amount: amount.checked_neg()?,
                },
            ],
        )
    }

    pub fn kind(&self) -> JournalKind {
        self.kind
    }

    /// The same postings with opposite signs: undoes this journal.
    pub fn reversed(&self, kind: JournalKind) -> Result<Journal, LedgerError> {
        let postings = self
            .postings
            .iter()
            .map(|p| {
                Ok(Posting {
                    account: p.account.clone(),
                    amount: p.amount.checked_neg()?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Journal::new(kind, postings)
    }

    /// What changes between recording `was` and recording `now` instead: `now` minus `was`,
    /// netted per account and currency in one journal (an account both touch by the same amount
    /// drops out). Used to rebook a payout at what the bank moved.
    pub fn difference(
        kind: JournalKind,
        was: &Journal,
        now: &Journal,
    ) -> Result<Journal, LedgerError> {
        let mut net: Vec<Posting> = Vec::new();
        let undone = was.reversed(kind)?;
        for p in undone.postings.iter().chain(now.postings.iter()) {
            match net
                .iter_mut()
                .find(|n| n.account == p.account && n.amount.currency() == p.amount.currency())
            {
                Some(n) => n.amount = n.amount.checked_add(p.amount)?,
                None => net.push(p.clone()),
            }
        }
        Journal::new(kind, net)
    }

    /// The same postings under another kind (a restatement is an ordinary flow, named as such).
    pub fn renamed(self, kind: JournalKind) -> Journal {
        Journal { kind, ..self }
    }

    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

/// Checks that amounts sum to zero per currency. Used when a journal is built and again when
/// journals are read back from storage (`ledger check`).
pub fn check_balanced(
    kind: &str,
    amounts: impl IntoIterator<Item = Money>,
) -> Result<(), LedgerError> {
    let mut sums: BTreeMap<Currency, Money> = BTreeMap::new();
    for amount in amounts {
        let sum = sums
            .entry(amount.currency())
            .or_insert(Money::zero(amount.currency()));
        *sum = sum.checked_add(amount)?;
    }
    for (currency, sum) in sums {
        if !sum.is_zero() {
            return Err(LedgerError::Unbalanced {
                kind: kind.to_string(),
                currency,
                off_minor: sum.amount_minor(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str) -> MerchantId {
        MerchantId::parse(id).unwrap()
    }

    #[test]
    fn account_names_round_trip() {
        for account in [
            LedgerAccount::MerchantAvailable(m("acme")),
            LedgerAccount::MerchantWithdrawing(m("acme")),
            LedgerAccount::MerchantInTransit(m("acme")),
            LedgerAccount::MerchantReceivable(m("acme")),
            LedgerAccount::MerchantShortfall(m("acme")),
            LedgerAccount::ChannelBank(ChannelId::parse("sepa").unwrap()),
            LedgerAccount::PlatformCollections(Currency::Eur),
        ] {
            assert_eq!(LedgerAccount::parse(&account.to_string()), Ok(account));
        }
        assert!(LedgerAccount::parse("merchant:acme:savings").is_err());
    }

    #[test]
    fn unbalanced_journal_cannot_be_built() {
        let err = Journal::new(
            JournalKind::Funding,
            vec![Posting {
                account: LedgerAccount::MerchantAvailable(m("acme")),
                amount: Money::from_minor(-100, Currency::Eur),
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            LedgerError::Unbalanced {
                kind: "funding".into(),
                currency: Currency::Eur,
                off_minor: -100
            }
        );
    }

    #[test]
    fn balance_is_per_currency() {
        let err = check_balanced(
            "x",
            [
                Money::from_minor(100, Currency::Eur),
                Money::from_minor(-100, Currency::Usd),
            ],
        );
        assert!(matches!(err, Err(LedgerError::Unbalanced { .. })));
    }
}
