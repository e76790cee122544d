-- name: run_logs_search
-- Captured log lines of one run's attempts, in the order written per attempt, attempts in the order they started; each filter applies only when given (an empty string, or a NULL attempt, means any).
SELECT s.node_id, a.number, l.idx - 1, (l.line->>'t')::float8, l.line->>'level', l.line->>'msg'
FROM engine_attempt a
JOIN engine_steprun s ON s.id = a.step_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(a.logs) = 'array' THEN a.logs ELSE '[]'::jsonb END
) WITH ORDINALITY AS l(line, idx)
WHERE s.run_id = %(run)s
    AND (%(node)s = '' OR s.node_id = %(node)s)
    AND (%(attempt)s::int IS NULL OR a.number = %(attempt)s::int)
    AND (%(level)s = '' OR upper(l.line->>'level') = upper(%(level)s))
    AND (%(q)s = '' OR l.line->>'msg' ILIKE %(q)s)
ORDER BY a.started_at, a.id, l.idx
LIMIT %(limit)s

-- name: runs_by_status
-- How many runs of one workflow were created since a time, per status.
SELECT status, count(*) FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s
GROUP BY status

-- name: run_durations
-- Count, p50, p95, mean and longest duration in seconds of one workflow's succeeded runs created since a time.
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
       avg(extract(epoch FROM finished_at - started_at)),
       max(extract(epoch FROM finished_at - started_at))
FROM engine_run
WHERE workflow_id = %(workflow)s AND created_at >= %(since)s AND status = %(succeeded)s
  AND started_at IS NOT NULL AND finished_at IS NOT NULL

-- name: failing_nodes
-- The ten nodes of one workflow whose attempts failed most in runs created since a time: attempts, failed attempts, failed steps and the commonest error type.
SELECT s.node_id,
       count(*) AS attempts,
       count(*) FILTER (WHERE a.outcome = ANY(%(failed_outcomes)s)) AS failed_attempts,
       count(DISTINCT s.id) FILTER (WHERE s.status = %(step_failed)s) AS failed_steps,
       mode() WITHIN GROUP (ORDER BY a.error_type) FILTER (WHERE a.outcome = ANY(%(failed_outcomes)s))
FROM engine_steprun s
JOIN engine_attempt a ON a.step_id = s.id
WHERE s.run_id = ANY(ARRAY(SELECT id FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s))
GROUP BY s.node_id
HAVING count(*) FILTER (WHERE a.outcome = ANY(%(failed_outcomes)s)) > 0
ORDER BY failed_steps DESC, failed_attempts DESC, s.node_id
LIMIT 10

-- name: attempts_per_bucket
-- Attempts, retries (attempt number above one) and failed attempts per hour or day (date_trunc's unit) of one workflow's runs created since a time.
SELECT date_trunc(%(bucket)s, coalesce(a.queued_at, a.started_at)) AS at,
       count(*), count(*) FILTER (WHERE a.number > 1),
       count(*) FILTER (WHERE a.outcome = ANY(%(failed_outcomes)s))
FROM engine_steprun s
JOIN engine_attempt a ON a.step_id = s.id
WHERE s.run_id = ANY(ARRAY(SELECT id FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s))
GROUP BY 1

-- name: runs_per_bucket
-- Runs and failed runs per hour or day (date_trunc's unit) of one workflow, created since a time.
SELECT date_trunc(%(bucket)s, created_at), count(*), count(*) FILTER (WHERE status = %(run_failed)s)
FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s GROUP BY 1
