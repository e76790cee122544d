-- name: attempt_logs_append
-- Appends lines to the captured logs of one attempt while it runs: nothing once its outcome is recorded (the worker then writes the complete list), or if its logs are not a list.
UPDATE engine_attempt SET logs = logs || %(lines)s::jsonb
WHERE step_id = %(step)s AND number = %(attempt)s AND outcome = %(running)s AND jsonb_typeof(logs) = 'array'
