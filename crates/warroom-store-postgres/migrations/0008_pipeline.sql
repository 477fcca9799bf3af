-- Follow-up automation: runs are jobs. One repository row per repository serialises claims
-- (PostgreSQL locks it with FOR UPDATE SKIP LOCKED); items are keyed by (post-mortem, item id)
-- so that duplicate webhooks or re-runs never implement a follow-up twice.
CREATE TABLE pipeline_repos (
    repo TEXT PRIMARY KEY
);
CREATE TABLE pipeline_runs (
    id BIGSERIAL PRIMARY KEY,
    repo TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    dedup_key TEXT UNIQUE,
    status TEXT NOT NULL,
    lease_owner TEXT,
    leased_until TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    items_total BIGINT NOT NULL DEFAULT 0,
    items_done BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    summary TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX pipeline_runs_by_repo ON pipeline_runs (repo, status, id);
CREATE TABLE pipeline_run_log (
    id BIGSERIAL PRIMARY KEY,
    run BIGINT NOT NULL,
    at TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX pipeline_run_log_by_run ON pipeline_run_log (run, id);
CREATE TABLE pipeline_items (
    repo TEXT NOT NULL,
    postmortem TEXT NOT NULL,
    item_id TEXT NOT NULL,
    run BIGINT NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT,
    reason TEXT,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (repo, postmortem, item_id)
);
CREATE TABLE pipeline_approvals (
    repo TEXT NOT NULL,
    item_id TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    PRIMARY KEY (repo, item_id)
);
