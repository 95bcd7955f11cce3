-- Which runs took longest? The N slowest ended runs with their agent, outcome and size.
-- Parameters:
--   $limit INTEGER = 20  how many runs to list
SELECT
    run_id,
    session_id,
    agent_name,
    status,
    duration_ms,
    event_count,
    input_tokens + output_tokens AS total_tokens,
    epoch_ms(created_at_ms) AS created_at
FROM runs
WHERE duration_ms IS NOT NULL
ORDER BY duration_ms DESC, run_id
LIMIT $limit;
