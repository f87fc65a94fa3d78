//! Small read models the operator console asks for: which order a payout belongs to, and which
//! orders carry an order number (merchants choose their numbers, so several may).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use disburse_store::{fmt_time, parse_time, AuditFilter, OutboxRow, PayoutRow};
use serde::Serialize;

use crate::error::corrupt;
use crate::views::{natural_sign, AuditView, BalanceView, MessageView, MoneyView};
use crate::{BatchSummary, Engine, FileWritten, Result};

/// A payout's order, for search by payout number and for the currency of a correction's amount.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutOrder {
    pub payout_no: String,
    pub state: String,
    pub currency: String,
    /// The channel it was made on.
    pub channel: String,
    pub merchant: String,
    pub order_no: String,
}

impl Engine {
    /// The order a payout belongs to; `None` when no payout has that number.
    pub async fn payout_order(&self, payout_no: &str) -> Result<Option<PayoutOrder>> {
        let Some(p): Option<PayoutRow> = self.db.payout_by_no(payout_no).await? else {
            return Ok(None);
        };
        let Some(order) = self.db.order(p.order_id).await? else {
            return Ok(None);
        };
        Ok(Some(PayoutOrder {
            payout_no: p.payout_no,
            state: p.state,
            currency: p.currency,
            channel: p.channel_id,
            merchant: order.merchant_id,
            order_no: order.order_no,
        }))
    }

    /// Every (merchant, order number) with this order number, in the order they were taken.
    pub async fn orders_numbered(&self, order_no: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .db
            .orders_by_no(order_no, None)
            .await?
            .into_iter()
            .map(|o| (o.merchant_id, o.order_no))
            .collect())
    }
}

/// The overview's age buckets by their upper bound in whole hours, exclusive (the last is
/// open): under an hour, under a day, under three days, older.
pub const AGE_BUCKETS: [Option<i64>; 4] = [Some(1), Some(24), Some(72), None];

/// Which of [`AGE_BUCKETS`] an age in whole hours falls into.
pub fn age_bucket(age_hours: i64) -> usize {
    AGE_BUCKETS
        .iter()
        .position(|bound| bound.is_none_or(|b| age_hours < b))
        .unwrap_or(AGE_BUCKETS.len() - 1)
}

/// Payouts sent or about to be sent whose result the bank has not given yet, of one channel
/// and currency, by age since they were sent (or made, while pending).
#[derive(Debug, Clone, Serialize)]
pub struct InTransit {
    pub channel: String,
    pub currency: String,
    /// One per [`AGE_BUCKETS`]: how many payouts and their sum.
    pub counts: [i64; 4],
    pub sums: [MoneyView; 4],
    pub total: MoneyView,
}

/// Open exceptions of one kind, counted by age.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionsOfKind {
    pub kind: String,
    pub counts: [i64; 4],
    pub total: i64,
}

/// How long since a file channel's last result file, and what waits for one.
#[derive(Debug, Clone, Serialize)]
pub struct ImportLag {
    pub channel: String,
    pub kind: String,
    pub last_file: Option<String>,
    pub last_file_at: Option<String>,
    /// Whole hours since the last result file started importing; `None`: never.
    pub hours_since_last_file: Option<i64>,
    /// Submitted payouts of the channel without a result yet.
    pub awaiting_result: i64,
    /// Age in whole hours of the oldest of them.
    pub oldest_awaiting_hours: Option<i64>,
}

/// A result file and how long ago its import started.
#[derive(Debug, Clone, Serialize)]
pub struct LastFile {
    pub file_name: String,
    pub started_at: String,
    pub hours_since: i64,
}

/// A result file imported today.
#[derive(Debug, Clone, Serialize)]
pub struct FileToday {
    pub file_name: String,
    pub channel: Option<String>,
    pub status: String,
    pub records_total: i64,
    pub applied: i64,
    pub unchanged: i64,
    pub exceptions: i64,
    pub started_at: String,
}

/// The console's home page: where money is, what needs people, whether banks answer, and
/// what went out and came in today (the UTC day of `as_of`).
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub as_of: String,
    pub in_transit: Vec<InTransit>,
    pub exceptions: Vec<ExceptionsOfKind>,
    pub import_lag: Vec<ImportLag>,
    /// The last result file imported without a channel named (an XML file may be): the lag
    /// per channel cannot count it, the page shows it beside them.
    pub last_file_without_channel: Option<LastFile>,
    pub batches_today: Vec<BatchSummary>,
    pub files_today: Vec<FileToday>,
}

