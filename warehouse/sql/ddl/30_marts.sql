CREATE TABLE IF NOT EXISTS marts.market_scoreboard (
    as_of_date DATE, symbol VARCHAR, name VARCHAR, role VARCHAR, close DOUBLE,
    wtd_return DOUBLE, mtd_return DOUBLE, ytd_return DOUBLE, up_weeks_last_10 INTEGER,
    pct_from_record_high DOUBLE, wtd_rank INTEGER, is_record_high BOOLEAN, up_streak INTEGER,
    record_high DOUBLE, prev_week_close DOUBLE, prev_year_close DOUBLE
);
COMMENT ON TABLE marts.market_scoreboard IS 'Grain: one row per symbol per as-of date (every XNYS session with a close). Price returns as fractions.';
COMMENT ON COLUMN marts.market_scoreboard.as_of_date IS 'The session the row is as of; uses only closes dated on or before it.';
COMMENT ON COLUMN marts.market_scoreboard.symbol IS 'Symbol as the vendor spells it.';
COMMENT ON COLUMN marts.market_scoreboard.name IS 'Display name from the configured universe.';
COMMENT ON COLUMN marts.market_scoreboard.role IS 'index or etf.';
COMMENT ON COLUMN marts.market_scoreboard.close IS 'Close on the as-of date.';
COMMENT ON COLUMN marts.market_scoreboard.wtd_return IS 'Close / close on the last session of the previous week - 1.';
COMMENT ON COLUMN marts.market_scoreboard.mtd_return IS 'Close / close on the last session of the previous month - 1.';
COMMENT ON COLUMN marts.market_scoreboard.ytd_return IS 'Close / close on the last session of the previous year - 1.';
COMMENT ON COLUMN marts.market_scoreboard.up_weeks_last_10 IS 'Up weeks among the 10 weeks ending with the as-of week; the current week counts by the sign of wtd_return. NULL with fewer than 10 weeks of history.';
COMMENT ON COLUMN marts.market_scoreboard.pct_from_record_high IS 'Close / highest close to date - 1 (0 on a record close).';
COMMENT ON COLUMN marts.market_scoreboard.wtd_rank IS '1 = best wtd_return among symbols with role index on that date (etf where no index is loaded); NULL for the others.';
COMMENT ON COLUMN marts.market_scoreboard.is_record_high IS 'True when the close is the highest close to date.';
COMMENT ON COLUMN marts.market_scoreboard.up_streak IS 'Consecutive up weeks ending with the as-of week (the current week by the sign of wtd_return; 0 when it is down).';
COMMENT ON COLUMN marts.market_scoreboard.record_high IS 'Highest close to date.';
COMMENT ON COLUMN marts.market_scoreboard.prev_week_close IS 'Close on the last session of the previous week (the wtd base).';
COMMENT ON COLUMN marts.market_scoreboard.prev_year_close IS 'Close on the last session of the previous year (the ytd base).';

CREATE TABLE IF NOT EXISTS marts.index_weekly (
    week_end DATE, symbol VARCHAR, week_start DATE, close DOUBLE, weekly_return DOUBLE, is_up_week BOOLEAN,
    up_weeks_last_10 INTEGER, up_streak INTEGER, is_complete BOOLEAN
);
COMMENT ON TABLE marts.index_weekly IS 'Grain: one row per symbol per calendar week (XNYS sessions); the as-of week is included with is_complete = false.';
COMMENT ON COLUMN marts.index_weekly.week_end IS 'Last XNYS session of the week (Thursday in a Good Friday week).';
COMMENT ON COLUMN marts.index_weekly.symbol IS 'Symbol as the vendor spells it.';
COMMENT ON COLUMN marts.index_weekly.week_start IS 'Monday of the week.';
COMMENT ON COLUMN marts.index_weekly.close IS 'Last close of the week (so far).';
COMMENT ON COLUMN marts.index_weekly.weekly_return IS 'Last close of the week / last close of the previous week - 1.';
COMMENT ON COLUMN marts.index_weekly.is_up_week IS 'weekly_return > 0.';
COMMENT ON COLUMN marts.index_weekly.up_weeks_last_10 IS 'Up weeks among the 10 weeks ending with this one.';
COMMENT ON COLUMN marts.index_weekly.up_streak IS 'Consecutive up weeks ending with this one (0 after a down week).';
COMMENT ON COLUMN marts.index_weekly.is_complete IS 'True once the last session of the week has a close.';

