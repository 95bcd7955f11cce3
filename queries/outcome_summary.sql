-- What is the overall outcome mix? Runs per status with their share of all runs, and how many
-- events and tokens those runs carried.
-- Parameters:
--   $since_ms BIGINT = NULL  only runs created at or after this epoch-ms time (NULL: all runs)
SELECT
    status,
    count(*) AS runs,
    round(count(*) / sum(count(*)) OVER (), 4) AS share,
    CAST(sum(event_count) AS BIGINT) AS events,
    CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT) AS output_tokens
FROM runs
WHERE $since_ms IS NULL OR created_at_ms >= $since_ms
GROUP BY status
ORDER BY runs DESC, status;
