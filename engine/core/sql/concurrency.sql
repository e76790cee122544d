-- name: group_lock
-- Serialises the decisions on one group of runs, a (workflow, concurrency key), across every process on every host until this transaction ends: which runs start, wait or are cancelled.
SELECT pg_advisory_xact_lock(hashtext('weft.run_concurrency:' || %(workflow)s::text), hashtext(%(key)s))

-- name: group_running
-- The group's running runs, the earliest started first: what counts against its limit, and what cancel_in_progress cancels first.
SELECT id FROM engine_run
WHERE workflow_id = %(workflow)s AND concurrency_key = %(key)s AND status = %(run_running)s
ORDER BY started_at, id

-- name: group_next
-- The group's oldest waiting run, locked; one another transaction holds (its cancellation) is passed over, so that transaction's own pass decides after it.
SELECT id, version_id FROM engine_run
WHERE workflow_id = %(workflow)s AND concurrency_key = %(key)s AND status = %(run_pending)s
ORDER BY created_at, id LIMIT 1
FOR NO KEY UPDATE SKIP LOCKED

-- name: run_waiting_with_room
-- The condition on a run w: it is the oldest waiting run of its group, and the group has room for it under the limit of its version (only after a crash or a change of strategy: a finish starts the next run itself).
w.status = %(run_pending)s AND w.concurrency_key IS NOT NULL
AND NOT EXISTS (SELECT 1 FROM engine_run o
                WHERE o.workflow_id = w.workflow_id AND o.concurrency_key = w.concurrency_key
                  AND o.status = %(run_pending)s AND (o.created_at, o.id) < (w.created_at, w.id))
AND (SELECT count(*) FROM engine_run r
     WHERE r.workflow_id = w.workflow_id AND r.concurrency_key = w.concurrency_key AND r.status = %(run_running)s)
    < COALESCE((SELECT (v.definition->'concurrency'->>'limit')::int FROM engine_workflowversion v
                WHERE v.id = w.version_id), 1)

-- name: groups_with_room
-- Up to a batch of groups whose oldest waiting run has room to start (run_waiting_with_room), for the recovery loop.
SELECT w.workflow_id, w.concurrency_key FROM engine_run w WHERE /*{run_waiting_with_room}*/
ORDER BY w.created_at LIMIT %(batch)s
