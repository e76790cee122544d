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
