//! `http-api` channels: each payout is sent as one request whose idempotency key is its payout
//! number, and "we don't know" is a first-class answer (DESIGN §1.5).
//!
//! The engine knows no HTTP: it calls the bank through [`BankApi`], which the server implements
//! with an HTTP client (and tests with anything). A round of the worker:
//!
//! 1. asks the bank's status of every submitted payout whose outcome is not known yet and whose
//!    backoff is due (a fresh process asks about all of them: it may have been killed between a
//!    send and its record). "Unknown" means the request never arrived: it is sent again under the
//!    same key, so the bank executes it at most once;
//! 2. moves pending payouts to submitted (one transaction each, before the request leaves) and
//!    sends them, `concurrency` at a time.
//!
//! Every answer that says something goes through `payout::decide`, exactly like a line of a bank
//! file; a timeout, a reset or a 5xx leaves the payout submitted, to be asked about with backoff
//! until the bank knows or the channel's deadline expires it for a person (the sweep).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use chrono::{DateTime, Duration, Utc};
use disburse_core::payout::Refusal;
use disburse_core::{BankResult, Money, PayoutNo};
use disburse_formats::CreditorAccount;
use disburse_store::{fmt_time, ExceptionRow, NewAuditEvent, PayoutRow, WriteTx};
use serde::Serialize;
use serde_json::json;

use crate::config::ApiSettings;
use crate::payouts::{corrupt, ApplyOutcome, ResultSource};
use crate::{Actor, Engine, EngineError, Result};

/// One payment as the bank's `POST /payments` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInstruction {
    /// Our payout number: the idempotency key.
    pub payout_no: String,
    pub amount: Money,
    /// IBAN, or `bank_code:number` for a local account.
    pub creditor_account: String,
    pub creditor_name: String,
    pub reference: String,
}

/// What the bank knows about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankStatus {
    /// No payment under this key: the request never arrived.
    Unknown,
    Accepted {
        reference: Option<String>,
    },
    Paid {
        amount: Money,
        reference: Option<String>,
    },
    Rejected {
        reason_code: String,
        reason_text: Option<String>,
    },
}

impl BankStatus {
    /// The bank result the core rules take; `None` for `Unknown`.
    pub fn as_bank_result(&self) -> Option<BankResult> {
        match self {
            BankStatus::Unknown => None,
            BankStatus::Accepted { reference } => Some(BankResult::Accepted {
                reference: reference.clone(),
            }),
            BankStatus::Paid { amount, reference } => {
                Some(BankResult::booked(*amount, reference.clone()))
            }
            BankStatus::Rejected {
                reason_code,
                reason_text,
            } => Some(BankResult::Rejected {
                reason_code: reason_code.clone(),
                reason_text: reason_text.clone(),
                instructed: None,
            }),
        }
    }
}

/// One answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAnswer {
    /// The bank said, for certain.
    Known(BankStatus),
    /// 409: the key was used with another body. Nothing is sent again; a person looks.
    KeyConflict(String),
    /// 429: not taken; ask again after this long.
    Throttled(std::time::Duration),
    /// Timeout, reset, 5xx, an unreadable answer: the money may or may not have moved.
    Unknown(String),
    /// Refused as a bad request (400, 401, 403, …): our side is wrong (a secret, a clock).
    Refused { status: u16, detail: String },
}

/// The bank's payment API, as the engine needs it. Implemented over HTTP by the server.
pub trait BankApi: Sync {
    /// `POST /payments` with `Idempotency-Key: {payout_no}`.
    fn send(&self, payment: &PaymentInstruction) -> impl Future<Output = BankAnswer> + Send;
    /// `GET /payments/{payout_no}`.
    fn status(&self, payout_no: &str) -> impl Future<Output = BankAnswer> + Send;
}

/// The wait before the `attempt`-th status question (0-based): `first`, doubled each time, at
/// most `max`.
pub fn status_backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1i32.checked_shl(attempt.min(30)).unwrap_or(i32::MAX);
    first
        .checked_mul(factor)
        .map_or(max, |d| d.min(max))
        .max(Duration::zero())
}

