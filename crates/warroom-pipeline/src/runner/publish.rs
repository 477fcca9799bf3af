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
        self.clear_worktree(&path, &branch, "publish").await?;
        let wt = self.add_worktree(&path, &branch, base, "publish").await?;
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

    /// Rebuilds the post-mortem site from the configured post-mortem folder at `rev` (the
    /// pushed tip), into `site_dir` and onto `site_branch`, whichever are configured. A failure
    /// is logged, never fails the run: the push already happened.
    pub(super) async fn publish_site(&self, run: i64, rev: &str) {
        if self.cfg.site_dir.is_none() && self.cfg.site_branch.is_none() {
            return;
        }
        let docs = match scan::read_docs(&self.git(), rev, &self.cfg.postmortems_dir).await {
            Ok((d, _)) => d,
            Err(e) => {
                self.log(run, format!("site not rebuilt: {e}")).await;
                return;
            }
        };
        let sources: Vec<pm::SourceDoc> = docs
            .into_iter()
            .map(|d| pm::SourceDoc {
                file_name: d.file_name,
                text: d.text,
            })
            .collect();
        let files = match pm::build_site(&sources) {
            Ok(f) => f,
            Err(e) => {
                self.log(
                    run,
                    format!("site not rebuilt from {}: {e}", self.cfg.postmortems_dir),
                )
                .await;
                return;
            }
        };
        if let Some(out) = &self.cfg.site_dir {
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(out)?;
                for f in &files {
                    let tmp = out.join(format!(".{}.tmp", f.path));
                    std::fs::write(&tmp, &f.contents)?;
                    std::fs::rename(&tmp, out.join(&f.path))?;
                }
                Ok(())
            };
            let line = match write() {
                Ok(()) => format!("site rebuilt: {} pages in {}", files.len(), out.display()),
                Err(e) => format!("site not rebuilt: cannot write {}: {e}", out.display()),
            };
            self.log(run, line).await;
        }
        if let Some(branch) = &self.cfg.site_branch {
            // Someone (or another warroom) may push the site branch between our fetch and our
            // push; one more try on the new tip covers that, as for the post-mortems.
            let mut last = String::new();
            for _ in 0..2 {
                match self.commit_site(run, branch, rev, &files).await {
                    Ok(line) => {
                        self.log(run, line).await;
                        return;
                    }
                    Err(e) => last = e,
                }
            }
            self.log(
                run,
                format!("site not published to {}/{branch}: {last}", self.cfg.remote),
            )
            .await;
        }
    }

    /// Commits the site's files as the whole tree of `branch` (keeping a `CNAME` already
    /// there, which GitHub Pages needs for a custom domain) on top of the remote's tip, or as
    /// its first commit when the branch does not exist, and pushes it. Built with a scratch
    /// index, so neither the clone's work tree nor its index is touched.
    async fn commit_site(
        &self,
        run: i64,
        branch: &str,
        rev: &str,
        files: &[pm::SiteFile],
    ) -> Result<String, String> {
        let git = self.git();
        let remote = &self.cfg.remote;
        let tracking = format!("refs/remotes/{remote}/{branch}");
        let heads = git
            .line(&[
                "ls-remote",
                "--heads",
                remote,
                &format!("refs/heads/{branch}"),
            ])
            .await
            .map_err(|e| e.to_string())?;
        let parent = if heads.is_empty() {
            None
        } else {
            git.run(&[
                "fetch",
                "--quiet",
                remote,
                &format!("+refs/heads/{branch}:{tracking}"),
            ])
            .await
            .map_err(|e| e.to_string())?;
            Some(
                git.line(&["rev-parse", "--verify", &format!("{tracking}^{{commit}}")])
                    .await
                    .map_err(|e| e.to_string())?,
            )
        };
        let scratch = self.cfg.work_dir.join(format!("run-{run}-site"));
        let _ = std::fs::remove_dir_all(&scratch);
        let result = async {
            std::fs::create_dir_all(&scratch)
                .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
            let mut paths = Vec::new();
            for f in files {
                let p = scratch.join(&f.path);
                std::fs::write(&p, &f.contents)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                paths.push(p.display().to_string());
            }
            let mut args = vec!["hash-object", "-w", "--"];
            args.extend(paths.iter().map(String::as_str));
            let blobs = git.run(&args).await.map_err(|e| e.to_string())?;
            let mut info: Vec<String> = blobs
                .lines()
                .zip(files)
                .map(|(sha, f)| format!("100644,{sha},{}", f.path))
                .collect();
            if let Some(p) = &parent {
                let cname = git
                    .line(&["ls-tree", p, "--", "CNAME"])
                    .await
                    .unwrap_or_default();
                if let Some((meta, _)) = cname.split_once('\t') {
                    let f: Vec<&str> = meta.split_whitespace().collect();
                    if let [mode, "blob", sha] = f.as_slice() {
                        info.push(format!("{mode},{sha},CNAME"));
                    }
                }
            }
            let index = scratch.join("index");
            let env = [("GIT_INDEX_FILE", index.as_path())];
            let mut args = vec!["update-index", "--add"];
            for i in &info {
                args.extend(["--cacheinfo", i.as_str()]);
            }
            git.run_env(&args, &env).await.map_err(|e| e.to_string())?;
            let tree = String::from_utf8_lossy(
                &git.run_env(&["write-tree"], &env)
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .trim()
            .to_string();
            if let Some(p) = &parent {
                let old = git
                    .line(&["rev-parse", &format!("{p}^{{tree}}")])
                    .await
                    .map_err(|e| e.to_string())?;
                if old == tree {
                    return Ok(format!(
                        "site unchanged on {remote}/{branch} ({})",
                        short(p)
                    ));
                }
            }
            let msg = format!(
                "docs: publish the post-mortem site from {} [ci skip]",
                short(rev)
            );
            let mut args = vec!["commit-tree", tree.as_str(), "-m", msg.as_str()];
            if let Some(p) = &parent {
                args.extend(["-p", p.as_str()]);
            }
            let commit = git.line(&args).await.map_err(|e| e.to_string())?;
            git.run(&[
                "push",
                "--quiet",
                remote,
                &format!("{commit}:refs/heads/{branch}"),
            ])
            .await
            .map_err(|e| e.stderr.clone())?;
            let _ = git.run(&["update-ref", &tracking, &commit]).await;
            Ok(format!(
                "site published: {} pages, commit {} on {remote}/{branch}{}",
                files.len(),
                short(&commit),
                if parent.is_none() {
                    " (a new branch)"
                } else {
                    ""
                }
            ))
        }
        .await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }
}
