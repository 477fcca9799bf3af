//! The real ecosystem on loopback: Prometheus scrapes a target we control, its rule fires,
//! and warroom hears it (A) through a real Alertmanager's webhook and (B) from Prometheus
//! sending straight to warroom's `/api/v2/alerts`. The target comes back, the alert resolves,
//! the incident moves to monitoring. Needs Debian's `prometheus` and `prometheus-alertmanager`
//! (installed by `.ci/run`); elsewhere it is skipped, loudly.

use std::{
    net::TcpListener as StdListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use warroom_testkit::{Backend, fresh_database};

use super::cli::{Server, create_token, ok, run};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binaries() -> Option<(&'static str, &'static str)> {
    let p = "/usr/bin/prometheus";
    let am = "/usr/bin/prometheus-alertmanager";
    if Path::new(p).exists() && Path::new(am).exists() {
        Some((p, am))
    } else {
        eprintln!(
            "\n!!!!!!!! prometheus / prometheus-alertmanager are not installed: the ecosystem test is SKIPPED. \
             `apt-get install -y prometheus prometheus-alertmanager` (CI does, see .ci/run). !!!!!!!!\n"
        );
        None
    }
}

async fn wait_ready(url: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

/// A scrape target that can be switched off (connection refused) and on again.
struct Target {
    port: u16,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Target {
    async fn start(port: u16) -> Target {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async { "shop_requests_total 1\n" }),
        );
        let handle = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Target {
            port,
            handle: Some(handle),
        }
    }

    fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn prometheus(
    bin: &str,
    dir: &Path,
    port: u16,
    target: u16,
    service: &str,
    alerting: &str,
) -> Proc {
    write(
        dir,
        "rules.yml",
        "groups:\n- name: warroom-test\n  rules:\n  - alert: TargetDown\n    expr: up == 0\n    for: 0s\n    labels:\n      severity: critical\n    annotations:\n      summary: the scrape target is down\n",
    );
    let cfg = write(
        dir,
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n{alerting}\n\
             scrape_configs:\n- job_name: {service}\n  static_configs:\n  - targets: ['127.0.0.1:{target}']\n    labels:\n      service: {service}\n"
        ),
    );
    Proc(
        Command::new(bin)
            .args([
                &format!("--config.file={cfg}"),
                &format!("--storage.tsdb.path={}", dir.join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn incidents(dir: &Path, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let out = ok(&run(dir, env, &["incidents", "--json"]));
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn prometheus_and_alertmanager_open_and_calm_incidents() {
    let Some((prom_bin, am_bin)) = binaries() else {
        return;
    };
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let token = create_token(dir, &db.url, "responder", "prometheus");
    // Alertmanager authenticates with its own source secret (a credential that can only deliver
    // alerts); Prometheus in (B) uses the token.
    let source_secret = "am-ecosystem-secret-0123456789";
    let cfg = write(
        dir,
        "warroom.toml",
        "[[alert_sources]]\nname = \"am-test\"\nsecret_env = \"WARROOM_TEST_AM_SOURCE_SECRET\"\n",
    );
    let server = Server::start_with(
        &db.url,
        dir,
        &["--config", &cfg],
        &[("WARROOM_TEST_AM_SOURCE_SECRET", source_secret)],
    );
    let env = server.client_env(&token);
    let warroom_hostport = server.url.trim_start_matches("http://").to_owned();

    // (A) Prometheus → Alertmanager → webhook → warroom.
    let am_port = free_port();
    let am_dir = dir.join("am");
    std::fs::create_dir_all(&am_dir).unwrap();
    let secret_file = write(&am_dir, "warroom.secret", source_secret);
    let am_cfg = write(
        &am_dir,
        "am.yml",
        &format!(
            "route:\n  receiver: warroom\n  group_by: [alertname, service]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n- name: warroom\n  webhook_configs:\n  - url: {}/hooks/alertmanager\n    send_resolved: true\n    http_config:\n      authorization:\n        credentials_file: {secret_file}\n",
            server.url
        ),
    );
    let _am = Proc(
        Command::new(am_bin)
            .args([
                &format!("--config.file={am_cfg}"),
                &format!("--storage.path={}", am_dir.join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{am_port}/-/ready")).await;
    let t_port = free_port();
    let mut target = Target::start(t_port).await;
    let p_dir = dir.join("prom-a");
    std::fs::create_dir_all(&p_dir).unwrap();
    let p_port = free_port();
    let prom = prometheus(
        prom_bin,
        &p_dir,
        p_port,
        t_port,
        "shop",
        &format!(
            "  alertmanagers:\n  - api_version: v2\n    static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n"
        ),
    );
    wait_ready(&format!("http://127.0.0.1:{p_port}/-/ready")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        incidents(dir, &env).is_empty(),
        "the target is up: no incident"
    );

    target.stop();
    let incident = wait_for("an incident from Alertmanager", || {
        incidents(dir, &env)
            .into_iter()
            .find(|i| i["services"][0] == "shop")
    })
    .await;
    assert_eq!(incident["severity"], 1, "severity=critical → SEV1");
    assert_eq!(
        incident["reporter"], "am-test",
        "the source that authenticated is recorded"
    );
    let number = incident["number"].as_i64().unwrap();

    let _target = Target::start(target.port).await;
    wait_for("the incident to calm down", || {
        let i = incidents(dir, &env)
            .into_iter()
            .find(|i| i["number"] == number)?;
        (i["status"] == "monitoring").then_some(())
    })
    .await;
    drop(prom);

    // (B) Prometheus → warroom's /api/v2/alerts, as its alertmanager.
    let t2_port = free_port();
    let mut target2 = Target::start(t2_port).await;
    let p2_dir = dir.join("prom-b");
    std::fs::create_dir_all(&p2_dir).unwrap();
    let p2_port = free_port();
    let _prom2 = prometheus(
        prom_bin,
        &p2_dir,
        p2_port,
        t2_port,
        "cart",
        &format!(
            "  alertmanagers:\n  - api_version: v2\n    authorization:\n      credentials: {token}\n    static_configs:\n    - targets: ['{warroom_hostport}']\n"
        ),
    );
    wait_ready(&format!("http://127.0.0.1:{p2_port}/-/ready")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    target2.stop();
    let incident = wait_for("an incident straight from Prometheus", || {
        incidents(dir, &env)
            .into_iter()
            .find(|i| i["services"][0] == "cart")
    })
    .await;
    assert_eq!(incident["severity"], 1);
    let number = incident["number"].as_i64().unwrap();
    let _target2 = Target::start(target2.port).await;
    wait_for("the cart incident to calm down", || {
        let i = incidents(dir, &env)
            .into_iter()
            .find(|i| i["number"] == number)?;
        (i["status"] == "monitoring").then_some(())
    })
    .await;
}
