//! Alert intake: Alertmanager's API v2 and its webhook, deduplication, incidents that open,
//! join and calm themselves.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use warroom_testkit::{T0, TestApp, backends};

fn alert(name: &str, service: &str, severity: &str, ends: Option<&str>) -> Value {
    let mut a = json!({
        "labels": {"alertname": name, "service": service, "severity": severity},
        "annotations": {"summary": format!("{name} on {service}")},
        "startsAt": "2026-01-12T14:29:00Z",
    });
    if let Some(e) = ends {
        a["endsAt"] = json!(e);
    }
    a
}

/// A maintenance window on one service, open since an hour before the test clock's start.
fn window(
    service: &str,
    ends_at: time::OffsetDateTime,
    comment: &str,
) -> warroom_domain::alert::Silence {
    warroom_domain::alert::Silence {
        id: "config-1".into(),
        matchers: warroom_domain::alert::Matchers::from_specs(
            &[warroom_domain::alert::MatcherSpec::parse(&format!("service={service}")).unwrap()],
            "silences[0].matchers",
        )
        .unwrap(),
        starts_at: T0 - Duration::hours(1),
        ends_at,
        comment: comment.into(),
    }
}

/// An app whose config holds one silence, `config-1`: the nightly jobs of service `batch`,
/// for an hour from the test clock's start.
async fn with_nightly_window(b: warroom_testkit::Backend) -> TestApp {
    let settings = warroom_server::Settings {
        alerts: warroom_server::api::alerts::AlertSettings {
            silences: vec![window("batch", T0 + Duration::hours(1), "nightly jobs")],
            ..Default::default()
        },
        ..Default::default()
    };
    TestApp::spawn_with(b, settings).await
}

async fn incidents(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/incidents").await.1["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn alerts_open_join_and_calm_incidents() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let (st, v) = app
            .post(
                "/api/v2/alerts",
                json!([alert("HighErrorRate", "api", "critical", None)]),
            )
            .await;
        app.settle().await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        let list = incidents(&app).await;
        assert_eq!(list.len(), 1, "{b:?}");
        let i = &list[0];
        assert_eq!(
            i["title"],
            "INCIDENT: API - HighErrorRate: HighErrorRate on api"
        );
        assert_eq!(i["severity"], 1, "critical → SEV1");
        assert_eq!(i["severity_trace"][0]["question"], "alert_label");
        assert_eq!(
            i["detected_at"], "2026-01-12T14:29:00Z",
            "detected when the alert started"
        );
        assert_eq!(i["reporter"], "alertmanager");

        // Clustered Alertmanagers deliver duplicates on purpose: no second incident.
        let (_, v) = app
            .post(
                "/api/v2/alerts",
                json!([alert("HighErrorRate", "api", "critical", None)]),
            )
            .await;
        app.settle().await;
        assert_eq!(v["stored"]["duplicates"], 1, "{v}");
        // Another alert for the same service joins the open incident; another service opens one.
        app.post(
            "/api/v2/alerts",
            json!([
                alert("HighLatency", "api", "warning", None),
                // Its end an hour ahead: still firing when the others resolve.
                alert("DiskFull", "db", "warning", Some("2026-01-12T15:30:00Z"))
            ]),
        )
        .await;
        app.settle().await;
        let list = incidents(&app).await;
        assert_eq!(list.len(), 2, "{b:?}: one open incident per service");
        assert_eq!(list[0]["services"], json!(["db"]));
        assert_eq!(list[0]["severity"], 3, "warning → SEV3");
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        let text = tl.to_string();
        assert!(text.contains("Alert firing: HighLatency"), "{b:?}: {text}");
        assert!(
            text.contains("Playbook: High Error Rate") || text.contains("Playbook:"),
            "{b:?}: the runbook's playbook is attached: {text}"
        );

        // Everything resolves → the incident moves to monitoring and suggests the post-mortem.
        app.clock.advance(Duration::minutes(10));
        let (st, _) = app
            .post(
                "/api/v2/alerts",
                json!([
                    alert(
                        "HighErrorRate",
                        "api",
                        "critical",
                        Some("2026-01-12T14:39:00Z")
                    ),
                    alert(
                        "HighLatency",
                        "api",
                        "warning",
                        Some("2026-01-12T14:39:00Z")
                    )
                ]),
            )
            .await;
        app.settle().await;
        assert_eq!(st, StatusCode::OK);
        let (_, i) = app.get("/api/v1/incidents/1").await;
        assert_eq!(i["status"], "monitoring", "{b:?}");
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        assert!(tl.to_string().contains("warroom postmortem new 1"), "{b:?}");
        let (_, i2) = app.get("/api/v1/incidents/2").await;
        assert_eq!(
            i2["status"], "declared",
            "{b:?}: the db incident is untouched"
        );

        let (_, a) = app.get("/api/v1/alerts?status=firing").await;
        assert_eq!(
            a["alerts"].as_array().unwrap().len(),
            1,
            "{b:?}: only DiskFull still fires"
        );
        assert_eq!(T0 + Duration::minutes(10), app.clock_now());
    }
}

