-- What happened in one run, in order? The run's events by sequence with the ms elapsed since the
-- run was created and the key fields per event (what `runtrace show` prints).
-- Parameters:
--   $run_id VARCHAR        the run to show (required)
--   $limit INTEGER = 1000  at most this many events
SELECT
    e.sequence,
    epoch_ms(e.timestamp_ms) AS at,
    e.timestamp_ms - r.created_at_ms AS elapsed_ms,
    e.type,
    e.tool_name,
    e.tool_call_id,
    e.exit_code,
    e.input_tokens,
    e.output_tokens,
    e.error_message
FROM run_events e
JOIN runs r USING (run_id)
WHERE e.run_id = $run_id
ORDER BY e.sequence
LIMIT $limit;
