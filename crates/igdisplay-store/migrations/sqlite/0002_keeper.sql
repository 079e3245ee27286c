-- The keeper's bookkeeping: why the last refresh failed (a message, never a token); an index
-- of the accounts a keeper may claim, in the order it claims them; and one for finding the
-- expired accounts without scanning the table.
ALTER TABLE accounts ADD COLUMN last_error TEXT;
CREATE INDEX accounts_claim ON accounts (next_refresh_at) WHERE state IN ('active', 'failing');
CREATE INDEX accounts_expiry ON accounts (expires_at) WHERE state IN ('active', 'failing');
