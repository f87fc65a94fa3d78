//! A simulated bank for tests and `disburse demo`: it reads our payment instruction file
//! (ISO 20022 pain.001.001.09) and answers the way a real bank does, with status reports
//! (pain.002.001.10) and debit/credit notifications (camt.054.001.08) over the following days.
//! Some transfers are paid exactly, some rejected, some paid the wrong amount, some paid late,
//! some returned after they were paid, and some never answered at all.
//!
//! It is pure: no clock (every date and time is passed in), no network, no database, no
//! filesystem. Files are read from an `impl BufRead` and written to an `impl Write`.
//! Everything is deterministic: the same [`SandboxConfig`] and the same input give the same
//! plan and byte-identical files.
//!
//! It also answers the payment API of `http-api` channels: [`api::ApiBank`] decides each
//! answer to a signed `POST /payments` or `GET /payments/{key}` from a seed and a fault mix.
//!
//! # Use
//!
//! ```
//! use chrono::NaiveDate;
//! use disburse_core::{Currency, Money};
//! use disburse_sandbox::{plan, render_day, Answer, SandboxConfig};
//!
//! let submitted = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
//! let transfers = [("PO-1", Money::from_minor(12_500, Currency::Eur))];
//! let plan = plan(&SandboxConfig::default(), transfers, "BATCH-1", submitted);
//! for day in plan.answer_days() {
//!     // One pain.002 and/or one camt.054 per day on which the bank says something.
//!     for (name, bytes) in render_day(&plan, day, "DE89370400440532013000").unwrap() {
//!         assert!(name.ends_with(".xml") && !bytes.is_empty());
//!     }
//! }
//! ```
//!
//! Or, from the pain.001 bytes, [`answer_file`]: read, plan and render the files due on a day.
//!
//! # The pieces
//!
//! - [`SandboxConfig`] and [`OutcomeMix`]: the seed and the weights of each [`OutcomeKind`].
//! - [`plan()`]: what the bank will say about each transfer and when: a [`BankPlan`] of
//!   [`PlannedAnswer`]s ([`Answer::Accepted`], [`Answer::Paid`], [`Answer::Rejected`],
//!   [`Answer::Returned`]).
//! - [`write_pain002`] and [`write_camt054`]: the answers of one day as files that validate
//!   against the official schemas in `bankfiles/xsd/`, and that `disburse_formats::results`
//!   reads back as the same end-to-end ids, outcomes and amounts.
//! - [`render_day`], [`answer_file`]: the files due on a day, with deterministic names
//!   ([`pain002_file_name`], [`camt054_file_name`]).

pub mod api;
mod camt053;
mod camt054;
mod config;
mod error;
mod pain002;
mod paper_statement;
mod plan;
mod util;
mod xml;

use std::io::BufRead;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use disburse_core::Money;

pub use camt053::{write_camt053, Booking, CAMT053_NAMESPACE};
pub use camt054::{write_camt054, CAMT054_NAMESPACE};
pub use config::{OutcomeKind, OutcomeMix, SandboxConfig};
pub use error::SandboxError;
pub use pain002::{write_pain002, ORIGINAL_MESSAGE_NAME, PAIN002_NAMESPACE};
pub use paper_statement::{write_paper_statement, PaperBooking};
pub use plan::{plan, Answer, BankPlan, PlannedAnswer, PlannedTransfer};

/// The name the sandbox bank gives itself in its files.
pub const BANK_NAME: &str = "Disburse Sandbox Bank";

/// The short text the bank adds to the reason codes it uses (`AddtlInf`).
pub fn reason_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "AC01" => "Incorrect account number",
        "AC04" => "Closed account number",
        "AM04" => "Insufficient funds",
        "AM12" => "Invalid amount",
        "MS03" => "Reason not specified",
        _ => return None,
    })
}

/// Reads a pain.001 (any pain.001.001.xx version) with `disburse_formats::read_transfers`: its
/// MsgId and every transfer's end-to-end id and instructed amount, in file order.
pub fn read_pain001(pain001: impl BufRead) -> Result<(String, Vec<(String, Money)>), SandboxError> {
    let mut reader = disburse_formats::read_transfers(pain001)?;
    let mut transfers = Vec::new();
    for transfer in reader.by_ref() {
        let transfer = transfer?;
        transfers.push((transfer.end_to_end_id, transfer.amount));
    }
    Ok((reader.message_id().to_string(), transfers))
}

/// When the sandbox bank creates its files for `day`: 18:00:00 UTC of that day.
pub fn file_created_at(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(18, 0, 0).expect("valid time"))
        .and_utc()
}

/// `pain002-<msgid>-<yyyymmdd>.xml`, with any character of the MsgId other than ASCII letters,
/// digits, `.`, `-` and `_` replaced by `_`.
pub fn pain002_file_name(batch_message_id: &str, day: NaiveDate) -> String {
    format!(
        "pain002-{}-{}.xml",
        util::file_name_part(batch_message_id),
        day.format("%Y%m%d")
    )
}

/// `camt054-<msgid>-<yyyymmdd>.xml`, the MsgId made safe as in [`pain002_file_name`].
pub fn camt054_file_name(batch_message_id: &str, day: NaiveDate) -> String {
    format!(
        "camt054-{}-{}.xml",
        util::file_name_part(batch_message_id),
        day.format("%Y%m%d")
    )
}

/// The files the bank sends on `day` about the batch of `plan`, as `(file name, bytes)`:
/// a pain.002 if any transfer is accepted, paid or rejected that day, then a camt.054 (for
/// account `account_iban`) if any is paid or returned. None on a day without answers. Files are
/// created at [`file_created_at`] `day`.
pub fn render_day(
    plan: &BankPlan,
    day: NaiveDate,
    account_iban: &str,
) -> Result<Vec<(String, Vec<u8>)>, SandboxError> {
    let due = plan.answers_on(day);
    let created_at = file_created_at(day);
    let mut files = Vec::with_capacity(2);
    if due
        .iter()
        .any(|a| !matches!(a.answer, Answer::Returned { .. }))
    {
        let mut bytes = Vec::new();
        write_pain002(
            &due,
            &plan.batch_message_id,
            created_at,
            plan.transfers.len(),
            &mut bytes,
        )?;
        files.push((pain002_file_name(&plan.batch_message_id, day), bytes));
    }
    if due
        .iter()
        .any(|a| matches!(a.answer, Answer::Paid { .. } | Answer::Returned { .. }))
    {
        let mut bytes = Vec::new();
        write_camt054(&due, account_iban, created_at, &mut bytes)?;
        files.push((camt054_file_name(&plan.batch_message_id, day), bytes));
    }
    Ok(files)
}

/// The whole bank in one call: reads the pain.001 (see [`read_pain001`]) received on
/// `submitted_on`, plans its answers with `config` (see [`plan()`]) and renders the files due on
/// `day` (see [`render_day`]). Calling it for each day from `submitted_on` on gives every file
/// the bank ever sends about that batch.
pub fn answer_file(
    config: &SandboxConfig,
    pain001: impl BufRead,
    submitted_on: NaiveDate,
    day: NaiveDate,
    account_iban: &str,
) -> Result<Vec<(String, Vec<u8>)>, SandboxError> {
    let (message_id, transfers) = read_pain001(pain001)?;
    let plan = plan(config, transfers, &message_id, submitted_on);
    render_day(&plan, day, account_iban)
}
