//! Withdrawal orders: a merchant's request to be paid, identified for life by its order number.
//! An order's state follows from its payouts; these functions decide whether an order may be
//! accepted, may get a new payout, or may be cancelled, and with which journal.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{MerchantId, OrderNo};
use crate::ledger::{Journal, JournalKind, LedgerAccount, LedgerError};
use crate::money::{Money, MoneyError};
use crate::payout::{Funding, PayoutState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted, money reserved, no payout yet (or the last one was cancelled before sending).
    Open,
    /// A payout is live.
    Paying,
    Paid,
    /// The last payout failed, was returned or expired: a person or an account fix must act.
    ActionRequired,
    /// Money back in the merchant's available balance.
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 5] = [
        OrderState::Open,
        OrderState::Paying,
        OrderState::Paid,
        OrderState::ActionRequired,
        OrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::Paying => "paying",
            OrderState::Paid => "paid",
            OrderState::ActionRequired => "action_required",
            OrderState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<OrderState, String> {
        OrderState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown order state {s:?}"))
    }

    /// The order's state after one of its payouts became `payout_state`. A cancelled order stays
    /// cancelled, and a top-up (drawn from the shortfall) pays an order that is already paid: the
    /// order does not follow it.
    pub fn after_change_of(self, funded_from: Funding, payout_state: PayoutState) -> OrderState {
        if self == OrderState::Cancelled || funded_from == Funding::Shortfall {
            self
        } else {
            OrderState::after_payout(payout_state)
        }
    }

    /// The order's state given the state of its latest payout.
    pub fn after_payout(latest: PayoutState) -> OrderState {
        match latest {
            PayoutState::Pending | PayoutState::Submitted => OrderState::Paying,
            PayoutState::Succeeded => OrderState::Paid,
            PayoutState::Failed | PayoutState::Returned | PayoutState::Expired => {
                OrderState::ActionRequired
            }
            PayoutState::Cancelled => OrderState::Open,
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefusal {
    #[error("insufficient available balance: {available} available, {requested} requested")]
    InsufficientBalance { available: Money, requested: Money },
    #[error("order {order} is {state}; {why}")]
    NotAllowed {
        order: OrderNo,
        state: OrderState,
        why: &'static str,
    },
    #[error(
        "order {order} already has a live payout ({payout_state}); a second one could pay it twice"
    )]
    LivePayoutExists {
        order: OrderNo,
        payout_state: PayoutState,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Accepting an order reserves its amount: available → withdrawing.
pub fn accept(
    merchant: &MerchantId,
    amount: Money,
    available: Money,
) -> Result<Journal, OrderRefusal> {
    if available.amount_minor() < amount.amount_minor() {
        return Err(OrderRefusal::InsufficientBalance {
            available,
            requested: amount,
        });
    }
    Ok(Journal::transfer(
        JournalKind::OrderAccepted,
        LedgerAccount::MerchantAvailable(merchant.clone()),
        LedgerAccount::MerchantWithdrawing(merchant.clone()),
        amount,
    )?)
}

/// Whether a new payout may be created, and for how much. Every earlier attempt must be final:
/// a second payment of the same money cannot be created.
pub fn new_payout_amount(
    order: &OrderNo,
    state: OrderState,
    amount: Money,
    payouts: &[PayoutState],
) -> Result<Money, OrderRefusal> {
    if let Some(live) = payouts.iter().find(|s| s.is_live()) {
        return Err(OrderRefusal::LivePayoutExists {
            order: order.clone(),
            payout_state: *live,
        });
    }
    let refuse = |why| OrderRefusal::NotAllowed {
        order: order.clone(),
        state,
        why,
    };
    match state {
        OrderState::Cancelled => Err(refuse("a cancelled order is not paid")),
        OrderState::Paid => Err(refuse("it is already paid")),
        OrderState::Open | OrderState::ActionRequired | OrderState::Paying => Ok(amount),
    }
}

/// Cancelling gives the reserved money back: withdrawing → available. Refused while money may be
/// at a bank; a pending (unsent) payout is cancelled with the order.
pub fn cancel(
    order: &OrderNo,
    merchant: &MerchantId,
    state: OrderState,
    amount: Money,
    payouts: &[PayoutState],
) -> Result<Journal, OrderRefusal> {
    let refuse = |why| OrderRefusal::NotAllowed {
        order: order.clone(),
        state,
        why,
    };
    if let Some(at_bank) = payouts
        .iter()
        .find(|s| matches!(s, PayoutState::Submitted | PayoutState::Expired))
    {
        return Err(OrderRefusal::LivePayoutExists {
            order: order.clone(),
            payout_state: *at_bank,
        });
    }
    match state {
        OrderState::Cancelled => Err(refuse("it is already cancelled")),
        OrderState::Paid => Err(refuse("a paid order cannot be cancelled")),
        _ => Ok(Journal::transfer(
            JournalKind::OrderCancelled,
            LedgerAccount::MerchantWithdrawing(merchant.clone()),
            LedgerAccount::MerchantAvailable(merchant.clone()),
            amount,
        )?),
    }
}

/// Funding: money collected for a merchant becomes its available balance.
pub fn fund(merchant: &MerchantId, amount: Money) -> Result<Journal, LedgerError> {
    Journal::transfer(
        JournalKind::Funding,
        LedgerAccount::PlatformCollections(amount.currency()),
        LedgerAccount::MerchantAvailable(merchant.clone()),
        amount,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Eur)
    }

    #[test]
    fn a_second_live_payout_is_refused() {
        let order = OrderNo::parse("W1").unwrap();
        for live in [
            PayoutState::Pending,
            PayoutState::Submitted,
            PayoutState::Expired,
        ] {
            let r = new_payout_amount(
                &order,
                OrderState::Paying,
                eur(100),
                &[PayoutState::Failed, live],
            );
            assert!(
                matches!(r, Err(OrderRefusal::LivePayoutExists { .. })),
                "{live}"
            );
        }
        assert_eq!(
            new_payout_amount(
                &order,
                OrderState::ActionRequired,
                eur(100),
                &[PayoutState::Failed, PayoutState::Returned]
            ),
            Ok(eur(100))
        );
        assert!(new_payout_amount(&order, OrderState::Paid, eur(100), &[]).is_err());
    }

    #[test]
    fn accept_needs_the_balance() {
        let m = MerchantId::parse("acme").unwrap();
        assert!(matches!(
            accept(&m, eur(101), eur(100)),
            Err(OrderRefusal::InsufficientBalance { .. })
        ));
        assert!(accept(&m, eur(100), eur(100)).is_ok());
    }

    #[test]
    fn cancel_is_refused_while_money_may_be_at_a_bank() {
        let m = MerchantId::parse("acme").unwrap();
        let o = OrderNo::parse("W1").unwrap();
        assert!(cancel(
            &o,
            &m,
            OrderState::Paying,
            eur(1),
            &[PayoutState::Submitted]
        )
        .is_err());
        assert!(cancel(
            &o,
            &m,
            OrderState::ActionRequired,
            eur(1),
            &[PayoutState::Expired]
        )
        .is_err());
        assert!(cancel(
            &o,
            &m,
            OrderState::ActionRequired,
            eur(1),
            &[PayoutState::Failed]
        )
        .is_ok());
        assert!(cancel(&o, &m, OrderState::Paid, eur(1), &[PayoutState::Succeeded]).is_err());
    }
}

#[cfg(test)]
mod sign_tests {
    use super::*;
    use crate::Currency;

    /// Assets carry debit (positive) balances, liabilities credit (negative) ones: funding makes
    /// the collections asset positive and what we owe the merchant negative.
    #[test]
    fn flows_move_money_the_way_design_section_4_reads() {
        let m = MerchantId::parse("acme").unwrap();
        let amount = Money::from_minor(100, Currency::Eur);
        let f = fund(&m, amount).unwrap();
        let by_account = |j: &Journal, name: &str| {
            j.postings()
                .iter()
                .find(|p| p.account.to_string() == name)
                .unwrap()
                .amount
                .amount_minor()
        };
        assert_eq!(by_account(&f, "platform:EUR:collections"), 100);
        assert_eq!(by_account(&f, "merchant:acme:available"), -100);
        let a = accept(&m, amount, amount).unwrap();
        assert_eq!(by_account(&a, "merchant:acme:available"), 100);
        assert_eq!(by_account(&a, "merchant:acme:withdrawing"), -100);
        let c = cancel(
            &OrderNo::parse("W1").unwrap(),
            &m,
            OrderState::Open,
            amount,
            &[],
        )
        .unwrap();
        assert_eq!(by_account(&c, "merchant:acme:withdrawing"), 100);
        assert_eq!(by_account(&c, "merchant:acme:available"), -100);
    }
}
