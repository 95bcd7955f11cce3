-- How do success, failure and cancel rates move over time? Ended runs per time bucket (by creation
-- time) with completed/failed/cancelled counts and rates.
-- Parameters:
--   $bucket VARCHAR = '1 hour'  bucket width, any DuckDB interval ('15 minutes', '1 day')
--   $since_ms BIGINT = NULL     only runs created at or after this epoch-ms time (NULL: all runs)
SELECT
    time_bucket(CAST($bucket AS INTERVAL), epoch_ms(created_at_ms)) AS bucket_start,
    count(*) AS runs,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    round(count(*) FILTER (WHERE status = 'completed') / count(*), 4) AS success_rate,
    round(count(*) FILTER (WHERE status = 'failed') / count(*), 4) AS failure_rate,
    round(count(*) FILTER (WHERE status = 'cancelled') / count(*), 4) AS cancel_rate
FROM runs
WHERE status IN ('completed', 'failed', 'cancelled')
  AND ($since_ms IS NULL OR created_at_ms >= $since_ms)
GROUP BY bucket_start
ORDER BY bucket_start;
