-- Merge a validated prices batch (view `stage`) into core.prices_daily.
-- A new (symbol, trade_date) is inserted; a changed value replaces the old one and moves known_at.
MERGE INTO core.prices_daily AS t
USING (SELECT * FROM stage) AS s
ON t.symbol = s.symbol AND t.trade_date = s.trade_date
WHEN MATCHED AND (
    t.close IS DISTINCT FROM s.close OR t.open IS DISTINCT FROM s.open OR t.high IS DISTINCT FROM s.high
    OR t.low IS DISTINCT FROM s.low OR t.adj_close IS DISTINCT FROM s.adj_close OR t.volume IS DISTINCT FROM s.volume
) THEN UPDATE SET
    open = s.open, high = s.high, low = s.low, close = s.close, adj_close = s.adj_close, volume = s.volume,
    available_on = s.available_on, source = s.source, known_at = s.known_at
WHEN NOT MATCHED THEN INSERT BY NAME;
