-- The exception desk: named operators with roles, corrections (maker-checker), discrepancies.

INSERT INTO sequences (name, value) VALUES ('correction', 0), ('discrepancy', 0);

-- Where a payout's money was reserved: 'order' (withdrawing) or 'shortfall' (a top-up payout).
ALTER TABLE payouts ADD COLUMN funded_from TEXT NOT NULL DEFAULT 'order';

CREATE TABLE operators (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

-- A request to change what is recorded. `payout_updated_at` is the payout as the maker saw it:
-- approval is refused as stale when the payout changed since.
CREATE TABLE corrections (
    id                BIGINT PRIMARY KEY,
    payout_no         TEXT NOT NULL,
    kind              TEXT NOT NULL,
    payload           TEXT NOT NULL,
    reason            TEXT NOT NULL,
    evidence          TEXT NOT NULL,
    payout_state      TEXT NOT NULL,
    payout_updated_at TEXT NOT NULL,
    status            TEXT NOT NULL,
    proposed_by       TEXT NOT NULL,
    proposed_at       TEXT NOT NULL,
    decided_by        TEXT,
    decided_at        TEXT,
    decision_reason   TEXT
);
CREATE INDEX corrections_status ON corrections (status);

-- A difference between what was instructed and what a bank moved, or an order paid twice:
-- open until refunded, written off (approved), or topped up.
CREATE TABLE discrepancies (
    id                   BIGINT PRIMARY KEY,
    merchant_id          TEXT NOT NULL,
    direction            TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL CHECK (amount_minor > 0),
    currency             TEXT NOT NULL,
    origin_payout_no     TEXT NOT NULL,
    order_id             BIGINT NOT NULL,
    status               TEXT NOT NULL,
    opened_at            TEXT NOT NULL,
    settled_at           TEXT,
    resolution           TEXT,
    topup_payout_no      TEXT,
    write_off_proposed_by TEXT,
    history              TEXT NOT NULL
);
CREATE INDEX discrepancies_status ON discrepancies (status, merchant_id);