fn hours_between(since: &str, as_of: DateTime<Utc>) -> Result<i64> {
    Ok((as_of - parse_time(since)?).num_hours().max(0))
}

fn add_checked(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b)
        .ok_or_else(|| corrupt("a sum in transit does not fit in 64 bits"))
}

impl Engine {
    /// The overview at `as_of`.
    pub async fn overview(&self, as_of: DateTime<Utc>) -> Result<Overview> {
        // Money in transit, by (channel, currency) and age.
        let live = self.db.payouts_in_states(&["pending", "submitted"]).await?;
        let mut transit: BTreeMap<(String, String), ([i64; 4], [i64; 4])> = BTreeMap::new();
        for p in &live {
            let since = p.submitted_at.as_deref().unwrap_or(&p.created_at);
            let bucket = age_bucket(hours_between(since, as_of)?);
            let entry = transit
                .entry((p.channel_id.clone(), p.currency.clone()))
                .or_default();
            entry.0[bucket] += 1;
            entry.1[bucket] = add_checked(entry.1[bucket], p.amount_minor)?;
        }
        let mut in_transit = Vec::with_capacity(transit.len());
        for ((channel, currency), (counts, sums)) in transit {
            let total = sums.iter().try_fold(0, |a, b| add_checked(a, *b))?;
            in_transit.push(InTransit {
                sums: sums.map(|s| MoneyView::new(s, &currency)),
                total: MoneyView::new(total, &currency),
                channel,
                currency,
                counts,
            });
        }
        // Exceptions, by kind and age: the same list the queue shows.
        let mut kinds: BTreeMap<String, [i64; 4]> = BTreeMap::new();
        for item in self.exceptions(as_of).await? {
            kinds.entry(item.kind).or_default()[age_bucket(item.age_hours)] += 1;
        }
        let exceptions = kinds
            .into_iter()
            .map(|(kind, counts)| ExceptionsOfKind {
                total: counts.iter().sum(),
                kind,
                counts,
            })
            .collect();
        // Import lag of every channel that answers in files.
        let mut import_lag = Vec::new();
        for c in &self.config.channels {
            if c.kind.sends_immediately() {
                continue;
            }
            let last = self.db.last_bank_file_of_channel(c.id.as_str()).await?;
            let awaiting: Vec<&PayoutRow> = live
                .iter()
                .filter(|p| p.state == "submitted" && p.channel_id == c.id.as_str())
                .collect();
            let mut oldest = None;
            for p in &awaiting {
                let h = hours_between(p.submitted_at.as_deref().unwrap_or(&p.created_at), as_of)?;
                oldest = Some(oldest.map_or(h, |o: i64| o.max(h)));
            }
            import_lag.push(ImportLag {
                channel: c.id.to_string(),
                kind: c.kind.as_str().to_string(),
                hours_since_last_file: match &last {
                    Some(f) => Some(hours_between(&f.started_at, as_of)?),
                    None => None,
                },
                last_file: last.as_ref().map(|f| f.file_name.clone()),
                last_file_at: last.map(|f| f.started_at),
                awaiting_result: awaiting.len() as i64,
                oldest_awaiting_hours: oldest,
            });
        }
        let last_file_without_channel = match self.db.last_bank_file_without_channel().await? {
            Some(f) => Some(LastFile {
                hours_since: hours_between(&f.started_at, as_of)?,
                file_name: f.file_name,
                started_at: f.started_at,
            }),
            None => None,
        };
        // Today's batches and files.
        let day_start = fmt_time(
            as_of
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(as_of),
        );
        let mut batches_today = Vec::new();
        for b in self.db.batches_created_since(&day_start).await? {
            let mut summary = BatchSummary::from(&b);
            summary.file_written = self.db.batch_file_write(b.id).await?.map(|w| FileWritten {
                path: w.path,
                written_at: w.written_at,
            });
            batches_today.push(summary);
        }
        let files_today = self
            .db
            .bank_files_started_since(&day_start)
            .await?
            .into_iter()
            .map(|f| FileToday {
                file_name: f.file_name,
                channel: f.channel_id,
                status: f.status,
                records_total: f.records_total,
                applied: f.applied,
                unchanged: f.unchanged,
                exceptions: f.exceptions,
                started_at: f.started_at,
            })
            .collect();
        Ok(Overview {
            as_of: fmt_time(as_of),
            in_transit,
            exceptions,
            import_lag,
            last_file_without_channel,
            batches_today,
            files_today,
        })
    }
}

