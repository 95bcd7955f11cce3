-- What do failed runs fail with? Error messages of failed runs grouped after masking numbers and
-- hex ids (so "timeout after 31s" and "timeout after 45s" group together), with counts, agents and
-- when each was first and last seen.
-- Parameters:
--   $limit INTEGER = 50  how many message groups to list
SELECT
    regexp_replace(
        regexp_replace(coalesce(error, '(no message)'), '[0-9a-f]{8,}', '<id>', 'g'),
        '[0-9]+', '<n>', 'g'
    ) AS error_pattern,
    count(*) AS runs,
    string_agg(DISTINCT agent_name, ', ' ORDER BY agent_name) AS agents,
    min(error) AS example,
    epoch_ms(min(created_at_ms)) AS first_seen,
    epoch_ms(max(created_at_ms)) AS last_seen
FROM runs
WHERE status = 'failed'
GROUP BY error_pattern
ORDER BY runs DESC, error_pattern
LIMIT $limit;
