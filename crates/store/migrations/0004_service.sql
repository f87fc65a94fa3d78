-- The HTTP service's own state (crates/server): merchants' API keys and webhooks, operators'
-- passwords and sessions, stored answers to idempotent requests, and webhook delivery state.
-- None of these tables is covered by the audit digests: they hold credentials and delivery
-- bookkeeping, not the books. Each manual action on them (a key issued, a webhook set, a secret
-- rotated, a password set, a redelivery asked for) still writes an audit event.
-- Portable subset: TEXT and BIGINT, times as RFC 3339 UTC text. Never edit once applied.

-- A merchant's API keys. Only the SHA-256 of a key is kept (keys are 256 random bits, so a fast
-- hash is enough); the key itself is shown once, when it is issued.
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    -- The first characters of the key, to tell keys apart without revealing them.
    key_prefix  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

-- Where a merchant hears about its orders, and the secret its messages are signed with
-- (HMAC-SHA256; the service must sign, so the secret is kept, and shown once when made).
CREATE TABLE merchant_webhooks (
    merchant_id TEXT PRIMARY KEY REFERENCES merchants (id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Operators' passwords as argon2 PHC strings; roles stay in `operators`.
CREATE TABLE operator_credentials (
    name          TEXT PRIMARY KEY REFERENCES operators (name),
    password_hash TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Operator sessions: the SHA-256 of the bearer token handed out at login.
CREATE TABLE operator_sessions (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL REFERENCES operators (name),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);

-- Idempotency-Key: the first request with a key claims it ('in_progress'); its answer is stored
-- ('done') and given again, byte for byte, to every later request with the same key and body.
-- The primary key is what makes two simultaneous requests with one key run the work once.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,   -- 'merchant:acme' or 'operator:ada'
    idem_key        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,   -- SHA-256 of method, path and (canonical JSON) body
    status          TEXT NOT NULL,   -- 'in_progress' | 'done'
    response_status BIGINT,
    response_type   TEXT,
    response_body   TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- One row per outbox message to deliver by webhook. Messages of one order (`order_key`) go out
-- in outbox order: a message is claimed only when every earlier one of its order is delivered.
-- A dispatcher claims a row by setting a lease; 'dead' rows gave up after the last attempt and
-- wait for an operator to ask for redelivery. Messages of a merchant without a webhook wait as
-- 'unrouted' until it sets one.
CREATE TABLE webhook_deliveries (
    outbox_id       BIGINT PRIMARY KEY REFERENCES outbox (id),
    merchant_id     TEXT NOT NULL,
    order_key       TEXT,
    status          TEXT NOT NULL,   -- 'pending' | 'delivered' | 'dead' | 'unrouted'
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    last_status     BIGINT,
    delivered_at    TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (merchant_id, order_key, outbox_id);
CREATE INDEX webhook_deliveries_merchant_status ON webhook_deliveries (merchant_id, status);
