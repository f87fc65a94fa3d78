-- Service hardening (issue #9): idempotent answers keep their Location and expire; API keys
-- may expire (rotation leaves the old key valid for an overlap window); operators are locked
-- out after repeated failed logins until an admin lifts it.
-- Portable subset: TEXT and BIGINT, times as RFC 3339 UTC text. Never edit once applied.

-- The Location header of a stored answer, given again with it.
ALTER TABLE idempotency_keys ADD COLUMN response_location TEXT;
-- Stored answers expire after 24 hours; this finds the expired ones.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- After this time the key is refused (NULL: no expiry). Rotation sets it on the old keys.
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;

-- Consecutive failed logins of an operator since its last success; `locked_at` is set when they
-- reach the limit, and only an admin's unlock (which deletes the row) lets the operator in again.
CREATE TABLE operator_lockouts (
    name       TEXT PRIMARY KEY REFERENCES operators (name),
    failures   BIGINT NOT NULL,
    locked_at  TEXT,
    updated_at TEXT NOT NULL
);
