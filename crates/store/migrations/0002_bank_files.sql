-- Bank files: batches we send, result files we receive, evidence people attach, and the lines
-- a machine could not apply (exceptions), each kept with the file and line it came from.

INSERT INTO sequences (name, value) VALUES ('batch', 0), ('bank_file', 0), ('exception', 0);

-- One outgoing file. `content_b64` holds the exact bytes sent, so asking again for a batch
-- gives back the same file, byte for byte, whatever happened to the outbox directory.
CREATE TABLE batches (
    id                BIGINT PRIMARY KEY,
    channel_id        TEXT NOT NULL,
    currency          TEXT NOT NULL,
    message_id        TEXT NOT NULL UNIQUE,
    file_name         TEXT NOT NULL,
    format            TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    payout_count      BIGINT NOT NULL,
    control_sum_minor BIGINT NOT NULL,
    content_b64       TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX payouts_batch ON payouts (batch_id);

-- One incoming result file, identified by its SHA-256: the same file twice is "already
-- imported". `last_line_done` lets an interrupted import resume after its last committed chunk.
CREATE TABLE bank_files (
    id             BIGINT PRIMARY KEY,
    sha256         TEXT NOT NULL UNIQUE,
    file_name      TEXT NOT NULL,
    channel_id     TEXT,
    format         TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    status         TEXT NOT NULL,
    records_total  BIGINT NOT NULL,
    last_line_done BIGINT NOT NULL,
    applied        BIGINT NOT NULL,
    unchanged      BIGINT NOT NULL,
    exceptions     BIGINT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT
);

-- Files and notices people attach as evidence, stored by their hash.
CREATE TABLE evidence (
    sha256      TEXT PRIMARY KEY,
    file_name   TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    content_b64 TEXT NOT NULL,
    stored_at   TEXT NOT NULL,
    stored_by   TEXT NOT NULL
);

-- What a person must look at. Never deleted: resolving sets status and who and why.
CREATE TABLE exceptions (
    id           BIGINT PRIMARY KEY,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    payout_no    TEXT,
    merchant_id  TEXT,
    amount_minor BIGINT,
    currency     TEXT,
    bank_file_id BIGINT,
    line         BIGINT,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT
);
CREATE INDEX exceptions_status ON exceptions (status, kind);
