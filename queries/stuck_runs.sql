-- Which runs are still open and look stuck? Runs not in a terminal status (completed, failed,
-- cancelled) whose last update is older than N minutes, oldest first, with the owning process.
-- Parameters:
--   $older_than_minutes INTEGER = 30  minimum time since the run's last update
--   $now_ms BIGINT = NULL             the "now" to measure from, epoch ms (NULL: the clock now)
WITH params AS (
    SELECT coalesce($now_ms, epoch_ms(now())) AS now_ms
)
SELECT
    run_id,
    session_id,
    agent_name,
    status,
    event_count,
    epoch_ms(created_at_ms) AS created_at,
    epoch_ms(updated_at_ms) AS updated_at,
    round((params.now_ms - updated_at_ms) / 60000.0, 1) AS idle_minutes,
    owner_host,
    owner_pid
FROM runs, params
WHERE status NOT IN ('completed', 'failed', 'cancelled')
  AND updated_at_ms <= params.now_ms - CAST($older_than_minutes AS BIGINT) * 60000
ORDER BY updated_at_ms, run_id;
