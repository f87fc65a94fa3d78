//! Black-box tests of the HTTP service: the app on port 0 with a fresh database per test, on
//! SQLite and (when a server answers) PostgreSQL.

mod api_channel;
mod common;
mod hardening;
mod merchant_api;
mod ops_api;
mod service;
mod webhooks;

/// A pain.002 rejecting or accepting payouts of a batch, shared by the file tests.
pub fn ops_api_pain002(msg_id: &str, payout_no: &str) -> String {
    ops_api::pain002_for(msg_id, &[(payout_no, "RJCT", Some("AC04"))])
}
