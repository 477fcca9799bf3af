-- Alerts accepted and committed but not yet merged into `alerts` (SQLite only; PostgreSQL keeps
-- the table empty so both schemas stay version for version the same). One row per group commit
-- holds every alert that carried something new, already judged against what was stored, as
-- JSON. Appending one row per commit is what lets a request be answered after one short write
-- instead of a B-tree insert per alert on a random fingerprint; the alert processor merges the
-- rows into `alerts` in commit order before it looks at pending alerts.
CREATE TABLE alert_intake (
    id BIGSERIAL PRIMARY KEY,
    alerts BIGINT NOT NULL,
    body TEXT NOT NULL
);
