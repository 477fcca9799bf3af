//! The dispatcher against a real HTTP receiver on loopback, on every backend, on a manual clock.
#![allow(clippy::unwrap_used)]

use axum::{
    Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, response::IntoResponse,
    routing::post,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};
use time::Duration;
use warroom_domain::{
    Severity,
    notify::{Notification, NotificationKind, RetryPolicy},
};
use warroom_notify::{Adapter, Dispatcher, adapters::webhook::Webhook};
use warroom_store::{Clock, ManualClock, NewOutboxMessage, OutboxStatus, Store};
use warroom_testkit::{T0, backends, fresh_database, open_store};

const SECRET: &[u8] = b"s3cret-for-tests";

#[derive(Default)]
struct Receiver {
    /// (idempotency key, title, signature valid)
    got: Vec<(String, String, bool)>,
    /// Answer this status (and Retry-After) instead of 200 while set.
    failing: Option<(u16, Option<u64>)>,
}

async fn receive(
    State(r): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut r = r.lock().unwrap();
    if let Some((code, ra)) = r.failing {
        let mut h = HeaderMap::new();
        if let Some(s) = ra {
            h.insert("retry-after", s.to_string().parse().unwrap());
        }
        return (StatusCode::from_u16(code).unwrap(), h).into_response();
    }
    // Verify independently of warroom's own signing code.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET).unwrap();
    mac.update(&body);
    let want = format!("sha256={}", hex_lower(&mac.finalize().into_bytes()));
    let sig_ok = headers
        .get("x-warroom-signature")
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let key = headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(v["idempotency_key"], key.as_str());
    r.got
        .push((key, v["title"].as_str().unwrap().to_owned(), sig_ok));
    StatusCode::OK.into_response()
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, state)
}

fn msg(channel: &str, title: &str, incident: Option<i64>) -> NewOutboxMessage {
    NewOutboxMessage::new(
        channel,
        Notification {
            kind: NotificationKind::Page,
            incident,
            severity: Some(Severity::Sev1),
            title: title.into(),
            text: "body".into(),
            incident_channel: None,
        },
    )
}

fn dispatcher(
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    channels: &[(&str, &str)],
) -> Dispatcher {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut adapters: HashMap<String, Arc<dyn Adapter>> = HashMap::new();
    for (name, url) in channels {
        adapters.insert(
            (*name).into(),
            Arc::new(Webhook::new(
                *url,
                SECRET,
                StdDuration::from_secs(5),
                client.clone(),
            )),
        );
    }
    Dispatcher::new(store, clock, adapters, RetryPolicy::default())
}

#[tokio::test]
async fn webhooks_arrive_signed_with_a_stable_idempotency_key() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let (url, rx) = receiver().await;
        store
            .enqueue(
                vec![
                    msg("webhook:ops", "one", None),
                    msg("webhook:ops", "two", None),
                ],
                T0,
            )
            .await
            .unwrap();
        let d = dispatcher(store.clone(), clock.clone(), &[("webhook:ops", &url)]);
        let o = d.run_until_idle().await.unwrap();
        assert_eq!(o.delivered, 2, "{b:?}");
        let got = rx.lock().unwrap().got.clone();
        assert_eq!(
            got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
            ["one", "two"],
            "{b:?}"
        );
        assert!(got.iter().all(|g| g.2), "{b:?}: signatures must verify");
        assert_ne!(got[0].0, got[1].0);
    }
}

#[tokio::test]
async fn a_receiver_down_for_five_minutes_gets_everything_in_order_once_it_is_back() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let (url_a, rx_a) = receiver().await;
        let (url_b, rx_b) = receiver().await;
        rx_a.lock().unwrap().failing = Some((503, None));
        let msgs: Vec<_> = (0..5)
            .map(|k| msg("webhook:a", &format!("a{k}"), None))
            .chain([msg("webhook:b", "b0", None)])
            .collect();
        store.enqueue(msgs, T0).await.unwrap();
        let d = dispatcher(
            store.clone(),
            clock.clone(),
            &[("webhook:a", &url_a), ("webhook:b", &url_b)],
        );
        // Five simulated minutes of a dead receiver, checked every 5 seconds.
        for _ in 0..60 {
            d.run_until_idle().await.unwrap();
            clock.advance(Duration::seconds(5));
        }
        assert!(rx_a.lock().unwrap().got.is_empty());
        assert_eq!(
            rx_b.lock().unwrap().got.len(),
            1,
            "{b:?}: a failing channel must not hold back another"
        );
        rx_a.lock().unwrap().failing = None;
        // The longest backoff is 5 minutes; within that everything drains.
        for _ in 0..70 {
            d.run_until_idle().await.unwrap();
            clock.advance(Duration::seconds(5));
        }
        let titles: Vec<String> = rx_a
            .lock()
            .unwrap()
            .got
            .iter()
            .map(|g| g.1.clone())
            .collect();
        assert_eq!(
            titles,
            ["a0", "a1", "a2", "a3", "a4"],
            "{b:?}: all delivered, in order, once"
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let (url, rx) = receiver().await;
        rx.lock().unwrap().failing = Some((429, Some(30)));
        store
            .enqueue(vec![msg("webhook:ops", "slow down", None)], T0)
            .await
            .unwrap();
        let d = dispatcher(store.clone(), clock.clone(), &[("webhook:ops", &url)]);
        assert_eq!(d.run_once().await.unwrap().retried, 1);
        rx.lock().unwrap().failing = None;
        clock.advance(Duration::seconds(29));
        assert!(
            d.run_until_idle().await.unwrap().is_idle(),
            "{b:?}: not before Retry-After"
        );
        clock.advance(Duration::seconds(2));
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 1, "{b:?}");
    }
}

