-- What happened in one session, in order? Every event of every run of the session, by time, with
-- the run's agent, the ms elapsed since the session's first event, and the key fields per event.
-- Parameters:
--   $session_id VARCHAR     the session to show (required)
--   $limit INTEGER = 1000   at most this many events
SELECT
    epoch_ms(e.timestamp_ms) AS at,
    e.timestamp_ms - min(e.timestamp_ms) OVER () AS elapsed_ms,
    e.run_id,
    r.agent_name,
    e.sequence,
    e.type,
    e.tool_name,
    e.exit_code,
    e.input_tokens,
    e.output_tokens,
    e.error_message
FROM run_events e
JOIN runs r USING (run_id)
WHERE r.session_id = $session_id
ORDER BY e.timestamp_ms, r.created_at_ms, e.run_id, e.sequence
LIMIT $limit;
