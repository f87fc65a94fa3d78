//! Issue #9 items 11 and 15: the files we write and the trail, against someone with SQL access
//! but without the chain key, on SQLite and PostgreSQL.

mod common;

use common::*;
use disburse_core::audit::{chain_hash, chain_hmac, GENESIS_HASH};
use disburse_core::crypto::ChainKey;
use disburse_engine::{Config, Engine};
use disburse_store::{
    ApiKeyRow, AuditEventRow, Bind, Db, MerchantWebhookRow, NewAuditEvent, OperatorCredentialRow,
};
use sqlx::Row;

/// What a forger with SQL access does after changing journal lines: restates every balance row
/// as the sum of its lines, so the books agree with the forgery (only the chain can tell).
const RESTATE_BALANCES: &str = "UPDATE account_balances SET balance_minor = (SELECT \
    COALESCE(SUM(l.amount_minor), 0) FROM journal_lines l WHERE l.account = account_balances.account \
    AND l.currency = account_balances.currency)";

/// The engine of `app` with every channel's outbox in `dir`.
async fn engine_with_outbox(app: &App, dir: &std::path::Path) -> Engine {
    let mut config = Config::builtin();
    for c in &mut config.channels {
        c.outbox_dir = dir.join(c.id.as_str());
    }
    Engine::new(
        Db::open(&app.url).await.expect("open db"),
        config,
        app.key.clone(),
    )
}

fn chain_key(app: &App) -> ChainKey {
    ChainKey::derived_from(&app.key)
}

async fn head(db: &Db) -> (i64, String) {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    (row.get("seq"), row.get("hash"))
}

async fn events(db: &Db) -> Vec<AuditEventRow> {
    sqlx::query(&format!("{} ORDER BY seq", AuditEventRow::SELECT))
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| AuditEventRow::from_row(r).unwrap())
        .collect()
}

async fn findings(db: &Db) -> Vec<String> {
    db.verify_audit()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.what)
        .collect()
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Appends an event the way an attacker with SQL but no key would: the canonical text of the
/// real code, hashed with `hash`, and the head moved to it.
async fn forge_event(db: &Db, rows_written: &str, hash: impl Fn(&str, &str) -> String) -> i64 {
    let (seq, prev) = head(db).await;
    let event = AuditEventRow {
        seq: seq + 1,
        at: "2026-11-02T10:00:00.000000Z".into(),
        actor: "operator:alice".into(),
        action: "merchant.funded".into(),
        subject: "merchant:acme".into(),
        reason: None,
        detail: "{}".into(),
        rows_written: rows_written.into(),
        prev_hash: prev.clone(),
        hash: String::new(),
    };
    let hash = hash(&prev, &event.canonical());
    db.execute_raw(&format!(
        "INSERT INTO audit_events (seq, at, actor, action, subject, reason, detail, rows_written, prev_hash, hash) \
         VALUES ({}, {}, {}, {}, {}, NULL, {}, {}, {}, {})",
        event.seq,
        sql_text(&event.at),
        sql_text(&event.actor),
        sql_text(&event.action),
        sql_text(&event.subject),
        sql_text(&event.detail),
        sql_text(&event.rows_written),
        sql_text(&prev),
        sql_text(&hash),
    ))
    .await
    .unwrap();
    db.execute_raw(&format!(
        "UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1",
        event.seq,
        sql_text(&hash)
    ))
    .await
    .unwrap();
    event.seq
}

// ---------------------------------------------------------------------------------------------
// Item 11: batch files

