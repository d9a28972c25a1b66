-- Merge a validated Fama-French batch (view `stage`) into core.factors.
MERGE INTO core.factors AS t
USING (SELECT * FROM stage) AS s
ON t.model = s.model AND t.frequency = s.frequency AND t.period_start = s.period_start AND t.factor = s.factor
WHEN MATCHED AND t.value IS DISTINCT FROM s.value THEN UPDATE SET
    value = s.value, available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
