-- name: ping
-- Whether the database answers at all: the readiness check's first question.
SELECT 1

-- name: autovacuum_settings
-- Whether the server runs autovacuum and collects the statistics it needs (track_counts).
SELECT current_setting('autovacuum')::bool, current_setting('track_counts')::bool

-- name: autovacuum_disabled
-- Which of the given tables have autovacuum turned off for themselves (reloption autovacuum_enabled=false).
SELECT relname FROM pg_class WHERE relname = ANY(%(tables)s) AND relkind = 'r'
    AND 'autovacuum_enabled=false' = ANY(reloptions)
ORDER BY relname
