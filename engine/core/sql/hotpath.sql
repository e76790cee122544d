-- name: run_lock
-- The run row, locked, if it is running and its last event is still the one the worker saw: every one-statement transition starts with it, and writes nothing without it. The last_step slot is empty, or run_lock_last_step; the durability slot is durability.sql's commit_relaxed_if_run (a relaxed run's statement commits with synchronous_commit off). (Its id is run_pk, so that a claim's "id" names the step's.)
SELECT id AS run_pk, version_id, inputs::text, durability FROM engine_run WHERE id = %(run)s
    AND status = %(run_running)s AND last_seq = %(seq)s /*{last_step}*/ /*{durability}*/
FOR NO KEY UPDATE

-- name: run_lock_last_step
-- The run lock's extra guards when a step's success may finish its run: the step is its one unfinished step, the run has no parent step (whose waiting step settles when it finishes) and no step of it failed.
AND unfinished_steps = 1 AND parent_step_id IS NULL
    AND NOT EXISTS (SELECT 1 FROM engine_steprun b WHERE b.run_id = %(run)s
                    AND b.status IN (%(failed)s, %(upstream_failed)s))

-- name: run_locked
-- The claim's guard in the one-statement claim: nothing is claimed unless CTE r locked the run.
AND EXISTS (SELECT 1 FROM r)

-- name: messages_if_started
-- The channel layer's rows of a new run's events (a piece: empty unless the layer is channels-postgres).
, m AS (
    /*{messages_insert}*/ AND EXISTS (SELECT 1 FROM r)
)

-- name: messages_if_claimed
-- The channel layer's rows of a claim's events, written only if the claim won (a piece, as above).
, m AS (
    /*{messages_insert}*/ AND EXISTS (SELECT 1 FROM c)
)

-- name: messages_if_succeeded
-- The channel layer's rows of a success's events, written only if the success won (a piece, as above).
, m AS (
    /*{messages_insert}*/ AND EXISTS (SELECT 1 FROM s)
)

-- name: claim_one
-- A delivered step's claim in one statement: the run lock, the claim of step_claim (queued -> running at its attempt) with its Attempt row, its broker message dropped, its event and the run row's counters. Nothing unless both the lock and the claim win.
WITH r AS (
    /*{run_lock}*/
), c AS (
    /*{step_claim}*/
), a AS (
    /*{attempt_start}*/
), b AS (
    DELETE FROM django_q_ormq WHERE id = ANY(ARRAY(SELECT broker_msg_id FROM c))
), e AS (
    /*{events_insert}*/, c
), u AS (
    UPDATE engine_run SET last_seq = %(seq)s + %(n_events)s, unfinished_steps = unfinished_steps + %(unfinished)s
    FROM c WHERE engine_run.id = %(run)s
)/*{send}*/
SELECT c.id, c.run_id, c.node_id, c.node_type, c.queue, c.attempt, c.generation, c.queued_at, r.version_id, r.inputs,
    r.durability
FROM c, r

-- name: chain_one
-- A chained step's success in one statement: the run lock, its successor locked (pending, never attempted, waiting for this step alone), the success of step_succeed with its Attempt row, the successor's pending -> queued -> running for the continuing worker with its Attempt row, the events and the run row's counters. Nothing unless every compare-and-set wins.
WITH r AS (
    /*{run_lock}*/
), n AS (
    SELECT t.id FROM engine_steprun t, r
    WHERE t.run_id = %(run)s AND t.node_id = %(next_node)s AND t.status = %(pending)s AND t.attempt = 0
        AND t.remaining_upstream = 1 AND t.upstream_failed = 0 AND t.upstream_skipped = 0
    FOR UPDATE OF t
), v AS (
    SELECT %(step)s::bigint AS id, %(attempt)s::int AS attempt, %(output)s::jsonb AS output, %(logs)s::jsonb AS logs,
        %(metrics)s::jsonb AS metrics,
        statement_timestamp() - make_interval(secs => %(ago_start)s) AS started_at,
        statement_timestamp() - make_interval(secs => %(ago_end)s) AS finished_at
    FROM n
), s AS (
    /*{step_succeed}*/
), a AS (
    /*{attempt_succeed}*/
), c AS (
    /*{successor_claim}*/
), ca AS (
    /*{attempt_start}*/
), e AS (
    /*{events_insert}*/, s
), u AS (
    UPDATE engine_run SET last_seq = %(seq)s + %(n_events)s, unfinished_steps = unfinished_steps + %(unfinished)s
    FROM s WHERE engine_run.id = %(run)s
)/*{send}*/
SELECT * FROM c