/// A circuit breaker: `failures_max` failed requests in a row open it for `cooldown`; then it is
/// half open (one request per round) until a request succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    failures_max: u32,
    cooldown: Duration,
    failures_in_a_row: u32,
    open_until: Option<DateTime<Utc>>,
}

impl Breaker {
    pub fn new(failures_max: u32, cooldown: Duration) -> Breaker {
        Breaker {
            failures_max: failures_max.max(1),
            cooldown,
            failures_in_a_row: 0,
            open_until: None,
        }
    }

    /// How many requests may go this round: none while open, one while half open.
    pub fn budget(&self, now: DateTime<Utc>) -> usize {
        match self.open_until {
            Some(until) if now < until => 0,
            Some(_) => 1,
            None => usize::MAX,
        }
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.budget(now) == 0
    }

    pub fn success(&mut self) {
        self.failures_in_a_row = 0;
        self.open_until = None;
    }

    pub fn failure(&mut self, now: DateTime<Utc>) {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        if self.failures_in_a_row >= self.failures_max {
            self.open_until = Some(now + self.cooldown);
        }
    }
}

/// When to ask about one payout again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Check {
    attempts: u32,
    next_at: DateTime<Utc>,
}

/// What a worker remembers about one channel between rounds (in memory: a fresh process asks
/// the bank about every open payout at once, which is what it must do after a crash).
#[derive(Debug, Clone)]
pub struct ApiChannelState {
    pub breaker: Breaker,
    /// Set by a 429: nothing is sent before then.
    pub paused_until: Option<DateTime<Utc>>,
    checks: HashMap<String, Check>,
    first: Duration,
    max: Duration,
}

impl ApiChannelState {
    pub fn new(settings: &ApiSettings) -> ApiChannelState {
        ApiChannelState {
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
            paused_until: None,
            checks: HashMap::new(),
            first: settings.status_backoff_first,
            max: settings.status_backoff_max,
        }
    }

    fn due(&self, payout_no: &str, now: DateTime<Utc>) -> bool {
        self.checks.get(payout_no).is_none_or(|c| c.next_at <= now)
    }

    /// Asks again later, each time later.
    fn later(&mut self, payout_no: &str, now: DateTime<Utc>) {
        let attempts = self.checks.get(payout_no).map_or(0, |c| c.attempts);
        self.checks.insert(
            payout_no.to_string(),
            Check {
                attempts: attempts.saturating_add(1),
                next_at: now + status_backoff(self.first, self.max, attempts),
            },
        );
    }

    fn known(&mut self, payout_no: &str) {
        self.checks.remove(payout_no);
    }

    /// When the payout will be asked about next, if it waits.
    pub fn next_check(&self, payout_no: &str) -> Option<DateTime<Utc>> {
        self.checks.get(payout_no).map(|c| c.next_at)
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiRoundReport {
    pub channel: String,
    /// Requests `POST /payments` (first sends and sends again under the same key).
    pub sent: usize,
    /// Of `sent`, those sent again because the bank had never seen the key.
    pub resent: usize,
    pub status_queries: usize,
    /// Payouts whose outcome is unknown after this round (to be asked about again).
    pub unknown: Vec<String>,
    /// Payouts the bank has taken but not yet paid.
    pub accepted: Vec<String>,
    pub paid: Vec<String>,
    pub rejected: Vec<String>,
    /// Answers the rules refused (a conflict, another currency…): each opened an exception.
    pub exceptions: Vec<String>,
    /// Why the round sent nothing, if it did not (circuit open, 429).
    pub held: Option<String>,
}

impl ApiRoundReport {
    /// Nothing left to learn: no unknown outcome, nothing accepted and unpaid.
    pub fn settled(&self) -> bool {
        self.unknown.is_empty() && self.accepted.is_empty() && self.held.is_none()
    }
}

/// Polls every future to completion, together (requests in flight at once).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Which exception a refused answer opens (the kinds of a refused file line).
fn exception_kind(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Conflict { .. } => "conflict",
        Refusal::Contradiction { .. } | Refusal::CurrencyMismatch { .. } => "contradiction",
        Refusal::OutOfBounds { .. } | Refusal::BadAmount(_) => "out_of_bounds",
        _ => "not_applicable",
    }
}

/// What applying one answer did.
enum Applied {
    Stored(ApplyOutcome),
    Exception,
}

impl Engine {
    fn api_settings(&self, channel_id: &str) -> Result<&ApiSettings> {
        let channel = self.config.channel(channel_id)?;
        channel.api.as_ref().ok_or_else(|| {
            EngineError::Refused(format!(
                "channel {channel_id} is a {} channel, not http-api",
                channel.kind.as_str()
            ))
        })
    }

