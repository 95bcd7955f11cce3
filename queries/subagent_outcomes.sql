-- How do subagents fare? Per delegated agent: subagent tasks started and ended, successes,
-- failures, success rate, and the p50 time (ms) from subagent_start to subagent_end.
-- Parameters: none
WITH starts AS (
    SELECT run_id, event ->> 'task_id' AS task_id, event ->> 'agent' AS agent, timestamp_ms
    FROM run_events
    WHERE type = 'subagent_start'
),
ends AS (
    SELECT run_id, event ->> 'task_id' AS task_id, CAST(event ->> 'success' AS BOOLEAN) AS success,
        timestamp_ms
    FROM run_events
    WHERE type = 'subagent_end'
)
SELECT
    s.agent AS subagent,
    count(*) AS started,
    count(e.task_id) AS ended,
    count(*) FILTER (WHERE e.success) AS succeeded,
    count(*) FILTER (WHERE NOT e.success) AS failed,
    round(count(*) FILTER (WHERE e.success) / nullif(count(e.task_id), 0), 4) AS success_rate,
    quantile_cont(e.timestamp_ms - s.timestamp_ms, 0.5) AS p50_ms
FROM starts s
LEFT JOIN ends e USING (run_id, task_id)
GROUP BY s.agent
ORDER BY started DESC, subagent;
