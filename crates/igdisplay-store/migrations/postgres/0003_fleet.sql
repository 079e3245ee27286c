-- A deleted account leaves a tombstone: its id and when (never a token, never personal
-- data), so that a write racing the deletion (a refresh, a login begun before it) sees it.
CREATE TABLE deleted_accounts (
    user_id     TEXT PRIMARY KEY NOT NULL,
    deleted_at  BIGINT NOT NULL
);

-- Who held an account's lease before the current claim (a lease taken over from an
-- instance that stopped answering).
ALTER TABLE accounts ADD COLUMN last_owner TEXT;

-- The outbox: every event, written in the transaction of the state change it reports, and
-- delivered from there (at least once, in order per account) by any instance under a lease.
CREATE TABLE events (
    id               BIGSERIAL PRIMARY KEY,
    user_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    finished_at      BIGINT,
    last_error       TEXT
);
CREATE INDEX events_pending ON events (user_id, id) WHERE state = 'pending';
CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_finished ON events (state, finished_at) WHERE state <> 'pending';

-- The app's budget, shared by every instance: the refresh quota's theoretical arrival time
-- (milliseconds), a rate-limit pause any instance was told of, and the usage last reported.
CREATE TABLE app_budget (
    scope          TEXT PRIMARY KEY NOT NULL,
    quota_tat      BIGINT,
    blocked_until  BIGINT,
    usage_percent  BIGINT,
    observed_at    BIGINT
);
INSERT INTO app_budget (scope) VALUES ('app');