/// Alertmanager's webhook payload with these critical alerts (name, service) firing: no end,
/// as Alertmanager sends them.
fn firing_webhook(alerts: &[(&str, &str)]) -> Value {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, service)| {
            json!({"status": "firing", "labels": {"alertname": name, "service": service, "severity": "critical"},
                "annotations": {}, "startsAt": "2026-01-12T14:29:00Z", "endsAt": "0001-01-01T00:00:00Z"})
        })
        .collect();
    json!({"version": "4", "groupKey": "g", "status": "firing", "receiver": "warroom",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": alerts})
}

/// Waits for the background processor to move incident `number` to `status`.
async fn incident_becomes(app: &TestApp, number: i64, status: &str) -> Value {
    let mut i = Value::Null;
    for _ in 0..100 {
        i = app.get(&format!("/api/v1/incidents/{number}")).await.1;
        if i["status"] == status {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    i
}

#[tokio::test]
async fn an_alert_posted_without_an_end_resolves_a_resolve_timeout_after_it_was_last_sent() {
    // `amtool alert add` and hand-written scripts post no endsAt; Alertmanager then ends the
    // alert `resolve_timeout` (5 minutes) after it was last sent, and so does warroom. The
    // webhook's alerts carry no end either, but are resent only every repeat_interval: they
    // fire until Alertmanager sends the resolution.
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let bare =
            json!([{"labels": {"alertname": "Stuck", "service": "api", "severity": "critical"}}]);
        let (_, v) = app.post("/api/v2/alerts", bare.clone()).await;
        assert_eq!(v["stored"]["new"], 1, "{b:?}: {v}");
        let (st, _) = app
            .post("/hooks/alertmanager", firing_webhook(&[("DiskFull", "db")]))
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}");
        app.settle().await;
        assert_eq!(incidents(&app).await.len(), 2, "{b:?}");
        let ends = |a: &Value| {
            a.as_array()
                .unwrap()
                .iter()
                .find(|x| x["labels"]["alertname"] == "Stuck")
                .map(|x| x["endsAt"].clone())
                .unwrap()
        };
        let (_, listed) = app.get("/api/v2/alerts").await;
        assert_eq!(
            ends(&listed),
            "2026-01-12T14:35:30.000Z",
            "{b:?}: 5 minutes after the send, and a tenth more: {listed}"
        );

        // Sent again within the tenth: a repeat, counted, its end unchanged.
        app.clock.advance(Duration::seconds(20));
        let (_, v) = app.post("/api/v2/alerts", bare.clone()).await;
        assert_eq!(v["stored"]["duplicates"], 1, "{b:?}: {v}");
        assert_eq!(
            ends(&app.get("/api/v2/alerts").await.1),
            "2026-01-12T14:35:30.000Z"
        );
        // Sent again later: the end moves on, and nothing is acted on again.
        app.clock.advance(Duration::minutes(4));
        let (_, v) = app.post("/api/v2/alerts", bare.clone()).await;
        assert_eq!(v["stored"]["changed"], 0, "{b:?}: {v}");
        app.settle().await;
        assert_eq!(
            ends(&app.get("/api/v2/alerts").await.1),
            "2026-01-12T14:39:50.000Z",
            "{b:?}: 5.5 minutes after 14:34:20"
        );

        // 14:39:20, 3 min 50 s past the first end: still firing, as it was sent since.
        app.clock.advance(Duration::minutes(5));
        let resolved = app.expire_due().await;
        assert_eq!(
            resolved, 0,
            "{b:?}: resent at 14:34:20, so not ended at 14:39:20"
        );
        app.settle().await;
        let (_, i) = app.get("/api/v1/incidents/1").await;
        assert_eq!(i["status"], "declared", "{b:?}");
        // Past the end: the processor resolves it by itself and calms its incident.
        app.clock.advance(Duration::minutes(1));
        let i = incident_becomes(&app, 1, "monitoring").await;
        assert_eq!(i["status"], "monitoring", "{b:?}: {i}");
        let (_, a) = app.get("/api/v1/alerts?status=firing").await;
        let firing = a["alerts"].as_array().unwrap();
        assert_eq!(firing.len(), 1, "{b:?}: {a}");
        assert_eq!(
            firing[0]["name"], "DiskFull",
            "{b:?}: the webhook's alert has no timeout"
        );
        let (_, i2) = app.get("/api/v1/incidents/2").await;
        assert_eq!(i2["status"], "declared", "{b:?}");
    }
}

#[tokio::test]
async fn an_alert_no_longer_sent_resolves_at_its_end_calms_its_incident_and_a_relapse_reopens_the_work()
 {
    // Prometheus sends each firing alert with an end a few intervals ahead and moves it on at
    // every resend; one it stopped sending must end by itself, as in Alertmanager.
    for b in backends() {
        let app = TestApp::spawn(b).await;
        app.post(
            "/api/v2/alerts",
            json!([alert(
                "Down",
                "api",
                "critical",
                Some("2026-01-12T14:34:00.123456789Z")
            )]),
        )
        .await;
        app.settle().await;
        app.post(
            "/api/v2/alerts",
            json!([alert(
                "Down",
                "web",
                "critical",
                Some("2026-01-12T14:34:00Z")
            )]),
        )
        .await;
        app.settle().await;
        assert_eq!(incidents(&app).await.len(), 2, "{b:?}");
        // Still sent for `web`: its end moves on.
        app.clock.advance(Duration::minutes(3));
        let (_, v) = app
            .post(
                "/api/v2/alerts",
                json!([alert(
                    "Down",
                    "web",
                    "critical",
                    Some("2026-01-12T14:37:00Z")
                )]),
            )
            .await;
        assert_eq!(
            v["stored"]["changed"], 0,
            "{b:?}: a resend is no change: {v}"
        );
        app.settle().await;
        app.clock.advance(Duration::minutes(2));

        // Nobody drains or posts: the background processor finds the expired alert itself.
        let status = incident_becomes(&app, 1, "monitoring").await["status"].clone();
        assert_eq!(status, "monitoring", "{b:?}: the api alert ended at 14:34");
        let (_, i2) = app.get("/api/v1/incidents/2").await;
        assert_eq!(i2["status"], "declared", "{b:?}: web's end moved to 14:37");
        let (_, a) = app.get("/api/v1/alerts?status=firing").await;
        let firing = a["alerts"].as_array().unwrap();
        assert_eq!(firing.len(), 1, "{b:?}: {a}");
        assert_eq!(firing[0]["service"], "web", "{b:?}");
        let (_, a) = app.get("/api/v1/alerts?status=resolved").await;
        assert_eq!(a["alerts"][0]["service"], "api", "{b:?}: {a}");
        assert_eq!(
            a["alerts"][0]["received"], 1,
            "{b:?}: the expiry is no receipt"
        );

        // Sent again after its end: a new occurrence, which the open incident takes back.
        let (_, v) = app
            .post(
                "/api/v2/alerts",
                json!([alert(
                    "Down",
                    "api",
                    "critical",
                    Some("2026-01-12T14:40:00Z")
                )]),
            )
            .await;
        assert_eq!(v["stored"]["changed"], 1, "{b:?}: {v}");
        app.settle().await;
        let (_, a) = app.get("/api/v1/alerts?status=firing").await;
        assert_eq!(a["alerts"].as_array().unwrap().len(), 2, "{b:?}: {a}");
        // A relapse while monitoring: the fix did not hold, and the incident is worked again.
        let (_, i) = app.get("/api/v1/incidents/1").await;
        assert_eq!(i["status"], "investigating", "{b:?}: {i}");
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        assert!(
            tl.to_string()
                .contains("Down fired again while monitoring: the fix did not hold"),
            "{b:?}: {tl}"
        );
        assert_eq!(incidents(&app).await.len(), 2, "{b:?}: no second incident");
    }
}

#[tokio::test]
async fn a_more_severe_alert_raises_the_incident() {
    let app = TestApp::spawn(backends()[0]).await;
    app.post(
        "/api/v2/alerts",
        json!([alert("Slow", "api", "warning", None)]),
    )
    .await;
    app.settle().await;
    app.post(
        "/api/v2/alerts",
        json!([alert("Down", "api", "critical", None)]),
    )
    .await;
    app.settle().await;
    let (_, i) = app.get("/api/v1/incidents/1").await;
    assert_eq!(i["severity"], 1);
    let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
    assert!(tl.to_string().contains("severity_changed"), "{tl}");
}

#[tokio::test]
async fn the_alertmanager_webhook_is_understood() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let payload = json!({
            "version": "4", "groupKey": "{}:{alertname=\"TargetDown\"}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "warroom", "groupLabels": {"alertname": "TargetDown"}, "commonLabels": {"alertname": "TargetDown"},
            "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{
                "status": "firing", "labels": {"alertname": "TargetDown", "service": "checkout", "severity": "page"},
                "annotations": {"summary": "checkout is down"}, "startsAt": "2026-01-12T14:28:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "deadbeefdeadbeef"
            }]
        });
        let (st, v) = app.post("/hooks/alertmanager", payload.clone()).await;
        app.settle().await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        let (_, v) = app.post("/hooks/alertmanager", payload).await;
        app.settle().await;
        assert_eq!(v["stored"]["duplicates"], 1, "{b:?}");
        let list = incidents(&app).await;
        assert_eq!(list.len(), 1, "{b:?}");
        assert_eq!(list[0]["services"], json!(["checkout"]));
        assert_eq!(list[0]["severity"], 1, "page → SEV1");
        assert_eq!(
            list[0]["status"], "declared",
            "endsAt 0001-01-01 means still firing"
        );
    }
}

