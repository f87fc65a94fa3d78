//! camt.054 (debit/credit notification) and camt.053 (statement), versions .02, .04 and .08.
//!
//! Each Ntry/NtryDtls/TxDtls is one result line; an entry without TxDtls is one line of its own.
//! Entry fields (direction, reversal, status, dates, bank transaction code, reference) come
//! before NtryDtls in every version, so a transaction is complete when its TxDtls ends. The one
//! thing that can come later is knowing whether a transaction without an amount is the only one
//! of its entry (then the entry amount is its amount): the first such transaction waits in
//! `pending` until the next transaction or the end of the entry, so at most one line is held.
//!
//! Versions differ in where things are: `Sts` is text in .02/.04 and `Sts/Cd` in .08; the
//! transaction amount is `AmtDtls/TxAmt/Amt` in .02 and `Amt` from .04 on. Both are read.

use std::collections::VecDeque;
use std::io::BufRead;

use crate::amount::money_from_code;
use crate::error::LineError;
use crate::xml::Cursor;

use super::{meaningful, parse_iso_date, BankOutcome, Reason, ResultLine, ResultRecord};

type Out = VecDeque<Result<ResultRecord, LineError>>;

/// Amount text and its `Ccy`.
type Amount = (String, Option<String>);

/// Bank transaction sub-family codes of charges, fees, commissions, interest and taxes.
const CHARGE_CODES: [&str; 7] = ["CHRG", "COMM", "COMT", "COMI", "FEES", "INTR", "TAXE"];

#[derive(Default, Clone)]
struct Codes {
    domain: Option<String>,
    family: Option<String>,
    subfamily: Option<String>,
}

impl Codes {
    fn take(&mut self, rel: &str, text: &str) -> bool {
        match rel {
            "BkTxCd/Domn/Cd" => self.domain = meaningful(text),
            "BkTxCd/Domn/Fmly/Cd" => self.family = meaningful(text),
            "BkTxCd/Domn/Fmly/SubFmlyCd" => self.subfamily = meaningful(text),
            _ => return false,
        }
        true
    }
}

#[derive(Default)]
struct Entry {
    base: usize,
    line: u64,
    amount: Option<Amount>,
    direction: Option<String>,
    reversal: bool,
    status: Option<String>,
    booking_date: Option<String>,
    value_date: Option<String>,
    acct_svcr_ref: Option<String>,
    codes: Codes,
    transactions: u64,
    batch_message_id: Option<String>,
}

#[derive(Default)]
struct Transaction {
    base: usize,
    line: u64,
    end_to_end_id: Option<String>,
    acct_svcr_ref: Option<String>,
    tx_id: Option<String>,
    message_id: Option<String>,
    amount: Option<Amount>,
    tx_amount: Option<Amount>,
    instructed_amount: Option<Amount>,
    direction: Option<String>,
    codes: Codes,
    has_return_info: bool,
    reason: Reason,
}

#[derive(Default)]
pub(crate) struct CamtReader {
    entry: Option<Entry>,
    tx: Option<Transaction>,
    /// The entry's first transaction, if it has no amount of its own (see module doc).
    pending: Option<Transaction>,
}

impl CamtReader {
    pub(crate) fn start<R: BufRead>(&mut self, cursor: &Cursor<R>, line: u64) {
        let Some(entry) = &mut self.entry else {
            if cursor.name() == "Ntry" {
                self.entry = Some(Entry {
                    base: cursor.path_len(),
                    line,
                    ..Entry::default()
                });
            }
            return;
        };
        if let Some(tx) = &mut self.tx {
            if cursor.relative(tx.base) == "RtrInf" {
                tx.has_return_info = true;
            }
            return;
        }
        match cursor.relative(entry.base) {
            "NtryDtls" => entry.batch_message_id = None,
            "NtryDtls/TxDtls" => {
                self.tx = Some(Transaction {
                    base: cursor.path_len(),
                    line,
                    ..Transaction::default()
                })
            }
            _ => {}
        }
    }

