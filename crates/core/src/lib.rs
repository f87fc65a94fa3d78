//! The rules of Disburse as pure functions: money, bank accounts, the order and payout state
//! machines, ledger postings, channel policy and the audit hash chain.
//!
//! This crate does no I/O: no files, no network, no database, no clock (time is always passed in),
//! no async. It knows nothing of sqlx, axum or bank file layouts.

pub mod account;
pub mod audit;
pub mod correction;
pub mod crypto;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod order;
pub mod payout;
pub mod policy;

pub use ids::{ChannelId, IdError, MerchantId, OperatorName, OrderNo, PayoutNo};
pub use ledger::{Journal, JournalKind, LedgerAccount, Posting};
pub use money::{Currency, Money, MoneyError};
pub use order::OrderState;
pub use payout::{BankResult, PayoutState};
pub use policy::{ChannelPolicy, ResultMode};
