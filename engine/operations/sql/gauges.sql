-- name: steps_waiting_by_reason
-- How many steps wait, per reason (approval, sleep, sub-workflow, in doubt, ...), for the weft_steps_waiting gauge.
SELECT waiting_reason, count(*) FROM engine_steprun WHERE status = %(waiting)s GROUP BY waiting_reason
