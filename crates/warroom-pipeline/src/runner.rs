//! Executing a run: claim, scan, one guarded attempt per item, then publish (`publish.rs`).

mod attempt;
mod publish;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use warroom_domain::notify::{Notification, NotificationKind};
use warroom_store::{
    Clock, ItemClaim, ItemState, NewOutboxMessage, RunRecord, RunStatus, Store, StoreError,
};

use crate::{
    config::PipelineConfig,
    git::{Git, GitError},
    scan::{self, Candidate, Doc, Eligibility},
};

/// What happened to one item in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    /// Committed; the hash is the one on the pushed branch once the run succeeded.
    Implemented {
        /// Commit hash.
        sha: String,
    },
    /// Stopped by a guardrail; the reason is recorded in the post-mortem.
    Refused {
        /// Why.
        reason: String,
    },
}

/// One item's result with what identifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemReport {
    /// Post-mortem file name.
    pub postmortem: String,
    /// Item id.
    pub item_id: String,
    /// The action text.
    pub action: String,
    /// What happened.
    pub outcome: ItemOutcome,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The run.
    pub run: i64,
    /// Final status.
    pub status: RunStatus,
    /// Items handled in this run (including ones done before a resume).
    pub items: Vec<ItemReport>,
    /// The one-line summary (or the error).
    pub summary: String,
    /// The pushed tip, when something was pushed.
    pub pushed: Option<String>,
}

/// Where a run failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}step {step}: {error}", item.as_ref().map(|i| format!("item {i}, ")).unwrap_or_default())]
pub struct RunError {
    /// The item being worked on, if any.
    pub item: Option<String>,
    /// The step: `fetch`, `scan`, `worktree`, `commit`, `publish`, `push`, `store`...
    pub step: &'static str,
    /// What went wrong.
    pub error: String,
}

impl RunError {
    fn at(step: &'static str, error: impl std::fmt::Display) -> Self {
        RunError {
            item: None,
            step,
            error: error.to_string(),
        }
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        RunError::at("store", e)
    }
}

fn git_err(step: &'static str) -> impl Fn(GitError) -> RunError {
    move |e| RunError::at(step, e)
}

/// One item as the dry run prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedItem {
    /// Post-mortem path.
    pub postmortem: String,
    /// Item id.
    pub item_id: String,
    /// Priority.
    pub priority: String,
    /// Type.
    pub item_type: String,
    /// The action.
    pub action: String,
    /// `safe` or `approved`.
    pub why: String,
    /// `pending`, or what an earlier run did.
    pub state: String,
    /// The commit message it would get.
    pub commit_message: String,
}

/// An unsafe follow-up the dry run says will be recorded as needing a person.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedReview {
    /// Post-mortem path.
    pub postmortem: String,
    /// Item id (what `warroom pipeline approve` takes).
    pub item_id: String,
    /// Priority.
    pub priority: String,
    /// Type.
    pub item_type: String,
    /// The action.
    pub action: String,
    /// The reason its row gives.
    pub reason: String,
}

/// A follow-up found by id ([`Runner::find_item`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundItem {
    /// Post-mortem path.
    pub postmortem: String,
    /// Item id.
    pub item_id: String,
    /// Priority.
    pub priority: String,
    /// Type.
    pub item_type: String,
    /// The action.
    pub action: String,
    /// Still to do (not Done or Dropped).
    pub open: bool,
    /// A safe type: automation takes it without an approval.
    pub safe: bool,
}

/// Result of one guarded attempt.
enum Attempt {
    Committed {
        sha: String,
        cost: f64,
    },
    Refused {
        reason: String,
        cost: f64,
        stop_run: bool,
    },
}

/// Aborts the lease heartbeat when the run ends, however it ends (also when its future is
/// dropped, which is how a killed runner looks from inside the process).
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs pipeline jobs for one configured repository.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: Arc<PipelineConfig>,
    owner: String,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("repo", &self.cfg.repo_key)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

/// `fix(post-mortem): <action> [PM-YYYY-MM-DD]`, the action starting lowercase unless its
/// first word is an acronym (`NFS`).
pub fn fix_subject(action: &str, pm_tag: &str) -> String {
    let action = one_line(action, 100);
    let first_word = action.split_whitespace().next().unwrap_or_default();
    let acronym = first_word.chars().filter(|c| c.is_alphabetic()).count() > 1
        && first_word
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(|c| c.is_uppercase());
    let mut chars = action.chars();
    let action = match chars.next() {
        Some(c) if !acronym => c.to_lowercase().chain(chars).collect(),
        _ => action.clone(),
    };
    format!("fix(post-mortem): {action} [{pm_tag}]")
}

