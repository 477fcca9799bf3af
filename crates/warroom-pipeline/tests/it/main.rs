//! The pipeline end to end against real git repositories (a bare remote and the pipeline's
//! clone, in temp folders), a real agent process (`tests/fixtures/fake-agent.sh`) and real
//! Terraform-format plans (`tests/fixtures/plan-*.json`).
#![allow(clippy::unwrap_used)] // a panic fails the test, which is what we want here.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};
use warroom_pipeline::{ItemOutcome, PipelineConfig, RunOutcome, Runner};
use warroom_store::{Clock, ManualClock, RunStatus, Store, SystemClock};
use warroom_testkit::{
    Backend, TestDb, backends, fresh_database,
    git::{git, seeded_remote},
    open_store,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Repo {
    tmp: tempfile::TempDir,
    bare: PathBuf,
    clone: PathBuf,
    modes: PathBuf,
    plans: PathBuf,
    log: PathBuf,
    store: Arc<dyn Store>,
    _db: TestDb,
}

const SERVFAIL: &str = "Add alert on CoreDNS SERVFAIL rate";
/// The action as the engine reads it (markup removed).
const MOUNT: &str = "Set hard,timeo=600 mount options on all NFS PVs";
/// What both of its table rows contain.
const MOUNT_ROW: &str = "mount options on all NFS PVs";
const TCP: &str = "Add Uptime Kuma TCP monitor for the NAS on 2049";
const LATENCY: &str = "Add DNS latency alert";
const NFS: &str = "docs/post-mortems/2026-04-14-nfs-stale-handles.md";
const DNS: &str = "docs/post-mortems/2026-05-02-dns-outage.md";

impl Repo {
    async fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let (bare, clone) = seeded_remote(
            tmp.path(),
            "pipeline",
            &fixtures().join("postmortems"),
            &[("stacks/app/main.tf", "resource \"x\" \"y\" {}\n")],
        );
        // PostgreSQL when WARROOM_TEST_DATABASE_URL is set (CI runs both ways), else SQLite.
        let backend: Backend = *backends().last().unwrap();
        let db = fresh_database(backend).await.unwrap();
        let store = open_store(backend, &db).await.unwrap();
        Repo {
            modes: tmp.path().join("agent-modes"),
            plans: tmp.path().join("plan-modes"),
            log: tmp.path().join("agent.log"),
            bare,
            clone,
            tmp,
            store,
            _db: db,
        }
    }

    fn config(&self) -> PipelineConfig {
        let s = |p: &Path| p.display().to_string();
        let mut c = PipelineConfig::new(self.clone.clone());
        c.agent = vec![
            "bash".into(),
            s(&fixtures().join("fake-agent.sh")),
            "--modes".into(),
            s(&self.modes),
            "--log".into(),
            s(&self.log),
            "--remote".into(),
            s(&self.bare),
        ];
        c.plan = Some(vec![
            "bash".into(),
            s(&fixtures().join("fake-plan.sh")),
            "--modes".into(),
            s(&self.plans),
            "--dir".into(),
            s(&fixtures()),
        ]);
        c.work_dir = self.tmp.path().join("work");
        c.site_dir = Some(self.tmp.path().join("site"));
        c.commit_url = Some("https://git.example/infra/commit/{sha}".into());
        c.item_timeout = Duration::from_secs(20);
        c.command_timeout = Duration::from_secs(10);
        c.run_timeout = Duration::from_secs(300);
        c
    }

    fn agent_modes(&self, lines: &[(&str, &str)]) {
        let text: String = lines.iter().map(|(p, m)| format!("{p}={m}\n")).collect();
        std::fs::write(&self.modes, text).unwrap();
    }

    fn plan_modes(&self, lines: &[(&str, &str)]) {
        let text: String = lines.iter().map(|(p, m)| format!("{p}={m}\n")).collect();
        std::fs::write(&self.plans, text).unwrap();
    }

    /// The worker loop announcing to `ops`, polling every 100 ms and sweeping every `sweep`;
    /// it ends once `true` is sent.
    fn sweeping_worker(
        &self,
        sweep: Duration,
    ) -> (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut cfg = self.config();
        cfg.notify_channels = vec!["ops".into()];
        let worker = tokio::spawn(warroom_pipeline::run_worker(
            self.runner(cfg),
            Duration::from_millis(100),
            Some(sweep),
            stopped,
        ));
        (stop, worker)
    }

    fn runner(&self, cfg: PipelineConfig) -> Runner {
        Runner::new(
            self.store.clone(),
            Arc::new(SystemClock),
            cfg,
            "test-runner",
        )
    }

    async fn run(&self) -> RunOutcome {
        self.run_with(self.config()).await
    }

    async fn run_with(&self, cfg: PipelineConfig) -> RunOutcome {
        let r = self.runner(cfg);
        r.enqueue("manual", None).await.unwrap();
        r.run_next().await.unwrap().expect("a run was queued")
    }

    /// The notifications the runs put into the outbox, oldest first.
    /// Drained as a notifier would: the outbox hands out one message per channel at a time
    /// (to keep a channel's order), so each is marked delivered before the next claim.
    async fn notifications(&self) -> Vec<warroom_domain::notify::Notification> {
        let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let mut out = Vec::new();
        loop {
            let batch = self
                .store
                .claim_due(later, time::Duration::minutes(1), 100)
                .await
                .unwrap();
            if batch.is_empty() {
                return out;
            }
            for m in batch {
                assert_eq!(m.channel, "ops");
                self.store.record_delivered(m.id, later).await.unwrap();
                out.push(m.notification);
            }
        }
    }

    /// (sha, subject) on the remote's master, oldest first.
    fn remote_log(&self) -> Vec<(String, String)> {
        git(
            &self.bare,
            &["log", "--reverse", "--format=%H\t%s", "master"],
        )
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
    }

    /// A person (ana) approves the item now, as `warroom pipeline approve` records it.
    async fn approve(&self, item_id: &str) {
        self.store
            .approve_item(
                &self.config().repo_key,
                item_id,
                "ana",
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
    }

    fn remote_file(&self, path: &str) -> String {
        git(&self.bare, &["show", &format!("master:{path}")])
    }

    fn agent_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn on_remote_branch(&self, sha: &str) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(&self.bare)
            .args(["merge-base", "--is-ancestor", sha, "master"])
            .status()
            .unwrap()
            .success()
    }

    fn assert_clean_worktrees(&self) {
        let wts = git(&self.clone, &["worktree", "list", "--porcelain"]);
        assert_eq!(wts.matches("worktree ").count(), 1, "{wts}");
    }

    /// The pipeline left no work trees or branches behind.
    fn assert_clean(&self) {
        self.assert_clean_worktrees();
        let branches = git(&self.clone, &["branch", "--list", "warroom/*"]);
        assert!(branches.trim().is_empty(), "{branches}");
    }
}

