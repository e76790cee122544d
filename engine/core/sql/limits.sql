-- name: admit_lock
-- Serialises admission passes (and the wants they read) across every process on every host, until this transaction ends: a limit's slots and tokens are counted and taken by one pass at a time.
SELECT pg_advisory_xact_lock(%(lock)s)

-- name: buckets_make
-- The buckets (limit, key) that queued steps name, made the first time a key is seen; nothing for one that exists.
INSERT INTO engine_limitbucket (limit_id, key)
SELECT l.id, v.key FROM engine_limit l
    JOIN unnest(%(limits)s::text[], %(keys)s::text[]) AS v(name, key) ON l.name = v.name
ON CONFLICT (limit_id, key) DO NOTHING

-- name: buckets_find
-- The ids of buckets (limit name, key); a name no limit has gives no row.
SELECT v.name, v.key, b.id FROM unnest(%(limits)s::text[], %(keys)s::text[]) AS v(name, key)
    JOIN engine_limit l ON l.name = v.name JOIN engine_limitbucket b ON b.limit_id = l.id AND b.key = v.key

-- name: claims_want
-- Queued steps' wants of their buckets at their attempt (one row per step and bucket, replacing an earlier attempt's), and each step marked as waiting for a limit: it has no broker row until a pass admits it.
WITH v AS (
    SELECT * FROM unnest(%(steps)s::bigint[], %(attempts)s::int[], %(buckets)s::bigint[], %(priorities)s::int[])
        AS v(step, attempt, bucket, priority)
), c AS (
    INSERT INTO engine_limitclaim (step_id, attempt, bucket_id, held, priority, since)
    SELECT step, attempt, bucket, false, priority, statement_timestamp() FROM v
    ON CONFLICT (step_id, bucket_id) DO UPDATE SET attempt = EXCLUDED.attempt, held = false,
        priority = EXCLUDED.priority, since = EXCLUDED.since
)
UPDATE engine_steprun s SET waiting_reason = %(reason)s, waiting_detail = d.detail::jsonb, broker_msg_id = NULL
FROM unnest(%(waiting)s::bigint[], %(details)s::text[]) AS d(step, detail)
WHERE s.id = d.step

-- name: waiting_read
-- The current wants of queued steps, oldest first (at most n), their steps locked; a step another transaction holds is left for the next pass.
SELECT c.step_id, c.attempt, c.bucket_id, c.priority, extract(epoch FROM statement_timestamp() - c.since)::float8,
    s.run_id, s.queue
FROM engine_limitclaim c JOIN engine_steprun s ON s.id = c.step_id
WHERE NOT c.held AND s.status = %(queued)s AND s.attempt = c.attempt
ORDER BY c.since, c.step_id
LIMIT %(n)s
FOR UPDATE OF s SKIP LOCKED

-- name: buckets_read
-- What a pass needs of some buckets: their limit, slots in use (holds of steps still queued or running at the held attempt) and how many of those are admitted but not started (still queued), and the rate's next free start, the pause and the last service, as seconds from the database's now.
SELECT b.id, l.name, b.key, l.concurrency, l.rate_limit, l.rate_period_s, l.rate_burst,
    extract(epoch FROM b.tat - statement_timestamp())::float8,
    extract(epoch FROM b.paused_until - statement_timestamp())::float8,
    extract(epoch FROM b.served_at - statement_timestamp())::float8,
    count(s.id) FILTER (WHERE s.status = ANY(%(holding)s)),
    count(s.id) FILTER (WHERE s.status = %(queued)s)
FROM engine_limitbucket b JOIN engine_limit l ON l.id = b.limit_id
    LEFT JOIN engine_limitclaim h ON h.bucket_id = b.id AND h.held
    LEFT JOIN engine_steprun s ON s.id = h.step_id AND s.attempt = h.attempt
WHERE b.id = ANY(%(buckets)s::bigint[])
GROUP BY b.id, l.id

