-- Append a validated CPI batch (view `stage`) to core.cpi_observations, vintage by vintage:
-- a value is added only when it differs from the latest value held for that series and month,
-- so a revision adds a row and an unchanged re-delivery adds nothing.
WITH latest AS (
    SELECT series_id, ref_month, value
    FROM core.cpi_observations
    QUALIFY row_number() OVER (PARTITION BY series_id, ref_month
                               ORDER BY available_on DESC, vintage DESC NULLS LAST, known_at DESC, rowid DESC) = 1
)
INSERT INTO core.cpi_observations BY NAME
SELECT s.series_id, s.ref_month, s.value, s.vintage, s.available_on, s.known_at, s.source
FROM stage AS s
LEFT JOIN latest AS l ON l.series_id = s.series_id AND l.ref_month = s.ref_month
WHERE l.series_id IS NULL OR l.value IS DISTINCT FROM s.value
-- several vintages of one month in one batch: keep them in vintage order
QUALIFY s.vintage IS NULL OR row_number() OVER (PARTITION BY s.series_id, s.ref_month, s.vintage) = 1;
