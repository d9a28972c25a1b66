CREATE TABLE IF NOT EXISTS core.prices_daily (
    symbol VARCHAR NOT NULL, trade_date DATE NOT NULL,
    open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, adj_close DOUBLE, volume DOUBLE,
    available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.prices_daily IS 'Grain: one row per symbol per trading day. Daily OHLCV as the vendor spells the symbol.';
COMMENT ON COLUMN core.prices_daily.symbol IS 'Symbol as the vendor spells it (^RUT, IWM).';
COMMENT ON COLUMN core.prices_daily.trade_date IS 'XNYS session date.';
COMMENT ON COLUMN core.prices_daily.open IS 'Opening price, quote currency.';
COMMENT ON COLUMN core.prices_daily.high IS 'High price, quote currency.';
COMMENT ON COLUMN core.prices_daily.low IS 'Low price, quote currency.';
COMMENT ON COLUMN core.prices_daily.close IS 'Closing price, split-adjusted, dividends not reinvested.';
COMMENT ON COLUMN core.prices_daily.adj_close IS 'Close adjusted for splits and dividends where the vendor sends it, else NULL.';
COMMENT ON COLUMN core.prices_daily.volume IS 'Shares traded (index points volume for indexes where sent).';
COMMENT ON COLUMN core.prices_daily.available_on IS 'Date the observation became public (point-in-time filter: available_on <= as-of date).';
COMMENT ON COLUMN core.prices_daily.source IS 'Source that delivered the current values (sample, inbox, yahoo, stooq, ...).';
COMMENT ON COLUMN core.prices_daily.known_at IS 'When the pipeline first knew these values (UTC); a run --as-of D stamps the evening of D.';

CREATE TABLE IF NOT EXISTS core.short_interest (
    symbol VARCHAR NOT NULL, settlement_date DATE NOT NULL, issue_name VARCHAR, market VARCHAR,
    short_interest BIGINT, prior_short_interest BIGINT, avg_daily_volume BIGINT, days_to_cover DOUBLE,
    available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.short_interest IS 'Grain: one row per symbol per FINRA settlement date per vintage; a revision (same symbol and settlement date, different values) adds a row with its own known_at, it never overwrites; an unchanged re-delivery adds nothing. As of date D use the latest vintage with available_on <= D (ORDER BY available_on DESC, known_at DESC).';
COMMENT ON COLUMN core.short_interest.symbol IS 'Symbol (FINRA symbolCode).';
COMMENT ON COLUMN core.short_interest.settlement_date IS 'Settlement date of the short-interest report.';
COMMENT ON COLUMN core.short_interest.issue_name IS 'Issue name as FINRA sends it.';
COMMENT ON COLUMN core.short_interest.market IS 'Market class (NYSE, NNM, ARCA, OTC, ...).';
COMMENT ON COLUMN core.short_interest.short_interest IS 'Shares sold short at settlement.';
COMMENT ON COLUMN core.short_interest.prior_short_interest IS 'Shares sold short at the previous settlement.';
COMMENT ON COLUMN core.short_interest.avg_daily_volume IS 'Average daily share volume used for days to cover.';
COMMENT ON COLUMN core.short_interest.days_to_cover IS 'Short interest / average daily volume; NULL where FINRA sent its 999.99 sentinel.';
COMMENT ON COLUMN core.short_interest.available_on IS 'Date this vintage became usable: settlement + publication lag for the first delivery; for a revision the later of that and the day the pipeline learned it (the as-of date of the run that loaded it).';
COMMENT ON COLUMN core.short_interest.source IS 'Source that delivered the row.';
COMMENT ON COLUMN core.short_interest.known_at IS 'When the pipeline first knew these values (UTC); each vintage has its own; a run --as-of D stamps the evening of D.';

CREATE TABLE IF NOT EXISTS core.cpi_observations (
    series_id VARCHAR NOT NULL, ref_month DATE NOT NULL, value DOUBLE, vintage DATE,
    available_on DATE, known_at TIMESTAMPTZ, source VARCHAR
);
COMMENT ON TABLE core.cpi_observations IS 'Grain: one row per series per month per vintage; a revision adds a row, it never overwrites.';
COMMENT ON COLUMN core.cpi_observations.series_id IS 'FRED/BLS series id: CPIAUCSL, CPILFESL (SA), CUUR0000SA0, CUUR0000SA0L1E (NSA).';
COMMENT ON COLUMN core.cpi_observations.ref_month IS 'Reference month (first day).';
COMMENT ON COLUMN core.cpi_observations.value IS 'Index level (1982-84=100); NULL where the month was never published (October 2025).';
COMMENT ON COLUMN core.cpi_observations.vintage IS 'Vendor vintage date (FRED realtime_start) where sent, else NULL.';
COMMENT ON COLUMN core.cpi_observations.available_on IS 'Date this value became public: the vintage, else the estimated release date.';
COMMENT ON COLUMN core.cpi_observations.known_at IS 'When the pipeline first knew this value (UTC).';
COMMENT ON COLUMN core.cpi_observations.source IS 'Source that delivered the row.';

CREATE TABLE IF NOT EXISTS core.index_estimates (
    index_code VARCHAR NOT NULL, as_of_date DATE NOT NULL, metric VARCHAR NOT NULL, period VARCHAR NOT NULL,
    value DOUBLE, available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.index_estimates IS 'Grain: one row per index, edition date, metric and period (long format).';
COMMENT ON COLUMN core.index_estimates.index_code IS 'SP500, SP400, SP600, ...';
COMMENT ON COLUMN core.index_estimates.as_of_date IS 'Date of the estimate edition.';
COMMENT ON COLUMN core.index_estimates.metric IS 'operating_eps, reported_eps, operating_pe, growth_5y (fraction), peg, ...';
COMMENT ON COLUMN core.index_estimates.period IS 'Period the value refers to: 2025, Q4 2025, ...';
COMMENT ON COLUMN core.index_estimates.value IS 'Value in the metric''s unit (index points of EPS, ratio, or fraction).';
COMMENT ON COLUMN core.index_estimates.available_on IS 'Date the edition became public.';
COMMENT ON COLUMN core.index_estimates.source IS 'Source that delivered the row.';
COMMENT ON COLUMN core.index_estimates.known_at IS 'When the pipeline first knew this value (UTC).';

CREATE TABLE IF NOT EXISTS core.holdings (
    fund VARCHAR NOT NULL, as_of_date DATE NOT NULL, symbol VARCHAR NOT NULL, name VARCHAR, sector VARCHAR,
    asset_class VARCHAR, market_value DOUBLE, weight DOUBLE, shares DOUBLE,
    available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.holdings IS 'Grain: one row per fund, holdings snapshot date and holding.';
COMMENT ON COLUMN core.holdings.fund IS 'Fund ticker (IWM, IVV, IJR, IJH).';
COMMENT ON COLUMN core.holdings.as_of_date IS 'Date of the holdings snapshot.';
COMMENT ON COLUMN core.holdings.symbol IS 'Holding ticker.';
COMMENT ON COLUMN core.holdings.name IS 'Holding name.';
COMMENT ON COLUMN core.holdings.sector IS 'GICS sector as the fund reports it.';
COMMENT ON COLUMN core.holdings.asset_class IS 'Equity, Cash, Futures, ...';
COMMENT ON COLUMN core.holdings.market_value IS 'Market value in USD.';
COMMENT ON COLUMN core.holdings.weight IS 'Weight in the fund as a fraction.';
COMMENT ON COLUMN core.holdings.shares IS 'Shares (or contracts) held.';
COMMENT ON COLUMN core.holdings.available_on IS 'Date the snapshot became public.';
COMMENT ON COLUMN core.holdings.source IS 'Source that delivered the row.';
COMMENT ON COLUMN core.holdings.known_at IS 'When the pipeline first knew this value (UTC).';

CREATE TABLE IF NOT EXISTS core.factors (
    model VARCHAR NOT NULL, frequency VARCHAR NOT NULL, period_start DATE NOT NULL, factor VARCHAR NOT NULL,
    value DOUBLE, available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.factors IS 'Grain: one row per model, frequency, period and factor (Fama-French).';
COMMENT ON COLUMN core.factors.model IS 'ff3 (three-factor) or ff5.';
COMMENT ON COLUMN core.factors.frequency IS 'daily or monthly.';
COMMENT ON COLUMN core.factors.period_start IS 'The day, or the first day of the month.';
COMMENT ON COLUMN core.factors.factor IS 'Mkt-RF, SMB, HML, RF, ...';
COMMENT ON COLUMN core.factors.value IS 'Factor return as a fraction (the library publishes percent).';
COMMENT ON COLUMN core.factors.available_on IS 'Date the value became public (estimated from the library''s update lag).';
COMMENT ON COLUMN core.factors.source IS 'Source that delivered the row.';
COMMENT ON COLUMN core.factors.known_at IS 'When the pipeline first knew this value (UTC).';

CREATE TABLE IF NOT EXISTS core.rates_daily (
    series_id VARCHAR NOT NULL, date DATE NOT NULL, value DOUBLE, vintage DATE,
    available_on DATE, known_at TIMESTAMPTZ, source VARCHAR
);
COMMENT ON TABLE core.rates_daily IS 'Grain: one row per rate series per day per vintage; a revision adds a row, it never overwrites. As of date D use the latest vintage with available_on <= D.';
COMMENT ON COLUMN core.rates_daily.series_id IS 'FRED series id: DFF (effective federal funds rate, every calendar day), DGS2 (2-year Treasury constant maturity, business days).';
COMMENT ON COLUMN core.rates_daily.date IS 'Observation date.';
COMMENT ON COLUMN core.rates_daily.value IS 'Rate as a fraction (FRED publishes percent: 5.33 % is 0.0533); NULL where FRED sent "." (no observation that day, e.g. a bond-market holiday).';
COMMENT ON COLUMN core.rates_daily.vintage IS 'Vendor vintage date (FRED realtime_start) where sent, else NULL.';
COMMENT ON COLUMN core.rates_daily.available_on IS 'Date this value became public: the vintage, else the observation date + publication lag (rates_days).';
COMMENT ON COLUMN core.rates_daily.known_at IS 'When the pipeline first knew this value (UTC).';
COMMENT ON COLUMN core.rates_daily.source IS 'Source that delivered the row (fred, inbox).';