-- name: claims_hold
-- Admitted steps: their wants become holds, their buckets' last service moves on, and the steps stop waiting (their broker rows are written next, in this transaction). A rate's token is taken when the step starts (tokens_take).
WITH h AS (
    UPDATE engine_limitclaim c SET held = true
    FROM unnest(%(steps)s::bigint[], %(attempts)s::int[]) AS v(step, attempt)
    WHERE c.step_id = v.step AND c.attempt = v.attempt
), b AS (
    UPDATE engine_limitbucket b SET served_at = statement_timestamp() + make_interval(secs => v.served)
    FROM unnest(%(buckets)s::bigint[], %(served)s::float8[]) AS v(id, served)
    WHERE b.id = v.id
)
UPDATE engine_steprun s SET waiting_reason = '', waiting_detail = NULL
WHERE s.id = ANY(%(steps)s::bigint[])

-- name: claims_prune
-- Wants and holds of attempts that are over (the step moved on, or left queued and running): they count for nothing, and go.
DELETE FROM engine_limitclaim c USING engine_steprun s
WHERE s.id = c.step_id AND (s.attempt <> c.attempt OR s.status <> ALL(%(holding)s))

-- name: anything_waiting
-- Whether any step waits for a limit: one cheap statement a timer pass while none does.
SELECT EXISTS (SELECT 1 FROM engine_limitclaim WHERE NOT held)

-- name: buckets_pause
-- A 429 or 503 with Retry-After: the buckets an attempt holds pause until then (never earlier than a pause already set).
UPDATE engine_limitbucket b SET
    paused_until = greatest(b.paused_until, statement_timestamp() + make_interval(secs => %(seconds)s))
FROM engine_limitclaim c
WHERE c.bucket_id = b.id AND c.step_id = %(step)s AND c.attempt = %(attempt)s AND c.held

-- name: limits_status
-- Every bucket of the named limits with its slots in use, waiting steps, the rate's next free start and the pause, as seconds from the database's now.
SELECT l.name, b.key,
    (SELECT count(*) FROM engine_limitclaim h JOIN engine_steprun s ON s.id = h.step_id AND s.attempt = h.attempt
        WHERE h.bucket_id = b.id AND h.held AND s.status = ANY(%(holding)s)),
    (SELECT count(*) FROM engine_limitclaim h JOIN engine_steprun s ON s.id = h.step_id AND s.attempt = h.attempt
        WHERE h.bucket_id = b.id AND NOT h.held AND s.status = %(queued)s),
    extract(epoch FROM b.tat - statement_timestamp())::float8,
    b.paused_until, b.paused_until > statement_timestamp()
FROM engine_limitbucket b JOIN engine_limit l ON l.id = b.limit_id
WHERE l.name = ANY(%(names)s::text[])
ORDER BY l.name, b.key

-- name: limit_busy
-- Whether any step of a current attempt waits for or holds a bucket of the limit (a limit in use is not deleted).
SELECT EXISTS (
    SELECT 1 FROM engine_limitclaim c JOIN engine_limitbucket b ON b.id = c.bucket_id
        JOIN engine_limit l ON l.id = b.limit_id JOIN engine_steprun s ON s.id = c.step_id AND s.attempt = c.attempt
    WHERE l.name = %(name)s AND s.status = ANY(%(holding)s))

-- name: attempt_buckets_lock
-- The buckets an admitted attempt holds, locked (in id order, so two starts never deadlock) until its tokens are taken: the rate and its next free start, and the pause, as seconds from the database's now.
SELECT b.id, l.rate_limit, l.rate_period_s, l.rate_burst,
    extract(epoch FROM b.tat - statement_timestamp())::float8,
    extract(epoch FROM b.paused_until - statement_timestamp())::float8
FROM engine_limitclaim c JOIN engine_limitbucket b ON b.id = c.bucket_id JOIN engine_limit l ON l.id = b.limit_id
WHERE c.step_id = %(step)s AND c.attempt = %(attempt)s AND c.held
ORDER BY b.id
FOR UPDATE OF b

-- name: tokens_take
-- A start takes one token of each rate: the bucket's next free start moves one interval past now, or past itself when that is later (GCRA).
UPDATE engine_limitbucket b SET
    tat = greatest(b.tat, statement_timestamp()) + make_interval(secs => v.interval)
FROM unnest(%(buckets)s::bigint[], %(intervals)s::float8[]) AS v(id, interval)
WHERE b.id = v.id
