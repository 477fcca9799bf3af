//! The storage contract: the same stories against SQLite and PostgreSQL.

use std::collections::BTreeSet;
use time::Duration;
use warroom_domain::{
    DomainError, Incident, IncidentStatus, NewIncident, ServiceSlug, Severity, SeverityPolicies,
    Signals, classify, service::Service,
};
use warroom_store::{IncidentFilter, Store, StoreError, TokenRole};
use warroom_testkit::{Backend, T0, backends, fresh_database, open_store};

fn new_incident(service: &str, summary: &str, severity: Severity) -> NewIncident {
    NewIncident {
        services: vec![ServiceSlug::parse_field(service, "service").unwrap()],
        primary_service_name: service.to_uppercase(),
        summary: summary.into(),
        severity: Some(severity),
        signals: Signals::default(),
        reporter: "ana".into(),
        detected_at: None,
        public: false,
    }
}

async fn declare(
    store: &dyn Store,
    service: &str,
    severity: Severity,
) -> Result<Incident, StoreError> {
    let new = new_incident(service, "something broke", severity);
    let c = classify(&Signals::default(), Some(severity)).unwrap();
    let (i, _) = store
        .declare_incident(
            "ana",
            T0,
            Box::new(move |n| {
                Incident::declare(n, new, c, &SeverityPolicies::default(), T0)
                    .map(|(i, e)| (i, e.into()))
            }),
        )
        .await?;
    Ok(i)
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for b in backends() {
        f(b).await;
    }
}

/// Ends a pass with one settle: the first `linked` of `fps` join incident `number` (with
/// `events` on its timeline), the rest settle unlinked. Then nothing is pending, from the
/// database or from memory, and the incident lists exactly the `linked` alerts.
async fn settle_whole_pass(
    store: &dyn Store,
    b: Backend,
    number: warroom_domain::IncidentNumber,
    fps: &[String],
    linked: usize,
    events: Vec<warroom_domain::EventKind>,
) {
    let join = warroom_store::AlertJoin {
        incident: number,
        change: Box::new(move |_| Ok(events.into())),
        alerts: fps[..linked].to_vec(),
    };
    store
        .settle_pass("alertmanager", T0, vec![join], &fps[linked..])
        .await
        .unwrap();
    store.pass_done(true);
    assert!(
        store.pending_alerts(1000).await.unwrap().is_empty(),
        "{b:?}"
    );
    assert!(store.take_pending(1000).await.unwrap().is_empty(), "{b:?}");
    store.pass_done(true);
    assert_eq!(
        store.alerts_for_incident(number).await.unwrap().len(),
        linked,
        "{b:?}"
    );
}

#[tokio::test]
async fn declared_incidents_survive_a_reopen_of_the_database() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev2)
            .await
            .unwrap();
        let p = SeverityPolicies::default();
        store
            .mutate_incident(
                i.number,
                "bo",
                T0 + Duration::minutes(1),
                Box::new(move |i| {
                    i.post_update("a", "b", "c", &p, T0 + Duration::minutes(1))
                        .map(Into::into)
                }),
            )
            .await
            .unwrap();
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        let again = store.incident(i.number).await.unwrap();
        assert_eq!(again.title, "INCIDENT: API - something broke", "{b:?}");
        assert!(again.last_update.is_some(), "{b:?}");
        let tl = store.timeline(i.number).await.unwrap();
        assert_eq!(
            tl.iter().map(|e| e.kind.name()).collect::<Vec<_>>(),
            ["declared", "update_posted"],
            "{b:?}"
        );
        assert_eq!(tl[1].author, "bo");
    })
    .await;
}

#[tokio::test]
async fn a_hundred_concurrent_declares_get_a_hundred_consecutive_numbers() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                declare(s.as_ref(), "api", Severity::Sev3).await
            }));
        }
        let mut numbers = BTreeSet::new();
        for t in tasks {
            numbers.insert(t.await.unwrap().unwrap().number);
        }
        assert_eq!(numbers, (1..=100).collect::<BTreeSet<i64>>(), "{b:?}");
    })
    .await;
}

#[tokio::test]
async fn a_refused_declare_gives_its_number_back() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        assert_eq!(
            declare(store.as_ref(), "api", Severity::Sev2)
                .await
                .unwrap()
                .number,
            1
        );
        let err = store
            .declare_incident(
                "ana",
                T0,
                Box::new(|_| Err(DomainError::invalid("summary", "must not be empty"))),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Rejected(_)), "{b:?}: {err}");
        assert_eq!(
            declare(store.as_ref(), "api", Severity::Sev2)
                .await
                .unwrap()
                .number,
            2,
            "{b:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_refused_change_writes_nothing() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev2)
            .await
            .unwrap();
        let p = SeverityPolicies::default();
        let err = store
            .mutate_incident(
                i.number,
                "ana",
                T0,
                Box::new(move |i| {
                    i.transition(IncidentStatus::Closed, Default::default(), None, &p, T0)
                        .map(Into::into)
                }),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot move incident from declared to closed"),
            "{b:?}: {err}"
        );
        assert_eq!(
            store.incident(i.number).await.unwrap().status,
            IncidentStatus::Declared
        );
        assert_eq!(store.timeline(i.number).await.unwrap().len(), 1, "{b:?}");
        let missing = store.incident(999).await.unwrap_err();
        assert!(matches!(missing, StoreError::NotFound { .. }), "{b:?}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_changes_to_one_incident_are_all_kept() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev2)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for k in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.mutate_incident(
                    1,
                    "ana",
                    T0,
                    Box::new(move |i| i.add_note(&format!("note {k}"), false).map(Into::into)),
                )
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let _ = i;
        assert_eq!(store.timeline(1).await.unwrap().len(), 21, "{b:?}");
    })
    .await;
}

