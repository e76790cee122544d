-- name: event_lock
-- Serialises, for one (event name, correlation key), a step beginning to wait with an event arriving: whichever comes second sees what the first committed, so neither is lost.
SELECT pg_advisory_xact_lock(hashtext(%(name)s), hashtext(%(key)s))

-- name: event_stored
-- The oldest stored event a step beginning to wait receives: same name and key, arrived since its run was created and within the retention window, and not yet received by a step of this run.
SELECT e.id, e.event_id FROM engine_outsideevent e
WHERE e.name = %(name)s AND e.key = %(key)s
  AND e.received_at >= greatest(%(since)s::timestamptz, statement_timestamp() - make_interval(secs => %(retention_s)s))
  AND NOT EXISTS (SELECT 1 FROM engine_eventdelivery d JOIN engine_steprun s ON s.id = d.step_id
                  WHERE d.event_id = e.id AND s.run_id = %(run)s)
ORDER BY e.received_at, e.id
LIMIT 1

-- name: event_insert
-- Stores an arriving event; nothing (no row) when its id was already received, so a resend is a no-op.
INSERT INTO engine_outsideevent (event_id, name, key, payload, received_at, sender, result)
VALUES (%(event_id)s, %(name)s, %(key)s, %(payload)s::jsonb, statement_timestamp(), %(sender)s, '{}'::jsonb)
ON CONFLICT (event_id) DO NOTHING
RETURNING id, received_at

-- name: events_purge
-- Deletes up to a batch of events older than the retention window (their deliveries go with them).
DELETE FROM engine_outsideevent WHERE id IN (
    SELECT id FROM engine_outsideevent
    WHERE received_at < statement_timestamp() - make_interval(secs => %(retention_s)s)
    ORDER BY received_at LIMIT %(batch)s)

-- name: event_wait_due
-- The condition on a step s: it waits for an event that is stored, received since its run was created and within the retention window, and given to no step of its run (its wake was lost with the sending process).
s.status = 'waiting' AND s.waiting_reason = %(event_reason)s AND EXISTS (
    SELECT 1 FROM engine_outsideevent e JOIN engine_run r ON r.id = s.run_id
    WHERE e.name = s.waiting_detail->>'event' AND e.key = s.waiting_detail->>'key'
      AND e.received_at >= greatest(r.created_at, statement_timestamp() - make_interval(secs => %(retention_s)s))
      AND NOT EXISTS (SELECT 1 FROM engine_eventdelivery d JOIN engine_steprun o ON o.id = d.step_id
                      WHERE d.event_id = e.id AND o.run_id = s.run_id))

-- name: event_waits_due
-- Up to a batch of waiting steps an event should have woken (event_wait_due), for recovery.
SELECT s.run_id, s.id FROM engine_steprun s WHERE /*{event_wait_due}*/ ORDER BY s.id LIMIT %(batch)s
