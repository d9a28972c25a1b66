-- Merge a validated holdings batch (view `stage`) into core.holdings.
MERGE INTO core.holdings AS t
USING (SELECT * FROM stage) AS s
ON t.fund = s.fund AND t.as_of_date = s.as_of_date AND t.symbol = s.symbol
WHEN MATCHED AND (
    t.weight IS DISTINCT FROM s.weight OR t.market_value IS DISTINCT FROM s.market_value
    OR t.shares IS DISTINCT FROM s.shares OR t.name IS DISTINCT FROM s.name
) THEN UPDATE SET
    name = s.name, sector = s.sector, asset_class = s.asset_class, market_value = s.market_value,
    weight = s.weight, shares = s.shares, available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