#[tokio::test]
async fn pending_notifications_survive_a_restart_and_are_delivered_exactly_once() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let msgs: Vec<_> = (0..10)
            .map(|k| msg(&format!("webhook:{}", k % 3), &format!("m{k}"), None))
            .collect();
        store.enqueue(msgs, T0).await.unwrap();
        drop(store); // the process dies before any delivery
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let (url, rx) = receiver().await;
        let chans: Vec<(String, String)> = (0..3)
            .map(|k| (format!("webhook:{k}"), url.clone()))
            .collect();
        let refs: Vec<(&str, &str)> = chans
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let d = dispatcher(store.clone(), clock.clone(), &refs);
        assert_eq!(d.run_until_idle().await.unwrap().delivered, 10, "{b:?}");
        drop(d);
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        let d = dispatcher(store.clone(), clock.clone(), &refs);
        clock.advance(Duration::hours(1));
        assert!(
            d.run_until_idle().await.unwrap().is_idle(),
            "{b:?}: nothing re-sent after a restart"
        );
        let mut keys: Vec<String> = rx.lock().unwrap().got.iter().map(|g| g.0.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 10, "{b:?}");
    }
}

#[tokio::test]
async fn permanent_failures_become_a_warning_on_the_incident() {
    for b in backends() {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let c = warroom_domain::classify(&Default::default(), Some(Severity::Sev1)).unwrap();
        let new = warroom_domain::NewIncident {
            services: vec![warroom_domain::ServiceSlug::parse_field("api", "s").unwrap()],
            primary_service_name: "API".into(),
            summary: "down".into(),
            severity: Some(Severity::Sev1),
            signals: Default::default(),
            reporter: "ana".into(),
            detected_at: None,
            public: false,
        };
        let p = warroom_domain::SeverityPolicies::default();
        store
            .declare_incident(
                "ana",
                T0,
                Box::new(move |n| {
                    let (i, e) = warroom_domain::Incident::declare(n, new, c, &p, T0)?;
                    Ok((
                        i,
                        warroom_store::Change {
                            events: e,
                            outbox: vec![
                                msg("webhook:ops", "page", Some(n)),
                                msg("webhook:nowhere", "lost", Some(n)),
                            ],
                        },
                    ))
                }),
            )
            .await
            .unwrap();
        let (url, rx) = receiver().await;
        rx.lock().unwrap().failing = Some((404, None));
        let d = dispatcher(store.clone(), clock.clone(), &[("webhook:ops", &url)]);
        let o = d.run_until_idle().await.unwrap();
        assert_eq!(o.failed, 2, "{b:?}");
        let tl = store.timeline(1).await.unwrap();
        let warnings: Vec<String> = tl
            .iter()
            .filter(|e| e.kind.name() == "notification_failed")
            .map(|e| e.kind.describe())
            .collect();
        assert_eq!(warnings.len(), 2, "{b:?}");
        assert!(
            warnings.iter().any(|w| w.contains("HTTP 404")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("no channel named `webhook:nowhere`")),
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
        let _ = clock.now();
    }
}

#[tokio::test]
async fn a_slow_channel_never_delays_a_page_on_another_channel() {
    let b = backends()[0];
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    // A receiver that takes 3 seconds to answer.
    let slow = Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(StdDuration::from_secs(3)).await;
            StatusCode::OK
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, slow).await });
    let (fast_url, rx) = receiver().await;
    let d = Arc::new(dispatcher(
        store.clone(),
        clock.clone(),
        &[("webhook:slow", &slow_url), ("webhook:fast", &fast_url)],
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = {
        let d = d.clone();
        tokio::spawn(async move { d.run(StdDuration::from_secs(1), stop_rx).await })
    };
    store
        .enqueue(vec![msg("webhook:slow", "slow one", None)], T0)
        .await
        .unwrap();
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    // The slow delivery is in flight now; a page for another channel must not wait for it.
    let t0 = std::time::Instant::now();
    store
        .enqueue(vec![msg("webhook:fast", "page", None)], T0)
        .await
        .unwrap();
    loop {
        if !rx.lock().unwrap().got.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < StdDuration::from_millis(1500),
            "the page waited for the slow channel"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    runner.await.unwrap();
}