/// One entry of a discrepancy's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: String,
    pub what: String,
}

/// A discrepancy as the desk works it: what is owed and by whom, where it stands, what was done,
/// and what the merchant was told.
#[derive(Debug, Serialize)]
pub struct DiscrepancyView {
    pub id: i64,
    pub merchant: String,
    pub order_no: String,
    /// `overpaid`, `duplicate` (the merchant owes us) or `underpaid` (we owe the merchant).
    pub direction: String,
    pub owed_to_us: bool,
    pub amount: MoneyView,
    /// How much of it is settled so far (netting settles in parts).
    pub settled: MoneyView,
    pub origin_payout_no: String,
    pub status: String,
    pub opened_at: String,
    pub settled_at: Option<String>,
    pub resolution: Option<String>,
    pub topup_payout_no: Option<String>,
    pub write_off_proposed_by: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// Messages to the merchant about this discrepancy or its top-up payout, oldest first.
    pub told: Vec<MessageView>,
}

impl Engine {
    /// Discrepancies (only those not settled when `open_only`), each with its order number,
    /// history and the merchant's messages about it.
    pub async fn discrepancy_desk(&self, open_only: bool) -> Result<Vec<DiscrepancyView>> {
        let rows = self.discrepancies(open_only).await?;
        let mut outboxes: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for d in rows {
            if !outboxes.contains_key(&d.merchant_id) {
                let messages = self.db.outbox_of_merchant(&d.merchant_id).await?;
                outboxes.insert(d.merchant_id.clone(), messages);
            }
            let order_no = self
                .db
                .order(d.order_id)
                .await?
                .map(|o| o.order_no)
                .ok_or_else(|| corrupt(format!("discrepancy {} without its order", d.id)))?;
            let told = outboxes
                .get(&d.merchant_id)
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let payload: serde_json::Value = serde_json::from_str(&m.payload).ok()?;
                    // Opened by a bank's answer, the message names the payout, not the id.
                    let about_it = match payload.get("discrepancy") {
                        Some(id) => id.as_i64() == Some(d.id),
                        None => {
                            m.topic.starts_with("discrepancy.")
                                && payload.get("payout_no").and_then(|v| v.as_str())
                                    == Some(d.origin_payout_no.as_str())
                        }
                    };
                    let about_topup = d.topup_payout_no.is_some()
                        && payload.get("payout_no").and_then(|v| v.as_str())
                            == d.topup_payout_no.as_deref();
                    (about_it || about_topup).then(|| MessageView {
                        topic: m.topic.clone(),
                        payload,
                        created_at: m.created_at.clone(),
                    })
                })
                .collect();
            let history = serde_json::from_str::<Vec<serde_json::Value>>(&d.history)
                .unwrap_or_default()
                .into_iter()
                .map(|h| HistoryEntry {
                    at: h
                        .get("at")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    what: h
                        .get("what")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                })
                .collect();
            out.push(DiscrepancyView {
                id: d.id,
                owed_to_us: crate::discrepancy_tracking::owed_to_us(&d.direction),
                amount: MoneyView::new(d.amount_minor, &d.currency),
                settled: MoneyView::new(d.settled_minor, &d.currency),
                merchant: d.merchant_id,
                order_no,
                direction: d.direction,
                origin_payout_no: d.origin_payout_no,
                status: d.status,
                opened_at: d.opened_at,
                settled_at: d.settled_at,
                resolution: d.resolution,
                topup_payout_no: d.topup_payout_no,
                write_off_proposed_by: d.write_off_proposed_by,
                history,
                told,
            });
        }
        Ok(out)
    }
}

/// A merchant in the console's list: its account masked to the last four digits.
#[derive(Debug, Clone, Serialize)]
pub struct MerchantLine {
    pub id: String,
    pub name: String,
    /// `ok`, or `needs_update` while a bank refused its account.
    pub account_status: String,
    pub account_last4: Option<String>,
}

