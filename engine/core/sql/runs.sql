-- name: steps_insert
-- A new run's steps, pending, one row per node (a JSON list), in one statement (the model's defaults for every other NOT NULL column).
INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation, remaining_upstream,
    upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason, worker)
SELECT %(run)s, s->>'node_id', s->>'node_type', s->>'queue', %(pending)s, 0, 0, (s->>'upstream')::int, 0, 0, 0,
    '', '', ''
FROM jsonb_array_elements(%(steps)s::jsonb) AS s
RETURNING id, node_id

-- name: steps_recount
-- The readiness counters of some pending steps, recounted from their upstream steps (after an operator reset).
UPDATE engine_steprun s SET remaining_upstream = v.r, upstream_succeeded = v.ok, upstream_failed = v.f,
    upstream_skipped = v.sk
FROM unnest(%(ids)s::bigint[], %(remaining)s::int[], %(n_ok)s::int[], %(n_failed)s::int[],
            %(n_skipped)s::int[]) AS v(id, r, ok, f, sk)
WHERE s.id = v.id

-- name: steps_decrement
-- One upstream step finished: its pending successors' counters take its outcome (one list of node ids per outcome). Returns them, to see which are ready.
UPDATE engine_steprun SET
    remaining_upstream = remaining_upstream - 1,
    upstream_succeeded = upstream_succeeded + (node_id = ANY(%(ok_ids)s))::int,
    upstream_failed = upstream_failed + (node_id = ANY(%(failed_ids)s))::int,
    upstream_skipped = upstream_skipped + (node_id = ANY(%(skipped_ids)s))::int
WHERE run_id = %(run)s AND node_id = ANY(%(all_ids)s) AND status = %(pending)s
RETURNING id, node_id, status, attempt, remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped

-- name: run_finish_read
-- What a finishing run needs of its steps: the first 20 that failed or were blocked (failed before upstream_failed, so the cause is named; a mapped node's items count through their node), and the outputs of its sinks.
(SELECT node_id, status, NULL::text FROM engine_steprun WHERE run_id = %(run)s AND status = ANY(%(broken)s)
     AND map_parent_id IS NULL
 ORDER BY status, id LIMIT 20)
UNION ALL
SELECT node_id, status, output::text FROM engine_steprun
WHERE run_id = %(run)s AND node_id = ANY(%(sinks)s) AND status = %(succeeded)s

-- name: run_lock_row
-- The run row, locked for the transaction that changes its run (what select_for_update(no_key=True).get() does, without compiling a query on every transition): every column of the model, in its order (runtx.py checks them). The durability slot is empty, or durability.sql's commit_relaxed_if_run for a worker's own transaction.
SELECT id, workflow_id, version_id, status, inputs, outputs, error, idempotency_key, request_hash, unfinished_steps,
    last_seq, parent_step_id, created_by_id, trigger, created_at, started_at, finished_at, concurrency_key,
    durability, priority
FROM engine_run WHERE id = %(run)s /*{durability}*/ FOR NO KEY UPDATE
