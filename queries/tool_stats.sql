-- How is each tool used, how often does it fail, and how slow is it? Per tool: finished calls,
-- failures (non-zero exit code), failure rate, and latency percentiles (ms) measured from each
-- tool_start to the tool_end with the same run_id and tool_call_id.
-- Parameters: none
WITH ends AS (
    SELECT run_id, tool_call_id, tool_name, exit_code, timestamp_ms
    FROM run_events
    WHERE type = 'tool_end'
),
starts AS (
    SELECT run_id, tool_call_id, min(timestamp_ms) AS timestamp_ms
    FROM run_events
    WHERE type = 'tool_start'
    GROUP BY ALL
),
calls AS (
    SELECT e.tool_name, e.exit_code, e.timestamp_ms - s.timestamp_ms AS latency_ms
    FROM ends e
    LEFT JOIN starts s USING (run_id, tool_call_id)
)
SELECT
    tool_name,
    count(*) AS calls,
    count(*) FILTER (WHERE exit_code <> 0) AS failures,
    round(count(*) FILTER (WHERE exit_code <> 0) / count(*), 4) AS failure_rate,
    quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
    quantile_cont(latency_ms, 0.9) AS p90_latency_ms,
    quantile_cont(latency_ms, 0.99) AS p99_latency_ms,
    max(latency_ms) AS max_latency_ms
FROM calls
GROUP BY tool_name
ORDER BY calls DESC, tool_name;
