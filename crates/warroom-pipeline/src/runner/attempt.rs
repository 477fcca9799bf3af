//! One guarded attempt at one item: work tree, agent, guardrails, plan, apply, commit.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use serde_json::json;

use super::{Attempt, Candidate, Doc, RunError, Runner, TRAILER, fix_subject, git_err, one_line};
use crate::{guard, process};

impl Runner {
    /// The item for commands that read the environment rather than a prompt (plan scripts,
    /// simple agents).
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

    /// The agent's prompt: the item, its post-mortem and the guardrails in words (for a coding
    /// agent) and as JSON (for a script). The guardrails are enforced afterwards either way.
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

    pub(super) async fn attempt(
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
        self.clear_worktree(&path, &branch, "worktree").await?;
        let start = git
            .line(&["rev-parse", "--verify", &format!("refs/heads/{run_branch}")])
            .await
            .map_err(git_err("worktree"))?;
        let wt = self
            .add_worktree(&path, &branch, &start, "worktree")
            .await?;
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
                pass_env: &self.cfg.pass_env,
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
            // Against the start, so that commits the agent made itself are reviewed too. Without
            // rename detection, so that a file moved out of a protected path or the post-mortem
            // folder names its old path too, and a move counts its lines.
            wt.run(&["reset", "--quiet", "--soft", &start]).await.map_err(git_err("diff"))?;
            let names = wt.run(&["diff", "--cached", "--no-renames", "--name-only", "-z", &start]).await.map_err(git_err("diff"))?;
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
            let numstat = wt.run(&["diff", "--cached", "--no-renames", "--numstat", &start]).await.map_err(git_err("diff"))?;
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
                    pass_env: &self.cfg.pass_env,
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
                    pass_env: &self.cfg.pass_env,
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
}
