-- Bottom-up consensus estimates: per-company forward EPS (Yahoo earningsTrend, vendor exports) and
-- their aggregation by holdings weight (transforms/consensus.py).

CREATE TABLE IF NOT EXISTS raw.company_estimates (
    symbol VARCHAR, as_of_date DATE, period VARCHAR, period_end DATE,
    eps_avg DOUBLE, eps_low DOUBLE, eps_high DOUBLE, eps_year_ago DOUBLE, analysts BIGINT, eps_growth DOUBLE,
    eps_7d_ago DOUBLE, eps_30d_ago DOUBLE, eps_60d_ago DOUBLE, eps_90d_ago DOUBLE,
    up_7d BIGINT, up_30d BIGINT, down_7d BIGINT, down_30d BIGINT,
    _landing_file VARCHAR, _loaded_at TIMESTAMPTZ, _run_id VARCHAR
);
COMMENT ON TABLE raw.company_estimates IS 'Grain: one row per parsed company estimate (company, observation day, fiscal period) per landing file.';

CREATE TABLE IF NOT EXISTS core.company_estimates (
    symbol VARCHAR NOT NULL, as_of_date DATE NOT NULL, period VARCHAR NOT NULL, period_end DATE,
    eps_avg DOUBLE, eps_low DOUBLE, eps_high DOUBLE, eps_year_ago DOUBLE, analysts BIGINT, eps_growth DOUBLE,
    eps_7d_ago DOUBLE, eps_30d_ago DOUBLE, eps_60d_ago DOUBLE, eps_90d_ago DOUBLE,
    up_7d BIGINT, up_30d BIGINT, down_7d BIGINT, down_30d BIGINT,
    available_on DATE, source VARCHAR, known_at TIMESTAMPTZ
);
COMMENT ON TABLE core.company_estimates IS 'Grain: one row per company, observation day and fiscal period (0q, +1q, 0y, +1y). Consensus EPS per share in the quote currency as observed that day; a company is observed about once a week (budgeted rotation).';
COMMENT ON COLUMN core.company_estimates.symbol IS 'Ticker as the holding fund lists it (BRKB), so that it joins core.holdings.symbol; not the vendor''s spelling.';
COMMENT ON COLUMN core.company_estimates.as_of_date IS 'Day the estimates were observed (fetched from the vendor or dated in the export).';
COMMENT ON COLUMN core.company_estimates.period IS 'Fiscal period relative to the observation day: 0q current quarter, +1q next quarter, 0y current fiscal year, +1y next fiscal year.';
COMMENT ON COLUMN core.company_estimates.period_end IS 'Last day of that fiscal period.';
COMMENT ON COLUMN core.company_estimates.eps_avg IS 'Consensus mean EPS for the period, per share, quote currency.';
COMMENT ON COLUMN core.company_estimates.eps_low IS 'Lowest analyst EPS estimate, per share.';
COMMENT ON COLUMN core.company_estimates.eps_high IS 'Highest analyst EPS estimate, per share.';
COMMENT ON COLUMN core.company_estimates.eps_year_ago IS 'EPS of the same period one year earlier, per share.';
COMMENT ON COLUMN core.company_estimates.analysts IS 'Number of analysts in the consensus.';
COMMENT ON COLUMN core.company_estimates.eps_growth IS 'eps_avg / eps_year_ago - 1 as the vendor computes it (fraction).';
COMMENT ON COLUMN core.company_estimates.eps_7d_ago IS 'Consensus mean EPS for the same period 7 days before as_of_date, per share.';
COMMENT ON COLUMN core.company_estimates.eps_30d_ago IS 'Consensus mean EPS for the same period 30 days before as_of_date, per share.';
COMMENT ON COLUMN core.company_estimates.eps_60d_ago IS 'Consensus mean EPS for the same period 60 days before as_of_date, per share.';
COMMENT ON COLUMN core.company_estimates.eps_90d_ago IS 'Consensus mean EPS for the same period 90 days before as_of_date, per share.';
COMMENT ON COLUMN core.company_estimates.up_7d IS 'Analysts who raised their estimate in the last 7 days (count).';
COMMENT ON COLUMN core.company_estimates.up_30d IS 'Analysts who raised their estimate in the last 30 days (count).';
COMMENT ON COLUMN core.company_estimates.down_7d IS 'Analysts who lowered their estimate in the last 7 days (count; NULL where the vendor does not send it).';
COMMENT ON COLUMN core.company_estimates.down_30d IS 'Analysts who lowered their estimate in the last 30 days (count).';
COMMENT ON COLUMN core.company_estimates.available_on IS 'Date the estimates became public: the observation day.';
COMMENT ON COLUMN core.company_estimates.source IS 'Source that delivered the row (consensus, inbox).';
COMMENT ON COLUMN core.company_estimates.known_at IS 'When the pipeline first knew these values (UTC).';