#[tokio::test]
async fn list_filters_by_status_severity_and_service() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        declare(store.as_ref(), "api", Severity::Sev1)
            .await
            .unwrap();
        declare(store.as_ref(), "web", Severity::Sev2)
            .await
            .unwrap();
        declare(store.as_ref(), "api", Severity::Sev2)
            .await
            .unwrap();
        let p = SeverityPolicies::default();
        store
            .mutate_incident(
                1,
                "ana",
                T0,
                Box::new(move |i| {
                    i.transition(IncidentStatus::Resolved, Default::default(), None, &p, T0)
                        .map(Into::into)
                }),
            )
            .await
            .unwrap();
        let nums = |v: Vec<Incident>| v.into_iter().map(|i| i.number).collect::<Vec<_>>();
        let all = store
            .list_incidents(&IncidentFilter::default())
            .await
            .unwrap();
        assert_eq!(nums(all), [3, 2, 1], "{b:?} newest first");
        let f = IncidentFilter {
            service: Some("api".into()),
            ..Default::default()
        };
        assert_eq!(
            nums(store.list_incidents(&f).await.unwrap()),
            [3, 1],
            "{b:?}"
        );
        let f = IncidentFilter {
            severity: Some(Severity::Sev2),
            ..Default::default()
        };
        assert_eq!(
            nums(store.list_incidents(&f).await.unwrap()),
            [3, 2],
            "{b:?}"
        );
        let f = IncidentFilter {
            statuses: vec![IncidentStatus::Resolved],
            ..Default::default()
        };
        assert_eq!(nums(store.list_incidents(&f).await.unwrap()), [1], "{b:?}");
        let f = IncidentFilter {
            limit: 1,
            ..Default::default()
        };
        assert_eq!(nums(store.list_incidents(&f).await.unwrap()), [3], "{b:?}");
    })
    .await;
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_can_be_revoked() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let t = store
            .create_token("ci", TokenRole::Responder, T0)
            .await
            .unwrap();
        assert!(t.secret.starts_with("wr_") && t.secret.len() > 40);
        assert!(
            !format!("{t:?}").contains(&t.secret),
            "Debug must redact the secret"
        );
        // The table holds only a hash of the secret.
        let raw = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(&raw)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0], t.secret);
        assert!(
            !stored[0].contains(&t.secret[3..]),
            "{b:?}: secret stored in clear"
        );
        assert_eq!(stored[0].len(), 64, "{b:?}: a sha-256 hex digest");
        raw.close().await;
        assert_eq!(
            store.authenticate(&t.secret).await.unwrap().unwrap().name,
            "ci",
            "{b:?}"
        );
        assert!(store.authenticate("wr_wrong").await.unwrap().is_none());
        let dup = store
            .create_token("ci", TokenRole::Admin, T0)
            .await
            .unwrap_err();
        assert!(dup.to_string().contains("revoke it first"), "{b:?}: {dup}");
        assert!(store.revoke_token(&t.token.id, T0).await.unwrap());
        assert!(!store.revoke_token(&t.token.id, T0).await.unwrap());
        assert!(
            store.authenticate(&t.secret).await.unwrap().is_none(),
            "{b:?}"
        );
        // The name is free again after revocation.
        store
            .create_token("ci", TokenRole::Viewer, T0)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn configured_services_are_synced_and_first_use_registers() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let svc = |slug: &str, name: &str, public| Service {
            slug: ServiceSlug::parse_field(slug, "s").unwrap(),
            name: name.into(),
            owner: None,
            public,
        };
        store
            .sync_configured_services(&[svc("api", "API", true)], T0)
            .await
            .unwrap();
        store
            .sync_configured_services(&[svc("api", "Public API", true)], T0)
            .await
            .unwrap();
        assert_eq!(
            store.service("api").await.unwrap().unwrap().name,
            "Public API"
        );
        let got = store
            .ensure_service(&svc("api", "ignored", false), T0)
            .await
            .unwrap();
        assert_eq!(
            got.name, "Public API",
            "{b:?}: first use must not overwrite"
        );
        store
            .ensure_service(&svc("web", "Web", false), T0)
            .await
            .unwrap();
        let all: Vec<String> = store
            .services()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.slug.to_string())
            .collect();
        assert_eq!(all, ["api", "web"], "{b:?}");
    })
    .await;
}

fn note(incident: i64, text: &str) -> warroom_domain::notify::Notification {
    warroom_domain::notify::Notification {
        kind: warroom_domain::notify::NotificationKind::Info,
        incident: Some(incident),
        severity: Some(Severity::Sev2),
        title: text.into(),
        text: text.into(),
        incident_channel: None,
    }
}

#[tokio::test]
async fn outbox_messages_commit_with_the_change_and_come_out_in_channel_order() {
    use warroom_store::{Change, NewOutboxMessage, OutboxStatus};
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev2)
            .await
            .unwrap();
        let msgs = vec![
            NewOutboxMessage::new("webhook:a", note(1, "a1")),
            NewOutboxMessage::new("webhook:a", note(1, "a2")),
            NewOutboxMessage::new("webhook:b", note(1, "b1")),
        ];
        store
            .mutate_incident(
                i.number,
                "ana",
                T0,
                Box::new(move |i| {
                    let events = i.add_note("paged", false)?;
                    Ok(Change {
                        events,
                        outbox: msgs,
                    })
                }),
            )
            .await
            .unwrap();
        // A refused change enqueues nothing.
        let _ = store
            .mutate_incident(
                i.number,
                "ana",
                T0,
                Box::new(|_| Err(DomainError::invalid("x", "no"))),
            )
            .await
            .unwrap_err();
        assert_eq!(
            store.outbox_for_incident(1).await.unwrap().len(),
            3,
            "{b:?}"
        );

        let lease = Duration::seconds(30);
        let first = store.claim_due(T0, lease, 10).await.unwrap();
        let titles: Vec<&str> = first
            .iter()
            .map(|m| m.notification.title.as_str())
            .collect();
        assert_eq!(
            titles,
            ["a1", "b1"],
            "{b:?}: only each channel's head is handed out"
        );
        assert!(first.iter().all(|m| m.idempotency_key.starts_with("wr-")));
        assert!(
            store.claim_due(T0, lease, 10).await.unwrap().is_empty(),
            "{b:?}: leased rows are not handed out twice"
        );

        store.record_delivered(first[0].id, T0).await.unwrap();
        store
            .record_failed_attempt(first[1].id, "HTTP 503", Some(T0 + Duration::seconds(5)))
            .await
            .unwrap();
        let next = store
            .claim_due(T0 + Duration::seconds(1), lease, 10)
            .await
            .unwrap();
        let titles: Vec<&str> = next.iter().map(|m| m.notification.title.as_str()).collect();
        assert_eq!(titles, ["a2"], "{b:?}: b1 waits for its retry time");
        let later = store
            .claim_due(T0 + Duration::seconds(6), lease, 10)
            .await
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].attempts, 1);
        assert_eq!(later[0].last_error.as_deref(), Some("HTTP 503"));
        store
            .record_failed_attempt(later[0].id, "gone", None)
            .await
            .unwrap();
        // A lease that ran out (a crashed worker) makes the message claimable again.
        let again = store
            .claim_due(T0 + Duration::seconds(40), lease, 10)
            .await
            .unwrap();
        assert_eq!(
            again
                .iter()
                .map(|m| m.notification.title.as_str())
                .collect::<Vec<_>>(),
            ["a2"],
            "{b:?}"
        );
        store.record_delivered(again[0].id, T0).await.unwrap();
        let all = store.outbox_for_incident(1).await.unwrap();
        let st: Vec<OutboxStatus> = all.iter().map(|m| m.status).collect();
        assert_eq!(
            st,
            [
                OutboxStatus::Delivered,
                OutboxStatus::Delivered,
                OutboxStatus::Failed
            ],
            "{b:?}"
        );
        // Delivered messages survive a reopen and are never handed out again.
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        assert!(
            store
                .claim_due(T0 + Duration::hours(1), lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "{b:?}"
        );
        let counts = store.outbox_counts().await.unwrap();
        assert!(
            counts.contains(&(OutboxStatus::Delivered, 2))
                && counts.contains(&(OutboxStatus::Failed, 1)),
            "{b:?}: {counts:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_message() {
    use warroom_store::NewOutboxMessage;
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let msgs: Vec<NewOutboxMessage> = (0..200)
            .map(|k| NewOutboxMessage::new(format!("webhook:{k}"), note(1, &format!("m{k}"))))
            .collect();
        store.enqueue(msgs, T0).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = s.claim_due(T0, Duration::seconds(60), 7).await.unwrap();
                    if batch.is_empty() {
                        break got;
                    }
                    got.extend(batch.into_iter().map(|m| m.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            (n, all.len()),
            (200, 200),
            "{b:?}: every message claimed exactly once"
        );
    })
    .await;
}

