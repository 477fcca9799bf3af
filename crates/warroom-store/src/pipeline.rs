//! Follow-up automation runs as jobs: the [`PipelineStore`] capability and its SQL.
//!
//! A run is a row in `pipeline_runs`, leased by one runner at a time. Claims go through a
//! per-repository row (`pipeline_repos`), locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! and by SQLite's single writer, so that one repository never has two live runs even with
//! runners on several hosts. A run whose lease expired (its runner crashed) is claimed again
//! before any queued run of that repository, so it resumes instead of being overtaken.
//!
//! Items are keyed by (repository, post-mortem, item id): a follow-up that a run committed or
//! refused is never attempted again by that run after a crash, nor by any later run once its
//! result was published.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, any::AnyRow};
use time::OffsetDateTime;
use warroom_domain::timefmt::rfc3339;

use crate::{
    Result, StoreError,
    row::{is_unique_violation, opt_ts, parse_ts},
    sql::Dialect,
    sql::SqlStore,
};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a runner.
    Queued,
    /// Leased by a runner (or abandoned by one whose lease has expired).
    Running,
    /// Finished; everything it did is pushed.
    Succeeded,
    /// Stopped by the budget cap; what was done before is pushed.
    Stopped,
    /// Failed at a step; the error says which.
    Failed,
}

impl RunStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "stopped" => RunStatus::Stopped,
            "failed" => RunStatus::Failed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "pipeline run status `{other}`"
                )));
            }
        })
    }
}

/// One run of the pipeline over one repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// Run number.
    pub id: i64,
    /// The repository key (the configured repository path).
    pub repo: String,
    /// What asked for it: `webhook`, `manual`, `sweep`, `approval`.
    pub trigger: String,
    /// Duplicate requests with the same key get this run instead of a new one.
    pub dedup_key: Option<String>,
    /// Status.
    pub status: RunStatus,
    /// How many times a runner claimed it (more than one means it resumed after a crash).
    pub attempts: i64,
    /// Follow-ups it is working through.
    pub items_total: i64,
    /// Follow-ups finished (implemented or refused).
    pub items_done: i64,
    /// Agent cost so far, USD.
    pub cost_usd: f64,
    /// One line on what it did.
    pub summary: Option<String>,
    /// Why it failed: the item, the step and the error.
    pub error: Option<String>,
    /// Queued at.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// First claimed at.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// Finished at.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Increasing id, for following a log (`after`).
    pub id: i64,
    /// The run.
    pub run: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub line: String,
}

/// What happened to one follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// A run started on it; nothing is committed yet.
    Started,
    /// Committed on the run's branch, not pushed yet.
    Committed,
    /// A guardrail refused it; not published yet.
    Refused,
    /// Implemented and pushed; never attempted again.
    Done,
    /// Refused, and the post-mortem saying so is pushed; a person has it now.
    HandedOver,
}

impl ItemState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Started => "started",
            ItemState::Committed => "committed",
            ItemState::Refused => "refused",
            ItemState::Done => "done",
            ItemState::HandedOver => "handed_over",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "started" => ItemState::Started,
            "committed" => ItemState::Committed,
            "refused" => ItemState::Refused,
            "done" => ItemState::Done,
            "handed_over" => ItemState::HandedOver,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "pipeline item state `{other}`"
                )));
            }
        })
    }
}

/// A follow-up's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRecord {
    /// Repository key.
    pub repo: String,
    /// Post-mortem file name.
    pub postmortem: String,
    /// The engine's stable item id.
    pub item_id: String,
    /// The run that last worked on it.
    pub run: i64,
    /// State.
    pub state: ItemState,
    /// The implementing commit.
    pub commit_sha: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Agent cost, USD.
    pub cost_usd: f64,
}

/// What [`PipelineStore::begin_item`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemClaim {
    /// Work on it (for the first time, or again after a crash before its commit).
    Fresh,
    /// Already handled; here is what happened. Do not do it again.
    Handled(ItemRecord),
}

