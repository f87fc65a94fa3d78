//! Finding what was changed behind the system's back, and checking the books.

use std::collections::{BTreeMap, HashMap};

use disburse_core::audit::{chain_hash, RowDigest, GENESIS_HASH};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use crate::rows::*;
use crate::Result;

/// One thing that does not match what the system wrote. The first one found is the one to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TamperFinding {
    pub what: String,
}

/// Walks the hash chain, then compares every tracked row with the last digest the chain holds
/// for it: a changed row, a removed row and a row nobody recorded are all found.
pub async fn verify_audit(pool: &AnyPool) -> Result<Vec<TamperFinding>> {
    let mut findings = Vec::new();
    let mut latest: HashMap<(String, String), (String, i64)> = HashMap::new();
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut expected_seq = 1i64;
    let events = sqlx::query(&format!("{} ORDER BY seq", AuditEventRow::SELECT))
        .fetch_all(pool)
        .await?;
    for raw in &events {
        let event = AuditEventRow::from_row(raw)?;
        if event.seq != expected_seq {
            findings.push(TamperFinding {
                what: format!(
                    "audit event {expected_seq} is missing (next stored event is {})",
                    event.seq
                ),
            });
            expected_seq = event.seq;
        }
        if event.prev_hash != prev_hash {
            findings.push(TamperFinding {
                what: format!(
                    "audit event {} does not follow the event before it (prev_hash differs)",
                    event.seq
                ),
            });
        }
        if chain_hash(&event.prev_hash, &event.canonical()) != event.hash {
            findings.push(TamperFinding {
                what: format!(
                    "audit event {} ({} {}) was changed after it was written",
                    event.seq, event.action, event.subject
                ),
            });
        }
        match serde_json::from_str::<Vec<RowDigest>>(&event.rows_written) {
            Ok(digests) => {
                for d in digests {
                    latest.insert((d.table, d.key), (d.sha256, event.seq));
                }
            }
            Err(_) => findings.push(TamperFinding {
                what: format!("audit event {} has unreadable row digests", event.seq),
            }),
        }
        prev_hash = event.hash.clone();
        expected_seq += 1;
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    if head_seq != expected_seq - 1 || head_hash != prev_hash {
        findings.push(TamperFinding {
            what: format!(
                "the audit chain ends at event {} but the head says {head_seq}: events were removed or added",
                expected_seq - 1
            ),
        });
    }

    check_table::<MerchantRow>(pool, &mut latest, &mut findings).await?;
    check_table::<BankAccountRow>(pool, &mut latest, &mut findings).await?;
    check_table::<OrderRow>(pool, &mut latest, &mut findings).await?;
    check_table::<PayoutRow>(pool, &mut latest, &mut findings).await?;
    check_table::<JournalRow>(pool, &mut latest, &mut findings).await?;
    check_table::<JournalLineRow>(pool, &mut latest, &mut findings).await?;
    check_table::<BatchRow>(pool, &mut latest, &mut findings).await?;
    check_table::<BankFileRow>(pool, &mut latest, &mut findings).await?;
    check_table::<EvidenceRow>(pool, &mut latest, &mut findings).await?;
    check_table::<ExceptionRow>(pool, &mut latest, &mut findings).await?;
    check_table::<OperatorRow>(pool, &mut latest, &mut findings).await?;
    check_table::<CorrectionRow>(pool, &mut latest, &mut findings).await?;
    check_table::<DiscrepancyRow>(pool, &mut latest, &mut findings).await?;
    let mut missing: Vec<_> = latest.into_iter().collect();
    missing.sort_by_key(|(_, (_, seq))| *seq);
    for ((table, key), (_, seq)) in missing {
        findings.push(TamperFinding {
            what: format!("{table} row {key} (written by audit event {seq}) was deleted"),
        });
    }
    Ok(findings)
}

async fn check_table<T: Tracked>(
    pool: &AnyPool,
    latest: &mut HashMap<(String, String), (String, i64)>,
    findings: &mut Vec<TamperFinding>,
) -> Result<()> {
    let rows = sqlx::query(T::SELECT).fetch_all(pool).await?;
    for raw in &rows {
        let row = T::from_row(raw)?;
        let digest = row.digest();
        match latest.remove(&(digest.table.clone(), digest.key.clone())) {
            None => findings.push(TamperFinding {
                what: format!(
                    "{} row {} was inserted behind the system's back (no audit event wrote it)",
                    T::TABLE,
                    digest.key
                ),
            }),
            Some((sha, seq)) if sha != digest.sha256 => findings.push(TamperFinding {
                what: format!(
                    "{} row {} differs from what audit event {seq} recorded",
                    T::TABLE,
                    digest.key
                ),
            }),
            Some(_) => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerCheck {
    /// Journals whose lines do not sum to zero in some currency: (journal id, currency, off by).
    pub unbalanced: Vec<(i64, String, i64)>,
    /// Sum of all balances per currency; zero when the books are right.
    pub totals: BTreeMap<String, i64>,
}

impl LedgerCheck {
    pub fn is_ok(&self) -> bool {
        self.unbalanced.is_empty() && self.totals.values().all(|v| *v == 0)
    }
}

pub(crate) async fn ledger_check(pool: &AnyPool) -> Result<LedgerCheck> {
    let rows = sqlx::query(
        "SELECT journal_id, currency, CAST(SUM(amount_minor) AS BIGINT) AS total FROM journal_lines \
         GROUP BY journal_id, currency HAVING SUM(amount_minor) <> 0 ORDER BY journal_id",
    )
    .fetch_all(pool)
    .await?;
    let mut unbalanced = Vec::new();
    for r in &rows {
        unbalanced.push((
            r.try_get("journal_id")?,
            r.try_get("currency")?,
            r.try_get("total")?,
        ));
    }
    let rows = sqlx::query(
        "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS total FROM journal_lines GROUP BY currency ORDER BY currency",
    )
    .fetch_all(pool)
    .await?;
    let mut totals = BTreeMap::new();
    for r in &rows {
        totals.insert(r.try_get("currency")?, r.try_get("total")?);
    }
    Ok(LedgerCheck { unbalanced, totals })
}
