//! Paging, escalation and the update cadence on the simulated clock: real HTTP in, real
//! webhooks out, "five minutes later" in no time.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    routing::post,
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};
use time::Duration;
use warroom_domain::{
    escalation::{Contact, EscalationPolicy, Level, PagingConfig, Target},
    notify::{RetryPolicy, Routing},
    oncall::{Layer, Rotation, Schedule},
};
use warroom_notify::{Adapter, Dispatcher, IncidentTicker, adapters::webhook::Webhook};
use warroom_server::Settings;
use warroom_testkit::{TestApp, backends};

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route(
            "/hook/{who}",
            post(
                |State(inbox): State<Inbox>, Path(who): Path<String>, body: Bytes| async move {
                    inbox
                        .lock()
                        .unwrap()
                        .push((who, serde_json::from_slice(&body).unwrap()));
                    StatusCode::OK
                },
            ),
        )
        .with_state(inbox.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (base, inbox)
}

struct Rig {
    _folder: tempfile::TempDir,
    app: TestApp,
    ticker: IncidentTicker,
    dispatcher: Dispatcher,
    inbox: Inbox,
}

impl Rig {
    async fn new(b: warroom_testkit::Backend) -> Rig {
        Self::build(b, false).await
    }

    async fn build(b: warroom_testkit::Backend, links: bool) -> Rig {
        Self::build_with(b, links, warroom_notify::Throttle::default()).await
    }

    async fn build_with(
        b: warroom_testkit::Backend,
        links: bool,
        throttle: warroom_notify::Throttle,
    ) -> Rig {
        let (base, inbox) = receiver().await;
        let schedule = Schedule {
            name: "primary".into(),
            time_zone: "UTC".into(),
            layers: vec![Layer {
                name: "weekly".into(),
                rotation: Rotation::Weekly,
                shift_hours: None,
                handoff: "2026-01-05T09:00".into(),
                members: vec!["ana".into(), "bo".into()],
                end: None,
            }],
            overrides: vec![],
        };
        let policy = EscalationPolicy {
            name: "default".into(),
            levels: vec![
                Level {
                    targets: vec![Target::Schedule {
                        schedule: "primary".into(),
                    }],
                    delay_secs: None,
                },
                Level {
                    targets: vec![Target::User {
                        user: "senior".into(),
                    }],
                    delay_secs: None,
                },
            ],
            repeat: 0,
        };
        let people = ["ana", "bo", "senior", "comms"];
        let paging = Arc::new(PagingConfig {
            policy: Some(policy),
            schedules: vec![schedule.check("schedules[0]").unwrap()],
            contacts: people
                .iter()
                .map(|p| {
                    let mut rules = vec![Contact::Now(format!("{p}-hook"))];
                    // bo's second rule: another channel a minute after the page.
                    if *p == "bo" {
                        rules.push(Contact::After {
                            channel: "bo-later".into(),
                            after_secs: 60,
                        });
                    }
                    ((*p).to_owned(), rules)
                })
                .collect(),
        });
        let routing = Routing {
            updates: vec!["room".into()],
            team: vec!["room".into()],
            ..Default::default()
        };
        let ack_links = links.then(|| {
            Arc::new(warroom_server::ack_link::AckLinks::new(
                "http://placeholder",
                b"0123456789abcdef-test",
            ))
        });
        let folder = tempfile::tempdir().unwrap();
        let settings = Settings {
            paging: paging.clone(),
            routing: routing.clone(),
            ack_links: ack_links.clone(),
            postmortems: Some(warroom_server::postmortems::PostmortemSettings {
                dir: folder.path().to_owned(),
                git_commit: false,
                draft_on_resolve: false,
            }),
            public_url: Some("https://wr.example".into()),
            ..Default::default()
        };
        let app = TestApp::spawn_with(b, settings).await;
        let client = reqwest::Client::new();
        let mut adapters: HashMap<String, Arc<dyn Adapter>> = HashMap::new();
        for name in people
            .iter()
            .map(|p| format!("{p}-hook"))
            .chain(["room".to_owned(), "bo-later".to_owned()])
        {
            let url = format!("{base}/{name}");
            adapters.insert(
                name,
                Arc::new(Webhook::new(
                    url,
                    b"k".to_vec(),
                    StdDuration::from_secs(5),
                    client.clone(),
                )),
            );
        }
        let policies = warroom_domain::SeverityPolicies::default();
        let mut ticker = IncidentTicker::new(
            app.store.clone(),
            app.clock.clone(),
            policies,
            paging,
            routing,
        );
        if let Some(l) = ack_links {
            ticker = ticker.with_decorator(Arc::new(warroom_server::ack_link::decorator(
                l,
                app.clock.clone(),
            )));
        }
        let dispatcher = Dispatcher::new(
            app.store.clone(),
            app.clock.clone(),
            adapters,
            RetryPolicy::default(),
        )
        .with_throttle(throttle);
        Rig {
            _folder: folder,
            app,
            ticker,
            dispatcher,
            inbox,
        }
    }

