-- Check results, kept raw for a short while and rolled up for uptime history. Times are unix
-- seconds: at 1,000 monitors every 30 s this is the biggest table, and integers keep it small.
CREATE TABLE check_results (
    monitor TEXT NOT NULL,
    at BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL
);
CREATE INDEX check_results_by_at ON check_results (at);
CREATE TABLE check_rollups (
    monitor TEXT NOT NULL,
    granularity BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    latency_sum_ms BIGINT NOT NULL,
    latency_max_ms BIGINT NOT NULL,
    PRIMARY KEY (monitor, granularity, bucket)
) WITHOUT ROWID;
