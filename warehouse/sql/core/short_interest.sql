-- Append a validated short-interest batch (view `stage`) to core.short_interest, vintage by vintage.
-- A row is added only when its values differ from the latest vintage held for that symbol and
-- settlement date: a FINRA revision adds a row with its own known_at (it replaces nothing) and an
-- unchanged re-delivery adds nothing. A revision cannot be public before the pipeline learned it:
-- its available_on is the later of settlement + lag and the day of its known_at (the run's as-of
-- date), so a run or replay as of an earlier date still sees the value it saw then.
WITH latest AS (
    SELECT symbol, settlement_date, short_interest, prior_short_interest, avg_daily_volume, days_to_cover
    FROM core.short_interest
    QUALIFY row_number() OVER (PARTITION BY symbol, settlement_date
                               ORDER BY available_on DESC, known_at DESC, rowid DESC) = 1
)
INSERT INTO core.short_interest BY NAME
SELECT s.symbol, s.settlement_date, s.issue_name, s.market, s.short_interest, s.prior_short_interest,
       s.avg_daily_volume, s.days_to_cover,
       CASE WHEN l.symbol IS NULL THEN s.available_on
            ELSE greatest(s.available_on, CAST(timezone('UTC', s.known_at) AS DATE)) END AS available_on,
       s.source, s.known_at
FROM stage AS s
LEFT JOIN latest AS l ON l.symbol = s.symbol AND l.settlement_date = s.settlement_date
WHERE l.symbol IS NULL
   OR l.short_interest IS DISTINCT FROM s.short_interest
   OR l.prior_short_interest IS DISTINCT FROM s.prior_short_interest
   OR l.avg_daily_volume IS DISTINCT FROM s.avg_daily_volume
   OR l.days_to_cover IS DISTINCT FROM s.days_to_cover;
