//! The monitors API in-process: validation, roles, config monitors read-only, PUT semantics.
//! (That the scheduler runs what the API stores is `detection.rs`, through the real binary.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warroom_testkit::{TestApp, backends};

fn spec() -> Value {
    json!({
        "id": "shop-web", "service": "shop", "interval_secs": 30,
        "check": { "kind": "http", "url": "https://shop.example.com/health", "expected_status": ["2xx"] }
    })
}

fn config_monitor() -> warroom_domain::monitor::Monitor {
    let s: warroom_domain::monitor::MonitorSpec = serde_json::from_value(json!({
        "id": "edge-port", "service": "edge", "interval_secs": 10,
        "check": { "kind": "tcp", "host": "edge.internal", "port": 443 }
    }))
    .unwrap();
    s.validate("monitors[0]").unwrap()
}

#[tokio::test]
async fn monitors_are_validated_like_the_config_and_config_ones_are_read_only() {
    for b in backends() {
        let settings = warroom_server::Settings {
            monitors: vec![config_monitor()],
            ..Default::default()
        };
        let app = TestApp::spawn_with(b, settings).await;
        let (st, _) = app
            .call(Method::POST, "/api/v1/monitors", None, Some(spec()))
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        for (patch, field) in [
            (json!({"timeout_ms": 30_000}), "$.timeout_ms"),
            (json!({"failures_to_down": 0}), "$.failures_to_down"),
            (json!({"service": "Not A Slug"}), "$.service"),
            (
                json!({"check": {"kind": "http", "url": "https://x/", "expected_status": ["200", "7xx"]}}),
                "$.check.expected_status[1]",
            ),
            (
                json!({"check": {"kind": "dns", "name": "x", "expected": ["nope"]}}),
                "$.check.expected[0]",
            ),
            (
                json!({"check": {"kind": "tcp", "host": "db", "port": 0}}),
                "$.check.port",
            ),
            (json!({"interval_secs": "often"}), "$.interval_secs"),
        ] {
            let mut body = spec();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (st, v) = app.post("/api/v1/monitors", body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b:?} {field}: {v}");
            assert_eq!(v["details"]["field"], field, "{b:?}: {v}");
            assert!(v["message"].as_str().unwrap().starts_with(field), "{v}");
        }
        let (st, v) = app.post("/api/v1/monitors", json!([1])).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

        let (st, v) = app.post("/api/v1/monitors", spec()).await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {v}");
        assert_eq!(v["created_by"], "rita");
        assert_eq!(v["spec"]["check"]["expected_status"], json!(["2xx"]));
        let (_, list) = app.get("/api/v1/monitors").await;
        let ids: Vec<(&str, &str)> = list["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap(), m["source"].as_str().unwrap()))
            .collect();
        assert_eq!(ids, [("edge-port", "config"), ("shop-web", "api")]);
        let (st, v) = app.get("/api/v1/monitors/edge-port").await;
        assert_eq!((st, v["source"].as_str()), (StatusCode::OK, Some("config")));
        assert_eq!(
            v["check"],
            json!({"kind": "tcp", "host": "edge.internal", "port": 443})
        );

        // PUT: the body's id may be absent, must otherwise match; unknown ids are 404.
        let mut other = spec();
        other["id"] = "renamed".into();
        let (st, v) = app
            .call(
                Method::PUT,
                "/api/v1/monitors/shop-web",
                Some(&app.responder),
                Some(other),
            )
            .await;
        assert_eq!(
            (st, v["details"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("$.id")),
            "{v}"
        );
        let (st, v) = app
            .call(
                Method::PUT,
                "/api/v1/monitors/ghost",
                Some(&app.responder),
                Some(
                    spec()
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| *k != "id")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("POST /api/v1/monitors"),
            "{v}"
        );
        let (st, v) = app
            .call(
                Method::PUT,
                "/api/v1/monitors/edge-port",
                Some(&app.admin),
                Some(spec()),
            )
            .await;
        assert_eq!(
            (st, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("config_monitor")),
            "{v}"
        );
        let delete = async |token: &str| {
            app.call(
                Method::DELETE,
                "/api/v1/monitors/shop-web",
                Some(token),
                None,
            )
            .await
            .0
        };
        assert_eq!(delete(&app.viewer).await, StatusCode::FORBIDDEN);
        assert_eq!(
            delete(&app.admin).await,
            StatusCode::NO_CONTENT,
            "admins may write too"
        );
        assert_eq!(delete(&app.admin).await, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn with_strict_services_a_monitor_must_name_a_known_service() {
    let settings = warroom_server::Settings {
        strict_services: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(backends()[0], settings).await;
    let (st, v) = app.post("/api/v1/monitors", spec()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["details"]["field"], "$.service", "{v}");
    assert!(
        app.get("/api/v1/monitors").await.1["monitors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn viewers_see_that_a_monitor_has_credentials_but_not_what_they_are() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let mut body = spec();
        body["check"]["url"] = json!("https://probe:pa55word@shop.example.com/health?x=1");
        body["check"]["headers"] = json!({ "Authorization": "Bearer s3cret-token" });
        let (st, v) = app.post("/api/v1/monitors", body).await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {v}");

        for path in ["/api/v1/monitors", "/api/v1/monitors/shop-web"] {
            let (st, v) = app.call(Method::GET, path, Some(&app.viewer), None).await;
            assert_eq!(st, StatusCode::OK, "{b:?} {path}: {v}");
            let text = v.to_string();
            assert!(!text.contains("s3cret-token"), "{b:?} {path}: {text}");
            assert!(!text.contains("pa55word"), "{b:?} {path}: {text}");
            let m = if path.ends_with("monitors") {
                v["monitors"][0].clone()
            } else {
                v
            };
            assert_eq!(
                m["spec"]["check"]["headers"]["Authorization"], "[redacted]",
                "{b:?} {path}: {m}"
            );
            assert_eq!(
                m["spec"]["check"]["url"],
                "https://[redacted]@shop.example.com/health?x=[redacted]",
                "{b:?} {path}"
            );
        }
        // Whoever may replace the monitor sees what they would send back.
        let (st, v) = app.get("/api/v1/monitors/shop-web").await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            v["spec"]["check"]["headers"]["Authorization"], "Bearer s3cret-token",
            "{b:?}"
        );
        assert_eq!(
            v["spec"]["check"]["url"],
            "https://probe:pa55word@shop.example.com/health?x=1"
        );
    }
}
