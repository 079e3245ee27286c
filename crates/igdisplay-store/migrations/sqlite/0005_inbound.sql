-- Meta's webhook deliveries already kept, by the SHA-256 of their body: the same delivery
-- sent again (Meta retries what it could not see acknowledged) is kept once. Its entries are
-- in the outbox (`events`), written in the same transaction.
CREATE TABLE inbound_webhooks (
    hash         TEXT PRIMARY KEY NOT NULL,
    received_at  INTEGER NOT NULL
);
