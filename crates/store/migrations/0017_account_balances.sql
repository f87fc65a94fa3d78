-- Balances as rows: each account's balance per currency, updated in the same transaction as the
-- journal lines that move it, so a withdrawal reads one row instead of summing the account's
-- whole history. Derived data: `ledger check` and `audit verify` prove every row equals the sum of
-- its (chain-covered) journal lines, so editing a row is found like editing a line.
CREATE TABLE account_balances (
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    PRIMARY KEY (account, currency)
);

INSERT INTO account_balances (account, currency, balance_minor)
SELECT account, currency, SUM(amount_minor) FROM journal_lines GROUP BY account, currency;
