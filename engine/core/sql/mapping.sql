-- name: map_items_insert
-- The items of a mapped node whose step just became ready (the parent), pending, one row per item of the list (a JSON list) in one statement: node id "x[i]", the node's type and queue, the parent's generation, no upstream.
INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation, remaining_upstream,
    upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason, worker, map_parent_id, map_index,
    map_item)
SELECT %(run)s, %(node)s || '[' || (i.n - 1) || ']', %(node_type)s, %(queue)s, %(pending)s, 0, %(generation)s, 0, 0,
    0, 0, '', '', '', %(parent)s, i.n - 1, i.item
FROM jsonb_array_elements(%(items)s::jsonb) WITH ORDINALITY AS i(item, n)
ORDER BY i.n
RETURNING id, node_id, map_index

-- name: map_items_pending
-- The next pending items of a mapped node from index %(from)s on, in item order, to queue as slots free (read through steprun_unique_map_item).
SELECT id, node_id, attempt, map_index FROM engine_steprun
WHERE map_parent_id = %(parent)s AND map_index >= %(from)s AND status = %(pending)s
ORDER BY map_index LIMIT %(n)s

-- name: map_items_count
-- A mapped node's items counted by status (an operator's action recounts them; the workers keep the counts on the parent).
SELECT status, count(*), min(map_index) FROM engine_steprun WHERE map_parent_id = %(parent)s GROUP BY status
