-- Append a validated rates batch (view `stage`) to core.rates_daily, vintage by vintage:
-- a value is added only when it differs from the latest value held for that series and day,
-- so a revision adds a row and an unchanged re-delivery adds nothing (FRED clips realtime_start to
-- the period asked for, so an unchanged value can come back with a later vintage).
WITH latest AS (
    SELECT series_id, date, value
    FROM core.rates_daily
    QUALIFY row_number() OVER (PARTITION BY series_id, date
                               ORDER BY available_on DESC, vintage DESC NULLS LAST, known_at DESC, rowid DESC) = 1
)
INSERT INTO core.rates_daily BY NAME
SELECT s.series_id, s.date, s.value, s.vintage, s.available_on, s.known_at, s.source
FROM stage AS s
LEFT JOIN latest AS l ON l.series_id = s.series_id AND l.date = s.date
WHERE l.series_id IS NULL OR l.value IS DISTINCT FROM s.value
-- several vintages of one day in one batch: keep the first of each vintage
QUALIFY s.vintage IS NULL OR row_number() OVER (PARTITION BY s.series_id, s.date, s.vintage) = 1;
