-- name: enqueue
-- The broker rows of some deliveries (visible from the database's now, whatever this machine's clock says; ranked by that time less their priority's worth of aging), their ids on the steps (for orphan detection), and a NOTIFY that wakes the queues' idle clusters at commit.
-- A delivery whose step already holds its message's id (drawn by steps_queue_ready) is written with that id; the others get the next one, set on their steps here.
WITH ids AS MATERIALIZED (
    SELECT pg_get_serial_sequence('django_q_ormq', 'id')::regclass AS messages
), v AS (
    SELECT * FROM unnest(%(steps)s::bigint[], %(keys)s::text[], %(payloads)s::text[], %(priorities)s::int[],
                         %(messages)s::bigint[])
        AS v(step, key, payload, priority, msg)
), m AS (
    INSERT INTO django_q_ormq (id, key, payload, lock, rank)
    SELECT coalesce(msg, nextval((SELECT messages FROM ids))), key, payload,
        statement_timestamp(), extract(epoch FROM statement_timestamp()) - priority * %(aging)s::float8
    FROM v
    RETURNING id, payload
), u AS (
    UPDATE engine_steprun s SET broker_msg_id = m.id FROM m JOIN v ON v.payload = m.payload
    WHERE s.id = v.step AND v.msg IS NULL
)
SELECT pg_notify(c, '') FROM unnest(%(channels)s::text[]) AS c

-- name: queue_stats
-- Per queue: live clusters and workers, depth, running steps, the oldest queued step's age and the steps finished in the last minute (bound on the client, so the statuses reach the planner as values and the partial indexes serve).
SELECT q.name,
  (SELECT count(*) FROM engine_workerprocess w
     WHERE w.queue = q.name AND w.last_seen > now() - make_interval(secs => %(stale)s)),
  (SELECT coalesce(sum(w.workers), 0) FROM engine_workerprocess w
     WHERE w.queue = q.name AND w.last_seen > now() - make_interval(secs => %(stale)s)),
  (SELECT count(*) FROM engine_steprun s WHERE s.status = %(queued)s AND s.queue = q.name),
  (SELECT count(*) FROM engine_steprun s WHERE s.status = %(running)s AND s.queue = q.name),
  (SELECT extract(epoch FROM now() - min(s.queued_at)) FROM engine_steprun s
     WHERE s.status = %(queued)s AND s.queue = q.name),
  (SELECT count(*) FROM engine_steprun s WHERE s.queue = q.name
     AND s.finished_at > now() - interval '1 minute')
FROM unnest(%(names)s::text[]) AS q(name)
