//! Monitors through the real binary: a target that fails opens an incident, and recovering
//! moves it to monitoring.

use axum::{Router, extract::State, http::StatusCode, routing::get};
use std::sync::{
    Arc,
    atomic::{AtomicU16, Ordering},
};
use std::time::{Duration, Instant};
use warroom_testkit::{backends, fresh_database};

use super::cli::{Server, create_token, ok, run};

async fn target() -> (String, Arc<AtomicU16>) {
    let status = Arc::new(AtomicU16::new(200));
    let app = Router::new()
        .route(
            "/health",
            get(|State(s): State<Arc<AtomicU16>>| async move {
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        )
        .with_state(status.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, status)
}

/// A user-facing HTTP monitor checked every second, in the config file's `[[monitors]]` form.
fn http_monitor(id: &str, service: &str, url: &str, failures_to_down: u32) -> String {
    format!(
        "[[monitors]]\nid = \"{id}\"\nservice = \"{service}\"\nuser_facing = true\ninterval_secs = 1\ntimeout_ms = 500\n\
         failures_to_down = {failures_to_down}\nsuccesses_to_up = 1\n[monitors.check]\nkind = \"http\"\nurl = \"{url}\"\n"
    )
}

fn incidents(dir: &std::path::Path, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let out = ok(&run(dir, env, &["incidents", "--json"]));
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_failing_check_opens_an_incident_and_recovery_calms_it() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, status) = target().await;
        let cfg = dir.join("w.toml");
        std::fs::write(&cfg, http_monitor("shop-web", "shop", &url, 2)).unwrap();
        let token = create_token(dir, &db.url, "responder", "t");
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = server.client_env(&token);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            incidents(dir, &env).is_empty(),
            "{b:?}: healthy, no incident"
        );

        status.store(500, Ordering::SeqCst);
        let t0 = Instant::now();
        let list = loop {
            let list = incidents(dir, &env);
            if !list.is_empty() {
                break list;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(6),
                "{b:?}: no incident after {:?}",
                t0.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Interval × failures to DOWN + 1 s, with a second of slack for a loaded CI machine.
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "{b:?}: detection took {:?}",
            t0.elapsed()
        );
        assert_eq!(list[0]["services"], serde_json::json!(["shop"]));
        assert_eq!(
            list[0]["severity"], 1,
            "{b:?}: the only user-facing monitor is down: nobody can get in"
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The incident is visible once declared; health and counters follow in the same pass,
        // a moment later, so wait for them rather than racing them.
        let scrape = async || {
            reqwest::get(format!("{}/metrics", server.url))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        poll_until("health in /metrics", Duration::from_secs(5), async || {
            scrape()
                .await
                .contains("warroom_service_health{service=\"shop\",status=\"UNHEALTHY\"} 1")
        })
        .await;
        let metrics = scrape().await;
        for needle in [
            "warroom_checks_total ",
            "warroom_checks_failed_total ",
            "warroom_check_drift_seconds{quantile=\"0.99\"}",
            "warroom_check_duration_seconds_bucket{le=\"0.005\"} ",
            "warroom_check_duration_seconds_bucket{le=\"+Inf\"} ",
            "warroom_check_duration_seconds_count ",
            "warroom_incidents_opened_total 1",
            "warroom_service_health{service=\"shop\",status=\"UNHEALTHY\"} 1",
        ] {
            assert!(
                metrics.contains(needle),
                "{b:?}: `{needle}` missing from /metrics:\n{metrics}"
            );
        }
        // Results are stored (batched each second) and rolled up for uptime.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mon: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/monitors", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let day = &mon["monitors"][0]["uptime_24h"];
        assert!(
            day["checks"].as_i64().unwrap() >= 4 && day["failures"].as_i64().unwrap() >= 2,
            "{b:?}: {mon}"
        );
        assert!(day["availability_percent"].as_f64().unwrap() < 100.0);
        // What an Uptime Kuma user looks at first: is it up, and what did the last check say.
        let shop_web = &mon["monitors"][0];
        assert_eq!(shop_web["status"], "down", "{b:?}: {shop_web}");
        assert_eq!(shop_web["last_check"]["ok"], false, "{b:?}: {shop_web}");
        assert_eq!(
            shop_web["last_check"]["failure"], "crashed",
            "{b:?}: a 500 is the runbook's crashed: {shop_web}"
        );
        let health = ok(&run(dir, &env, &["health"]));
        assert!(
            health.contains("shop") && health.contains("UNHEALTHY"),
            "{b:?}: {health}"
        );
        let alerts = ok(&run(dir, &env, &["alerts", "--status", "firing"]));
        assert!(
            alerts.contains("MonitorDown") && alerts.contains("shop"),
            "{b:?}: {alerts}"
        );
        let monitors = ok(&run(dir, &env, &["monitors"]));
        assert!(
            monitors.contains("shop-web") && monitors.contains('%') && monitors.contains("DOWN"),
            "{b:?}: {monitors}"
        );
        let tl = ok(&run(dir, &env, &["timeline", "1"]));
        assert!(tl.contains("MonitorDown: shop-web is down"), "{b:?}: {tl}");

        status.store(200, Ordering::SeqCst);
        let t1 = Instant::now();
        loop {
            let i = &incidents(dir, &env)[0];
            if i["status"] == "monitoring" {
                break;
            }
            assert!(
                t1.elapsed() < Duration::from_secs(6),
                "{b:?}: not calmed: {i}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A target whose status can be changed, counting the requests it gets.
async fn counting_target() -> (String, Arc<AtomicU16>, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::AtomicUsize;
    type S = (Arc<AtomicU16>, Arc<AtomicUsize>);
    let status = Arc::new(AtomicU16::new(200));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/health",
            get(|State((s, h)): State<S>| async move {
                h.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        )
        .with_state((status.clone(), hits.clone()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, status, hits)
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let st = r.status();
    let text = r.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

async fn poll_until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_monitor_created_through_the_api_opens_an_incident_and_deleting_it_stops_its_checks() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, status, hits) = counting_target().await;
        status.store(500, Ordering::SeqCst);
        let port = url
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let cfg = dir.join("w.toml");
        std::fs::write(
            &cfg,
            format!(
                "[[monitors]]\nid = \"cfg-port\"\nservice = \"edge\"\ninterval_secs = 1\n\
                 [monitors.check]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"
            ),
        )
        .unwrap();
        let token = |role: &str| create_token(dir, &db.url, role, role);
        let (responder, viewer) = (token("responder"), token("viewer"));
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let api = format!("{}/api/v1/monitors", server.url);
        let spec = serde_json::json!({
            "id": "shop-web", "service": "shop", "user_facing": true, "interval_secs": 1,
            "timeout_ms": 500, "failures_to_down": 2, "successes_to_up": 1,
            "check": { "kind": "http", "url": url }
        });
        use reqwest::Method;

        // Bad input is refused naming the JSON path, and nothing is stored.
        let mut bad = spec.clone();
        bad["interval_secs"] = 0.into();
        let (st, v) = call(Method::POST, &api, &responder, Some(bad)).await;
        assert_eq!(st, 422, "{b:?}: {v}");
        assert_eq!(v["details"]["field"], "$.interval_secs", "{v}");
        let mut bad = spec.clone();
        bad["check"]["url"] = "ftp://nope".into();
        let (st, v) = call(Method::POST, &api, &responder, Some(bad)).await;
        assert_eq!(
            (st.as_u16(), v["details"]["field"].as_str()),
            (422, Some("$.check.url")),
            "{v}"
        );
        let mut bad = spec.clone();
        bad["check"]["keywrod"] = "ok".into();
        let (st, v) = call(Method::POST, &api, &responder, Some(bad)).await;
        assert_eq!(st, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains("keywrod"), "{v}");
        let mut bad = spec.clone();
        bad["id"] = "has space".into();
        let (st, v) = call(Method::POST, &api, &responder, Some(bad)).await;
        assert_eq!(
            (st.as_u16(), v["details"]["field"].as_str()),
            (422, Some("$.id")),
            "{v}"
        );
        let (st, _) = call(Method::POST, &api, &viewer, Some(spec.clone())).await;
        assert_eq!(st, 403, "{b:?}: viewers read, they do not write");
        // Config monitors are read-only through the API.
        let mut clash = spec.clone();
        clash["id"] = "cfg-port".into();
        let (st, v) = call(Method::POST, &api, &responder, Some(clash)).await;
        assert_eq!(st, 409, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("config file"),
            "{v}"
        );
        let (st, _) = call(Method::DELETE, &format!("{api}/cfg-port"), &responder, None).await;
        assert_eq!(st, 409);
        let (st, _) = call(
            Method::PUT,
            &format!("{api}/cfg-port"),
            &responder,
            Some(spec.clone()),
        )
        .await;
        assert_eq!(st, 409);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{b:?}: nothing was scheduled by refused writes"
        );

        let (st, v) = call(Method::POST, &api, &responder, Some(spec.clone())).await;
        assert_eq!(st, 201, "{b:?}: {v}");
        assert_eq!(v["source"], "api");
        let (st, _) = call(Method::POST, &api, &responder, Some(spec.clone())).await;
        assert_eq!(st, 409, "{b:?}: the id is taken");

        // The running scheduler picks it up without a restart; the failing target opens the incident.
        let env = server.client_env(&responder);
        poll_until("incident opened", Duration::from_secs(10), async || {
            !incidents(dir, &env).is_empty()
        })
        .await;
        let i = &incidents(dir, &env)[0];
        assert_eq!(i["services"], serde_json::json!(["shop"]), "{b:?}: {i}");
        let (_, list) = call(Method::GET, &api, &viewer, None).await;
        let sources: Vec<(&str, &str)> = list["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap(), m["source"].as_str().unwrap()))
            .collect();
        assert_eq!(
            sources,
            [("cfg-port", "config"), ("shop-web", "api")],
            "{list}"
        );
        let cli = ok(&run(dir, &env, &["monitors"]));
        assert!(cli.contains("shop-web") && cli.contains("api"), "{cli}");

        // PUT replaces it (the id may be left out of the body).
        let mut slower = spec.clone();
        slower.as_object_mut().unwrap().remove("id");
        slower["interval_secs"] = 2.into();
        let (st, v) = call(
            Method::PUT,
            &format!("{api}/shop-web"),
            &responder,
            Some(slower),
        )
        .await;
        assert_eq!(
            (st.as_u16(), v["interval_secs"].as_u64()),
            (200, Some(2)),
            "{v}"
        );

        // Deleted: it stops being checked, and its alert resolves so the incident calms.
        let (st, _) = call(Method::DELETE, &format!("{api}/shop-web"), &responder, None).await;
        assert_eq!(st, 204);
        let (st, _) = call(Method::GET, &format!("{api}/shop-web"), &viewer, None).await;
        assert_eq!(st, 404);
        let metrics = format!("{}/metrics", server.url);
        poll_until(
            "scheduler dropped the monitor",
            Duration::from_secs(5),
            async || {
                reqwest::get(&metrics)
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
                    .contains("warroom_monitors_scheduled 1\n")
            },
        )
        .await;
        poll_until("incident calmed", Duration::from_secs(5), async || {
            incidents(dir, &env)[0]["status"] == "monitoring"
        })
        .await;
        let seen = hits.load(Ordering::SeqCst);
        // The scheduler keeps running the config monitor (1 s) while the deleted one (last at
        // 2 s) gets no request: five of those checks span two of its intervals.
        let checks = async || -> u64 {
            let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("warroom_checks_total "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap()
        };
        let before = checks().await;
        poll_until(
            "the scheduler moved on",
            Duration::from_secs(10),
            async || checks().await >= before + 5,
        )
        .await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            seen,
            "{b:?}: still being checked"
        );

        // The CLI adds and removes API monitors from a file in the [[monitors]] format.
        let file = dir.join("m.toml");
        std::fs::write(
            &file,
            format!("id = \"shop-tcp\"\nservice = \"shop\"\ninterval_secs = 0\n[check]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
        )
        .unwrap();
        let out = run(dir, &env, &["monitors", "add", file.to_str().unwrap()]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("$.interval_secs"), "{b:?}: {err}");
        std::fs::write(
            &file,
            std::fs::read_to_string(&file)
                .unwrap()
                .replace("= 0", "= 5"),
        )
        .unwrap();
        let out = ok(&run(
            dir,
            &env,
            &["monitors", "add", file.to_str().unwrap()],
        ));
        assert!(out.contains("shop-tcp created"), "{out}");
        assert!(ok(&run(dir, &env, &["monitors"])).contains("shop-tcp"));
        let out = ok(&run(dir, &env, &["monitors", "rm", "shop-tcp"]));
        assert!(out.contains("deleted"), "{out}");
        assert!(!ok(&run(dir, &env, &["monitors"])).contains("shop-tcp"));
    }
}

#[tokio::test]
async fn severity_follows_the_window_raised_automatically_and_a_downgrade_only_suggested() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url_a, status_a) = target().await;
        let (url_b, status_b) = target().await;
        let cfg = dir.join("w.toml");
        // A short window so the test sees the share move in seconds; b-api never turns DOWN, so
        // only the window's failing share can change the severity.
        std::fs::write(
            &cfg,
            format!(
                "[detection]\nwindow_secs = 6\n{}{}",
                http_monitor("a-web", "pay", &url_a, 2),
                http_monitor("b-api", "pay", &url_b, 1000)
            ),
        )
        .unwrap();
        let token = create_token(dir, &db.url, "responder", "t");
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = server.client_env(&token);
        let timeline = || {
            serde_json::from_str::<serde_json::Value>(&ok(&run(
                dir,
                &env,
                &["timeline", "1", "--json"],
            )))
            .unwrap()["events"]
                .as_array()
                .unwrap()
                .clone()
        };

        // a-web fails, b-api answers: users still get in and under half the checks fail.
        status_a.store(500, Ordering::SeqCst);
        poll_until("incident opened", Duration::from_secs(10), async || {
            !incidents(dir, &env).is_empty()
        })
        .await;
        let first = incidents(dir, &env)[0]["severity"].as_i64().unwrap();
        assert!(first >= 2, "{b:?}: users can get in, so not SEV1: {first}");

        // b-api starts failing too, without ever being DOWN: the share passes 50 % → SEV1.
        status_b.store(500, Ordering::SeqCst);
        poll_until("raised to SEV1", Duration::from_secs(10), async || {
            incidents(dir, &env)[0]["severity"] == 1
        })
        .await;
        let raised = timeline()
            .into_iter()
            .find(|e| e["kind"] == "severity_changed")
            .expect("the raise is on the timeline");
        assert_eq!(raised["author"], "monitors", "{raised}");
        assert!(
            raised["reason"]
                .as_str()
                .unwrap()
                .contains("users can access: yes"),
            "{raised}"
        );

        // b-api recovers: the share falls back to a-web's half → a downgrade is suggested, and
        // only suggested.
        status_b.store(200, Ordering::SeqCst);
        poll_until("downgrade suggested", Duration::from_secs(15), async || {
            timeline()
                .iter()
                .any(|e| e["kind"] == "severity_downgrade_suggested")
        })
        .await;
        let i = &incidents(dir, &env)[0];
        assert_eq!(i["severity"], 1, "{b:?}: never lowered automatically: {i}");
        let suggestions: Vec<_> = timeline()
            .into_iter()
            .filter(|e| e["kind"] == "severity_downgrade_suggested")
            .collect();
        assert_eq!(
            suggestions.len(),
            1,
            "{b:?}: suggested once: {suggestions:?}"
        );
        assert_eq!(suggestions[0]["to"], 2, "{b:?}: {suggestions:?}");
        let text = ok(&run(dir, &env, &["timeline", "1"]));
        assert!(
            text.contains("Suggestion: severity could be lowered SEV1 → SEV2"),
            "{b:?}: {text}"
        );
        // The evidence names the failure, the status and the latency; the checks' 5xx share
        // attaches the runbook's playbook.
        assert!(text.contains("crashed (HTTP 500;"), "{b:?}: {text}");
        assert!(
            text.contains("service signals over the last 6s: users can access: yes; failing"),
            "{b:?}: {text}"
        );
        assert!(
            text.contains("Playbook: High error rate") && text.contains("answered 5xx"),
            "{b:?}: {text}"
        );
    }
}

/// A target that can be slowed down, or made to flap: with `flap` set, every other request is a
/// 500.
async fn shaped_target() -> (String, Arc<std::sync::atomic::AtomicU64>, Arc<AtomicU16>) {
    use std::sync::atomic::{AtomicU64, AtomicUsize};
    type S = (Arc<AtomicU64>, Arc<AtomicU16>, Arc<AtomicUsize>);
    let delay_ms = Arc::new(AtomicU64::new(0));
    let flap = Arc::new(AtomicU16::new(0));
    let app = Router::new()
        .route(
            "/health",
            get(|State((d, f, n)): State<S>| async move {
                tokio::time::sleep(Duration::from_millis(d.load(Ordering::SeqCst))).await;
                let odd = n.fetch_add(1, Ordering::SeqCst) % 2 == 1;
                if f.load(Ordering::SeqCst) == 1 && odd {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .with_state((
            delay_ms.clone(),
            flap.clone(),
            Arc::new(AtomicUsize::new(0)),
        ));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, delay_ms, flap)
}

/// Health and incidents follow the monitors' window, not only DOWN: a monitor that flaps (fails
/// often, never long enough in a row to go DOWN) or answers at several times its usual latency
/// makes its service unwell and opens an incident at the runbook's severity, and the service is
/// HEALTHY again, the incident calmed, once the window is clean.
#[tokio::test]
async fn a_flapping_or_slow_monitor_makes_its_service_unwell_without_going_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (slow_url, delay, _) = shaped_target().await;
        let (flap_url, _, flap) = shaped_target().await;
        let cfg = dir.join("w.toml");
        // A 4-second window: a baseline exists after a few seconds, and failures age out fast.
        std::fs::write(
            &cfg,
            format!(
                "[detection]\nwindow_secs = 4\n{}{}",
                http_monitor("shop-web", "shop", &slow_url, 3),
                http_monitor("pay-api", "pay", &flap_url, 2)
            ),
        )
        .unwrap();
        let token = create_token(dir, &db.url, "responder", "t");
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = server.client_env(&token);
        let health = async || -> serde_json::Value {
            let (st, v) = call(
                reqwest::Method::GET,
                &format!("{}/api/v1/health", server.url),
                &token,
                None,
            )
            .await;
            assert_eq!(st, 200, "{v}");
            v["services"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["service"].as_str().unwrap().to_owned(),
                        s["status"].clone(),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        // Enough fast, healthy checks for a latency baseline older than the window.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(
            incidents(dir, &env).is_empty(),
            "{b:?}: healthy, no incident"
        );

        // 200 ms against a ~1 ms baseline (counted as 50 ms, the jitter floor): 4× → Sev3.
        delay.store(200, Ordering::SeqCst);
        // Every other check fails: 50 % failing, never 2 in a row → the Sev2 band.
        flap.store(1, Ordering::SeqCst);
        poll_until(
            "both services unwell",
            Duration::from_secs(12),
            async || {
                let h = health().await;
                h["shop"] == "DEGRADED" && h["pay"] == "UNHEALTHY"
            },
        )
        .await;
        let list = incidents(dir, &env);
        let of = |service: &str| {
            list.iter()
                .find(|i| i["services"] == serde_json::json!([service]))
                .unwrap_or_else(|| panic!("{b:?}: no incident for {service}: {list:?}"))
                .clone()
        };
        let (shop, pay) = (of("shop"), of("pay"));
        assert_eq!(
            shop["severity"], 3,
            "{b:?}: elevated latency is Sev3: {shop}"
        );
        assert_eq!(
            pay["severity"], 2,
            "{b:?}: intermittent failures are Sev2: {pay}"
        );
        let alerts = ok(&run(dir, &env, &["alerts", "--status", "firing"]));
        assert!(
            alerts.contains("MonitorDegraded") && !alerts.contains("MonitorDown"),
            "{b:?}: degraded, never down: {alerts}"
        );
        let linked = ok(&run(
            dir,
            &env,
            &["alerts", "--incident", &pay["number"].to_string()],
        ));
        assert!(
            linked.contains("MonitorDegraded") && linked.contains("pay"),
            "{b:?}: the incident's own alerts: {linked}"
        );
        let bad = run(dir, &env, &["alerts", "--incident", "x"]);
        assert!(
            !bad.status.success()
                && String::from_utf8_lossy(&bad.stderr).contains("not an incident number"),
            "{b:?}: {bad:?}"
        );
        let tl = ok(&run(dir, &env, &["timeline", &shop["number"].to_string()]));
        assert!(
            tl.contains("latency") && tl.contains("x its baseline"),
            "{b:?}: {tl}"
        );
        let tl = ok(&run(dir, &env, &["timeline", &pay["number"].to_string()]));
        assert!(
            tl.contains("without going DOWN (2 in a row)"),
            "{b:?}: {tl}"
        );

        delay.store(0, Ordering::SeqCst);
        flap.store(0, Ordering::SeqCst);
        poll_until(
            "both services healthy again",
            Duration::from_secs(12),
            async || {
                let h = health().await;
                h["shop"] == "HEALTHY" && h["pay"] == "HEALTHY"
            },
        )
        .await;
        poll_until(
            "both incidents calmed",
            Duration::from_secs(5),
            async || {
                incidents(dir, &env)
                    .iter()
                    .all(|i| i["status"] == "monitoring")
            },
        )
        .await;
    }
}

/// A restart in the middle of an outage picks up where it stopped: the monitor is known to be
/// DOWN, so when its target recovered while warroom was down, the first good checks resolve the
/// alert and calm the incident (a fresh start would only see PENDING → UP, and leave both open).
#[tokio::test]
async fn a_restart_during_an_outage_resolves_it_when_the_target_recovered_meanwhile() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let (url, status) = target().await;
        let cfg = dir.join("w.toml");
        // Two monitors go DOWN; the second is removed from the config while warroom is stopped.
        std::fs::write(
            &cfg,
            format!(
                "{}{}",
                http_monitor("shop-web", "shop", &url, 2),
                http_monitor("shop-old", "shop", &url, 2)
            ),
        )
        .unwrap();
        let token = create_token(dir, &db.url, "responder", "t");
        status.store(500, Ordering::SeqCst);
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = server.client_env(&token);
        poll_until("both monitors down", Duration::from_secs(10), async || {
            ok(&run(dir, &env, &["alerts", "--status", "firing"]))
                .matches("MonitorDown")
                .count()
                == 2
        })
        .await;
        drop(server);
        std::fs::write(&cfg, http_monitor("shop-web", "shop", &url, 2)).unwrap();
        status.store(200, Ordering::SeqCst);
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = server.client_env(&token);
        poll_until(
            "calmed after the restart",
            Duration::from_secs(10),
            async || incidents(dir, &env)[0]["status"] == "monitoring",
        )
        .await;
        let firing = ok(&run(dir, &env, &["alerts", "--status", "firing"]));
        assert!(!firing.contains("MonitorDown"), "{b:?}: {firing}");
        assert_eq!(incidents(dir, &env).len(), 1, "{b:?}: no second incident");
    }
}
