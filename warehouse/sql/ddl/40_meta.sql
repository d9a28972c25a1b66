CREATE TABLE IF NOT EXISTS meta.runs (
    run_id VARCHAR, flow VARCHAR, profile VARCHAR, as_of_date DATE, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    status VARCHAR, exit_code INTEGER, batches_loaded INTEGER, batches_quarantined INTEGER, rows_loaded BIGINT,
    published BOOLEAN, message VARCHAR
);
COMMENT ON TABLE meta.runs IS 'Grain: one row per pipeline run.';
COMMENT ON COLUMN meta.runs.run_id IS 'Run identifier (UTC timestamp and random suffix).';
COMMENT ON COLUMN meta.runs.flow IS 'nightly, backfill or replay.';
COMMENT ON COLUMN meta.runs.profile IS 'sample or live.';
COMMENT ON COLUMN meta.runs.as_of_date IS 'The evening the run ran as of (no observation after it was used).';
COMMENT ON COLUMN meta.runs.started_at IS 'Wall-clock start (UTC).';
COMMENT ON COLUMN meta.runs.finished_at IS 'Wall-clock end (UTC).';
COMMENT ON COLUMN meta.runs.status IS 'success, quarantined (exit 3) or failed.';
COMMENT ON COLUMN meta.runs.exit_code IS 'Exit code of capspread run (0, 1, 3).';
COMMENT ON COLUMN meta.runs.batches_loaded IS 'Batches that passed validation and loaded.';
COMMENT ON COLUMN meta.runs.batches_quarantined IS 'Batches moved to quarantine.';
COMMENT ON COLUMN meta.runs.rows_loaded IS 'Rows inserted into raw.';
COMMENT ON COLUMN meta.runs.published IS 'Whether the run replaced the published snapshot.';
COMMENT ON COLUMN meta.runs.message IS 'Short human-readable outcome.';

CREATE TABLE IF NOT EXISTS meta.validations (
    run_id VARCHAR, dataset VARCHAR, landing_file VARCHAR, suite VARCHAR, expectation VARCHAR, column_name VARCHAR,
    severity VARCHAR, success BOOLEAN, element_count BIGINT, unexpected_count BIGINT, unexpected_examples VARCHAR,
    validated_at TIMESTAMPTZ
);
COMMENT ON TABLE meta.validations IS 'Grain: one row per run, batch and expectation (Great Expectations results).';
COMMENT ON COLUMN meta.validations.run_id IS 'Run that validated the batch.';
COMMENT ON COLUMN meta.validations.dataset IS 'prices, short_interest, cpi, estimates, holdings, factors.';
COMMENT ON COLUMN meta.validations.landing_file IS 'Landing path of the batch.';
COMMENT ON COLUMN meta.validations.suite IS 'Expectation suite name.';
COMMENT ON COLUMN meta.validations.expectation IS 'Expectation type.';
COMMENT ON COLUMN meta.validations.column_name IS 'Column(s) checked, with the row condition if any.';
COMMENT ON COLUMN meta.validations.severity IS 'error (quarantines) or warn (loads, reported).';
COMMENT ON COLUMN meta.validations.success IS 'Whether the expectation held.';
COMMENT ON COLUMN meta.validations.element_count IS 'Rows examined.';
COMMENT ON COLUMN meta.validations.unexpected_count IS 'Rows that broke the expectation.';
COMMENT ON COLUMN meta.validations.unexpected_examples IS 'JSON list of a few unexpected values.';
COMMENT ON COLUMN meta.validations.validated_at IS 'When the suite ran (UTC).';

CREATE TABLE IF NOT EXISTS meta.landing_files (
    sha256 VARCHAR, source VARCHAR, dataset VARCHAR, path VARCHAR, original_name VARCHAR, format VARCHAR,
    size_bytes BIGINT, row_count BIGINT, received_at TIMESTAMPTZ, run_id VARCHAR, status VARCHAR
);
COMMENT ON TABLE meta.landing_files IS 'Grain: one row per distinct payload received (by content hash).';
COMMENT ON COLUMN meta.landing_files.sha256 IS 'SHA-256 of the payload bytes.';
COMMENT ON COLUMN meta.landing_files.source IS 'sample, inbox, yahoo, fred, ...';
COMMENT ON COLUMN meta.landing_files.dataset IS 'Dataset of the payload.';
COMMENT ON COLUMN meta.landing_files.path IS 'Path under CAPSPREAD_HOME/landing.';
COMMENT ON COLUMN meta.landing_files.original_name IS 'File name or request description as received.';
COMMENT ON COLUMN meta.landing_files.format IS 'Recognised format (parquet, yahoo_csv, finra_pipe, ...).';
COMMENT ON COLUMN meta.landing_files.size_bytes IS 'Payload size in bytes.';
COMMENT ON COLUMN meta.landing_files.row_count IS 'Rows parsed from the payload.';
COMMENT ON COLUMN meta.landing_files.received_at IS 'When the payload was received (UTC).';
COMMENT ON COLUMN meta.landing_files.run_id IS 'Run that received it.';
COMMENT ON COLUMN meta.landing_files.status IS 'loaded or quarantined.';

