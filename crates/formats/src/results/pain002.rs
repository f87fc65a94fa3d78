//! pain.002 (customer payment status report), versions .03, .10 and the Swiss .03.ch.02.
//!
//! The three versions share the parts we read: OrgnlGrpInfAndSts (OrgnlMsgId, GrpSts,
//! StsRsnInf), OrgnlPmtInfAndSts (OrgnlPmtInfId, PmtInfSts, StsRsnInf) and TxInfAndSts
//! (OrgnlEndToEndId, TxSts, StsRsnInf, AcctSvcrRef, ClrSysRef, OrgnlTxRef).

use std::collections::VecDeque;
use std::io::BufRead;

use crate::amount::money_from_code;
use crate::error::LineError;
use crate::xml::Cursor;

use super::{
    meaningful, parse_iso_date, BankOutcome, GroupStatus, Reason, ResultLine, ResultRecord,
};

type Out = VecDeque<Result<ResultRecord, LineError>>;

#[derive(Default)]
struct Status {
    code: Option<String>,
    reason: Reason,
}

impl Status {
    /// Handles the status and reason elements shared by the three levels; false if `rel` is
    /// none of them.
    fn take(&mut self, rel: &str, status_element: &str, text: &str) -> bool {
        match rel {
            r if r == status_element => self.code = meaningful(text),
            "StsRsnInf/Rsn/Cd" | "StsRsnInf/Rsn/Prtry" => self.reason.set_code(text),
            "StsRsnInf/AddtlInf" => self.reason.add_text(text),
            _ => return false,
        }
        true
    }
}

struct Group {
    base: usize,
    line: u64,
    status: Status,
}

struct Payment {
    base: usize,
    line: u64,
    id: Option<String>,
    status: Status,
    transactions: u64,
}

struct Transaction {
    base: usize,
    line: u64,
    end_to_end_id: Option<String>,
    status: Status,
    acct_svcr_ref: Option<String>,
    clr_sys_ref: Option<String>,
    amount: Option<(String, Option<String>)>,
    settlement_date: Option<String>,
}

#[derive(Default)]
pub(crate) struct Pain002Reader {
    original_message_id: Option<String>,
    /// The group status, kept after its block ends: a transaction without TxSts inherits it.
    group_status: Option<(String, Reason)>,
    /// The group status record, yielded at the end of the document (see [`GroupStatus`]).
    group_record: Option<GroupStatus>,
    group: Option<Group>,
    payment: Option<Payment>,
    tx: Option<Transaction>,
}

impl Pain002Reader {
    pub(crate) fn start<R: BufRead>(&mut self, cursor: &Cursor<R>, line: u64) {
        let base = cursor.path_len();
        match cursor.name() {
            "OrgnlGrpInfAndSts" if cursor.depth() == 3 => {
                self.group = Some(Group {
                    base,
                    line,
                    status: Status::default(),
                })
            }
            "OrgnlPmtInfAndSts" if cursor.depth() == 3 => {
                self.payment = Some(Payment {
                    base,
                    line,
                    id: None,
                    status: Status::default(),
                    transactions: 0,
                })
            }
            "TxInfAndSts" if self.payment.is_some() && self.tx.is_none() => {
                self.tx = Some(Transaction {
                    base,
                    line,
                    end_to_end_id: None,
                    status: Status::default(),
                    acct_svcr_ref: None,
                    clr_sys_ref: None,
                    amount: None,
                    settlement_date: None,
                })
            }
            _ => {}
        }
    }