    /// How many payouts of the channel wait to be sent.
    pub async fn api_channel_pending(&self, channel_id: &str) -> Result<usize> {
        self.api_settings(channel_id)?;
        let rows: Vec<PayoutRow> = self
            .db
            .channel_payouts_in_state(channel_id, "pending", None)
            .await?;
        Ok(rows.len())
    }

    /// A fresh worker state for an `http-api` channel.
    pub fn api_channel_state(&self, channel_id: &str) -> Result<ApiChannelState> {
        Ok(ApiChannelState::new(self.api_settings(channel_id)?))
    }

    /// One round of the API-channel worker (module docs). `as_of` decides backoff, the breaker and
    /// every stored time.
    pub async fn api_channel_round<A: BankApi>(
        &self,
        channel_id: &str,
        api: &A,
        state: &mut ApiChannelState,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<ApiRoundReport> {
        let settings = self.api_settings(channel_id)?.clone();
        let mut report = ApiRoundReport {
            channel: channel_id.to_string(),
            ..ApiRoundReport::default()
        };
        if let Some(until) = state.paused_until {
            if as_of < until {
                report.held = Some(format!("the bank asked us to wait until {until} (429)"));
                return Ok(report);
            }
            state.paused_until = None;
        }
        let mut budget = state.breaker.budget(as_of);
        if budget == 0 {
            report.held = Some("circuit breaker open: the bank failed too often in a row".into());
            return Ok(report);
        }
        let chunk = settings.concurrency;

        // 1. Open outcomes: ask the bank.
        let open: Vec<PayoutRow> = self
            .db
            .channel_payouts_in_state(channel_id, "submitted", None)
            .await?;
        let (due, waiting): (Vec<PayoutRow>, Vec<PayoutRow>) = open
            .into_iter()
            .partition(|p| state.due(&p.payout_no, as_of));
        for p in &waiting {
            report.unknown.push(p.payout_no.clone());
        }
        let mut to_resend = Vec::new();
        'ask: for rows in due.chunks(chunk) {
            let rows = &rows[..rows.len().min(budget)];
            if rows.is_empty() {
                break;
            }
            budget = budget.saturating_sub(rows.len());
            let answers = join_all(rows.iter().map(|p| api.status(&p.payout_no)).collect()).await;
            report.status_queries += answers.len();
            for (row, answer) in rows.iter().zip(answers) {
                match answer {
                    BankAnswer::Known(BankStatus::Unknown) => {
                        state.breaker.success();
                        to_resend.push(row.clone());
                    }
                    BankAnswer::Throttled(wait) => {
                        self.throttled(state, &mut report, row, wait, as_of);
                        break 'ask;
                    }
                    answer => {
                        self.take_answer(row, answer, state, &mut report, as_of, actor)
                            .await?
                    }
                }
            }
        }

        // 2. Sends: again under the same key first, then the pending payouts.
        let pending: Vec<PayoutRow> = if report.held.is_some() {
            Vec::new()
        } else {
            self.db
                .channel_payouts_in_state(channel_id, "pending", Some(settings.payouts_per_round))
                .await?
        };
        let resend_count = to_resend.len();
        let mut queue: Vec<(PayoutRow, bool)> = to_resend.into_iter().map(|p| (p, true)).collect();
        queue.extend(pending.into_iter().map(|p| (p, false)));
        if report.held.is_some() {
            for (p, _) in &queue {
                report.unknown.push(p.payout_no.clone());
            }
            queue.clear();
        }
        let mut i = 0;
        while i < queue.len() {
            let take = chunk.min(budget).min(queue.len() - i);
            if take == 0 {
                for (p, again) in &queue[i..] {
                    if *again {
                        report.unknown.push(p.payout_no.clone());
                    }
                }
                break;
            }
            budget = budget.saturating_sub(take);
            let mut rows = Vec::with_capacity(take);
            let mut instructions = Vec::with_capacity(take);
            for (p, again) in &queue[i..i + take] {
                let row = if *again {
                    p.clone()
                } else {
                    // Submitted (and its journal written) before the request leaves: a crash
                    // after this leaves a submitted payout that the next round asks about.
                    match self.submit_api_payout(p, as_of, actor).await? {
                        Some(row) => row,
                        None => continue,
                    }
                };
                instructions.push(self.payment_instruction(&row).await?);
                rows.push(row);
            }
            i += take;
            let answers = join_all(instructions.iter().map(|x| api.send(x)).collect()).await;
            report.sent += answers.len();
            let mut stop = false;
            for (row, answer) in rows.iter().zip(answers) {
                match answer {
                    BankAnswer::Throttled(wait) => {
                        self.throttled(state, &mut report, row, wait, as_of);
                        stop = true;
                    }
                    BankAnswer::Known(BankStatus::Unknown) => {
                        state.breaker.failure(as_of);
                        state.later(&row.payout_no, as_of);
                        report.unknown.push(row.payout_no.clone());
                    }
                    answer => {
                        self.take_answer(row, answer, state, &mut report, as_of, actor)
                            .await?
                    }
                }
            }
            if stop {
                break;
            }
        }
        report.resent = resend_count.min(report.sent);
        Ok(report)
    }

