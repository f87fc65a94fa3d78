-- The sweep (a worker) and the exception queue read payouts by state, a page at a time by id
-- (keyset paging: `state = $1 AND id > $2 ORDER BY id LIMIT n`). The only index with `state`,
-- payouts_channel_state, leads with the channel, so these reads scanned the table.
CREATE INDEX payouts_by_state ON payouts (state, id);