CREATE TABLE IF NOT EXISTS marts.consensus_outlook (
    as_of_date DATE, index_code VARCHAR, bucket VARCHAR, holdings_as_of DATE, names BIGINT, names_covered BIGINT,
    coverage DOUBLE, suppressed BOOLEAN, forward_earnings_yield DOUBLE, forward_pe DOUBLE,
    eps_revision_7d DOUBLE, eps_revision_30d DOUBLE, eps_revision_60d DOUBLE, eps_revision_90d DOUBLE,
    up_share_7d DOUBLE, down_share_7d DOUBLE, up_share_30d DOUBLE, down_share_30d DOUBLE,
    up_share_60d DOUBLE, down_share_60d DOUBLE, up_share_90d DOUBLE, down_share_90d DOUBLE,
    forward_pe_gap_vs_large DOUBLE, oldest_estimate DATE
);
COMMENT ON TABLE marts.consensus_outlook IS 'Grain: one row per observation day (a day with company estimates) per bucket fund (index_code IWM, IVV, IJR). Per-company forward EPS aggregated by holdings weight; every aggregate is NULL below the configured coverage (suppressed = true). Yields, revisions and shares are fractions.';
COMMENT ON COLUMN marts.consensus_outlook.as_of_date IS 'Observation day; uses each member''s latest estimate observed at most max_age_days (default 10) days before.';
COMMENT ON COLUMN marts.consensus_outlook.index_code IS 'Bucket fund whose holdings define the index: IWM (Russell 2000), IJR (S&P 600), IVV (S&P 500).';
COMMENT ON COLUMN marts.consensus_outlook.bucket IS 'small or large, from [bucket_funds] in the configuration.';
COMMENT ON COLUMN marts.consensus_outlook.holdings_as_of IS 'Holdings snapshot used for membership and weights: the fund''s latest on or before as_of_date.';
COMMENT ON COLUMN marts.consensus_outlook.names IS 'Equity members of the snapshot (with a ticker and a market value or weight). Members are weighted by their share of the members'' market value (the fund''s Weight (%) is rounded to 0.01 %).';
COMMENT ON COLUMN marts.consensus_outlook.names_covered IS 'Members with a fresh forward EPS and a price.';
COMMENT ON COLUMN marts.consensus_outlook.coverage IS 'Share of the members'' market value with a fresh forward EPS (fraction, 0 to 1).';
COMMENT ON COLUMN marts.consensus_outlook.suppressed IS 'True when coverage is below the configured minimum (default 0.8): the aggregates of the row are NULL.';
COMMENT ON COLUMN marts.consensus_outlook.forward_earnings_yield IS 'Sum of weight x forward-12-month EPS / price over covered members / their weight (fraction; losses count).';
COMMENT ON COLUMN marts.consensus_outlook.forward_pe IS '1 / forward_earnings_yield (NULL when the yield is not positive).';
COMMENT ON COLUMN marts.consensus_outlook.eps_revision_7d IS 'Change of the weighted forward EPS yield over 7 days at fixed prices: sum w(fwd - fwd 7 days before)/price / |sum w fwd 7 days before/price| (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.eps_revision_30d IS 'As eps_revision_7d over 30 days (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.eps_revision_60d IS 'As eps_revision_7d over 60 days (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.eps_revision_90d IS 'As eps_revision_7d over 90 days (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.up_share_7d IS 'Share of covered members (by count) whose forward EPS is above its value 7 days before (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.down_share_7d IS 'Share of covered members (by count) whose forward EPS is below its value 7 days before (fraction).';
COMMENT ON COLUMN marts.consensus_outlook.up_share_30d IS 'As up_share_7d over 30 days.';
COMMENT ON COLUMN marts.consensus_outlook.down_share_30d IS 'As down_share_7d over 30 days.';
COMMENT ON COLUMN marts.consensus_outlook.up_share_60d IS 'As up_share_7d over 60 days.';
COMMENT ON COLUMN marts.consensus_outlook.down_share_60d IS 'As down_share_7d over 60 days.';
COMMENT ON COLUMN marts.consensus_outlook.up_share_90d IS 'As up_share_7d over 90 days.';
COMMENT ON COLUMN marts.consensus_outlook.down_share_90d IS 'As down_share_7d over 90 days.';
COMMENT ON COLUMN marts.consensus_outlook.forward_pe_gap_vs_large IS 'forward_pe minus the large bucket fund''s forward_pe on the same day (small-minus-large P/E gap on small rows).';
COMMENT ON COLUMN marts.consensus_outlook.oldest_estimate IS 'Oldest observation day among the estimates used.';

-- marts.earnings_outlook gains the bottom-up rows (index_code IWM, IVV, ...; method = 'bottom_up')
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS method VARCHAR;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS bucket VARCHAR;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS coverage DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS names_covered BIGINT;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS forward_earnings_yield DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS forward_pe DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS eps_revision_7d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS eps_revision_30d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS eps_revision_60d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS eps_revision_90d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS up_share_7d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS down_share_7d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS up_share_30d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS down_share_30d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS up_share_60d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS down_share_60d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS up_share_90d DOUBLE;
ALTER TABLE marts.earnings_outlook ADD COLUMN IF NOT EXISTS down_share_90d DOUBLE;
COMMENT ON COLUMN marts.earnings_outlook.method IS 'edition (an S&P DJI workbook edition: SP500, SP400, SP600) or bottom_up (company estimates aggregated by the holdings of a bucket fund: IWM, IVV, IJR).';
COMMENT ON COLUMN marts.earnings_outlook.bucket IS 'bottom_up rows: small or large (the fund''s bucket); NULL on edition rows.';
COMMENT ON COLUMN marts.earnings_outlook.coverage IS 'bottom_up rows: share of index weight with a fresh company estimate (fraction); the aggregates are NULL below the configured minimum.';
COMMENT ON COLUMN marts.earnings_outlook.names_covered IS 'bottom_up rows: members with a fresh forward EPS.';
COMMENT ON COLUMN marts.earnings_outlook.forward_earnings_yield IS 'bottom_up rows: weighted forward-12-month EPS / price (fraction), see marts.consensus_outlook.';
COMMENT ON COLUMN marts.earnings_outlook.forward_pe IS 'bottom_up rows: 1 / forward_earnings_yield (next twelve months; not the calendar-year operating_pe of the edition rows).';
COMMENT ON COLUMN marts.earnings_outlook.eps_revision_7d IS 'bottom_up rows: change of the aggregate forward EPS over 7 days at fixed prices (fraction).';
COMMENT ON COLUMN marts.earnings_outlook.eps_revision_30d IS 'bottom_up rows: as eps_revision_7d over 30 days.';
COMMENT ON COLUMN marts.earnings_outlook.eps_revision_60d IS 'bottom_up rows: as eps_revision_7d over 60 days.';
COMMENT ON COLUMN marts.earnings_outlook.eps_revision_90d IS 'bottom_up rows: as eps_revision_7d over 90 days.';
COMMENT ON COLUMN marts.earnings_outlook.up_share_7d IS 'bottom_up rows: share of covered members revised up over 7 days (fraction).';
COMMENT ON COLUMN marts.earnings_outlook.down_share_7d IS 'bottom_up rows: share of covered members revised down over 7 days (fraction).';
COMMENT ON COLUMN marts.earnings_outlook.up_share_30d IS 'bottom_up rows: share revised up over 30 days.';
COMMENT ON COLUMN marts.earnings_outlook.down_share_30d IS 'bottom_up rows: share revised down over 30 days.';
COMMENT ON COLUMN marts.earnings_outlook.up_share_60d IS 'bottom_up rows: share revised up over 60 days.';
COMMENT ON COLUMN marts.earnings_outlook.down_share_60d IS 'bottom_up rows: share revised down over 60 days.';
COMMENT ON COLUMN marts.earnings_outlook.up_share_90d IS 'bottom_up rows: share revised up over 90 days.';
COMMENT ON COLUMN marts.earnings_outlook.down_share_90d IS 'bottom_up rows: share revised down over 90 days.';
COMMENT ON TABLE marts.earnings_outlook IS 'Grain: one row per estimate snapshot per index: S&P DJI editions (method edition; index_code SP500, SP400, SP600) and daily bottom-up aggregates of company estimates by bucket-fund holdings (method bottom_up; index_code IWM, IVV, IJR).';