both_backends!(
    a_batch_committed_without_its_file_is_visible_and_written_again_byte_identical,
    |app: App| async move {
        let dir = disburse_store::testing::temp_dir();
        let e = engine_with_outbox(&app, &dir).await;
        // `send_batch` commits the batch and stops: the state a kill between commit and write
        // leaves behind.
        let (batch, bytes, nos) = send_batch(&e, 3).await;
        let target = dir.join("sepa-file").join(&batch.file_name);
        assert!(!target.exists());
        let listed = e.batches().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].file_written, None,
            "batch list shows it unwritten"
        );
        assert_eq!(e.unwritten_batches().await.unwrap().len(), 1);
        let items = e.exceptions(t0()).await.unwrap();
        let item = items
            .iter()
            .find(|i| i.kind == "batch_file_not_written")
            .unwrap_or_else(|| panic!("an exception of its own kind: {items:?}"));
        assert_eq!(item.id, format!("batch:{}", batch.batch_id));
        assert!(item.action.contains("batch export"), "{item:?}");
        // The payouts are submitted all the same: nothing is paid twice by writing again.
        for no in &nos {
            assert_eq!(
                e.db().payout_by_no(no).await.unwrap().unwrap().state,
                "submitted"
            );
        }

        let outcomes = e.export_unwritten_batches(t0(), &ops()).await.unwrap();
        assert_eq!(outcomes.len(), 1);
        let path = outcomes[0].1.as_ref().unwrap();
        assert_eq!(path, &target);
        assert_eq!(std::fs::read(&target).unwrap(), bytes, "byte for byte");
        assert!(e.unwritten_batches().await.unwrap().is_empty());
        assert!(!e
            .exceptions(t0())
            .await
            .unwrap()
            .iter()
            .any(|i| i.kind == "batch_file_not_written"));
        let written = e.batches().await.unwrap()[0].file_written.clone().unwrap();
        assert_eq!(written.path, target.display().to_string());
        // Nothing else is left in the outbox (no temporary file).
        let names: Vec<_> = std::fs::read_dir(dir.join("sepa-file"))
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Exporting again rewrites the same bytes whole, and records it again.
        let (_, again) = e
            .write_batch_file(batch.batch_id, None, t0(), &ops())
            .await
            .unwrap();
        assert_eq!(std::fs::read(again).unwrap(), bytes);
        assert_books_and_audit(&e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

both_backends!(
    a_failed_batch_write_leaves_no_file_and_the_batch_unwritten,
    |app: App| async move {
        let dir = disburse_store::testing::temp_dir();
        // The outbox cannot be made: a file sits where its directory should be.
        std::fs::write(dir.join("sepa-file"), b"in the way").unwrap();
        let e = engine_with_outbox(&app, &dir).await;
        funded_merchant(&e, "acme", "1000.00").await;
        withdraw(&e, "acme", "W1", "100.00").await;
        e.create_payout(&order("W1"), None, t0(), &ops())
            .await
            .unwrap();
        let err = e
            .create_batch_file("sepa-file", None, t0(), &ops())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("committed but its file") && err.contains("batch export"),
            "{err}"
        );
        let unwritten = e.unwritten_batches().await.unwrap();
        assert_eq!(
            unwritten.len(),
            1,
            "the batch is committed and known unwritten"
        );
        // The worker's next round (or `batch export --unwritten`) writes it once the disk is fixed.
        std::fs::remove_file(dir.join("sepa-file")).unwrap();
        let outcomes = e.export_unwritten_batches(t0(), &ops()).await.unwrap();
        let path = outcomes[0].1.as_ref().unwrap();
        let (_, stored) = e.batch_file(unwritten[0].batch_id).await.unwrap();
        assert_eq!(std::fs::read(path).unwrap(), stored);
        assert!(e.unwritten_batches().await.unwrap().is_empty());
        // And a batch written on the first try is recorded at once.
        withdraw(&e, "acme", "W2", "100.00").await;
        e.create_payout(&order("W2"), None, t0(), &ops())
            .await
            .unwrap();
        let (made, path) = e
            .create_batch_file("sepa-file", None, t0(), &ops())
            .await
            .unwrap()
            .unwrap();
        assert!(made.file_written.is_some());
        assert_eq!(
            std::fs::read(path).unwrap(),
            e.batch_file(made.batch_id).await.unwrap().1
        );
        assert_books_and_audit(&e).await;
        std::fs::remove_dir_all(dir).ok();
    }
);

// ---------------------------------------------------------------------------------------------
// Item 15: the keyed chain

