-- Closes of one symbol and day that two sources deliver differently (by more than a cent).
-- raw keeps every source's rows; inbox files count as their own source (their landing file).
-- Only the (symbol, day) keys the run loaded into raw.prices (_run_id = $run_id) can change, so
-- only their rows are deleted and recomputed (from every source's raw rows of those keys); with
-- $full every key is (a rebuild, e.g. after a replay reloaded raw). Two statements, run in order.
DELETE FROM meta.source_disagreements
WHERE $full OR (dataset = 'prices' AND (symbol, observation_date) IN (
    SELECT symbol, trade_date FROM raw.prices WHERE _run_id = $run_id
));
WITH loaded AS (
    SELECT DISTINCT symbol, trade_date FROM raw.prices WHERE _run_id = $run_id AND trade_date <= $as_of
), per_source AS (
    SELECT r.symbol, r.trade_date, l.source || CASE WHEN l.source = 'inbox' THEN ':' || l.format ELSE '' END AS source,
           any_value(r.close) AS close
    FROM raw.prices AS r
    JOIN meta.landing_files AS l ON l.path = r._landing_file
    WHERE r.close IS NOT NULL AND r.trade_date <= $as_of
      AND ($full OR (r.symbol, r.trade_date) IN (SELECT symbol, trade_date FROM loaded))
    GROUP BY ALL
), disputed AS (  -- two sources more than a cent apart: the only keys worth pairing up
    SELECT symbol, trade_date FROM per_source GROUP BY ALL HAVING max(close) - min(close) > 0.01
), candidates AS (
    SELECT p.* FROM per_source AS p SEMI JOIN disputed AS d ON p.symbol = d.symbol AND p.trade_date = d.trade_date
)
INSERT INTO meta.source_disagreements
SELECT 'prices', a.symbol, a.trade_date, a.source, a.close, b.source, b.close, b.close - a.close, $run_id
FROM candidates AS a
JOIN candidates AS b ON a.symbol = b.symbol AND a.trade_date = b.trade_date AND a.source < b.source
WHERE abs(b.close - a.close) > 0.01;
