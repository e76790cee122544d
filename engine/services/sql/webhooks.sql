-- name: webhook_bucket_take
-- Takes one token from an enabled endpoint's bucket (refilled at rate_per_minute up to rate_burst since it was last refilled); no row when it is empty. The row lock orders concurrent deliveries of every process.
UPDATE engine_webhookendpoint SET
    bucket_tokens = least(rate_burst::float8, bucket_tokens
        + extract(epoch FROM statement_timestamp() - bucket_refilled_at)::float8 * rate_per_minute / 60.0) - 1,
    bucket_refilled_at = statement_timestamp()
WHERE id = %(endpoint)s AND enabled
  AND least(rate_burst::float8, bucket_tokens
        + extract(epoch FROM statement_timestamp() - bucket_refilled_at)::float8 * rate_per_minute / 60.0) >= 1
RETURNING id

-- name: webhook_deliveries_trim
-- Keeps an endpoint's newest deliveries (what the UI shows) and deletes older ones.
DELETE FROM engine_webhookdelivery WHERE endpoint_id = %(endpoint)s AND id < (
    SELECT min(id) FROM (SELECT id FROM engine_webhookdelivery WHERE endpoint_id = %(endpoint)s
                         ORDER BY id DESC LIMIT %(keep)s) AS newest)