-- name: finish_one
-- A run's last step's success in one statement: the run lock with its last-step guards, the success of step_succeed with its Attempt row, the run's running -> succeeded with the outputs of its sinks (this step's among them), the events and the run row's counters. Nothing unless the lock and the compare-and-set win.
WITH r AS (
    /*{run_lock}*/
), v AS (
    SELECT %(step)s::bigint AS id, %(attempt)s::int AS attempt, %(output)s::jsonb AS output, %(logs)s::jsonb AS logs,
        %(metrics)s::jsonb AS metrics,
        statement_timestamp() - make_interval(secs => %(ago_start)s) AS started_at,
        statement_timestamp() - make_interval(secs => %(ago_end)s) AS finished_at
    FROM r
), s AS (
    /*{step_succeed}*/
), a AS (
    /*{attempt_succeed}*/
), o AS (
    SELECT jsonb_object_agg(x.node_id, x.output) AS outputs FROM (
        SELECT t.node_id, t.output FROM engine_steprun t, s
        WHERE t.run_id = %(run)s AND t.node_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(sinks)s::jsonb)))
            AND t.node_id <> %(node)s::text
            AND t.status = %(succeeded)s
        UNION ALL
        SELECT %(node)s::text, %(output)s::jsonb FROM s
    ) x
), e AS (
    /*{events_insert}*/, s
), u AS (
    UPDATE engine_run SET last_seq = %(seq)s + %(n_events)s, unfinished_steps = unfinished_steps + %(unfinished)s,
        /*{run_succeed_set}*/
    FROM s WHERE engine_run.id = %(run)s
)/*{send}*/
SELECT id FROM s

-- name: start_ids
-- The ids of a new run's steps and of its first steps' broker messages. Sequences are not transactional: drawing numbers assigns no transaction id, so this commits (and flushes) nothing.
WITH q AS MATERIALIZED (
    SELECT pg_get_serial_sequence('engine_steprun', 'id')::regclass AS steps,
        pg_get_serial_sequence('django_q_ormq', 'id')::regclass AS messages
)
SELECT ARRAY(SELECT nextval(q.steps) FROM q, generate_series(1, %(steps)s) ORDER BY 1),
    ARRAY(SELECT nextval(q.messages) FROM q, generate_series(1, %(messages)s) ORDER BY 1)
FROM q

-- name: start_one
-- A new run, running, with its steps (a JSON list: a first step has its broker message's id, payload and priority and is queued at attempt 1, the others pending), the broker messages, the events and a NOTIFY for each queue of a first step (sent at commit): what run_start writes through the general path. Strict whatever the run's durability: whoever started the run is told so once it is on disk.
WITH r AS (
    INSERT INTO engine_run (id, workflow_id, version_id, status, inputs, outputs, error, idempotency_key,
        request_hash, unfinished_steps, last_seq, parent_step_id, created_by_id, trigger, created_at, started_at,
        finished_at, durability, priority)
    VALUES (%(run)s, %(workflow)s, %(version)s, %(run_running)s, %(inputs)s::jsonb, NULL, '', %(key)s, %(hash)s,
        %(unfinished)s, %(n_events)s, %(parent)s, %(created_by)s, %(trigger)s::jsonb, %(created_at)s,
        statement_timestamp(), NULL, %(durability)s, %(priority)s)
    RETURNING id, started_at
), v AS (
    SELECT x FROM jsonb_array_elements(%(steps)s::jsonb) AS x
), s AS (
    INSERT INTO engine_steprun (id, run_id, node_id, node_type, queue, status, attempt, generation,
        remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason, worker,
        queued_at, broker_msg_id)
    SELECT (x->>'id')::bigint, r.id, x->>'node_id', x->>'node_type', x->>'queue',
        CASE WHEN x ? 'msg' THEN %(queued)s ELSE %(pending)s END, CASE WHEN x ? 'msg' THEN 1 ELSE 0 END, 0,
        (x->>'upstream')::int, 0, 0, 0, '', '', '', CASE WHEN x ? 'msg' THEN now() END, (x->>'msg')::bigint
    FROM r, v
), b AS (
    INSERT INTO django_q_ormq (id, key, payload, lock, rank)
    SELECT (x->>'msg')::bigint, x->>'queue', x->>'payload', statement_timestamp(),
        extract(epoch FROM statement_timestamp()) - (x->>'priority')::float8 * %(aging)s::float8
    FROM r, v WHERE x ? 'msg'
), e AS (
    /*{events_insert}*/, r
)/*{send}*/
SELECT r.started_at, (SELECT count(pg_notify(c, '')) FROM jsonb_array_elements_text(%(channels)s::jsonb) AS c) FROM r
