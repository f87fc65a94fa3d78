-- The operator console's browser sessions. The cookie holds an operator session token (the
-- `operator_sessions` row of 0004 gives the absolute expiry, and a new password ends it); this row
-- adds what a browser needs on top: the token every form of the session must carry (CSRF), and
-- when the session was last used (idle expiry).
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,   -- SHA-256 of the cookie's token, as in operator_sessions
    name         TEXT NOT NULL REFERENCES operators (name),
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at);
