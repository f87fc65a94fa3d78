-- The foundation schema, one text for SQLite and PostgreSQL (portable types: TEXT, BIGINT).
-- Ids are allocated from `sequences` by the application, so a row's digest can be computed before
-- it is written. Times are RFC 3339 UTC text with microseconds: they sort as text and round-trip
-- exactly, which the audit digests need. Never edit this file once applied; add a new migration.

CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO sequences (name, value) VALUES
    ('payout', 0), ('journal', 0), ('journal_line', 0), ('bank_account', 0), ('order', 0), ('outbox', 0);

-- The head of the audit hash chain. Every write transaction starts by updating this one row: it
-- serializes writers (a row lock on PostgreSQL, the write lock on SQLite), so the chain has no
-- forks and "check, then insert" decisions cannot race.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only. `rows_written` holds the digest of every row the change wrote.
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    reason       TEXT,
    detail       TEXT NOT NULL,
    rows_written TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject);

CREATE TABLE merchants (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    -- 'ok' or 'needs_update' (a bank rejected a payout for an account reason).
    account_status TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- A merchant's bank accounts, one row per version; the newest version is the current one.
-- The full number is only in `sealed_number` (AES-256-GCM); `last4` is what people see.
CREATE TABLE bank_accounts (
    id            BIGINT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    version       BIGINT NOT NULL,
    holder_name   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    country       TEXT NOT NULL,
    last4         TEXT NOT NULL,
    bic           TEXT,
    sealed_number TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (merchant_id, version)
);

CREATE TABLE orders (
    id              BIGINT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    order_no        TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    bank_account_id BIGINT NOT NULL REFERENCES bank_accounts (id),
    state           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (merchant_id, order_no)
);
CREATE INDEX orders_order_no ON orders (order_no);
CREATE INDEX orders_state ON orders (state);

CREATE TABLE payouts (
    id                BIGINT PRIMARY KEY,
    payout_no         TEXT NOT NULL UNIQUE,
    order_id          BIGINT NOT NULL REFERENCES orders (id),
    merchant_id       TEXT NOT NULL REFERENCES merchants (id),
    channel_id        TEXT NOT NULL,
    currency          TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
    bank_account_id   BIGINT NOT NULL REFERENCES bank_accounts (id),
    state             TEXT NOT NULL,
    paid_amount_minor BIGINT,
    bank_reference    TEXT,
    reason_code       TEXT,
    reason_text       TEXT,
    value_date        TEXT,
    submitted_at      TEXT,
    succeeded_at      TEXT,
    batch_id          BIGINT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
-- The last line of defence of "never paid twice": at most one live payout per order.
CREATE UNIQUE INDEX payouts_one_live_per_order ON payouts (order_id)
    WHERE state IN ('pending', 'submitted', 'expired');
CREATE INDEX payouts_channel_state ON payouts (channel_id, state);
CREATE INDEX payouts_order ON payouts (order_id);

CREATE TABLE journals (
    id          BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL,
    merchant_id TEXT,
    order_id    BIGINT,
    payout_id   BIGINT,
    audit_seq   BIGINT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX journals_order ON journals (order_id);

-- Debit positive, credit negative; each journal sums to zero per currency.
CREATE TABLE journal_lines (
    id           BIGINT PRIMARY KEY,
    journal_id   BIGINT NOT NULL REFERENCES journals (id),
    account      TEXT NOT NULL,
    currency     TEXT NOT NULL,
    amount_minor BIGINT NOT NULL
);
CREATE INDEX journal_lines_account ON journal_lines (account, currency);
CREATE INDEX journal_lines_journal ON journal_lines (journal_id);

-- Messages to merchants, written in the same transaction as the change they announce.
CREATE TABLE outbox (
    id           BIGINT PRIMARY KEY,
    merchant_id  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    audit_seq    BIGINT NOT NULL,
    created_at   TEXT NOT NULL,
    delivered_at TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_undelivered ON outbox (delivered_at, id);
