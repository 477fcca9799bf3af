//! The Slack adapter against a stand-in that speaks Slack's wire format, through the real
//! dispatcher and store, on every backend.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use std::{collections::HashMap, sync::Arc, time::Duration as StdDuration};
use time::Duration;
use warroom_domain::{
    Incident, IncidentStatus, ServiceSlug, Severity, SeverityPolicies,
    incident::ResolutionFields,
    messages,
    notify::{Notification, NotificationKind, RetryPolicy},
};
use warroom_notify::{
    Adapter, Dispatcher,
    adapters::slack::{METADATA_EVENT_TYPE, Slack, SlackMode},
    adapters::webhook::Webhook,
};
use warroom_store::{Change, ManualClock, NewOutboxMessage, OutboxStatus, Store};
use warroom_testkit::{
    T0, backends, fresh_database, open_store,
    slack::{BOT_USER, Channel, SlackStandIn, TOKEN},
};

fn users() -> HashMap<String, String> {
    HashMap::from([
        ("ana".to_owned(), "UANA".to_owned()),
        ("bo".to_owned(), "UBO".to_owned()),
    ])
}

fn api_mode(s: &SlackStandIn) -> SlackMode {
    SlackMode::Api {
        token: TOKEN.into(),
        api_url: s.api_url.clone(),
        fallback_channel: Some("C_TEAM".into()),
        users: users(),
    }
}

fn slack(store: &Arc<dyn Store>, mode: SlackMode, interval_ms: u64) -> Slack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Slack::new(
        mode,
        store.clone(),
        StdDuration::from_secs(2),
        reqwest::Client::new(),
    )
    .with_min_interval(StdDuration::from_millis(interval_ms))
}

fn dispatcher(
    store: &Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    adapters: Vec<(&str, Arc<dyn Adapter>)>,
) -> Dispatcher {
    let adapters: HashMap<String, Arc<dyn Adapter>> = adapters
        .into_iter()
        .map(|(n, a)| (n.to_owned(), a))
        .collect();
    Dispatcher::new(
        store.clone(),
        clock.clone(),
        adapters,
        RetryPolicy::default(),
    )
}

/// Slack through the Web API of the stand-in, as the only channel.
fn api_dispatcher(
    store: &Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    s: &SlackStandIn,
) -> Dispatcher {
    dispatcher(
        store,
        clock,
        vec![("slack", Arc::new(slack(store, api_mode(s), 10)))],
    )
}

fn notification(i: &Incident, kind: NotificationKind, text: String) -> Notification {
    Notification {
        kind,
        incident: Some(i.number),
        severity: Some(i.severity),
        title: i.title.clone(),
        text,
        incident_channel: Some(i.channel.clone()),
    }
}

/// Declares a Sev1 on `api` with ana as commander and bo responding; the page to ana and the
/// declaration go to the `slack` channel, as `Routing::declared` would route them.
async fn declare_sev1(store: &Arc<dyn Store>) -> Incident {
    let c = warroom_domain::classify(&Default::default(), Some(Severity::Sev1)).unwrap();
    let new = warroom_domain::NewIncident {
        services: vec![ServiceSlug::parse_field("api", "s").unwrap()],
        primary_service_name: "API".into(),
        summary: "API down".into(),
        severity: Some(Severity::Sev1),
        signals: Default::default(),
        reporter: "ana".into(),
        detected_at: None,
        public: false,
    };
    let p = SeverityPolicies::default();
    let (i, _) = store
        .declare_incident(
            "ana",
            T0,
            Box::new(move |n| {
                let (mut i, events) = Incident::declare(n, new, c, &p, T0)?;
                i.roles.commander = Some("ana".into());
                i.roles.technical_responders = vec!["bo".into()];
                let text = messages::declared(&i, "API", &p);
                let mut page = NewOutboxMessage::new(
                    "slack",
                    notification(&i, NotificationKind::Page, text.clone()),
                );
                page.recipient = Some("ana".into());
                let declared = NewOutboxMessage::new(
                    "slack",
                    notification(&i, NotificationKind::IncidentDeclared, text),
                );
                Ok((
                    i,
                    Change {
                        events,
                        outbox: vec![page, declared],
                    },
                ))
            }),
        )
        .await
        .unwrap();
    i
}

fn methods(s: &SlackStandIn) -> Vec<String> {
    s.with(|w| w.calls.iter().map(|c| c.method.clone()).collect())
}

