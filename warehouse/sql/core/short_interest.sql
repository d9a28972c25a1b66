-- Merge a validated short-interest batch (view `stage`) into core.short_interest.
MERGE INTO core.short_interest AS t
USING (SELECT * FROM stage) AS s
ON t.symbol = s.symbol AND t.settlement_date = s.settlement_date
WHEN MATCHED AND (
    t.short_interest IS DISTINCT FROM s.short_interest OR t.prior_short_interest IS DISTINCT FROM s.prior_short_interest
    OR t.avg_daily_volume IS DISTINCT FROM s.avg_daily_volume OR t.days_to_cover IS DISTINCT FROM s.days_to_cover
) THEN UPDATE SET
    issue_name = s.issue_name, market = s.market, short_interest = s.short_interest,
    prior_short_interest = s.prior_short_interest, avg_daily_volume = s.avg_daily_volume,
    days_to_cover = s.days_to_cover, available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
