-- How long do runs take, per agent? p50/p90/p99 and max duration (ms) of ended runs per agent,
-- optionally only runs that ended with one status.
-- Parameters:
--   $status VARCHAR = NULL  only runs with this status, e.g. 'completed' (NULL: every ended run)
SELECT
    coalesce(agent_name, '(none)') AS agent_name,
    count(*) AS runs,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.9) AS p90_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms,
    max(duration_ms) AS max_ms
FROM runs
WHERE duration_ms IS NOT NULL
  AND ($status IS NULL OR status = $status)
GROUP BY ALL
ORDER BY p50_ms DESC, agent_name;