/// A person's approval of an item automation may not implement on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// Repository key.
    pub repo: String,
    /// Item id.
    pub item_id: String,
    /// Who approved.
    pub approved_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub approved_at: OffsetDateTime,
}

/// Pipeline runs as jobs, their logs, per-item idempotency and approvals.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Queues a run. Returns the existing run instead (and `false`) when one with the same
    /// `dedup_key` exists (a redelivered webhook) or one is already queued for the repository
    /// (it will scan every post-mortem anyway).
    async fn enqueue_run(
        &self,
        repo: &str,
        trigger: &str,
        dedup_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(RunRecord, bool)>;
    /// Leases the repository's next run unless it has a live one: an abandoned run (lease
    /// expired) first, so it resumes, else the oldest queued one. Runners are configured per
    /// repository, so a runner only ever claims its own repository's runs.
    async fn claim_run(
        &self,
        repo: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Option<RunRecord>>;
    /// Extends the lease; false when this runner no longer holds it.
    async fn renew_run(
        &self,
        run: i64,
        owner: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<bool>;
    /// Records progress.
    async fn set_run_progress(
        &self,
        run: i64,
        items_done: i64,
        items_total: i64,
        cost_usd: f64,
    ) -> Result<()>;
    /// Finishes a run this runner holds; false when it does not hold it any more.
    async fn finish_run(
        &self,
        run: i64,
        owner: &str,
        status: RunStatus,
        summary: Option<&str>,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Appends a line to a run's log.
    async fn append_run_log(&self, run: i64, now: OffsetDateTime, line: &str) -> Result<()>;
    /// One run.
    async fn pipeline_run(&self, id: i64) -> Result<RunRecord>;
    /// Runs, newest first.
    async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>>;
    /// A run's log lines with id greater than `after`, oldest first.
    async fn run_log(&self, run: i64, after: i64) -> Result<Vec<LogLine>>;
    /// Claims an item for a run, or says it is already handled.
    async fn begin_item(
        &self,
        repo: &str,
        postmortem: &str,
        item_id: &str,
        run: i64,
        now: OffsetDateTime,
    ) -> Result<ItemClaim>;
    /// Records an item's outcome for the run.
    #[allow(clippy::too_many_arguments)]
    async fn record_item(
        &self,
        repo: &str,
        postmortem: &str,
        item_id: &str,
        run: i64,
        state: ItemState,
        commit_sha: Option<&str>,
        reason: Option<&str>,
        cost_usd: f64,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Every item record of a repository.
    async fn item_records(&self, repo: &str) -> Result<Vec<ItemRecord>>;
    /// After a successful push: committed items become done, refused ones handed over.
    async fn publish_items(&self, run: i64, now: OffsetDateTime) -> Result<()>;
    /// After a failed run: forgets what it did not publish, so a later run can try again.
    async fn release_items(&self, run: i64) -> Result<u64>;
    /// Records a person's approval (idempotent).
    async fn approve_item(
        &self,
        repo: &str,
        item_id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Approval>;
    /// Approvals of a repository.
    async fn approvals(&self, repo: &str) -> Result<Vec<Approval>>;
}

const RUN_COLUMNS: &str = "id, repo, trigger_kind, dedup_key, status, attempts, items_total, items_done, cost_usd, summary, error, created_at, started_at, finished_at";
const APPROVAL_COLUMNS: &str = "repo, item_id, approved_by, approved_at";
const ITEM_COLUMNS: &str = "repo, postmortem, item_id, run, status, commit_sha, reason, cost_usd";

fn run_from_row(row: &AnyRow) -> Result<RunRecord> {
    Ok(RunRecord {
        id: row.try_get("id")?,
        repo: row.try_get("repo")?,
        trigger: row.try_get("trigger_kind")?,
        dedup_key: row.try_get("dedup_key")?,
        status: RunStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        items_total: row.try_get("items_total")?,
        items_done: row.try_get("items_done")?,
        cost_usd: row.try_get("cost_usd")?,
        summary: row.try_get("summary")?,
        error: row.try_get("error")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        started_at: opt_ts(row, "started_at")?,
        finished_at: opt_ts(row, "finished_at")?,
    })
}

fn item_from_row(row: &AnyRow) -> Result<ItemRecord> {
    Ok(ItemRecord {
        repo: row.try_get("repo")?,
        postmortem: row.try_get("postmortem")?,
        item_id: row.try_get("item_id")?,
        run: row.try_get("run")?,
        state: ItemState::parse(&row.try_get::<String, _>("status")?)?,
        commit_sha: row.try_get("commit_sha")?,
        reason: row.try_get("reason")?,
        cost_usd: row.try_get("cost_usd")?,
    })
}

/// Locks the repository row: waiting on PostgreSQL (enqueue), skipping when taken (claim).
fn lock_repo(dialect: Dialect, skip_locked: bool) -> &'static str {
    match (dialect, skip_locked) {
        (Dialect::Sqlite, _) => "SELECT repo FROM pipeline_repos WHERE repo = $1",
        (Dialect::Postgres, false) => "SELECT repo FROM pipeline_repos WHERE repo = $1 FOR UPDATE",
        (Dialect::Postgres, true) => {
            "SELECT repo FROM pipeline_repos WHERE repo = $1 FOR UPDATE SKIP LOCKED"
        }
    }
}

impl SqlStore {
    async fn find_run_by_key(&self, key: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE dedup_key = $1"
        )))
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }
}

#[async_trait]
impl PipelineStore for SqlStore {
    async fn enqueue_run(
        &self,
        repo: &str,
        trigger: &str,
        dedup_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(RunRecord, bool)> {
        let result = async {
            let _gate = self.write_gate().await;
            let mut tx = self.begin_write().await?;
            sqlx::query("INSERT INTO pipeline_repos (repo) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(repo)
                .execute(&mut *tx)
                .await?;
            // Serialises enqueues of one repository, so two identical webhooks arriving at
            // once see each other's row instead of racing to insert two runs.
            sqlx::query(lock_repo(self.dialect(), false))
                .bind(repo)
                .fetch_optional(&mut *tx)
                .await?;
            let existing = match dedup_key {
                Some(key) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE dedup_key = $1"
                    )))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?
                }
                None => None,
            };
            let existing = match existing {
                Some(r) => Some(r),
                None => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE repo = $1 AND status = 'queued' ORDER BY id LIMIT 1"
                    )))
                    .bind(repo)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            if let Some(r) = existing {
                // Ended explicitly: a dropped transaction is rolled back only when its
                // connection is next used, and until then it would hold the repository lock.
                tx.commit().await?;
                return Ok((run_from_row(&r)?, false));
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO pipeline_runs (repo, trigger_kind, dedup_key, status, created_at) \
                 VALUES ($1, $2, $3, 'queued', $4) RETURNING {RUN_COLUMNS}"
            )))
            .bind(repo)
            .bind(trigger)
            .bind(dedup_key)
            .bind(rfc3339(now))
            .fetch_one(&mut *tx)
            .await?;
            let run = run_from_row(&row)?;
            tx.commit().await?;
            Ok::<_, StoreError>((run, true))
        }
        .await;
        match result {
            // A concurrent enqueue with the same key won (possible only if the lock above was
            // bypassed, e.g. the repository row was created in the same instant): use its run.
            Err(StoreError::Database(e)) if is_unique_violation(&e) => {
                let key = dedup_key.unwrap_or_default();
                match self.find_run_by_key(key).await? {
                    Some(r) => Ok((r, false)),
                    None => Err(StoreError::Database(e)),
                }
            }
            other => other,
        }
    }

    async fn claim_run(
        &self,
        repo: &str,
        owner: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Option<RunRecord>> {
        let _gate = self.write_gate().await;
        let mut tx = self.begin_write().await?;
        // The repository row is the claim's mutex. On PostgreSQL a runner that finds it locked
        // skips instead of queueing behind another runner's claim.
        let locked: Option<String> = sqlx::query_scalar(lock_repo(self.dialect(), true))
            .bind(repo)
            .fetch_optional(&mut *tx)
            .await?;
        let next: Option<i64> = if locked.is_none() {
            None
        } else {
            let live: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pipeline_runs WHERE repo = $1 AND status = 'running' AND leased_until >= $2",
            )
            .bind(repo)
            .bind(rfc3339(now))
            .fetch_one(&mut *tx)
            .await?;
            if live > 0 {
                None
            } else {
                sqlx::query_scalar(
                    "SELECT id FROM pipeline_runs WHERE repo = $1 AND status IN ('running', 'queued') \
                     ORDER BY CASE WHEN status = 'running' THEN 0 ELSE 1 END, id LIMIT 1",
                )
                .bind(repo)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(id) = next else {
            tx.rollback().await?;
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE pipeline_runs SET status = 'running', lease_owner = $2, leased_until = $3, \
             attempts = attempts + 1, started_at = COALESCE(started_at, $4) WHERE id = $1 RETURNING {RUN_COLUMNS}"
        )))
        .bind(id)
        .bind(owner)
        .bind(rfc3339(now + lease))
        .bind(rfc3339(now))
        .fetch_one(&mut *tx)
        .await?;
        let run = run_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn renew_run(
        &self,
        run: i64,
        owner: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<bool> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE pipeline_runs SET leased_until = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(run)
        .bind(owner)
        .bind(rfc3339(now + lease))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_run_progress(
        &self,
        run: i64,
        items_done: i64,
        items_total: i64,
        cost_usd: f64,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE pipeline_runs SET items_done = $2, items_total = $3, cost_usd = $4 WHERE id = $1",
        )
        .bind(run)
        .bind(items_done)
        .bind(items_total)
        .bind(cost_usd)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn finish_run(
        &self,
        run: i64,
        owner: &str,
        status: RunStatus,
        summary: Option<&str>,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE pipeline_runs SET status = $3, summary = $4, error = $5, finished_at = $6, leased_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(run)
        .bind(owner)
        .bind(status.as_str())
        .bind(summary)
        .bind(error)
        .bind(rfc3339(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn append_run_log(&self, run: i64, now: OffsetDateTime, line: &str) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query("INSERT INTO pipeline_run_log (run, at, line) VALUES ($1, $2, $3)")
            .bind(run)
            .bind(rfc3339(now))
            .bind(line)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn pipeline_run(&self, id: i64) -> Result<RunRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => run_from_row(&r),
            None => Err(StoreError::NotFound {
                what: "pipeline run",
                key: id.to_string(),
            }),
        }
    }

    async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM pipeline_runs ORDER BY id DESC LIMIT $1"
        )))
        .bind(limit.clamp(1, 500))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn run_log(&self, run: i64, after: i64) -> Result<Vec<LogLine>> {
        let rows = sqlx::query(
            "SELECT id, run, at, line FROM pipeline_run_log WHERE run = $1 AND id > $2 ORDER BY id",
        )
        .bind(run)
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogLine {
                    id: r.try_get("id")?,
                    run: r.try_get("run")?,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    line: r.try_get("line")?,
                })
            })
            .collect()
    }

    async fn begin_item(
        &self,
        repo: &str,
        postmortem: &str,
        item_id: &str,
        run: i64,
        now: OffsetDateTime,
    ) -> Result<ItemClaim> {
        let _gate = self.write_gate().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM pipeline_items WHERE repo = $1 AND postmortem = $2 AND item_id = $3"
        )))
        .bind(repo)
        .bind(postmortem)
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let existing = row.as_ref().map(item_from_row).transpose()?;
        match existing {
            Some(rec)
                if matches!(rec.state, ItemState::Done | ItemState::HandedOver)
                    || (rec.run == run
                        && matches!(rec.state, ItemState::Committed | ItemState::Refused)) =>
            {
                // Ended explicitly, so that no lock outlives the call (see `enqueue_run`).
                tx.rollback().await?;
                return Ok(ItemClaim::Handled(rec));
            }
            Some(_) => {
                // Started but not committed (a crash mid-item), or left by an older run that
                // never published it: start over.
                sqlx::query(
                    "UPDATE pipeline_items SET run = $4, status = 'started', commit_sha = NULL, reason = NULL, cost_usd = 0, updated_at = $5 \
                     WHERE repo = $1 AND postmortem = $2 AND item_id = $3",
                )
                .bind(repo)
                .bind(postmortem)
                .bind(item_id)
                .bind(run)
                .bind(rfc3339(now))
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO pipeline_items (repo, postmortem, item_id, run, status, updated_at) VALUES ($1, $2, $3, $4, 'started', $5)",
                )
                .bind(repo)
                .bind(postmortem)
                .bind(item_id)
                .bind(run)
                .bind(rfc3339(now))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(ItemClaim::Fresh)
    }

    async fn record_item(
        &self,
        repo: &str,
        postmortem: &str,
        item_id: &str,
        run: i64,
        state: ItemState,
        commit_sha: Option<&str>,
        reason: Option<&str>,
        cost_usd: f64,
        now: OffsetDateTime,
    ) -> Result<()> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "UPDATE pipeline_items SET status = $5, commit_sha = $6, reason = $7, cost_usd = $8, updated_at = $9 \
             WHERE repo = $1 AND postmortem = $2 AND item_id = $3 AND run = $4",
        )
        .bind(repo)
        .bind(postmortem)
        .bind(item_id)
        .bind(run)
        .bind(state.as_str())
        .bind(commit_sha)
        .bind(reason)
        .bind(cost_usd)
        .bind(rfc3339(now))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn item_records(&self, repo: &str) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} FROM pipeline_items WHERE repo = $1 ORDER BY postmortem, item_id"
        )))
        .bind(repo)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    async fn publish_items(&self, run: i64, now: OffsetDateTime) -> Result<()> {
        let _gate = self.write_gate().await;
        let mut tx = self.begin_write().await?;
        for (from, to) in [("committed", "done"), ("refused", "handed_over")] {
            sqlx::query(
                "UPDATE pipeline_items SET status = $3, updated_at = $4 WHERE run = $1 AND status = $2",
            )
            .bind(run)
            .bind(from)
            .bind(to)
            .bind(rfc3339(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_items(&self, run: i64) -> Result<u64> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "DELETE FROM pipeline_items WHERE run = $1 AND status IN ('started', 'committed', 'refused')",
        )
        .bind(run)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    async fn approve_item(
        &self,
        repo: &str,
        item_id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Approval> {
        let _gate = self.write_gate().await;
        sqlx::query(
            "INSERT INTO pipeline_approvals (repo, item_id, approved_by, approved_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(repo)
        .bind(item_id)
        .bind(by)
        .bind(rfc3339(now))
        .execute(self.pool())
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPROVAL_COLUMNS} FROM pipeline_approvals WHERE repo = $1 AND item_id = $2"
        )))
        .bind(repo)
        .bind(item_id)
        .fetch_one(self.pool())
        .await?;
        approval_from_row(&row)
    }

    async fn approvals(&self, repo: &str) -> Result<Vec<Approval>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPROVAL_COLUMNS} FROM pipeline_approvals WHERE repo = $1 ORDER BY approved_at"
        )))
        .bind(repo)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(approval_from_row).collect()
    }
}

fn approval_from_row(row: &AnyRow) -> Result<Approval> {
    Ok(Approval {
        repo: row.try_get("repo")?,
        item_id: row.try_get("item_id")?,
        approved_by: row.try_get("approved_by")?,
        approved_at: parse_ts(&row.try_get::<String, _>("approved_at")?)?,
    })
}