#[tokio::test]
async fn check_results_roll_up_and_retention_bounds_them() {
    use warroom_store::{CheckRecord, Retention};
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let rec = |mins: i64, ok: bool, ms: i64| CheckRecord {
            monitor: "web".into(),
            at: T0 + Duration::minutes(mins),
            ok,
            latency_ms: ms,
            failure: (!ok).then_some(warroom_domain::monitor::FailureKind::Crashed),
        };
        // 14:30-15:29 is one hour bucket; 15:30 another.
        store
            .record_checks(&[
                rec(0, true, 10),
                rec(1, false, 900),
                rec(2, true, 30),
                rec(60, true, 20),
            ])
            .await
            .unwrap();
        let u = store
            .uptime("web", T0 - Duration::hours(1), T0 + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(
            (u.checks, u.failures, u.max_latency_ms),
            (4, 1, Some(900)),
            "{b:?}"
        );
        assert_eq!(u.availability_percent, Some(75.0));
        assert_eq!(u.mean_latency_ms, Some(240.0));
        // The raw results, failure kinds included, are what a restart refills its window from.
        let recent = store
            .recent_checks(T0 + Duration::minutes(1), T0 + Duration::minutes(61))
            .await
            .unwrap();
        assert!(
            store
                .recent_checks(T0 + Duration::minutes(3), T0 + Duration::minutes(60))
                .await
                .unwrap()
                .is_empty(),
            "{b:?}: [from, to)"
        );
        assert_eq!(
            recent
                .iter()
                .map(|c| (c.at, c.ok, c.latency_ms, c.failure))
                .collect::<Vec<_>>(),
            vec![
                (
                    T0 + Duration::minutes(1),
                    false,
                    900,
                    Some(warroom_domain::monitor::FailureKind::Crashed)
                ),
                (T0 + Duration::minutes(2), true, 30, None),
                (T0 + Duration::minutes(60), true, 20, None),
            ],
            "{b:?}"
        );
        let none = store
            .uptime("other", T0, T0 + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!((none.checks, none.availability_percent), (0, None));
        // A day later with the default retention: raw results are gone, the rollups stay.
        let deleted = store
            .prune_checks(T0 + Duration::days(1), Retention::default())
            .await
            .unwrap();
        assert_eq!(deleted, 4, "{b:?}: the four raw rows");
        let u = store
            .uptime("web", T0 - Duration::hours(1), T0 + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(u.checks, 4, "{b:?}: uptime history survives pruning");
        // After 8 days the 5-minute rollups go; after 401 days the hourly ones too.
        assert_eq!(
            store
                .prune_checks(T0 + Duration::days(8), Retention::default())
                .await
                .unwrap(),
            2,
            "{b:?}: the 14:30 and 15:30 five-minute buckets"
        );
        store
            .prune_checks(T0 + Duration::days(401), Retention::default())
            .await
            .unwrap();
        assert_eq!(
            store
                .uptime("web", T0 - Duration::hours(1), T0 + Duration::hours(2))
                .await
                .unwrap()
                .checks,
            0,
            "{b:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_ingests_are_grouped_but_each_counted_exactly() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let body = serde_json::to_vec(
            &serde_json::json!([{"labels": {"alertname": "Down", "service": "api"}}]),
        )
        .unwrap();
        let alert = warroom_domain::alert::parse_postable_alerts(&body, T0)
            .unwrap()
            .accepted
            .remove(0);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let s = store.clone();
            let a = alert.clone();
            tasks.push(tokio::spawn(async move {
                let input = warroom_store::AlertIn {
                    state: a.state_at(T0),
                    group_key: "{service=\"api\"}".into(),
                    service: Some("api".into()),
                    expiry: false,
                    resend_by: None,
                    alert: a,
                };
                s.ingest_alerts(vec![input], T0).await.unwrap()
            }));
        }
        let (mut new, mut dup) = (0, 0);
        for t in tasks {
            let o = t.await.unwrap();
            new += o.new;
            dup += o.duplicates;
        }
        assert_eq!((new, dup), (1, 49), "{b:?}");
        // Repeat counters of plain duplicates are statistics, written within about a second;
        // the flush makes them visible now.
        store.flush_alert_counts().await.unwrap();
        let stored = store.list_alerts(Some("firing"), 10).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].received, 50, "{b:?}: every delivery counted");
        assert_eq!(store.pending_alerts(10).await.unwrap().len(), 1, "{b:?}");

        // Many senders at once, each with a batch of new alerts and a repeat of the shared one:
        // one group commit, every alert stored, every receipt counted once.
        let mut tasks = Vec::new();
        for k in 0..40 {
            let s = store.clone();
            let a = alert.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch = vec![warroom_store::AlertIn {
                    state: a.state_at(T0),
                    group_key: "{service=\"api\"}".into(),
                    service: Some("api".into()),
                    expiry: false,
                    resend_by: None,
                    alert: a,
                }];
                for i in 0..5 {
                    let body = serde_json::to_vec(&serde_json::json!([{"labels": {"alertname": format!("A{k}_{i}"), "service": "api"}}])).unwrap();
                    let n = warroom_domain::alert::parse_postable_alerts(&body, T0).unwrap().accepted.remove(0);
                    batch.push(warroom_store::AlertIn {
                        state: n.state_at(T0),
                        group_key: "{service=\"api\"}".into(),
                        service: Some("api".into()),
                        expiry: false,
                        resend_by: None,
                        alert: n,
                    });
                }
                s.ingest_alerts(batch, T0).await.unwrap()
            }));
        }
        let (mut new, mut dup, mut received) = (0, 0, 0);
        for t in tasks {
            let o = t.await.unwrap();
            new += o.new;
            dup += o.duplicates;
            received += o.received;
        }
        assert_eq!((new, dup, received), (200, 40, 240), "{b:?}");
        store.flush_alert_counts().await.unwrap();
        let all = store.list_alerts(None, 1000).await.unwrap();
        assert_eq!(all.len(), 201, "{b:?}");
        assert_eq!(all.iter().map(|a| a.received).sum::<i64>(), 290, "{b:?}");
        assert_eq!(store.pending_alerts(1000).await.unwrap().len(), 201, "{b:?}");
    })
    .await;
}

fn alert_in(labels: serde_json::Value, now: time::OffsetDateTime) -> warroom_store::AlertIn {
    let body = serde_json::to_vec(&serde_json::json!([labels])).unwrap();
    let a = warroom_domain::alert::parse_postable_alerts(&body, now)
        .unwrap()
        .accepted
        .remove(0);
    warroom_store::AlertIn {
        state: a.state_at(now),
        group_key: "{service=\"api\"}".into(),
        service: Some("api".into()),
        expiry: false,
        resend_by: None,
        alert: a,
    }
}