    /// Moves the clock, runs the incident clock and delivers everything due.
    async fn at(&self, after_declare: Duration) {
        self.app.clock.set(warroom_testkit::T0 + after_declare);
        self.ticker.run_once().await.unwrap();
        self.dispatcher.run_until_idle().await.unwrap();
    }

    fn received(&self) -> Vec<(String, String)> {
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .map(|(w, v)| (w.clone(), v["kind"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    fn pages_to(&self, who: &str) -> usize {
        self.received()
            .iter()
            .filter(|(w, k)| w == &format!("{who}-hook") && k == "page")
            .count()
    }
}

#[tokio::test]
async fn sev1_unacknowledged_for_two_minutes_pages_level_two() {
    for b in backends() {
        let rig = Rig::new(b).await;
        let (st, i) = rig
            .app
            .post(
                "/api/v1/incidents",
                json!({"service": "api", "summary": "API down", "severity": 1}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{i}");
        // 2026-01-12 is in ana's second week... the rotation started 2026-01-05: week 2 is bo.
        assert_eq!(
            i["roles"]["technical_responders"],
            json!(["bo"]),
            "{b:?}: the on-call person joins as a responder"
        );
        rig.at(Duration::ZERO).await;
        assert_eq!(rig.pages_to("bo"), 1, "{b:?}: {:?}", rig.received());
        rig.at(Duration::seconds(119)).await;
        assert_eq!(rig.pages_to("senior"), 0, "{b:?}");
        rig.at(Duration::minutes(2)).await;
        assert_eq!(
            rig.pages_to("senior"),
            1,
            "{b:?}: level 2 paged after the 2-minute response target"
        );
        rig.at(Duration::minutes(3)).await;
        assert_eq!(rig.pages_to("senior"), 1, "{b:?}: paged once");
        let (_, tl) = rig.app.get("/api/v1/incidents/1/timeline").await;
        assert!(
            tl.to_string().contains("not acknowledged within 2 minutes"),
            "{tl}"
        );
    }
}

#[tokio::test]
async fn acknowledgement_stops_the_escalation() {
    for b in backends() {
        let rig = Rig::new(b).await;
        rig.app
            .post(
                "/api/v1/incidents",
                json!({"service": "api", "summary": "errors", "severity": 2}),
            )
            .await;
        rig.at(Duration::ZERO).await;
        assert_eq!(
            rig.pages_to("bo"),
            1,
            "{b:?}: Sev2 alerts the on-call engineer"
        );
        rig.app
            .clock
            .set(warroom_testkit::T0 + Duration::minutes(1));
        let (st, i) = rig.app.post("/api/v1/incidents/1/ack", json!({})).await;
        assert_eq!(st, reqwest::StatusCode::OK, "{i}");
        assert_eq!(
            i["acknowledged_at"], "2026-01-12T14:31:00Z",
            "MTTA starts here"
        );
        rig.at(Duration::minutes(30)).await;
        assert_eq!(
            rig.pages_to("senior"),
            0,
            "{b:?}: acknowledged, nobody else is paged"
        );
    }
}

#[tokio::test]
async fn sev1_not_identified_at_five_minutes_posts_the_escalation_message() {
    for b in backends() {
        let rig = Rig::new(b).await;
        rig.app
            .post(
                "/api/v1/incidents",
                json!({"service": "api", "summary": "API down", "severity": 1}),
            )
            .await;
        rig.app.post("/api/v1/incidents/1/ack", json!({})).await;
        rig.app
            .post(
                "/api/v1/incidents/1/notes",
                json!({"text": "Restarted the pods", "action": true}),
            )
            .await;
        rig.at(Duration::seconds(299)).await;
        assert!(
            !rig.received().iter().any(|(_, k)| k == "escalation"),
            "{b:?}"
        );
        rig.at(Duration::minutes(5)).await;
        let esc: Vec<Value> = rig
            .inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| v["kind"] == "escalation")
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(esc.len(), 1, "{b:?}");
        let text = esc[0]["text"].as_str().unwrap();
        assert!(
            text.contains(
                "Service: API\nDuration so far: 5 minutes\nWhat's been tried: Restarted the pods"
            ),
            "{text}"
        );
        assert_eq!(
            rig.pages_to("senior"),
            1,
            "{b:?}: the senior engineer is paged"
        );
    }
}

#[tokio::test]
async fn sev2_with_no_update_for_five_minutes_reminds_the_communication_lead() {
    for b in backends() {
        let rig = Rig::new(b).await;
        rig.app
            .post(
                "/api/v1/incidents",
                json!({"service": "api", "summary": "errors", "severity": 2}),
            )
            .await;
        rig.app.post("/api/v1/incidents/1/ack", json!({})).await;
        rig.app
            .post(
                "/api/v1/incidents/1/roles",
                json!({"role": "communication_lead", "person": "comms"}),
            )
            .await;
        rig.at(Duration::minutes(5)).await;
        assert!(
            !rig.received()
                .iter()
                .any(|(w, k)| w == "comms-hook" && k == "reminder"),
            "{b:?}: due, not yet overdue"
        );
        rig.at(Duration::minutes(5) + Duration::seconds(1)).await;
        let reminders = |r: &Rig| {
            r.received()
                .iter()
                .filter(|(w, k)| w == "comms-hook" && k == "reminder")
                .count()
        };
        assert_eq!(reminders(&rig), 1, "{b:?}: {:?}", rig.received());
        rig.at(Duration::minutes(10) + Duration::seconds(2)).await;
        assert_eq!(reminders(&rig), 2, "{b:?}: it keeps reminding");
        rig.app
            .clock
            .set(warroom_testkit::T0 + Duration::minutes(11));
        rig.app
            .post(
                "/api/v1/incidents/1/updates",
                json!({"current_action": "a", "findings": "b", "next_step": "c"}),
            )
            .await;
        rig.at(Duration::minutes(15)).await;
        assert_eq!(
            reminders(&rig),
            2,
            "{b:?}: an update stops the reminders until the next deadline"
        );
    }
}

#[tokio::test]
async fn on_call_now_and_coverage_gaps() {
    let rig = Rig::new(backends()[0]).await;
    let (st, v) = rig.app.get("/api/v1/oncall?at=2026-01-12T08:00:00Z").await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    assert_eq!(
        v["schedules"][0]["on_call"]["person"], "ana",
        "before Monday's 09:00 hand-off"
    );
    let (_, v) = rig.app.get("/api/v1/oncall?at=2026-01-12T09:00:00Z").await;
    assert_eq!(v["schedules"][0]["on_call"]["person"], "bo");
    let (_, v) = rig.app.get("/api/v1/oncall?at=2026-01-01T00:00:00Z").await;
    assert!(v["schedules"][0]["on_call"].is_null());
    assert_eq!(
        v["schedules"][0]["gaps_next_7_days"][0]["end"],
        "2026-01-05T09:00:00.000Z"
    );
    let (st, _) = rig.app.get("/api/v1/oncall?at=tomorrow").await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_reporter_is_told_when_investigation_starts_and_when_the_fix_is_applied() {
    let rig = Rig::new(backends()[0]).await;
    rig.app.post("/api/v1/incidents", json!({"service": "web", "summary": "login broken", "severity": 3, "reporter": "comms"})).await;
    rig.app
        .post(
            "/api/v1/incidents/1/transition",
            json!({"to": "investigating"}),
        )
        .await;
    rig.app
        .post(
            "/api/v1/incidents/1/transition",
            json!({"to": "resolved", "fix_applied": "restarted auth"}),
        )
        .await;
    rig.at(Duration::ZERO).await;
    let to_reporter: Vec<String> = rig
        .inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(w, v)| w == "comms-hook" && v["kind"] == "info")
        .map(|(_, v)| v["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(to_reporter.len(), 2, "{to_reporter:?}");
    assert!(to_reporter[0].contains("we are investigating"));
    assert!(
        to_reporter[1].contains("A fix has been applied")
            && to_reporter[1].contains("restarted auth")
    );
    let (st, _) = rig
        .app
        .post("/api/v1/incidents/1/postmortem", json!({}))
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED);
    rig.at(Duration::ZERO).await;
    let published: Vec<String> = rig
        .inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(w, v)| {
            w == "comms-hook"
                && v["title"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("Post-mortem published")
        })
        .map(|(_, v)| v["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        published.len(),
        1,
        "the reporter hears that the post-mortem is published"
    );
    assert!(
        published[0].contains("https://wr.example/postmortems/2026-01-12-web-login-broken.html"),
        "{published:?}"
    );
}

#[tokio::test]
async fn a_signed_one_click_link_acknowledges_the_page() {
    let rig = Rig::build(backends()[0], true).await;
    rig.app
        .post(
            "/api/v1/incidents",
            json!({"service": "api", "summary": "API down", "severity": 1}),
        )
        .await;
    rig.at(Duration::ZERO).await;
    let page = rig
        .inbox
        .lock()
        .unwrap()
        .iter()
        .find(|(w, v)| w == "bo-hook" && v["kind"] == "page")
        .map(|(_, v)| v.clone())
        .unwrap();
    let text = page["text"].as_str().unwrap();
    let link = text
        .split("Acknowledge with one click: ")
        .nth(1)
        .expect("a link in the page")
        .trim()
        .to_owned();
    let path = link.strip_prefix("http://placeholder").unwrap().to_owned();
    assert!(path.starts_with("/ack/1/bo/"), "{path}");
    // Opening the link (as a mail scanner would) does not acknowledge.
    let (st, html) = rig.app.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(st, reqwest::StatusCode::OK);
    assert!(html.as_str().unwrap().contains("<form method=\"post\">"));
    let (_, i) = rig.app.get("/api/v1/incidents/1").await;
    assert!(i["acknowledged_at"].is_null());
    // A tampered link is refused.
    let tampered = format!("{}0", &path[..path.len() - 1]);
    let (st, _) = rig
        .app
        .call(reqwest::Method::POST, &tampered, None, None)
        .await;
    assert_eq!(st, reqwest::StatusCode::FORBIDDEN);
    let other = path.replace("/ack/1/bo/", "/ack/1/senior/");
    let (st, _) = rig
        .app
        .call(reqwest::Method::POST, &other, None, None)
        .await;
    assert_eq!(st, reqwest::StatusCode::FORBIDDEN);
    // The button acknowledges, as bo.
    let (st, html) = rig.app.call(reqwest::Method::POST, &path, None, None).await;
    assert_eq!(st, reqwest::StatusCode::OK, "{html}");
    let (_, i) = rig.app.get("/api/v1/incidents/1").await;
    assert_eq!(i["paging"]["acknowledged_by"], "bo");
    rig.at(Duration::minutes(3)).await;
    assert_eq!(
        rig.pages_to("senior"),
        0,
        "acknowledged by link: no escalation"
    );
    // After a day the link has expired.
    rig.app.clock.set(warroom_testkit::T0 + Duration::hours(25));
    let (st, _) = rig.app.call(reqwest::Method::POST, &path, None, None).await;
    assert_eq!(st, reqwest::StatusCode::GONE);
}

#[tokio::test]
async fn a_later_notification_rule_fires_unless_someone_acknowledges_first() {
    for b in backends() {
        let rig = Rig::new(b).await;
        rig.app
            .post(
                "/api/v1/incidents",
                json!({"service": "api", "summary": "down", "severity": 1}),
            )
            .await;
        rig.at(Duration::ZERO).await;
        let later = |r: &Rig| {
            r.received()
                .iter()
                .filter(|(w, k)| w == "bo-later" && k == "page")
                .count()
        };
        assert_eq!((rig.pages_to("bo"), later(&rig)), (1, 0), "{b:?}");
        rig.at(Duration::seconds(59)).await;
        assert_eq!(later(&rig), 0, "{b:?}: not before its minute");
        rig.at(Duration::seconds(60)).await;
        assert_eq!(
            later(&rig),
            1,
            "{b:?}: the second rule fires a minute after the page"
        );

        // Acknowledged before the minute: the later rule is cancelled.
        rig.app
            .post(
                "/api/v1/incidents",
                json!({"service": "web", "summary": "down", "severity": 1}),
            )
            .await;
        rig.at(Duration::seconds(61)).await;
        rig.app.clock.set(T0_PLUS(90));
        rig.app.post("/api/v1/incidents/2/ack", json!({})).await;
        rig.at(Duration::minutes(3)).await;
        let later_for_2 = rig
            .inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, v)| w == "bo-later" && v["incident"] == 2)
            .count();
        assert_eq!(later_for_2, 0, "{b:?}");
        let (_, n) = rig.app.get("/api/v1/incidents/2/notifications").await;
        assert!(
            n["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["status"] == "cancelled" && m["recipient"] == "bo"),
            "{b:?}: {n}"
        );
    }
}

#[allow(non_snake_case)]
fn T0_PLUS(secs: i64) -> time::OffsetDateTime {
    warroom_testkit::T0 + Duration::seconds(secs)
}

#[tokio::test]
async fn an_alert_storm_pages_a_person_no_more_than_the_throttle() {
    let throttle = warroom_notify::Throttle {
        max_pages: 3,
        window: Duration::minutes(10),
    };
    let rig = Rig::build_with(backends()[0], false, throttle).await;
    for k in 0..8 {
        let (st, _) = rig.app.post("/api/v2/alerts", json!([{"labels": {"alertname": "Down", "service": format!("svc-{k}"), "severity": "critical"}}])).await;
        assert_eq!(st, reqwest::StatusCode::OK);
    }
    rig.app.settle().await;
    rig.at(Duration::ZERO).await;
    assert_eq!(
        rig.app.get("/api/v1/incidents").await.1["incidents"]
            .as_array()
            .unwrap()
            .len(),
        8,
        "every service got its incident"
    );
    assert_eq!(rig.pages_to("bo"), 3, "{:?}", rig.received());
    let (_, tl) = rig.app.get("/api/v1/incidents/8/timeline").await;
    assert!(
        tl.to_string()
            .contains("Page throttled: bo was paged 3 times"),
        "{tl}"
    );
    let (_, m) = rig
        .app
        .call(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert!(
        m.as_str()
            .unwrap()
            .contains("warroom_notifications{status=\"throttled\"} 5"),
        "{m}"
    );
}
