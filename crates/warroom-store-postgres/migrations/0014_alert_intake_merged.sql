-- On SQLite the alert intake moved to a file of its own (`<database>.intake`), so that appending
-- to it never waits for a merge into `alerts`, which holds this file's write lock for as long as
-- a processing pass takes. A merge cannot delete the rows it merged in its own transaction any
-- more; instead it moves this mark, the newest intake row merged, in that transaction, and the
-- merged rows are deleted from the intake file afterwards. PostgreSQL keeps the row unused, so
-- that both schemas stay version for version the same.
CREATE TABLE alert_intake_merged (id BIGINT NOT NULL);
INSERT INTO alert_intake_merged (id) VALUES (0);
