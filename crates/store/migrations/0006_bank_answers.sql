-- Bank answers as banks send them (DESIGN §8.1).
--
-- `paid_basis`: how a succeeded payout's paid amount is known: 'booked' (a camt booking, a CSV
-- amount column, a person with evidence) or 'assumed' (a pain.002 ACSC, a failures-only bank's
-- silence). A booking decides over an assumption. NULL for payouts recorded before: booked.
ALTER TABLE payouts ADD COLUMN paid_basis TEXT;

-- Imports resume by record index, never by physical line: one-line XML files exist.
ALTER TABLE bank_files ADD COLUMN records_done BIGINT NOT NULL DEFAULT 0;

-- A file being imported is claimed by one importer (a lease with the holder's identity), so two
-- importers never apply it at once; a crashed holder's claim expires and the next one resumes it.
-- Operational, like the service's tables: the import's audit events name the holder.
CREATE TABLE import_claims (
    sha256 TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
