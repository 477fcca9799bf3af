//! Executing a run: claim, scan, one guarded attempt per item, then publish.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use warroom_domain::notify::{Notification, NotificationKind};
use warroom_postmortem::{self as pm, EditStatus};
use warroom_store::{
    Clock, ItemClaim, ItemState, NewOutboxMessage, RunRecord, RunStatus, Store, StoreError,
};

use crate::{
    config::PipelineConfig,
    git::{Git, GitError},
    guard, process,
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
                self.notify(
                    &format!(
                        "Post-mortem follow-ups: run {id} {}",
                        outcome.status.as_str()
                    ),
                    &outcome.summary,
                )
                .await;
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
        let (docs, _warnings) = scan::read_docs(&self.git(), &tip, &self.cfg.postmortems_dir)
            .await
            .map_err(git_err("scan"))?;
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
        let (docs, warnings) = scan::read_docs(&git, &run_ref, &self.cfg.postmortems_dir)
            .await
            .map_err(git_err("scan"))?;
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
        if reports.is_empty() {
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
        let (pushed, final_shas) = self.publish(id, &docs, &reports, &tip).await?;
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
        let mut summary = format!(
            "{implemented} implemented, {refused} need human review, ${spent:.2} spent; pushed {} to {}/{}",
            short(&pushed),
            self.cfg.remote,
            self.cfg.branch
        );
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

    async fn remove_worktree(&self, path: &std::path::Path, branch: &str) {
        let git = self.git();
        let p = path.display().to_string();
        let _ = git.run(&["worktree", "remove", "--force", &p]).await;
        let _ = std::fs::remove_dir_all(path);
        let _ = git.run(&["worktree", "prune"]).await;
        let _ = git.run(&["branch", "-D", branch]).await;
    }

    fn item_env(&self, doc: &Doc, cand: &Candidate) -> BTreeMap<String, String> {
        let item = &cand.item;
        let mut env = BTreeMap::new();
        env.insert("WARROOM_ITEM_ID".into(), item.id.clone());
        env.insert("WARROOM_ITEM_ACTION".into(), item.action.clone());
        env.insert("WARROOM_ITEM_TYPE".into(), item.item_type.as_str().into());
        env.insert(
            "WARROOM_ITEM_PRIORITY".into(),
            item.priority.as_str().into(),
        );
        env.insert(
            "WARROOM_ITEM_DETAILS".into(),
            item.details.clone().unwrap_or_default(),
        );
        env.insert("WARROOM_POSTMORTEM".into(), doc.path.clone());
        env.insert(
            "WARROOM_PROTECTED_PATHS".into(),
            self.cfg.protected_paths.join("\n"),
        );
        env
    }

    fn prompt(&self, doc: &Doc, cand: &Candidate, budget_left: f64) -> String {
        let item = &cand.item;
        let input = json!({
            "item": {
                "id": item.id, "action": item.action, "type": item.item_type.as_str(),
                "priority": item.priority.as_str(), "details": item.details, "line": item.line,
            },
            "postmortem": doc.path,
            "guardrails": {
                "protected_paths": self.cfg.protected_paths,
                "no_destroy": "the plan must not delete or replace any resource",
                "max_diff_lines": self.cfg.max_diff_lines,
                "budget_left_usd": budget_left,
                "do_not_commit": "leave the change uncommitted in the work tree; warroom commits it",
            }
        });
        format!(
            "Implement this follow-up from the post-mortem {}: \"{}\" ({} {}).\n\
             Work only in the current directory. Do not touch files matching: {}. \
             Do not delete or replace infrastructure. Keep the change under {} lines. \
             Do not edit the post-mortem and do not commit; warroom reviews, commits and records it.\n\n\
             Input as JSON:\n{}\n",
            doc.path,
            one_line(&item.action, 200),
            item.priority.as_str(),
            item.item_type.as_str(),
            self.cfg.protected_paths.join(", "),
            self.cfg.max_diff_lines,
            input
        )
    }

    async fn attempt(
        &self,
        run: i64,
        doc: &Doc,
        cand: &Candidate,
        spent: f64,
        limit: Duration,
        lost: &AtomicBool,
    ) -> Result<Attempt, RunError> {
        let item = &cand.item;
        let git = self.git();
        let run_branch = Self::run_branch(run);
        let branch = format!("warroom/run-{run}-item-{}", item.id);
        let path: PathBuf = self.cfg.work_dir.join(format!("run-{run}-{}", item.id));
        // Leftovers of an attempt a crash interrupted.
        self.remove_worktree(&path, &branch).await;
        std::fs::create_dir_all(&self.cfg.work_dir).map_err(|e| {
            RunError::at(
                "worktree",
                format!("cannot create {}: {e}", self.cfg.work_dir.display()),
            )
        })?;
        let start = git
            .line(&["rev-parse", "--verify", &format!("refs/heads/{run_branch}")])
            .await
            .map_err(git_err("worktree"))?;
        git.run(&[
            "worktree",
            "add",
            "--quiet",
            "-b",
            &branch,
            &path.display().to_string(),
            &start,
        ])
        .await
        .map_err(git_err("worktree"))?;
        let wt = git.at(&path);
        let refuse = |reason: String, cost: f64, stop_run: bool| Attempt::Refused {
            reason,
            cost,
            stop_run,
        };
        let result: Result<Attempt, RunError> = async {
            let out = process::run(process::Invocation {
                argv: &self.cfg.agent,
                cwd: &path,
                env: self.item_env(doc, cand),
                stdin: Some(self.prompt(doc, cand, self.cfg.budget_usd - spent)),
                timeout: limit,
            })
            .await;
            let out = match out {
                Ok(o) => o,
                // Not this item's fault: a missing program would refuse every item, handing
                // them all to people for a configuration error. The run fails instead.
                Err(e) => return Err(RunError::at("agent", e)),
            };
            let result: Option<serde_json::Value> = out
                .stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok().filter(|v| v.is_object()))
                .or_else(|| serde_json::from_str(out.stdout.trim()).ok());
            let cost = result.as_ref().and_then(|v| v.get("total_cost_usd")).and_then(|c| c.as_f64());
            if !out.success() {
                let what = if out.exit == process::Exit::TimedOut {
                    format!("the agent timed out after {}s; its process group was killed", limit.as_secs())
                } else {
                    format!("the agent failed: {}", out.describe_failure())
                };
                let cost = cost.unwrap_or(0.0);
                return Ok(refuse(what, cost, spent + cost > self.cfg.budget_usd));
            }
            let Some(cost) = cost.filter(|c| c.is_finite() && *c >= 0.0) else {
                return Ok(refuse("the agent's output has no total_cost_usd, so the budget cannot be enforced".into(), 0.0, false));
            };
            if spent + cost > self.cfg.budget_usd {
                return Ok(refuse(
                    format!("the budget of ${:.2} would be exceeded (${:.2} spent, this item cost ${cost:.2}); the run stops", self.cfg.budget_usd, spent),
                    cost,
                    true,
                ));
            }
            if result.as_ref().and_then(|v| v.get("is_error")).and_then(|e| e.as_bool()) == Some(true) {
                return Ok(refuse("the agent reported an error".into(), cost, false));
            }
            wt.run(&["add", "-A"]).await.map_err(git_err("diff"))?;
            // Against the start, so that commits the agent made itself are reviewed too.
            wt.run(&["reset", "--quiet", "--soft", &start]).await.map_err(git_err("diff"))?;
            let names = wt.run(&["diff", "--cached", "--name-only", "-z", &start]).await.map_err(git_err("diff"))?;
            let paths: Vec<String> = names.split('\0').filter(|p| !p.is_empty()).map(String::from).collect();
            if paths.is_empty() {
                return Ok(refuse("the agent made no change".into(), cost, false));
            }
            // The post-mortems are warroom's to update, from what it saw happen; an agent
            // marking its own item Done would skip the record.
            let pm_dir = format!("{}/", self.cfg.postmortems_dir.trim_end_matches('/'));
            if let Some(p) = paths.iter().find(|p| p.starts_with(&pm_dir)) {
                return Ok(refuse(format!("the change edits the post-mortem folder ({p}); warroom records the outcome itself"), cost, false));
            }
            if let Some((p, g)) = guard::protected_hit(&self.cfg.protected_paths, &paths) {
                return Ok(refuse(format!("the change touches the protected path {p} (matches {g})"), cost, false));
            }
            let numstat = wt.run(&["diff", "--cached", "--numstat", &start]).await.map_err(git_err("diff"))?;
            let lines = guard::numstat_lines(&numstat, self.cfg.max_diff_lines);
            if lines > self.cfg.max_diff_lines {
                return Ok(refuse(format!("the change is {lines} lines, over the limit of {}", self.cfg.max_diff_lines), cost, false));
            }
            if let Some(plan) = &self.cfg.plan {
                let out = process::run(process::Invocation {
                    argv: plan,
                    cwd: &path,
                    env: self.item_env(doc, cand),
                    stdin: None,
                    timeout: self.cfg.command_timeout,
                })
                .await;
                let out = match out {
                    Ok(o) if o.success() => o,
                    Ok(o) => return Ok(refuse(format!("the plan command {}", o.describe_failure()), cost, false)),
                    Err(e) => return Err(RunError::at("plan", e)),
                };
                match guard::plan_destroys(&out.stdout) {
                    Ok(d) if d.is_empty() => {}
                    Ok(d) => {
                        let list: Vec<String> = d.iter().map(|x| format!("{} ({})", x.address, x.actions.join("+"))).collect();
                        return Ok(refuse(format!("the plan would delete or replace {}", list.join(", ")), cost, false));
                    }
                    Err(e) => return Ok(refuse(e, cost, false)),
                }
            }
            if let Some(apply) = &self.cfg.apply {
                match process::run(process::Invocation {
                    argv: apply,
                    cwd: &path,
                    env: self.item_env(doc, cand),
                    stdin: None,
                    timeout: self.cfg.command_timeout,
                })
                .await
                {
                    Ok(o) if o.success() => {}
                    Ok(o) => return Ok(refuse(format!("the apply command {}", o.describe_failure()), cost, false)),
                    Err(e) => return Err(RunError::at("apply", e)),
                }
            }
            // A runner that lost its lease must not commit: another one is resuming the run.
            if lost.load(Ordering::SeqCst) {
                return Err(RunError::at("lease", "this runner lost its lease before committing; another runner resumes the run"));
            }
            let subject = fix_subject(&item.action, &doc.pm_tag());
            let body = format!("{TRAILER} {}#{}\nWarroom-Run: {run}", doc.file_name, item.id);
            wt.run(&["commit", "--quiet", "-m", &subject, "-m", &body]).await.map_err(git_err("commit"))?;
            let sha = wt.line(&["rev-parse", "HEAD"]).await.map_err(git_err("commit"))?;
            // Compare-and-swap: the run branch moves only from the commit this item started on.
            git.run(&["update-ref", &format!("refs/heads/{run_branch}"), &sha, &start])
                .await
                .map_err(git_err("commit"))?;
            Ok(Attempt::Committed { sha, cost })
        }
        .await;
        self.remove_worktree(&path, &branch).await;
        result
    }

    /// Marks the items in their post-mortems, appends the implementation rows, commits, and
    /// pushes. On a rejected push: fetch, rebuild on the new tip (cherry-picking the item
    /// commits and redoing the document edits on the new text), and push once more.
    async fn publish(
        &self,
        run: i64,
        docs: &[Doc],
        reports: &[(usize, Candidate, ItemOutcome)],
        _tip: &str,
    ) -> Result<(String, HashMap<String, String>), RunError> {
        let run_ref = format!("refs/heads/{}", Self::run_branch(run));
        match self.publish_on(run, docs, reports, &run_ref, false).await? {
            Ok(done) => Ok(done),
            Err(first) => {
                self.log(
                    run,
                    format!("push rejected ({first}); fetching and rebasing once"),
                )
                .await;
                let tip = self.fetch().await?;
                match self.publish_on(run, docs, reports, &tip, true).await? {
                    Ok(done) => Ok(done),
                    Err(second) => Err(RunError::at(
                        "push",
                        format!(
                            "the push was rejected again after a rebase: {second}; push by hand"
                        ),
                    )),
                }
            }
        }
    }

    /// One publishing attempt on `base`. The outer error is fatal; the inner one is a rejected
    /// push, which the caller retries once.
    async fn publish_on(
        &self,
        run: i64,
        docs: &[Doc],
        reports: &[(usize, Candidate, ItemOutcome)],
        base: &str,
        cherry_pick: bool,
    ) -> Result<Result<(String, HashMap<String, String>), String>, RunError> {
        let git = self.git();
        let branch = format!("warroom/run-{run}-publish");
        let path = self.cfg.work_dir.join(format!("run-{run}-publish"));
        self.remove_worktree(&path, &branch).await;
        std::fs::create_dir_all(&self.cfg.work_dir).map_err(|e| {
            RunError::at(
                "publish",
                format!("cannot create {}: {e}", self.cfg.work_dir.display()),
            )
        })?;
        git.run(&[
            "worktree",
            "add",
            "--quiet",
            "-b",
            &branch,
            &path.display().to_string(),
            base,
        ])
        .await
        .map_err(git_err("publish"))?;
        let wt = git.at(&path);
        let result = async {
            let mut shas: HashMap<String, String> = HashMap::new();
            for (_, c, o) in reports {
                if let ItemOutcome::Implemented { sha } = o {
                    let on_base = wt
                        .run(&["merge-base", "--is-ancestor", sha, "HEAD"])
                        .await
                        .is_ok();
                    // Already on the base: an interrupted attempt pushed it before the crash.
                    let new = if cherry_pick && !on_base {
                        if let Err(e) = wt.run(&["cherry-pick", "--allow-empty", sha]).await {
                            let _ = wt.run(&["cherry-pick", "--abort"]).await;
                            return Err(RunError {
                                item: Some(c.item.id.clone()),
                                step: "push",
                                error: format!(
                                    "the remote branch changed in a way that conflicts with {}: {}; rebase by hand (the fixes are on branch {} in {})",
                                    short(sha),
                                    one_line(&e.stderr, 300),
                                    Self::run_branch(run),
                                    self.cfg.repo.display()
                                ),
                            });
                        }
                        wt.line(&["rev-parse", "HEAD"]).await.map_err(git_err("publish"))?
                    } else {
                        sha.clone()
                    };
                    shas.insert(sha.clone(), new);
                }
            }
            let today = self.clock.now().date();
            let mut by_doc: BTreeMap<usize, Vec<(&Candidate, &ItemOutcome)>> = BTreeMap::new();
            for (d, c, o) in reports {
                by_doc.entry(*d).or_default().push((c, o));
            }
            for (d, entries) in by_doc {
                let doc = &docs[d];
                let file = path.join(&doc.path);
                let mut text = match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        // Moved or deleted on the remote meanwhile: the fixes still go out.
                        self.log(run, format!("{}: not updated, cannot read it: {e}", doc.path)).await;
                        continue;
                    }
                };
                // What the base already says, so that a publish redone after a crash (or on a
                // tip where someone already recorded the item) never adds a row twice.
                let current = pm::parse_document(&doc.file_name, &text);
                let mut rows = Vec::new();
                for (c, o) in entries {
                    let already = current.item(&c.item.id).map(|i| i.status);
                    let wanted = match o {
                        ItemOutcome::Implemented { .. } => pm::StatusKind::Done,
                        ItemOutcome::Refused { .. } => pm::StatusKind::NeedsHumanReview,
                    };
                    if already == Some(wanted) {
                        continue;
                    }
                    let (status, row) = match o {
                        ItemOutcome::Implemented { sha } => {
                            let sha = shas.get(sha).cloned().unwrap_or_else(|| sha.clone());
                            (
                                EditStatus::Done,
                                pm::ImplementationRow {
                                    date: Some(today),
                                    action: c.item.action.clone(),
                                    priority: c.item.priority,
                                    item_type: c.item.item_type,
                                    commit: Some(pm::CommitRef {
                                        sha: short(&sha),
                                        url: self.cfg.commit_url.as_ref().map(|u| u.replace("{sha}", &sha)),
                                    }),
                                    implemented_by: self.cfg.implemented_by.clone(),
                                },
                            )
                        }
                        ItemOutcome::Refused { reason } => (
                            EditStatus::NeedsHumanReview,
                            pm::ImplementationRow {
                                date: None,
                                action: c.item.action.clone(),
                                priority: c.item.priority,
                                item_type: c.item.item_type,
                                commit: None,
                                implemented_by: format!("Needs human review: {}", one_line(reason, 160)),
                            },
                        ),
                    };
                    match pm::set_item_status(&doc.file_name, &text, &c.item.id, status) {
                        Ok(t) => text = t,
                        // The remote text changed under us (rebase) or the item is written in a
                        // way the editor refuses: the row still records what happened.
                        Err(e) => self.log(run, format!("{}: status not changed: {e}", doc.path)).await,
                    }
                    rows.push(row);
                }
                if rows.is_empty() {
                    continue;
                }
                text = pm::append_implementation_rows(&text, &rows);
                let tmp = file.with_extension("md.warroom-tmp");
                std::fs::write(&tmp, &text)
                    .and_then(|_| std::fs::rename(&tmp, &file))
                    .map_err(|e| RunError::at("publish", format!("cannot write {}: {e}", doc.path)))?;
                wt.run(&["add", "--", &doc.path]).await.map_err(git_err("publish"))?;
                let msg = format!("docs: update post-mortem follow-up [{}] [ci skip]", doc.pm_tag());
                wt.run(&["commit", "--quiet", "-m", &msg]).await.map_err(git_err("publish"))?;
            }
            let head = wt.line(&["rev-parse", "HEAD"]).await.map_err(git_err("publish"))?;
            match wt
                .run(&["push", "--quiet", &self.cfg.remote, &format!("HEAD:refs/heads/{}", self.cfg.branch)])
                .await
            {
                Ok(_) => Ok(Ok((head, shas))),
                Err(e) => Ok(Err(e.stderr)),
            }
        }
        .await;
        self.remove_worktree(&path, &branch).await;
        if let Ok(Ok((head, _))) = &result {
            self.log(
                run,
                format!(
                    "pushed {} to {}/{}",
                    short(head),
                    self.cfg.remote,
                    self.cfg.branch
                ),
            )
            .await;
            // Keep the local branch in step for the next run's fetch-less reads.
            let _ = git
                .run(&[
                    "update-ref",
                    &format!("refs/remotes/{}/{}", self.cfg.remote, self.cfg.branch),
                    head,
                ])
                .await;
        }
        result
    }

    /// Rebuilds the post-mortem site from the folder at `rev` into `site_dir`. A failure is
    /// logged, never fails the run: the push already happened.
    async fn publish_site(&self, run: i64, rev: &str) {
        let Some(out) = &self.cfg.site_dir else {
            return;
        };
        let docs = match scan::read_docs(&self.git(), rev, &self.cfg.postmortems_dir).await {
            Ok((d, _)) => d,
            Err(e) => {
                self.log(run, format!("site not rebuilt: {e}")).await;
                return;
            }
        };
        let mut sources = Vec::new();
        for d in &docs {
            match self
                .git()
                .run(&["show", &format!("{rev}:{}", d.path)])
                .await
            {
                Ok(text) => sources.push(pm::SourceDoc {
                    file_name: d.file_name.clone(),
                    text,
                }),
                Err(e) => {
                    self.log(run, format!("site not rebuilt: {e}")).await;
                    return;
                }
            }
        }
        let files = match pm::build_site(&sources) {
            Ok(f) => f,
            Err(e) => {
                self.log(run, format!("site not rebuilt: {e}")).await;
                return;
            }
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(out)?;
            for f in &files {
                let tmp = out.join(format!(".{}.tmp", f.path));
                std::fs::write(&tmp, &f.contents)?;
                std::fs::rename(&tmp, out.join(&f.path))?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => {
                self.log(
                    run,
                    format!("site rebuilt: {} pages in {}", files.len(), out.display()),
                )
                .await
            }
            Err(e) => {
                self.log(
                    run,
                    format!("site not rebuilt: cannot write {}: {e}", out.display()),
                )
                .await
            }
        }
    }
}
