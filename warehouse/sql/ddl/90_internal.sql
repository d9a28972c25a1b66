-- The pipeline's own bookkeeping: never published (publish copies core, marts and meta only).
CREATE SCHEMA IF NOT EXISTS internal;
-- the digest of these DDL files when they were last applied (db.create_schema)
CREATE TABLE IF NOT EXISTS internal.ddl_applied (sha256 VARCHAR, applied_at TIMESTAMPTZ);
-- the configuration an incrementally built mart was built with (flows.load.short_interest_since)
CREATE TABLE IF NOT EXISTS internal.mart_inputs (name VARCHAR, value VARCHAR);