#[tokio::test]
async fn processes_sharing_a_postgres_database_see_each_others_state_changes() {
    // Two stores on one database stand for two warroom processes behind a load balancer. On
    // PostgreSQL no process may answer "repeat" from its own memory of an alert: the other may
    // have resolved it. (SQLite supports one serving process per file.)
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = fresh_database(Backend::Postgres).await.unwrap();
    let a = open_store(Backend::Postgres, &db).await.unwrap();
    let b = open_store(Backend::Postgres, &db).await.unwrap();
    let firing = serde_json::json!({"labels": {"alertname": "Down", "service": "api"}, "startsAt": "2026-01-12T14:00:00Z"});
    let resolved = serde_json::json!({"labels": {"alertname": "Down", "service": "api"}, "startsAt": "2026-01-12T14:00:00Z", "endsAt": "2026-01-12T14:10:00Z"});
    let o = a
        .ingest_alerts(vec![alert_in(firing.clone(), T0)], T0)
        .await
        .unwrap();
    assert_eq!(o.new, 1);
    let o = a
        .ingest_alerts(vec![alert_in(firing.clone(), T0)], T0)
        .await
        .unwrap();
    assert_eq!(o.duplicates, 1);
    let o = b
        .ingest_alerts(vec![alert_in(resolved, T0)], T0)
        .await
        .unwrap();
    assert_eq!(o.changed, 1, "the other process resolves it");
    let later = T0 + Duration::minutes(1);
    let o = a
        .ingest_alerts(vec![alert_in(firing, later)], later)
        .await
        .unwrap();
    assert_eq!(
        o.changed, 1,
        "firing again is a change, whatever the first process remembers"
    );
    let stored = a.list_alerts(None, 10).await.unwrap();
    assert_eq!(stored[0].status, "firing");
    assert_eq!(stored[0].received, 4);
    assert_eq!(a.pending_alerts(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_revocation_by_another_process_takes_effect_within_the_token_cache_ttl() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let server = open_store(b, &db).await.unwrap();
        let cli = open_store(b, &db).await.unwrap();
        let t = cli
            .create_token("prom", TokenRole::Responder, T0)
            .await
            .unwrap();
        assert!(server.authenticate(&t.secret).await.unwrap().is_some());
        // The CLI revokes in its own process; the server's cache may trust the token for at
        // most the TTL more.
        assert!(cli.revoke_token(&t.token.id, T0).await.unwrap());
        let started = std::time::Instant::now();
        while server.authenticate(&t.secret).await.unwrap().is_some() {
            assert!(
                started.elapsed() < warroom_store::sql::TOKEN_CACHE_TTL * 3,
                "{b:?}: still accepted after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // A revocation through the serving process itself applies at once.
        let t2 = server
            .create_token("prom2", TokenRole::Responder, T0)
            .await
            .unwrap();
        assert!(server.authenticate(&t2.secret).await.unwrap().is_some());
        assert!(server.revoke_token(&t2.token.id, T0).await.unwrap());
        assert!(
            server.authenticate(&t2.secret).await.unwrap().is_none(),
            "{b:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn api_monitors_are_stored_replaced_deleted_and_each_write_moves_the_set_version() {
    use warroom_domain::monitor::MonitorSpec;
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": "shop-web", "service": "shop", "interval_secs": 30,
            "check": { "kind": "http", "url": "https://shop.example.com/health", "headers": { "x-a": "1" } }
        }))
        .unwrap();
        let v0 = store.monitor_set_version().await.unwrap();
        let created = store.create_monitor(&spec, "rita", T0).await.unwrap();
        assert_eq!(created.created_by, "rita");
        let v1 = store.monitor_set_version().await.unwrap();
        assert!(v1 > v0, "{b:?}");
        // Concurrent creates of one id: exactly one wins, the others are conflicts (409s).
        let mut racer = spec.clone();
        racer.id = "racer".into();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, racer) = (store.clone(), racer.clone());
                tokio::spawn(async move { store.create_monitor(&racer, "rita", T0).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{b:?}");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, StoreError::Conflict(_))),
            "{b:?}: {results:?}"
        );
        assert!(store.delete_monitor("racer").await.unwrap());
        let v1 = store.monitor_set_version().await.unwrap();
        let e = store.create_monitor(&spec, "rita", T0).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{b:?}: {e}");
        assert_eq!(store.monitor_set_version().await.unwrap(), v1, "a refused write moves nothing");

        let mut slower = spec.clone();
        slower.interval_secs = 60;
        let replaced = store
            .replace_monitor(&slower, T0 + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(replaced.spec, slower, "{b:?}");
        assert_eq!((replaced.created_at, replaced.updated_at), (T0, T0 + Duration::minutes(1)));
        let mut other = spec.clone();
        other.id = "nope".into();
        assert!(matches!(
            store.replace_monitor(&other, T0).await.unwrap_err(),
            StoreError::NotFound { .. }
        ));
        // Survives a reopen, spec intact.
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        assert_eq!(store.api_monitor("shop-web").await.unwrap().unwrap().spec, slower);
        assert_eq!(store.api_monitors().await.unwrap().len(), 1);
        let v2 = store.monitor_set_version().await.unwrap();
        assert!(store.delete_monitor("shop-web").await.unwrap());
        assert!(!store.delete_monitor("shop-web").await.unwrap());
        assert!(store.monitor_set_version().await.unwrap() > v2, "{b:?}");
        assert!(store.api_monitors().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_processing_pass_commits_its_evidence_and_settles_all_or_nothing() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev3)
            .await
            .unwrap();
        let batch = (0..3)
            .map(|k| {
                alert_in(
                    serde_json::json!({"labels": {"alertname": format!("A{k}"), "service": "api"}}),
                    T0,
                )
            })
            .collect();
        store.ingest_alerts(batch, T0).await.unwrap();
        // The processor's view matches the database's, from memory or not.
        let mut taken = store.take_pending(10).await.unwrap();
        taken.sort_by(|x, y| x.fingerprint.cmp(&y.fingerprint));
        assert_eq!(taken, store.pending_alerts(10).await.unwrap(), "{b:?}");
        let fps: Vec<String> = taken.iter().map(|a| a.fingerprint.clone()).collect();

        // A refused change in a pass writes nothing: the alerts stay pending.
        let p = SeverityPolicies::default();
        let refused = warroom_store::AlertJoin {
            incident: i.number,
            change: Box::new(move |i| {
                i.transition(IncidentStatus::Closed, Default::default(), None, &p, T0)
                    .map(Into::into)
            }),
            alerts: fps[..2].to_vec(),
        };
        assert!(
            store
                .settle_pass("alertmanager", T0, vec![refused], &fps[2..])
                .await
                .is_err()
        );
        store.pass_done(false);
        assert_eq!(store.pending_alerts(10).await.unwrap().len(), 3, "{b:?}");
        assert_eq!(
            store.take_pending(10).await.unwrap().len(),
            3,
            "{b:?}: read again"
        );

        let note = warroom_domain::EventKind::Note {
            text: "Alert firing: A0, A1".into(),
        };
        settle_whole_pass(store.as_ref(), b, i.number, &fps, 2, vec![note]).await;
        assert_eq!(
            store.timeline(i.number).await.unwrap().len(),
            2,
            "{b:?}: the evidence note"
        );

        // New alerts after a complete pass come from memory, exactly as stored.
        let batch = vec![alert_in(
            serde_json::json!({"labels": {"alertname": "B", "service": "api"}}),
            T0,
        )];
        store.ingest_alerts(batch, T0).await.unwrap();
        assert_eq!(
            store.take_pending(10).await.unwrap(),
            store.pending_alerts(10).await.unwrap(),
            "{b:?}"
        );
        store.pass_done(false);
    })
    .await;
}

fn batch(n: usize, ends: Option<&str>, now: time::OffsetDateTime) -> Vec<warroom_store::AlertIn> {
    (0..n)
        .map(|i| {
            let mut a = serde_json::json!({
                "labels": {"alertname": format!("Batch_{i}"), "service": "api", "severity": "warning"},
                "annotations": {"summary": format!("number {i}")},
                "startsAt": "2026-01-12T14:00:00.123Z",
            });
            if let Some(e) = ends {
                a["endsAt"] = serde_json::json!(e);
            }
            alert_in(a, now)
        })
        .collect()
}

#[tokio::test]
async fn a_big_batch_is_judged_against_the_batches_before_it_before_they_are_merged() {
    // On SQLite a big group commit is appended to the intake and merged into `alerts` later;
    // what a later request is told (new, duplicate, changed) and what is finally stored must
    // be exactly as if every commit had been written straight away.
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let o = store.ingest_alerts(batch(500, None, T0), T0).await.unwrap();
        assert_eq!((o.new, o.changed, o.duplicates), (500, 0, 0), "{b:?}");
        let o = store.ingest_alerts(batch(500, None, T0), T0).await.unwrap();
        assert_eq!((o.new, o.changed, o.duplicates), (0, 0, 500), "{b:?}");
        let later = T0 + Duration::minutes(2);
        let o = store
            .ingest_alerts(batch(500, Some("2026-01-12T14:20:00Z"), later), later)
            .await
            .unwrap();
        assert_eq!((o.new, o.changed, o.duplicates), (0, 500, 0), "{b:?}");
        // A small request for one of them (which must follow its older rows) and a new one
        // (which can be written at once).
        let mut one = batch(1, Some("2026-01-12T14:20:00Z"), later);
        one[0]
            .alert
            .annotations
            .insert("runbook".into(), "https://runbooks/x".into());
        one.push(alert_in(
            serde_json::json!({"labels": {"alertname": "Other", "service": "api"}}),
            later,
        ));
        let o = store.ingest_alerts(one, later).await.unwrap();
        assert_eq!(
            (o.new, o.changed, o.duplicates),
            (1, 0, 1),
            "{b:?}: an update and a new one"
        );

        store.flush_alert_counts().await.unwrap();
        let pending = store.pending_alerts(1000).await.unwrap();
        assert_eq!(pending.len(), 501, "{b:?}");
        let pending: Vec<_> = pending.into_iter().filter(|a| a.name != "Other").collect();
        assert_eq!(pending.len(), 500, "{b:?}");
        assert!(pending.iter().all(|a| a.status == "resolved"), "{b:?}");
        let first = pending.iter().find(|a| a.name == "Batch_0").unwrap();
        assert_eq!(first.received, 4, "{b:?}: every delivery counted");
        assert_eq!(
            first.annotations.get("runbook").map(String::as_str),
            Some("https://runbooks/x"),
            "{b:?}"
        );
        assert_eq!(
            warroom_domain::timefmt::rfc3339(first.starts_at),
            "2026-01-12T14:00:00.123Z"
        );
        // Passes take every pending alert, each once.
        let mut taken = Vec::new();
        loop {
            let pass = store.take_pending(1000).await.unwrap();
            store.pass_done(true);
            if pass.is_empty() {
                break;
            }
            for a in &pass {
                store
                    .settle_alerts(std::slice::from_ref(&a.fingerprint), None)
                    .await
                    .unwrap();
            }
            taken.extend(pass);
        }
        assert_eq!(taken.len(), 501, "{b:?}");
        let names: BTreeSet<String> = taken.iter().map(|a| a.name.clone()).collect();
        assert_eq!(names.len(), 501, "{b:?}: each once");
        assert_eq!(
            store.list_alerts(None, 1000).await.unwrap().len(),
            501,
            "{b:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn alerts_answered_but_not_merged_survive_a_crash_and_are_judged_against_after_it() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        assert_eq!(o.new, 300, "{b:?}");
        // Nothing merges the intake here (no processor, no read): dropping the store is the
        // crash right after the 2xx.
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        if b == Backend::Sqlite {
            // Taken over as the store opens, before any request: the gauge counts it.
            assert_eq!(
                intake_taken_over(&*store, 300).await,
                300,
                "the intake an earlier process left"
            );
        }
        // The same alerts again are repeats: the new process took over the intake, and judged
        // them against what it holds.
        let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        assert_eq!((o.new, o.duplicates), (0, 300), "{b:?}");
        let pending = store.take_pending(1000).await.unwrap();
        assert_eq!(pending.len(), 300, "{b:?}");
        assert!(
            pending
                .iter()
                .all(|a| a.status == "firing" && a.incident.is_none())
        );
        let names: BTreeSet<String> = pending.iter().map(|a| a.name.clone()).collect();
        assert_eq!(names.len(), 300, "{b:?}: each alert once");
    })
    .await;
}

