-- Monitors created through the API (config monitors live in the TOML file and are never
-- stored). The spec is the validated `MonitorSpec` as JSON, so a new check option needs no
-- migration. `monitor_set.version` grows with every write: the scheduler polls it to pick up
-- changes without a restart, including changes made by another process.
CREATE TABLE api_monitors (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE monitor_set (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO monitor_set (id, version) VALUES (1, 0);
