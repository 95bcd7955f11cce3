-- How many events do runs have? A histogram of runs by event count in power-of-two buckets
-- ([1, 2), [2, 4), [4, 8)...), with each bucket's share; long runs show up in the tail.
-- Parameters: none
SELECT
    CAST(CASE WHEN event_count = 0 THEN 0 ELSE pow(2, floor(log2(event_count))) END AS BIGINT)
        AS min_events,
    CAST(CASE WHEN event_count = 0 THEN 1 ELSE pow(2, floor(log2(event_count)) + 1) END AS BIGINT)
        AS below_events,
    count(*) AS runs,
    round(count(*) / sum(count(*)) OVER (), 4) AS share,
    CAST(sum(event_count) AS BIGINT) AS events
FROM runs
GROUP BY ALL
ORDER BY min_events;
