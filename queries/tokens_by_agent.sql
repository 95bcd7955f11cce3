-- Which agents use the most tokens? Input/output token totals per agent and the mean per run.
-- Parameters: none
SELECT
    coalesce(agent_name, '(none)') AS agent_name,
    count(*) AS runs,
    CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
    CAST(sum(input_tokens + output_tokens) AS BIGINT) AS total_tokens,
    round(avg(input_tokens + output_tokens), 1) AS mean_tokens_per_run
FROM runs
GROUP BY ALL
ORDER BY total_tokens DESC, agent_name;
