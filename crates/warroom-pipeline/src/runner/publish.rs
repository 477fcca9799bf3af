//! Publishing a run: the post-mortem edits, the push with one rebase-and-retry, the site.

use std::collections::{BTreeMap, HashMap, HashSet};

use warroom_postmortem::{self as pm, EditStatus};

use super::{Candidate, Doc, ItemOutcome, RunError, Runner, git_err, one_line, short};
use crate::scan;

impl Runner {
    /// Marks the items in their post-mortems, appends the implementation rows, commits, and
    /// pushes. On a rejected push: fetch, rebuild on the new tip (cherry-picking the item
    /// commits and redoing the document edits on the new text), and push once more.
    pub(super) async fn publish(
        &self,
        run: i64,
        docs: &[Doc],
        reports: &[(usize, Candidate, ItemOutcome)],
        approved: &HashSet<String>,
    ) -> Result<(String, HashMap<String, String>), RunError> {
        let run_ref = format!("refs/heads/{}", Self::run_branch(run));
        match self
            .publish_on(run, docs, reports, approved, &run_ref, false)
            .await?
        {
            Ok(done) => Ok(done),
            Err(first) => {
                self.log(
                    run,
                    format!("push rejected ({first}); fetching and rebasing once"),
                )
                .await;
                let tip = self.fetch().await?;
                match self
                    .publish_on(run, docs, reports, approved, &tip, true)
                    .await?
                {
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
        approved: &HashSet<String>,
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
            // Every document, not only those with reports: one holding only unsafe items gets
            // its "Needs human review" rows too.
            for (d, doc) in docs.iter().enumerate() {
                let entries = by_doc.remove(&d).unwrap_or_default();
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
                for &(c, o) in &entries {
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
                // Read from the base's text, after this run's own edits, so that a row written
                // by an earlier (or interrupted) run, or by a person, is never written again.
                let attempted: HashSet<&str> = entries.iter().map(|(c, _)| c.item.id.as_str()).collect();
                let mut review = 0usize;
                for item in scan::unrecorded_for_review(&doc.file_name, &text, approved) {
                    if attempted.contains(item.id.as_str()) {
                        continue;
                    }
                    review += 1;
                    rows.push(pm::ImplementationRow {
                        date: None,
                        action: item.action.clone(),
                        priority: item.priority,
                        item_type: item.item_type,
                        commit: None,
                        implemented_by: format!("Needs human review: {}", scan::review_reason(&item)),
                    });
                }
                if rows.is_empty() {
                    continue;
                }
                if review > 0 {
                    self.log(run, format!("{}: {review} follow-ups recorded as needing human review", doc.path)).await;
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
    pub(super) async fn publish_site(&self, run: i64, rev: &str) {
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