#[tokio::test]
async fn a_sev1_gets_its_own_slack_channel_with_responders_topic_and_block_kit() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let s = SlackStandIn::start(&["UANA", "UBO"]).await.unwrap();
        // Somebody already made a channel with the runbook's name today.
        s.add_foreign_channel("incident-20260112-api");
        let i = declare_sev1(&store).await;
        assert_eq!(i.channel, "#incident-20260112-api");
        let d = api_dispatcher(&store, &clock, &s);
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 2, "{b:?}");

        assert_eq!(
            methods(&s),
            [
                "conversations.create",
                "conversations.create",
                "conversations.invite",
                "conversations.setTopic",
                "chat.postMessage",
                "chat.postMessage"
            ],
            "{b:?}"
        );
        let creates = s.with(|w| w.calls_of("conversations.create"));
        assert_eq!(creates[0].form["name"], "incident-20260112-api");
        assert_eq!(creates[1].form["name"], "incident-20260112-api-2");
        assert_eq!(
            s.with(|w| w.calls_of("conversations.invite"))[0].form["users"],
            "UANA,UBO"
        );
        let room: Channel =
            s.with(|w| w.channel_named("incident-20260112-api-2").cloned().unwrap());
        assert_eq!(room.creator, BOT_USER);
        assert_eq!(room.members, ["UBOT", "UANA", "UBO"]);
        assert_eq!(room.topic, "Sev1 · declared · INCIDENT: API - API down");

        let keys: Vec<String> = store
            .outbox_for_incident(1)
            .await
            .unwrap()
            .iter()
            .map(|m| m.idempotency_key.clone())
            .collect();
        let text = messages::declared(&i, "API", &SeverityPolicies::default());
        let page = &room.messages[0];
        assert_eq!(
            page["blocks"],
            json!([
                { "type": "header", "text": { "type": "plain_text", "text": "INCIDENT: API - API down", "emoji": true } },
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("<@UANA> {text}") } },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": "Page · Sev1 · incident 1 · warroom" } ] },
            ]),
            "{b:?}"
        );
        assert_eq!(
            page["text"],
            format!("<@UANA> INCIDENT: API - API down\n{text}"),
            "the plain-text fallback carries the whole message"
        );
        assert_eq!(
            page["metadata"],
            json!({ "event_type": METADATA_EVENT_TYPE, "event_payload": { "idempotency_key": keys[0], "incident": 1, "kind": "Page" } })
        );
        assert!(
            text.starts_with("🔴 INCIDENT DECLARED\nService: API\nSeverity: 1 (Critical)"),
            "{text}"
        );
        assert_eq!(
            room.messages[1]["blocks"][2]["elements"][0]["text"],
            "Declared · Sev1 · incident 1 · warroom"
        );

        // An update moves the status: the topic follows and the update is posted; nobody new
        // to invite, so no invitation.
        let p = SeverityPolicies::default();
        let t1 = T0 + Duration::minutes(2);
        store
            .mutate_incident(
                1,
                "ana",
                t1,
                Box::new(move |i| {
                    let mut events = i.transition(
                        IncidentStatus::Investigating,
                        ResolutionFields::default(),
                        None,
                        &p,
                        t1,
                    )?;
                    events.extend(i.post_update(
                        "Failing over",
                        "DB unreachable",
                        "Restore",
                        &p,
                        t1,
                    )?);
                    let text = messages::update(i, None).unwrap_or_default();
                    Ok(Change {
                        events,
                        outbox: vec![NewOutboxMessage::new(
                            "slack",
                            notification(i, NotificationKind::UpdatePosted, text),
                        )],
                    })
                }),
            )
            .await
            .unwrap();
        clock.set(t1);
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 1, "{b:?}");
        assert_eq!(
            &methods(&s)[6..],
            ["conversations.setTopic", "chat.postMessage"],
            "{b:?}"
        );
        let room = s.with(|w| w.channel_named("incident-20260112-api-2").cloned().unwrap());
        assert_eq!(
            room.topic,
            "Sev1 · investigating · INCIDENT: API - API down"
        );
        assert_eq!(room.messages.len(), 3);
        let update = room.messages[2]["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(update.contains("Failing over"), "{update}");
        assert_eq!(
            s.with(|w| w.channels.len()),
            2,
            "{b:?}: one channel per incident"
        );
    }
}

