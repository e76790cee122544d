-- name: run_usage
-- LLM usage of one run: tokens, calls, cost and latency summed over the metrics of every attempt that called a model (found by its steps' ids, so that the attempts' step index serves whatever the statistics say).
SELECT COALESCE(SUM((a.metrics->>'prompt_tokens')::bigint), 0),
       COALESCE(SUM((a.metrics->>'completion_tokens')::bigint), 0),
       COALESCE(SUM((a.metrics->>'total_tokens')::bigint), 0),
       COALESCE(SUM((a.metrics->>'llm_calls')::bigint), 0),
       COALESCE(SUM((a.metrics->>'cost_usd')::numeric), 0),
       COALESCE(SUM((a.metrics->>'latency_ms')::numeric), 0)
FROM engine_attempt a
WHERE a.step_id = ANY(ARRAY(SELECT s.id FROM engine_steprun s WHERE s.run_id = %(run)s))
    AND a.metrics ? 'llm_calls'
