//! Finding what was changed behind the system's back, and checking the books.

use std::collections::{BTreeMap, HashMap};

use disburse_core::audit::{chain_hash, chain_hmac, Anchor, RowDigest, DELETED, GENESIS_HASH};
use disburse_core::crypto::ChainKey;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::rows::*;
use crate::{Backend, Result};

/// One thing that does not match what the system wrote. The first one found is the one to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TamperFinding {
    pub what: String,
}

/// The last digest the chain holds for each (table, key), and the event that wrote it.
pub(crate) type Latest = HashMap<(String, String), (String, i64)>;

/// Walks the hash chain, then compares every tracked row with the last digest the chain holds
/// for it: a changed row, a removed row and a row nobody recorded are all found.
///
/// Events from the head's `keyed_from` on must carry an HMAC under the chain key, so an event
/// forged or re-hashed with SQL alone is found; older ones (a database from before migration
/// 0008, up to its switch point) only carry a plain SHA-256, which anyone can recompute. With an
/// anchor, the chain must still hold the anchor's event with the anchor's hash: what was cut off
/// the end, or rewritten up to that event, is found too.
///
/// Everything is read in one read-only transaction, so the chain, the head and the tables are
/// one consistent state even while other processes write (monitoring can run it at any time):
/// on PostgreSQL a REPEATABLE READ snapshot, on SQLite (WAL) one read transaction, whose
/// snapshot is fixed at its first read and never blocks the writer.
pub(crate) async fn verify_audit(
    pool: &AnyPool,
    backend: Backend,
    key: &ChainKey,
    anchor: Option<&Anchor>,
) -> Result<Vec<TamperFinding>> {
    let mut tx = snapshot(pool, backend).await?;
    let findings = verify_in(&mut tx, key, anchor).await;
    // Read only: nothing to keep.
    tx.rollback().await?;
    findings.map(|(findings, _)| findings)
}

/// A signed checkpoint of the head, cut only if the chain verifies in the same snapshot.
pub(crate) async fn cut_anchor(
    pool: &AnyPool,
    backend: Backend,
    key: &ChainKey,
    cut_at: &str,
) -> Result<std::result::Result<Anchor, Vec<TamperFinding>>> {
    let mut tx = snapshot(pool, backend).await?;
    let verified = verify_in(&mut tx, key, None).await;
    tx.rollback().await?;
    let (findings, head) = verified?;
    if !findings.is_empty() {
        return Ok(Err(findings));
    }
    Ok(Ok(Anchor::cut(
        key,
        head.seq,
        &head.hash,
        head.keyed_from.unwrap_or(1),
        cut_at,
    )))
}

