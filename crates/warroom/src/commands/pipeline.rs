//! `warroom pipeline run|status|log|approve`: on the database directly, like `token`, so they
//! work without a server (runs are jobs in the store either way).

use anyhow::{Context, bail};
use std::{path::PathBuf, sync::Arc};
use warroom_pipeline::{PipelineConfig, Runner};
use warroom_store::{Clock, RunRecord, Store, SystemClock};

use super::{output, serve};
use crate::cli::{PipelineCommand, ServerArgs};

/// Names this process in leases, so `status` shows who holds a run.
pub fn runner_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// The server's check that an approved id names a follow-up, through the pipeline's scan.
pub fn item_lookup(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: PipelineConfig,
) -> warroom_server::pipeline::ItemLookup {
    let runner = Runner::new(store, clock, cfg, runner_name());
    Arc::new(move |id: String| {
        let runner = runner.clone();
        Box::pin(async move {
            runner
                .find_item(&id)
                .await
                .map(|found| found.map(target))
                .map_err(|e| e.to_string())
        })
    })
}

fn target(f: warroom_pipeline::FoundItem) -> warroom_server::pipeline::ApprovalTarget {
    warroom_server::pipeline::ApprovalTarget {
        postmortem: f.postmortem,
        action: f.action,
        item_type: f.item_type,
        priority: f.priority,
        open: f.open,
    }
}

fn pipeline_config(
    server: &ServerArgs,
    repo: Option<PathBuf>,
) -> anyhow::Result<(crate::config::Checked, PipelineConfig)> {
    let checked = serve::load_config(server)?;
    // Runs, items and approvals are keyed by the repository's path: `--repo infra` and the
    // configured `/srv/infra` must be one key, or an approval would never reach the runs.
    let same = |a: &std::path::Path, b: &std::path::Path| match (
        std::fs::canonicalize(a),
        std::fs::canonicalize(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    let repo = repo.map(|r| std::path::absolute(&r).unwrap_or(r));
    let cfg = match (repo, &checked.pipeline) {
        (Some(repo), Some(p)) if same(&p.config.repo, &repo) => p.config.clone(),
        (Some(repo), configured) => {
            // A repository given by hand keeps the configured guardrails, if any.
            let mut c = configured
                .as_ref()
                .map(|p| p.config.clone())
                .unwrap_or_else(|| PipelineConfig::new(repo.clone()));
            let defaults = PipelineConfig::new(repo.clone());
            c.repo = repo;
            c.repo_key = defaults.repo_key;
            c.work_dir = defaults.work_dir;
            let problems = c.problems();
            if !problems.is_empty() {
                bail!("{}", problems.join("\n"));
            }
            c
        }
        (None, Some(p)) => p.config.clone(),
        (None, None) => bail!(
            "no repository: pass --repo PATH or configure [pipeline] repo = \"PATH\" (see `warroom config example`)"
        ),
    };
    if !cfg.repo.join(".git").exists() {
        bail!(
            "{} is not a git clone; clone the repository there first",
            cfg.repo.display()
        );
    }
    Ok((checked, cfg))
}

fn row(r: &RunRecord) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.status.as_str().to_string(),
        format!("{}/{}", r.items_done, r.items_total),
        format!("${:.2}", r.cost_usd),
        r.trigger.clone(),
        warroom_domain::timefmt::date_hm_utc(r.created_at),
        r.error
            .clone()
            .or_else(|| r.summary.clone())
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect(),
    ]
}

async fn print_log(store: &Arc<dyn Store>, run: i64, after: i64) -> anyhow::Result<i64> {
    let mut last = after;
    for l in store.run_log(run, after).await? {
        eprintln!("{}  {}", warroom_domain::timefmt::rfc3339(l.at), l.line);
        last = l.id;
    }
    Ok(last)
}

