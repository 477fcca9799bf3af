//! What a pipeline needs to know, validated once with errors that name the key.

use std::{path::PathBuf, time::Duration};

use crate::guard;

/// The pipeline's settings (the `[pipeline]` section of the config file).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// A clone of the repository that the pipeline owns (work trees are added to it).
    pub repo: PathBuf,
    /// The key runs are stored under; the repository path unless configured.
    pub repo_key: String,
    /// The remote pushed to.
    pub remote: String,
    /// The branch post-mortems live on and fixes are pushed to.
    pub branch: String,
    /// The post-mortem folder, relative to the repository root.
    pub postmortems_dir: String,
    /// The agent: an argv list, run in the item's work tree.
    pub agent: Vec<String>,
    /// Prints Terraform/OpenTofu `show -json` output for the work tree; optional.
    pub plan: Option<Vec<String>>,
    /// Applies the change after the guardrails passed; optional.
    pub apply: Option<Vec<String>>,
    /// Paths the change must not touch.
    pub protected_paths: Vec<String>,
    /// Agent spend cap per run, USD.
    pub budget_usd: f64,
    /// Largest change (lines added plus removed) one item may make.
    pub max_diff_lines: u64,
    /// Time limit of the agent on one item.
    pub item_timeout: Duration,
    /// Time limit of the plan and apply commands each.
    pub command_timeout: Duration,
    /// Time limit of a whole run; item limits must fit inside it.
    pub run_timeout: Duration,
    /// How long a claim lasts without renewal; a crashed runner's run resumes after it.
    pub lease: Duration,
    /// Where work trees are created.
    pub work_dir: PathBuf,
    /// Commit link template with `{sha}`, e.g. `https://github.com/o/r/commit/{sha}`.
    pub commit_url: Option<String>,
    /// Where the post-mortem site is written after a run.
    pub site_dir: Option<PathBuf>,
    /// A branch of `remote` the post-mortem site is committed to after a run (e.g. `gh-pages`),
    /// created without history on first use.
    pub site_branch: Option<String>,
    /// Notification channels for run summaries; none means a log line.
    pub notify_channels: Vec<String>,
    /// Commit identity.
    pub author_name: String,
    /// Commit identity.
    pub author_email: String,
    /// The "Implemented By" column.
    pub implemented_by: String,
    /// Environment variables the agent, plan and apply commands inherit (`NAME` or `PREFIX*`);
    /// nothing else of warroom's environment reaches them.
    pub pass_env: Vec<String>,
}

/// What the commands inherit by default: enough to find programs, a home for their own
/// configuration (`~/.claude`), the locale, and the agent's API key.
pub fn default_pass_env() -> Vec<String> {
    [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_*",
        "TERM",
        "TMPDIR",
        "TZ",
        "ANTHROPIC_API_KEY",
    ]
    .map(String::from)
    .to_vec()
}

impl PipelineConfig {
    /// Defaults for a repository: `origin`, `master`, `docs/post-mortems`, the Claude Code agent,
    /// the source document's protected stacks, $5 budget, 10-minute items in a 1-hour run.
    pub fn new(repo: PathBuf) -> Self {
        PipelineConfig {
            repo_key: repo.display().to_string(),
            work_dir: repo.join(".git").join("warroom-worktrees"),
            repo,
            remote: "origin".into(),
            branch: "master".into(),
            postmortems_dir: "docs/post-mortems".into(),
            agent: default_agent(),
            plan: None,
            apply: None,
            protected_paths: guard::DEFAULT_PROTECTED.map(String::from).to_vec(),
            budget_usd: 5.0,
            max_diff_lines: 500,
            item_timeout: Duration::from_secs(600),
            command_timeout: Duration::from_secs(300),
            run_timeout: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            commit_url: None,
            site_dir: None,
            site_branch: None,
            notify_channels: vec![],
            author_name: "warroom-pipeline".into(),
            author_email: "warroom-pipeline@localhost".into(),
            implemented_by: "warroom-pipeline".into(),
            pass_env: default_pass_env(),
        }
    }

