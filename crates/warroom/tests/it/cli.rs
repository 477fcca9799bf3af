//! The CLI against a real `warroom serve` process, as a user would run them.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
};
use warroom_testkit::{backends, fresh_database};

const BIN: &str = env!("CARGO_BIN_EXE_warroom");

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(database: &str, dir: &std::path::Path) -> Server {
        Self::start_with(database, dir, &[], &[])
    }

    pub fn start_with(
        database: &str,
        dir: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .env_remove("WARROOM_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn warroom serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("warroom listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// What the CLI needs to talk to this server as the holder of `token`.
    pub fn client_env<'a>(&'a self, token: &'a str) -> [(&'static str, &'a str); 2] {
        [("WARROOM_URL", self.url.as_str()), ("WARROOM_TOKEN", token)]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env_remove("WARROOM_CONFIG")
        .env_remove("WARROOM_TOKEN")
        .env_remove("WARROOM_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run warroom")
}

pub fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "failed: {}\nstdout: {out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A token made by `warroom token create` straight against the database, as an operator does
/// before any server is up.
pub fn create_token(dir: &std::path::Path, database: &str, role: &str, name: &str) -> String {
    create_token_with(dir, &[], database, role, name, &[])
}

/// [`create_token`] with extra environment and arguments, for a `--config` whose secrets come
/// from the environment.
pub fn create_token_with(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    database: &str,
    role: &str,
    name: &str,
    args: &[&str],
) -> String {
    let mut argv = vec!["token", "create", "--role", role, "--name", name];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--database", database]);
    ok(&run(dir, env, &argv)).trim().to_owned()
}

fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one-line reason expected: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[tokio::test]
async fn scripted_walkthrough_survives_a_restart() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let token = create_token(dir, &db.url, "admin", "ana");
        assert!(
            token.starts_with("wr_"),
            "only the token on stdout: {token}"
        );

        let server = Server::start(&db.url, dir);
        let env = server.client_env(&token);
        let out = ok(&run(
            dir,
            &env,
            &[
                "declare",
                "--service",
                "api",
                "--summary",
                "30% of requests failing",
                "--failing-percent",
                "30",
                "--users-can-access",
                "yes",
                "--recovering",
                "no",
                "--json",
            ],
        ));
        let i: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(i["severity"], 2, "{b:?}");
        assert_eq!(i["title"], "INCIDENT: API - 30% of requests failing");
        let today = time::OffsetDateTime::now_utc().date();
        let want_channel = format!(
            "#incident-{:04}{:02}{:02}-api",
            today.year(),
            u8::from(today.month()),
            today.day()
        );
        assert_eq!(i["channel"], want_channel.as_str());
        assert_eq!(i["severity_trace"][1]["question"], "q2_failing_percent");

        let human = ok(&run(dir, &env, &["show", "1"]));
        assert!(
            human.contains("Severity:  2 (Major), by decision tree"),
            "{human}"
        );
        assert!(
            human.contains("What percentage of requests are failing? → 10-50% (30)"),
            "{human}"
        );

        ok(&run(
            dir,
            &env,
            &["assign", "1", "--role", "commander", "--person", "ana"],
        ));
        ok(&run(
            dir,
            &env,
            &[
                "assign",
                "1",
                "--role",
                "technical_responder",
                "--person",
                "bo",
            ],
        ));
        let upd = ok(&run(
            dir,
            &env,
            &[
                "update",
                "1",
                "--status",
                "investigating",
                "--action",
                "Checking pod logs",
                "--findings",
                "CrashLoopBackOff",
                "--next",
                "Roll back",
            ],
        ));
        assert!(
            upd.contains("UPDATE\nStatus: Investigating\nCurrent Action: Checking pod logs"),
            "{upd}"
        );
        ok(&run(
            dir,
            &env,
            &["note", "1", "Rolled back to v41", "--action"],
        ));
        ok(&run(dir, &env, &["transition", "1", "identified"]));
        ok(&run(
            dir,
            &env,
            &[
                "resolve",
                "1",
                "--root-cause",
                "Bad config in v42",
                "--fix",
                "Rollback",
                "--impact-count",
                "1200",
                "--impact-who",
                "API clients",
            ],
        ));
        let err = fails(&run(dir, &env, &["transition", "1", "monitoring"]));
        assert!(
            err.contains("allowed from resolved: investigating, closed"),
            "{err}"
        );
        ok(&run(dir, &env, &["close", "1"]));

        drop(server);
        let server = Server::start(&db.url, dir);
        let env = server.client_env(&token);
        let tl = ok(&run(dir, &env, &["timeline", "1", "--json"]));
        let tl: serde_json::Value = serde_json::from_str(&tl).unwrap();
        let kinds: Vec<&str> = tl["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        for k in [
            "declared",
            "role_assigned",
            "status_changed",
            "update_posted",
            "action_taken",
            "field_recorded",
            "resolved",
            "closed",
        ] {
            assert!(kinds.contains(&k), "{b:?}: {k} missing from {kinds:?}");
        }
        let list = ok(&run(dir, &env, &["incidents", "--status", "closed"]));
        assert!(
            list.contains("INCIDENT: API - 30% of requests failing"),
            "{list}"
        );
        let msgs = ok(&run(dir, &env, &["messages", "1"]));
        assert!(msgs.contains("✅ INCIDENT RESOLVED"), "{msgs}");
    }
}