async fn snapshot(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

struct Head {
    seq: i64,
    hash: String,
    keyed_from: Option<i64>,
}

async fn verify_in(
    conn: &mut AnyConnection,
    key: &ChainKey,
    anchor: Option<&Anchor>,
) -> Result<(Vec<TamperFinding>, Head)> {
    let mut findings = Vec::new();
    // The head first: in SQLite the snapshot is fixed at the first read anyway.
    let head = sqlx::query("SELECT seq, hash, keyed_from FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let head = Head {
        seq: head.try_get("seq")?,
        hash: head.try_get("hash")?,
        keyed_from: head.try_get("keyed_from")?,
    };
    let mut latest: Latest = HashMap::new();
    let mut anchor_seen = false;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut expected_seq = 1i64;
    let events = sqlx::query(&format!("{} ORDER BY seq", AuditEventRow::SELECT))
        .fetch_all(&mut *conn)
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
        let keyed = head.keyed_from.is_some_and(|from| event.seq >= from);
        let expected = if keyed {
            chain_hmac(key, &event.prev_hash, &event.canonical())
        } else {
            chain_hash(&event.prev_hash, &event.canonical())
        };
        if expected != event.hash {
            findings.push(TamperFinding {
                what: format!(
                    "audit event {} ({} {}) was changed after it was written, or forged: its \
                     hash does not verify{}",
                    event.seq,
                    event.action,
                    event.subject,
                    if keyed { " under the chain key" } else { "" }
                ),
            });
        }
        if Some(event.seq) == head.keyed_from
            && event.seq > 1
            && event.action != "audit.chain_keyed"
        {
            findings.push(TamperFinding {
                what: format!(
                    "the head says the chain is keyed from event {}, which is not the \
                     audit.chain_keyed switch event: the head was altered",
                    event.seq
                ),
            });
        }
        if let Some(a) = anchor.filter(|a| a.seq == event.seq) {
            anchor_seen = true;
            if a.hash != event.hash {
                findings.push(TamperFinding {
                    what: format!(
                        "audit event {} differs from the anchor cut at {}: the chain was \
                         rewritten up to it",
                        event.seq, a.cut_at
                    ),
                });
            }
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
    let last = expected_seq - 1;
    if head.seq != last || head.hash != prev_hash {
        findings.push(TamperFinding {
            what: format!(
                "the audit chain ends at event {last} but the head says {}: events were removed or added",
                head.seq
            ),
        });
    }
    match head.keyed_from {
        None if last > 0 => findings.push(TamperFinding {
            what: format!(
                "the audit chain is not keyed: its {last} events carry plain SHA-256 hashes that \
                 anyone can recompute (a database from before migration 0008 is switched by its \
                 next write; otherwise the head was altered)"
            ),
        }),
        Some(from) if from < 1 || from > last + 1 => findings.push(TamperFinding {
            what: format!(
                "the head says the chain is keyed from event {from}, which does not exist: the \
                 head was altered"
            ),
        }),
        _ => {}
    }
    if let Some(a) = anchor {
        if a.seq > last {
            findings.push(TamperFinding {
                what: format!(
                    "the audit chain ends at event {last}, before event {} of the anchor cut at \
                     {}: events were removed from its end",
                    a.seq, a.cut_at
                ),
            });
        } else if !anchor_seen && a.seq > 0 {
            findings.push(TamperFinding {
                what: format!(
                    "audit event {} of the anchor cut at {} is missing",
                    a.seq, a.cut_at
                ),
            });
        }
        if head.keyed_from.unwrap_or(1) != a.keyed_from {
            findings.push(TamperFinding {
                what: format!(
                    "the head says the chain is keyed from event {:?}, the anchor cut at {} says \
                     {}: the head was altered",
                    head.keyed_from, a.cut_at, a.keyed_from
                ),
            });
        }
    }

    check_all_tracked(conn, &mut latest, &mut findings).await?;
    let mut missing: Vec<_> = latest
        .into_iter()
        .filter(|(_, (sha, _))| sha != DELETED)
        .collect();
    missing.sort_by_key(|(_, (_, seq))| *seq);
    for ((table, key), (_, seq)) in missing {
        findings.push(TamperFinding {
            what: format!("{table} row {key} (written by audit event {seq}) was deleted"),
        });
    }
    // Balance rows are not in the chain: they are a function of the lines, which are. A row
    // that is not that function was written behind the system's back (and a withdrawal would
    // have trusted it).
    for off in balance_rows_off(conn).await? {
        findings.push(TamperFinding {
            what: format!(
                "the balance of {} in {} reads {} but its journal lines sum to {}: the balance \
                 row was changed behind the system's back",
                off.account, off.currency, off.row_minor, off.lines_minor
            ),
        });
    }
    Ok((findings, head))
}

pub(crate) async fn check_table<T: Tracked>(
    conn: &mut AnyConnection,
    latest: &mut Latest,
    findings: &mut Vec<TamperFinding>,
) -> Result<()> {
    let rows = sqlx::query(T::SELECT).fetch_all(&mut *conn).await?;
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
            Some((sha, seq)) if sha == DELETED => findings.push(TamperFinding {
                what: format!(
                    "{} row {} was put back behind the system's back (audit event {seq} deleted it)",
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
    /// Balance rows that are not the sum of their account's journal lines.
    pub balance_rows_off: Vec<BalanceRowOff>,
}

/// An `account_balances` row that disagrees with the journal lines of its account (a missing
/// row reads as 0; a row with no lines is compared with 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceRowOff {
    pub account: String,
    pub currency: String,
    /// What the row says (0 when there is no row).
    pub row_minor: i64,
    /// What the lines sum to (pinned at the edge of `i64` if beyond it).
    pub lines_minor: i64,
}

impl LedgerCheck {
    pub fn is_ok(&self) -> bool {
        self.unbalanced.is_empty()
            && self.totals.values().all(|v| *v == 0)
            && self.balance_rows_off.is_empty()
    }
}

/// Every balance row compared with the sum of its account's lines, both ways.
pub(crate) async fn balance_rows_off(conn: &mut AnyConnection) -> Result<Vec<BalanceRowOff>> {
    let sums = sqlx::query(&format!(
        "SELECT account, currency, {} FROM journal_lines GROUP BY account, currency",
        crate::sums::split_sum("amount_minor")
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut by_lines: BTreeMap<(String, String), i128> = BTreeMap::new();
    for r in &sums {
        by_lines.insert(
            (r.try_get("account")?, r.try_get("currency")?),
            crate::sums::read_split_sum(r)?,
        );
    }
    let rows = sqlx::query("SELECT account, currency, balance_minor FROM account_balances")
        .fetch_all(&mut *conn)
        .await?;
    let mut off = Vec::new();
    for r in &rows {
        let key: (String, String) = (r.try_get("account")?, r.try_get("currency")?);
        let row_minor: i64 = r.try_get("balance_minor")?;
        let lines = by_lines.remove(&key).unwrap_or(0);
        if i128::from(row_minor) != lines {
            off.push(BalanceRowOff {
                account: key.0,
                currency: key.1,
                row_minor,
                lines_minor: saturate(lines),
            });
        }
    }
    for ((account, currency), lines) in by_lines {
        if lines != 0 {
            off.push(BalanceRowOff {
                account,
                currency,
                row_minor: 0,
                lines_minor: saturate(lines),
            });
        }
    }
    off.sort_by(|a, b| (&a.account, &a.currency).cmp(&(&b.account, &b.currency)));
    Ok(off)
}

pub(crate) async fn ledger_check(pool: &AnyPool) -> Result<LedgerCheck> {
    // Summed in halves (crate::sums): a forged or absurd line cannot make the check itself fail.
    let rows = sqlx::query(&format!(
        "SELECT journal_id, currency, {} FROM journal_lines \
         GROUP BY journal_id, currency ORDER BY journal_id",
        crate::sums::split_sum("amount_minor")
    ))
    .fetch_all(pool)
    .await?;
    let mut unbalanced = Vec::new();
    for r in &rows {
        let total = crate::sums::read_split_sum(r)?;
        if total != 0 {
            unbalanced.push((
                r.try_get("journal_id")?,
                r.try_get("currency")?,
                saturate(total),
            ));
        }
    }
    let rows = sqlx::query(&format!(
        "SELECT currency, {} FROM journal_lines GROUP BY currency ORDER BY currency",
        crate::sums::split_sum("amount_minor")
    ))
    .fetch_all(pool)
    .await?;
    let mut totals = BTreeMap::new();
    for r in &rows {
        totals.insert(
            r.try_get("currency")?,
            saturate(crate::sums::read_split_sum(r)?),
        );
    }
    let balance_rows_off = balance_rows_off(&mut *pool.acquire().await?).await?;
    Ok(LedgerCheck {
        unbalanced,
        totals,
        balance_rows_off,
    })
}

/// A total for a report of what is wrong: exact when it fits, else pinned at the edge (it is
/// non-zero either way, which is what the check reports).
fn saturate(total: i128) -> i64 {
    i64::try_from(total).unwrap_or(if total > 0 { i64::MAX } else { i64::MIN })
}
