-- name: fire_claim
-- Claims one (schedule, kind, fire time): the unique constraint schedulefire_once decides, so however many processes race, one gets the id and the others nothing.
INSERT INTO engine_schedulefire (schedule_id, kind, fire_time, status, overlap, error, created_at)
VALUES (%(schedule)s, %(kind)s, %(fire_time)s, %(status)s, %(overlap)s, '', statement_timestamp())
ON CONFLICT (schedule_id, kind, fire_time) DO NOTHING
RETURNING id