#[tokio::test]
async fn client_errors_are_one_line_and_non_zero() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let err = fails(&run(
        dir,
        &[("WARROOM_URL", "http://127.0.0.1:9")],
        &["incidents"],
    ));
    assert!(
        err.contains("cannot reach warroom at http://127.0.0.1:9"),
        "{err}"
    );
    let err = fails(&run(dir, &[], &["show", "abc"]));
    assert!(err.contains("`abc` is not an incident number"), "{err}");
    let err = fails(&run(dir, &[], &["classify"]));
    assert!(err.contains("give either an explicit severity"), "{err}");
    let err = fails(&run(dir, &[], &["classify", "--severity", "7"]));
    assert!(err.contains("7 is not a severity"), "{err}");

    let db = fresh_database(warroom_testkit::Backend::Sqlite)
        .await
        .unwrap();
    let server = Server::start(&db.url, dir);
    let err = fails(&run(dir, &[("WARROOM_URL", &server.url)], &["incidents"]));
    assert!(err.contains("set WARROOM_TOKEN"), "{err}");
    let err = fails(&run(
        dir,
        &[("WARROOM_URL", &server.url), ("WARROOM_TOKEN", "wr_nope")],
        &["incidents"],
    ));
    assert!(err.contains("unknown or revoked API token"), "{err}");
}

