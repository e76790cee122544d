-- name: commit_relaxed
-- A guard's extra condition, always true, that makes the statement's transaction commit with synchronous_commit off (a relaxed run's: the commit does not wait for the WAL to reach the disk). Evaluated with the statement's guards, before it writes anything; the setting lasts until that transaction ends.
AND set_config('synchronous_commit', 'off', true) = 'off'

-- name: commit_relaxed_if_run
-- The same, on a statement that reads the run row (engine_run): only if the run is a relaxed one. Always true.
AND CASE WHEN durability = %(relaxed)s THEN set_config('synchronous_commit', 'off', true) = 'off' ELSE true END