    fn throttled(
        &self,
        state: &mut ApiChannelState,
        report: &mut ApiRoundReport,
        row: &PayoutRow,
        wait: std::time::Duration,
        as_of: DateTime<Utc>,
    ) {
        let wait = Duration::from_std(wait).unwrap_or(Duration::seconds(60));
        state.paused_until = Some(as_of + wait.max(Duration::seconds(1)));
        report.held = Some(format!("the bank answered 429: waiting {wait}"));
        // Not taken: asked about (and sent again) once the pause is over.
        state.checks.insert(
            row.payout_no.clone(),
            Check {
                attempts: 0,
                next_at: as_of + wait,
            },
        );
        report.unknown.push(row.payout_no.clone());
    }

    /// Records one answer about a submitted payout: a known status through the rules, anything
    /// else as an open outcome to be asked about later.
    async fn take_answer(
        &self,
        row: &PayoutRow,
        answer: BankAnswer,
        state: &mut ApiChannelState,
        report: &mut ApiRoundReport,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<()> {
        let no = row.payout_no.clone();
        match answer {
            BankAnswer::Known(status) => {
                state.breaker.success();
                let Some(result) = status.as_bank_result() else {
                    state.later(&no, as_of);
                    report.unknown.push(no);
                    return Ok(());
                };
                match self
                    .apply_api_result(&no, &result, as_of, actor, "api_answer")
                    .await?
                {
                    Applied::Exception => {
                        state.known(&no);
                        report.exceptions.push(no);
                    }
                    Applied::Stored(_) => match status {
                        BankStatus::Accepted { .. } => {
                            state.later(&no, as_of);
                            report.accepted.push(no);
                        }
                        BankStatus::Paid { .. } => {
                            state.known(&no);
                            report.paid.push(no);
                        }
                        _ => {
                            state.known(&no);
                            report.rejected.push(no);
                        }
                    },
                }
            }
            BankAnswer::KeyConflict(detail) => {
                state.breaker.success();
                let mut tx = self.db.write().await?;
                api_exception(
                    &mut tx,
                    row,
                    "conflict",
                    format!("the bank has payout {no} with another body (409): {detail}"),
                    json!({"answer": 409}),
                    as_of,
                    actor,
                )
                .await?;
                tx.commit().await?;
                // Still open: asked about again, never sent under another key.
                state.later(&no, as_of);
                report.exceptions.push(no);
            }
            BankAnswer::Unknown(why) => {
                tracing::warn!(channel = %row.channel_id, payout = %no, why = %why, "outcome unknown; will ask the bank's status");
                state.breaker.failure(as_of);
                state.later(&no, as_of);
                report.unknown.push(no);
            }
            BankAnswer::Refused { status, detail } => {
                tracing::error!(channel = %row.channel_id, payout = %no, status, detail = %detail, "the bank refused our request");
                state.breaker.failure(as_of);
                state.later(&no, as_of);
                report.unknown.push(no);
            }
            BankAnswer::Throttled(_) => unreachable!("handled by the caller"),
        }
        Ok(())
    }

    /// pending → submitted, in its own transaction. `None` if it is no longer pending (cancelled
    /// meanwhile, or another worker took it).
    async fn submit_api_payout(
        &self,
        row: &PayoutRow,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Option<PayoutRow>> {
        let mut tx = self.db.write().await?;
        let Some(fresh) = tx.payout_by_no(&row.payout_no).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        if fresh.state != "pending" {
            tx.rollback().await?;
            return Ok(None);
        }
        let channel = self.config.channel(&fresh.channel_id)?;
        let decision = disburse_core::payout::decide(
            &crate::payouts::facts(&fresh)?,
            &disburse_core::payout::PayoutEvent::Submit,
            &channel.policy,
            as_of,
        )
        .map_err(|e| EngineError::Refused(e.to_string()))?;
        let disburse_core::payout::Decision::Changed(t) = decision else {
            tx.rollback().await?;
            return Ok(None);
        };
        let row = self
            .store_transition(&mut tx, fresh, &t, None, &ResultSource::Api, as_of, actor)
            .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    async fn payment_instruction(&self, row: &PayoutRow) -> Result<PaymentInstruction> {
        let account = self
            .db
            .bank_account(row.bank_account_id)
            .await?
            .ok_or_else(|| corrupt(format!("payout {} has no bank account", row.payout_no)))?;
        let currency = disburse_core::Currency::parse(&row.currency).map_err(corrupt)?;
        let t = self.credit_transfer(row, &account, currency)?;
        Ok(PaymentInstruction {
            payout_no: row.payout_no.clone(),
            amount: t.amount,
            creditor_account: match t.creditor_account {
                CreditorAccount::Iban(iban) => iban,
                CreditorAccount::Other { id, bank_code } => format!("{bank_code}:{id}"),
            },
            creditor_name: t.creditor_name,
            reference: t.remittance_info,
        })
    }

    /// Applies one API answer (or callback) through the rules, in one transaction; a refused
    /// answer opens an exception for a person instead, like a refused line of a file.
    async fn apply_api_result(
        &self,
        payout_no: &str,
        result: &BankResult,
        as_of: DateTime<Utc>,
        actor: &Actor,
        via: &str,
    ) -> Result<Applied> {
        let mut tx = self.db.write().await?;
        let row = tx
            .payout_by_no(payout_no)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "payout",
                id: payout_no.to_string(),
            })?;
        let keep = row.clone();
        let outcome = self
            .apply_to_row(&mut tx, row, result, &ResultSource::Api, as_of, actor)
            .await?;
        let applied = match outcome {
            Ok(o) => Applied::Stored(o),
            Err(refusal) => {
                api_exception(
                    &mut tx,
                    &keep,
                    exception_kind(&refusal),
                    refusal.to_string(),
                    json!({"bank_result": result, "via": via}),
                    as_of,
                    actor,
                )
                .await?;
                Applied::Exception
            }
        };
        tx.commit().await?;
        Ok(applied)
    }

    /// A bank's signed notification about one of this channel's payouts (its signature already
    /// checked by the server). Repeated, late and out-of-order notifications go through the same
    /// rules as late file results: a repeat changes nothing, a contradiction goes to a person.
    pub async fn apply_api_callback(
        &self,
        channel_id: &str,
        payout_no: &PayoutNo,
        status: &BankStatus,
        as_of: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<&'static str> {
        self.api_settings(channel_id)?;
        let row = self
            .db
            .payout_by_no(payout_no.as_str())
            .await?
            .ok_or_else(|| EngineError::NotFound {
                what: "payout",
                id: payout_no.to_string(),
            })?;
        if row.channel_id != channel_id {
            return Err(EngineError::Refused(format!(
                "payout {payout_no} was sent through {}, not {channel_id}",
                row.channel_id
            )));
        }
        let Some(result) = status.as_bank_result() else {
            return Ok("the bank says it does not know the payment");
        };
        Ok(
            match self
                .apply_api_result(payout_no.as_str(), &result, as_of, actor, "callback")
                .await?
            {
                Applied::Stored(ApplyOutcome::Applied(_)) => "applied",
                Applied::Stored(ApplyOutcome::Unchanged(why)) => why,
                Applied::Exception => "refused by the rules: an exception is open for a person",
            },
        )
    }
}

/// An exception about an API answer (no file, no line); the same fact open already opens none.
async fn api_exception(
    tx: &mut WriteTx<'_>,
    row: &PayoutRow,
    kind: &str,
    reason: String,
    detail: serde_json::Value,
    as_of: DateTime<Utc>,
    actor: &Actor,
) -> Result<()> {
    if tx
        .open_exception_of_fact(&row.payout_no, kind, &reason)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let at = fmt_time(as_of);
    let e = ExceptionRow {
        id: tx.next_id("exception").await?,
        kind: kind.into(),
        status: "open".into(),
        payout_no: Some(row.payout_no.clone()),
        merchant_id: Some(row.merchant_id.clone()),
        amount_minor: Some(row.amount_minor),
        currency: Some(row.currency.clone()),
        bank_file_id: None,
        line: None,
        reason: reason.clone(),
        detail: detail.to_string(),
        created_at: at.clone(),
        resolved_at: None,
        resolved_by: None,
    };
    tx.insert(&e).await?;
    tx.audit(NewAuditEvent {
        at,
        actor: actor.as_str().into(),
        action: format!("exception.{kind}"),
        subject: format!("exception:{}", e.id),
        reason: Some(reason),
        detail: json!({"channel": row.channel_id, "payout_no": row.payout_no}),
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let (first, max) = (Duration::seconds(2), Duration::seconds(60));
        let waits: Vec<i64> = (0..8)
            .map(|a| status_backoff(first, max, a).num_seconds())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(status_backoff(first, max, 400), max);
    }

    #[test]
    fn breaker_opens_after_failures_in_a_row_then_half_opens() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut b = Breaker::new(3, Duration::seconds(30));
        b.failure(t);
        b.failure(t);
        assert_eq!(b.budget(t), usize::MAX);
        b.success();
        b.failure(t);
        b.failure(t);
        assert!(!b.is_open(t), "a success in between resets the count");
        b.failure(t);
        assert!(b.is_open(t));
        assert!(b.is_open(t + Duration::seconds(29)));
        assert_eq!(b.budget(t + Duration::seconds(30)), 1, "half open: one try");
        b.failure(t + Duration::seconds(30));
        assert!(
            b.is_open(t + Duration::seconds(31)),
            "a failed try opens it again"
        );
        b.success();
        assert_eq!(b.budget(t + Duration::seconds(31)), usize::MAX);
    }
}
