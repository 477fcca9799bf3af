-- The alert processor takes pending alerts oldest first (`WHERE pending = 1 ORDER BY last_seen,
-- fingerprint LIMIT n`). Without an index in that order every pass sorted the whole backlog,
-- which under a stream of new alerts cost more than storing them. A partial index holds only
-- the pending rows, so settled alerts and their `last_seen` updates do not touch it. It replaces
-- `alerts_pending (pending, group_key)`, which no query uses in that order.
CREATE INDEX alerts_pending_since ON alerts (last_seen, fingerprint) WHERE pending = 1;
DROP INDEX alerts_pending;
