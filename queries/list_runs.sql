-- Which runs are there? The newest runs first, optionally only one status or one session (what
-- `runtrace runs` prints).
-- Parameters:
--   $status VARCHAR = NULL      only runs with this status (NULL: every status)
--   $session_id VARCHAR = NULL  only runs of this session (NULL: every session)
--   $limit INTEGER = 20         at most this many runs
SELECT
    run_id,
    session_id,
    agent_name,
    status,
    event_count,
    duration_ms,
    input_tokens + output_tokens AS total_tokens,
    epoch_ms(created_at_ms) AS created_at,
    coalesce(error, '') AS error
FROM runs
WHERE ($status IS NULL OR status = $status)
  AND ($session_id IS NULL OR session_id = $session_id)
ORDER BY created_at_ms DESC, run_id
LIMIT $limit;