    pub(crate) fn end<R: BufRead>(&mut self, cursor: &Cursor<R>, out: &mut Out) {
        let Some(entry) = &mut self.entry else {
            return;
        };
        let text = cursor.text();
        if let Some(tx) = &mut self.tx {
            let rel = cursor.relative(tx.base);
            let amount = || Some((text.to_string(), cursor.ccy().map(str::to_string)));
            match rel {
                "" => {
                    let tx = self.tx.take().expect("checked above");
                    entry.transactions += 1;
                    if let Some(first) = self.pending.take() {
                        out.push_back(finish(entry, Some(&first), false));
                    }
                    if tx.has_own_amount() || entry.transactions > 1 {
                        out.push_back(finish(entry, Some(&tx), false));
                    } else {
                        self.pending = Some(tx);
                    }
                }
                "Refs/EndToEndId" => tx.end_to_end_id = meaningful(text),
                "Refs/AcctSvcrRef" => tx.acct_svcr_ref = meaningful(text),
                "Refs/TxId" => tx.tx_id = meaningful(text),
                "Refs/MsgId" => tx.message_id = meaningful(text),
                "Amt" => tx.amount = amount(),
                "AmtDtls/TxAmt/Amt" => tx.tx_amount = amount(),
                "AmtDtls/InstdAmt/Amt" => tx.instructed_amount = amount(),
                "CdtDbtInd" => tx.direction = meaningful(text),
                "RtrInf/Rsn/Cd" | "RtrInf/Rsn/Prtry" => tx.reason.set_code(text),
                "RtrInf/AddtlInf" => tx.reason.add_text(text),
                _ => {
                    tx.codes.take(rel, text);
                }
            }
            return;
        }
        let rel = cursor.relative(entry.base);
        match rel {
            "" => {
                let entry = self.entry.take().expect("checked above");
                if let Some(only) = self.pending.take() {
                    out.push_back(finish(&entry, Some(&only), true));
                } else if entry.transactions == 0 {
                    out.push_back(finish(&entry, None, true));
                }
            }
            "Amt" => entry.amount = Some((text.to_string(), cursor.ccy().map(str::to_string))),
            "CdtDbtInd" => entry.direction = meaningful(text),
            "RvslInd" => entry.reversal = matches!(text, "true" | "1"),
            "Sts" | "Sts/Cd" | "Sts/Prtry" => {
                if let Some(status) = meaningful(text) {
                    entry.status = Some(status);
                }
            }
            "BookgDt/Dt" | "BookgDt/DtTm" => entry.booking_date = meaningful(text),
            "ValDt/Dt" | "ValDt/DtTm" => entry.value_date = meaningful(text),
            "AcctSvcrRef" => entry.acct_svcr_ref = meaningful(text),
            "NtryDtls/Btch/MsgId" => entry.batch_message_id = meaningful(text),
            _ => {
                entry.codes.take(rel, text);
            }
        }
    }
}

impl Transaction {
    /// The amount booked for this transaction: `Amt` (.04, .08) or `AmtDtls/TxAmt/Amt` (.02).
    /// `AmtDtls/InstdAmt` is what was instructed, not what moved, so it never counts.
    fn has_own_amount(&self) -> bool {
        self.amount.is_some() || self.tx_amount.is_some()
    }
}

/// Builds the result line of one transaction (or of an entry without transactions).
/// `entry_amount_applies`: the transaction is the only one of its entry.
fn finish(
    entry: &Entry,
    tx: Option<&Transaction>,
    entry_amount_applies: bool,
) -> Result<ResultRecord, LineError> {
    let line = tx.map_or(entry.line, |t| t.line);
    let own_amount = tx.and_then(|t| t.amount.as_ref().or(t.tx_amount.as_ref()));
    let amount = match own_amount.or(if entry_amount_applies {
        entry.amount.as_ref()
    } else {
        None
    }) {
        Some((text, ccy)) => Some(
            money_from_code(text, ccy.as_deref()).map_err(|m| LineError::new(line, "amount", m))?,
        ),
        None => None,
    };
    let instructed_amount = match tx.and_then(|t| t.instructed_amount.as_ref()) {
        Some((text, ccy)) => Some(
            money_from_code(text, ccy.as_deref())
                .map_err(|m| LineError::new(line, "instructed_amount", m))?,
        ),
        None => None,
    };
    let date_text = entry.value_date.as_ref().or(entry.booking_date.as_ref());
    let value_date = match date_text {
        Some(text) => {
            Some(parse_iso_date(text).map_err(|m| LineError::new(line, "value_date", m))?)
        }
        None => None,
    };
    let direction = tx
        .and_then(|t| t.direction.as_deref())
        .or(entry.direction.as_deref());
    let no_codes = Codes::default();
    let tx_codes = tx.map_or(&no_codes, |t| &t.codes);
    let outcome = outcome(
        entry.status.as_deref(),
        direction,
        entry.reversal,
        tx.is_some_and(|t| t.has_return_info),
        [&entry.codes, tx_codes],
    );
    let reason = tx.map(|t| t.reason.clone()).unwrap_or_default();
    Ok(ResultRecord::Transaction(ResultLine {
        line,
        end_to_end_id: tx.and_then(|t| t.end_to_end_id.clone()),
        bank_reference: tx
            .and_then(|t| t.acct_svcr_ref.clone().or(t.tx_id.clone()))
            .or(entry.acct_svcr_ref.clone()),
        outcome,
        bank_status: entry.status.clone(),
        amount,
        instructed_amount,
        value_date,
        reason_code: reason.code,
        reason_text: reason.text,
        original_message_id: tx
            .and_then(|t| t.message_id.clone())
            .or(entry.batch_message_id.clone()),
    }))
}