both_backends!(
    a_forged_balanced_journal_with_a_forged_event_is_found_without_the_key,
    |app: App| async move {
        // The attack of issue #9: a balanced fake funding journal plus ONE audit event whose
        // hash is plain SHA-256 (what the code used to write), raising acme 50 -> 1,050 EUR.
        let e = &app.engine;
        funded_merchant(e, "acme", "50.00").await;
        assert_books_and_audit(e).await;
        let db = e.db();
        let available = || async { db.balance("merchant:acme:available", "EUR").await.unwrap() };
        assert_eq!(available().await, -5000);
        let seq = head(db).await.0 + 1;
        db.execute_raw(&format!(
            "INSERT INTO journals (id, kind, merchant_id, order_id, payout_id, audit_seq, created_at) \
             VALUES (900001, 'funding', 'acme', NULL, NULL, {seq}, '2026-11-02T10:00:00.000000Z')"
        ))
        .await
        .unwrap();
        db.execute_raw(
            "INSERT INTO journal_lines (id, journal_id, account, currency, amount_minor) VALUES \
             (900001, 900001, 'platform:EUR:collections', 'EUR', 100000), \
             (900002, 900001, 'merchant:acme:available', 'EUR', -100000)",
        )
        .await
        .unwrap();
        db.execute_raw(RESTATE_BALANCES).await.unwrap();
        // The forger writes the digests the real code would have written.
        let digests = serde_json::to_string(&[
            disburse_core::audit::row_digest(
                "journals",
                "900001",
                &[
                    ("id", Some("900001".into())),
                    ("kind", Some("funding".into())),
                    ("merchant_id", Some("acme".into())),
                    ("order_id", None),
                    ("payout_id", None),
                    ("audit_seq", Some(seq.to_string())),
                    ("created_at", Some("2026-11-02T10:00:00.000000Z".into())),
                ],
            ),
            disburse_core::audit::row_digest(
                "journal_lines",
                "900001",
                &[
                    ("id", Some("900001".into())),
                    ("journal_id", Some("900001".into())),
                    ("account", Some("platform:EUR:collections".into())),
                    ("currency", Some("EUR".into())),
                    ("amount_minor", Some("100000".into())),
                ],
            ),
            disburse_core::audit::row_digest(
                "journal_lines",
                "900002",
                &[
                    ("id", Some("900002".into())),
                    ("journal_id", Some("900001".into())),
                    ("account", Some("merchant:acme:available".into())),
                    ("currency", Some("EUR".into())),
                    ("amount_minor", Some("-100000".into())),
                ],
            ),
        ])
        .unwrap();
        let forged = forge_event(db, &digests, chain_hash).await;
        assert_eq!(forged, seq);
        assert_eq!(available().await, -105000, "the books say 1,050.00 EUR");
        assert!(db.ledger_check().await.unwrap().is_ok(), "and they balance");
        let found = findings(db).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(&format!(
                "audit event {seq} (merchant.funded merchant:acme)"
            )) && found[0].contains("does not verify under the chain key"),
            "{found:?}"
        );

        // A guessed key does no better; the right one (which never was in the database) would.
        db.execute_raw(&format!("DELETE FROM audit_events WHERE seq = {seq}"))
            .await
            .unwrap();
        let (_, prev) = events(db)
            .await
            .last()
            .map(|e| (e.seq, e.hash.clone()))
            .unwrap();
        db.execute_raw(&format!(
            "UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1",
            seq - 1,
            sql_text(&prev)
        ))
        .await
        .unwrap();
        let guess = ChainKey::generate();
        forge_event(db, &digests, |p, c| chain_hmac(&guess, p, c)).await;
        assert!(findings(db).await[0].contains("does not verify under the chain key"));
        db.execute_raw(&format!("DELETE FROM audit_events WHERE seq = {seq}"))
            .await
            .unwrap();
        db.execute_raw(&format!(
            "UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1",
            seq - 1,
            sql_text(&prev)
        ))
        .await
        .unwrap();
        let key = chain_key(&app);
        forge_event(db, &digests, |p, c| chain_hmac(&key, p, c)).await;
        assert_eq!(
            findings(db).await,
            Vec::<String>::new(),
            "only the holder of the chain key can append: that is what the key is for"
        );
    }
);

