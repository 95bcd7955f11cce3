-- Which sessions use the most tokens? Token totals per session, with its runs and agents.
-- Parameters:
--   $limit INTEGER = 20  how many sessions to list
SELECT
    session_id,
    count(*) AS runs,
    string_agg(DISTINCT agent_name, ', ' ORDER BY agent_name) AS agents,
    CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
    CAST(sum(input_tokens + output_tokens) AS BIGINT) AS total_tokens,
    epoch_ms(min(created_at_ms)) AS first_run_at
FROM runs
GROUP BY session_id
ORDER BY total_tokens DESC, session_id
LIMIT $limit;
