-- name: heartbeat
-- Extends a running attempt's lease on the database clock; no row once the attempt is no longer running (its lease was lost). Returns its run's status (cancelled: the node stops).
UPDATE engine_steprun SET lease_expires_at = now() + make_interval(secs => %(lease)s), heartbeat_at = now()
WHERE id = %(step)s AND attempt = %(attempt)s AND status = %(running)s
RETURNING (SELECT status FROM engine_run WHERE id = engine_steprun.run_id)

-- name: held_heartbeat
-- Extends the leases of a batch's claimed attempts that have not started yet, each only while it is still that attempt, running.
UPDATE engine_steprun SET lease_expires_at = now() + make_interval(secs => %(lease)s), heartbeat_at = now()
WHERE id = ANY(%(ids)s::bigint[]) AND status = %(running)s
    AND (id, attempt) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]))
