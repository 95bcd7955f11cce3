-- How do tool calls fail? Failed calls (tool_end with a non-zero exit code) grouped by tool, exit
-- code and error kind, with a count, the runs they hit, and the latest example output.
-- Parameters:
--   $tool_name VARCHAR = NULL  only this tool (NULL: every tool)
SELECT
    tool_name,
    exit_code,
    event ->> 'error_kind' AS error_kind,
    count(*) AS failures,
    count(DISTINCT run_id) AS runs,
    arg_max(left(event ->> 'output', 200), timestamp_ms) AS latest_output
FROM run_events
WHERE type = 'tool_end'
  AND exit_code <> 0
  AND ($tool_name IS NULL OR tool_name = $tool_name)
GROUP BY ALL
ORDER BY failures DESC, tool_name, exit_code;