/// A metrics scrape's alert numbers never wait for the intake to be merged: alerts still in it
/// are counted apart, and move to the firing count once merged.
#[tokio::test]
async fn alert_gauges_count_the_intake_apart_and_never_merge_it() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        let g = store.alert_gauges(1000).await.unwrap();
        assert_eq!(g.firing + g.intake_waiting, 300, "{b:?}: {g:?}");
        if b == Backend::Sqlite {
            assert_eq!(
                g.intake_waiting, 300,
                "a big batch waits in the intake: {g:?}"
            );
            // Asked again, still not merged: the gauges do not merge.
            assert_eq!(store.alert_gauges(1000).await.unwrap(), g);
        }
        assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300);
        let g = store.alert_gauges(1000).await.unwrap();
        assert_eq!((g.firing, g.intake_waiting), (300, 0), "{b:?}");
        assert_eq!(
            store.alert_gauges(10).await.unwrap().firing,
            10,
            "{b:?}: bounded"
        );
    })
    .await;
}

#[tokio::test]
async fn firing_alerts_are_found_by_name_after_a_big_batch_too() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let alert = |name: &str, monitor: &str, ends: Option<&str>| {
            let mut v = serde_json::json!({"labels": {"alertname": name, "monitor": monitor, "service": "api"}, "startsAt": "2026-01-12T14:00:00Z"});
            if let Some(e) = ends {
                v["endsAt"] = e.into();
            }
            alert_in(v, T0)
        };
        // A batch big enough for the SQLite intake: the lookup must see what it holds.
        let mut batch: Vec<_> = (0..300)
            .map(|i| alert("Other", &format!("m{i}"), None))
            .collect();
        batch.push(alert("MonitorDown", "web", None));
        batch.push(alert("MonitorDown", "db", Some("2026-01-12T14:05:00Z")));
        batch.push(alert("MonitorDegraded", "cache", None));
        store.ingest_alerts(batch, T0).await.unwrap();
        let found = store
            .firing_alerts_named(&["MonitorDown", "MonitorDegraded"])
            .await
            .unwrap();
        let mut got: Vec<(String, String)> = found
            .iter()
            .map(|a| (a.name.clone(), a.labels["monitor"].clone()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("MonitorDegraded".to_owned(), "cache".to_owned()),
                ("MonitorDown".to_owned(), "web".to_owned()),
            ],
            "{b:?}: firing ones only, by name"
        );
        assert!(store.firing_alerts_named(&[]).await.unwrap().is_empty());
    })
    .await;
}

