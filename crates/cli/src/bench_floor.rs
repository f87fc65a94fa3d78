//! The benchmark's floor: the rows an import writes per result line, written by direct prepared
//! statements that share nothing with Disburse's write path (no `Db`, no `WriteTx`, no engine).
//!
//! Per line, as a competent hand-written importer would: read the payout by its number (every
//! column), update its state, paid amount, basis, reference and times; insert a journal with two
//! lines; read the order (every column) and update its state; insert an outbox message; append an
//! audit event whose HMAC-SHA256 chains over the previous one and the SHA-256 digest of every row
//! written. `chunk` lines per transaction, each chunk also storing the sequences and the chain's
//! head. No file, no parsing, no rules. SQLite through rusqlite on one connection; PostgreSQL
//! through sqlx's own PostgreSQL connection (not `sqlx::Any`), statements prepared once.

// Floats here are seconds of a measurement, never money.
#![allow(clippy::float_arithmetic)]

use std::path::Path;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The digest of one written row: table, then every column as `name=value`.
fn digest(table: &str, columns: &[(&str, String)]) -> String {
    let mut h = Sha256::new();
    h.update(table.as_bytes());
    for (name, value) in columns {
        h.update(b"\n");
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
    }
    hex::encode(h.finalize())
}

struct Chain {
    mac: Hmac<Sha256>,
    seq: i64,
    prev: String,
}

