-- What came back of a payout that stays succeeded (partial returns, DESIGN §8.1): the bank
-- debited paid + returned, then credited returned. Statements match on it (DESIGN §8.3).
ALTER TABLE payouts ADD COLUMN returned_minor BIGINT NOT NULL DEFAULT 0;