/// `GET /api/v2/alerts` walks every firing alert a page at a time: each exactly once, the
/// resolved ones never, including alerts still waiting in the SQLite intake, with the time
/// each was last seen and its generator URL.
#[tokio::test]
async fn firing_alerts_are_walked_a_page_at_a_time_each_once() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let alert = |i: usize, ends: Option<&str>| {
            let mut v = serde_json::json!({"labels": {"alertname": "Walk", "n": i.to_string(), "service": "api"}, "startsAt": "2026-01-12T14:00:00Z", "generatorURL": format!("http://prom/graph?g={i}")});
            if let Some(e) = ends {
                v["endsAt"] = e.into();
            }
            alert_in(v, T0)
        };
        // 250 firing and 50 resolved, in one batch big enough for the SQLite intake.
        let batch: Vec<_> = (0..300)
            .map(|i| alert(i, (i % 6 == 5).then_some("2026-01-12T14:05:00Z")))
            .collect();
        store.ingest_alerts(batch, T0).await.unwrap();
        let later = T0 + Duration::minutes(3);
        // A later state change of one alert: resolved now, so it is no longer walked.
        store
            .ingest_alerts(vec![alert(0, Some("2026-01-12T14:01:00Z"))], later)
            .await
            .unwrap();
        let mut seen = BTreeSet::new();
        let mut after = String::new();
        let mut pages = 0;
        loop {
            let page = store.firing_alerts_page(&after, 40, &[]).await.unwrap();
            pages += 1;
            assert!(page.alerts.len() <= 40, "{b:?}");
            for l in &page.alerts {
                let n = l.labels["n"].clone();
                assert_eq!(
                    l.generator_url.as_deref(),
                    Some(format!("http://prom/graph?g={n}").as_str()),
                    "{b:?}"
                );
                assert_eq!(l.last_seen, T0, "{b:?}");
                assert!(seen.insert(n.parse::<usize>().unwrap()), "{b:?}: {n} twice");
            }
            match page.next {
                Some(n) => after = n,
                None => break,
            }
            assert!(pages < 100, "{b:?}: the walk does not end");
        }
        let expected: BTreeSet<usize> = (1..300).filter(|i| i % 6 != 5).collect();
        assert_eq!(seen, expected, "{b:?}");
        assert_eq!(pages, 7, "{b:?}: 6 full pages of 40 and one of 9");

        // Label values narrow the walk in the database; a value that looks like something
        // else (a number, JSON, a quote) is still compared as the label's text.
        let walk = |labels: Vec<(&'static str, &'static str)>| {
            let store = &store;
            async move {
                let mut found = Vec::new();
                let mut after = String::new();
                loop {
                    let page = store.firing_alerts_page(&after, 7, &labels).await.unwrap();
                    found.extend(page.alerts.iter().map(|l| l.labels["n"].clone()));
                    match page.next {
                        Some(n) => after = n,
                        None => break found,
                    }
                }
            }
        };
        assert_eq!(walk(vec![("n", "7")]).await, ["7"], "{b:?}");
        assert_eq!(walk(vec![("service", "api")]).await.len(), expected.len(), "{b:?}");
        assert!(walk(vec![("n", "7"), ("service", "web")]).await.is_empty(), "{b:?}");
        assert!(walk(vec![("n", "5")]).await.is_empty(), "{b:?}: resolved");
        assert!(walk(vec![("missing", "x")]).await.is_empty(), "{b:?}");
        store
            .ingest_alerts(
                vec![alert_in(
                    serde_json::json!({"labels": {"alertname": "Walk", "n": "odd", "quote": "a\"b", "num": "007"}}),
                    later,
                )],
                later,
            )
            .await
            .unwrap();
        assert_eq!(walk(vec![("quote", "a\"b"), ("num", "007")]).await, ["odd"], "{b:?}");
        assert!(walk(vec![("num", "7")]).await.is_empty(), "{b:?}: text, not a number");
        // A NUL in a label value (JSON's `\u0000`, which PostgreSQL's jsonb refuses) neither
        // fails a filtered walk nor matches what it does not.
        store
            .ingest_alerts(
                vec![alert_in(
                    serde_json::json!({"labels": {"alertname": "Walk", "n": "nul", "odd": "a\u{0}b"}}),
                    later,
                )],
                later,
            )
            .await
            .unwrap();
        assert_eq!(walk(vec![("n", "nul")]).await, ["nul"], "{b:?}");
        let odd = walk(vec![("odd", "a\u{0}b")]).await;
        assert!(odd.contains(&"nul".to_owned()), "{b:?}: only narrows: {odd:?}");
        // The row holding a NUL may come along on PostgreSQL (its labels are not compared
        // there); the caller's matchers drop it.
        let seven = walk(vec![("n", "7")]).await;
        assert!(
            seven.contains(&"7".to_owned()) && seven.iter().all(|n| n == "7" || n == "nul"),
            "{b:?}: {seven:?}"
        );
    })
    .await;
}

/// SQLite's own checkpoint is off (it ran inside commits, holding every writer up); the store's
/// checkpointer must copy what was committed back into the database file by itself. Read with
/// `immutable=1`, which ignores the WAL: the rows are only there if a checkpoint copied them.
#[tokio::test]
async fn sqlite_commits_reach_the_database_file_without_the_wal() {
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let store = open_store(Backend::Sqlite, &db).await.unwrap();
    let batch: Vec<_> = (0..300)
        .map(|i| {
            alert_in(
                serde_json::json!({"labels": {"alertname": format!("A{i}"), "service": "api"}, "startsAt": "2026-01-12T14:00:00Z"}),
                T0,
            )
        })
        .collect();
    store.ingest_alerts(batch, T0).await.unwrap();
    store.list_alerts(None, 10).await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let n = warroom_testkit::count_in_sqlite_file(&db.url, "SELECT count(*) FROM alerts")
            .await
            .unwrap_or(0);
        if n == 300 {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "{n} of 300 alerts in the database file after {:?}: nothing checkpoints the WAL",
            t0.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The store is still open: the copy is the checkpointer's, not a close's.
    assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300);
}

/// Repeats of alerts still waiting in the SQLite intake are counted once their rows are
/// merged. The intake empties after every merge; if a later commit's row reused an id already
/// merged, its alerts would be taken for merged, and the background flush of repeat counts
/// would write their counts to rows that do not exist yet: lost.
#[tokio::test]
async fn repeats_of_alerts_in_a_refilled_intake_are_all_counted() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let first = |n: usize| {
            (0..n)
                .map(|i| {
                    alert_in(
                        serde_json::json!({"labels": {"alertname": format!("First_{i}"), "service": "api"}, "startsAt": "2026-01-12T14:00:00Z"}),
                        T0,
                    )
                })
                .collect::<Vec<_>>()
        };
        store.ingest_alerts(first(300), T0).await.unwrap();
        // A read merges the intake, which leaves it empty.
        assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300, "{b:?}");
        // A second big commit refills it, and its alerts are repeated before they are merged.
        store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        assert_eq!(o.duplicates, 300, "{b:?}");
        // The background flush of repeat counts runs about once a second.
        tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
        store.flush_alert_counts().await.unwrap();
        let stored = store.list_alerts(None, 1000).await.unwrap();
        let batch_0 = stored.iter().find(|a| a.name == "Batch_0").unwrap();
        assert_eq!(batch_0.received, 2, "{b:?}: both deliveries counted");
        let total: i64 = stored
            .iter()
            .filter(|a| a.name.starts_with("Batch_"))
            .map(|a| a.received)
            .sum();
        assert_eq!(total, 600, "{b:?}");
    })
    .await;
}

/// A pass over a big batch (the SQLite intake): what it takes is settled by its one settle,
/// linked, and nothing stays pending; a pass that ends without settling gives its alerts back;
/// and a read while a pass holds alerts it has not settled neither waits for it nor loses them.
#[tokio::test]
async fn a_pass_over_a_big_batch_settles_it_whole_and_a_read_meanwhile_never_waits() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let i = declare(store.as_ref(), "api", Severity::Sev3)
            .await
            .unwrap();
        store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();

        // Ended without a settle: the same alerts come again.
        let first = store.take_pending(1000).await.unwrap();
        assert_eq!(first.len(), 300, "{b:?}");
        store.pass_done(true);
        let taken = store.take_pending(1000).await.unwrap();
        assert_eq!(taken.len(), 300, "{b:?}: given back");

        // A read in the middle of the pass answers at once and sees every alert.
        let listed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            store.list_alerts(None, 1000),
        )
        .await
        .expect("a read during a pass must not wait for it")
        .unwrap();
        assert_eq!(listed.len(), 300, "{b:?}");

        let fps: Vec<String> = taken.iter().map(|a| a.fingerprint.clone()).collect();
        settle_whole_pass(store.as_ref(), b, i.number, &fps, 200, Vec::new()).await;

        // The same again, without a read in the middle: the pass's settle writes them.
        let later = T0 + Duration::minutes(1);
        let fresh: Vec<_> = (0..300)
            .map(|k| {
                alert_in(
                    serde_json::json!({"labels": {"alertname": format!("Second_{k}"), "service": "api"}}),
                    later,
                )
            })
            .collect();
        store.ingest_alerts(fresh, later).await.unwrap();
        let taken = store.take_pending(1000).await.unwrap();
        assert_eq!(taken.len(), 300, "{b:?}");
        let fps: Vec<String> = taken.iter().map(|a| a.fingerprint.clone()).collect();
        store.settle_alerts(&fps, Some(i.number)).await.unwrap();
        store.pass_done(true);
        assert!(store.pending_alerts(1000).await.unwrap().is_empty(), "{b:?}");
        let linked = store.alerts_for_incident(i.number).await.unwrap();
        assert_eq!(linked.len(), 500, "{b:?}");
        let second = linked.iter().find(|a| a.name == "Second_7").unwrap();
        assert_eq!(second.incident, Some(i.number), "{b:?}");
        assert_eq!(second.received, 1, "{b:?}");
        assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 600, "{b:?}");
    })
    .await;
}

