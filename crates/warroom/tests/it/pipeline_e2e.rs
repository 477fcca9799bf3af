//! The whole pipeline through the binary: a signed push webhook to `warroom serve`, its worker
//! running the scripted agent against real git repositories, the server killed mid-run and
//! restarted, the run resumed with nothing done twice; and `warroom pipeline run|status|log`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use warroom_testkit::{
    Backend, fresh_database,
    git::{git, seeded_remote},
};

use crate::cli::{Server, create_token_with, ok, run};

const SECRET: &str = "e2e-webhook-secret-0123456789";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../warroom-pipeline/tests/fixtures")
}

/// A bare remote with the fixture post-mortems, the pipeline's clone, and a config file.
fn setup(dir: &Path, modes: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (bare, clone) = seeded_remote(dir, "infra", &fixtures().join("postmortems"), &[]);
    std::fs::write(dir.join("modes"), modes).unwrap();
    let agent = json!([
        "bash",
        fixtures().join("fake-agent.sh"),
        "--modes",
        dir.join("modes"),
        "--log",
        dir.join("agent.log"),
        "--remote",
        bare
    ]);
    let config = dir.join("warroom.toml");
    std::fs::write(
        &config,
        format!(
            "[pipeline]\nrepo = {:?}\nagent = {agent}\nitem_timeout_secs = 40\ncommand_timeout_secs = 10\nrun_timeout_secs = 300\nlease_secs = 3\nsweep_secs = 0\nsite_dir = {:?}\nwebhook_secret_env = \"WR_E2E_SECRET\"\nrepository = \"ops/infra\"\n",
            clone.display().to_string(),
            dir.join("site").display().to_string()
        ),
    )
    .unwrap();
    (bare, clone, config)
}

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn subjects(bare: &Path) -> Vec<String> {
    git(bare, &["log", "--reverse", "--format=%s", "master"])
        .lines()
        .map(String::from)
        .collect()
}

/// The NFS post-mortem as the remote's master has it now, and what the engine reads in it.
fn nfs_on_master(bare: &Path) -> (String, warroom_postmortem::ParsedDocument) {
    const FILE: &str = "2026-04-14-nfs-stale-handles.md";
    let text = git(bare, &["show", &format!("master:docs/post-mortems/{FILE}")]);
    let parsed = warroom_postmortem::parse_document(FILE, &text);
    (text, parsed)
}

fn find_item<'a>(
    doc: &'a warroom_postmortem::ParsedDocument,
    action: &str,
) -> &'a warroom_postmortem::Item {
    doc.items
        .iter()
        .find(|i| i.action.starts_with(action))
        .unwrap_or_else(|| panic!("no follow-up starting {action:?}"))
}

