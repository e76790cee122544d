-- name: anything_due
-- Whether a recovery pass has anything to do: one statement a pass while nothing is due, so idle workers stay cheap.
-- statement_timestamp(), like Django's Now(): the passes must agree with this check. A sub-workflow wait is due
-- only when its child run finished (its parent step is then settled); a child whose parent step was cancelled
-- while it runs is due to be cancelled. An event wait is due when its event is stored but its wake was lost. A
-- run waiting for its concurrency group is due when the group has room for it. Its step statuses are literals so
-- that each EXISTS reads its partial index (steprun_running_lease, steprun_retry_due, steprun_wake_due,
-- steprun_queued) whatever the plan; tests/unit/test_sql_statuses.py checks them against engine/states.py.
SELECT EXISTS (SELECT 1 FROM engine_steprun WHERE status = 'running' AND lease_expires_at < statement_timestamp())
    OR EXISTS (SELECT 1 FROM engine_steprun WHERE status = 'retry_wait' AND next_attempt_at <= statement_timestamp())
    OR EXISTS (SELECT 1 FROM engine_steprun WHERE status = 'waiting' AND wake_at <= statement_timestamp())
    OR EXISTS (SELECT 1 FROM engine_steprun p JOIN engine_run c ON c.parent_step_id = p.id
               WHERE p.status = 'waiting' AND p.waiting_reason = %(subworkflow)s
                   AND c.status = ANY(%(run_terminal)s) AND c.id::text = p.waiting_detail->>'child_run')
    OR EXISTS (SELECT 1 FROM engine_run r JOIN engine_steprun p ON p.id = r.parent_step_id
               WHERE r.status IN ('pending', 'running') AND p.status = 'cancelled')
    OR EXISTS (SELECT 1 FROM engine_steprun s WHERE s.status = 'queued' AND s.waiting_reason <> %(limit_reason)s
               AND s.queued_at < statement_timestamp() - make_interval(secs => %(orphan_grace)s)
               AND NOT EXISTS (SELECT 1 FROM django_q_ormq q WHERE q.id = s.broker_msg_id))
    OR EXISTS (SELECT 1 FROM engine_steprun s WHERE /*{event_wait_due}*/)
    OR EXISTS (SELECT 1 FROM engine_run w WHERE /*{run_waiting_with_room}*/)

-- name: leader_lock
-- Takes the session-level advisory lock that makes this process's recovery loop the one active loop; false if another holds it.
SELECT pg_try_advisory_lock(%(lock)s)
