-- name: run_durations
-- Count, p50, p95, mean and longest duration in seconds of one workflow's succeeded runs created since a time. In double precision (date_part), not numeric (extract): sorting 21,000 numerics took 27 ms, the same doubles 19.
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', finished_at - started_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY date_part('epoch', finished_at - started_at)),
       avg(date_part('epoch', finished_at - started_at)),
       max(date_part('epoch', finished_at - started_at))
FROM engine_run
WHERE workflow_id = %(workflow)s AND created_at >= %(since)s AND status = %(succeeded)s
  AND started_at IS NOT NULL AND finished_at IS NOT NULL

-- name: attempts_by_node_and_bucket
-- One pass over the attempts of one workflow's runs created since a time, grouped twice: per node (attempts, failed attempts, failed steps, the commonest error type of the failed attempts) and per hour or day of date_trunc's unit (attempts, retries: attempt number above one, failed attempts). by_node says which grouping a row is.
SELECT GROUPING(node_id) = 0 AS by_node, node_id, at,
       count(*),
       count(*) FILTER (WHERE number > 1),
       count(*) FILTER (WHERE outcome = ANY(%(failed_outcomes)s)),
       count(DISTINCT step_id) FILTER (WHERE step_status = %(step_failed)s),
       mode() WITHIN GROUP (ORDER BY error_type) FILTER (WHERE outcome = ANY(%(failed_outcomes)s))
FROM (
    SELECT s.id AS step_id, s.node_id, s.status AS step_status, a.number, a.outcome, a.error_type,
           date_trunc(%(bucket)s, coalesce(a.queued_at, a.started_at)) AS at
    FROM engine_steprun s
    JOIN engine_attempt a ON a.step_id = s.id
    WHERE s.run_id = ANY(ARRAY(SELECT id FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s))
) AS attempts
GROUP BY GROUPING SETS ((node_id), (at))

-- name: runs_per_bucket
-- Runs and failed runs per hour or day (date_trunc's unit) of one workflow, created since a time.
SELECT date_trunc(%(bucket)s, created_at), count(*), count(*) FILTER (WHERE status = %(run_failed)s)
FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s GROUP BY 1

-- name: run_days
-- Per UTC day and status, one workflow's runs created since a time: how many, and the sum of their last event numbers. What the analytics count per status and per day, and what decides whether a day's kept figures still hold (its runs' count, their last events' sum, none unfinished: see AnalyticsDay).
SELECT date_trunc('day', created_at), status, count(*), sum(last_seq)
FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s
GROUP BY 1, 2

-- name: period_runs
-- One workflow's runs created in the given periods (starts and ends, an end null: open), with the UTC day of their creation, each period read from the runs' (workflow, created) index (a piece of day_attempts and day_model_calls).
SELECT r.id, date_trunc('day', r.created_at) AS day
FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS p(starts, ends),
    LATERAL (SELECT id, created_at FROM engine_run WHERE workflow_id = %(workflow)s
             AND created_at >= p.starts AND created_at < coalesce(p.ends, 'infinity')) AS r

-- name: day_attempts
-- The attempts of one workflow's runs created in the given periods (period_runs), per day of their run's creation, grouped three ways: per node (attempts, failed attempts, failed steps), per node and error type (failed attempts), per day they were queued (attempts, retries, failed attempts). kind says which grouping a row is; the runs' steps are found by the runs' ids, their attempts by the steps' ids.
WITH runs AS MATERIALIZED (
    /*{period_runs}*/
)
SELECT CASE WHEN GROUPING(x.at) = 0 THEN 'at' WHEN GROUPING(x.error_type) = 0 THEN 'error' ELSE 'node' END,
       x.day, x.node_id, x.error_type, x.at,
       count(*),
       count(*) FILTER (WHERE x.number > 1),
       count(*) FILTER (WHERE x.outcome = ANY(%(failed_outcomes)s)),
       count(DISTINCT x.step_id) FILTER (WHERE x.step_status = %(step_failed)s)
FROM (
    SELECT runs.day, s.id AS step_id, s.node_id, s.status AS step_status, a.number, a.outcome, a.error_type,
           date_trunc('day', coalesce(a.queued_at, a.started_at)) AS at
    FROM engine_steprun s
    JOIN runs ON runs.id = s.run_id
    JOIN engine_attempt a ON a.step_id = s.id
    WHERE s.run_id = ANY(ARRAY(SELECT id FROM runs))
) AS x
GROUP BY GROUPING SETS ((x.day, x.node_id), (x.day, x.node_id, x.error_type), (x.day, x.at))

-- name: day_model_calls
-- The finished model calls (journal entries whose result has a usage object) of one workflow's runs created in the given periods (period_runs), per day of their run's creation, model and token counts (which alone set a call's cost); steps found by the runs' ids, entries by the steps' ids.
WITH runs AS MATERIALIZED (
    /*{period_runs}*/
), steps AS MATERIALIZED (
    SELECT s.id, runs.day FROM engine_steprun s JOIN runs ON runs.id = s.run_id
    WHERE s.run_id = ANY(ARRAY(SELECT id FROM runs))
)
SELECT steps.day, coalesce(j.result->>'model', ''),
       CASE WHEN jsonb_typeof(j.result->'usage'->'prompt_tokens') = 'number'
            THEN trunc((j.result->'usage'->>'prompt_tokens')::numeric)::bigint ELSE 0 END,
       CASE WHEN jsonb_typeof(j.result->'usage'->'completion_tokens') = 'number'
            THEN trunc((j.result->'usage'->>'completion_tokens')::numeric)::bigint ELSE 0 END,
       count(*)
FROM engine_journalentry j
JOIN steps ON steps.id = j.step_id
WHERE j.step_id = ANY(ARRAY(SELECT id FROM steps))
  AND j.status = %(succeeded)s AND jsonb_typeof(j.result->'usage') = 'object'
GROUP BY 1, 2, 3, 4

-- name: days_kept
-- The kept figures of one workflow's listed UTC days (AnalyticsDay), with what they were computed from.
SELECT day, runs, seq_sum, figures::text FROM engine_analyticsday WHERE workflow_id = %(workflow)s
    AND day = ANY(%(days)s::date[])

-- name: days_keep
-- Keep (or replace) the figures of one workflow's days, each with its runs' count and last-event sum (a JSON list).
INSERT INTO engine_analyticsday (workflow_id, day, runs, seq_sum, figures, computed_at)
SELECT %(workflow)s, (d->>'day')::date, (d->>'runs')::int, (d->>'seq_sum')::bigint, d->'figures', statement_timestamp()
FROM jsonb_array_elements(%(days)s::jsonb) AS d
ON CONFLICT (workflow_id, day) DO UPDATE SET runs = excluded.runs, seq_sum = excluded.seq_sum,
    figures = excluded.figures, computed_at = excluded.computed_at
