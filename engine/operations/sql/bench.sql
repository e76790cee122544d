-- name: seed_finished_runs
-- %(runs)s copies of finished run %(run)s, finished %(days)s days ago, each with its steps (one attempt and two events a step): history for `bench prune` to delete.
WITH src AS (
    SELECT * FROM engine_run WHERE id = %(run)s
), r AS (
    INSERT INTO engine_run (id, workflow_id, version_id, status, inputs, outputs, error, idempotency_key,
        request_hash, unfinished_steps, last_seq, parent_step_id, created_by_id, trigger, created_at, started_at,
        finished_at)
    SELECT gen_random_uuid(), workflow_id, version_id, status, inputs, outputs, error, NULL, request_hash, 0,
        last_seq, NULL, NULL, trigger, now() - make_interval(days => %(days)s + 1),
        now() - make_interval(days => %(days)s + 1), now() - make_interval(days => %(days)s)
    FROM src, generate_series(1, %(runs)s)
    RETURNING id
), s AS (
    INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation, remaining_upstream,
        upstream_succeeded, upstream_failed, upstream_skipped, output, error, waiting_reason, worker, started_at,
        finished_at)
    SELECT r.id, x.node_id, x.node_type, x.queue, x.status, x.attempt, 0, 0, 0, 0, 0, x.output, '', '', '',
        x.started_at, x.finished_at
    FROM r, engine_steprun x WHERE x.run_id = %(run)s
    RETURNING id, run_id, node_id
), a AS (
    INSERT INTO engine_attempt (step_id, number, queued_at, started_at, finished_at, worker, outcome, error,
        error_type, traceback, logs, metrics)
    SELECT s.id, 1, now(), now(), now(), 'seed', 'succeeded', '', '', '', '[]', '{}' FROM s
)
INSERT INTO engine_event (run_id, seq, type, node_id, payload, actor, created_at)
SELECT s.run_id, row_number() OVER (PARTITION BY s.run_id ORDER BY s.id, t.type), t.type, s.node_id, '{}', '', now()
FROM s, (VALUES ('step.running'), ('step.succeeded')) AS t(type)
