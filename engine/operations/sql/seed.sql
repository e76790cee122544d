-- name: seed_ids
-- %(n)s numbers from the sequence of %(table)s's id column, in order: rows seeded with them never collide with rows the engine inserts later (drawing numbers commits nothing).
WITH q AS MATERIALIZED (
    SELECT pg_get_serial_sequence(%(table)s, 'id')::regclass AS seq
)
SELECT ARRAY(SELECT nextval(q.seq) FROM q, generate_series(1, %(n)s) ORDER BY 1)
FROM q