#[tokio::test]
async fn bad_alert_input_is_refused_with_the_path() {
    let app = TestApp::spawn(backends()[0]).await;
    let r = Some(app.responder.as_str());
    let (st, v) = app
        .call(
            Method::POST,
            "/api/v2/alerts",
            r,
            Some(json!([{"labels": {}}, alert("Ok", "api", "warning", None)])),
        )
        .await;
    app.settle().await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("[0].labels"), "{v}");
    assert_eq!(
        v["details"]["stored"]["new"], 1,
        "the valid alert of the batch was kept, like Alertmanager"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 alerts refused (the other one was stored)"),
        "{v}"
    );
    // A batch refused whole says that nothing was stored.
    let (st, v) = app
        .call(
            Method::POST,
            "/api/v2/alerts",
            r,
            Some(json!([{"labels": {}}])),
        )
        .await;
    app.settle().await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 1 alerts refused (nothing was stored): [0].labels"),
        "{v}"
    );
    let (st, v) = app.call(Method::POST, "/hooks/alertmanager", r, Some(json!({"version": "4", "groupKey": "g", "status": "firing", "receiver": "r", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "alerts": [{"status": "firing", "labels": {"alertname": "X"}, "annotations": {}, "startsAt": "yesterday", "endsAt": "0001-01-01T00:00:00Z"}]}))).await;
    app.settle().await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("alerts[0]"), "{v}");
    let (st, _) = app
        .call(Method::POST, "/api/v2/alerts", None, Some(json!([])))
        .await;
    app.settle().await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let big: Vec<Value> = (0..40_000)
        .map(|k| alert(&format!("A{k}"), "api", "warning", None))
        .collect();
    let (st, _) = app
        .call(Method::POST, "/api/v2/alerts", r, Some(json!(big)))
        .await;
    app.settle().await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, v) = app
        .http
        .post(format!("{}/api/v2/alerts", app.url))
        .bearer_auth(&app.responder)
        .body("[{")
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let _ = v;
}

