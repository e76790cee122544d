-- name: cost_inspect_wal
-- pg_walinspect, whose functions read the WAL records a bench sample wrote; needs a superuser and PostgreSQL's contrib.
CREATE EXTENSION IF NOT EXISTS pg_walinspect

-- name: cost_position
-- The WAL insert position and this connection's server process, read before and after a sample.
SELECT pg_current_wal_insert_lsn()::text, pg_backend_pid()

-- name: cost_server_processes
-- This database's server processes and the server's shared ones (checkpointer, WAL writer, ...), whose CPU is counted.
SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL

-- name: cost_wal_flushed
-- Whether the WAL is flushed up to a position: pg_walinspect reads no further.
SELECT pg_current_wal_flush_lsn() >= %(lsn)s::pg_lsn

-- name: cost_wal_of_database
-- This database's commits and WAL bytes between two positions: the records that touch its relations'
-- blocks, and every record (the COMMIT among them) of a transaction that wrote one; other databases' are left out.
WITH records AS (
    SELECT xid::text AS xid, resource_manager, record_type, record_length,
           coalesce(block_ref ~ ('rel \d+/' || (SELECT oid FROM pg_database WHERE datname = current_database())
                                 || '/'), false) AS here
    FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn)
), written AS (
    SELECT DISTINCT xid FROM records WHERE here AND xid <> '0'
)
SELECT count(*) FILTER (WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT'),
       coalesce(sum(record_length), 0)::bigint
FROM records WHERE here OR xid IN (SELECT xid FROM written)
