-- Each service's health, and every change of it with its time and cause.
CREATE TABLE service_health (
    service TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    since TEXT NOT NULL,
    cause TEXT NOT NULL
);
CREATE TABLE service_health_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    at TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX service_health_events_by_service ON service_health_events (service, id);
