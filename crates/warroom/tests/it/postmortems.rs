//! Post-mortems drafted from real incidents, read back by the parser, edited, published.

use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;
use time::Duration;
use warroom_server::{Settings, postmortems::PostmortemSettings};
use warroom_testkit::{TestApp, backends};

use super::cli::{ok, run};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn app_with_folder(
    b: warroom_testkit::Backend,
    dir: &std::path::Path,
    draft_on_resolve: bool,
) -> TestApp {
    let settings = Settings {
        postmortems: Some(PostmortemSettings {
            dir: dir.to_owned(),
            git_commit: true,
            draft_on_resolve,
        }),
        ..Default::default()
    };
    TestApp::spawn_with(b, settings).await
}

async fn run_incident(app: &TestApp) {
    let (st, _) = app
        .post(
            "/api/v1/incidents",
            json!({"service": "api", "summary": "30% of requests failing",
                   "signals": {"users_can_access": true, "failing_percent": 30, "recovering": false}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    app.clock.advance(Duration::minutes(2));
    app.post(
        "/api/v1/incidents/1/roles",
        json!({"role": "commander", "person": "rita"}),
    )
    .await;
    app.post(
        "/api/v1/incidents/1/transition",
        json!({"to": "investigating"}),
    )
    .await;
    app.clock.advance(Duration::minutes(5));
    app.post(
        "/api/v1/incidents/1/notes",
        json!({"text": "Rolled back to v41", "action": true}),
    )
    .await;
    app.post(
        "/api/v1/incidents/1/transition",
        json!({"to": "identified"}),
    )
    .await;
    app.clock.advance(Duration::minutes(6));
    let (st, v) = app
        .post("/api/v1/incidents/1/transition", json!({"to": "resolved", "root_cause": "Bad config in v42", "fix_applied": "Rollback to v41"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_drafted_post_mortem_has_the_real_timeline_and_durations_and_parses_back() {
    for b in backends() {
        let folder = tempfile::tempdir().unwrap();
        git(folder.path(), &["init", "-q"]);
        let app = app_with_folder(b, folder.path(), false).await;
        run_incident(&app).await;
        let (st, d) = app.post("/api/v1/incidents/1/postmortem", json!({})).await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {d}");
        assert_eq!(d["file_name"], "2026-01-12-api-30-of-requests-failing.md");
        let md = std::fs::read_to_string(
            folder
                .path()
                .join("2026-01-12-api-30-of-requests-failing.md"),
        )
        .unwrap();
        assert_eq!(md, d["markdown"].as_str().unwrap());
        assert!(
            md.starts_with("# Post-Mortem: API - 30% of requests failing\n"),
            "{md}"
        );
        assert!(
            md.contains("| Duration | 13m (detection to resolution) |"),
            "{b:?}: detection 14:30 to resolution 14:43\n{md}"
        );
        assert!(md.contains("| Severity | SEV2 (Major) |"), "{md}");
        for row in [
            "| 14:30 | Declared \"INCIDENT: API",
            "| 14:32 | rita is now commander",
            "| 14:37 | Action: Rolled back to v41",
            "| 14:43 | Resolved after 13 minutes",
        ] {
            assert!(
                md.contains(row),
                "{b:?}: timeline row `{row}` missing\n{md}"
            );
        }
        assert!(md.contains("Bad config in v42"));

        let log = git(folder.path(), &["log", "--format=%s"]);
        assert_eq!(
            log.trim(),
            "docs: post-mortem for 2026-01-12 API - 30% of requests failing [ci skip]"
        );

        let parsed = warroom_postmortem::parse_document("pm.md", &md);
        assert_eq!(
            parsed.meta.title.as_deref(),
            Some("API - 30% of requests failing")
        );
        assert_eq!(parsed.meta.severity, Some(2));
        assert_eq!(
            parsed.meta.date.map(|d| d.to_string()).as_deref(),
            Some("2026-01-12")
        );
        assert_eq!(
            parsed.items.len(),
            0,
            "the placeholder row is not a follow-up"
        );

        // A second draft never overwrites the first.
        let (st, v) = app.post("/api/v1/incidents/1/postmortem", json!({})).await;
        assert_eq!(st, StatusCode::CONFLICT, "{v}");
        assert!(v["message"].as_str().unwrap().contains("already exists"));
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        assert!(
            tl.to_string()
                .contains("Post-mortem drafted: 2026-01-12-api-30-of-requests-failing.md (commit "),
            "{tl}"
        );

        // Published by the server, generated from the folder.
        let (st, index) = app
            .call(reqwest::Method::GET, "/postmortems/", None, None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            index
                .as_str()
                .unwrap()
                .contains("API - 30% of requests failing"),
            "{index}"
        );
        let (st, page) = app
            .call(
                reqwest::Method::GET,
                "/postmortems/2026-01-12-api-30-of-requests-failing.html",
                None,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(page.as_str().unwrap().contains("<table"), "tables rendered");
    }
}

#[tokio::test]
async fn resolving_drafts_the_post_mortem_when_configured() {
    let b = backends()[0];
    let folder = tempfile::tempdir().unwrap();
    let app = app_with_folder(b, folder.path(), true).await;
    run_incident(&app).await;
    let files: Vec<_> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // Not a git work tree: written, not committed, and that is fine.
    let (st, _) = app.post("/api/v1/incidents/1/postmortem", json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT);
}

#[tokio::test]
async fn drafting_without_a_folder_says_how_to_configure_one() {
    let app = TestApp::spawn(backends()[0]).await;
    app.post(
        "/api/v1/incidents",
        json!({"service": "api", "summary": "x", "severity": 3}),
    )
    .await;
    let (st, v) = app.post("/api/v1/incidents/1/postmortem", json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(
        v["message"].as_str().unwrap().contains("[postmortems] dir"),
        "{v}"
    );
    let (st, _) = app
        .call(reqwest::Method::GET, "/postmortems/", None, None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../warroom-postmortem/tests/fixtures")
}

#[test]
fn cli_parses_lists_marks_and_publishes_a_folder() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pm");
    std::fs::create_dir(&dir).unwrap();
    for f in std::fs::read_dir(fixtures()).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|x| x == "md") {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    let todos = ok(&run(
        work.path(),
        &[],
        &["postmortem", "todos", dir.to_str().unwrap(), "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&todos).unwrap();
    let pending = v["pending"].as_array().unwrap();
    assert!(!pending.is_empty());
    let prios: Vec<&str> = pending
        .iter()
        .map(|p| p["priority"].as_str().unwrap())
        .collect();
    let mut sorted = prios.clone();
    sorted.sort();
    assert_eq!(prios, sorted, "pending items come P0 first");

    // Mark the first pending item of some file done, and only that changes.
    let first = &pending[0];
    let file = first["file"].as_str().unwrap().to_owned();
    let id = first["id"].as_str().unwrap().to_owned();
    let before = std::fs::read_to_string(&file).unwrap();
    ok(&run(
        work.path(),
        &[],
        &["postmortem", "mark", &file, &id, "--status", "done"],
    ));
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(before, after);
    let prefix = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = before
        .bytes()
        .rev()
        .zip(after.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        before.len() - prefix - suffix.min(before.len() - prefix) < 40,
        "only one status changed"
    );
    let parsed = ok(&run(
        work.path(),
        &[],
        &["postmortem", "parse", &file, "--json"],
    ));
    let parsed: serde_json::Value = serde_json::from_str(&parsed).unwrap();
    let item = parsed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(item["status"], "done", "{item}");

    let out = work.path().join("site");
    ok(&run(
        work.path(),
        &[],
        &[
            "site",
            "build",
            "--postmortems",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(out.join("index.html").exists());
    let pages = std::fs::read_dir(&out).unwrap().count();
    assert!(
        pages > 5,
        "one page per post-mortem plus the index: {pages}"
    );

    // An empty folder fails loudly.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(
        work.path(),
        &[],
        &[
            "site",
            "build",
            "--postmortems",
            empty.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no post-mortems found"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        work.path(),
        &[],
        &["postmortem", "parse", "/no/such/file.md"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /no/such/file.md"));
}
