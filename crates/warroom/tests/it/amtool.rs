//! The real `amtool` (Debian's `prometheus-alertmanager`, installed by `.ci/run`) pointed at
//! warroom as if it were Alertmanager: alerts added and queried, silences added, queried and
//! expired, and the queries see the silences. Elsewhere it is skipped, loudly.

use serde_json::Value;
use std::{path::Path, process::Command};
use warroom_testkit::{backends, fresh_database};

use super::cli::{Server, create_token};

const AMTOOL: &str = "/usr/bin/amtool";

struct Amtool {
    url: String,
    http_config: String,
}

impl Amtool {
    fn new(dir: &Path, url: &str, token: &str) -> Amtool {
        // amtool's HTTP client configuration, as Prometheus writes it.
        let http_config = dir.join(format!("amtool-{}.yml", token.len()));
        std::fs::write(
            &http_config,
            format!("authorization:\n  type: Bearer\n  credentials: {token}\n"),
        )
        .unwrap();
        Amtool {
            url: url.to_owned(),
            http_config: http_config.to_str().unwrap().to_owned(),
        }
    }

    /// Runs amtool; (exit success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(AMTOOL)
            .arg(format!("--alertmanager.url={}", self.url))
            .arg(format!("--http.config.file={}", self.http_config))
            .args(args)
            .env("HOME", "/nonexistent") // no ~/.config/prometheus/amtool.yml of the user's
            .output()
            .expect("run amtool");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "amtool {args:?} failed: {err}\n{out}");
        out
    }

    /// `amtool alert query ... -o json`: the alert names, sorted, and the alerts.
    fn alerts(&self, args: &[&str]) -> (Vec<String>, Vec<Value>) {
        let mut argv = vec!["alert", "query", "-o", "json"];
        argv.extend_from_slice(args);
        let alerts: Vec<Value> = serde_json::from_str(&self.ok(&argv)).unwrap();
        let mut names: Vec<String> = alerts
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        (names, alerts)
    }
}

