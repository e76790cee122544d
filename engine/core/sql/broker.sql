-- name: broker_dequeue
-- Up to a bulk of one queue's visible messages, lowest rank first (engine.core.queues.aging_s: highest priority, aged), hidden for the visibility window from the database's now; rows another poller holds are skipped. The ids are picked once (ARRAY(...) runs once, before the update): as "id IN (SELECT ...)" the planner may join the subquery against the whole table, and when the table's statistics say it is nearly empty (as they do on a queue that usually is) re-run it for every row: quadratic in the messages of the other queues.
UPDATE django_q_ormq SET lock = now() + make_interval(secs => %(visibility)s)
WHERE id = ANY(ARRAY(
    SELECT id FROM django_q_ormq WHERE key = %(key)s AND lock < now()
    ORDER BY rank, id LIMIT %(bulk)s FOR UPDATE SKIP LOCKED
))
RETURNING id, payload, rank