CREATE TABLE IF NOT EXISTS meta.load_state (
    source VARCHAR, dataset VARCHAR, cursor_date DATE, last_run_id VARCHAR, updated_at TIMESTAMPTZ
);
COMMENT ON TABLE meta.load_state IS 'Grain: one row per source and dataset: how far incremental loading has got.';
COMMENT ON COLUMN meta.load_state.source IS 'Source name.';
COMMENT ON COLUMN meta.load_state.dataset IS 'Dataset name.';
COMMENT ON COLUMN meta.load_state.cursor_date IS 'Observations available on or before this date have been delivered.';
COMMENT ON COLUMN meta.load_state.last_run_id IS 'Run that last moved the cursor.';
COMMENT ON COLUMN meta.load_state.updated_at IS 'When the cursor moved (UTC).';

CREATE TABLE IF NOT EXISTS meta.source_health (
    source VARCHAR, dataset VARCHAR, status VARCHAR, last_success_at TIMESTAMPTZ, newest_observation DATE,
    staleness_days INTEGER, message VARCHAR, checked_at TIMESTAMPTZ, run_id VARCHAR
);
COMMENT ON TABLE meta.source_health IS 'Grain: one row per source and dataset (latest check).';
COMMENT ON COLUMN meta.source_health.source IS 'Source name.';
COMMENT ON COLUMN meta.source_health.dataset IS 'Dataset name.';
COMMENT ON COLUMN meta.source_health.status IS 'ok, stale, failed or ended.';
COMMENT ON COLUMN meta.source_health.last_success_at IS 'Last successful fetch (UTC).';
COMMENT ON COLUMN meta.source_health.newest_observation IS 'Newest observation date held in core for this source and dataset.';
COMMENT ON COLUMN meta.source_health.staleness_days IS 'Days between the newest observation and the run''s as-of date.';
COMMENT ON COLUMN meta.source_health.message IS 'What happened, in words.';
COMMENT ON COLUMN meta.source_health.checked_at IS 'When the check ran (UTC).';
COMMENT ON COLUMN meta.source_health.run_id IS 'Run that made the check.';

ALTER TABLE meta.landing_files ADD COLUMN IF NOT EXISTS loaded_through DATE;
ALTER TABLE meta.landing_files ADD COLUMN IF NOT EXISTS newest_available DATE;
COMMENT ON COLUMN meta.landing_files.loaded_through IS 'Rows public on or before this date have been loaded (a full-history file loads the rest with later runs).';
COMMENT ON COLUMN meta.landing_files.newest_available IS 'Date the newest row of the payload becomes public.';

ALTER TABLE meta.source_health ADD COLUMN IF NOT EXISTS expected_every_days INTEGER;
ALTER TABLE meta.source_health ADD COLUMN IF NOT EXISTS sentinel_count BIGINT;
ALTER TABLE meta.source_health ADD COLUMN IF NOT EXISTS rows_held BIGINT;
COMMENT ON COLUMN meta.source_health.expected_every_days IS 'Cadence expected for the dataset (days between observations, plus publication lag) before it counts as stale.';
COMMENT ON COLUMN meta.source_health.sentinel_count IS 'Rows at the newest observation date carrying a vendor sentinel (FINRA days to cover 999.99, stored as NULL).';
COMMENT ON COLUMN meta.source_health.rows_held IS 'Rows of this source and dataset held in core.';

CREATE TABLE IF NOT EXISTS meta.source_disagreements (
    dataset VARCHAR, symbol VARCHAR, observation_date DATE, source_a VARCHAR, value_a DOUBLE,
    source_b VARCHAR, value_b DOUBLE, difference DOUBLE, run_id VARCHAR
);
COMMENT ON TABLE meta.source_disagreements IS 'Grain: one row per symbol, date and pair of sources whose closes differ by more than a cent (real vendors do disagree; reported, not hidden). Recomputed for the (symbol, day) keys each run loads; replay recomputes all.';
COMMENT ON COLUMN meta.source_disagreements.dataset IS 'Dataset compared (prices).';
COMMENT ON COLUMN meta.source_disagreements.symbol IS 'Symbol.';
COMMENT ON COLUMN meta.source_disagreements.observation_date IS 'Trading day.';
COMMENT ON COLUMN meta.source_disagreements.source_a IS 'First source (alphabetical).';
COMMENT ON COLUMN meta.source_disagreements.value_a IS 'Close from source_a.';
COMMENT ON COLUMN meta.source_disagreements.source_b IS 'Second source.';
COMMENT ON COLUMN meta.source_disagreements.value_b IS 'Close from source_b.';
COMMENT ON COLUMN meta.source_disagreements.difference IS 'value_b - value_a.';
COMMENT ON COLUMN meta.source_disagreements.run_id IS 'Run that found it.';
