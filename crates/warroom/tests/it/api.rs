//! The JSON API through real HTTP, on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warroom_server::Settings;
use warroom_testkit::{TestApp, backends};

fn walkthrough_declare() -> Value {
    json!({
        "service": "api",
        "summary": "30% of requests failing since 14:30 UTC",
        "signals": { "users_can_access": true, "failing_percent": 30, "recovering": false }
    })
}

#[tokio::test]
async fn the_runbook_walkthrough_over_http() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let (st, i) = app.post("/api/v1/incidents", walkthrough_declare()).await;
        assert_eq!(st, StatusCode::CREATED, "{b:?}: {i}");
        assert_eq!(i["number"], 1);
        assert_eq!(
            i["title"],
            "INCIDENT: API - 30% of requests failing since 14:30 UTC"
        );
        assert_eq!(i["severity"], 2);
        assert_eq!(i["severity_trace"][1]["answer"], "10-50%");
        assert_eq!(i["channel"], "#incident-20260112-api");
        assert_eq!(i["status"], "declared");
        assert_eq!(i["next_update_due"], "2026-01-12T14:35:00Z");
        assert_eq!(i["reporter"], "rita");
        assert_eq!(i["missing_roles"], json!(["commander"]));

        app.clock.advance(Duration::minutes(1));
        let (st, i) = app
            .post(
                "/api/v1/incidents/1/roles",
                json!({"role": "commander", "person": "rita"}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{i}");
        assert_eq!(i["missing_roles"], json!([]));

        app.clock.advance(Duration::minutes(2));
        let (st, u) = app
            .post(
                "/api/v1/incidents/1/updates",
                json!({"status": "investigating", "current_action": "Checking pod logs", "findings": "CrashLoopBackOff", "next_step": "Review deploy"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        assert_eq!(u["incident"]["next_update_due"], "2026-01-12T14:38:00Z");
        assert!(
            u["message"]
                .as_str()
                .unwrap()
                .starts_with("⏱️ 14:33 UTC UPDATE\nStatus: Investigating"),
            "{u}"
        );

        let (st, _) = app
            .post(
                "/api/v1/incidents/1/notes",
                json!({"text": "Rolled back to v41", "action": true}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);

        app.clock.advance(Duration::minutes(10));
        let (st, i) = app
            .post(
                "/api/v1/incidents/1/transition",
                json!({"to": "resolved", "root_cause": "Bad config in v42", "fix_applied": "Rollback to v41",
                       "impact": {"who": "API clients", "how_many": "1200", "how_long": "13 minutes"}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{i}");
        assert_eq!(i["resolved_at"], "2026-01-12T14:43:00Z");
        assert_eq!(i["next_update_due"], Value::Null);

        let (_, m) = app.get("/api/v1/incidents/1/messages").await;
        let resolved = m["resolved"].as_str().unwrap();
        assert!(
            resolved.contains("Duration: 14:30 UTC to 14:43 UTC = 13 minutes"),
            "{resolved}"
        );
        assert!(
            resolved.contains("Root Cause: Bad config in v42"),
            "{resolved}"
        );

        let (st, i) = app
            .post("/api/v1/incidents/1/transition", json!({"to": "closed"}))
            .await;
        assert_eq!(st, StatusCode::OK, "{i}");

        let (_, t) = app.get("/api/v1/incidents/1/timeline").await;
        let kinds: Vec<&str> = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "declared",
                "role_assigned",
                "status_changed",
                "update_posted",
                "action_taken",
                "status_changed",
                "field_recorded",
                "field_recorded",
                "field_recorded",
                "resolved",
                "status_changed",
                "closed"
            ],
            "{b:?}"
        );
        assert_eq!(t["events"][0]["author"], "rita");
        assert!(t["events"][0]["text"].as_str().unwrap().contains("SEV2"));
    }
}

#[tokio::test]
async fn a_hundred_concurrent_declares_over_http_are_numbered_without_gaps() {
    for b in backends() {
        let app = std::sync::Arc::new(TestApp::spawn(b).await);
        let mut tasks = Vec::new();
        for k in 0..100 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                app.post("/api/v1/incidents", json!({"service": format!("svc-{}", k % 7), "summary": format!("outage {k}"), "severity": 3}))
                    .await
            }));
        }
        let mut numbers = Vec::new();
        for t in tasks {
            let (st, v) = t.await.unwrap();
            assert_eq!(st, StatusCode::CREATED, "{b:?}: {v}");
            numbers.push(v["number"].as_i64().unwrap());
        }
        numbers.sort();
        assert_eq!(numbers, (1..=100).collect::<Vec<i64>>(), "{b:?}");
    }
}

async fn expect_error(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: StatusCode,
    needle: &str,
) {
    let (st, v) = app.call(method, path, token, body).await;
    assert_eq!(st, status, "{path}: {v}");
    assert!(v["error"].is_string(), "{path}: no error code in {v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(needle),
        "{path}: `{msg}` does not mention `{needle}`"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_naming_the_problem() {
    let app = TestApp::spawn(backends()[0]).await;
    let r = Some(app.responder.as_str());
    let post = Method::POST;
    // Malformed JSON.
    let (st, v) = app
        .http
        .post(format!("{}/api/v1/incidents", app.url))
        .bearer_auth(&app.responder)
        .header("content-type", "application/json")
        .body("{\"service\": \"api\",")
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let v: Value = v.json().await.unwrap();
    assert_eq!(v["error"], "malformed_json", "{v}");
    // Severity 7.
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x", "severity": 7})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "severity: 7 is not a severity",
    )
    .await;
    // Neither severity nor signals.
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "give either an explicit severity",
    )
    .await;
    // Wrong type, named by path.
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x", "signals": {"failing_percent": "lots"}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "signals.failing_percent",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x", "signals": {"failing_percent": 130}})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "signals.failing_percent",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "Not A Slug", "summary": "x", "severity": 2})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "service: `Not A Slug` is not a service slug",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "  ", "severity": 2})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "summary: must not be empty",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x", "severity": 2, "colour": "red"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown field `colour`",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": "x", "severity": 2, "detected_at": "yesterday"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "detected_at",
    )
    .await;
    // Close before resolve.
    app.post(
        "/api/v1/incidents",
        json!({"service": "api", "summary": "x", "severity": 2}),
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents/1/transition",
        r,
        Some(json!({"to": "closed"})),
        StatusCode::CONFLICT,
        "allowed from declared: investigating",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents/1/transition",
        r,
        Some(json!({"to": "done"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "to: `done` is not a status",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents/1/roles",
        r,
        Some(json!({"role": "boss", "person": "x"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "role: `boss`",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/incidents/abc",
        r,
        None,
        StatusCode::BAD_REQUEST,
        "`abc` is not an incident number",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/incidents/99",
        r,
        None,
        StatusCode::NOT_FOUND,
        "incident 99 not found",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/incidents?severity=9",
        r,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "severity",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/incidents?colour=red",
        r,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        "colour",
    )
    .await;
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents/1/checklists/incident.closed/tick",
        r,
        None,
        StatusCode::CONFLICT,
        "ticked automatically",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/nope",
        r,
        None,
        StatusCode::NOT_FOUND,
        "no such route",
    )
    .await;
    expect_error(
        &app,
        Method::DELETE,
        "/api/v1/incidents",
        r,
        None,
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
    )
    .await;
    // A body over the limit.
    let big = "x".repeat(2 * 1024 * 1024);
    expect_error(
        &app,
        post.clone(),
        "/api/v1/incidents",
        r,
        Some(json!({"service": "api", "summary": big})),
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger",
    )
    .await;
    // Nothing the bad requests sent was stored.
    let (_, list) = app.get("/api/v1/incidents").await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_and_roles_guard_every_write() {
    let app = TestApp::spawn(backends()[0]).await;
    let body = json!({"service": "api", "summary": "x", "severity": 2});
    expect_error(
        &app,
        Method::POST,
        "/api/v1/incidents",
        None,
        Some(body.clone()),
        StatusCode::UNAUTHORIZED,
        "no API token",
    )
    .await;
    expect_error(
        &app,
        Method::POST,
        "/api/v1/incidents",
        Some("wr_bogus"),
        Some(body.clone()),
        StatusCode::UNAUTHORIZED,
        "unknown or revoked",
    )
    .await;
    expect_error(
        &app,
        Method::GET,
        "/api/v1/incidents",
        None,
        None,
        StatusCode::UNAUTHORIZED,
        "no API token",
    )
    .await;
    expect_error(
        &app,
        Method::POST,
        "/api/v1/incidents",
        Some(&app.viewer),
        Some(body.clone()),
        StatusCode::FORBIDDEN,
        "needs responder",
    )
    .await;
    let (st, _) = app
        .call(Method::GET, "/api/v1/incidents", Some(&app.viewer), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    expect_error(
        &app,
        Method::GET,
        "/api/v1/tokens",
        Some(&app.responder),
        None,
        StatusCode::FORBIDDEN,
        "needs admin",
    )
    .await;
    let (st, t) = app
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "bot", "role": "responder"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let secret = t["secret"].as_str().unwrap().to_owned();
    let (st, _) = app
        .call(
            Method::POST,
            "/api/v1/incidents",
            Some(&secret),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, list) = app
        .call(Method::GET, "/api/v1/tokens", Some(&app.admin), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        !list.to_string().contains(&secret),
        "token list must not leak secrets"
    );
    let id = t["token"]["id"].as_str().unwrap();
    let (st, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    expect_error(
        &app,
        Method::POST,
        "/api/v1/incidents",
        Some(&secret),
        Some(body),
        StatusCode::UNAUTHORIZED,
        "unknown or revoked",
    )
    .await;
    // Health needs no token; readiness checks the database.
    let (st, r) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((st, r["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn strict_services_refuses_unknown_ones_and_names_the_known() {
    let app = TestApp::spawn_with(
        backends()[0],
        Settings {
            strict_services: true,
            ..Default::default()
        },
    )
    .await;
    let api = warroom_domain::service::Service {
        slug: warroom_domain::ServiceSlug::parse_field("api", "s").unwrap(),
        name: "Public API".into(),
        owner: None,
        public: true,
    };
    app.store
        .sync_configured_services(&[api], warroom_testkit::T0)
        .await
        .unwrap();
    let (st, v) = app
        .post(
            "/api/v1/incidents",
            json!({"service": "billing", "summary": "x", "severity": 2}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("known services are: api"),
        "{v}"
    );
    let (st, v) = app
        .post(
            "/api/v1/incidents",
            json!({"service": "api", "summary": "x", "severity": 2}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["title"], "INCIDENT: Public API - x");
    assert_eq!(v["public"], true, "public follows the service's setting");
}

#[tokio::test]
async fn unknown_services_are_registered_on_first_use() {
    let app = TestApp::spawn(backends()[0]).await;
    let (st, v) = app.post("/api/v1/incidents", json!({"service": "payments-db", "services": ["api"], "summary": "slow writes", "severity": 3})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["title"], "INCIDENT: Payments Db - slow writes");
    assert_eq!(v["services"], json!(["payments-db", "api"]));
    let (_, s) = app.get("/api/v1/services").await;
    assert_eq!(s["services"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn classify_endpoint_returns_severity_and_trace() {
    let app = TestApp::spawn(backends()[0]).await;
    let (st, v) = app
        .post(
            "/api/v1/classify",
            json!({"users_can_access": true, "failing_percent": 5}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["severity"], 3);
    assert_eq!(v["severity_name"], "Minor");
    assert_eq!(v["trace"][1]["answer"], "5-10%");
    let (st, v) = app
        .post(
            "/api/v1/classify",
            json!({"signals": {"users_can_access": false}}),
        )
        .await;
    assert_eq!((st, v["severity"].clone()), (StatusCode::OK, json!(1)));
    let (st, _) = app.post("/api/v1/classify", json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn severity_changes_checklists_and_overdue_updates() {
    let app = TestApp::spawn(backends()[0]).await;
    app.post("/api/v1/incidents", walkthrough_declare()).await;
    let (st, v) = app
        .post(
            "/api/v1/incidents/1/severity",
            json!({"signals": {"users_can_access": false}, "reason": "full outage now"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["severity"], 1);
    assert_eq!(
        v["missing_roles"],
        json!(["commander", "communication_lead", "on_call_manager"])
    );
    assert_eq!(v["next_update_due"], "2026-01-12T14:32:00Z");
    app.clock.advance(Duration::minutes(3));
    let (_, v) = app.get("/api/v1/incidents/1").await;
    assert_eq!(v["update_overdue"], true);

    let (_, c) = app.get("/api/v1/incidents/1/checklists").await;
    let item = |c: &Value, id: &str| {
        c["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap()
    };
    assert!(item(&c, "incident.on_call_alerted")["done"].is_null());
    assert_eq!(item(&c, "incident.severity")["done"]["by"], "automatic");
    let (st, c) = app
        .post(
            "/api/v1/incidents/1/checklists/incident.on_call_alerted/tick",
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(item(&c, "incident.on_call_alerted")["done"]["who"], "rita");
    let (_, t) = app.get("/api/v1/incidents/1/timeline").await;
    let last = t["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "checklist_ticked");
}