impl Engine {
    /// Every merchant, by id, with its current account masked.
    pub async fn merchant_lines(&self) -> Result<Vec<MerchantLine>> {
        let mut out = Vec::new();
        for m in self.db.merchants().await? {
            let last4 = self.db.current_bank_account(&m.id).await?.map(|a| a.last4);
            out.push(MerchantLine {
                id: m.id,
                name: m.name,
                account_status: m.account_status,
                account_last4: last4,
            });
        }
        Ok(out)
    }
}

/// One currency's trial balance: every account's balance summed, debits and credits apart
/// (stored sums are debit-positive); `net` is zero when the books are right.
#[derive(Debug, Clone, Serialize)]
pub struct TrialBalance {
    pub currency: String,
    pub debits: MoneyView,
    pub credits: MoneyView,
    pub net: MoneyView,
}

/// The ledger as the console shows it: each account's balance as people read it, and the trial
/// balance per currency.
#[derive(Debug, Serialize)]
pub struct LedgerView {
    pub balances: Vec<BalanceView>,
    pub trial: Vec<TrialBalance>,
}

/// What `verify` found: the audit chain against every tracked row, and the books.
#[derive(Debug, Serialize)]
pub struct BooksCheck {
    pub audit_findings: Vec<String>,
    pub ledger_ok: bool,
    pub unbalanced_journals: Vec<i64>,
    pub totals: Vec<MoneyView>,
}

impl BooksCheck {
    pub fn is_ok(&self) -> bool {
        self.audit_findings.is_empty() && self.ledger_ok
    }
}

impl Engine {
    /// Audit events matching the filter, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditView>> {
        Ok(self
            .db
            .audit_events_filtered(filter)
            .await?
            .into_iter()
            .map(AuditView::from)
            .collect())
    }

    pub async fn ledger_view(&self) -> Result<LedgerView> {
        let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut balances = Vec::new();
        for (account, currency, total) in self.db.balances().await? {
            let entry = sums.entry(currency.clone()).or_default();
            if total >= 0 {
                entry.0 = add_checked(entry.0, total)?;
            } else {
                entry.1 = add_checked(
                    entry.1,
                    total
                        .checked_neg()
                        .ok_or_else(|| corrupt("balance overflow"))?,
                )?;
            }
            balances.push(BalanceView {
                amount: MoneyView::new(natural_sign(&account, total), &currency),
                account,
            });
        }
        let mut trial = Vec::new();
        for (currency, (debits, credits)) in sums {
            let net = debits
                .checked_sub(credits)
                .ok_or_else(|| corrupt("trial balance overflow"))?;
            trial.push(TrialBalance {
                debits: MoneyView::new(debits, &currency),
                credits: MoneyView::new(credits, &currency),
                net: MoneyView::new(net, &currency),
                currency,
            });
        }
        Ok(LedgerView { balances, trial })
    }

    /// `verify`: walks the audit chain, checks every tracked row against it, checks the books.
    pub async fn verify_books(&self) -> Result<BooksCheck> {
        let findings = self.db.verify_audit().await?;
        let ledger = self.db.ledger_check().await?;
        Ok(BooksCheck {
            audit_findings: findings.into_iter().map(|f| f.what).collect(),
            ledger_ok: ledger.is_ok(),
            unbalanced_journals: ledger.unbalanced.iter().map(|(id, _, _)| *id).collect(),
            totals: ledger
                .totals
                .iter()
                .map(|(c, v)| MoneyView::new(*v, c))
                .collect(),
        })
    }
}

/// A list as a spreadsheet-safe CSV file (cells that could start a formula neutralised).
pub fn csv_export(headers: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    disburse_formats::write_export(headers, rows).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_into_the_buckets_at_their_bounds() {
        assert_eq!(age_bucket(0), 0);
        assert_eq!(age_bucket(1), 1);
        assert_eq!(age_bucket(23), 1);
        assert_eq!(age_bucket(24), 2);
        assert_eq!(age_bucket(71), 2);
        assert_eq!(age_bucket(72), 3);
        assert_eq!(age_bucket(10_000), 3);
    }
}