both_backends!(
    a_cut_tail_and_a_rewritten_chain_are_found_against_an_anchor,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "100.00").await;
        let db = e.db();
        let anchor = db.cut_anchor(t0()).await.unwrap().unwrap();
        let anchored = head(db).await;
        assert_eq!((anchor.seq, anchor.hash.clone()), anchored);
        let anchor = db.read_anchor(&anchor.to_text()).unwrap().unwrap();
        assert!(db.verify_audit_against(&anchor).await.unwrap().is_empty());
        // Later events do not disturb the anchor.
        e.fund(&m("acme"), eur("5.00"), None, t0(), &ops())
            .await
            .unwrap();
        assert!(db.verify_audit_against(&anchor).await.unwrap().is_empty());

        // Cut the tail: delete the last two events (the last funding and the one before, the
        // anchored one) with every row they wrote, and point the head at what is left.
        let all = events(db).await;
        let keep = &all[all.len() - 3];
        for gone in &all[all.len() - 2..] {
            let digests: Vec<disburse_core::audit::RowDigest> =
                serde_json::from_str(&gone.rows_written).unwrap();
            // Children before parents.
            for d in digests.iter().rev() {
                assert!(
                    ["journals", "journal_lines", "outbox"].contains(&d.table.as_str()),
                    "a funding writes a journal, its lines and a message: {}",
                    d.table
                );
                db.execute_raw(&format!("DELETE FROM {} WHERE id = {}", d.table, d.key))
                    .await
                    .unwrap();
            }
            db.execute_raw(&format!(
                "DELETE FROM audit_events WHERE seq = {}",
                gone.seq
            ))
            .await
            .unwrap();
        }
        db.execute_raw(RESTATE_BALANCES).await.unwrap();
        db.execute_raw(&format!(
            "UPDATE audit_head SET seq = {}, hash = {} WHERE id = 1",
            keep.seq,
            sql_text(&keep.hash)
        ))
        .await
        .unwrap();
        // What verify alone cannot see (documented): the shortened chain is consistent.
        assert_eq!(findings(db).await, Vec::<String>::new());
        let found: Vec<String> = db
            .verify_audit_against(&anchor)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.what)
            .collect();
        assert!(
            found
                .iter()
                .any(|f| f.contains("before event") && f.contains("removed from its end")),
            "{found:?}"
        );

        // Someone holding the chain key rewrites history before the anchor and re-hashes
        // everything after it: verify alone cannot tell, the anchor can.
        let (app2, _guard) = common::app(
            if app.url.starts_with("postgres") {
                disburse_store::testing::TestBackend::Postgres
            } else {
                disburse_store::testing::TestBackend::Sqlite
            },
            "rewrite",
        )
        .await
        .unwrap();
        let e2 = &app2.engine;
        funded_merchant(e2, "acme", "100.00").await;
        let db2 = e2.db();
        let anchor = db2.cut_anchor(t0()).await.unwrap().unwrap();
        let key = chain_key(&app2);
        let mut prev = GENESIS_HASH.to_string();
        for mut ev in events(db2).await {
            if ev.seq == 1 {
                ev.actor = "operator:mallory".into();
            }
            ev.prev_hash = prev.clone();
            ev.hash = chain_hmac(&key, &prev, &ev.canonical());
            db2.execute_raw(&format!(
                "UPDATE audit_events SET actor = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                sql_text(&ev.actor),
                sql_text(&ev.prev_hash),
                sql_text(&ev.hash),
                ev.seq
            ))
            .await
            .unwrap();
            prev = ev.hash;
        }
        db2.execute_raw(&format!(
            "UPDATE audit_head SET hash = {} WHERE id = 1",
            sql_text(&prev)
        ))
        .await
        .unwrap();
        assert_eq!(findings(db2).await, Vec::<String>::new());
        let found = db2.verify_audit_against(&anchor).await.unwrap();
        assert!(
            found[0].what.contains(&format!(
                "audit event {} differs from the anchor",
                anchor.seq
            )),
            "{found:?}"
        );
        // An anchor that was itself edited (to match the rewrite) does not even read.
        let mut edited = anchor.clone();
        edited.hash = prev;
        assert!(db2.read_anchor(&edited.to_text()).unwrap().is_err());
        // No anchor is cut on a chain that does not verify.
        db2.execute_raw("UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE id = (SELECT MIN(id) FROM journal_lines)")
            .await
            .unwrap();
        assert!(db2.cut_anchor(t0()).await.unwrap().is_err());
    }
);

