CREATE TABLE IF NOT EXISTS marts.short_interest_by_bucket (
    settlement_date DATE, bucket VARCHAR, symbols BIGINT, short_interest BIGINT, prior_short_interest BIGINT,
    short_interest_change DOUBLE, median_days_to_cover DOUBLE, vw_days_to_cover DOUBLE,
    pct_symbols_decreasing DOUBLE, holdings_as_of DATE, membership_flag VARCHAR
);
COMMENT ON TABLE marts.short_interest_by_bucket IS 'Grain: one row per FINRA settlement date per size bucket (membership from core.holdings of the bucket funds in configuration).';
COMMENT ON COLUMN marts.short_interest_by_bucket.settlement_date IS 'FINRA settlement date.';
COMMENT ON COLUMN marts.short_interest_by_bucket.bucket IS 'small, large (and mid where configured).';
COMMENT ON COLUMN marts.short_interest_by_bucket.symbols IS 'Member symbols with short-interest data that day.';
COMMENT ON COLUMN marts.short_interest_by_bucket.short_interest IS 'Sum of shares sold short.';
COMMENT ON COLUMN marts.short_interest_by_bucket.prior_short_interest IS 'Sum of shares sold short at the previous settlement.';
COMMENT ON COLUMN marts.short_interest_by_bucket.short_interest_change IS 'short_interest / prior_short_interest - 1 (fraction).';
COMMENT ON COLUMN marts.short_interest_by_bucket.median_days_to_cover IS 'Median days to cover; FINRA 999.99 sentinels are excluded, never averaged.';
COMMENT ON COLUMN marts.short_interest_by_bucket.vw_days_to_cover IS 'Sum of short interest / sum of average daily volume (symbols with volume > 0).';
COMMENT ON COLUMN marts.short_interest_by_bucket.pct_symbols_decreasing IS 'Fraction of symbols whose short interest fell since the prior settlement.';
COMMENT ON COLUMN marts.short_interest_by_bucket.holdings_as_of IS 'Holdings snapshot date used for membership.';
COMMENT ON COLUMN marts.short_interest_by_bucket.membership_flag IS 'in_force (snapshot on or before settlement) or later_snapshot (none earlier: the nearest later one was used).';

CREATE TABLE IF NOT EXISTS marts.etf_short_interest (
    settlement_date DATE, symbol VARCHAR, short_interest BIGINT, prior_short_interest BIGINT,
    short_interest_change DOUBLE, avg_daily_volume BIGINT, days_to_cover DOUBLE
);
COMMENT ON TABLE marts.etf_short_interest IS 'Grain: one row per ETF (IWM, SPY, QQQ, DIA) per settlement date, where FINRA reports it.';
COMMENT ON COLUMN marts.etf_short_interest.settlement_date IS 'FINRA settlement date.';
COMMENT ON COLUMN marts.etf_short_interest.symbol IS 'ETF symbol.';
COMMENT ON COLUMN marts.etf_short_interest.short_interest IS 'Shares sold short.';
COMMENT ON COLUMN marts.etf_short_interest.prior_short_interest IS 'Shares sold short at the previous settlement.';
COMMENT ON COLUMN marts.etf_short_interest.short_interest_change IS 'short_interest / prior_short_interest - 1.';
COMMENT ON COLUMN marts.etf_short_interest.avg_daily_volume IS 'Average daily volume.';
COMMENT ON COLUMN marts.etf_short_interest.days_to_cover IS 'Days to cover; NULL for the 999.99 sentinel.';

CREATE TABLE IF NOT EXISTS marts.inflation_monthly (
    ref_month DATE, headline_index DOUBLE, core_index DOUBLE, headline_yoy DOUBLE, core_yoy DOUBLE,
    headline_mom_annualized DOUBLE, core_mom_annualized DOUBLE, headline_3m_annualized DOUBLE,
    core_3m_annualized DOUBLE, headline_nsa_yoy DOUBLE, core_nsa_yoy DOUBLE, regime VARCHAR
);
COMMENT ON TABLE marts.inflation_monthly IS 'Grain: one row per calendar month. CPI rates as fractions from the latest vintage public on the as-of date; a month never published stays a gap (NULL), never interpolated.';
COMMENT ON COLUMN marts.inflation_monthly.ref_month IS 'Reference month (first day).';
COMMENT ON COLUMN marts.inflation_monthly.headline_index IS 'CPIAUCSL level (seasonally adjusted).';
COMMENT ON COLUMN marts.inflation_monthly.core_index IS 'CPILFESL level (seasonally adjusted).';
COMMENT ON COLUMN marts.inflation_monthly.headline_yoy IS 'Headline SA level / level 12 months earlier - 1.';
COMMENT ON COLUMN marts.inflation_monthly.core_yoy IS 'Core SA level / level 12 months earlier - 1.';
COMMENT ON COLUMN marts.inflation_monthly.headline_mom_annualized IS '(level / previous month)^12 - 1, headline SA.';
COMMENT ON COLUMN marts.inflation_monthly.core_mom_annualized IS '(level / previous month)^12 - 1, core SA.';
COMMENT ON COLUMN marts.inflation_monthly.headline_3m_annualized IS '(level / level 3 months earlier)^4 - 1, headline SA.';
COMMENT ON COLUMN marts.inflation_monthly.core_3m_annualized IS '(level / level 3 months earlier)^4 - 1, core SA.';
COMMENT ON COLUMN marts.inflation_monthly.headline_nsa_yoy IS 'Year over year of the not-seasonally-adjusted CUUR0000SA0 (never revised).';
COMMENT ON COLUMN marts.inflation_monthly.core_nsa_yoy IS 'Year over year of the not-seasonally-adjusted CUUR0000SA0L1E where loaded.';
COMMENT ON COLUMN marts.inflation_monthly.regime IS 'reheating, disinflation, elevated, stable or below_target from core yoy and core 3m annualised against [inflation_regime] thresholds (see transforms.factors.inflation_regime).';