#[tokio::test]
async fn a_retry_after_a_crash_adopts_its_channel_and_does_not_post_twice() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let s = SlackStandIn::start(&["UANA", "UBO"]).await.unwrap();
        declare_sev1(&store).await;
        let page_key = store.outbox_for_incident(1).await.unwrap()[0]
            .idempotency_key
            .clone();
        // The crashed attempt reserved the name, created the channel, posted the page, and died
        // before recording any of it.
        store
            .reserve_chat_room("slack", 1, "incident-20260112-api", T0)
            .await
            .unwrap();
        assert!(store.begin_chat_post("slack", &page_key, T0).await.unwrap());
        s.with(|w| {
            w.channels.push(Channel {
                id: "C_CRASHED".into(),
                name: "incident-20260112-api".into(),
                creator: BOT_USER.into(),
                topic: String::new(),
                members: vec![BOT_USER.into()],
                messages: vec![json!({
                    "ts": "1.1", "text": "page",
                    "metadata": { "event_type": METADATA_EVENT_TYPE, "event_payload": { "idempotency_key": page_key } },
                })],
            })
        });
        let d = api_dispatcher(&store, &clock, &s);
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 2, "{b:?}");
        let channels = s.with(|w| w.channels.clone());
        assert_eq!(channels.len(), 1, "{b:?}: no second channel");
        assert_eq!(
            channels[0].messages.len(),
            2,
            "{b:?}: the page is not posted again, the declaration is"
        );
        assert_eq!(
            store
                .chat_room("slack", 1)
                .await
                .unwrap()
                .unwrap()
                .room_id
                .as_deref(),
            Some("C_CRASHED")
        );
        assert!(methods(&s).contains(&"conversations.history".to_owned()));
    }
}

#[tokio::test]
async fn slack_rate_limits_are_honoured_and_the_message_arrives_later() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let s = SlackStandIn::start(&["UANA", "UBO"]).await.unwrap();
        declare_sev1(&store).await;
        s.with(|w| w.faults.rate_limit = Some((1, 30)));
        let d = api_dispatcher(&store, &clock, &s);
        assert_eq!(d.run_once().await.unwrap().retried, 1, "{b:?}");
        let first = &store.outbox_for_incident(1).await.unwrap()[0];
        assert_eq!(
            first.last_error.as_deref(),
            Some("Slack chat.postMessage answered HTTP 429")
        );
        clock.advance(Duration::seconds(29));
        assert!(
            d.run_until_idle().await.unwrap().is_idle(),
            "{b:?}: not before Retry-After"
        );
        clock.advance(Duration::seconds(2));
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 2, "{b:?}");
        let room = s.with(|w| w.channel_named("incident-20260112-api").cloned().unwrap());
        assert_eq!(room.messages.len(), 2, "{b:?}: each message exactly once");
    }
}

#[tokio::test]
async fn a_revoked_token_fails_the_notification_with_a_reason_on_the_timeline() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let s = SlackStandIn::start(&[]).await.unwrap();
        s.with(|w| w.faults.invalid_auth = true);
        declare_sev1(&store).await;
        let d = api_dispatcher(&store, &clock, &s);
        assert_eq!(d.run_until_idle().await.unwrap().failed, 2, "{b:?}");
        let warnings: Vec<String> = store
            .timeline(1)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind.name() == "notification_failed")
            .map(|e| e.kind.describe())
            .collect();
        assert_eq!(warnings.len(), 2, "{b:?}");
        assert!(
            warnings[0].contains("Slack conversations.create: Slack rejected the bot token (invalid_auth); put a valid bot token (xoxb-…) of an installed app into the channel's token_env or token_file"),
            "{warnings:?}"
        );
        let statuses: Vec<OutboxStatus> = store
            .outbox_for_incident(1)
            .await
            .unwrap()
            .iter()
            .map(|m| m.status)
            .collect();
        assert_eq!(statuses, [OutboxStatus::Failed, OutboxStatus::Failed]);
    }
}

