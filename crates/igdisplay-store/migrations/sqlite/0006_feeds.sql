-- Feeds (igdisplay-feeds): one account's posts as a customer's site shows them. The id is the
-- feed's public, unguessable address; the account is bound once, by a connect link. The
-- settings are the feed service's JSON (filters, pins, origins), read on every render.
CREATE TABLE feeds (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT,
    name        TEXT NOT NULL,
    settings    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX feeds_user ON feeds (user_id);

-- One-time links that bind an account to a feed, by the SHA-256 of the link's secret (never
-- the secret). A login begun from a link parks its pending authorization here, sealed with
-- the store's key ring, so the callback may reach any instance.
CREATE TABLE connect_links (
    hash        TEXT PRIMARY KEY NOT NULL,
    feed_id     TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_by     TEXT,
    pending     BLOB,
    key_id      TEXT
);
CREATE INDEX connect_links_feed ON connect_links (feed_id);

-- The admin API's bearer tokens, by their SHA-256 (never the token).
CREATE TABLE admin_tokens (
    hash        TEXT PRIMARY KEY NOT NULL,
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Each bound account's sync: when it is next due, which instance holds it and until when
-- (the database's time), and how the last one went.
CREATE TABLE account_syncs (
    user_id       TEXT PRIMARY KEY NOT NULL,
    next_sync_at  INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    last_sync_at  INTEGER,
    last_error    TEXT,
    syncs         INTEGER NOT NULL
);
CREATE INDEX account_syncs_due ON account_syncs (next_sync_at);
