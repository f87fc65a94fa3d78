-- Bank account statements (camt.053) and their entries, for three-way reconciliation
-- (DESIGN §8.3). Our own account is kept as a digest and its last four characters: the number
-- itself is never stored or shown.
CREATE TABLE statements (
    id BIGINT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    account_digest TEXT NOT NULL,
    account_last4 TEXT NOT NULL,
    statement_id TEXT,
    message_id TEXT,
    electronic_sequence BIGINT,
    legal_sequence BIGINT,
    from_date TEXT,
    to_date TEXT,
    currency TEXT NOT NULL,
    opening_minor BIGINT NOT NULL,
    closing_minor BIGINT NOT NULL,
    entries BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
-- Banks recycle message ids: a statement is the same statement by channel, account, sequence and
-- period.
CREATE UNIQUE INDEX statements_by_sequence
    ON statements (channel_id, account_digest, electronic_sequence, from_date, to_date);

CREATE TABLE statement_entries (
    id BIGINT PRIMARY KEY,
    statement_id BIGINT NOT NULL REFERENCES statements (id),
    line BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    kind TEXT NOT NULL,
    booking_date TEXT,
    bank_reference TEXT,
    end_to_end_id TEXT,
    batch_reference TEXT,
    -- matched | suggested | unmatched | fee | not_ours
    match_status TEXT NOT NULL,
    match_rule TEXT,
    payout_no TEXT,
    batch_id BIGINT,
    note TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT
);
CREATE INDEX statement_entries_by_payout ON statement_entries (payout_no);
CREATE INDEX statement_entries_by_status ON statement_entries (match_status);
CREATE INDEX statements_by_channel ON statements (channel_id, electronic_sequence);
INSERT INTO sequences (name, value) VALUES ('statement', 0), ('statement_entry', 0);