const TRAILER: &str = "Warroom-Item:";

impl Runner {
    /// A runner; `owner` names it in leases (host and process, e.g. `host-1:4242`).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: PipelineConfig,
        owner: impl Into<String>,
    ) -> Self {
        let mut cfg = cfg;
        // git runs with `-C repo`, the file system calls from the process's directory: a
        // relative path would name two different places (work trees under repo/repo/...).
        for p in [
            Some(&mut cfg.repo),
            Some(&mut cfg.work_dir),
            cfg.site_dir.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs;
            }
        }
        Runner {
            store,
            clock,
            cfg: Arc::new(cfg),
            owner: owner.into(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    fn git(&self) -> Git {
        Git {
            dir: self.cfg.repo.clone(),
            name: self.cfg.author_name.clone(),
            email: self.cfg.author_email.clone(),
        }
    }

    fn lease(&self) -> time::Duration {
        time::Duration::try_from(self.cfg.lease).unwrap_or(time::Duration::minutes(2))
    }

    async fn log(&self, run: i64, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(pipeline.run = run, "{line}");
        if let Err(e) = self
            .store
            .append_run_log(run, self.clock.now(), &line)
            .await
        {
            tracing::warn!(error = %e, "could not store a pipeline log line");
        }
    }

    /// Queues a run for this repository (duplicates coalesce; see `PipelineStore::enqueue_run`).
    pub async fn enqueue(
        &self,
        trigger: &str,
        dedup_key: Option<&str>,
    ) -> Result<(RunRecord, bool), StoreError> {
        self.store
            .enqueue_run(&self.cfg.repo_key, trigger, dedup_key, self.clock.now())
            .await
    }

    /// Claims the next run of this repository, if any, and executes it.
    pub async fn run_next(&self) -> Result<Option<RunOutcome>, StoreError> {
        let Some(run) = self
            .store
            .claim_run(
                &self.cfg.repo_key,
                &self.owner,
                self.clock.now(),
                self.lease(),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.execute(run).await))
    }

    /// Executes a claimed run to its end. Never panics; failures are recorded on the run,
    /// logged, and notified.
    pub async fn execute(&self, run: RunRecord) -> RunOutcome {
        let id = run.id;
        let lost = Arc::new(AtomicBool::new(false));
        let _hb = {
            let (store, clock, owner, lease, lost) = (
                self.store.clone(),
                self.clock.clone(),
                self.owner.clone(),
                self.lease(),
                lost.clone(),
            );
            let every = (self.cfg.lease / 3).max(Duration::from_millis(200));
            Heartbeat(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.renew_run(id, &owner, clock.now(), lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not renew the pipeline lease"),
                    }
                }
            }))
        };
        self.log(
            id,
            format!(
                "run {id} started (attempt {}, trigger {}) on {}/{}",
                run.attempts, run.trigger, self.cfg.remote, self.cfg.branch
            ),
        )
        .await;
        let result = self.work(&run, &lost).await;
        let now = self.clock.now();
        match result {
            Ok(outcome) => {
                self.log(
                    id,
                    format!("run {id} {}: {}", outcome.status.as_str(), outcome.summary),
                )
                .await;
                if let Err(e) = self
                    .store
                    .finish_run(
                        id,
                        &self.owner,
                        outcome.status,
                        Some(&outcome.summary),
                        None,
                        now,
                    )
                    .await
                {
                    tracing::error!(error = %e, pipeline.run = id, "could not record the end of a run");
                }
                // A push or a person asked, so "nothing to do" is an answer; a sweep that found
                // nothing would otherwise post the same line to the channel every hour.
                let idle_sweep = run.trigger == "sweep"
                    && outcome.pushed.is_none()
                    && outcome.status == RunStatus::Succeeded;
                if !idle_sweep {
                    self.notify(
                        &format!(
                            "Post-mortem follow-ups: run {id} {}",
                            outcome.status.as_str()
                        ),
                        &outcome.summary,
                    )
                    .await;
                }
                outcome
            }
            Err(e) => {
                let msg = e.to_string();
                self.log(id, format!("run {id} FAILED at {msg}")).await;
                if e.step != "lease" {
                    if let Err(se) = self.store.release_items(id).await {
                        tracing::error!(error = %se, "could not release the items of a failed run");
                    }
                    let _ = self
                        .store
                        .finish_run(id, &self.owner, RunStatus::Failed, None, Some(&msg), now)
                        .await;
                    self.notify(&format!("Post-mortem follow-ups: run {id} FAILED"), &msg)
                        .await;
                }
                RunOutcome {
                    run: id,
                    status: RunStatus::Failed,
                    items: vec![],
                    summary: msg,
                    pushed: None,
                }
            }
        }
    }

    async fn notify(&self, title: &str, text: &str) {
        if self.cfg.notify_channels.is_empty() {
            tracing::info!(pipeline.notification = %title, "{text}");
            return;
        }
        let n = Notification {
            kind: NotificationKind::Info,
            incident: None,
            severity: None,
            title: title.to_string(),
            text: text.to_string(),
            incident_channel: None,
        };
        let msgs = self
            .cfg
            .notify_channels
            .iter()
            .map(|c| NewOutboxMessage {
                channel: c.clone(),
                notification: n.clone(),
                recipient: None,
                not_before: None,
            })
            .collect();
        if let Err(e) = self.store.enqueue(msgs, self.clock.now()).await {
            tracing::error!(error = %e, "could not enqueue the pipeline notification");
        }
    }

    async fn fetch(&self) -> Result<String, RunError> {
        let git = self.git();
        let (remote, branch) = (&self.cfg.remote, &self.cfg.branch);
        git.run(&[
            "fetch",
            "--quiet",
            remote,
            &format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}"),
        ])
        .await
        .map_err(git_err("fetch"))?;
        git.line(&[
            "rev-parse",
            "--verify",
            &format!("refs/remotes/{remote}/{branch}^{{commit}}"),
        ])
        .await
        .map_err(git_err("fetch"))
    }

    async fn approved(&self) -> Result<HashSet<String>, StoreError> {
        Ok(self
            .store
            .approvals(&self.cfg.repo_key)
            .await?
            .into_iter()
            .map(|a| a.item_id)
            .collect())
    }

    /// What a run would do now, without changing anything: the eligible items in order.
    pub async fn dry_run(&self) -> Result<Vec<PlannedItem>, RunError> {
        let tip = self.fetch().await?;
        let (docs, _warnings) = self.scan_docs(&tip).await?;
        let approved = self.approved().await?;
        let records: HashMap<(String, String), ItemState> = self
            .store
            .item_records(&self.cfg.repo_key)
            .await?
            .into_iter()
            .map(|r| ((r.postmortem, r.item_id), r.state))
            .collect();
        Ok(scan::candidates(&docs, &approved)
            .into_iter()
            .map(|c| {
                let doc = &docs[c.doc];
                PlannedItem {
                    postmortem: doc.path.clone(),
                    item_id: c.item.id.clone(),
                    priority: c.item.priority.as_str().into(),
                    item_type: c.item.item_type.as_str().into(),
                    action: c.item.action.clone(),
                    why: match c.why {
                        Eligibility::Safe => "safe".into(),
                        Eligibility::Approved => "approved".into(),
                    },
                    state: records
                        .get(&(doc.file_name.clone(), c.item.id.clone()))
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "pending".into()),
                    commit_message: fix_subject(&c.item.action, &doc.pm_tag()),
                }
            })
            .collect())
    }

    /// The open unsafe follow-ups the next run would record as needing a person (one
    /// Follow-up Implementation row each), for the dry run: without them, a dry run that lists
    /// nothing would hide the document commits the real run makes.
    pub async fn pending_review(&self) -> Result<Vec<PlannedReview>, RunError> {
        let tip = self.fetch().await?;
        let (docs, _) = self.scan_docs(&tip).await?;
        let approved = self.approved().await?;
        Ok(docs
            .iter()
            .flat_map(|d| {
                scan::unrecorded_for_review(&d.file_name, &d.text, &approved)
                    .into_iter()
                    .map(|i| PlannedReview {
                        postmortem: d.path.clone(),
                        item_id: i.id.clone(),
                        priority: i.priority.as_str().into(),
                        item_type: i.item_type.as_str().into(),
                        action: i.action.clone(),
                        reason: scan::review_reason(&i),
                    })
            })
            .collect())
    }

    /// The follow-up with this id in the post-mortems on the configured branch, if any, so
    /// that approving a mistyped or stale id is refused instead of waiting forever. Reads the
    /// remote's tip; when fetching fails (offline) the last tip a run fetched is read instead.
    pub async fn find_item(&self, id: &str) -> Result<Option<FoundItem>, RunError> {
        // A ref of its own and no FETCH_HEAD: a lookup (an HTTP request) must never take a
        // lock a run's own fetch needs at the same moment.
        let (remote, branch) = (&self.cfg.remote, &self.cfg.branch);
        let own = format!("refs/warroom/lookup/{branch}");
        let rev = match self
            .git()
            .run(&[
                "fetch",
                "--quiet",
                "--no-write-fetch-head",
                remote,
                &format!("+refs/heads/{branch}:{own}"),
            ])
            .await
        {
            Ok(_) => own,
            Err(_) => format!("refs/remotes/{remote}/{branch}"),
        };
        let (docs, _) = self.scan_docs(&rev).await?;
        Ok(docs.iter().find_map(|d| {
            d.parsed.item(id).map(|i| FoundItem {
                postmortem: d.path.clone(),
                item_id: i.id.clone(),
                priority: i.priority.as_str().into(),
                item_type: i.item_type.as_str().into(),
                action: i.action.clone(),
                open: i.status.is_open(),
                safe: i.safe,
            })
        }))
    }

    fn run_branch(run: i64) -> String {
        format!("warroom/run-{run}")
    }

    async fn work(&self, run: &RunRecord, lost: &AtomicBool) -> Result<RunOutcome, RunError> {
        let id = run.id;
        let started = Instant::now();
        let git = self.git();
        let tip = self.fetch().await?;
        let branch = Self::run_branch(id);
        let run_ref = format!("refs/heads/{branch}");
        if git
            .line(&["rev-parse", "--verify", "--quiet", &run_ref])
            .await
            .is_err()
        {
            git.run(&["branch", &branch, &tip])
                .await
                .map_err(git_err("branch"))?;
        } else {
            self.log(id, format!("resuming on {branch}")).await;
        }
        let (docs, warnings) = self.scan_docs(&run_ref).await?;
        for w in warnings {
            self.log(id, w).await;
        }
        let approved = self.approved().await?;
        let items = scan::candidates(&docs, &approved);
        let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
        self.log(
            id,
            format!(
                "{} post-mortems scanned, {} follow-ups to implement",
                docs.len(),
                items.len()
            ),
        )
        .await;
        // Commits this run already made (a crash may have come between the commit and the
        // store's record of it): recognised by their trailer, never redone.
        let committed = self.committed_on(&run_ref, &tip).await?;
        let mut spent = run.cost_usd;
        let mut done = 0i64;
        let mut reports: Vec<(usize, Candidate, ItemOutcome)> = Vec::new();
        let mut stopped: Option<String> = None;
        self.store.set_run_progress(id, 0, total, spent).await?;
        for cand in items {
            if lost.load(Ordering::SeqCst) {
                return Err(RunError::at(
                    "lease",
                    "this runner lost its lease; another runner resumes the run",
                ));
            }
            let doc = &docs[cand.doc];
            let key = format!("{}#{}", doc.file_name, cand.item.id);
            let claim = self
                .store
                .begin_item(
                    &self.cfg.repo_key,
                    &doc.file_name,
                    &cand.item.id,
                    id,
                    self.clock.now(),
                )
                .await?;
            let outcome = match claim {
                ItemClaim::Handled(rec) => {
                    done += 1;
                    match (rec.state, rec.commit_sha) {
                        (ItemState::Committed, Some(sha)) => {
                            self.log(
                                id,
                                format!("{key}: already committed as {} (resumed)", short(&sha)),
                            )
                            .await;
                            reports.push((
                                cand.doc,
                                cand.clone(),
                                ItemOutcome::Implemented { sha },
                            ));
                        }
                        (ItemState::Refused, _) => {
                            let reason = rec.reason.unwrap_or_default();
                            reports.push((cand.doc, cand.clone(), ItemOutcome::Refused { reason }));
                        }
                        // Done or handed over by an earlier run: its document says so once
                        // published; nothing to do or to record again.
                        _ => {}
                    }
                    self.store.set_run_progress(id, done, total, spent).await?;
                    continue;
                }
                ItemClaim::Fresh => {
                    if let Some(sha) = committed.get(&key) {
                        self.log(
                            id,
                            format!("{key}: found its commit {} on the run branch", short(sha)),
                        )
                        .await;
                        // Recorded now, so that the store agrees with the branch from here on.
                        self.store
                            .record_item(
                                &self.cfg.repo_key,
                                &doc.file_name,
                                &cand.item.id,
                                id,
                                ItemState::Committed,
                                Some(sha),
                                None,
                                0.0,
                                self.clock.now(),
                            )
                            .await?;
                        ItemOutcome::Implemented { sha: sha.clone() }
                    } else {
                        if spent >= self.cfg.budget_usd {
                            stopped = Some(format!(
                                "the budget of ${:.2} is used up (${spent:.2})",
                                self.cfg.budget_usd
                            ));
                            break;
                        }
                        let remaining = self.cfg.run_timeout.saturating_sub(started.elapsed());
                        let needed = self.cfg.command_timeout * 2 + Duration::from_secs(1);
                        if remaining <= needed {
                            stopped = Some("the run's time limit is reached".into());
                            break;
                        }
                        let limit = self.cfg.item_timeout.min(remaining - needed);
                        self.log(
                            id,
                            format!(
                                "{key}: {} {} \"{}\"",
                                cand.item.priority.as_str(),
                                cand.item.item_type.as_str(),
                                one_line(&cand.item.action, 80)
                            ),
                        )
                        .await;
                        match self
                            .attempt(id, doc, &cand, spent, limit, lost)
                            .await
                            .map_err(|mut e| {
                                e.item = Some(key.clone());
                                e
                            })? {
                            Attempt::Committed { sha, cost } => {
                                spent += cost;
                                self.store
                                    .record_item(
                                        &self.cfg.repo_key,
                                        &doc.file_name,
                                        &cand.item.id,
                                        id,
                                        ItemState::Committed,
                                        Some(&sha),
                                        None,
                                        cost,
                                        self.clock.now(),
                                    )
                                    .await?;
                                self.log(
                                    id,
                                    format!("{key}: committed {} (${cost:.2})", short(&sha)),
                                )
                                .await;
                                ItemOutcome::Implemented { sha }
                            }
                            Attempt::Refused {
                                reason,
                                cost,
                                stop_run,
                            } => {
                                spent += cost;
                                self.store
                                    .record_item(
                                        &self.cfg.repo_key,
                                        &doc.file_name,
                                        &cand.item.id,
                                        id,
                                        ItemState::Refused,
                                        None,
                                        Some(&reason),
                                        cost,
                                        self.clock.now(),
                                    )
                                    .await?;
                                self.log(id, format!("{key}: refused: {reason}")).await;
                                if stop_run {
                                    stopped = Some(reason.clone());
                                }
                                ItemOutcome::Refused { reason }
                            }
                        }
                    }
                }
            };
            done += 1;
            self.store.set_run_progress(id, done, total, spent).await?;
            reports.push((cand.doc, cand, outcome));
            if stopped.is_some() {
                break;
            }
        }
        let status = if stopped.is_some() {
            RunStatus::Stopped
        } else {
            RunStatus::Succeeded
        };
        // Items attempted in this run (approved ones) are reported with their outcome instead.
        let attempted: HashSet<&str> = reports.iter().map(|(_, c, _)| c.item.id.as_str()).collect();
        let review: Vec<(String, warroom_postmortem::Item)> = docs
            .iter()
            .flat_map(|d| {
                scan::unrecorded_for_review(&d.file_name, &d.text, &approved)
                    .into_iter()
                    .map(|i| (d.file_name.clone(), i))
            })
            .filter(|(_, i)| !attempted.contains(i.id.as_str()))
            .collect();
        let for_review = review.len();
        if reports.is_empty() && for_review == 0 {
            let _ = git.run(&["branch", "-D", &branch]).await;
            let summary = match &stopped {
                Some(why) => format!("stopped before any follow-up: {why}"),
                None => "nothing to do: no pending safe or approved follow-ups".to_string(),
            };
            self.publish_site(id, &tip).await;
            return Ok(RunOutcome {
                run: id,
                status,
                items: vec![],
                summary,
                pushed: None,
            });
        }
        let (pushed, final_shas) = self.publish(id, &docs, &reports, &approved).await?;
        self.store.publish_items(id, self.clock.now()).await?;
        let _ = git.run(&["branch", "-D", &branch]).await;
        self.publish_site(id, &pushed).await;
        let items: Vec<ItemReport> = reports
            .iter()
            .map(|(d, c, o)| ItemReport {
                postmortem: docs[*d].file_name.clone(),
                item_id: c.item.id.clone(),
                action: c.item.action.clone(),
                outcome: match o {
                    ItemOutcome::Implemented { sha } => ItemOutcome::Implemented {
                        sha: final_shas.get(sha).cloned().unwrap_or_else(|| sha.clone()),
                    },
                    other => other.clone(),
                },
            })
            .collect();
        let implemented = items
            .iter()
            .filter(|i| matches!(i.outcome, ItemOutcome::Implemented { .. }))
            .count();
        let refused = items.len() - implemented;
        let mut summary = if items.is_empty() {
            "nothing to implement".to_string()
        } else {
            format!("{implemented} implemented, {refused} need human review, ${spent:.2} spent")
        };
        if for_review > 0 {
            summary.push_str(&format!(
                ", {for_review} unsafe follow-ups recorded for a person"
            ));
        }
        summary.push_str(&format!(
            "; pushed {} to {}/{}",
            short(&pushed),
            self.cfg.remote,
            self.cfg.branch
        ));
        for i in &items {
            match &i.outcome {
                ItemOutcome::Implemented { sha } => summary.push_str(&format!(
                    "\n- done {}: {} ({})",
                    i.postmortem,
                    one_line(&i.action, 80),
                    self.commit_link(sha)
                )),
                ItemOutcome::Refused { reason } => summary.push_str(&format!(
                    "\n- needs human review {}: {} ({reason})",
                    i.postmortem,
                    one_line(&i.action, 80)
                )),
            }
        }
        for (pm, i) in &review {
            summary.push_str(&format!(
                "\n- needs a person {pm}: {} ({} {}; `warroom pipeline approve {}`)",
                one_line(&i.action, 80),
                i.priority.as_str(),
                i.item_type.as_str(),
                i.id
            ));
        }
        if let Some(why) = &stopped {
            summary.push_str(&format!("\nstopped early: {why}"));
        }
        Ok(RunOutcome {
            run: id,
            status,
            items,
            summary,
            pushed: Some(pushed),
        })
    }

    fn commit_link(&self, sha: &str) -> String {
        match &self.cfg.commit_url {
            Some(t) => t.replace("{sha}", sha),
            None => short(sha),
        }
    }

    async fn committed_on(
        &self,
        run_ref: &str,
        tip: &str,
    ) -> Result<HashMap<String, String>, RunError> {
        let log = self
            .git()
            .run(&["log", "--format=%H%x00%B%x1e", &format!("{tip}..{run_ref}")])
            .await
            .map_err(git_err("scan"))?;
        let mut out = HashMap::new();
        for entry in log.split('\u{1e}') {
            let Some((sha, body)) = entry.trim().split_once('\0') else {
                continue;
            };
            for l in body.lines() {
                if let Some(k) = l.strip_prefix(TRAILER) {
                    out.insert(k.trim().to_string(), sha.trim().to_string());
                }
            }
        }
        Ok(out)
    }

    /// The post-mortems at `rev`, and what the engine warned about while reading them.
    async fn scan_docs(&self, rev: &str) -> Result<(Vec<Doc>, Vec<String>), RunError> {
        scan::read_docs(&self.git(), rev, &self.cfg.postmortems_dir)
            .await
            .map_err(git_err("scan"))
    }

    /// Clears what a crashed attempt left at `path` (its work tree and `branch`) and makes sure
    /// the work folder exists; failures are reported as `step`.
    async fn clear_worktree(
        &self,
        path: &std::path::Path,
        branch: &str,
        step: &'static str,
    ) -> Result<(), RunError> {
        self.remove_worktree(path, branch).await;
        std::fs::create_dir_all(&self.cfg.work_dir).map_err(|e| {
            RunError::at(
                step,
                format!("cannot create {}: {e}", self.cfg.work_dir.display()),
            )
        })
    }

    /// A new work tree at `path` on a new `branch` from `start`; failures are reported as
    /// `step`.
    async fn add_worktree(
        &self,
        path: &std::path::Path,
        branch: &str,
        start: &str,
        step: &'static str,
    ) -> Result<Git, RunError> {
        let git = self.git();
        git.run(&[
            "worktree",
            "add",
            "--quiet",
            "-b",
            branch,
            &path.display().to_string(),
            start,
        ])
        .await
        .map_err(git_err(step))?;
        Ok(git.at(path))
    }

    async fn remove_worktree(&self, path: &std::path::Path, branch: &str) {
        let git = self.git();
        let p = path.display().to_string();
        let _ = git.run(&["worktree", "remove", "--force", &p]).await;
        let _ = std::fs::remove_dir_all(path);
        let _ = git.run(&["worktree", "prune"]).await;
        let _ = git.run(&["branch", "-D", branch]).await;
    }
}
