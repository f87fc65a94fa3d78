-- The files we write and the trail (issue #9 items 11 and 15).
-- Portable subset: TEXT and BIGINT, times as RFC 3339 UTC text. Never edit once applied.

-- A batch file that reached the disk: written to a temporary name, fsynced, renamed, the
-- directory fsynced, and only then recorded here. A batch without a row was committed but its
-- file never made it (a crash, a full disk): `batch list` and the exceptions queue show it, and
-- `batch export` (or the batch worker) writes it again from the stored bytes.
CREATE TABLE batch_file_writes (
    batch_id   BIGINT PRIMARY KEY REFERENCES batches (id),
    path       TEXT NOT NULL,
    written_at TEXT NOT NULL
);
-- Batches made before this migration were written by the code of the time, which did not record
-- it; they are taken as written (the path is not known).
INSERT INTO batch_file_writes (batch_id, path, written_at)
    SELECT id, '', created_at FROM batches;

-- The audit chain becomes keyed: each event's hash is an HMAC-SHA256 under a key kept outside the
-- database. `keyed_from` is the first event hashed that way. A database created with this
-- migration is keyed from event 1. An older one keeps its plain SHA-256 events; its first write
-- after this migration appends an `audit.chain_keyed` event (the switch point, itself keyed) that
-- records the digests of every row of the tables the chain did not cover before (outbox messages,
-- API keys, webhook endpoints, operator credentials, batch file writes), and sets `keyed_from` to
-- it. Until then `keyed_from` is NULL and `audit verify` says the chain is not keyed.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
UPDATE audit_head SET keyed_from = 1 WHERE seq = 0;
