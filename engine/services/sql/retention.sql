-- name: prunable_runs
-- The runs a prune deletes (id, workflow, creation time): finished before the cutoff, of one workflow or of all, no child run of theirs still going (the few unfinished child runs are looked up first, through the status index, not once a run).
SELECT run.id, run.workflow_id, run.created_at FROM engine_run run
WHERE run.finished_at < %(cutoff)s AND run.status = ANY(%(run_terminal)s)
    AND (%(workflow)s::bigint IS NULL OR run.workflow_id = %(workflow)s::bigint)
    AND NOT run.id = ANY(ARRAY(SELECT p.run_id FROM engine_run c JOIN engine_steprun p ON p.id = c.parent_step_id
                               WHERE c.status = ANY(%(run_unfinished)s)))

-- name: prunable
-- How many runs a prune would delete now (prunable_runs), with what belongs to them: what `prune --dry-run` reports.
WITH r AS (
    /*{prunable_runs}*/
), ids AS (
    SELECT coalesce(array_agg(id), '{}') AS runs FROM r
), s AS (
    SELECT coalesce(array_agg(id), '{}') AS steps FROM engine_steprun WHERE run_id = ANY((SELECT runs FROM ids)::uuid[])
)
SELECT cardinality((SELECT runs FROM ids)),
    cardinality((SELECT steps FROM s)),
    (SELECT count(*) FROM engine_attempt WHERE step_id = ANY((SELECT steps FROM s)::bigint[])),
    (SELECT count(*) FROM engine_event WHERE run_id = ANY((SELECT runs FROM ids)::uuid[])),
    (SELECT count(*) FROM engine_journalentry WHERE step_id = ANY((SELECT steps FROM s)::bigint[]))

-- name: prune_batch
-- Deletes up to %(batch)s of the oldest prunable runs (prunable_runs; rows another transaction holds are skipped) and everything that belongs to them: steps, attempts (their logs), events, journal entries, limit claims, the events its steps received, broker messages, channel-layer memberships of the run's group, the analytics kept for its workflow and day of creation (AnalyticsDay); a schedule's fire and a webhook's delivery keep their records without the run; a younger child run of theirs keeps its history but loses the link to its parent step. Returns the counts deleted. The ids travel as arrays, so each table is reached through its index whatever the planner's statistics say.
WITH r AS (
    /*{prunable_runs}*/
    ORDER BY run.finished_at
    LIMIT %(batch)s
    FOR UPDATE OF run SKIP LOCKED
), ids AS (
    SELECT coalesce(array_agg(id), '{}') AS runs FROM r
), s AS (
    SELECT coalesce(array_agg(id), '{}') AS steps,
        coalesce(array_agg(broker_msg_id) FILTER (WHERE broker_msg_id IS NOT NULL), '{}') AS messages
    FROM engine_steprun WHERE run_id = ANY((SELECT runs FROM ids)::uuid[])
), journal AS (
    DELETE FROM engine_journalentry WHERE step_id = ANY((SELECT steps FROM s)::bigint[]) RETURNING 1
), attempts AS (
    DELETE FROM engine_attempt WHERE step_id = ANY((SELECT steps FROM s)::bigint[]) RETURNING 1
), events AS (
    DELETE FROM engine_event WHERE run_id = ANY((SELECT runs FROM ids)::uuid[]) RETURNING 1
), children AS (
    UPDATE engine_run SET parent_step_id = NULL
    WHERE parent_step_id = ANY((SELECT steps FROM s)::bigint[]) AND NOT id = ANY((SELECT runs FROM ids)::uuid[])
), fires AS (
    UPDATE engine_schedulefire SET run_id = NULL WHERE run_id = ANY((SELECT runs FROM ids)::uuid[])
), deliveries AS (
    UPDATE engine_webhookdelivery SET run_id = NULL WHERE run_id = ANY((SELECT runs FROM ids)::uuid[])
), received AS (
    DELETE FROM engine_eventdelivery WHERE step_id = ANY((SELECT steps FROM s)::bigint[])
), claims AS (
    DELETE FROM engine_limitclaim WHERE step_id = ANY((SELECT steps FROM s)::bigint[])
), broker AS (
    DELETE FROM django_q_ormq WHERE id = ANY((SELECT messages FROM s)::bigint[])
), memberships AS (
    DELETE FROM channels_postgres_groupchannel
    WHERE group_key = ANY((SELECT array_agg(%(group_prefix)s || id::text) FROM r)::text[])
), days AS (
    DELETE FROM engine_analyticsday d USING (SELECT DISTINCT workflow_id, date_trunc('day', created_at) AS day FROM r) x
    WHERE d.workflow_id = x.workflow_id AND d.day = x.day::date
), steps AS (
    DELETE FROM engine_steprun WHERE id = ANY((SELECT steps FROM s)::bigint[]) RETURNING 1
), runs AS (
    DELETE FROM engine_run WHERE id = ANY((SELECT runs FROM ids)::uuid[]) RETURNING 1
)
SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps), (SELECT count(*) FROM attempts),
    (SELECT count(*) FROM events), (SELECT count(*) FROM journal)

-- name: prune_lock_timeout
-- A prune batch waits at most this long for a lock (then the batch is tried again later): it never queues behind a hot path's lock, nor makes later ones queue behind it.
SET LOCAL lock_timeout = '100ms'

-- name: prunable_any
-- Whether any run is still prunable (prunable_runs), locked by another transaction or not.
SELECT EXISTS (
    /*{prunable_runs}*/
)