CREATE TABLE IF NOT EXISTS marts.size_spread_daily (
    trade_date DATE, pair VARCHAR, small_symbol VARCHAR, large_symbol VARCHAR, small_return DOUBLE,
    large_return DOUBLE, spread DOUBLE, relative_strength DOUBLE, small_close DOUBLE, large_close DOUBLE
);
COMMENT ON TABLE marts.size_spread_daily IS 'Grain: one row per size pair per common session. Daily price returns as fractions.';
COMMENT ON COLUMN marts.size_spread_daily.trade_date IS 'Session on which both symbols closed.';
COMMENT ON COLUMN marts.size_spread_daily.pair IS 'SMALL/LARGE, e.g. IWM/SPY.';
COMMENT ON COLUMN marts.size_spread_daily.small_symbol IS 'Small-cap symbol.';
COMMENT ON COLUMN marts.size_spread_daily.large_symbol IS 'Large-cap symbol.';
COMMENT ON COLUMN marts.size_spread_daily.small_return IS 'Small close / previous common close - 1.';
COMMENT ON COLUMN marts.size_spread_daily.large_return IS 'Large close / previous common close - 1.';
COMMENT ON COLUMN marts.size_spread_daily.spread IS 'small_return - large_return.';
COMMENT ON COLUMN marts.size_spread_daily.relative_strength IS 'Small/large close ratio rebased to 1 at the pair''s first common date.';
COMMENT ON COLUMN marts.size_spread_daily.small_close IS 'Small-cap close.';
COMMENT ON COLUMN marts.size_spread_daily.large_close IS 'Large-cap close.';

CREATE TABLE IF NOT EXISTS marts.size_spread_monthly (
    month DATE, pair VARCHAR, small_symbol VARCHAR, large_symbol VARCHAR, small_return DOUBLE,
    large_return DOUBLE, spread DOUBLE, ff_smb DOUBLE, spread_smb_corr_36m DOUBLE, last_trade_date DATE
);
COMMENT ON TABLE marts.size_spread_monthly IS 'Grain: one row per size pair per month (the as-of month month-to-date).';
COMMENT ON COLUMN marts.size_spread_monthly.month IS 'First day of the month.';
COMMENT ON COLUMN marts.size_spread_monthly.pair IS 'SMALL/LARGE, e.g. IWM/SPY.';
COMMENT ON COLUMN marts.size_spread_monthly.small_symbol IS 'Small-cap symbol.';
COMMENT ON COLUMN marts.size_spread_monthly.large_symbol IS 'Large-cap symbol.';
COMMENT ON COLUMN marts.size_spread_monthly.small_return IS 'Month-end close / previous month-end close - 1.';
COMMENT ON COLUMN marts.size_spread_monthly.large_return IS 'Month-end close / previous month-end close - 1.';
COMMENT ON COLUMN marts.size_spread_monthly.spread IS 'small_return - large_return.';
COMMENT ON COLUMN marts.size_spread_monthly.ff_smb IS 'Fama-French SMB for the month (fraction) where loaded.';
COMMENT ON COLUMN marts.size_spread_monthly.spread_smb_corr_36m IS 'Correlation of spread and ff_smb over the 36 months ending with this one (NULL until 36 months with both).';
COMMENT ON COLUMN marts.size_spread_monthly.last_trade_date IS 'Last common session in the month so far.';
