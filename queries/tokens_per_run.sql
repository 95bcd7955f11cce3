-- Which runs use the most tokens? The N runs with the highest input + output token totals.
-- Parameters:
--   $limit INTEGER = 20  how many runs to list
SELECT
    run_id,
    session_id,
    agent_name,
    status,
    input_tokens,
    output_tokens,
    input_tokens + output_tokens AS total_tokens,
    event_count
FROM runs
ORDER BY total_tokens DESC, run_id
LIMIT $limit;