/// The row of the post-mortem's tables that mentions `action` (status row and implementation row).
fn rows<'a>(doc: &'a str, action: &str) -> Vec<&'a str> {
    doc.lines()
        .filter(|l| l.starts_with('|') && l.contains(action))
        .collect()
}

fn row_sha(row: &str) -> String {
    let start = row.find("[`").unwrap() + 2;
    let end = row[start..].find('`').unwrap() + start;
    row[start..end].to_string()
}

#[tokio::test]
async fn happy_path_implements_every_safe_item_across_documents_in_priority_order() {
    let repo = Repo::new().await;
    let before = repo.remote_file(NFS);
    let out = repo.run().await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    let log = repo.remote_log();
    let subjects: Vec<&str> = log.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "docs: post-mortems [ci skip]",
            "fix(post-mortem): add alert on CoreDNS SERVFAIL rate [PM-2026-05-02]",
            "fix(post-mortem): set hard,timeo=600 mount options on all NFS PVs [PM-2026-04-14]",
            "fix(post-mortem): add Uptime Kuma TCP monitor for the NAS on 2049 [PM-2026-04-14]",
            "fix(post-mortem): add DNS latency alert [PM-2026-05-02]",
            "docs: update post-mortem follow-up [PM-2026-04-14] [ci skip]",
            "docs: update post-mortem follow-up [PM-2026-05-02] [ci skip]",
        ]
    );
    // The fix commits carry the agent's change, and nothing of the post-mortems.
    let fix = &log[1].0;
    let files = git(&repo.bare, &["show", "--name-only", "--format=", fix]);
    assert!(files.trim().starts_with("alerts/"), "{files}");

    let nfs = repo.remote_file(NFS);
    for action in [MOUNT_ROW, TCP] {
        let r = rows(&nfs, action);
        assert_eq!(r.len(), 2, "{action}: {r:?}");
        assert!(r[0].trim_end().ends_with("| DONE |"), "{}", r[0]);
        let sha = row_sha(r[1]);
        assert!(
            repo.on_remote_branch(&sha),
            "{sha} is not on the pushed branch"
        );
        assert!(
            r[1].contains("https://git.example/infra/commit/"),
            "{}",
            r[1]
        );
        assert!(r[1].contains("| warroom-pipeline |"), "{}", r[1]);
        let subject = git(&repo.bare, &["log", "-1", "--format=%s", &sha]);
        assert!(subject.starts_with("fix(post-mortem): "), "{subject}");
    }
    // Two status cells changed, two rows appended for them and one for the Architecture item
    // left to a person: every other byte is the same.
    let numstat = git(&repo.bare, &["diff", "--numstat", &log[4].0, &log[5].0]);
    assert_eq!(numstat.trim(), format!("5\t2\t{NFS}"));
    assert!(nfs.contains("| P1 | Migrate Immich library to a replicated Longhorn volume | Architecture | needs capacity planning | TODO |"));
    assert_eq!(before.lines().count() + 3, nfs.lines().count());
    let immich = rows(&nfs, "Migrate Immich");
    assert_eq!(immich.len(), 2, "{immich:?}");
    assert!(
        immich[1].starts_with("| — | Migrate Immich library to a replicated Longhorn volume | P1 | Architecture | — | Needs human review: type Architecture needs a person: approve with `warroom pipeline approve "),
        "{}",
        immich[1]
    );
    let dns = repo.remote_file(DNS);
    assert!(dns.contains("## Follow-up Implementation"), "{dns}");
    assert_eq!(
        rows(&dns, "Document the Corefile rollback").len(),
        2,
        "{dns}"
    );
    assert!(rows(&dns, SERVFAIL)[0].contains("| DONE |"));

    let run = repo.store.pipeline_run(out.run).await.unwrap();
    assert_eq!((run.items_done, run.items_total), (4, 4));
    assert!((run.cost_usd - 2.0).abs() < 1e-9, "{}", run.cost_usd);
    let lines = repo.store.run_log(out.run, 0).await.unwrap();
    assert!(lines.iter().any(|l| l.line.contains("pushed")), "{lines:?}");
    assert!(repo.tmp.path().join("site/index.html").is_file());
    assert!(
        std::fs::read_to_string(
            repo.tmp
                .path()
                .join("site/2026-04-14-nfs-stale-handles.html")
        )
        .unwrap()
        .contains("DONE")
    );
    repo.assert_clean();

    // A second run finds nothing: the pushed documents say Done.
    let again = repo.run().await;
    assert_eq!(again.status, RunStatus::Succeeded);
    assert!(
        again.summary.starts_with("nothing to do"),
        "{}",
        again.summary
    );
    assert_eq!(repo.agent_calls().len(), 4);
    assert_eq!(repo.remote_log().len(), 7);
}