#[tokio::test]
async fn alerts_committed_before_a_crash_are_acted_on_afterwards() {
    for b in backends() {
        // No processor: a 2xx commits the alerts, and nothing acts on them, as when warroom
        // crashes right after the commit.
        let mut app = TestApp::spawn_without_processor(b).await;
        let (st, v) = app
            .post(
                "/api/v2/alerts",
                json!([alert("Down", "web", "critical", None)]),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        assert_eq!(v["stored"]["new"], 1);
        assert!(incidents(&app).await.is_empty(), "{b:?}: not acted on yet");
        assert_eq!(app.store.pending_alerts(10).await.unwrap().len(), 1);
        // The processor of the restarted warroom finds the pending alert by itself.
        app.start_processor();
        // The incident commits first and the alerts are settled after it (a crash in between
        // repeats the pass, never loses it), so wait for both.
        let mut list = vec![];
        let mut pending = usize::MAX;
        for _ in 0..500 {
            list = incidents(&app).await;
            pending = app.store.pending_alerts(10).await.unwrap().len();
            if !list.is_empty() && pending == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(list.len(), 1, "{b:?}: the catch-up opened the incident");
        assert_eq!(list[0]["services"], json!(["web"]));
        assert_eq!(pending, 0, "{b:?}: the catch-up settled the alert");
    }
}

#[tokio::test]
async fn the_processor_acts_on_alerts_without_being_drained() {
    // The commit wakes the background processor: no test hook needed for an incident to open.
    let app = TestApp::spawn(backends()[0]).await;
    app.post(
        "/api/v2/alerts",
        json!([alert("Down", "shop", "critical", None)]),
    )
    .await;
    let mut list = vec![];
    for _ in 0..500 {
        list = incidents(&app).await;
        if !list.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn repeats_count_without_a_write_and_changes_are_acted_on() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        // Senders that omit startsAt (stamped with the receipt time) repeat the same occurrence.
        let bare =
            json!([{"labels": {"alertname": "Slow", "service": "api", "severity": "warning"}}]);
        let (_, v) = app.post("/api/v2/alerts", bare.clone()).await;
        assert_eq!(v["stored"]["new"], 1, "{b:?}: {v}");
        app.settle().await;
        for _ in 0..3 {
            app.clock.advance(Duration::seconds(10));
            let (_, v) = app.post("/api/v2/alerts", bare.clone()).await;
            assert_eq!(v["stored"]["duplicates"], 1, "{b:?}: {v}");
        }
        app.settle().await;
        app.store.flush_alert_counts().await.unwrap();
        let (_, a) = app.get("/api/v1/alerts").await;
        assert_eq!(a["alerts"][0]["received"], 4, "{b:?}: {a}");
        assert_eq!(
            a["alerts"][0]["starts_at"], "2026-01-12T14:30:00Z",
            "{b:?}: the first receipt's start is kept"
        );
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        assert_eq!(
            tl.to_string().matches("Alert firing: Slow").count(),
            1,
            "{b:?}: repeats add no evidence: {tl}"
        );
        // A repeat after a state change is a change again: resolved, then firing again.
        let resolved = json!([{"labels": {"alertname": "Slow", "service": "api", "severity": "warning"},
            "startsAt": "2026-01-12T14:30:00Z", "endsAt": "2026-01-12T14:30:20Z"}]);
        let (_, v) = app.post("/api/v2/alerts", resolved.clone()).await;
        assert_eq!(v["stored"]["changed"], 1, "{b:?}: {v}");
        app.settle().await;
        let (_, i) = app.get("/api/v1/incidents/1").await;
        assert_eq!(i["status"], "monitoring", "{b:?}");
        let (_, v) = app.post("/api/v2/alerts", resolved).await;
        assert_eq!(
            v["stored"]["duplicates"], 1,
            "{b:?}: the same resolution again"
        );
        app.clock.advance(Duration::minutes(1));
        let (_, v) = app.post("/api/v2/alerts", bare).await;
        assert_eq!(
            v["stored"]["changed"], 1,
            "{b:?}: firing again after the resolution"
        );
        app.settle().await;
        let (_, a) = app.get("/api/v1/alerts?status=firing").await;
        assert_eq!(a["alerts"].as_array().unwrap().len(), 1, "{b:?}: {a}");
        assert!(app.store.pending_alerts(10).await.unwrap().is_empty());
        let mut evidence = 0;
        for i in incidents(&app).await {
            let (_, tl) = app
                .get(&format!("/api/v1/incidents/{}/timeline", i["number"]))
                .await;
            evidence += tl.to_string().matches("Alert firing: Slow").count();
        }
        assert_eq!(evidence, 2, "{b:?}: the new occurrence was acted on");
    }
}

#[tokio::test]
async fn a_maintenance_window_mutes_matching_alerts_only() {
    let silence = window("db", T0 + Duration::hours(1), "planned failover");
    let alerts = warroom_server::api::alerts::AlertSettings {
        silences: vec![silence],
        ..Default::default()
    };
    let app = TestApp::spawn_with(
        backends()[0],
        warroom_server::Settings {
            alerts,
            ..Default::default()
        },
    )
    .await;
    app.post(
        "/api/v2/alerts",
        json!([
            alert("DiskFull", "db", "critical", None),
            alert("Down", "api", "critical", None)
        ]),
    )
    .await;
    app.settle().await;
    let list = incidents(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["services"],
        json!(["api"]),
        "the db alert was silenced"
    );
    let (_, a) = app.get("/api/v1/alerts?status=firing").await;
    assert_eq!(
        a["alerts"].as_array().unwrap().len(),
        2,
        "silenced alerts are still recorded"
    );
    // After the window, a new firing of the db alert opens an incident.
    app.clock.advance(Duration::hours(2));
    let mut again = alert("DiskFull", "db", "critical", None);
    again["startsAt"] = json!("2026-01-12T16:31:00Z");
    app.post("/api/v2/alerts", json!([again])).await;
    app.settle().await;
    assert_eq!(incidents(&app).await.len(), 2);
}

#[tokio::test]
async fn an_outage_still_firing_when_its_maintenance_window_ends_opens_its_incident_then() {
    for b in backends() {
        let alerts = warroom_server::api::alerts::AlertSettings {
            // `cache` is in both windows: the first ends, the second still mutes it.
            silences: vec![
                window("db", T0 + Duration::minutes(30), "planned failover"),
                window("cache", T0 + Duration::minutes(30), "planned failover"),
                window("cache", T0 + Duration::minutes(120), "planned failover"),
            ],
            ..Default::default()
        };
        let settings = warroom_server::Settings {
            alerts,
            ..Default::default()
        };
        let app = TestApp::spawn_with(b, settings).await;
        let (st, _) = app
            .post(
                "/hooks/alertmanager",
                firing_webhook(&[("DiskFull", "db"), ("Evictions", "cache")]),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}");
        app.settle().await;
        assert!(incidents(&app).await.is_empty(), "{b:?}: both muted");

        // Nobody sends anything more: Alertmanager's sender re-sends only hours apart.
        app.clock.advance(Duration::minutes(31));
        let mut list = vec![];
        for _ in 0..100 {
            list = incidents(&app).await;
            if !list.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(list.len(), 1, "{b:?}: {list:?}");
        assert_eq!(list[0]["services"], json!(["db"]), "{b:?}");
        assert_eq!(list[0]["severity"], 1, "{b:?}");
        app.settle().await;
        assert_eq!(
            incidents(&app).await.len(),
            1,
            "{b:?}: cache is still muted"
        );
    }
}

#[tokio::test]
async fn service_health_follows_firing_alerts_and_keeps_its_history() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        app.post(
            "/api/v2/alerts",
            json!([alert("Slow", "api", "warning", None)]),
        )
        .await;
        app.settle().await;
        let (_, h) = app.get("/api/v1/health").await;
        assert_eq!(h["services"][0]["status"], "DEGRADED", "{b:?}: {h}");
        app.clock.advance(Duration::minutes(1));
        app.post(
            "/api/v2/alerts",
            json!([alert("Down", "api", "critical", None)]),
        )
        .await;
        app.settle().await;
        let (_, h) = app.get("/api/v1/health").await;
        assert_eq!(h["services"][0]["status"], "UNHEALTHY", "{b:?}");
        assert!(
            h["services"][0]["cause"]
                .as_str()
                .unwrap()
                .contains("worst: Down, SEV1"),
            "{h}"
        );
        app.clock.advance(Duration::minutes(1));
        app.post(
            "/api/v2/alerts",
            json!([
                alert("Slow", "api", "warning", Some("2026-01-12T14:31:00Z")),
                alert("Down", "api", "critical", Some("2026-01-12T14:31:00Z"))
            ]),
        )
        .await;
        app.settle().await;
        let (_, hist) = app.get("/api/v1/services/api/health").await;
        let tos: Vec<&str> = hist["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["to"].as_str().unwrap())
            .collect();
        assert_eq!(
            tos,
            ["HEALTHY", "UNHEALTHY", "DEGRADED"],
            "{b:?}: newest first"
        );
        assert_eq!(hist["changes"][0]["at"], "2026-01-12T14:32:00Z");
        let (_, m) = app.call(Method::GET, "/metrics", None, None).await;
        assert!(
            m.as_str()
                .unwrap()
                .contains("warroom_service_health{service=\"api\",status=\"HEALTHY\"} 1"),
            "{m}"
        );
        let (st, _) = app.get("/api/v1/services/Not%20A%20Slug/health").await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn an_alert_source_authenticates_with_its_own_secret_and_is_recorded() {
    use warroom_server::api::alert_auth::AlertSource;
    const SECRET: &str = "am-prod-secret-0123456789";
    for b in backends() {
        let mut settings = warroom_server::Settings::default();
        settings.alerts.sources = vec![
            AlertSource::new("am-stage", "am-stage-secret-0123456789"),
            AlertSource::new("am-prod", SECRET),
        ];
        let app = TestApp::spawn_with(b, settings).await;
        let webhook = json!({
            "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": "firing",
            "receiver": "warroom", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://am:9093", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
                        "annotations": {"summary": "disk full"}, "startsAt": "2026-01-12T14:29:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "x"}]
        });
        // Missing and wrong credentials: 401, nothing stored.
        for token in [None, Some("am-prod-secret-012345678"), Some("")] {
            for (path, body) in [
                ("/hooks/alertmanager", webhook.clone()),
                (
                    "/api/v2/alerts",
                    json!([alert("X", "db", "critical", None)]),
                ),
            ] {
                let (st, v) = app.call(Method::POST, path, token, Some(body)).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{b:?} {path} {token:?}: {v}");
                assert!(
                    !v.to_string().contains(SECRET),
                    "a secret never comes back: {v}"
                );
            }
        }
        assert_eq!(app.get("/api/v1/alerts").await.1["alerts"], json!([]));

        // The source's secret works on both endpoints, and the source is recorded.
        let (st, v) = app
            .call(
                Method::POST,
                "/hooks/alertmanager",
                Some(SECRET),
                Some(webhook),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        let (st, v) = app
            .call(
                Method::POST,
                "/api/v2/alerts",
                Some(SECRET),
                Some(json!([alert("HighLatency", "db", "warning", None)])),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        app.settle().await;
        let alerts = app.get("/api/v1/alerts").await.1["alerts"].clone();
        for a in alerts.as_array().unwrap() {
            assert_eq!(a["annotations"]["warroom_source"], "am-prod", "{a}");
        }
        let list = incidents(&app).await;
        assert_eq!(list[0]["reporter"], "am-prod", "{b:?}");
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        assert!(tl.to_string().contains("via source am-prod"), "{b:?}: {tl}");
        // A source secret is not an API token: it opens nothing else.
        let (st, _) = app
            .call(Method::GET, "/api/v1/incidents", Some(SECRET), None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        // Tokens still work as before (and a viewer's still may not send).
        let (st, _) = app
            .post("/api/v2/alerts", json!([alert("Y", "db", "warning", None)]))
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = app
            .call(
                Method::POST,
                "/api/v2/alerts",
                Some(&app.viewer),
                Some(json!([alert("Z", "db", "warning", None)])),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_10_mb_body_is_refused_with_413_on_every_intake_and_nothing_is_stored() {
    use warroom_server::api::alert_auth::AlertSource;
    const SECRET: &str = "am-prod-secret-0123456789";
    let mut settings = warroom_server::Settings::default();
    settings.alerts.sources = vec![AlertSource::new("am-prod", SECRET)];
    let app = TestApp::spawn_with(backends()[0], settings).await;
    let ten_mb = format!("[{}]", "0,".repeat(5 * 1024 * 1024));
    for (path, token) in [
        ("/api/v2/alerts", app.responder.clone()),
        ("/api/v2/alerts", SECRET.to_owned()),
        ("/hooks/alertmanager", SECRET.to_owned()),
        ("/api/v1/monitors", app.responder.clone()),
    ] {
        let r = app
            .http
            .post(format!("{}{path}", app.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(ten_mb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "payload_too_large", "{path}: {v}");
    }
    assert_eq!(app.get("/api/v1/alerts").await.1["alerts"], json!([]));
    assert_eq!(app.get("/api/v1/monitors").await.1["monitors"], json!([]));
}

#[tokio::test]
async fn below_the_auto_declare_severity_an_alert_only_suggests_an_incident() {
    for b in backends() {
        let mut settings = warroom_server::Settings::default();
        settings.alerts.auto_declare_from = warroom_domain::Severity::Sev2;
        let app = TestApp::spawn_with(b, settings).await;
        let (st, _) = app
            .post(
                "/api/v2/alerts",
                json!([
                    alert("DiskFilling", "db", "warning", None),
                    alert("Down", "api", "critical", None)
                ]),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        app.settle().await;
        let list = incidents(&app).await;
        assert_eq!(list.len(), 1, "{b:?}: only the critical one is declared");
        let alerts = app.get("/api/v1/alerts").await.1["alerts"].clone();
        let by_name = |n: &str| {
            alerts
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == n)
                .unwrap()
                .clone()
        };
        let s = by_name("DiskFilling")["suggestion"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            s.contains("SEV3 is less severe than SEV2")
                && s.contains("warroom declare --service db --severity 3"),
            "{b:?}: {s}"
        );
        assert!(
            by_name("Down")["suggestion"].is_null(),
            "declared: no suggestion"
        );
    }
}

#[tokio::test]
async fn when_the_worst_alert_resolves_a_downgrade_is_suggested_not_applied() {
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let both = |critical_ends: Option<&str>| {
            json!([
                alert("ApiDown", "api", "critical", critical_ends),
                alert("ApiSlow", "api", "warning", None)
            ])
        };
        app.post("/api/v2/alerts", both(None)).await;
        app.settle().await;
        assert_eq!(incidents(&app).await[0]["severity"], 1, "{b:?}");
        // The critical one resolves (delivered twice, as clusters do); the warning still fires.
        for _ in 0..2 {
            let (st, _) = app
                .post("/api/v2/alerts", both(Some("2026-01-12T14:29:30Z")))
                .await;
            assert_eq!(st, StatusCode::OK);
            app.settle().await;
        }
        let i = &incidents(&app).await[0];
        assert_eq!(i["severity"], 1, "{b:?}: never lowered automatically");
        assert_ne!(i["status"], "monitoring", "{b:?}: ApiSlow still fires");
        let (_, tl) = app.get("/api/v1/incidents/1/timeline").await;
        let suggestions: Vec<&Value> = tl["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "severity_downgrade_suggested")
            .collect();
        assert_eq!(suggestions.len(), 1, "{b:?}: once: {tl}");
        assert_eq!(
            (
                suggestions[0]["from"].as_i64(),
                suggestions[0]["to"].as_i64()
            ),
            (Some(1), Some(3))
        );
        assert!(
            suggestions[0]["text"].as_str().unwrap().contains("ApiSlow"),
            "{b:?}: {}",
            suggestions[0]
        );
    }
}

#[tokio::test]
async fn every_alert_answered_2xx_survives_a_kill_of_the_real_server() {
    use crate::cli::{Server, ok, run};
    for b in warroom_testkit::backends() {
        let db = warroom_testkit::fresh_database(b).await.unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let token = ok(&run(
            dir,
            &[],
            &[
                "token",
                "create",
                "--role",
                "responder",
                "--name",
                "prom",
                "--database",
                &db.url,
            ],
        ))
        .trim()
        .to_owned();
        let mut server = Server::start(&db.url, dir);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        // Many concurrent senders; whatever was answered 2xx must be there after SIGKILL.
        let mut tasks = Vec::new();
        for k in 0..32 {
            let (http, url, token) = (http.clone(), server.url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..10 {
                    let name = format!("Durable_{k}_{i}");
                    let body = json!([{"labels": {"alertname": name, "service": format!("svc-{}", k % 4), "severity": "warning"}}]);
                    let r = http
                        .post(format!("{url}/api/v2/alerts"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    if let Ok(r) = r
                        && r.status().is_success()
                    {
                        acked.push(name);
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        assert_eq!(acked.len(), 320, "{b:?}: every request answered");
        // No graceful shutdown: the process dies at once, as in a crash or power loss.
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        drop(server);

        let server = Server::start(&db.url, dir);
        let (_, v) = {
            let r = http
                .get(format!("{}/api/v1/alerts?limit=1000", server.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        };
        let stored: Vec<&str> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for name in &acked {
            assert!(
                stored.contains(&name.as_str()),
                "{b:?}: {name} was answered 2xx but is gone"
            );
        }
        // The restarted processor acts on whatever the kill left pending.
        let mut open = 0;
        for _ in 0..500 {
            let r = http
                .get(format!("{}/api/v1/incidents", server.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            open = r.json::<Value>().await.unwrap()["incidents"]
                .as_array()
                .unwrap()
                .len();
            if open == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(open, 4, "{b:?}: one incident per service");
    }
}

#[tokio::test]
async fn a_big_batch_opens_one_incident_per_service_links_every_alert_and_resolves_them_all() {
    // 300 alerts in one request: on SQLite they go through the intake (appended, merged by
    // the processor); the outcome must be the same as for small requests, on both backends.
    for b in backends() {
        let app = TestApp::spawn(b).await;
        let batch = |ends: Option<&str>| -> Vec<Value> {
            (0..300)
                .map(|i| {
                    alert(
                        &format!("Err{i}"),
                        ["api", "web", "db"][i % 3],
                        "critical",
                        ends,
                    )
                })
                .collect()
        };
        let firing = batch(None);
        let (st, v) = app.post("/api/v2/alerts", json!(firing)).await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        assert_eq!(v["stored"]["new"], 300, "{b:?}: {v}");
        // Listed at once, before anything acted on them.
        let (_, listed) = app.get("/api/v1/alerts?limit=1000").await;
        assert_eq!(listed["alerts"].as_array().unwrap().len(), 300, "{b:?}");
        let (_, v) = app.post("/api/v2/alerts", json!(firing)).await;
        assert_eq!(v["stored"]["duplicates"], 300, "{b:?}: {v}");
        app.settle().await;
        let list = incidents(&app).await;
        assert_eq!(list.len(), 3, "{b:?}: one incident per service");
        for i in &list {
            let n = i["number"].as_i64().unwrap();
            let linked = app.store.alerts_for_incident(n).await.unwrap();
            assert_eq!(linked.len(), 100, "{b:?}: incident {n}");
            // Through the API, every one of them, and a page of them.
            let (st, v) = app.get(&format!("/api/v1/incidents/{n}/alerts")).await;
            assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
            assert_eq!(v["total"], 100, "{b:?}: {v}");
            assert_eq!(v["alerts"].as_array().unwrap().len(), 100, "{b:?}");
            let (_, v) = app
                .get(&format!("/api/v1/incidents/{n}/alerts?limit=7"))
                .await;
            assert_eq!(
                (v["total"].as_i64(), v["alerts"].as_array().unwrap().len()),
                (Some(100), 7)
            );
            // The timeline lists the first 60 and counts the rest, instead of a note per 20.
            let (_, tl) = app.get(&format!("/api/v1/incidents/{n}/timeline")).await;
            let tl = tl.to_string();
            assert_eq!(tl.matches("Alert firing: ").count(), 60, "{b:?}: {tl}");
            assert!(
                tl.contains("and 40 more alerts firing with these: Err")
                    && tl.contains(" ×1, ")
                    && tl.contains("20 more names"),
                "{b:?}: the rest are counted by name: {tl}"
            );
        }
        let (st, v) = app.get("/api/v1/incidents/999/alerts").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{b:?}: {v}");
        let (st, v) = app.get("/api/v1/incidents/1/alerts?limit=0").await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b:?}: {v}");
        assert!(v.to_string().contains("limit"), "{b:?}: {v}");
        assert!(
            app.store.pending_alerts(10).await.unwrap().is_empty(),
            "{b:?}"
        );

        app.clock.advance(Duration::minutes(10));
        let resolved = batch(Some("2026-01-12T14:39:00Z"));
        let (_, v) = app.post("/api/v2/alerts", json!(resolved)).await;
        assert_eq!(v["stored"]["changed"], 300, "{b:?}: {v}");
        app.settle().await;
        for i in incidents(&app).await {
            assert_eq!(i["status"], "monitoring", "{b:?}: {i}");
        }
        let (_, firing_now) = app.get("/api/v1/alerts?status=firing").await;
        assert!(firing_now["alerts"].as_array().unwrap().is_empty(), "{b:?}");
    }
}

#[tokio::test]
async fn a_monitor_alert_keeps_its_severity_under_a_custom_severity_label() {
    // The operator maps `priority: p1..p4` for their senders; monitors still write
    // `severity=critical`, and a down user-facing service must stay a Sev1.
    for b in backends() {
        let alerts = warroom_server::api::alerts::AlertSettings {
            mapping: warroom_domain::alert::SeverityMapping {
                label: "priority".into(),
                values: [("p1".into(), warroom_domain::Severity::Sev1)].into(),
            },
            auto_declare_from: warroom_domain::Severity::Sev2,
            ..Default::default()
        };
        let settings = warroom_server::Settings {
            alerts,
            ..Default::default()
        };
        let app = TestApp::spawn_with(b, settings).await;
        let (st, v) = app
            .post(
                "/api/v2/alerts",
                json!([{
                    "labels": {"alertname": "MonitorDown", "monitor": "shop-web", "service": "shop", "severity": "critical"},
                    "annotations": {"summary": "shop-web is down"},
                }]),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        // Another sender's alert is read through the operator's mapping only.
        app.post(
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "Slow", "service": "cart", "severity": "critical"}}]),
        )
        .await;
        app.settle().await;
        let list = incidents(&app).await;
        assert_eq!(list.len(), 1, "{b:?}: {list:?}");
        assert_eq!(list[0]["services"], json!(["shop"]), "{b:?}");
        assert_eq!(list[0]["severity"], 1, "{b:?}: {:?}", list[0]);
    }
}

#[tokio::test]
async fn silences_made_through_alertmanagers_api_mute_and_expiring_one_acts_on_what_it_held() {
    for b in backends() {
        let app = with_nightly_window(b).await;
        let body = json!({
            "matchers": [{"name": "service", "value": "db", "isRegex": false}],
            "startsAt": "2026-01-12T14:00:00Z",
            "endsAt": "2026-01-12T16:00:00Z",
            "createdBy": "rita",
            "comment": "planned failover",
        });
        let (st, _) = app
            .call(
                Method::POST,
                "/api/v2/silences",
                Some(&app.viewer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b:?}: viewers may not silence");
        for (patch, field) in [
            (json!({"matchers": []}), "$.matchers"),
            (
                json!({"matchers": [{"name": "service", "value": ".*", "isRegex": true}]}),
                "$.matchers",
            ),
            (json!({"endsAt": "tomorrow"}), "$.endsAt"),
            (json!({"endsAt": "2026-01-12T13:00:00Z"}), "$.endsAt"),
            (
                json!({"startsAt": "2026-01-12T10:00:00Z", "endsAt": "2026-01-12T11:00:00Z"}),
                "$.endsAt",
            ),
            (json!({"comment": " "}), "$.comment"),
        ] {
            let mut bad = body.clone();
            for (k, v) in patch.as_object().unwrap() {
                bad[k] = v.clone();
            }
            // As Alertmanager answers (and amtool prints): a 400 whose body is the message,
            // which names the field.
            let (st, v) = app.post("/api/v2/silences", bad).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{b:?} {field}: {v}");
            assert!(
                v.as_str().is_some_and(|m| m.starts_with(field)),
                "{b:?}: {v}"
            );
        }
        let (st, v) = app.post("/api/v2/silences", body).await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        let id = v["silenceID"].as_str().unwrap().to_owned();

        let (st, list) = app
            .call(Method::GET, "/api/v2/silences", Some(&app.viewer), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2, "{b:?}: the config's and the API's: {list:?}");
        assert_eq!(list[0]["id"], "config-1");
        assert_eq!(
            list[0]["matchers"][0]["value"], "batch",
            "{b:?}: {:?}",
            list[0]
        );
        assert_eq!(list[1]["id"], id.as_str());
        assert_eq!(list[1]["status"]["state"], "active", "{b:?}");
        assert_eq!(list[1]["createdBy"], "rita");

        app.post(
            "/api/v2/alerts",
            json!([alert("ReplicationBroken", "db", "critical", None)]),
        )
        .await;
        app.settle().await;
        assert!(
            incidents(&app).await.is_empty(),
            "{b:?}: muted by the API's silence"
        );

        let (st, _) = app
            .call(
                Method::DELETE,
                "/api/v2/silence/config-1",
                Some(&app.responder),
                None,
            )
            .await;
        assert_eq!(
            st,
            StatusCode::CONFLICT,
            "{b:?}: the config's are changed in the config"
        );
        for unknown in ["nope", "config-2"] {
            let (st, _) = app
                .call(
                    Method::DELETE,
                    &format!("/api/v2/silence/{unknown}"),
                    Some(&app.responder),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{b:?} {unknown}");
        }
        let (st, v) = app
            .call(
                Method::DELETE,
                &format!("/api/v2/silence/{id}"),
                Some(&app.responder),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        assert_eq!(v["status"]["state"], "expired", "{b:?}: {v}");

        // The failover is over but replication is still broken: the incident opens now.
        app.clock.advance(Duration::seconds(2));
        let mut list = vec![];
        for _ in 0..100 {
            list = incidents(&app).await;
            if !list.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(list.len(), 1, "{b:?}");
        assert_eq!(list[0]["services"], json!(["db"]), "{b:?}");
        let (_, one) = app
            .call(
                Method::GET,
                &format!("/api/v2/silence/{id}"),
                Some(&app.viewer),
                None,
            )
            .await;
        assert_eq!(one["status"]["state"], "expired", "{b:?}: {one}");
    }
}

#[tokio::test]
async fn an_alert_with_a_huge_name_is_acted_on_and_never_stalls_the_processor() {
    // Label values have no length limit; the notes they end up in do.
    let app = TestApp::spawn(backends()[0]).await;
    let long = "X".repeat(5000);
    app.post(
        "/api/v2/alerts",
        json!([alert(&long, "api", "warning", None)]),
    )
    .await;
    app.settle().await;
    assert_eq!(incidents(&app).await.len(), 1);
    // Resolved: monitoring. Fires again, more severe: a relapse and a raise, both naming it.
    app.clock.advance(Duration::minutes(10));
    app.post(
        "/api/v2/alerts",
        json!([alert(&long, "api", "warning", Some("2026-01-12T14:39:00Z"))]),
    )
    .await;
    app.settle().await;
    let (_, i) = app.get("/api/v1/incidents/1").await;
    assert_eq!(i["status"], "monitoring", "{i}");
    let mut again = alert(&long, "api", "critical", None);
    again["startsAt"] = json!("2026-01-12T14:40:00Z");
    app.post("/api/v2/alerts", json!([again])).await;
    app.settle().await;
    let (_, i) = app.get("/api/v1/incidents/1").await;
    assert_eq!(i["status"], "investigating");
    assert_eq!(i["severity"], 1);
    let pending = app.store.pending_alerts(10).await.unwrap();
    assert!(pending.is_empty(), "nothing is left pending: {pending:?}");
}

/// `GET /api/v2/alerts` as a client of Alertmanager reads it: the firing alerts only, sorted by
/// fingerprint, each with its receiver and the silences muting it, narrowed by `filter=` and
/// the state flags; a bad parameter is a 400 whose body is the message as one JSON string
/// (what amtool prints).
#[tokio::test]
async fn alertmanagers_alert_listing_filters_and_names_the_silences() {
    for b in backends() {
        let app = with_nightly_window(b).await;
        let mut with_url = alert("HighErrorRate", "api", "critical", None);
        with_url["generatorURL"] = json!("http://prometheus:9090/graph?g0.expr=errors");
        let (st, v) = app
            .post(
                "/api/v2/alerts",
                json!([
                    with_url,
                    alert("DiskFull", "db", "warning", Some("2026-01-12T14:35:00Z")),
                    alert("NightlyJob", "batch", "warning", None),
                    alert("Gone", "api", "warning", Some("2026-01-12T14:29:30Z")),
                ]),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        app.settle().await;
        let list = |query: &'static str| {
            let app = &app;
            async move {
                let (st, v) = app
                    .call(
                        Method::GET,
                        &format!("/api/v2/alerts{query}"),
                        Some(&app.viewer),
                        None,
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{b:?} {query}: {v}");
                v.as_array().unwrap().clone()
            }
        };
        let names = |alerts: &[Value]| -> Vec<String> {
            alerts
                .iter()
                .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
                .collect()
        };

        let all = list("").await;
        let mut fingerprints: Vec<&str> = all
            .iter()
            .map(|a| a["fingerprint"].as_str().unwrap())
            .collect();
        assert_eq!(
            all.len(),
            3,
            "{b:?}: the resolved one is not listed: {all:?}"
        );
        let sorted = {
            let mut f = fingerprints.clone();
            f.sort();
            f
        };
        assert_eq!(fingerprints, sorted, "{b:?}: sorted by fingerprint");
        fingerprints.dedup();
        assert_eq!(fingerprints.len(), 3);
        let by_name = |name: &str| {
            all.iter()
                .find(|a| a["labels"]["alertname"] == name)
                .unwrap()
        };
        let api = by_name("HighErrorRate");
        assert_eq!(
            api["status"],
            json!({"state": "active", "silencedBy": [], "inhibitedBy": []})
        );
        assert_eq!(api["receivers"], json!([{"name": "warroom"}]));
        assert_eq!(api["startsAt"], "2026-01-12T14:29:00.000Z");
        assert_eq!(
            api["endsAt"], "2026-01-12T14:35:30.000Z",
            "{b:?}: sent without one, it ends a resolve_timeout (and a tenth) after it was sent"
        );
        assert_eq!(api["updatedAt"], "2026-01-12T14:30:00.000Z");
        assert_eq!(
            api["generatorURL"],
            "http://prometheus:9090/graph?g0.expr=errors"
        );
        assert_eq!(api["annotations"]["summary"], "HighErrorRate on api");
        assert_eq!(api["incident"], 1, "{b:?}: the incident it opened");
        assert_eq!(by_name("DiskFull")["endsAt"], "2026-01-12T14:35:00.000Z");
        let batch = by_name("NightlyJob");
        assert_eq!(
            batch["status"],
            json!({"state": "suppressed", "silencedBy": ["config-1"], "inhibitedBy": []}),
            "{b:?}"
        );

        // Grouped as warroom groups alerts into incidents: by `service` here.
        let (st, groups) = app
            .call(
                Method::GET,
                "/api/v2/alerts/groups",
                Some(&app.viewer),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {groups}");
        let shape: Vec<(Value, Vec<String>)> = groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                assert_eq!(g["receiver"], json!({"name": "warroom"}));
                (g["labels"].clone(), names(g["alerts"].as_array().unwrap()))
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (json!({"service": "api"}), vec!["HighErrorRate".to_owned()]),
                (json!({"service": "batch"}), vec!["NightlyJob".to_owned()]),
                (json!({"service": "db"}), vec!["DiskFull".to_owned()]),
            ],
            "{b:?}"
        );
        assert_eq!(
            groups[1]["alerts"][0]["status"]["silencedBy"],
            json!(["config-1"])
        );
        let (_, groups) = app
            .call(
                Method::GET,
                "/api/v2/alerts/groups?silenced=false&filter=severity%3Dwarning",
                Some(&app.viewer),
                None,
            )
            .await;
        assert_eq!(groups.as_array().map(Vec::len), Some(1), "{b:?}: {groups}");
        assert_eq!(groups[0]["labels"], json!({"service": "db"}));

        let mut unsilenced = names(&list("?silenced=false").await);
        unsilenced.sort();
        assert_eq!(unsilenced, ["DiskFull", "HighErrorRate"], "{b:?}");
        assert_eq!(names(&list("?active=false").await), ["NightlyJob"], "{b:?}");
        assert_eq!(
            names(&list("?filter=service%3D%22api%22").await),
            ["HighErrorRate"]
        );
        assert_eq!(
            names(&list("?filter=alertname%3D~Disk.*").await),
            ["DiskFull"]
        );
        assert_eq!(
            names(&list("?filter=severity%3Dwarning&filter=service!%3Ddb").await),
            ["NightlyJob"],
            "{b:?}: every filter has to match"
        );
        assert_eq!(list("?receiver=war.*").await.len(), 3);
        assert!(list("?receiver=pagerduty").await.is_empty());

        let r = app
            .http
            .get(format!("{}/api/v2/alerts?limit=2", app.url))
            .bearer_auth(&app.viewer)
            .send()
            .await
            .unwrap();
        let cut = r
            .headers()
            .get("warroom-truncated")
            .map(|h| h.to_str().unwrap().to_owned());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body.as_array().unwrap().len(), 2, "{b:?}");
        assert!(
            cut.as_deref()
                .is_some_and(|c| c.contains("more than 2 alerts match")),
            "{b:?}: {cut:?}"
        );
        let r = app
            .http
            .get(format!("{}/api/v2/alerts?limit=3", app.url))
            .bearer_auth(&app.viewer)
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("warroom-truncated").is_none(),
            "{b:?}: all 3 fit"
        );

        // Past its end the alert is gone from the listing, whether or not the expiry has
        // marked it resolved yet. 14:35:10: DiskFull ended at 14:35, and the others, sent
        // without an end at 14:30, end at 14:35:30 (resolve_timeout).
        app.clock.advance(Duration::seconds(310));
        let mut left = names(&list("").await);
        left.sort();
        assert_eq!(left, ["HighErrorRate", "NightlyJob"], "{b:?}");

        for (query, names_it) in [
            (
                "?filter=foo%3D~(",
                "filter[0].value: invalid regular expression",
            ),
            (
                "?filter=service",
                "filter[0]: `service`: write it as name=value",
            ),
            ("?active=maybe", "active: `maybe` is not true or false"),
            ("?limit=0", "limit: `0` is not 1-50000"),
            ("?receiver=(", "receiver: invalid regular expression"),
        ] {
            let (st, v) = app
                .call(
                    Method::GET,
                    &format!("/api/v2/alerts{query}"),
                    Some(&app.viewer),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{b:?} {query}: {v}");
            assert!(
                v.as_str().is_some_and(|m| m.starts_with(names_it)),
                "{b:?} {query}: the body is the message, as a JSON string: {v}"
            );
        }
        let (st, _) = app.call(Method::GET, "/api/v2/alerts", None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{b:?}: reads need a token");

        // Silences listed by filter: each matcher has to be one of the silence's own.
        let (_, v) = app
            .call(
                Method::GET,
                "/api/v2/silences?filter=service%3Dbatch",
                Some(&app.viewer),
                None,
            )
            .await;
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{b:?}: {v}");
        assert_eq!(v[0]["id"], "config-1");
        assert_eq!(v[0]["updatedAt"], "2026-01-12T14:30:00.000Z", "{b:?}: {v}");
        for other in ["service%3Ddb", "service%3D~batch"] {
            let (_, v) = app
                .call(
                    Method::GET,
                    &format!("/api/v2/silences?filter={other}"),
                    Some(&app.viewer),
                    None,
                )
                .await;
            assert_eq!(v, json!([]), "{b:?} {other}");
        }

        let (st, v) = app
            .call(Method::GET, "/api/v2/status", Some(&app.viewer), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["cluster"]["status"], "disabled");
        assert_eq!(v["versionInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["uptime"], "2026-01-12T14:30:00.000Z");
        let (_, v) = app
            .call(Method::GET, "/api/v2/receivers", Some(&app.viewer), None)
            .await;
        assert_eq!(v, json!([{"name": "warroom"}]));

        // A NUL in a label value (allowed on the wire; PostgreSQL's jsonb refuses it) neither
        // fails a filtered listing nor slips into it.
        let mut odd = alert("Odd", "queue", "warning", None);
        odd["labels"]["note"] = json!("a\u{0}b");
        app.post("/api/v2/alerts", json!([odd])).await;
        app.settle().await;
        assert_eq!(
            names(&list("?filter=service%3D%22api%22").await),
            ["HighErrorRate"],
            "{b:?}"
        );
        assert_eq!(
            names(&list("?filter=service%3Dqueue").await),
            ["Odd"],
            "{b:?}"
        );
    }
}

/// `amtool silence update` posts the silence again with its id. As in Alertmanager, a change
/// the silence can take keeps the id (an active one extended, a comment reworded); any other
/// (new matchers, an active one's start moved) replaces it: the old one expires, a new id
/// mutes. A config silence or an unknown id is refused.
#[tokio::test]
async fn silences_change_in_place_or_are_replaced_as_alertmanager_does() {
    for b in backends() {
        let app = with_nightly_window(b).await;
        let body = json!({
            "matchers": [{"name": "service", "value": "db", "isRegex": false}],
            "startsAt": "2026-01-12T14:00:00Z",
            "endsAt": "2026-01-12T15:00:00Z",
            "createdBy": "rita",
            "comment": "planned failover",
        });
        let (_, v) = app.post("/api/v2/silences", body.clone()).await;
        let id = v["silenceID"].as_str().unwrap().to_owned();
        let show = |id: String| {
            let app = &app;
            async move {
                app.call(
                    Method::GET,
                    &format!("/api/v2/silence/{id}"),
                    Some(&app.viewer),
                    None,
                )
                .await
                .1
            }
        };

        let mut longer = body.clone();
        longer["id"] = json!(id);
        longer["endsAt"] = json!("2026-01-12T17:00:00Z");
        longer["comment"] = json!("failover runs long");
        let (st, v) = app.post("/api/v2/silences", longer.clone()).await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        assert_eq!(v["silenceID"], id.as_str(), "{b:?}: extended in place");
        let s = show(id.clone()).await;
        assert_eq!(s["endsAt"], "2026-01-12T17:00:00.000Z", "{b:?}: {s}");
        assert_eq!(s["comment"], "failover runs long");
        assert_eq!(s["status"]["state"], "active");

        let mut moved = longer.clone();
        moved["startsAt"] = json!("2026-01-12T14:10:00Z");
        let (st, v) = app.post("/api/v2/silences", moved).await;
        assert_eq!(st, StatusCode::OK, "{b:?}: {v}");
        let second = v["silenceID"].as_str().unwrap().to_owned();
        assert_ne!(
            second, id,
            "{b:?}: an active silence's start cannot move: replaced"
        );
        assert_eq!(
            show(id.clone()).await["status"]["state"],
            "expired",
            "{b:?}"
        );
        let s = show(second.clone()).await;
        assert_eq!(s["startsAt"], "2026-01-12T14:10:00.000Z", "{b:?}: {s}");

        let mut wider = longer.clone();
        wider["id"] = json!(second);
        wider["matchers"] = json!([{"name": "service", "value": "db|cache", "isRegex": true}]);
        let (_, v) = app.post("/api/v2/silences", wider).await;
        let third = v["silenceID"].as_str().unwrap().to_owned();
        assert!(
            third != second && third != id,
            "{b:?}: new matchers, a new silence"
        );
        assert_eq!(
            show(second.clone()).await["status"]["state"],
            "expired",
            "{b:?}"
        );
        // The replacement mutes: a cache alert opens no incident.
        app.post(
            "/api/v2/alerts",
            json!([alert("Evictions", "cache", "critical", None)]),
        )
        .await;
        app.settle().await;
        assert!(incidents(&app).await.is_empty(), "{b:?}");

        // Changing an ended silence makes a new one; it does not bring the old back.
        let mut again = longer.clone();
        again["id"] = json!(id);
        let (_, v) = app.post("/api/v2/silences", again).await;
        let fourth = v["silenceID"].as_str().unwrap().to_owned();
        assert_ne!(fourth, id, "{b:?}");
        assert_eq!(
            show(id.clone()).await["status"]["state"],
            "expired",
            "{b:?}"
        );

        let s = show("config-1".into()).await;
        assert_eq!(
            s["comment"], "nightly jobs",
            "{b:?}: the config's are shown too: {s}"
        );
        assert_eq!(s["createdBy"], "config");
        for (bad_id, status) in [
            ("nope", StatusCode::NOT_FOUND),
            ("config-1", StatusCode::CONFLICT),
        ] {
            let mut bad = longer.clone();
            bad["id"] = json!(bad_id);
            let (st, v) = app.post("/api/v2/silences", bad).await;
            assert_eq!(st, status, "{b:?} {bad_id}: {v}");
        }
        let (st, _) = app
            .call(
                Method::POST,
                "/api/v2/silences",
                Some(&app.viewer),
                Some(longer),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "{b:?}: viewers may not change silences"
        );
    }
}
