-- How do runs end, per agent? Runs per agent and status, with each status's share of the agent's
-- runs (cancelled is its own outcome, never folded into failed).
-- Parameters:
--   $since_ms BIGINT = NULL  only runs created at or after this epoch-ms time (NULL: all runs)
SELECT
    coalesce(agent_name, '(none)') AS agent_name,
    status,
    count(*) AS runs,
    round(count(*) / sum(count(*)) OVER (PARTITION BY coalesce(agent_name, '(none)')), 4) AS share
FROM runs
WHERE $since_ms IS NULL OR created_at_ms >= $since_ms
GROUP BY 1, 2
ORDER BY agent_name, runs DESC, status;
