-- An account no feed shows any more keeps its schedule row, marked `purge`, until its mirrored
-- files are deleted: the deletion of the token and of the feed and this mark are one
-- transaction, and the purge is then claimed like a sync, so a crash between the database and
-- the bucket leaves a purge to do, never files nobody will delete.
ALTER TABLE account_syncs ADD COLUMN purge BIGINT NOT NULL DEFAULT 0;