/// Alerts stored before a restart are what later sightings are judged against: a repeat is a
/// duplicate and a resolution a change, never "new" (on SQLite new fingerprints skip the
/// lookup, and what was stored before the process started must still be looked up).
#[tokio::test]
async fn alerts_stored_before_a_restart_are_judged_against_after_it() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        // Merged into `alerts` (a read catches the intake up).
        assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300);
        store.close().await;
        drop(store);
        let store = open_store(b, &db).await.unwrap();
        // On SQLite a scan of the stored fingerprints starts as the store opens; until it is
        // done every fingerprint is looked up. After a moment it is done, and the skipped lookup
        // of unseen fingerprints is what the last batch tests (the answers must not differ).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
        assert_eq!((o.new, o.changed, o.duplicates), (0, 0, 300), "{b:?}");
        let later = T0 + Duration::minutes(1);
        let o = store
            .ingest_alerts(batch(3, Some("2026-01-12T14:30:00Z"), later), later)
            .await
            .unwrap();
        assert_eq!((o.new, o.changed), (0, 3), "{b:?}: resolutions");
        let o = store
            .ingest_alerts(other_batch(5, later), later)
            .await
            .unwrap();
        assert_eq!(o.new, 5, "{b:?}: unseen fingerprints are new");
        assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 305);
    })
    .await;
}

/// SQLite keeps the intake in a file beside the database. What an older version left in the
/// database's own intake table is moved there and merged; and an intake file that went missing
/// is started anew without handing out row ids that look merged already.
#[tokio::test]
async fn the_sqlite_intake_file_takes_over_an_older_intake_and_survives_being_lost() {
    let b = Backend::Sqlite;
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
    assert_eq!(store.alert_gauges(1000).await.unwrap().intake_waiting, 300);
    store.close().await;
    drop(store);
    // What an older version would have left: the rows in the database's own table.
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let intake_file = format!("{path}.intake");
    {
        use sqlx::Connection;
        let mut intake = sqlx::SqliteConnection::connect(&format!("sqlite://{intake_file}"))
            .await
            .unwrap();
        let rows: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT id, alerts, body FROM alert_intake")
                .fetch_all(&mut intake)
                .await
                .unwrap();
        assert!(!rows.is_empty());
        intake.close().await.unwrap();
        let mut main = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        for (id, alerts, body) in rows {
            sqlx::query("INSERT INTO alert_intake (id, alerts, body) VALUES (?, ?, ?)")
                .bind(id)
                .bind(alerts)
                .bind(body)
                .execute(&mut main)
                .await
                .unwrap();
        }
        main.close().await.unwrap();
        std::fs::remove_file(&intake_file).unwrap();
    }
    let store = open_store(b, &db).await.unwrap();
    assert_eq!(
        intake_taken_over(&*store, 300).await,
        300,
        "taken over from the older table"
    );
    let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
    assert_eq!(o.duplicates, 300, "judged against what was taken over");
    assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300);
    store.close().await;
    drop(store);
    // Lost, after rows were merged: new rows must not get ids at or below the merged mark,
    // or they would never be merged.
    std::fs::remove_file(&intake_file).unwrap();
    let store = open_store(b, &db).await.unwrap();
    let later = T0 + Duration::minutes(1);
    let other = other_batch(300, later);
    assert_eq!(store.ingest_alerts(other, later).await.unwrap().new, 300);
    assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 600);
}

/// Like [`batch`], with fingerprints no batch of it has.
fn other_batch(n: usize, now: time::OffsetDateTime) -> Vec<warroom_store::AlertIn> {
    (0..n)
        .map(|i| {
            alert_in(
                serde_json::json!({"labels": {"alertname": format!("Other_{i}"), "service": "api"}}),
                now,
            )
        })
        .collect()
}

