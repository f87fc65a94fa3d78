-- Netting: what a merchant owes us (overpaid) is deducted from its next payouts, and what we owe
-- (underpaid) is added to them. `adjustment_minor` is how much the order's payouts differ from its
-- amount because of that (negative: netted; positive: added); `settled_minor` is how much of a
-- discrepancy has been settled so far (a large one may take several payouts).
ALTER TABLE orders ADD COLUMN adjustment_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE discrepancies ADD COLUMN settled_minor BIGINT NOT NULL DEFAULT 0;