#[tokio::test]
async fn guardrails_refuse_protected_paths_empty_huge_and_failed_changes() {
    let repo = Repo::new().await;
    repo.agent_modes(&[
        ("SERVFAIL", "protected"),
        ("mount options", "nochange"),
        ("TCP monitor", "huge"),
        ("latency", "crash"),
    ]);
    let out = repo.run().await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    let reasons: Vec<String> = out
        .items
        .iter()
        .map(|i| match &i.outcome {
            ItemOutcome::Refused { reason } => reason.clone(),
            o => panic!("{} was not refused: {o:?}", i.action),
        })
        .collect();
    assert!(
        reasons[0].contains("protected path stacks/vault/main.tf (matches **/vault/**)"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].contains("made no change"), "{}", reasons[1]);
    assert!(
        reasons[2].contains("5000 lines, over the limit of 500"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].contains("agent failed: exited with status 1: agent crashed"),
        "{}",
        reasons[3]
    );
    let subjects: Vec<String> = repo.remote_log().into_iter().map(|(_, s)| s).collect();
    assert!(
        !subjects.iter().any(|s| s.starts_with("fix(")),
        "{subjects:?}"
    );
    let nfs = repo.remote_file(NFS);
    let r = rows(&nfs, MOUNT_ROW);
    assert!(r[0].contains("| NEEDS HUMAN REVIEW |"), "{}", r[0]);
    assert!(
        r[1].contains("| — | Needs human review: the agent made no change |"),
        "{}",
        r[1]
    );
    // Nothing of a refused change reached the remote.
    let tree = git(&repo.bare, &["ls-tree", "-r", "--name-only", "master"]);
    assert!(!tree.contains("vault") && !tree.contains("huge"), "{tree}");
    repo.assert_clean();
}

#[tokio::test]
async fn moving_a_post_mortem_out_of_its_folder_is_refused_like_editing_it() {
    // git's rename detection would name only the new path; the guard must see the old one.
    let repo = Repo::new().await;
    repo.agent_modes(&[("SERVFAIL", "move-postmortem")]);
    let out = repo.run().await;
    let item = out
        .items
        .iter()
        .find(|i| i.action.contains("SERVFAIL"))
        .expect("the SERVFAIL item was attempted");
    match &item.outcome {
        ItemOutcome::Refused { reason } => {
            assert!(reason.contains("edits the post-mortem folder"), "{reason}")
        }
        o => panic!("a moved post-mortem got through: {o:?}"),
    }
    let tree = git(&repo.bare, &["ls-tree", "-r", "--name-only", "master"]);
    assert!(!tree.contains("moved-"), "{tree}");
    repo.assert_clean();
}

#[tokio::test]
async fn plans_that_delete_or_replace_are_refused_and_updates_pass() {
    let repo = Repo::new().await;
    repo.plan_modes(&[
        ("SERVFAIL", "plan-delete.json"),
        ("mount options", "plan-replace.json"),
        ("TCP monitor", "plan-replace-cbd.json"),
        ("latency", "plan-update.json"),
    ]);
    let out = repo.run().await;
    let got: Vec<(String, bool)> = out
        .items
        .iter()
        .map(|i| {
            (
                match &i.outcome {
                    ItemOutcome::Refused { reason } => reason.clone(),
                    ItemOutcome::Implemented { .. } => "implemented".into(),
                },
                matches!(i.outcome, ItemOutcome::Implemented { .. }),
            )
        })
        .collect();
    assert!(
        got[0]
            .0
            .contains("would delete or replace kubernetes_manifest.rule_")
            && got[0].0.contains("(delete)"),
        "{got:?}"
    );
    assert!(got[1].0.contains("(delete+create)"), "{got:?}");
    assert!(got[2].0.contains("(create+delete)"), "{got:?}");
    assert!(got[3].1, "{got:?}");
    let subjects: Vec<String> = repo.remote_log().into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        subjects.iter().filter(|s| s.starts_with("fix(")).count(),
        1,
        "{subjects:?}"
    );
}