#[tokio::test]
async fn amtool_adds_and_queries_alerts_and_silences_against_warroom() {
    if !Path::new(AMTOOL).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "amtool is missing on CI: .ci/run installs prometheus-alertmanager"
        );
        eprintln!(
            "\n!!!!!!!! amtool is not installed: the amtool test is SKIPPED. \
             `apt-get install -y prometheus-alertmanager` (CI does, see .ci/run). !!!!!!!!\n"
        );
        return;
    }
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("warroom.toml");
        std::fs::write(
            &cfg,
            "[[silences]]\ncomment = \"billing is being retired\"\nstarts_at = \"2026-01-01T00:00:00Z\"\n\
             ends_at = \"2099-01-01T00:00:00Z\"\nmatchers = [{ name = \"service\", value = \"billing\" }]\n",
        )
        .unwrap();
        let token = create_token(dir.path(), &db.url, "responder", "amtool");
        let server = Server::start_with(
            &db.url,
            dir.path(),
            &["--config", cfg.to_str().unwrap()],
            &[],
        );
        let am = Amtool::new(dir.path(), &server.url, &token);

        for (name, service, summary) in [
            ("DiskFull", "checkout", "disk full on db-1"),
            ("Latency", "web", "p99 above 2s"),
            ("Invoices", "billing", "invoice run late"),
        ] {
            am.ok(&[
                "alert",
                "add",
                &format!("alertname={name}"),
                &format!("service={service}"),
                "severity=warning",
                &format!("--annotation=summary={summary}"),
            ]);
        }
        let (names, alerts) = am.alerts(&[]);
        assert_eq!(
            names,
            ["DiskFull", "Latency"],
            "{b:?}: the silenced one is hidden by default"
        );
        let disk = alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == "DiskFull")
            .unwrap();
        assert_eq!(disk["annotations"]["summary"], "disk full on db-1");
        assert_eq!(disk["status"]["state"], "active");
        let (names, alerts) = am.alerts(&["--silenced"]);
        assert_eq!(names, ["Invoices"], "{b:?}");
        assert_eq!(
            alerts[0]["status"]["silencedBy"],
            serde_json::json!(["config-1"])
        );
        assert_eq!(am.alerts(&["service=web"]).0, ["Latency"], "{b:?}");
        assert_eq!(am.alerts(&["alertname=~Disk.*"]).0, ["DiskFull"], "{b:?}");
        // The simple output, as an engineer reads it.
        let simple = am.ok(&["alert", "query"]);
        assert!(
            simple.contains("disk full on db-1") && simple.contains("active"),
            "{simple}"
        );

        let id = am
            .ok(&[
                "silence",
                "add",
                "service=web",
                "--comment=deploying web",
                "--duration=1h",
            ])
            .trim()
            .to_owned();
        assert_eq!(id.len(), 36, "{b:?}: a silence id: {id}");
        assert_eq!(am.alerts(&[]).0, ["DiskFull"], "{b:?}: web is muted now");
        let (_, muted) = am.alerts(&["--silenced", "service=web"]);
        assert_eq!(
            muted[0]["status"]["silencedBy"],
            serde_json::json!([id]),
            "{b:?}"
        );
        assert_eq!(am.ok(&["silence", "query", "-q", "service=web"]).trim(), id);
        assert_eq!(
            am.ok(&["silence", "query", "-q", "service=billing"]).trim(),
            "config-1"
        );
        assert_eq!(
            am.ok(&["silence", "query", "-q", "service=checkout"])
                .trim(),
            ""
        );
        let listed = am.ok(&["silence", "query"]);
        assert!(
            listed.contains("deploying web") && listed.contains("billing is being retired"),
            "{listed}"
        );

        // Extended and reworded in place: the same id, the new end and comment.
        am.ok(&[
            "silence",
            "update",
            &id,
            "--duration=3h",
            "--comment=deploy runs long",
        ]);
        let listed: Vec<Value> =
            serde_json::from_str(&am.ok(&["silence", "query", "-o", "json", "service=web"]))
                .unwrap();
        assert_eq!(listed.len(), 1, "{b:?}: {listed:?}");
        assert_eq!(listed[0]["id"], id.as_str(), "{b:?}");
        assert_eq!(listed[0]["comment"], "deploy runs long");
        let ends = time::OffsetDateTime::parse(
            listed[0]["endsAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let left = ends - time::OffsetDateTime::now_utc();
        assert!(left > time::Duration::minutes(170), "{b:?}: ends in {left}");
        // A config silence is changed in the config file.
        let (ok, _, err) = am.run(&["silence", "update", "config-1", "--duration=3h"]);
        assert!(!ok && err.contains("409"), "{b:?}: {err}");

        am.ok(&["silence", "expire", &id]);
        assert_eq!(
            am.alerts(&[]).0,
            ["DiskFull", "Latency"],
            "{b:?}: web is back"
        );
        let expired = am.ok(&["silence", "query", "--expired", "-q"]);
        assert!(expired.contains(&id), "{b:?}: {expired}");

        let shown = am.ok(&["config", "show"]);
        assert!(shown.contains("warroom"), "{shown}");

        // warroom's message for a bad parameter reaches the engineer through amtool (amtool
        // reads an unparsable matcher as an alert name itself, so the receiver is the one
        // parameter it passes through unchecked).
        let (ok, _, err) = am.run(&["alert", "query", "--receiver=("]);
        assert!(
            !ok && err.contains("[400]") && err.contains("receiver: invalid regular expression"),
            "{b:?}: {err}"
        );
        assert_eq!(am.alerts(&["foo=~("]).0, Vec::<String>::new(), "{b:?}");
        // A silence warroom refuses: amtool prints why.
        let (ok, _, err) = am.run(&["silence", "add", "env=\"\"", "--comment=everything"]);
        assert!(
            !ok && err.contains("[400]") && err.contains("$.matchers"),
            "{b:?}: {err}"
        );
        // And without a valid token nothing is read or written.
        let stranger = Amtool::new(dir.path(), &server.url, "wr_not_a_token");
        let (ok, _, err) = stranger.run(&["alert", "query"]);
        assert!(!ok && err.contains("401"), "{b:?}: {err}");
        let (ok, _, err) = stranger.run(&["silence", "add", "service=api", "--comment=x"]);
        assert!(!ok && err.contains("401"), "{b:?}: {err}");
    }
}