/// What one camt line means for a payout (an outgoing credit transfer, booked as a debit).
///
/// - status PDNG: pending.
/// - a credit with return information, code RRTN, or reversing a debit: our money came back.
/// - a debit that reverses a credit, carries return information or code RRTN: a received payment
///   (or direct debit) going back out, not a payout (e.g. the MD06 refunds in camt.053 samples).
/// - a debit coded as charges, fees, interest or taxes, or outside the PMNT domain: not a payout.
/// - any other booked debit: paid.
/// - everything else is informational and never mistaken for a payment result.
fn outcome(
    status: Option<&str>,
    direction: Option<&str>,
    reversal: bool,
    return_info: bool,
    codes: [&Codes; 2],
) -> BankOutcome {
    let info = |s: &str| BankOutcome::Informational(s.to_string());
    match status {
        // FUTR (.08): booked in the future; not yet moved.
        Some("PDNG") | Some("FUTR") => return BankOutcome::Pending,
        None | Some("BOOK") | Some("INFO") => {}
        Some(other) => return BankOutcome::Unrecognised(format!("entry status {other:?}")),
    }
    let return_code = codes.iter().any(|c| c.subfamily.as_deref() == Some("RRTN"));
    match direction {
        Some("CRDT") if return_info || return_code || reversal => BankOutcome::Returned,
        Some("CRDT") => info("credit entry"),
        Some("DBIT") if reversal => info("reversal of a credit entry"),
        Some("DBIT") if return_info || return_code => info("debit returning a received payment"),
        Some("DBIT") => {
            let charges = codes.iter().any(|c| {
                c.subfamily
                    .as_deref()
                    .is_some_and(|s| CHARGE_CODES.contains(&s))
            });
            let other_domain = codes
                .iter()
                .find_map(|c| c.domain.as_deref())
                .filter(|d| *d != "PMNT");
            if charges {
                info("charges, fees or interest")
            } else if let Some(domain) = other_domain {
                BankOutcome::Informational(format!("{domain} entry, not a payment"))
            } else if status == Some("INFO") {
                info("debit entry with status INFO (not booked)")
            } else {
                BankOutcome::Paid
            }
        }
        _ => info("entry without a credit/debit indicator"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(sub: &str) -> Codes {
        Codes {
            domain: Some("PMNT".into()),
            family: Some("ICDT".into()),
            subfamily: Some(sub.into()),
        }
    }

    #[test]
    fn outcomes_of_entries() {
        let none = Codes::default();
        let check = |status, dir, rev, rtr, c: &Codes, want: BankOutcome| {
            assert_eq!(
                outcome(status, dir, rev, rtr, [c, &none]),
                want,
                "{status:?} {dir:?} {rev} {rtr}"
            );
        };
        let info = |s: &str| BankOutcome::Informational(s.into());
        check(
            Some("BOOK"),
            Some("DBIT"),
            false,
            false,
            &codes("DMCT"),
            BankOutcome::Paid,
        );
        check(
            Some("PDNG"),
            Some("DBIT"),
            false,
            false,
            &codes("DMCT"),
            BankOutcome::Pending,
        );
        check(
            Some("BOOK"),
            Some("CRDT"),
            false,
            false,
            &codes("RRTN"),
            BankOutcome::Returned,
        );
        check(
            Some("BOOK"),
            Some("CRDT"),
            true,
            false,
            &none,
            BankOutcome::Returned,
        );
        check(
            Some("INFO"),
            Some("CRDT"),
            true,
            true,
            &none,
            BankOutcome::Returned,
        );
        check(
            Some("BOOK"),
            Some("CRDT"),
            false,
            false,
            &codes("ESCT"),
            info("credit entry"),
        );
        check(
            Some("BOOK"),
            Some("DBIT"),
            true,
            true,
            &none,
            info("reversal of a credit entry"),
        );
        check(
            Some("BOOK"),
            Some("DBIT"),
            false,
            false,
            &codes("CHRG"),
            info("charges, fees or interest"),
        );
        check(
            Some("INFO"),
            Some("DBIT"),
            false,
            false,
            &none,
            info("debit entry with status INFO (not booked)"),
        );
        check(
            Some("FUTR"),
            Some("DBIT"),
            false,
            false,
            &none,
            BankOutcome::Pending,
        );
        assert!(matches!(
            outcome(Some("BOKD"), Some("DBIT"), false, false, [&none, &none]),
            BankOutcome::Unrecognised(_)
        ));
        let acmt = Codes {
            domain: Some("ACMT".into()),
            ..Codes::default()
        };
        check(
            Some("BOOK"),
            Some("DBIT"),
            false,
            false,
            &acmt,
            info("ACMT entry, not a payment"),
        );
    }
}
