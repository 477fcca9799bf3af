-- Silences and maintenance windows made through the API (Alertmanager's `/api/v2/silences`),
-- beside the config file's: an on-call engineer mutes a planned failover without a restart.
-- Expiring one sets its end to the moment it was expired; rows are kept as the record.
CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_at);
