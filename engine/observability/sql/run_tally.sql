-- name: run_tally_horizon
-- The as_of of a new tally: now, or when the oldest transaction open in this database began, if earlier (a run it finishes has a finished_at from then on, and the tally cannot see it before it commits). Its own statement, before run_tally_take's snapshot.
SELECT least(statement_timestamp(), min(xact_start)) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()

-- name: run_tally_take
-- Replaces the tally: for each terminal status, the runs of that status that finished before as_of (0 when none), all with that as_of.
-- The runs are counted from the index run_finished_status alone (it includes their status): no run row is read.
INSERT INTO engine_runtally (status, runs, as_of)
SELECT t.status, coalesce(c.runs, 0), %(as_of)s
FROM unnest(%(run_terminal)s::varchar[]) AS t (status)
LEFT JOIN (SELECT status, count(*) AS runs FROM engine_run WHERE finished_at < %(as_of)s GROUP BY status) c
    ON c.status = t.status
ON CONFLICT (status) DO UPDATE SET runs = excluded.runs, as_of = excluded.as_of

-- name: run_tally_read
-- The tally's rows of the terminal statuses, if it was taken less than fresh_s seconds ago (else none: no recovery loop keeps it).
SELECT status, runs, as_of FROM engine_runtally
WHERE status = ANY(%(run_terminal)s) AND as_of > statement_timestamp() - make_interval(secs => %(fresh_s)s)

-- name: runs_since_tally
-- The runs the tally of as_of leaves out, by status: unfinished (index run_unfinished) or finished since (index run_finished_status); never the runs finished before it.
SELECT status, count(*) FROM engine_run WHERE finished_at IS NULL OR finished_at >= %(as_of)s GROUP BY status

-- name: runs_counted_by_status
-- How many runs there are in each status, counted one by one: weft_runs when there is no fresh tally.
SELECT status, count(*) FROM engine_run GROUP BY status
