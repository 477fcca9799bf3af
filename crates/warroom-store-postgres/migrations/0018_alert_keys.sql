-- On SQLite `alerts` lost its index on fingerprint for two key tables (see the SQLite
-- migration of the same number): a random fingerprint index was most of the cost of storing
-- new alerts there. PostgreSQL keeps `fingerprint` as the primary key: several processes may
-- write alerts, and their upserts rely on it. Both gain the index that pages through firing
-- alerts no incident holds, so that both schemas stay version for version the same.
CREATE INDEX alerts_unlinked ON alerts (fingerprint) WHERE incident IS NULL AND status = 'firing' AND pending = 0;
