//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{NaiveDate, TimeZone, Utc};
use disburse_core::{Currency, Money};
use disburse_formats::{write_pain001, CreditTransfer, CreditorAccount, Pain001Header};
use disburse_sandbox::{render_day, BankPlan};

/// Our account at the sandbox bank.
pub const ACCOUNT: &str = "DE89370400440532013000";

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn submitted() -> NaiveDate {
    day(2025, 3, 3)
}

/// `n` transfers `PO0000000001`... of varied amounts in `currency`, among them the smallest
/// amounts there are (1 and 2 minor units).
pub fn transfers(n: usize, currency: Currency) -> Vec<(String, Money)> {
    (1..=n)
        .map(|i| {
            let minor = match i % 7 {
                0 => 1,
                1 => 2,
                2 => 99,
                k => (i as i64) * 12_345 + k as i64 * 1_000_003,
            };
            (format!("PO{i:010}"), Money::from_minor(minor, currency))
        })
        .collect()
}

/// A pain.001.001.09 of `transfers`, written by `disburse_formats`.
pub fn pain001(message_id: &str, transfers: &[(String, Money)]) -> Vec<u8> {
    let currency = transfers[0].1.currency();
    let header = Pain001Header {
        message_id: message_id.to_string(),
        created_at: Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0).unwrap(),
        requested_execution_date: submitted(),
        debtor_name: "Disburse Test Ltd".into(),
        debtor_iban: ACCOUNT.into(),
        debtor_bic: None,
        currency,
    };
    let transfers: Vec<CreditTransfer> = transfers
        .iter()
        .map(|(id, amount)| CreditTransfer {
            end_to_end_id: id.clone(),
            amount: *amount,
            creditor_name: format!("Merchant {id}"),
            creditor_account: CreditorAccount::Iban("GB29NWBK60161331926819".into()),
            creditor_bic: None,
            creditor_country: "GB".into(),
            remittance_info: format!("Payout {id}"),
        })
        .collect();
    let mut out = Vec::new();
    write_pain001(&header, &transfers, &mut out).unwrap();
    out
}

/// Every file the bank sends about `plan`: `(day, name, bytes)`, day by day.
pub fn all_files(plan: &BankPlan) -> Vec<(NaiveDate, String, Vec<u8>)> {
    plan.answer_days()
        .into_iter()
        .flat_map(|d| {
            render_day(plan, d, ACCOUNT)
                .unwrap()
                .into_iter()
                .map(move |(name, bytes)| (d, name, bytes))
        })
        .collect()
}

pub fn xsd(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bankfiles/xsd")
        .join(name)
}

/// Validates `bytes` with `xmllint --noout --schema <xsd> -`. `None` when xmllint is not
/// installed (CI installs libxml2-utils).
pub fn xmllint(bytes: &[u8], xsd_name: &str) -> Option<Result<(), String>> {
    let child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd(xsd_name))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("xmllint not found: schema validation NOT run");
            return None;
        }
        Err(e) => panic!("running xmllint: {e}"),
        Ok(child) => child,
    };
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Some(Ok(()))
    } else {
        Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}
