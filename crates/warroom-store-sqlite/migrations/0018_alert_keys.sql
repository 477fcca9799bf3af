-- Alerts are found by fingerprint, a hash: each new alert landed on a random page of the
-- fingerprint index, which SQLite read, changed and wrote back whole to the WAL (4 KB for a
-- 250-byte row). Under a stream of new alerts that index was most of the work of storing them,
-- and it capped the merge of the intake at about 35,000 alerts/s once a few million were stored.
--
-- Fingerprints now live in two small key tables instead: new keys go to
-- `alert_keys_recent`, small enough that a batch of new alerts touches few of its pages, and
-- the store moves them into `alert_keys` in one ordered pass every couple of hundred thousand
-- (each page of the big table written once per move, not once per alert). The view
-- `alert_key` is both; SQLite pushes a fingerprint lookup into each side's primary key.
-- `alerts` keeps its row ids (`id` names the old rowid) and gains no index on fingerprint.
--
-- A fingerprint is unique by construction: the writer inserts an alert only when it knows
-- it is not stored, and updates it otherwise.
CREATE TABLE alerts_next (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
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
INSERT INTO alerts_next (id, fingerprint, group_key, service, name, labels, annotations, status,
    starts_at, ends_at, generator_url, first_seen, last_seen, received, incident, pending)
SELECT rowid, fingerprint, group_key, service, name, labels, annotations, status,
    starts_at, ends_at, generator_url, first_seen, last_seen, received, incident, pending
FROM alerts ORDER BY rowid;
DROP TABLE alerts;
ALTER TABLE alerts_next RENAME TO alerts;
CREATE INDEX alerts_by_incident ON alerts (incident);
CREATE INDEX alerts_pending_since ON alerts (last_seen, fingerprint) WHERE pending = 1;
CREATE INDEX alerts_expiring ON alerts (ends_at) WHERE status = 'firing' AND ends_at IS NOT NULL;
-- Paging through firing alerts no incident holds (after a silence ends) walks this in
-- fingerprint order; alerts that joined an incident, nearly all of them, are not in it.
CREATE INDEX alerts_unlinked ON alerts (fingerprint) WHERE incident IS NULL AND status = 'firing' AND pending = 0;

CREATE TABLE alert_keys (fingerprint TEXT PRIMARY KEY, alert INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE alert_keys_recent (fingerprint TEXT PRIMARY KEY, alert INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO alert_keys (fingerprint, alert) SELECT fingerprint, id FROM alerts ORDER BY fingerprint;
CREATE VIEW alert_key AS
    SELECT fingerprint, alert FROM alert_keys
    UNION ALL
    SELECT fingerprint, alert FROM alert_keys_recent;
CREATE TRIGGER alerts_keyed AFTER INSERT ON alerts BEGIN
    INSERT INTO alert_keys_recent (fingerprint, alert) VALUES (new.fingerprint, new.id);
END;
CREATE TRIGGER alerts_unkeyed AFTER DELETE ON alerts BEGIN
    DELETE FROM alert_keys WHERE fingerprint = old.fingerprint AND alert = old.id;
    DELETE FROM alert_keys_recent WHERE fingerprint = old.fingerprint AND alert = old.id;
END;
CREATE TRIGGER alerts_fingerprint_fixed BEFORE UPDATE OF fingerprint ON alerts BEGIN
    SELECT RAISE(ABORT, 'an alert''s fingerprint never changes');
END;
