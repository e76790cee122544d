-- name: step_queued
-- The node of a step still queued for this attempt and its run's last sequence number: a duplicate or stale delivery finds nothing and goes away without taking its run's lock.
SELECT s.node_id, r.last_seq FROM engine_steprun s JOIN engine_run r ON r.id = s.run_id
WHERE s.id = %(step)s AND s.status = %(queued)s AND s.attempt = %(attempt)s

-- name: oldest_queued
-- The oldest queued steps of a queue, any run: what the broker would deliver next (each is then claimed by its compare-and-set, or not). A step waiting for a limit is not: it has no delivery until admitted.
-- The literal 'queued' reads the partial index steprun_queued whatever the plan (tests/unit/test_sql_statuses.py
-- checks the literal).
SELECT s.run_id, s.id, s.attempt, s.node_id, r.last_seq FROM engine_steprun s JOIN engine_run r ON r.id = s.run_id
WHERE s.queue = %(queue)s AND s.status = 'queued' AND s.waiting_reason <> %(limit_reason)s
ORDER BY s.queued_at LIMIT %(limit)s