    pub(crate) fn end<R: BufRead>(&mut self, cursor: &Cursor<R>, out: &mut Out) {
        if cursor.depth() == 1 {
            // The end of the document: every transaction status has been yielded, so the group
            // status comes last and only reaches payouts none of them settled.
            if let Some(group) = self.group_record.take() {
                out.push_back(Ok(ResultRecord::Group(group)));
            }
            return;
        }
        let text = cursor.text();
        if let Some(tx) = &mut self.tx {
            let rel = cursor.relative(tx.base);
            match rel {
                "" => {
                    let tx = self.tx.take().expect("checked above");
                    let item = self.finish_transaction(tx);
                    if let Some(p) = &mut self.payment {
                        p.transactions += 1;
                    }
                    out.push_back(item.map(ResultRecord::Transaction));
                }
                "OrgnlEndToEndId" => tx.end_to_end_id = meaningful(text),
                "AcctSvcrRef" => tx.acct_svcr_ref = meaningful(text),
                "ClrSysRef" => tx.clr_sys_ref = meaningful(text),
                "OrgnlTxRef/Amt/InstdAmt" => {
                    tx.amount = Some((text.to_string(), cursor.ccy().map(str::to_string)))
                }
                "OrgnlTxRef/IntrBkSttlmDt" => tx.settlement_date = meaningful(text),
                _ => {
                    tx.status.take(rel, "TxSts", text);
                }
            }
            return;
        }
        if let Some(payment) = &mut self.payment {
            let rel = cursor.relative(payment.base);
            match rel {
                "" => {
                    let p = self.payment.take().expect("checked above");
                    if p.transactions == 0 {
                        if let Some(code) = p.status.code {
                            out.push_back(Ok(ResultRecord::Group(GroupStatus {
                                line: p.line,
                                original_message_id: self.original_message_id.clone(),
                                original_payment_information_id: p.id,
                                status: BankOutcome::from_status_code(&code),
                                bank_status: code,
                                reason_code: p.status.reason.code,
                                reason_text: p.status.reason.text,
                            })));
                        }
                    }
                }
                "OrgnlPmtInfId" => payment.id = meaningful(text),
                _ => {
                    payment.status.take(rel, "PmtInfSts", text);
                }
            }
            return;
        }
        if let Some(group) = &mut self.group {
            let rel = cursor.relative(group.base);
            match rel {
                "" => {
                    let g = self.group.take().expect("checked above");
                    if let Some(code) = g.status.code {
                        self.group_status = Some((code.clone(), g.status.reason.clone()));
                        self.group_record = Some(GroupStatus {
                            line: g.line,
                            original_message_id: self.original_message_id.clone(),
                            original_payment_information_id: None,
                            status: BankOutcome::from_status_code(&code),
                            bank_status: code,
                            reason_code: g.status.reason.code,
                            reason_text: g.status.reason.text,
                        });
                    }
                }
                "OrgnlMsgId" => self.original_message_id = meaningful(text),
                _ => {
                    group.status.take(rel, "GrpSts", text);
                }
            }
        }
    }

    fn finish_transaction(&self, tx: Transaction) -> Result<ResultLine, LineError> {
        let line = tx.line;
        // Without its own TxSts a transaction has the status of its block, then of its group.
        let inherited = || {
            let payment = self
                .payment
                .as_ref()
                .and_then(|p| p.status.code.clone().map(|c| (c, p.status.reason.clone())));
            payment.or_else(|| self.group_status.clone())
        };
        let (code, reason) = match tx.status.code {
            Some(code) => (Some(code), tx.status.reason),
            None => match inherited() {
                Some((code, reason)) if tx.status.reason.is_empty() => (Some(code), reason),
                Some((code, _)) => (Some(code), tx.status.reason),
                None => (None, tx.status.reason),
            },
        };
        let outcome = match &code {
            Some(code) => BankOutcome::from_status_code(code),
            None => BankOutcome::Unrecognised(
                "no TxSts, and no payment-information or group status to inherit".into(),
            ),
        };
        let instructed_amount = match &tx.amount {
            Some((text, ccy)) => Some(
                money_from_code(text, ccy.as_deref())
                    .map_err(|m| LineError::new(line, "amount", m))?,
            ),
            None => None,
        };
        let value_date = match &tx.settlement_date {
            Some(text) => {
                Some(parse_iso_date(text).map_err(|m| LineError::new(line, "value_date", m))?)
            }
            None => None,
        };
        Ok(ResultLine {
            line,
            end_to_end_id: tx.end_to_end_id,
            bank_reference: tx.acct_svcr_ref.or(tx.clr_sys_ref),
            outcome,
            bank_status: code,
            // A status report says what the bank decided, not what it booked.
            amount: None,
            instructed_amount,
            value_date,
            reason_code: reason.code,
            reason_text: reason.text,
            original_message_id: self.original_message_id.clone(),
        })
    }
}
