-- Indexes for every lookup an importer makes per line that was not yet served by one: a line
-- whose EndToEndId names no payout is matched by the bank's reference, then by a unique open
-- payout of its amount; and before an exception is opened, the desk checks that the same fact is
-- not open already. (`db::hot_query_plans` lists the plans; a test asserts each uses an index.)
CREATE INDEX payouts_bank_reference ON payouts (bank_reference);
CREATE INDEX payouts_open_amount ON payouts (currency, amount_minor)
    WHERE state IN ('submitted', 'expired');
CREATE INDEX exceptions_open_fact ON exceptions (payout_no, kind)
    WHERE status = 'open';
