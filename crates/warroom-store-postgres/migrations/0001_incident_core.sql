CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('incident', 0);

CREATE TABLE services (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT,
    public BIGINT NOT NULL DEFAULT 0,
    configured BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE incidents (
    number BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    severity BIGINT NOT NULL,
    primary_service TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    declared_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX incidents_by_status ON incidents (status, number);
CREATE INDEX incidents_by_severity ON incidents (severity, number);

CREATE TABLE incident_services (
    incident BIGINT NOT NULL REFERENCES incidents (number),
    service TEXT NOT NULL,
    PRIMARY KEY (incident, service)
);
CREATE INDEX incident_services_by_service ON incident_services (service, incident);

CREATE TABLE timeline_events (
    id BIGSERIAL PRIMARY KEY,
    incident BIGINT NOT NULL REFERENCES incidents (number),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline_events (incident, id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
