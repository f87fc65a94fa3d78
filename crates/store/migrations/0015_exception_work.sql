-- Working the exceptions queue: who has taken an item (one person at a time), and what people
-- wrote about it (comments, and the note of whoever marked it handled). An item is named by the
-- queue's id (`E12`, `payout:PO…`, `order:merchant/order_no`). Both tables are tracked rows.
INSERT INTO sequences (name, value) VALUES ('exception_note', 0);

CREATE TABLE exception_claims (
    item_id    TEXT PRIMARY KEY,
    claimed_by TEXT NOT NULL REFERENCES operators (name),
    claimed_at TEXT NOT NULL
);

-- kind: 'comment' or 'handled'.
CREATE TABLE exception_notes (
    id         BIGINT PRIMARY KEY,
    item_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    note       TEXT NOT NULL,
    written_by TEXT NOT NULL REFERENCES operators (name),
    written_at TEXT NOT NULL
);
CREATE INDEX exception_notes_item ON exception_notes (item_id, id);
