-- name: events_insert
-- A batch of events (a JSON array of {type, node_id, payload, actor}) as the run's next sequence numbers, from the first given (a piece: a statement that writes events only when another CTE of its own wrote something joins that CTE after it).
INSERT INTO engine_event (run_id, seq, type, node_id, payload, actor, created_at)
SELECT %(run)s, %(first)s + v.i - 1, v.e->>'type', v.e->>'node_id', v.e->'payload', v.e->>'actor', %(at)s
FROM jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS v(e, i)

-- name: messages_insert
-- channels-postgres's rows for one message to some groups: one per channel in them. The groups' keys come as one JSON array, not a list: psycopg adapts a list element by element, which cost 0.03-0.045 ms a statement here, against 0.01 ms for a text parameter. As ANY(ARRAY(...)) (computed once) the lookup reads the group_key index of migration engine 0006, where "IN (SELECT ...)" is planned as a scan of every membership. (events.py checks the table names against the library's.)
INSERT INTO channels_postgres_message (channel, message, expire)
SELECT DISTINCT channel, %(message)s, %(expire)s FROM channels_postgres_groupchannel
WHERE group_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(groups)s::jsonb)))

-- name: messages_send
-- The channel layer's rows of the events, in the statement that writes them (a piece: empty unless the layer is channels-postgres; its trigger NOTIFYs at commit).
, m AS (
    /*{messages_insert}*/
)

-- name: events_write
-- A transaction's events and the run row's counters, in one statement: the run row's other changes (run_sets: generated from the model's columns by events.py) and the columns it returns, if any, fill the last two slots.
WITH e AS (
    /*{events_insert}*/
)/*{send}*/
UPDATE engine_run SET last_seq = %(last)s, unfinished_steps = %(unfinished)s/*{run_sets}*/ WHERE id = %(run)s/*{returning}*/

-- name: messages_purge
-- channels-postgres's messages past their expiry (the layer itself only purges lazily).
DELETE FROM channels_postgres_message WHERE expire < now()
