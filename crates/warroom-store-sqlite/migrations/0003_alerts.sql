-- Alerts received from Prometheus or Alertmanager, one row per fingerprint (the identity of a
-- label set). `pending` marks a state change incidents have not caught up with yet, so a crash
-- between committing alerts and acting on them loses nothing.
CREATE TABLE alerts (
    fingerprint TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    service TEXT,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    generator_url TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    received BIGINT NOT NULL,
    incident BIGINT,
    pending BIGINT NOT NULL
);
CREATE INDEX alerts_pending ON alerts (pending, group_key);
CREATE INDEX alerts_by_incident ON alerts (incident);