#[tokio::test]
async fn incoming_webhooks_get_text_and_blocks_and_their_errors_are_mapped() {
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = SlackStandIn::start(&[]).await.unwrap();
    let mode = SlackMode::Webhook {
        url: s.webhook_url.clone(),
    };
    let n = Notification {
        kind: NotificationKind::Reminder,
        incident: Some(7),
        severity: Some(Severity::Sev2),
        title: "Update overdue <3 min>".into(),
        text: "Post an update for A & B".into(),
        incident_channel: None,
    };
    store
        .enqueue(
            vec![
                NewOutboxMessage::new("slack-hook", n.clone()),
                NewOutboxMessage::new("slack-hook", n),
            ],
            T0,
        )
        .await
        .unwrap();
    s.with(|w| w.faults.rate_limit = Some((1, 5)));
    let d = dispatcher(
        &store,
        &clock,
        vec![("slack-hook", Arc::new(slack(&store, mode, 10)))],
    );
    assert_eq!(d.run_once().await.unwrap().retried, 1);
    clock.advance(Duration::seconds(6));
    assert_eq!(d.run_until_idle().await.unwrap().delivered, 2);
    let posts = s.with(|w| w.webhook_posts.clone());
    assert_eq!(
        posts[0],
        json!({
            "text": "Update overdue &lt;3 min&gt;\nPost an update for A &amp; B",
            "blocks": [
                { "type": "header", "text": { "type": "plain_text", "text": "Update overdue <3 min>", "emoji": true } },
                { "type": "section", "text": { "type": "mrkdwn", "text": "Post an update for A &amp; B" } },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": "Reminder · Sev2 · incident 7 · warroom" } ] },
            ]
        })
    );
    s.with(|w| w.faults.invalid_auth = true);
    store
        .enqueue(
            vec![NewOutboxMessage::new("slack-hook", posts_notification())],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(d.run_until_idle().await.unwrap().failed, 1);
    let failed = store
        .outbox_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| *s == OutboxStatus::Failed);
    assert_eq!(failed, Some((OutboxStatus::Failed, 1)));
}

fn posts_notification() -> Notification {
    Notification {
        kind: NotificationKind::Info,
        incident: None,
        severity: None,
        title: "t".into(),
        text: "x".into(),
        incident_channel: None,
    }
}

#[tokio::test]
async fn posts_to_one_slack_channel_are_paced_a_second_apart() {
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = SlackStandIn::start(&[]).await.unwrap();
    s.with(|w| {
        w.channels.push(Channel {
            id: "C_TEAM".into(),
            name: "team".into(),
            creator: "UHUMAN".into(),
            topic: String::new(),
            members: vec![],
            messages: vec![],
        })
    });
    store
        .enqueue(
            (0..3)
                .map(|_| NewOutboxMessage::new("slack", posts_notification()))
                .collect(),
            T0,
        )
        .await
        .unwrap();
    // The real one-second spacing.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let adapter = Slack::new(
        api_mode(&s),
        store.clone(),
        StdDuration::from_secs(2),
        reqwest::Client::new(),
    );
    let d = dispatcher(&store, &clock, vec![("slack", Arc::new(adapter))]);
    let started = std::time::Instant::now();
    assert_eq!(d.run_until_idle().await.unwrap().delivered, 3);
    let took = started.elapsed();
    assert!(
        took >= StdDuration::from_millis(1900),
        "three posts to one Slack channel took {took:?}, less than two intervals"
    );
    assert_eq!(s.with(|w| w.channels[0].messages.len()), 3);
}

