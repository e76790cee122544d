-- name: journal_start
-- A journal entry marked started for one call of a step's attempt, only while the step is still running at that attempt (the fencing token); a rerun of the key takes the entry over. No row: the attempt lost its step. The durability slot is empty, or durability.sql's commit_relaxed.
INSERT INTO engine_journalentry
    (step_id, key, position, status, safe_to_repeat, attempt, result, error, error_type, started_at, finished_at)
SELECT %(step)s, %(key)s, %(position)s, %(started)s, %(safe)s, %(attempt)s, NULL, '', '', now(), NULL
WHERE EXISTS (SELECT 1 FROM engine_steprun WHERE id = %(step)s AND attempt = %(attempt)s AND status = %(running)s)
    /*{durability}*/
ON CONFLICT (step_id, key) DO UPDATE SET
    status = %(started)s, attempt = EXCLUDED.attempt, safe_to_repeat = EXCLUDED.safe_to_repeat,
    error = '', error_type = '', started_at = now(), finished_at = NULL
RETURNING id

-- name: journal_finish
-- A journal entry's outcome (succeeded or failed, with its result or error), only while its step is still running at the entry's attempt: a fenced-out attempt's result is discarded. The durability slot is empty, or durability.sql's commit_relaxed.
UPDATE engine_journalentry j SET status = %(status)s, result = %(result)s::jsonb, error = %(error)s,
    error_type = %(error_type)s, finished_at = now()
FROM engine_steprun s
WHERE j.id = %(id)s AND j.attempt = %(attempt)s AND s.id = j.step_id AND s.attempt = %(attempt)s
    AND s.status = %(running)s /*{durability}*/
