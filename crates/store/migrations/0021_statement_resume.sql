-- A statement is stored a chunk per transaction; an import stopped half-way goes on after the last
-- line stored, and the statement's entries are counted by status: both read by statement.
CREATE INDEX statement_entries_by_statement ON statement_entries (statement_id, line);