    /// Every problem, each starting with its key under `pipeline.`.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.agent.first().is_none_or(|a| a.trim().is_empty()) {
            p.push("pipeline.agent: must name a program, e.g. [\"claude\", \"-p\", \"--output-format\", \"json\"]".into());
        }
        for (key, argv) in [("plan", &self.plan), ("apply", &self.apply)] {
            if argv
                .as_ref()
                .is_some_and(|a| a.first().is_none_or(|x| x.trim().is_empty()))
            {
                p.push(format!(
                    "pipeline.{key}: must name a program, or be left out"
                ));
            }
        }
        if !is_branch_name(&self.branch) {
            p.push(format!(
                "pipeline.branch: `{}` is not a branch name",
                self.branch
            ));
        }
        if let Some(sb) = &self.site_branch {
            if !is_branch_name(sb) {
                p.push(format!(
                    "pipeline.site_branch: `{sb}` is not a branch name, e.g. gh-pages"
                ));
            } else if sb == &self.branch {
                // The site's commit has none of the repository in it: pushing it to the
                // post-mortems' own branch would replace the whole repository with HTML.
                p.push(format!(
                    "pipeline.site_branch: `{sb}` is the branch the post-mortems live on; use a branch of its own, e.g. gh-pages"
                ));
            }
        }
        if self.remote.trim().is_empty() || self.remote.starts_with('-') {
            p.push(format!(
                "pipeline.remote: `{}` is not a remote name",
                self.remote
            ));
        }
        if self.postmortems_dir.trim().is_empty()
            || self.postmortems_dir.starts_with('/')
            || self.postmortems_dir.split('/').any(|s| s == "..")
        {
            p.push(format!(
                "pipeline.postmortems_dir: `{}` must be a folder inside the repository, e.g. docs/post-mortems",
                self.postmortems_dir
            ));
        }
        for (i, g) in self.protected_paths.iter().enumerate() {
            if let Err(e) = guard::check_glob(g) {
                p.push(format!("pipeline.protected_paths[{i}]: `{g}` {e}"));
            }
        }
        if !(self.budget_usd.is_finite() && self.budget_usd > 0.0) {
            p.push(format!(
                "pipeline.budget_usd: {} must be a positive amount",
                self.budget_usd
            ));
        }
        if self.max_diff_lines == 0 {
            p.push("pipeline.max_diff_lines: must be at least 1".into());
        }
        for (key, d) in [
            ("item_timeout_secs", self.item_timeout),
            ("command_timeout_secs", self.command_timeout),
            ("run_timeout_secs", self.run_timeout),
            ("lease_secs", self.lease),
        ] {
            if d.is_zero() {
                p.push(format!("pipeline.{key}: must be at least 1"));
            }
        }
        // The reference let the agent's time budget exceed the job's own timeout, so the job
        // was killed mid-commit. One item (agent, plan, apply) must fit in a run with room for
        // publishing.
        let one_item = self.item_timeout + self.command_timeout * 2;
        if one_item >= self.run_timeout {
            p.push(format!(
                "pipeline.item_timeout_secs: one item may take {}s (agent {}s + plan and apply {}s each), which does not fit in run_timeout_secs = {}s; lower it or raise run_timeout_secs",
                one_item.as_secs(),
                self.item_timeout.as_secs(),
                self.command_timeout.as_secs(),
                self.run_timeout.as_secs()
            ));
        }
        for (i, n) in self.pass_env.iter().enumerate() {
            let name = n.strip_suffix('*').unwrap_or(n);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                p.push(format!(
                    "pipeline.pass_env[{i}]: `{n}` is not a variable name (or NAME_PREFIX*)"
                ));
            }
        }
        if let Some(u) = &self.commit_url
            && !u.contains("{sha}")
        {
            p.push(format!("pipeline.commit_url: `{u}` must contain {{sha}}"));
        }
        p
    }
}

/// A conservative reading of `git check-ref-format --branch`: what git would refuse, and a
/// leading `-` that would be read as an option.
fn is_branch_name(b: &str) -> bool {
    !b.is_empty()
        && !b.starts_with(['-', '/', '.'])
        && !b.ends_with(['/', '.'])
        && !b.ends_with(".lock")
        && !b.contains("..")
        && !b.contains("//")
        && !b.contains("@{")
        && !b.bytes().any(|c| c <= b' ' || b"~^:?*[\\\x7f".contains(&c))
}

/// A headless Claude Code run that prints one JSON result with `total_cost_usd`.
pub fn default_agent() -> Vec<String> {
    ["claude", "-p", "--output-format", "json"]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_limits_must_fit_the_run() {
        let mut c = PipelineConfig::new("/r".into());
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        c.item_timeout = Duration::from_secs(4000);
        let p = c.problems().join("\n");
        assert!(p.starts_with("pipeline.item_timeout_secs:"), "{p}");
        c.item_timeout = Duration::from_secs(1);
        c.agent = vec![];
        c.budget_usd = -1.0;
        c.protected_paths = vec!["[x]".into()];
        c.commit_url = Some("https://x".into());
        c.site_branch = Some("gh pages".into());
        let p = c.problems().join("\n");
        for key in [
            "agent",
            "budget_usd",
            "protected_paths[0]",
            "commit_url",
            "site_branch",
        ] {
            assert!(p.contains(&format!("pipeline.{key}:")), "{key}: {p}");
        }
        c.site_branch = Some("master".into());
        assert!(
            c.problems()
                .iter()
                .any(|p| p.starts_with("pipeline.site_branch: `master` is the branch")),
            "{:?}",
            c.problems()
        );
        c.site_branch = Some("gh-pages".into());
        assert!(!c.problems().iter().any(|p| p.contains("site_branch")));
    }
}