#[tokio::test]
async fn the_budget_stops_the_whole_run() {
    let repo = Repo::new().await;
    repo.agent_modes(&[("SERVFAIL", "expensive"), ("mount options", "expensive")]);
    let mut cfg = repo.config();
    cfg.notify_channels = vec!["ops".into()];
    let out = repo.run_with(cfg).await;
    assert_eq!(out.status, RunStatus::Stopped, "{}", out.summary);
    assert_eq!(
        repo.agent_calls().len(),
        2,
        "later items must not be attempted"
    );
    assert!(matches!(
        out.items[0].outcome,
        ItemOutcome::Implemented { .. }
    ));
    match &out.items[1].outcome {
        ItemOutcome::Refused { reason } => assert!(
            reason.contains("budget of $5.00 would be exceeded"),
            "{reason}"
        ),
        o => panic!("{o:?}"),
    }
    let nfs = repo.remote_file(NFS);
    assert!(rows(&nfs, MOUNT_ROW)[0].contains("NEEDS HUMAN REVIEW"));
    assert!(
        rows(&nfs, TCP)[0].contains("| TODO |"),
        "not attempted, still open"
    );
    let run = repo.store.pipeline_run(out.run).await.unwrap();
    assert_eq!(run.status, RunStatus::Stopped);
    assert_eq!((run.items_done, run.items_total), (2, 4));
    let sent = repo.notifications().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].title,
        format!("Post-mortem follow-ups: run {} stopped", out.run)
    );
    assert!(sent[0].incident.is_none());
    assert!(
        sent[0].text.contains("1 implemented, 1 need human review"),
        "{}",
        sent[0].text
    );
    assert!(
        sent[0].text.contains("stopped early: the budget"),
        "{}",
        sent[0].text
    );
}

fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for init to reap it is dead too.
        Ok(stat) => stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')),
    }
}

#[tokio::test]
async fn a_timed_out_agent_is_killed_with_its_whole_process_group() {
    let repo = Repo::new().await;
    repo.agent_modes(&[("SERVFAIL", "orphan-hang")]);
    let mut cfg = repo.config();
    cfg.item_timeout = Duration::from_secs(2);
    let r = repo.runner(cfg);
    r.enqueue("manual", None).await.unwrap();
    let started = std::time::Instant::now();
    let out = r.run_next().await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    match &out.items[0].outcome {
        ItemOutcome::Refused { reason } => {
            assert!(reason.contains("timed out after 2s"), "{reason}")
        }
        o => panic!("{o:?}"),
    }
    let child = std::fs::read_to_string(repo.log.with_extension("log.child")).unwrap();
    let child = child.trim();
    let mut gone = false;
    for _ in 0..50 {
        if process_gone(child) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the agent's child {child} outlived it");
    // The other items went on.
    assert_eq!(
        out.items
            .iter()
            .filter(|i| matches!(i.outcome, ItemOutcome::Implemented { .. }))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_finished_agents_children_are_killed_its_cost_is_required_and_its_env_is_scrubbed() {
    let repo = Repo::new().await;
    repo.agent_modes(&[
        ("SERVFAIL", "orphan-exit"),
        ("mount options", "noisy-json"),
        ("TCP monitor", "envdump"),
        ("latency", "postmortem"),
    ]);
    let out = repo.run().await;
    assert!(
        matches!(out.items[0].outcome, ItemOutcome::Implemented { .. }),
        "{:?}",
        out.items[0]
    );
    // The agent sees the pass list and its item, none of the rest of our environment (cargo
    // sets CARGO_PKG_NAME for this test process).
    let env = std::fs::read_to_string(repo.log.with_extension("log.env")).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(env.contains("WARROOM_ITEM_TYPE=Monitor"), "{env}");
    assert!(!env.contains("CARGO_PKG_NAME"), "{env}");
    // Without a cost the budget cannot be enforced, so the change is not taken.
    match &out.items[1].outcome {
        ItemOutcome::Refused { reason } => {
            assert!(reason.contains("no total_cost_usd"), "{reason}")
        }
        o => panic!("{o:?}"),
    }
    // An agent may not mark its own work in the post-mortem.
    match &out.items[3].outcome {
        ItemOutcome::Refused { reason } => {
            assert!(
                reason.contains(
                    "edits the post-mortem folder (docs/post-mortems/2026-05-02-dns-outage.md)"
                ),
                "{reason}"
            )
        }
        o => panic!("{o:?}"),
    }
    let child = std::fs::read_to_string(repo.log.with_extension("log.child")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(process_gone(child.trim()));
}

#[tokio::test]
async fn an_interrupted_run_resumes_without_redoing_anything() {
    let repo = Repo::new().await;
    repo.agent_modes(&[("mount options", "slow-once")]);
    let first = repo.runner(repo.config());
    first.enqueue("webhook", Some("delivery-1")).await.unwrap();
    // The runner dies while the second item's agent is still working: its future is dropped
    // mid-run, without finishing the run or releasing the lease.
    let killed = tokio::time::timeout(Duration::from_secs(8), first.run_next()).await;
    assert!(killed.is_err(), "the run should still have been working");
    let run = repo.store.list_runs(1).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.items_done, 1);
    // Nothing was pushed yet.
    assert_eq!(repo.remote_log().len(), 1);

    // Another runner, once the lease has expired, resumes the same run.
    let later: Arc<dyn Clock> = Arc::new(ManualClock::new(
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    ));
    let second = Runner::new(repo.store.clone(), later, repo.config(), "runner-2");
    let out = second.run_next().await.unwrap().unwrap();
    assert_eq!(out.run, run.id);
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    let run = repo.store.pipeline_run(run.id).await.unwrap();
    assert_eq!(run.attempts, 2);
    let calls = repo.agent_calls();
    let count = |id_mode: &str| calls.iter().filter(|c| c.ends_with(id_mode)).count();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(count("slow-once"), 2, "{calls:?}");
    let subjects: Vec<String> = repo.remote_log().into_iter().map(|(_, s)| s).collect();
    let fixes: Vec<&String> = subjects.iter().filter(|s| s.starts_with("fix(")).collect();
    assert_eq!(fixes.len(), 4, "{subjects:?}");
    let unique: std::collections::BTreeSet<&&String> = fixes.iter().collect();
    assert_eq!(unique.len(), 4, "{subjects:?}");
    repo.assert_clean();
}

#[tokio::test]
async fn a_remote_that_moved_is_rebased_onto_and_pushed_once_more() {
    let repo = Repo::new().await;
    repo.agent_modes(&[("SERVFAIL", "advance")]);
    let out = repo.run().await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    let log = repo.remote_log();
    let subjects: Vec<&str> = log.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        subjects[1], "unrelated change by someone else",
        "{subjects:?}"
    );
    assert_eq!(subjects.iter().filter(|s| s.starts_with("fix(")).count(), 4);
    for (doc, action) in [(NFS, MOUNT_ROW), (DNS, SERVFAIL)] {
        let text = repo.remote_file(doc);
        let sha = row_sha(rows(&text, action)[1]);
        assert!(
            repo.on_remote_branch(&sha),
            "{sha} not on the pushed branch"
        );
    }
    let lines = repo.store.run_log(out.run, 0).await.unwrap();
    assert!(
        lines.iter().any(|l| l.line.contains("push rejected")),
        "{lines:?}"
    );
    repo.assert_clean();
}

#[tokio::test]
async fn a_conflicting_remote_fails_the_run_loudly_and_releases_its_items() {
    let repo = Repo::new().await;
    repo.agent_modes(&[("SERVFAIL", "conflict")]);
    let mut cfg = repo.config();
    cfg.notify_channels = vec!["ops".into()];
    let out = repo.run_with(cfg).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        out.summary.contains("step push") && out.summary.contains("conflicts"),
        "{}",
        out.summary
    );
    let run = repo.store.pipeline_run(out.run).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("rebase by hand"));
    // Only the other person's commit is on the remote; the items can be tried again.
    let subjects: Vec<String> = repo.remote_log().into_iter().map(|(_, s)| s).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    let records = repo
        .store
        .item_records(&repo.config().repo_key)
        .await
        .unwrap();
    assert!(records.is_empty(), "{records:?}");
    // The notification names the item, the step and the error.
    let sent = repo.notifications().await;
    assert!(sent[0].title.ends_with("FAILED"), "{}", sent[0].title);
    assert!(sent[0].text.starts_with("item "), "{}", sent[0].text);
    assert!(sent[0].text.contains("step push:"), "{}", sent[0].text);
}

