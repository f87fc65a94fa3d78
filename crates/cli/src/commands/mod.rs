//! One module per command group; `main.rs` parses the command line and dispatches here. Each
//! group's `run` matches only its own commands (main sends it no other).
//!
//! `tools` (demo and benchmarks) sits apart from the production commands.

pub(crate) mod audit;
pub(crate) mod batch;
pub(crate) mod corrections;
pub(crate) mod discrepancies;
pub(crate) mod exceptions;
pub(crate) mod hardening;
pub(crate) mod ledger;
pub(crate) mod merchant;
pub(crate) mod operator;
pub(crate) mod order;
pub(crate) mod payout;
pub(crate) mod results;
pub(crate) mod serve;
pub(crate) mod setup;
pub(crate) mod statements;
pub(crate) mod sweep;
pub(crate) mod tools;
pub(crate) mod webhook;
