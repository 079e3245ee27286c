-- An account no feed shows any more keeps its schedule row, marked `purge`, until its mirrored
-- files are deleted: the deletion of the token and of the feed and this mark are one
-- transaction, and the purge is then claimed like a sync, so a crash between the database and
-- the bucket leaves a purge to do, never files nobody will delete.
ALTER TABLE account_syncs ADD COLUMN purge BIGINT NOT NULL DEFAULT 0;
-- Where a feed stands is read from these rows alone (one rule, for a page and for the
-- metrics): the last sync that succeeded, and the first of the failures since.
ALTER TABLE account_syncs ADD COLUMN last_ok_at BIGINT;
ALTER TABLE account_syncs ADD COLUMN failing_since BIGINT;
UPDATE account_syncs SET last_ok_at = last_sync_at WHERE syncs > 0 AND (last_error IS NULL OR syncs > 1);
UPDATE account_syncs SET failing_since = last_sync_at WHERE syncs > 0 AND last_error IS NOT NULL;
