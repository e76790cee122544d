-- name: claim_set
-- queued -> running: a lease and a heartbeat on the database clock, held by one worker (a piece: the statement that names it says which steps, and guards them).
UPDATE engine_steprun SET status = %(running)s,
    lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s),
    heartbeat_at = statement_timestamp(), started_at = statement_timestamp(), worker = %(worker)s

-- name: step_claim
-- The claim of one (step, attempt), if it is still queued at that attempt: the attempt number is the fencing token.
-- A lookup by id compares the status with a parameter, never a literal (here and in every prepared statement
-- that finds a step by id): with a literal, the planner may read the partial index of queued (or running)
-- steps instead of the primary key, and that index holds an entry for every step that passed through the
-- status since the last vacuum. Prepared statements get generic plans (see config/settings.py), which cannot
-- use a partial index for a parameter. The guard slot is empty, or the one-statement claim's run lock.
/*{claim_set}*/
WHERE id = %(id)s AND status = %(queued)s AND attempt = %(attempt)s /*{guard}*/
RETURNING id, run_id, node_id, node_type, queue, attempt, generation, queued_at, broker_msg_id

-- name: step_claim_next
-- The claim of the oldest queued steps of one run on one queue (a fan-out continues through its siblings).
-- The ids are picked once, in an ARRAY(...) (see broker.sql, broker_dequeue). The pick compares the status
-- with the literal 'queued' on purpose: it reads the partial index steprun_run_queued, which only a literal
-- can match in a generic plan (transitions.py checks that the literal is StepStatus.QUEUED).
/*{claim_set}*/
WHERE id = ANY(ARRAY(SELECT id FROM engine_steprun
             WHERE run_id = %(run)s AND queue = %(queue)s AND status = 'queued'
             ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED))
RETURNING id, run_id, node_id, node_type, queue, attempt, generation, queued_at, broker_msg_id

-- name: attempt_start
-- The Attempt row of every step that CTE c claimed (a piece of the statements that claim).
INSERT INTO engine_attempt (step_id, number, queued_at, started_at, worker, outcome, error, error_type,
    traceback, logs, metrics)
SELECT id, attempt, queued_at, statement_timestamp(), %(worker)s, 'running', '', '', '', '[]', '{}'
FROM c

-- name: steps_claimed
-- A claim (step_claim or step_claim_next), its Attempt rows and its broker messages dropped (the step is held by its lease now), in one statement; nothing for a step another worker claimed first.
WITH c AS (
    /*{claim}*/
), a AS (
    /*{attempt_start}*/
), m AS (
    DELETE FROM django_q_ormq WHERE id = ANY(ARRAY(SELECT broker_msg_id FROM c))
)
SELECT id, run_id, node_id, node_type, queue, attempt, generation, queued_at FROM c ORDER BY id

-- name: steps_queue_ready
-- pending -> queued for the steps a transition made ready, with a new attempt; those of kind 'claim' go on to running for the continuing worker (the claim's fields and lease, and their Attempt rows). Only steps still pending move.
-- Those of kind 'deliver' (queued, and given to no limit) get their broker message's id here, drawn from its sequence: engine.core.queues.enqueue writes the message with it, so the step's row is updated once, not a second time for the id (a fan-out's thousand steps, twice). Each step's kind comes beside its id and is joined to it: a search of a list of ids for every step (id = ANY(...), linear with a parameter) took about 250 ms of the update of a map's 5,000 items.
WITH ids AS MATERIALIZED (
    SELECT pg_get_serial_sequence('django_q_ormq', 'id')::regclass AS messages
), v AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(kinds)s::text[]) AS v(id, kind)
), q AS (
    UPDATE engine_steprun s SET
        status = CASE WHEN v.kind = 'claim' THEN %(running)s ELSE %(queued)s END,
        attempt = s.attempt + 1, queued_at = now(), next_attempt_at = NULL, finished_at = NULL,
        broker_msg_id = CASE WHEN v.kind = 'deliver' THEN nextval((SELECT messages FROM ids)) END,
        lease_expires_at = CASE WHEN v.kind = 'claim'
                                THEN statement_timestamp() + make_interval(secs => %(lease)s) END,
        heartbeat_at = CASE WHEN v.kind = 'claim' THEN statement_timestamp() ELSE s.heartbeat_at END,
        started_at = CASE WHEN v.kind = 'claim' THEN statement_timestamp() ELSE s.started_at END,
        worker = CASE WHEN v.kind = 'claim' THEN %(worker)s ELSE '' END
    FROM v
    WHERE s.id = v.id AND s.status = %(pending)s
    RETURNING s.id, s.run_id, s.node_id, s.node_type, s.queue, s.attempt, s.generation, s.queued_at, s.status,
        s.broker_msg_id
), c AS (
    SELECT * FROM q WHERE status = %(running)s
), a AS (
    /*{attempt_start}*/
)
SELECT * FROM q