#[tokio::test]
async fn a_hanging_slack_never_delays_a_webhook_page_on_another_channel() {
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = SlackStandIn::start(&[]).await.unwrap();
    s.with(|w| w.faults.hang = Some(StdDuration::from_secs(30)));
    let got = Arc::new(std::sync::Mutex::new(0usize));
    let app = {
        let got = got.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let got = got.clone();
                async move {
                    *got.lock().unwrap() += 1;
                    "ok"
                }
            }),
        )
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let webhook = Webhook::new(
        hook_url,
        b"secret".to_vec(),
        StdDuration::from_secs(5),
        reqwest::Client::new(),
    );
    let d = Arc::new(dispatcher(
        &store,
        &clock,
        vec![
            ("slack", Arc::new(slack(&store, api_mode(&s), 10))),
            ("pager", Arc::new(webhook)),
        ],
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = {
        let d = d.clone();
        tokio::spawn(async move { d.run(StdDuration::from_secs(1), stop_rx).await })
    };
    store
        .enqueue(
            vec![NewOutboxMessage::new("slack", posts_notification())],
            T0,
        )
        .await
        .unwrap();
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(
        s.with(|w| w.calls.len()),
        1,
        "the Slack call is hanging now"
    );
    let t0 = std::time::Instant::now();
    store
        .enqueue(
            vec![NewOutboxMessage::new("pager", posts_notification())],
            T0,
        )
        .await
        .unwrap();
    while *got.lock().unwrap() == 0 {
        assert!(
            t0.elapsed() < StdDuration::from_millis(1500),
            "the page waited for Slack"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    runner.abort();
}

#[tokio::test]
async fn chat_room_bindings_keep_the_first_reservation_and_one_incident_per_room() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let r = store.reserve_chat_room("slack", 1, "a", T0).await.unwrap();
        assert_eq!((r.name.as_str(), r.room_id.as_deref()), ("a", None));
        let r = store.reserve_chat_room("slack", 1, "b", T0).await.unwrap();
        assert_eq!(r.name, "a", "{b:?}: a retry keeps the name it tried first");
        store.rename_chat_room("slack", 1, "a-2").await.unwrap();
        store.bind_chat_room("slack", 1, "C1").await.unwrap();
        store.bind_chat_room("slack", 1, "C1").await.unwrap();
        store.rename_chat_room("slack", 1, "zzz").await.unwrap();
        let r = store.chat_room("slack", 1).await.unwrap().unwrap();
        assert_eq!(
            (r.name.as_str(), r.room_id.as_deref()),
            ("a-2", Some("C1")),
            "{b:?}: a bound room keeps its name"
        );
        store.reserve_chat_room("slack", 2, "x", T0).await.unwrap();
        let e = store.bind_chat_room("slack", 2, "C1").await.unwrap_err();
        assert!(
            matches!(e, warroom_store::StoreError::Conflict(_)),
            "{b:?}: {e}"
        );
        assert_eq!(store.chat_room_owner("slack", "C1").await.unwrap(), Some(1));
        assert_eq!(store.chat_room_owner("other", "C1").await.unwrap(), None);
        store
            .record_chat_room_state("slack", 1, Some("topic"), &["U1".to_owned()])
            .await
            .unwrap();
        let r = store.chat_room("slack", 1).await.unwrap().unwrap();
        assert_eq!(
            (r.topic.as_deref(), r.members),
            (Some("topic"), vec!["U1".to_owned()])
        );
        assert!(store.begin_chat_post("slack", "k", T0).await.unwrap());
        assert!(!store.begin_chat_post("slack", "k", T0).await.unwrap());
        assert!(store.begin_chat_post("other", "k", T0).await.unwrap());
    }
}

#[tokio::test]
async fn timeouts_and_slack_5xx_are_retried_and_unknown_channels_fail_with_advice() {
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let s = SlackStandIn::start(&[]).await.unwrap();
    let m = store
        .enqueue(
            vec![NewOutboxMessage::new("slack", posts_notification())],
            T0,
        )
        .await
        .unwrap()
        .remove(0);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let adapter = Slack::new(
        api_mode(&s),
        store.clone(),
        StdDuration::from_millis(300),
        reqwest::Client::new(),
    );
    s.with(|w| w.faults.hang = Some(StdDuration::from_secs(5)));
    match adapter.deliver(&m).await {
        Err(warroom_notify::DeliveryError::Retry { error, .. }) => {
            assert_eq!(error, "Slack chat.postMessage timed out after 300ms")
        }
        other => panic!("{other:?}"),
    }
    s.with(|w| w.faults.hang = None);
    // The fallback channel `C_TEAM` does not exist in this workspace. (This is a retry of a post
    // that may have landed: the history check fails permanently too, so it posts, and that fails.)
    match adapter.deliver(&m).await {
        Err(warroom_notify::DeliveryError::Permanent(e)) => assert!(
            e.starts_with("Slack chat.postMessage: Slack has no channel by that id that the bot can see (channel_not_found)"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // Slack itself failing.
    let down = axum::Router::new().route(
        "/api/{method}",
        axum::routing::post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "upstream") }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, down).await });
    let adapter = Slack::new(
        SlackMode::Api {
            token: TOKEN.into(),
            api_url: url,
            fallback_channel: Some("C_TEAM".into()),
            users: users(),
        },
        store.clone(),
        StdDuration::from_secs(2),
        reqwest::Client::new(),
    );
    assert_eq!(
        adapter.deliver(&m).await,
        Err(warroom_notify::DeliveryError::Retry {
            error: "Slack conversations.history answered HTTP 503".into(),
            retry_after: None
        })
    );
}
