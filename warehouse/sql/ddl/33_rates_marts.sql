CREATE TABLE IF NOT EXISTS marts.rate_backdrop (
    month DATE, fed_funds DOUBLE, fed_funds_date DATE, fed_funds_avg DOUBLE, treasury_2y DOUBLE,
    treasury_2y_date DATE, treasury_2y_minus_fed_funds DOUBLE, headline_yoy DOUBLE, core_yoy DOUBLE,
    real_fed_funds DOUBLE, regime VARCHAR, is_complete BOOLEAN
);
COMMENT ON TABLE marts.rate_backdrop IS 'Grain: one row per calendar month with a fed funds (DFF) or 2-year Treasury (DGS2) value, beside that month''s inflation regime. Rates are fractions from the latest vintage public on the as-of date; empty when no rates are loaded.';
COMMENT ON COLUMN marts.rate_backdrop.month IS 'Calendar month (first day).';
COMMENT ON COLUMN marts.rate_backdrop.fed_funds IS 'Effective federal funds rate (DFF) on the last day of the month with a value, as of the run (month to date for the current month); fraction.';
COMMENT ON COLUMN marts.rate_backdrop.fed_funds_date IS 'Date of the fed_funds observation used.';
COMMENT ON COLUMN marts.rate_backdrop.fed_funds_avg IS 'Average of the month''s DFF values (fraction); NULL when none.';
COMMENT ON COLUMN marts.rate_backdrop.treasury_2y IS '2-year Treasury constant-maturity yield (DGS2) on the last business day of the month with a value; fraction.';
COMMENT ON COLUMN marts.rate_backdrop.treasury_2y_date IS 'Date of the treasury_2y observation used.';
COMMENT ON COLUMN marts.rate_backdrop.treasury_2y_minus_fed_funds IS 'treasury_2y - fed_funds (fraction): above zero the market prices hikes, below zero cuts.';
COMMENT ON COLUMN marts.rate_backdrop.headline_yoy IS 'Headline CPI year over year from marts.inflation_monthly for the month (fraction); NULL when not yet public.';
COMMENT ON COLUMN marts.rate_backdrop.core_yoy IS 'Core CPI year over year from marts.inflation_monthly for the month (fraction).';
COMMENT ON COLUMN marts.rate_backdrop.real_fed_funds IS 'fed_funds - headline_yoy (fraction): the real policy rate.';
COMMENT ON COLUMN marts.rate_backdrop.regime IS 'Inflation regime of the month from marts.inflation_monthly (NULL when the month''s CPI is not public yet).';
COMMENT ON COLUMN marts.rate_backdrop.is_complete IS 'True when the month ended on or before the as-of date.';