impl Chain {
    fn link(&mut self, event: &str) -> String {
        let mut m = self.mac.clone();
        m.update(self.prev.as_bytes());
        m.update(event.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }
}

/// One line's new rows, computed from the payout and order as read; the same for both backends.
struct LineWrites {
    payout_id: i64,
    order_id: i64,
    amount: i64,
    reference: String,
    journal_id: i64,
    line_ids: [i64; 2],
    outbox_id: i64,
    seq: i64,
    payload: String,
    detail: String,
    rows_written: String,
    prev_hash: String,
    hash: String,
}

#[allow(clippy::too_many_arguments)]
fn line_writes(
    chain: &mut Chain,
    next_id: &mut i64,
    payout: &[(&str, String)],
    order: &[(&str, String)],
    payout_id: i64,
    order_id: i64,
    amount: i64,
    payout_no: &str,
    at: &str,
) -> LineWrites {
    let reference = format!("FLOOR-{payout_id}");
    let mut ids = || {
        *next_id += 1;
        *next_id
    };
    let (journal_id, l1, l2, outbox_id) = (ids(), ids(), ids(), ids());
    chain.seq += 1;
    let seq = chain.seq;
    let mut written = Vec::with_capacity(6);
    let mut payout_after = payout.to_vec();
    for (name, value) in payout_after.iter_mut() {
        match *name {
            "state" => *value = "succeeded".into(),
            "paid_amount_minor" => *value = amount.to_string(),
            "paid_basis" => *value = "assumed".into(),
            "bank_reference" => *value = reference.clone(),
            "succeeded_at" | "updated_at" => *value = at.into(),
            _ => {}
        }
    }
    written.push(digest("payouts", &payout_after));
    let mut order_after = order.to_vec();
    for (name, value) in order_after.iter_mut() {
        match *name {
            "state" => *value = "paid".into(),
            "updated_at" => *value = at.into(),
            _ => {}
        }
    }
    written.push(digest("orders", &order_after));
    let s = |v: i64| v.to_string();
    written.push(digest(
        "journals",
        &[
            ("id", s(journal_id)),
            ("kind", "payout_succeeded".into()),
            ("order_id", s(order_id)),
            ("payout_id", s(payout_id)),
            ("audit_seq", s(seq)),
            ("created_at", at.into()),
        ],
    ));
    for (id, account, minor) in [
        (l1, "merchant:bench:in_transit", amount),
        (l2, "channel:bench:bank", -amount),
    ] {
        written.push(digest(
            "journal_lines",
            &[
                ("id", s(id)),
                ("journal_id", s(journal_id)),
                ("account", account.into()),
                ("amount_minor", s(minor)),
            ],
        ));
    }
    let payload = format!(
        r#"{{"order_state":"paid","paid_amount_minor":{amount},"payout_no":"{payout_no}","bank_reference":"{reference}"}}"#
    );
    written.push(digest(
        "outbox",
        &[
            ("id", s(outbox_id)),
            ("topic", "order.paid".into()),
            ("payload", payload.clone()),
        ],
    ));
    let detail = format!(
        r#"{{"before":{{"state":"submitted"}},"after":{{"state":"succeeded","paid_amount_minor":{amount}}}}}"#
    );
    let rows_written = format!("[\"{}\"]", written.join("\",\""));
    let event =
        format!("{seq}|{at}|floor|payout.succeeded|payout:{payout_no}|{detail}|{rows_written}");
    let hash = chain.link(&event);
    let prev_hash = std::mem::replace(&mut chain.prev, hash.clone());
    LineWrites {
        payout_id,
        order_id,
        amount,
        reference,
        journal_id,
        line_ids: [l1, l2],
        outbox_id,
        seq,
        payload,
        detail,
        rows_written,
        prev_hash,
        hash,
    }
}

fn new_chain(key: &[u8], seq: i64, prev: String) -> anyhow::Result<Chain> {
    Ok(Chain {
        mac: Hmac::<Sha256>::new_from_slice(key)?,
        seq,
        prev,
    })
}

/// The floor on SQLite: `numbers` are the payouts to mark paid, `chunk` per transaction.
pub fn sqlite(
    path: &Path,
    numbers: &[String],
    chunk: usize,
    at: &str,
    key: &[u8],
) -> anyhow::Result<f64> {
    use rusqlite::types::ValueRef;
    let mut con = rusqlite::Connection::open(path)?;
    con.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let started = Instant::now();
    let (seq, prev): (i64, String) =
        con.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut chain = new_chain(key, seq, prev)?;
    let mut next_id: i64 = con.query_row(
        "SELECT MAX(value) FROM sequences WHERE name IN ('journal', 'journal_line', 'outbox')",
        [],
        |r| r.get(0),
    )?;
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Null => "null".to_string(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    };
    for group in numbers.chunks(chunk) {
        let tx = con.transaction()?;
        {
            let mut read_payout =
                tx.prepare_cached("SELECT * FROM payouts WHERE payout_no = ?1")?;
            let mut read_order = tx.prepare_cached("SELECT * FROM orders WHERE id = ?1")?;
            let mut update_payout = tx.prepare_cached(
                "UPDATE payouts SET state = 'succeeded', paid_amount_minor = ?1, paid_basis = 'assumed', \
                 bank_reference = ?2, succeeded_at = ?3, updated_at = ?3 WHERE id = ?4",
            )?;
            let mut update_order = tx.prepare_cached(
                "UPDATE orders SET state = 'paid', updated_at = ?1 WHERE id = ?2",
            )?;
            let mut insert_journal = tx.prepare_cached(
                "INSERT INTO journals (id, kind, merchant_id, order_id, payout_id, audit_seq, created_at) \
                 VALUES (?1, 'payout_succeeded', 'bench', ?2, ?3, ?4, ?5)",
            )?;
            let mut insert_line = tx.prepare_cached(
                "INSERT INTO journal_lines (id, journal_id, account, currency, amount_minor) \
                 VALUES (?1, ?2, ?3, 'EUR', ?4)",
            )?;
            let mut insert_outbox = tx.prepare_cached(
                "INSERT INTO outbox (id, merchant_id, topic, payload, audit_seq, created_at, attempts) \
                 VALUES (?1, 'bench', 'order.paid', ?2, ?3, ?4, 0)",
            )?;
            let mut insert_event = tx.prepare_cached(
                "INSERT INTO audit_events (seq, at, actor, action, subject, reason, detail, rows_written, prev_hash, hash) \
                 VALUES (?1, ?2, 'floor', 'payout.succeeded', ?3, NULL, ?4, ?5, ?6, ?7)",
            )?;
            for no in group {
                let (payout, payout_id, order_id, amount) = read_payout.query_row([no], |r| {
                    let names: Vec<&str> = r.as_ref().column_names();
                    let mut cols = Vec::with_capacity(names.len());
                    for (i, name) in names.iter().enumerate() {
                        cols.push((column_name(name), text(r.get_ref(i)?)));
                    }
                    Ok((
                        cols,
                        r.get::<_, i64>("id")?,
                        r.get::<_, i64>("order_id")?,
                        r.get::<_, i64>("amount_minor")?,
                    ))
                })?;
                let order: Vec<(&str, String)> = read_order.query_row([order_id], |r| {
                    let names: Vec<&str> = r.as_ref().column_names();
                    let mut cols = Vec::with_capacity(names.len());
                    for (i, name) in names.iter().enumerate() {
                        cols.push((column_name(name), text(r.get_ref(i)?)));
                    }
                    Ok(cols)
                })?;
                let w = line_writes(
                    &mut chain,
                    &mut next_id,
                    &payout,
                    &order,
                    payout_id,
                    order_id,
                    amount,
                    no,
                    at,
                );
                update_payout.execute(rusqlite::params![w.amount, w.reference, at, w.payout_id])?;
                insert_journal.execute(rusqlite::params![
                    w.journal_id,
                    w.order_id,
                    w.payout_id,
                    w.seq,
                    at
                ])?;
                insert_line.execute(rusqlite::params![
                    w.line_ids[0],
                    w.journal_id,
                    "merchant:bench:in_transit",
                    w.amount
                ])?;
                insert_line.execute(rusqlite::params![
                    w.line_ids[1],
                    w.journal_id,
                    "channel:bench:bank",
                    -w.amount
                ])?;
                update_order.execute(rusqlite::params![at, w.order_id])?;
                insert_outbox.execute(rusqlite::params![w.outbox_id, w.payload, w.seq, at])?;
                insert_event.execute(rusqlite::params![
                    w.seq,
                    at,
                    format!("payout:{no}"),
                    w.detail,
                    w.rows_written,
                    w.prev_hash,
                    w.hash
                ])?;
            }
            tx.execute(
                "UPDATE sequences SET value = ?1 WHERE name IN ('journal', 'journal_line', 'outbox')",
                [next_id],
            )?;
            tx.execute(
                "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1",
                rusqlite::params![chain.seq, chain.prev],
            )?;
        }
        tx.commit()?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Column names of the two tables read, as `'static` names for the digests.
fn column_name(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "id",
        "payout_no",
        "order_id",
        "merchant_id",
        "channel_id",
        "currency",
        "amount_minor",
        "bank_account_id",
        "state",
        "paid_amount_minor",
        "bank_reference",
        "reason_code",
        "reason_text",
        "value_date",
        "submitted_at",
        "succeeded_at",
        "batch_id",
        "created_at",
        "updated_at",
        "funded_from",
        "paid_basis",
        "returned_minor",
        "order_no",
        "adjustment_minor",
    ];
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("other")
}

/// The floor on PostgreSQL, through sqlx's PostgreSQL driver directly: the same statements.
pub async fn postgres(
    url: &str,
    numbers: &[String],
    chunk: usize,
    at: &str,
    key: &[u8],
) -> anyhow::Result<f64> {
    use sqlx::{Column, Connection, Row};
    let mut con = sqlx::PgConnection::connect(url).await?;
    let started = Instant::now();
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut con)
        .await?;
    let mut chain = new_chain(key, head.try_get("seq")?, head.try_get("hash")?)?;
    let mut next_id: i64 = sqlx::query(
        "SELECT MAX(value) AS v FROM sequences WHERE name IN ('journal', 'journal_line', 'outbox')",
    )
    .fetch_one(&mut con)
    .await?
    .try_get("v")?;
    let cols_of = |r: &sqlx::postgres::PgRow| -> Vec<(&'static str, String)> {
        r.columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = r
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        r.try_get::<Option<i64>, _>(i)
                            .ok()
                            .flatten()
                            .map(|v| v.to_string())
                    })
                    .unwrap_or_else(|| "null".into());
                (column_name(c.name()), v)
            })
            .collect()
    };
    for group in numbers.chunks(chunk) {
        let mut tx = con.begin().await?;
        for no in group {
            let p = sqlx::query("SELECT * FROM payouts WHERE payout_no = $1")
                .bind(no)
                .fetch_one(&mut *tx)
                .await?;
            let (payout_id, order_id, amount): (i64, i64, i64) = (
                p.try_get("id")?,
                p.try_get("order_id")?,
                p.try_get("amount_minor")?,
            );
            let payout = cols_of(&p);
            let o = sqlx::query("SELECT * FROM orders WHERE id = $1")
                .bind(order_id)
                .fetch_one(&mut *tx)
                .await?;
            let order = cols_of(&o);
            let w = line_writes(
                &mut chain,
                &mut next_id,
                &payout,
                &order,
                payout_id,
                order_id,
                amount,
                no,
                at,
            );
            sqlx::query(
                "UPDATE payouts SET state = 'succeeded', paid_amount_minor = $1, paid_basis = 'assumed', \
                 bank_reference = $2, succeeded_at = $3, updated_at = $3 WHERE id = $4",
            )
            .bind(w.amount)
            .bind(&w.reference)
            .bind(at)
            .bind(w.payout_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO journals (id, kind, merchant_id, order_id, payout_id, audit_seq, created_at) \
                 VALUES ($1, 'payout_succeeded', 'bench', $2, $3, $4, $5)",
            )
            .bind(w.journal_id)
            .bind(w.order_id)
            .bind(w.payout_id)
            .bind(w.seq)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            for (id, account, minor) in [
                (w.line_ids[0], "merchant:bench:in_transit", w.amount),
                (w.line_ids[1], "channel:bench:bank", -w.amount),
            ] {
                sqlx::query(
                    "INSERT INTO journal_lines (id, journal_id, account, currency, amount_minor) \
                     VALUES ($1, $2, $3, 'EUR', $4)",
                )
                .bind(id)
                .bind(w.journal_id)
                .bind(account)
                .bind(minor)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE orders SET state = 'paid', updated_at = $1 WHERE id = $2")
                .bind(at)
                .bind(w.order_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO outbox (id, merchant_id, topic, payload, audit_seq, created_at, attempts) \
                 VALUES ($1, 'bench', 'order.paid', $2, $3, $4, 0)",
            )
            .bind(w.outbox_id)
            .bind(&w.payload)
            .bind(w.seq)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO audit_events (seq, at, actor, action, subject, reason, detail, rows_written, prev_hash, hash) \
                 VALUES ($1, $2, 'floor', 'payout.succeeded', $3, NULL, $4, $5, $6, $7)",
            )
            .bind(w.seq)
            .bind(at)
            .bind(format!("payout:{no}"))
            .bind(&w.detail)
            .bind(&w.rows_written)
            .bind(&w.prev_hash)
            .bind(&w.hash)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE sequences SET value = $1 WHERE name IN ('journal', 'journal_line', 'outbox')",
        )
        .bind(next_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(chain.seq)
            .bind(&chain.prev)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(started.elapsed().as_secs_f64())
}
