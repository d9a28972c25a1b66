-- Merge a validated estimates batch (view `stage`) into core.index_estimates.
MERGE INTO core.index_estimates AS t
USING (SELECT * FROM stage) AS s
ON t.index_code = s.index_code AND t.as_of_date = s.as_of_date AND t.metric = s.metric AND t.period = s.period
WHEN MATCHED AND t.value IS DISTINCT FROM s.value THEN UPDATE SET
    value = s.value, available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
