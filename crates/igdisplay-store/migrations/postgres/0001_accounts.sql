-- One row per connected Instagram account. The token is sealed (XChaCha20-Poly1305, the
-- account id as associated data); `record` is the rest of the token record as JSON, without
-- the token. `version` grows with every write (compare-and-swap); the keeper's columns
-- (state, next refresh, lease, failures) are there from the start.
CREATE TABLE accounts (
    user_id          TEXT PRIMARY KEY NOT NULL,
    record           TEXT NOT NULL,
    token            BYTEA NOT NULL,
    key_id           TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    state            TEXT NOT NULL DEFAULT 'active',
    next_refresh_at  BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    failures         BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX accounts_due ON accounts (state, next_refresh_at);
CREATE INDEX accounts_key ON accounts (key_id);