CREATE TABLE IF NOT EXISTS marts.earnings_outlook (
    as_of_date DATE, index_code VARCHAR, operating_pe DOUBLE, growth_5y DOUBLE, peg DOUBLE,
    operating_eps_current_year DOUBLE, operating_eps_next_year DOUBLE, revision_since_prior DOUBLE,
    revision_current_year_since_prior DOUBLE, operating_eps_forward_12m DOUBLE, pe_gap_vs_sp500 DOUBLE
);
COMMENT ON TABLE marts.earnings_outlook IS 'Grain: one row per estimate snapshot (edition date) per index.';
COMMENT ON COLUMN marts.earnings_outlook.as_of_date IS 'Edition date of the estimates.';
COMMENT ON COLUMN marts.earnings_outlook.index_code IS 'SP500, SP400, SP600.';
COMMENT ON COLUMN marts.earnings_outlook.operating_pe IS 'Operating P/E on the edition''s estimate year.';
COMMENT ON COLUMN marts.earnings_outlook.growth_5y IS 'Projected annual growth (fraction).';
COMMENT ON COLUMN marts.earnings_outlook.peg IS 'P/E divided by growth in percent.';
COMMENT ON COLUMN marts.earnings_outlook.operating_eps_current_year IS 'Operating EPS estimate for the calendar year of the edition (index points).';
COMMENT ON COLUMN marts.earnings_outlook.operating_eps_next_year IS 'Operating EPS estimate for the following year.';
COMMENT ON COLUMN marts.earnings_outlook.revision_since_prior IS 'operating_eps_next_year / the prior edition''s value for the same year - 1.';

CREATE TABLE IF NOT EXISTS marts.factor_monthly (
    month DATE, small_return DOUBLE, large_return DOUBLE, spread DOUBLE, ff_smb DOUBLE, headline_yoy DOUBLE,
    core_yoy DOUBLE, regime VARCHAR, si_small_change DOUBLE, si_large_change DOUBLE, si_small_dtc DOUBLE,
    si_large_dtc DOUBLE, pe_small DOUBLE, pe_large DOUBLE, eps_rev_small DOUBLE, eps_rev_large DOUBLE,
    si_settlement_date DATE, outlook_small_as_of DATE, outlook_large_as_of DATE
);
COMMENT ON COLUMN marts.earnings_outlook.revision_current_year_since_prior IS 'operating_eps_current_year / the prior edition''s value for the same year - 1.';
COMMENT ON COLUMN marts.earnings_outlook.operating_eps_forward_12m IS 'Rolling forward-12-month operating EPS: current and next year blended by the months of the year still ahead (transforms.factors.forward_12m_eps).';
COMMENT ON COLUMN marts.earnings_outlook.pe_gap_vs_sp500 IS 'operating_pe minus the S&P 500''s operating_pe in the same edition (SP600 row: the small-minus-large P/E gap).';

COMMENT ON TABLE marts.factor_monthly IS 'Grain: one row per month: the IWM/SPY size spread beside inflation, short interest by bucket and the earnings outlook. The table to open first.';
COMMENT ON COLUMN marts.factor_monthly.month IS 'First day of the month.';
COMMENT ON COLUMN marts.factor_monthly.small_return IS 'IWM monthly price return.';
COMMENT ON COLUMN marts.factor_monthly.large_return IS 'SPY monthly price return.';
COMMENT ON COLUMN marts.factor_monthly.spread IS 'small_return - large_return.';
COMMENT ON COLUMN marts.factor_monthly.ff_smb IS 'Fama-French SMB (fraction).';
COMMENT ON COLUMN marts.factor_monthly.headline_yoy IS 'Headline CPI year over year.';
COMMENT ON COLUMN marts.factor_monthly.core_yoy IS 'Core CPI year over year.';
COMMENT ON COLUMN marts.factor_monthly.regime IS 'Inflation regime label.';
COMMENT ON COLUMN marts.factor_monthly.si_small_change IS 'Small-bucket short-interest change at the month''s last settlement.';
COMMENT ON COLUMN marts.factor_monthly.si_large_change IS 'Large-bucket short-interest change at the month''s last settlement.';
COMMENT ON COLUMN marts.factor_monthly.si_small_dtc IS 'Small-bucket median days to cover.';
COMMENT ON COLUMN marts.factor_monthly.si_large_dtc IS 'Large-bucket median days to cover.';
COMMENT ON COLUMN marts.factor_monthly.pe_small IS 'S&P 600 operating P/E from the latest edition on or before month end.';
COMMENT ON COLUMN marts.factor_monthly.pe_large IS 'S&P 500 operating P/E from the latest edition on or before month end.';
COMMENT ON COLUMN marts.factor_monthly.eps_rev_small IS 'S&P 600 next-year EPS revision since the prior edition.';
COMMENT ON COLUMN marts.factor_monthly.eps_rev_large IS 'S&P 500 next-year EPS revision since the prior edition.';
COMMENT ON COLUMN marts.factor_monthly.si_settlement_date IS 'Settlement date the short-interest columns come from.';
COMMENT ON COLUMN marts.factor_monthly.outlook_small_as_of IS 'Edition date the small-cap outlook comes from.';
COMMENT ON COLUMN marts.factor_monthly.outlook_large_as_of IS 'Edition date the large-cap outlook comes from.';