-- name: steps_release
-- running -> queued for claimed steps that never started, at the same attempt (it never ran, so the fencing token stays); their Attempt rows go. Only steps still held at that attempt move.
WITH r AS (
    UPDATE engine_steprun SET status = %(queued)s, lease_expires_at = NULL, heartbeat_at = NULL, started_at = NULL,
        worker = ''
    WHERE id = ANY(%(ids)s::bigint[]) AND status = %(running)s
        AND (id, attempt) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]))
    RETURNING id, node_id, attempt, queue
), a AS (
    DELETE FROM engine_attempt USING r WHERE engine_attempt.step_id = r.id AND engine_attempt.number = r.attempt
)
SELECT * FROM r

-- name: step_succeed
-- running -> succeeded for each step of CTE v (id, attempt, output, started_at, finished_at) still running at that attempt (the fencing token); its error, lease and waiting state cleared. A piece of the statements that record successes. The ids are read from v once (ARRAY(...)), so the steps are found by primary key.
UPDATE engine_steprun t SET status = %(succeeded)s, output = v.output, error = '', lease_expires_at = NULL,
    waiting_reason = '', waiting_detail = NULL, wake_at = NULL, started_at = v.started_at,
    finished_at = v.finished_at
FROM v WHERE t.id = ANY(ARRAY(SELECT id FROM v)) AND t.id = v.id AND t.status = %(running)s
    AND t.attempt = v.attempt
RETURNING t.id, t.node_id, v.attempt

-- name: attempt_succeed
-- The Attempt rows of the steps CTE s (step_succeed) moved, finished with the logs and metrics of CTE v (a piece).
UPDATE engine_attempt x SET started_at = v.started_at, finished_at = v.finished_at, outcome = 'succeeded',
    error = '', error_type = '', traceback = '', logs = v.logs, metrics = v.metrics
FROM s JOIN v ON v.id = s.id WHERE x.step_id = s.id AND x.number = s.attempt

-- name: steps_succeed
-- Successful attempts of one running run (a JSON list of items) in one statement: the compare-and-sets of step_succeed, their Attempt rows and the successors' readiness counters (a JSON list of edges, counted only for the winners). Rows: ('won', step id, node id), then the decremented successors.
WITH v AS (
    SELECT (i->>'id')::bigint AS id, (i->>'attempt')::int AS attempt, i->'output' AS output, i->'logs' AS logs,
        i->'metrics' AS metrics,
        statement_timestamp() - make_interval(secs => (i->>'ago_start')::float8) AS started_at,
        statement_timestamp() - make_interval(secs => (i->>'ago_end')::float8) AS finished_at
    FROM jsonb_array_elements(%(items)s::jsonb) AS i
), s AS (
    /*{step_succeed}*/
), a AS (
    /*{attempt_succeed}*/
), c AS (
    SELECT e.target, count(*) AS n, count(*) FILTER (WHERE e.outcome = 'succeeded') AS ok,
        count(*) FILTER (WHERE e.outcome = 'failed') AS failed, count(*) FILTER (WHERE e.outcome = 'skipped') AS sk
    FROM jsonb_to_recordset(%(edges)s::jsonb) AS e(source text, target text, outcome text)
    JOIN s ON s.node_id = e.source GROUP BY e.target
), d AS (
    UPDATE engine_steprun t SET remaining_upstream = remaining_upstream - c.n,
        upstream_succeeded = upstream_succeeded + c.ok, upstream_failed = upstream_failed + c.failed,
        upstream_skipped = upstream_skipped + c.sk
    FROM c WHERE t.run_id = %(run)s AND t.node_id = c.target AND t.status = %(pending)s
    RETURNING t.id, t.node_id, t.status, t.attempt, t.remaining_upstream, t.upstream_succeeded, t.upstream_failed,
        t.upstream_skipped
)
SELECT 'won', id, node_id, NULL, NULL, NULL, NULL, NULL, NULL FROM s
UNION ALL
SELECT 'successor', * FROM d

-- name: successor_claim
-- pending -> queued -> running at attempt 1 for the chained successor that CTE n locked, once CTE s (its one upstream's success) won; its readiness counters take that success (a piece of the one-statement chained success).
UPDATE engine_steprun t SET status = %(running)s, attempt = 1, remaining_upstream = remaining_upstream - 1,
    upstream_succeeded = upstream_succeeded + 1, queued_at = now(), next_attempt_at = NULL, finished_at = NULL,
    broker_msg_id = NULL, lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s),
    heartbeat_at = statement_timestamp(), started_at = statement_timestamp(), worker = %(worker)s
FROM s, n WHERE t.id = n.id
RETURNING t.id, t.run_id, t.node_id, t.node_type, t.queue, t.attempt, t.generation, t.queued_at

-- name: run_succeed_set
-- running -> succeeded for a run whose last step succeeded in the same statement, with the outputs of CTE o (a piece of the one-statement finish: the run row's assignments after its counters).
status = %(run_succeeded)s, finished_at = statement_timestamp(), outputs = (SELECT outputs FROM o), error = ''
