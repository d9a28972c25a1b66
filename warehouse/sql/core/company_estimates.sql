-- Merge a validated company-estimates batch (view `stage`) into core.company_estimates.
-- Key: company, observation day, fiscal period. A day observed again (a second run the same day,
-- a replay) changes the row only when a value differs; otherwise nothing is written.
MERGE INTO core.company_estimates AS t
USING (SELECT * FROM stage) AS s
ON t.symbol = s.symbol AND t.as_of_date = s.as_of_date AND t.period = s.period
WHEN MATCHED AND (
    t.period_end IS DISTINCT FROM s.period_end OR t.eps_avg IS DISTINCT FROM s.eps_avg
    OR t.eps_low IS DISTINCT FROM s.eps_low OR t.eps_high IS DISTINCT FROM s.eps_high
    OR t.eps_year_ago IS DISTINCT FROM s.eps_year_ago OR t.analysts IS DISTINCT FROM s.analysts
    OR t.eps_growth IS DISTINCT FROM s.eps_growth OR t.eps_7d_ago IS DISTINCT FROM s.eps_7d_ago
    OR t.eps_30d_ago IS DISTINCT FROM s.eps_30d_ago OR t.eps_60d_ago IS DISTINCT FROM s.eps_60d_ago
    OR t.eps_90d_ago IS DISTINCT FROM s.eps_90d_ago OR t.up_7d IS DISTINCT FROM s.up_7d
    OR t.up_30d IS DISTINCT FROM s.up_30d OR t.down_7d IS DISTINCT FROM s.down_7d
    OR t.down_30d IS DISTINCT FROM s.down_30d
) THEN UPDATE SET
    period_end = s.period_end, eps_avg = s.eps_avg, eps_low = s.eps_low, eps_high = s.eps_high,
    eps_year_ago = s.eps_year_ago, analysts = s.analysts, eps_growth = s.eps_growth,
    eps_7d_ago = s.eps_7d_ago, eps_30d_ago = s.eps_30d_ago, eps_60d_ago = s.eps_60d_ago,
    eps_90d_ago = s.eps_90d_ago, up_7d = s.up_7d, up_30d = s.up_30d, down_7d = s.down_7d,
    down_30d = s.down_30d, available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
