//! Monitors through the real binary: a target that fails opens an incident, and recovering
//! moves it to monitoring.

use axum::{Router, extract::State, http::StatusCode, routing::get};
use std::sync::{
    Arc,
    atomic::{AtomicU16, Ordering},
};
use std::time::{Duration, Instant};
use warroom_testkit::{backends, fresh_database};

use super::cli::{Server, ok, run};

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
        std::fs::write(
            &cfg,
            format!(
                "[[monitors]]\nid = \"shop-web\"\nservice = \"shop\"\nuser_facing = true\ninterval_secs = 1\ntimeout_ms = 500\n\
                 failures_to_down = 2\nsuccesses_to_up = 1\n[monitors.check]\nkind = \"http\"\nurl = \"{url}\"\n"
            ),
        )
        .unwrap();
        let token = ok(&run(
            dir,
            &[],
            &[
                "token",
                "create",
                "--role",
                "responder",
                "--name",
                "t",
                "--database",
                &db.url,
            ],
        ))
        .trim()
        .to_owned();
        let server = Server::start_with(&db.url, dir, &["--config", cfg.to_str().unwrap()], &[]);
        let env = [
            ("WARROOM_URL", server.url.as_str()),
            ("WARROOM_TOKEN", token.as_str()),
        ];
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
        let metrics = reqwest::get(format!("{}/metrics", server.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for needle in [
            "warroom_checks_total ",
            "warroom_checks_failed_total ",
            "warroom_check_drift_seconds{quantile=\"0.99\"}",
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
            monitors.contains("shop-web") && monitors.contains('%'),
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