#[tokio::test]
async fn dry_run_lists_the_plan_and_changes_nothing_and_approval_lets_unsafe_items_through() {
    let repo = Repo::new().await;
    let r = repo.runner(repo.config());
    let plan = r.dry_run().await.unwrap();
    let actions: Vec<&str> = plan.iter().map(|p| p.action.as_str()).collect();
    assert_eq!(actions, [SERVFAIL, MOUNT, TCP, LATENCY]);
    assert_eq!(
        plan[0].commit_message,
        "fix(post-mortem): add alert on CoreDNS SERVFAIL rate [PM-2026-05-02]"
    );
    assert_eq!(repo.remote_log().len(), 1);
    assert!(repo.agent_calls().is_empty());

    let nfs = repo.remote_file(NFS);
    let parsed = warroom_postmortem::parse_document("2026-04-14-nfs-stale-handles.md", &nfs);
    let arch = parsed
        .items
        .iter()
        .find(|i| i.action.starts_with("Migrate Immich"))
        .unwrap();
    assert!(!arch.safe);
    repo.approve(&arch.id).await;
    let plan = r.dry_run().await.unwrap();
    assert_eq!(plan.len(), 5);
    // P1 like the mount options, and after them in the same document.
    assert_eq!(plan[2].why, "approved");
    assert!(plan[2].action.starts_with("Migrate Immich"));
    let out = repo.run().await;
    assert_eq!(out.items.len(), 5, "{}", out.summary);
    let nfs = repo.remote_file(NFS);
    assert!(rows(&nfs, "Migrate Immich")[0].contains("| DONE |"));
}

