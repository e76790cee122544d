-- name: schedules_next_due
-- Seconds until the schedule loop has work (<= 0: now; NULL: none known): the earliest due unpaused schedule, or now if a buffered fire's schedule has no run going; and whether any buffered fire waits. One cheap statement a pass while idle.
-- The fires' statuses are literals: they read the partial indexes schedulefire_buffered and schedulefire_started
-- (tests/unit/test_sql_statuses.py checks them against ScheduleFire.Status).
SELECT EXTRACT(EPOCH FROM LEAST(
           (SELECT min(due_at) FROM engine_schedule WHERE NOT paused AND due_at IS NOT NULL),
           (SELECT statement_timestamp() WHERE EXISTS (
               SELECT 1 FROM engine_schedulefire b JOIN engine_schedule s ON s.id = b.schedule_id
               WHERE b.status = 'buffered' AND NOT s.paused AND NOT EXISTS (
                   SELECT 1 FROM engine_schedulefire f JOIN engine_run r ON r.id = f.run_id
                   WHERE f.schedule_id = b.schedule_id AND f.status = 'started' AND r.status = ANY(%(active)s))))
       ) - statement_timestamp()),
       EXISTS (SELECT 1 FROM engine_schedulefire WHERE status = 'buffered')
