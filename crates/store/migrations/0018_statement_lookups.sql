-- Indexes for the lookups a statement import makes per chunk of entries: a batch booked as one
-- debit found by its control sum, and a statement found again by its bytes.
CREATE INDEX batches_control_sum ON batches (channel_id, currency, control_sum_minor);
CREATE INDEX statements_by_sha256 ON statements (channel_id, sha256);
