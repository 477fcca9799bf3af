-- SQLite's intake ids now never repeat (AUTOINCREMENT); a BIGSERIAL never did, so PostgreSQL
-- only records why, keeping both schemas version for version the same.
COMMENT ON COLUMN alert_intake.id IS 'never reused: tells whether an alert''s latest state is merged';