pub async fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    match cmd {
        PipelineCommand::Run {
            repo,
            dry_run,
            json,
            server,
        } => {
            let (checked, cfg) = pipeline_config(&server, repo)?;
            let store = serve::open_store(&checked.config.database_url.0)
                .await
                .context("opening the database")?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let runner = Runner::new(store.clone(), clock, cfg, runner_name());
            if dry_run {
                let plan = runner.dry_run().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let review = runner
                    .pending_review()
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "items": plan,
                            "needs_human_review": review,
                        }))?
                    );
                    return Ok(());
                }
                if !review.is_empty() {
                    println!(
                        "would record {} follow-ups as needing a person (a row each in Follow-up Implementation):",
                        review.len()
                    );
                    for r in &review {
                        println!(
                            "  {}  {} {}  {}: {}",
                            r.item_id, r.priority, r.item_type, r.postmortem, r.action
                        );
                    }
                }
                if plan.is_empty() {
                    println!("nothing to implement: no pending safe or approved follow-ups");
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = plan
                    .iter()
                    .map(|p| {
                        vec![
                            p.item_id.clone(),
                            p.priority.clone(),
                            p.item_type.clone(),
                            p.why.clone(),
                            p.state.clone(),
                            p.postmortem.clone(),
                            p.commit_message.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "PRIO",
                        "TYPE",
                        "WHY",
                        "STATE",
                        "POST-MORTEM",
                        "WOULD COMMIT",
                    ],
                    &rows,
                );
                let c = runner.config();
                println!(
                    "guardrails: budget ${:.2}, max {} changed lines, agent limit {}s, protected: {}; plan: {}; apply: {}",
                    c.budget_usd,
                    c.max_diff_lines,
                    c.item_timeout.as_secs(),
                    c.protected_paths.join(", "),
                    c.plan
                        .as_ref()
                        .map(|p| p.join(" "))
                        .unwrap_or_else(|| "none".into()),
                    c.apply
                        .as_ref()
                        .map(|p| p.join(" "))
                        .unwrap_or_else(|| "none".into()),
                );
                return Ok(());
            }
            let (queued, _) = runner.enqueue("manual", None).await?;
            eprintln!("run {} queued", queued.id);
            // The log is printed while the run works, so a long run shows its progress; the
            // position is shared so the lines after the last poll are printed once, at the end.
            let printed = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
            let follower = {
                let store = store.clone();
                let id = queued.id;
                let printed = printed.clone();
                tokio::spawn(async move {
                    loop {
                        let after = printed.load(std::sync::atomic::Ordering::SeqCst);
                        if let Ok(last) = print_log(&store, id, after).await {
                            printed.store(last, std::sync::atomic::Ordering::SeqCst);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                })
            };
            let mut outcome = None;
            while let Some(o) = runner.run_next().await? {
                let mine = o.run == queued.id;
                outcome = Some(o);
                if mine {
                    break;
                }
            }
            follower.abort();
            // Aborted only at an await, so the position it stored matches what it printed.
            let _ = follower.await;
            let after = printed.load(std::sync::atomic::Ordering::SeqCst);
            let _ = print_log(&store, queued.id, after).await.map(|_| ());
            let run = store.pipeline_run(queued.id).await?;
            match outcome {
                Some(_) if json => {
                    println!("{}", serde_json::to_string_pretty(&run)?);
                    if run.status == warroom_store::RunStatus::Failed {
                        bail!("run {} failed", run.id);
                    }
                }
                Some(o) if o.run == queued.id => {
                    println!("{}", o.summary);
                    if run.status == warroom_store::RunStatus::Failed {
                        bail!("run {} failed", run.id);
                    }
                }
                _ => println!(
                    "run {} is {}: another runner holds this repository; see `warroom pipeline status`",
                    run.id,
                    run.status.as_str()
                ),
            }
        }
        PipelineCommand::Status { json, server } => {
            let checked = serve::load_config(&server)?;
            let store = serve::open_store(&checked.config.database_url.0).await?;
            let runs = store.list_runs(20).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            let mut rows = Vec::with_capacity(runs.len());
            for r in &runs {
                let mut cells = row(r);
                // A running run has no summary yet; its latest log line says what it is doing.
                if r.status == warroom_store::RunStatus::Running
                    && let Some(last) = store.run_log(r.id, 0).await?.pop()
                    && let Some(c) = cells.last_mut()
                {
                    *c = format!("now: {}", last.line.chars().take(75).collect::<String>());
                }
                rows.push(cells);
            }
            output::table(
                &[
                    "RUN", "STATUS", "ITEMS", "COST", "TRIGGER", "QUEUED", "SUMMARY",
                ],
                &rows,
            );
        }
        PipelineCommand::Log {
            run,
            follow,
            json,
            server,
        } => {
            let checked = serve::load_config(&server)?;
            let store = serve::open_store(&checked.config.database_url.0).await?;
            let mut r = store.pipeline_run(run).await.map_err(|e| {
                anyhow::anyhow!("{e}; see `warroom pipeline status` for run numbers")
            })?;
            if json {
                let log = store.run_log(run, 0).await?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "run": r, "log": log }))?
                );
                return Ok(());
            }
            let mut after = 0;
            loop {
                for l in store.run_log(run, after).await? {
                    println!("{}  {}", warroom_domain::timefmt::rfc3339(l.at), l.line);
                    after = l.id;
                }
                let live = matches!(
                    r.status,
                    warroom_store::RunStatus::Queued | warroom_store::RunStatus::Running
                );
                if !follow || !live {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                r = store.pipeline_run(run).await?;
            }
            println!(
                "run {}: {} ({}/{} items, ${:.2})",
                r.id,
                r.status.as_str(),
                r.items_done,
                r.items_total,
                r.cost_usd
            );
        }
        PipelineCommand::Approve {
            item,
            by,
            repo,
            json,
            server,
        } => {
            let item = item.trim().to_string();
            if !warroom_server::pipeline::is_item_id(&item) {
                bail!(
                    "`{item}` is not an item id; ids are 12 hex digits, see `warroom postmortem todos DIR`"
                );
            }
            let (checked, cfg) = pipeline_config(&server, repo)?;
            let store = serve::open_store(&checked.config.database_url.0).await?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let runner = Runner::new(store.clone(), clock, cfg.clone(), runner_name());
            // A typo would otherwise be stored and then silently match nothing.
            let found = runner
                .find_item(&item)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the post-mortems: {e}"))?;
            let Some(found) = found else {
                bail!(
                    "no follow-up with id {item} in {} on {}; ids come from `warroom postmortem todos` or `warroom pipeline run --dry-run`, and change when the action text is edited",
                    cfg.postmortems_dir,
                    cfg.branch
                );
            };
            if !found.open {
                bail!(
                    "{item} (\"{}\" in {}) is already done or dropped; nothing to approve",
                    found.action,
                    found.postmortem
                );
            }
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into());
            let now = time::OffsetDateTime::now_utc();
            let a = store.approve_item(&cfg.repo_key, &item, &by, now).await?;
            let (run, _) = store
                .enqueue_run(&cfg.repo_key, "approval", None, now)
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "approval": a, "item": found, "run": run.id })
                    )?
                );
                return Ok(());
            }
            println!(
                "{} approved by {}: {} {} \"{}\" in {}{}; run {} queued (a worker, or `warroom pipeline run`, executes it)",
                a.item_id,
                a.approved_by,
                found.priority,
                found.item_type,
                found.action,
                found.postmortem,
                if found.safe {
                    " (a safe type: automation takes it even without approval)"
                } else {
                    ""
                },
                run.id
            );
        }
    }
    Ok(())
}