#[test]
fn classify_works_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&run(
        dir.path(),
        &[],
        &[
            "classify",
            "--users-can-access",
            "yes",
            "--failing-percent",
            "5",
            "--json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["severity"], 3);
    let out = ok(&run(
        dir.path(),
        &[],
        &["classify", "--users-can-access", "no"],
    ));
    assert!(out.starts_with("Severity: 1 (Critical)"), "{out}");
}

#[test]
fn config_check_reports_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../warroom.example.toml");
    let out = ok(&run(dir.path(), &[], &["config", "check", example]));
    assert!(out.contains(": ok (listen 127.0.0.1:8080"), "{out}");
    // `serve --config FILE` is how the file is named elsewhere; the check takes that too.
    let out = ok(&run(
        dir.path(),
        &[],
        &["config", "check", "--config", example],
    ));
    assert!(out.contains(": ok (listen 127.0.0.1:8080"), "{out}");
    let o = run(dir.path(), &[], &["config", "check"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("<FILE>"), "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[services]]\nslug = \"Has Spaces\"\n").unwrap();
    let o = run(dir.path(), &[], &["config", "check", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("services[0].slug"), "{err}");
    let err = fails(&run(
        dir.path(),
        &[],
        &["serve", "--config", "/does/not/exist.toml"],
    ));
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite://file.db\"\n",
    )
    .unwrap();
    // The env listen (port 0) beats the file's port 1; serve starts and reports a real port.
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("WARROOM_LISTEN", "127.0.0.1:0")
        .env("WARROOM_DATABASE_URL", "sqlite://from-env.db")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("warroom listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(!line.ends_with(":1\n"), "{line}");
    assert!(
        dir.path().join("from-env.db").exists(),
        "WARROOM_DATABASE_URL must beat the file"
    );
    assert!(!dir.path().join("file.db").exists());
}

/// A stopped `serve` leaves the SQLite file whole: the WAL copied back and removed, so a backup
/// that copies the one file has everything answered with a 2xx (SQLite's own checkpoint is off,
/// so without this the file could lag the WAL by up to 64 MB).
#[tokio::test]
async fn a_stopped_server_leaves_the_sqlite_file_whole() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = fresh_database(warroom_testkit::Backend::Sqlite)
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let token = create_token(dir, &db.url, "responder", "t");
    let mut server = Server::start(&db.url, dir);
    let alerts: Vec<serde_json::Value> = (0..300)
        .map(|i| serde_json::json!({"labels": {"alertname": format!("A{i}"), "service": "api", "severity": "warning"}}))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", server.url))
        .bearer_auth(&token)
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "serve did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let wal = std::fs::metadata(format!("{path}-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0, "the WAL was left behind");
    let count = async |sql: &str| {
        warroom_testkit::count_in_sqlite_file(&db.url, sql)
            .await
            .unwrap()
    };
    let n = count("SELECT count(*) FROM alerts").await;
    let waiting = warroom_testkit::count_in_sqlite_file(
        &format!("{}.intake", db.url),
        "SELECT count(*) FROM alert_intake",
    )
    .await
    .unwrap();
    assert_eq!(
        (n, waiting),
        (300, 0),
        "every alert merged, in the file itself"
    );
}

#[tokio::test]
async fn silences_are_added_listed_and_expired_from_the_cli() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let token = create_token(dir, &db.url, "responder", "rita");
        let server = Server::start(&db.url, dir);
        let env = server.client_env(&token);

        // A refused `silences add`: its one-line error.
        let refused = |matcher: &str, length: &str| {
            let o = run(
                dir,
                &env,
                &[
                    "silences",
                    "add",
                    matcher,
                    "--for",
                    length,
                    "--comment",
                    "x",
                ],
            );
            assert!(!o.status.success(), "{b:?} {matcher} {length}");
            String::from_utf8_lossy(&o.stderr).into_owned()
        };
        let err = refused("service", "2h");
        assert!(err.contains("name=value"), "{b:?}: {err}");
        assert!(refused("service=db", "soon").contains("30m"), "{b:?}");
        let err = refused("service=db", "99999999999999d");
        assert!(err.contains("10 years"), "{b:?}: {err}");

        let out = ok(&run(
            dir,
            &env,
            &[
                "silences",
                "add",
                "service=db",
                "env!~dev|test",
                "--for",
                "2h",
                "--comment",
                "failover",
            ],
        ));
        let id = out.split_whitespace().nth(1).unwrap_or_default().to_owned();
        assert!(out.contains("created"), "{b:?}: {out}");
        let list = ok(&run(dir, &env, &["silences"]));
        assert!(
            list.contains(&id)
                && list.contains("active")
                && list.contains("service=db,env!~dev|test"),
            "{b:?}: {list}"
        );
        let out = ok(&run(dir, &env, &["silences", "expire", &id]));
        assert!(out.contains("expired"), "{b:?}: {out}");
        let list = ok(&run(dir, &env, &["silences"]));
        assert!(list.contains("expired"), "{b:?}: {list}");
    }
}