async fn run_status(url: &str, http: &reqwest::Client, token: &str, run: i64) -> Value {
    let r = http
        .get(format!("{url}/api/v1/pipeline/runs/{run}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_webhook_run_survives_the_server_being_killed_and_resumes_without_redoing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, _clone, config) = setup(dir.path(), "mount options=slow-once\n");
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let cfg = config.to_str().unwrap();
    let env = [("WR_E2E_SECRET", SECRET)];
    let token = create_token_with(
        dir.path(),
        &env,
        &db.url,
        "viewer",
        "e2e",
        &["--config", cfg],
    );
    let server = Server::start_with(&db.url, dir.path(), &["--config", cfg], &env);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let body = serde_json::to_vec(&json!({
        "ref": "refs/heads/master",
        "after": git(&bare, &["rev-parse", "master"]).trim(),
        "repository": { "full_name": "ops/infra" },
        "commits": [{ "added": ["docs/post-mortems/2026-04-14-nfs-stale-handles.md"], "modified": [], "removed": [] }],
    }))
    .unwrap();
    let resp = http
        .post(format!("{}/hooks/git", server.url))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", sign(&body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    let id = v["run"].as_i64().unwrap();

    // Wait until the first item is committed and the second one's agent is working (it has
    // logged its call and is sleeping).
    let mut seen = false;
    for _ in 0..300 {
        let s = run_status(&server.url, &http, &token, id).await;
        let calls = std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
        if s["run"]["items_done"] == 1 && calls.lines().count() == 2 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the run never got to its second item");
    // A long run shows its progress and what it is doing now.
    let status = ok(&run(
        dir.path(),
        &env,
        &["pipeline", "status", "--config", cfg, "--database", &db.url],
    ));
    assert!(
        status.contains("running") && status.contains("1/4") && status.contains("now: "),
        "{status}"
    );
    drop(server); // SIGKILL: no shutdown, no lease released
    assert_eq!(
        subjects(&bare).len(),
        1,
        "nothing was pushed before the kill"
    );

    let server = Server::start_with(&db.url, dir.path(), &["--config", cfg], &env);
    let mut done = Value::Null;
    for _ in 0..600 {
        let s = run_status(&server.url, &http, &token, id).await;
        if s["run"]["status"] != "running" && s["run"]["status"] != "queued" {
            done = s;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["run"]["status"], "succeeded", "{done}");
    assert_eq!(done["run"]["attempts"], 2, "{done}");
    assert_eq!(
        (
            done["run"]["items_done"].as_i64(),
            done["run"]["items_total"].as_i64()
        ),
        (Some(4), Some(4))
    );
    let lines: Vec<&str> = done["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["line"].as_str())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("already committed") && l.contains("(resumed)")),
        "{lines:?}"
    );

    let calls = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert_eq!(
        calls.lines().count(),
        5,
        "one item twice (killed mid-way), the others once: {calls}"
    );
    let subjects = subjects(&bare);
    let fixes: Vec<&String> = subjects
        .iter()
        .filter(|s| s.starts_with("fix(post-mortem): "))
        .collect();
    assert_eq!(fixes.len(), 4, "{subjects:?}");
    let unique: std::collections::BTreeSet<&&String> = fixes.iter().collect();
    assert_eq!(unique.len(), 4, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .any(|s| s == "docs: update post-mortem follow-up [PM-2026-04-14] [ci skip]")
    );
    assert!(dir.path().join("site/index.html").is_file());

    // The same push delivered again: the same run, nothing new.
    let again: Value = http
        .post(format!("{}/hooks/git", server.url))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["run"].as_i64(), &again["duplicate"]),
        (Some(id), &json!(true))
    );

    // The CLI sees the same store.
    let status = ok(&run(
        dir.path(),
        &env,
        &["pipeline", "status", "--config", cfg, "--database", &db.url],
    ));
    assert!(
        status.contains("succeeded") && status.contains("4/4"),
        "{status}"
    );
    let log = ok(&run(
        dir.path(),
        &env,
        &[
            "pipeline",
            "log",
            &id.to_string(),
            "--follow",
            "--config",
            cfg,
            "--database",
            &db.url,
        ],
    ));
    assert!(log.contains("pushed"), "{log}");

    // Approvals through the API are checked against the post-mortems `serve` reads.
    let responder = create_token_with(
        dir.path(),
        &env,
        &db.url,
        "responder",
        "rita",
        &["--config", cfg],
    );
    let approve = |item: &str| {
        http.post(format!("{}/api/v1/pipeline/approvals", server.url))
            .bearer_auth(&responder)
            .json(&json!({ "item": item }))
            .send()
    };
    let r = approve("0123456789ab").await.unwrap();
    assert_eq!(r.status(), 404);
    let (_, parsed) = nfs_on_master(&bare);
    let immich = find_item(&parsed, "Migrate Immich");
    let r = approve(&immich.id).await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["item"]["type"], "Architecture", "{v}");
}

#[tokio::test]
async fn pipeline_run_by_hand_with_a_dry_run_first() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, clone, config) = setup(dir.path(), "");
    // No [pipeline] needed for a run by hand: --repo and the defaults (with our agent).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            &format!("repo = {:?}\n", clone.display().to_string()),
            "repo = \"/nonexistent\"\n",
        ),
    )
    .unwrap();
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let cfg = config.to_str().unwrap();
    let repo = clone.to_str().unwrap();
    let env = [("WR_E2E_SECRET", SECRET)];
    let pipeline = |args: &[&str]| {
        let mut a = vec!["pipeline"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--config", cfg, "--database", &db.url]);
        run(dir.path(), &env, &a)
    };
    let e = pipeline(&["run", "--repo", repo, "--dry-run"]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("pipeline.repo:"),
        "the config's own repo is still checked"
    );
    std::fs::write(&config, text).unwrap();
    let plan = ok(&pipeline(&["run", "--repo", repo, "--dry-run"]));
    assert!(
        plan.contains("fix(post-mortem): add alert on CoreDNS SERVFAIL rate [PM-2026-05-02]"),
        "{plan}"
    );
    // The document edits for unsafe items are announced too.
    assert!(
        plan.contains("would record 2 follow-ups as needing a person"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "Architecture  docs/post-mortems/2026-04-14-nfs-stale-handles.md: Migrate Immich"
        ),
        "{plan}"
    );
    assert!(plan.contains("budget $5.00"), "{plan}");
    assert_eq!(subjects(&bare).len(), 1, "a dry run changes nothing");
    // Relative to the current directory, as a person types it.
    let out = ok(&pipeline(&["run", "--repo", "infra"]));
    assert!(out.contains("4 implemented, 0 need human review"), "{out}");
    assert_eq!(subjects(&bare).len(), 7);
    let out = ok(&pipeline(&["run", "--repo", repo]));
    assert!(out.contains("nothing to do"), "{out}");
    let e = pipeline(&["approve", "xyz"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("not an item id"));
    let e = pipeline(&["log", "99"]);
    assert!(!e.status.success(), "an unknown run is an error");
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("pipeline run 99 not found"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );

    // Well-formed but no post-mortem has it: refused, nothing stored.
    let e = pipeline(&["approve", "0123456789ab"]);
    assert!(!e.status.success());
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(
        stderr.contains("no follow-up with id 0123456789ab in docs/post-mortems on master"),
        "{stderr}"
    );
    let (nfs, parsed) = nfs_on_master(&bare);
    let immich = find_item(&parsed, "Migrate Immich");
    // The run recorded it for a person, with the command to approve it.
    assert!(
        nfs.contains(&format!("`warroom pipeline approve {}`", immich.id)),
        "{nfs}"
    );
    let done = find_item(&parsed, "Add Uptime Kuma");
    let e = pipeline(&["approve", &done.id]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("already done"),
        "{e:?}"
    );
    let out: Value = serde_json::from_str(&ok(&pipeline(&[
        "approve", &immich.id, "--by", "ana", "--json",
    ])))
    .unwrap();
    assert_eq!(out["item"]["action"], immich.action.as_str());
    assert_eq!(out["approval"]["approved_by"], "ana");
    let queued = out["run"].as_i64().unwrap();

    let status: Value = serde_json::from_str(&ok(&pipeline(&["status", "--json"]))).unwrap();
    assert_eq!(status[0]["id"].as_i64(), Some(queued));
    assert_eq!(status[0]["status"], "queued");
    // `--repo infra` and the configured absolute path are one repository, so approvals made
    // against the config reach the runs made by hand.
    for r in status.as_array().unwrap() {
        assert_eq!(r["repo"], clone.display().to_string(), "{status}");
    }
    let table = ok(&pipeline(&["status"]));
    assert!(table.contains("ITEMS") && table.contains("4/4"), "{table}");
    let log: Value = serde_json::from_str(&ok(&pipeline(&["log", "1", "--json"]))).unwrap();
    assert_eq!(log["run"]["status"], "succeeded");
    assert!(
        log["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["line"].as_str().unwrap().contains("pushed")),
        "{log}"
    );
    let text = ok(&pipeline(&["log", "1"]));
    // Every line carries its time.
    assert!(text.lines().next().unwrap().starts_with("20"), "{text}");

    // A folder that is not a git clone.
    let plain = dir.path().join("not-a-repo");
    std::fs::create_dir_all(&plain).unwrap();
    let e = pipeline(&["run", "--repo", plain.to_str().unwrap(), "--dry-run"]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("is not a git clone"),
        "{e:?}"
    );
}
