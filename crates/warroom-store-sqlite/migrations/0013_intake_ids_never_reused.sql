-- Intake row ids are how the process tells whether an alert's latest state is merged into
-- `alerts` yet (its row id against the newest merged). A plain INTEGER PRIMARY KEY starts over
-- at 1 once the table is empty, which it is after every merge, so a refilled intake looked
-- merged already and repeat counts of its alerts were written to rows that did not exist yet.
-- AUTOINCREMENT never hands out an id twice.
CREATE TABLE alert_intake_next (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alerts BIGINT NOT NULL,
    body TEXT NOT NULL
);
INSERT INTO alert_intake_next (id, alerts, body) SELECT id, alerts, body FROM alert_intake;
DROP TABLE alert_intake;
ALTER TABLE alert_intake_next RENAME TO alert_intake;