/// The intake a store counts as waiting once it has taken over what an earlier process left
/// (it does so as it starts, in the background): polled until `expected`, for up to 5 s.
async fn intake_taken_over(store: &dyn Store, expected: i64) -> i64 {
    let mut waiting = 0;
    for _ in 0..100 {
        waiting = store.alert_gauges(1000).await.unwrap().intake_waiting;
        if waiting == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    waiting
}

/// Rows of `sql` (a count) in a SQLite database, read through its WAL (the store may be open).
async fn sqlite_count(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    n
}

/// On SQLite alerts are found by fingerprint through two key tables (migration 18): new keys
/// wait in `alert_keys_recent` and are moved into `alert_keys` (at start, and past a size).
/// Every way of finding an alert by fingerprint must find it on either side, and a repeat or a
/// change must never store a second row.
#[tokio::test]
async fn sqlite_alerts_are_found_by_fingerprint_before_and_after_their_keys_move() {
    let b = Backend::Sqlite;
    let db = fresh_database(b).await.unwrap();
    let store = open_store(b, &db).await.unwrap();
    store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
    assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 300);
    assert_eq!(
        sqlite_count(&db.url, "SELECT count(*) FROM alert_keys_recent").await,
        300,
        "new keys wait in the recent table"
    );
    store.close().await;
    drop(store);
    let store = open_store(b, &db).await.unwrap();
    // The move at start runs in the background.
    let mut moved = 0;
    for _ in 0..100 {
        moved = sqlite_count(&db.url, "SELECT count(*) FROM alert_keys").await;
        if moved == 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(moved, 300, "moved into alert_keys at start");
    assert_eq!(
        sqlite_count(&db.url, "SELECT count(*) FROM alert_keys_recent").await,
        0
    );
    // Five more, whose keys stay recent: lookups below span both tables.
    let later = T0 + Duration::minutes(1);
    assert_eq!(
        store
            .ingest_alerts(other_batch(5, later), later)
            .await
            .unwrap()
            .new,
        5
    );
    assert_eq!(store.list_alerts(None, 1000).await.unwrap().len(), 305);
    // Judged against `alerts` (this store's memory of alerts started empty at the restart).
    let o = store.ingest_alerts(batch(300, None, T0), T0).await.unwrap();
    assert_eq!((o.new, o.changed, o.duplicates), (0, 0, 300));
    // Resolutions of moved and of recent alerts: updates, one row each.
    let mut resolving = batch(3, Some("2026-01-12T14:30:00Z"), later);
    resolving.extend((0..2).map(|i| {
        alert_in(
            serde_json::json!({"labels": {"alertname": format!("Other_{i}"), "service": "api"}, "startsAt": "2026-01-12T14:00:00Z", "endsAt": "2026-01-12T14:30:00Z"}),
            later,
        )
    }));
    let o = store.ingest_alerts(resolving, later).await.unwrap();
    assert_eq!((o.new, o.changed), (0, 5), "resolutions: {o:?}");
    let stored = store.list_alerts(None, 1000).await.unwrap();
    assert_eq!(stored.len(), 305);
    let resolved: BTreeSet<String> = stored
        .iter()
        .filter(|a| a.status == "resolved")
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(
        resolved,
        ["Batch_0", "Batch_1", "Batch_2", "Other_0", "Other_1"]
            .map(String::from)
            .into()
    );
    // Repeat counts are written by fingerprint too.
    store.flush_alert_counts().await.unwrap();
    let stored = store.list_alerts(None, 1000).await.unwrap();
    let batch_9 = stored.iter().find(|a| a.name == "Batch_9").unwrap();
    assert_eq!(
        batch_9.received, 2,
        "the repeat is counted on the moved row"
    );
    assert_eq!(
        sqlite_count(
            &db.url,
            "SELECT count(*) - count(DISTINCT fingerprint) FROM alerts"
        )
        .await,
        0,
        "no fingerprint is stored twice"
    );
}

/// A database of schema 17 (fingerprint as the primary key of `alerts`) keeps its alerts through
/// migration 18: found by fingerprint afterwards, with their row ids.
#[tokio::test]
async fn sqlite_alerts_stored_before_the_key_tables_are_found_after_the_migration() {
    use sqlx::Connection;
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("CREATE TABLE warroom_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        .execute(&mut c)
        .await
        .unwrap();
    for m in warroom_store_sqlite::MIGRATIONS
        .iter()
        .filter(|m| m.version <= 17)
    {
        sqlx::raw_sql(m.sql).execute(&mut c).await.unwrap();
        sqlx::query("INSERT INTO warroom_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let old = batch(3, None, T0);
    for a in &old {
        sqlx::query(
            "INSERT INTO alerts (fingerprint, group_key, service, name, labels, annotations, status, starts_at, ends_at, generator_url, first_seen, last_seen, received, incident, pending) \
             VALUES (?, '{service=\"api\"}', 'api', ?, ?, '{}', 'firing', '2026-01-12T14:00:00.123Z', NULL, NULL, '2026-01-12T14:00:00Z', '2026-01-12T14:00:00Z', 1, NULL, 0)",
        )
        .bind(format!("{:016x}", a.alert.fingerprint.0))
        .bind(a.alert.labels["alertname"].clone())
        .bind(serde_json::to_string(&a.alert.labels).unwrap())
        .execute(&mut c)
        .await
        .unwrap();
    }
    c.close().await.unwrap();
    let store = open_store(Backend::Sqlite, &db).await.unwrap();
    let later = T0 + Duration::minutes(1);
    let o = store
        .ingest_alerts(batch(3, Some("2026-01-12T14:30:00Z"), later), later)
        .await
        .unwrap();
    assert_eq!((o.new, o.changed), (0, 3), "found and resolved: {o:?}");
    let stored = store.list_alerts(None, 100).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|a| a.status == "resolved"));
    assert_eq!(
        sqlite_count(&db.url, "SELECT count(*) FROM alert_key").await,
        3
    );
}

/// Passes that take the intake a bite at a time (on SQLite the rows after each bite are read
/// ahead while it settles) settle every alert exactly once, also when a pass fails
/// and is taken again, and when a read merges everything in between.
#[tokio::test]
async fn passes_taken_in_small_bites_settle_every_alert_once() {
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        // Ten group commits of three alerts: ten intake rows on SQLite.
        let mut all = Vec::new();
        for commit in 0..10 {
            let batch: Vec<_> = (0..3)
                .map(|k| {
                    alert_in(
                        serde_json::json!({"labels": {"alertname": format!("Bite{commit}_{k}"), "service": "api"}}),
                        T0,
                    )
                })
                .collect();
            all.extend(batch.iter().map(|a| a.alert.fingerprint.to_string()));
            store.ingest_alerts(batch, T0).await.unwrap();
        }
        let mut settled: Vec<String> = Vec::new();
        let mut passes = 0;
        loop {
            let taken = store.take_pending(3).await.unwrap();
            if taken.is_empty() {
                store.pass_done(true);
                break;
            }
            passes += 1;
            let fps: Vec<String> = taken.iter().map(|a| a.fingerprint.clone()).collect();
            match passes {
                // A pass that fails leaves its alerts to be taken again, whatever was read
                // after them meanwhile.
                2 => {
                    store.pass_done(false);
                    let again = store.take_pending(3).await.unwrap();
                    let mut again: Vec<String> =
                        again.iter().map(|a| a.fingerprint.clone()).collect();
                    let mut first = fps.clone();
                    again.sort();
                    first.sort();
                    assert_eq!(again, first, "{b:?}: the failed pass's alerts come back");
                    store.settle_pass("alertmanager", T0, vec![], &fps).await.unwrap();
                }
                // A read between passes merges what waits; the next pass still gets the rest.
                4 => {
                    store.settle_pass("alertmanager", T0, vec![], &fps).await.unwrap();
                    store.pass_done(true);
                    let waiting = store.pending_alerts(1000).await.unwrap().len();
                    assert_eq!(waiting, 30 - settled.len() - fps.len(), "{b:?}");
                    settled.extend(fps);
                    continue;
                }
                _ => store.settle_pass("alertmanager", T0, vec![], &fps).await.unwrap(),
            }
            store.pass_done(true);
            settled.extend(fps);
        }
        let mut sorted = settled.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), settled.len(), "{b:?}: an alert settled twice: {settled:?}");
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(sorted, expected, "{b:?}: every alert settled");
        assert!(store.pending_alerts(1000).await.unwrap().is_empty(), "{b:?}");
        let stored = store.list_alerts(None, 1000).await.unwrap();
        assert_eq!(stored.len(), 30, "{b:?}: each alert stored once");
        if b == Backend::Sqlite {
            assert_eq!(
                sqlite_count(&db.url, "SELECT count(*) FROM alerts").await,
                30,
                "no fingerprint stored twice"
            );
        }
    })
    .await;
}

/// Changing a silence: in place only while it has not ended; a replacement expires the old one
/// and stores the new one together, or neither (a taken id leaves the old one muting).
#[tokio::test]
async fn silences_change_in_place_or_are_replaced_in_one_transaction() {
    use warroom_store::silences::StoredSilence;
    each_backend(|b| async move {
        let db = fresh_database(b).await.unwrap();
        let store = open_store(b, &db).await.unwrap();
        let silence = |id: &str, comment: &str| StoredSilence {
            id: id.into(),
            matchers: vec![warroom_domain::alert::MatcherSpec::parse("service=db").unwrap()],
            starts_at: T0 - Duration::minutes(10),
            ends_at: T0 + Duration::hours(1),
            created_by: "rita".into(),
            comment: comment.into(),
            updated_at: T0,
        };
        store
            .create_silence(&silence("a", "failover"))
            .await
            .unwrap();
        store.create_silence(&silence("b", "other")).await.unwrap();
        let mut longer = silence("a", "failover runs long");
        longer.ends_at = T0 + Duration::hours(3);
        store.update_silence(&longer, T0).await.unwrap();
        assert_eq!(store.silence("a").await.unwrap().unwrap(), longer, "{b:?}");
        assert!(
            matches!(
                store.update_silence(&silence("nope", "x"), T0).await,
                Err(StoreError::NotFound { .. })
            ),
            "{b:?}"
        );

        // The replacement's id is taken: nothing changes.
        let later = T0 + Duration::minutes(5);
        let e = store.replace_silence("a", &silence("b", "x"), later).await;
        assert!(matches!(e, Err(StoreError::Conflict(_))), "{b:?}: {e:?}");
        assert_eq!(
            store.silence("a").await.unwrap().unwrap(),
            longer,
            "{b:?}: still muting"
        );
        assert_eq!(store.silence("b").await.unwrap().unwrap().comment, "other");

        store
            .replace_silence("a", &silence("c", "wider"), later)
            .await
            .unwrap();
        let old = store.silence("a").await.unwrap().unwrap();
        assert_eq!(old.ends_at, later, "{b:?}: expired when replaced");
        assert_eq!(store.silence("c").await.unwrap().unwrap().comment, "wider");
        assert!(
            matches!(
                store.update_silence(&silence("a", "again"), later).await,
                Err(StoreError::Conflict(_))
            ),
            "{b:?}: an ended silence does not change in place"
        );
        assert!(
            matches!(
                store
                    .replace_silence("nope", &silence("d", "x"), later)
                    .await,
                Err(StoreError::NotFound { .. })
            ),
            "{b:?}"
        );
        assert!(store.silence("d").await.unwrap().is_none(), "{b:?}");
    })
    .await;
}
