-- Leases on named pieces of work shared by every instance on the database (one sync of an
-- account's mirror at a time): who holds each, and until when (the database's time). A holder
-- renews its lease while it works; one that stops answering loses it when it runs out.
CREATE TABLE task_leases (
    name      TEXT PRIMARY KEY NOT NULL,
    holder    TEXT NOT NULL,
    until_at  INTEGER NOT NULL
);