#[tokio::test]
async fn the_worker_loop_sweeps_and_runs_without_any_trigger() {
    let repo = Repo::new().await;
    let (stop, worker) = repo.sweeping_worker(Duration::from_millis(300));
    let mut swept = None;
    for _ in 0..300 {
        let runs = repo.store.list_runs(50).await.unwrap();
        // Oldest first: the first sweep did the work, later ones found nothing.
        if let Some(r) = runs
            .iter()
            .rev()
            .find(|r| r.trigger == "sweep" && r.status == RunStatus::Succeeded)
        {
            swept = Some(r.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    let swept = swept.expect("a sweep run succeeded");
    assert_eq!((swept.items_done, swept.items_total), (4, 4));
    assert_eq!(repo.remote_log().len(), 7);
    assert_eq!(
        repo.agent_calls().len(),
        4,
        "later sweeps find nothing to do"
    );
    // Only the sweep that did something is announced: idle sweeps stay out of the channel.
    let (stop, worker) = repo.sweeping_worker(Duration::from_millis(200));
    let idle = |runs: &[warroom_store::RunRecord]| {
        runs.iter()
            .filter(|r| r.status == RunStatus::Succeeded && r.id != swept.id)
            .count()
    };
    for _ in 0..300 {
        if idle(&repo.store.list_runs(50).await.unwrap()) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    let runs = repo.store.list_runs(50).await.unwrap();
    assert!(idle(&runs) >= 2, "{runs:?}");
    let sent = repo.notifications().await;
    assert_eq!(sent.len(), 1, "{} runs: {sent:?}", runs.len());
    assert!(
        sent[0].text.starts_with("4 implemented"),
        "{}",
        sent[0].text
    );
}

#[tokio::test]
async fn a_crash_right_after_the_push_lands_is_resumed_without_a_second_push_or_row() {
    let repo = Repo::new().await;
    // The remote accepts the push, then keeps the pusher waiting: the runner is "killed" in
    // that window, after the push landed and before the store recorded it.
    let hook = repo.bare.join("hooks/post-receive");
    let marker = repo.tmp.path().join("hook-ran");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif [ ! -e {m} ]; then touch {m}; sleep 30; fi\n",
            m = marker.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let first = repo.runner(repo.config());
    first.enqueue("manual", None).await.unwrap();
    let mut killed = false;
    let mut run = Box::pin(first.run_next());
    for _ in 0..300 {
        tokio::select! {
            _ = &mut run => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if marker.exists() {
            killed = true;
            break;
        }
    }
    // Dropping the future is what a killed runner looks like from inside: no finish, no
    // record, the heartbeat stopped.
    drop(run);
    assert!(killed, "the push never reached the remote");
    assert_eq!(repo.remote_log().len(), 7, "the push landed");

    let later: Arc<dyn Clock> = Arc::new(ManualClock::new(
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    ));
    let second = Runner::new(repo.store.clone(), later, repo.config(), "runner-2");
    let out = second.run_next().await.unwrap().unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    assert_eq!(repo.remote_log().len(), 7, "nothing pushed twice");
    let nfs = repo.remote_file(NFS);
    assert_eq!(
        rows(&nfs, MOUNT_ROW).len(),
        2,
        "one status row, one implementation row"
    );
    assert_eq!(
        rows(&nfs, "Migrate Immich").len(),
        2,
        "one plan row, one Needs human review row"
    );
    assert_eq!(repo.agent_calls().len(), 4);
    let records = repo
        .store
        .item_records(&repo.config().repo_key)
        .await
        .unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.state == warroom_store::ItemState::Done),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_missing_agent_fails_the_run_instead_of_handing_every_item_to_people() {
    let repo = Repo::new().await;
    let mut cfg = repo.config();
    cfg.agent = vec!["/nonexistent/agent".into()];
    let out = repo.run_with(cfg).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        out.summary
            .contains("step agent: cannot start `/nonexistent/agent`"),
        "{}",
        out.summary
    );
    assert_eq!(repo.remote_log().len(), 1, "nothing pushed");
    assert!(
        repo.store
            .item_records(&repo.config().repo_key)
            .await
            .unwrap()
            .is_empty()
    );
    repo.assert_clean_worktrees();
}

impl Repo {
    /// Pushes `files` to the remote's master as a person would, from a scratch clone.
    fn push_as_someone_else(&self, files: &[(&str, &str)], message: &str) {
        let scratch = self
            .tmp
            .path()
            .join(format!("scratch-{}", self.remote_log().len()));
        git(
            self.tmp.path(),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                scratch.to_str().unwrap(),
            ],
        );
        for (path, text) in files {
            let p = scratch.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(&scratch, &["add", "-A"]);
        git(&scratch, &["commit", "-qm", message]);
        git(&scratch, &["push", "-q", "origin", "master"]);
    }
}

const ONLY_UNSAFE: &str = "docs/post-mortems/2026-06-01-longhorn-rebuild-storm.md";
const ONLY_UNSAFE_TEXT: &str = "# Post-Mortem: Longhorn replica rebuild storm

| Field | Value |
|-------|-------|
| **Date** | 2026-06-01 |
| **Severity** | SEV2 |

## Prevention Plan

| Priority | Action | Type | Details | Status |
|----------|--------|------|---------|--------|
| P1 | Migrate Vault to encrypted PVC | Migration | | TODO |
| P2 | Add alert config for the storage migration | Migration | says alert and config, typed Migration | TODO |
| P2 | Investigate replica rebuild throttling | Investigation | | Deferred |

## Lessons Learned

- Rebuilds need a rate limit.
";

const LEGACY: &str = "docs/post-mortems/2025-01-10-legacy-storage.md";
const LEGACY_TEXT: &str = "# Post-Mortem: storage move

**Date:** 2025-01-10

## Action Items

| Action | Status | Details |
|--------|--------|---------|
| Migrate storage config to Longhorn | TODO | the reference called this Config by substring |
";

#[tokio::test]
async fn unsafe_items_get_one_needs_human_review_row_even_in_a_document_with_nothing_safe() {
    let repo = Repo::new().await;
    repo.push_as_someone_else(
        &[(ONLY_UNSAFE, ONLY_UNSAFE_TEXT), (LEGACY, LEGACY_TEXT)],
        "docs: post-mortem for 2026-06-01 Longhorn [ci skip]",
    );
    // A storage migration is never safe, whatever words its action contains.
    let plan = repo.runner(repo.config()).dry_run().await.unwrap();
    assert!(
        plan.iter()
            .all(|p| !p.postmortem.contains("longhorn") && !p.postmortem.contains("legacy")),
        "{plan:?}"
    );
    let out = repo.run().await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    assert!(
        out.summary
            .contains("unsafe follow-ups recorded for a person"),
        "{}",
        out.summary
    );
    // The summary (what the notification says) names them, with the command to hand them over.
    assert!(
        out.summary.contains("\n- needs a person 2026-06-01-longhorn-rebuild-storm.md: Migrate Vault to encrypted PVC (P1 Migration; `warroom pipeline approve "),
        "{}",
        out.summary
    );
    let subjects: Vec<String> = repo.remote_log().into_iter().map(|(_, s)| s).collect();
    assert!(
        subjects.contains(&"docs: update post-mortem follow-up [PM-2026-06-01] [ci skip]".into()),
        "{subjects:?}"
    );
    let text = repo.remote_file(ONLY_UNSAFE);
    // Appended after the last byte; nothing the person wrote changed.
    assert!(text.starts_with(ONLY_UNSAFE_TEXT), "{text}");
    let parsed = warroom_postmortem::parse_document(
        "2026-06-01-longhorn-rebuild-storm.md",
        ONLY_UNSAFE_TEXT,
    );
    let vault = parsed
        .items
        .iter()
        .find(|i| i.action.starts_with("Migrate Vault"))
        .unwrap();
    assert_eq!(
        rows(&text, "Migrate Vault"),
        [
            "| P1 | Migrate Vault to encrypted PVC | Migration | | TODO |".to_string(),
            format!(
                "| — | Migrate Vault to encrypted PVC | P1 | Migration | — | Needs human review: type Migration needs a person: approve with `warroom pipeline approve {}` |",
                vault.id
            ),
        ]
    );
    assert_eq!(rows(&text, "storage migration").len(), 2, "{text}");
    // Deferred by a person: already theirs, no row.
    assert_eq!(rows(&text, "throttling").len(), 1, "{text}");
    let legacy = repo.remote_file(LEGACY);
    assert!(legacy.starts_with(LEGACY_TEXT), "{legacy}");
    let r = rows(&legacy, "Migrate storage config");
    assert_eq!(r.len(), 2, "{legacy}");
    assert!(r[1].contains("| Needs human review: "), "{}", r[1]);
    assert!(!r[1].contains("| Config |"), "{}", r[1]);

    // Once: a second run finds every row in place and pushes nothing.
    let pushed = repo.remote_log().len();
    let again = repo.run().await;
    assert!(
        again.summary.starts_with("nothing to do"),
        "{}",
        again.summary
    );
    assert_eq!(repo.remote_log().len(), pushed);
    assert_eq!(
        rows(&repo.remote_file(ONLY_UNSAFE), "Migrate Vault").len(),
        2
    );

    // Approved later, it is implemented and gets its Done row next to the old one.
    repo.approve(&vault.id).await;
    let out = repo.run().await;
    assert_eq!(out.items.len(), 1, "{}", out.summary);
    let text = repo.remote_file(ONLY_UNSAFE);
    let r = rows(&text, "Migrate Vault");
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(
        r[0].contains("| DONE |") || r[0].contains("| Done |"),
        "{}",
        r[0]
    );
    assert!(r[2].contains("| warroom-pipeline |"), "{}", r[2]);
    repo.assert_clean();
}

#[tokio::test]
async fn the_site_is_built_from_the_configured_folder_and_committed_to_its_own_branch() {
    let repo = Repo::new().await;
    // The post-mortems moved; the reference's publisher kept watching the old folder.
    repo.push_as_someone_else(
        &[(
            "handbook/incidents/2026-07-01-ingress.md",
            "# Post-Mortem: ingress flaps\n\n| Field | Value |\n|---|---|\n| **Date** | 2026-07-01 |\n\n## Prevention Plan\n\n| Priority | Action | Type | Details | Status |\n|---|---|---|---|---|\n| P1 | Add alert on ingress 5xx ratio | Alert | | TODO |\n",
        )],
        "docs: move post-mortems [ci skip]",
    );
    let mut cfg = repo.config();
    cfg.postmortems_dir = "handbook/incidents".into();
    cfg.site_dir = None;
    cfg.site_branch = Some("gh-pages".into());
    let out = repo.run_with(cfg.clone()).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    assert_eq!(out.items.len(), 1, "only the configured folder is read");

    let pages = |rev: &str| -> Vec<String> {
        git(&repo.bare, &["ls-tree", "--name-only", rev])
            .lines()
            .map(String::from)
            .collect()
    };
    assert_eq!(pages("gh-pages"), ["2026-07-01-ingress.html", "index.html"]);
    // A branch of its own, without the repository's history.
    let history = git(&repo.bare, &["log", "--format=%P|%s", "gh-pages"]);
    let history: Vec<&str> = history.lines().collect();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(
        history[0].starts_with("|docs: publish the post-mortem site from "),
        "{history:?}"
    );
    let page = git(&repo.bare, &["show", "gh-pages:2026-07-01-ingress.html"]);
    assert!(page.contains("DONE"), "the page shows the pushed document");
    // The post-mortems' branch is untouched by the publishing.
    assert!(
        git(&repo.bare, &["ls-tree", "-r", "--name-only", "master"]).contains("stacks/app/main.tf")
    );

    // Nothing changed: no new site commit.
    let again = repo.run_with(cfg.clone()).await;
    assert!(
        again.summary.starts_with("nothing to do"),
        "{}",
        again.summary
    );
    assert_eq!(
        git(&repo.bare, &["rev-list", "--count", "gh-pages"]).trim(),
        "1"
    );
    let lines = repo.store.run_log(again.run, 0).await.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.line.starts_with("site unchanged on origin/gh-pages")),
        "{lines:?}"
    );

    // A new post-mortem: one more commit on top, with a CNAME someone added kept.
    let site = repo.tmp.path().join("site-clone");
    git(
        repo.tmp.path(),
        &[
            "clone",
            "-q",
            "-b",
            "gh-pages",
            repo.bare.to_str().unwrap(),
            site.to_str().unwrap(),
        ],
    );
    std::fs::write(site.join("CNAME"), "postmortems.example.org\n").unwrap();
    git(&site, &["add", "CNAME"]);
    git(&site, &["commit", "-qm", "custom domain"]);
    git(&site, &["push", "-q", "origin", "gh-pages"]);
    repo.push_as_someone_else(
        &[(
            "handbook/incidents/2026-07-09-backup.md",
            "# Post-Mortem: backups stopped\n\n**Date:** 2026-07-09\n",
        )],
        "docs: post-mortem for 2026-07-09 [ci skip]",
    );
    repo.run_with(cfg).await;
    assert_eq!(
        pages("gh-pages"),
        [
            "2026-07-01-ingress.html",
            "2026-07-09-backup.html",
            "CNAME",
            "index.html"
        ]
    );
    assert_eq!(
        git(&repo.bare, &["rev-list", "--count", "gh-pages"]).trim(),
        "3"
    );
    repo.assert_clean();
}

#[tokio::test]
async fn one_old_or_unreadable_document_never_blocks_the_others() {
    let repo = Repo::new().await;
    // Alphabetically first, oldest, P0, and its agent always crashes: the reference would
    // have retried this one file on every push. A second file is not even UTF-8.
    repo.push_as_someone_else(
        &[
            (
                "docs/post-mortems/2019-01-01-ancient.md",
                "# Post-Mortem: ancient\n\n**Date:** 2019-01-01\n\n## Prevention Plan\n\n| Priority | Action | Type | Status |\n|---|---|---|---|\n| P0 | Add alert on the ancient thing | Alert | TODO |\n",
            ),
            ("docs/post-mortems/2018-06-06-latin1.md", "# Caf\u{e9}\n"),
        ],
        "docs: old post-mortems [ci skip]",
    );
    // Overwrite the second one with Latin-1 bytes.
    let scratch = repo.tmp.path().join("latin1");
    git(
        repo.tmp.path(),
        &[
            "clone",
            "-q",
            repo.bare.to_str().unwrap(),
            scratch.to_str().unwrap(),
        ],
    );
    std::fs::write(
        scratch.join("docs/post-mortems/2018-06-06-latin1.md"),
        b"# Caf\xe9\n\n| P1 | Add alert | Alert | TODO |\n",
    )
    .unwrap();
    git(&scratch, &["commit", "-qam", "latin-1"]);
    git(&scratch, &["push", "-q", "origin", "master"]);
    repo.agent_modes(&[("ancient", "crash")]);
    let out = repo.run().await;
    assert_eq!(out.status, RunStatus::Succeeded, "{}", out.summary);
    let implemented: Vec<&str> = out
        .items
        .iter()
        .filter(|i| matches!(i.outcome, ItemOutcome::Implemented { .. }))
        .map(|i| i.action.as_str())
        .collect();
    assert_eq!(implemented, [SERVFAIL, MOUNT, TCP, LATENCY]);
    assert_eq!(out.items[0].postmortem, "2019-01-01-ancient.md");
    assert!(matches!(out.items[0].outcome, ItemOutcome::Refused { .. }));
    let lines = repo.store.run_log(out.run, 0).await.unwrap();
    assert!(
        lines.iter().any(|l| l
            .line
            .contains("skipped docs/post-mortems/2018-06-06-latin1.md")
            && l.line.contains("not valid UTF-8")),
        "{lines:?}"
    );
    // And the next run does not try the old one again.
    let again = repo.run().await;
    assert!(
        again.summary.starts_with("nothing to do"),
        "{}",
        again.summary
    );
    assert_eq!(repo.agent_calls().len(), 5);
}
