-- raw: one table per dataset, the source schema (sources/schemas.py) plus lineage columns.
CREATE TABLE IF NOT EXISTS raw.prices (
    symbol VARCHAR, trade_date DATE, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
    adj_close DOUBLE, volume DOUBLE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.short_interest (
    symbol VARCHAR, settlement_date DATE, issue_name VARCHAR, market VARCHAR,
    short_interest BIGINT, prior_short_interest BIGINT, avg_daily_volume BIGINT, days_to_cover DOUBLE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.cpi (
    series_id VARCHAR, ref_month DATE, value DOUBLE, realtime_start DATE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.estimates (
    index_code VARCHAR, as_of_date DATE, metric VARCHAR, period VARCHAR, value DOUBLE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.holdings (
    fund VARCHAR, as_of_date DATE, symbol VARCHAR, name VARCHAR, sector VARCHAR, asset_class VARCHAR,
    market_value DOUBLE, weight DOUBLE, shares DOUBLE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.factors (
    model VARCHAR, frequency VARCHAR, period_start DATE, factor VARCHAR, value DOUBLE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw.rates (
    series_id VARCHAR, date DATE, value DOUBLE, realtime_start DATE,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
COMMENT ON TABLE raw.prices IS 'Grain: one row per parsed price row per landing file. Rows as parsed, before conforming.';
COMMENT ON TABLE raw.short_interest IS 'Grain: one row per parsed short-interest row per landing file.';
COMMENT ON TABLE raw.cpi IS 'Grain: one row per parsed CPI observation per landing file.';
COMMENT ON TABLE raw.estimates IS 'Grain: one row per parsed estimate cell per landing file (long format).';
COMMENT ON TABLE raw.holdings IS 'Grain: one row per parsed holding per landing file.';
COMMENT ON TABLE raw.factors IS 'Grain: one row per parsed factor value per landing file.';
COMMENT ON TABLE raw.rates IS 'Grain: one row per parsed FRED rate observation (DFF, DGS2) per landing file; value already a fraction.';