/// Writes an API key, a webhook endpoint and an operator credential through tracked rows, as
/// the service does.
async fn credentials(e: &Engine) {
    let bob = disburse_core::OperatorName::parse("bob").unwrap();
    e.add_operator(&bob, disburse_core::correction::Role::Admin, t0(), &bob)
        .await
        .unwrap();
    let mut tx = e.db().write().await.unwrap();
    tx.insert(&ApiKeyRow {
        key_hash: "aa".repeat(32),
        merchant_id: "acme".into(),
        key_prefix: "dk_live_12345678".into(),
        created_at: "2026-11-02T09:00:00.000000Z".into(),
        revoked_at: None,
        expires_at: None,
    })
    .await
    .unwrap();
    tx.insert(&MerchantWebhookRow {
        merchant_id: "acme".into(),
        url: "https://acme.example/hooks".into(),
        secret: e.seal_secret("whsec_1"),
        updated_at: "2026-11-02T09:00:00.000000Z".into(),
    })
    .await
    .unwrap();
    tx.insert(&OperatorCredentialRow {
        name: "bob".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        updated_at: "2026-11-02T09:00:00.000000Z".into(),
    })
    .await
    .unwrap();
    tx.audit(NewAuditEvent {
        at: "2026-11-02T09:00:00.000000Z".into(),
        actor: "system:credentials".into(),
        action: "test.credentials".into(),
        subject: "merchant:acme".into(),
        reason: None,
        detail: serde_json::json!({}),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

both_backends!(
    messages_keys_endpoints_and_credentials_are_covered,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "100.00").await;
        withdraw(e, "acme", "W1", "10.00").await;
        credentials(e).await;
        let db = e.db();
        assert_eq!(findings(db).await, Vec::<String>::new());
        let outbox_id: i64 = sqlx::query("SELECT MIN(id) AS id FROM outbox")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("id");
        let cases = [
            (
                format!("UPDATE outbox SET payload = '{{\"amount\":\"9999.00\"}}' WHERE id = {outbox_id}"),
                format!("outbox row {outbox_id} differs"),
            ),
            (
                "UPDATE api_keys SET merchant_id = 'acme', revoked_at = NULL, key_prefix = 'dk_live_00000000'".into(),
                format!("api_keys row {} differs", "aa".repeat(32)),
            ),
            (
                format!(
                    "INSERT INTO api_keys (key_hash, merchant_id, key_prefix, created_at) VALUES ('{}', 'acme', 'dk_live_evil', 'x')",
                    "bb".repeat(32)
                ),
                format!("api_keys row {} was inserted behind the system's back", "bb".repeat(32)),
            ),
            (
                "UPDATE merchant_webhooks SET url = 'https://evil.example/' WHERE merchant_id = 'acme'".into(),
                "merchant_webhooks row acme differs".into(),
            ),
            (
                "UPDATE operator_credentials SET password_hash = '$argon2id$mallory' WHERE name = 'bob'".into(),
                "operator_credentials row bob differs".into(),
            ),
            (
                "DELETE FROM operator_credentials WHERE name = 'bob'".into(),
                "operator_credentials row bob (written by audit event".into(),
            ),
        ];
        for (sql, expected) in cases {
            let (app, _guard) = common::app(
                if app.url.starts_with("postgres") {
                    disburse_store::testing::TestBackend::Postgres
                } else {
                    disburse_store::testing::TestBackend::Sqlite
                },
                "covered",
            )
            .await
            .unwrap();
            funded_merchant(&app.engine, "acme", "100.00").await;
            withdraw(&app.engine, "acme", "W1", "10.00").await;
            credentials(&app.engine).await;
            let db = app.engine.db();
            assert!(db.execute_raw(&sql).await.unwrap() >= 1, "{sql}");
            let found = findings(db).await;
            assert!(
                found.first().is_some_and(|f| f.contains(&expected)),
                "{sql}: expected {expected:?}, got {found:?}"
            );
        }

        // A deletion the system made is recorded: the row must stay gone.
        let mut tx = db.write().await.unwrap();
        let cred: OperatorCredentialRow = tx
            .fetch_optional("WHERE name = $1", &[Bind::Text("bob".into())])
            .await
            .unwrap()
            .unwrap();
        tx.delete(&cred).await.unwrap();
        tx.audit(NewAuditEvent {
            at: "2026-11-02T09:30:00.000000Z".into(),
            actor: "system:credentials".into(),
            action: "test.credential_removed".into(),
            subject: "operator:bob".into(),
            reason: None,
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(findings(db).await, Vec::<String>::new());
        db.execute_raw(&format!(
            "INSERT INTO operator_credentials (name, password_hash, updated_at) VALUES ('bob', {}, 'x')",
            sql_text(&cred.password_hash)
        ))
        .await
        .unwrap();
        let found = findings(db).await;
        assert!(
            found[0].contains("operator_credentials row bob was put back"),
            "{found:?}"
        );
    }
);

both_backends!(
    an_old_unkeyed_chain_is_switched_at_a_marked_point,
    |app: App| async move {
        let e = &app.engine;
        funded_merchant(e, "acme", "100.00").await;
        withdraw(e, "acme", "W1", "10.00").await;
        credentials(e).await;
        let db = e.db();
        // Make it what a database from before migration 0008 holds: plain SHA-256 links, no
        // switch point, and rows of the newly covered tables that no event recorded.
        let mut prev = GENESIS_HASH.to_string();
        for mut ev in events(db).await {
            let digests: Vec<disburse_core::audit::RowDigest> =
                serde_json::from_str(&ev.rows_written).unwrap();
            let old: Vec<_> = digests
                .into_iter()
                .filter(|d| {
                    ![
                        "outbox",
                        "api_keys",
                        "merchant_webhooks",
                        "operator_credentials",
                    ]
                    .contains(&d.table.as_str())
                })
                .collect();
            ev.rows_written = serde_json::to_string(&old).unwrap();
            ev.prev_hash = prev.clone();
            ev.hash = chain_hash(&prev, &ev.canonical());
            db.execute_raw(&format!(
                "UPDATE audit_events SET rows_written = {}, prev_hash = {}, hash = {} WHERE seq = {}",
                sql_text(&ev.rows_written),
                sql_text(&ev.prev_hash),
                sql_text(&ev.hash),
                ev.seq
            ))
            .await
            .unwrap();
            prev = ev.hash;
        }
        let legacy_events = events(db).await.len() as i64;
        db.execute_raw(&format!(
            "UPDATE audit_head SET hash = {}, keyed_from = NULL WHERE id = 1",
            sql_text(&prev)
        ))
        .await
        .unwrap();
        let found = findings(db).await;
        assert!(
            found[0].contains("the audit chain is not keyed"),
            "{found:?}"
        );

        // The next write switches it: first the audit.chain_keyed event with the rows found,
        // then the write's own event, both keyed.
        e.fund(&m("acme"), eur("1.00"), None, t0(), &ops())
            .await
            .unwrap();
        let all = events(db).await;
        let switch = &all[legacy_events as usize];
        assert_eq!(switch.seq, legacy_events + 1);
        assert_eq!(switch.action, "audit.chain_keyed");
        for table in [
            "outbox",
            "api_keys",
            "merchant_webhooks",
            "operator_credentials",
        ] {
            assert!(switch.rows_written.contains(table), "{table}");
        }
        let keyed_from: Option<i64> = sqlx::query("SELECT keyed_from FROM audit_head WHERE id = 1")
            .fetch_one(db.pool())
            .await
            .unwrap()
            .get("keyed_from");
        assert_eq!(keyed_from, Some(switch.seq));
        assert_eq!(findings(db).await, Vec::<String>::new());
        assert_books_and_audit(e).await;

        // The switch point cannot be moved: not back to NULL, not to 1, not past the switch.
        for (value, expected) in [
            ("NULL", "the audit chain is not keyed"),
            ("1", "does not verify under the chain key"),
            (
                &*format!("{}", switch.seq + 1),
                "which is not the audit.chain_keyed switch event",
            ),
        ] {
            db.execute_raw(&format!(
                "UPDATE audit_head SET keyed_from = {value} WHERE id = 1"
            ))
            .await
            .unwrap();
            let found = findings(db).await;
            assert!(
                found.iter().any(|f| f.contains(expected)),
                "keyed_from = {value}: {found:?}"
            );
        }
    }
);
