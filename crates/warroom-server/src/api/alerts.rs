//! Alert intake, so Prometheus users adopt warroom without changing their stack:
//! `POST /api/v2/alerts` speaks Alertmanager's API (Prometheus can name warroom as its
//! alertmanager) and `POST /hooks/alertmanager` takes Alertmanager's webhook (version 4).
//!
//! A 2xx means the alerts are committed. Acting on them (opening, joining, calming incidents)
//! happens outside the request, in [`run_processor`], woken by the commit and driven by the
//! alerts' `pending` mark, so a crash in between loses nothing and repeats nothing.

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State, rejection::BytesRejection},
    http::StatusCode,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use warroom_domain::{
    Classification, DomainError, EventKind, IncidentStatus, NewIncident, ServiceSlug, Severity,
    alert::{self, Alert, AlertState, Grouping, SeverityMapping},
    classifier::SeverityBasis,
    service::Service,
};
use warroom_store::{AlertIn, IncidentFilter, StoredAlert};

use super::alert_auth::{AlertSender, SOURCE_ANNOTATION};
use crate::{
    AppState,
    error::ApiError,
    extract::{Caller, Viewer},
};

/// How alerts become incidents.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Which labels group alerts into one incident (default `service`, else `alertname`).
    pub grouping: Grouping,
    /// Label values to severities (default: the `severity` label, critical → 1 …).
    pub mapping: SeverityMapping,
    /// Severity when an alert carries no mapped severity label.
    pub default_severity: Severity,
    /// Declare incidents automatically from this severity up (more severe included); less
    /// severe groups are stored and listed, and only suggested.
    pub auto_declare_from: Severity,
    /// Silences and maintenance windows: matching alerts (monitors' too) are stored but open
    /// no incident and page nobody while the window is active.
    pub silences: Vec<alert::Silence>,
    /// Senders that authenticate with their own secret instead of an API token.
    pub sources: Vec<super::alert_auth::AlertSource>,
    /// How long an alert posted to `/api/v2/alerts` without an end stays firing after its last
    /// sighting (Alertmanager's `resolve_timeout`).
    pub resolve_timeout: time::Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            grouping: Grouping::default(),
            mapping: SeverityMapping::default(),
            // An alert with no severity label is somebody's problem but not yet a page: the team
            // hears of it (Sev3) and a person can raise it. Treating it as unknown would page
            // the on-call for every unlabelled rule.
            default_severity: Severity::Sev3,
            auto_declare_from: Severity::Sev4,
            silences: vec![],
            sources: vec![],
            resolve_timeout: alert::DEFAULT_RESOLVE_TIMEOUT,
        }
    }
}

fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                "request body is larger than the server accepts; send smaller batches",
            )
        } else {
            ApiError::bad_request(r.body_text())
        }
    })
}

/// Alertmanager answers a malformed body with 400; so do we, naming the JSON path.
fn malformed(e: DomainError) -> ApiError {
    let field = match &e {
        DomainError::Invalid { field, .. } => field.clone(),
        _ => String::new(),
    };
    ApiError::new(StatusCode::BAD_REQUEST, "malformed_alerts", e.to_string())
        .with_details(json!({ "field": field }))
}

/// The alerts as the store takes them. With `resolve_timeout`, one without an end is given
/// the end Alertmanager gives it (`resolve_timeout` after this sighting).
fn to_in(
    state: &AppState,
    alerts: Vec<Alert>,
    resolve_timeout: Option<time::Duration>,
) -> Vec<AlertIn> {
    let now = state.clock.now();
    alerts
        .into_iter()
        .map(|mut a| {
            let g = state.settings.alerts.grouping.group(&a.labels);
            let mut resend_by = None;
            if let Some(timeout) = resolve_timeout
                && a.ends_at.is_none()
            {
                let (by, end) = alert::timeout_end(now, timeout);
                resend_by = Some(by);
                a.ends_at = Some(end);
            }
            AlertIn {
                state: a.state_at(now),
                group_key: g.key,
                service: g.service.map(|s| s.to_string()),
                expiry: false,
                resend_by,
                alert: a,
            }
        })
        .collect()
}

/// Stores alerts (committed before this returns); the processor acts on them. One without an
/// end fires until it is resolved: the webhook's and the monitors' alerts are sent again only
/// when something changes.
pub async fn ingest(
    state: &AppState,
    alerts: Vec<Alert>,
) -> Result<warroom_store::IngestOutcome, ApiError> {
    ingest_in(state, to_in(state, alerts, None)).await
}

async fn ingest_in(
    state: &AppState,
    alerts: Vec<AlertIn>,
) -> Result<warroom_store::IngestOutcome, ApiError> {
    let outcome = state.store.ingest_alerts(alerts, state.clock.now()).await?;
    RECEIVED.fetch_add(
        outcome.received as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    DEDUPLICATED.fetch_add(
        outcome.duplicates as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    // The commit woke the processor ([`run_processor`]) if any alert is pending.
    Ok(outcome)
}

/// How often the processor looks for firing alerts whose `endsAt` has passed.
pub const EXPIRY_EVERY: time::Duration = time::Duration::seconds(1);

/// Most expired alerts resolved at once; more wait for the next look.
const EXPIRY_BATCH: i64 = 5000;

/// Resolves firing alerts whose `endsAt` has passed with no newer sighting, as Alertmanager
/// does: Prometheus moves each firing alert's end a few evaluation intervals ahead every time
/// it sends it, so one it stopped sending (its rule renamed or deleted, Prometheus itself gone)
/// ends by itself instead of holding its incident open for good. Each goes through the same
/// durable path as a resolution that was sent, judged against the newest state (a sighting
/// that moved the end on wins), and the processor then calms its incident. Returns how many
/// were resolved.
pub async fn expire_due(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let due = state.store.expired_alerts(now, EXPIRY_BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let alerts: Vec<AlertIn> = due
        .into_iter()
        .map(|a| AlertIn {
            state: AlertState::Resolved,
            group_key: a.group_key.clone(),
            service: a.service.clone(),
            expiry: true,
            resend_by: None,
            alert: a.into_alert(),
        })
        .collect();
    let outcome = state.store.ingest_alerts(alerts, now).await?;
    if outcome.changed > 0 {
        tracing::info!(
            alerts = outcome.changed,
            "firing alerts resolved: their endsAt passed with no newer sighting"
        );
    }
    Ok(outcome.changed)
}

/// At most once per [`EXPIRY_EVERY`] of the clock: reads the silences again, resolves expired
/// alerts and acts on what ended maintenance windows held back. Failures are retried at the next look.
async fn look_for_endings(state: &AppState, looked: &mut Option<time::OffsetDateTime>) {
    let now = state.clock.now();
    if looked.is_some_and(|t| now - t < EXPIRY_EVERY) {
        return;
    }
    // Silences made or expired through the API by another process, and so that one that just
    // ended is seen ending.
    if let Err(e) = state.silences.refresh(state).await {
        tracing::warn!(error = ?e, "reading silences failed; the last ones read stay in force");
    }
    if let Err(e) = expire_due(state).await {
        tracing::warn!(error = ?e, "resolving expired alerts failed; retrying");
    }
    match reconsider_after_silences(state, *looked, now).await {
        Ok(()) => *looked = Some(now),
        Err(e) => {
            tracing::warn!(error = ?e, "acting on alerts of an ended maintenance window failed; retrying")
        }
    }
}

/// How far before the last look a window's end still counts as new. An API expiry takes its
/// end from the clock before its commit, so a look between the two saw it still active and
/// the next look must not miss it; looking at an ended window again only repeats a no-op.
const ENDED_LOOK_BACK: time::Duration = time::Duration::seconds(10);

/// Firing alerts held back by a silence or maintenance window that ended since the last look
/// at `since` (within [`ENDED_LOOK_BACK`] before it; every one that ended, at the first look
/// after a start), and that nothing mutes now, are acted on as if they had just arrived: an
/// outage still going on when the window closes opens its incident and pages then, as
/// Alertmanager notifies once a silence expires.
async fn reconsider_after_silences(
    state: &AppState,
    since: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    let silences = state.silences.current();
    let ended: Vec<&alert::Silence> = silences
        .iter()
        .filter(|s| s.ends_at <= now && since.is_none_or(|t| t - ENDED_LOOK_BACK <= s.ends_at))
        .collect();
    if ended.is_empty() {
        return Ok(());
    }
    let mut marked = 0;
    let mut after = String::new();
    loop {
        let page = state.store.unlinked_firing_alerts(&after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.fingerprint.clone();
        let full = page.len() >= 10_000;
        let held: Vec<String> = page
            .into_iter()
            .filter(|a| {
                ended.iter().any(|s| s.matchers.matches(&a.labels))
                    && !silences.iter().any(|s| s.mutes(&a.labels, now))
            })
            .map(|a| a.fingerprint)
            .collect();
        marked += state.store.reconsider_alerts(&held).await?;
        if !full {
            break;
        }
    }
    if marked > 0 {
        tracing::info!(
            alerts = marked,
            "a maintenance window ended: acting on the firing alerts it held back"
        );
    }
    Ok(())
}

/// How often the processor looks for pending alerts without being woken: alerts committed by
/// another process (PostgreSQL), or left pending by a crash or a failed pass; and for expired
/// alerts ([`EXPIRY_EVERY`]).
pub const PROCESSOR_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Least time from the start of one busy pass to the next.
pub const PASS_SPACING: std::time::Duration = std::time::Duration::from_millis(250);

/// How long the processor waits after a pass that only joined alerts to open incidents.
pub const JOIN_GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// A pass this big means a stream is arriving, and only then are passes spaced. Below it the
/// next pass starts at once: a page must never wait out the spacing (issue 5's p99 ≤ 25 ms from
/// an alert POST to the page), and a small pass is cheap to repeat.
pub const STREAM_PASS: usize = 500;

/// Acts on committed alerts outside the requests: woken by every commit that left alerts
/// pending, it processes everything pending in passes of up to [`PASS_SIZE`] alerts, so a burst
/// of deliveries is handled in a few passes instead of one per request. Runs until `stop`.
pub async fn run_processor(state: AppState, stop: impl std::future::Future<Output = ()>) {
    let signal = state.store.alert_signal();
    tokio::pin!(stop);
    let mut expiry_looked = None;
    loop {
        loop {
            // Between passes too, so that a long catch-up does not hold expiries back.
            look_for_endings(&state, &mut expiry_looked).await;
            let started = tokio::time::Instant::now();
            let received = RECEIVED.load(std::sync::atomic::Ordering::Relaxed);
            match process_pending(&state).await {
                Ok(Pass { settled: 0, .. }) => break,
                Ok(pass) if pass.settled < STREAM_PASS => {
                    // A pass that only added evidence to open incidents is a stream of
                    // repeats of a known problem: the next pass waits a little to take more of
                    // it at once (a settling transaction per few alerts is what limits
                    // single-alert senders). Declarations and resolutions are never delayed by
                    // this: a pass that made one goes on at once.
                    if pass.only_joined {
                        tokio::select! {
                            _ = tokio::time::sleep(JOIN_GATHER) => {}
                            _ = &mut stop => return,
                        }
                    }
                }
                Ok(pass) => {
                    // Under a stream of alerts, passes are spaced so that each takes a bigger
                    // bite. While alerts keep arriving (any received during the pass, repeats
                    // too: they leave nothing pending and wake no one, but their senders want
                    // the CPU as much) the processor also rests as long as its pass took: it
                    // takes at most half of the time, so that intake keeps answering while a
                    // flood is worked off (measured: resting less lost more intake than the
                    // processor gained). A full pass with nothing arriving is a backlog to
                    // catch up with: no bigger bite is coming, so the next pass starts at once
                    // (spacing those too capped the catch-up at a pass per spacing, 20,000
                    // alerts/s, with the processor idle 60 % of the time).
                    let took = started.elapsed();
                    let arriving = RECEIVED.load(std::sync::atomic::Ordering::Relaxed) != received;
                    let full = pass.settled >= usize::try_from(PASS_SIZE).unwrap_or(usize::MAX);
                    let next = match (full, arriving) {
                        (true, false) => None,
                        (_, true) => Some((started + PASS_SPACING).max(started + took * 2)),
                        (false, false) => Some(started + PASS_SPACING),
                    };
                    if let Some(next) = next {
                        tokio::select! {
                            _ = tokio::time::sleep_until(next) => {}
                            _ = &mut stop => return,
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "acting on pending alerts failed; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            _ = signal.notified() => {}
            _ = tokio::time::sleep(PROCESSOR_POLL) => {}
            _ = &mut stop => return,
        }
    }
}

/// Processes until nothing is pending: for tests and tools that need the effects of what they
/// just posted. Waits for a pass already running.
pub async fn drain(state: &AppState) -> Result<usize, ApiError> {
    let mut total = 0;
    loop {
        match process_pending(state).await?.settled {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// `POST /api/v2/alerts`: Alertmanager's API v2 body (a JSON array of alerts). Like
/// Alertmanager, valid alerts of a batch are kept and the invalid ones reported with a 400.
pub async fn post_alerts(
    State(state): State<AppState>,
    sender: AlertSender,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_or_error(body)?;
    let posted = alert::parse_postable_alerts(&body, state.clock.now()).map_err(malformed)?;
    // Senders of this API re-send firing alerts (Prometheus every evaluation or so, with an
    // end): one that comes without an end ends after `resolve_timeout` unless sent again.
    let alerts = to_in(
        &state,
        sender.tag(posted.accepted),
        Some(state.settings.alerts.resolve_timeout),
    );
    let outcome = ingest_in(&state, alerts).await?;
    if !posted.rejected.is_empty() {
        let errors: Vec<String> = posted.rejected.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_alerts",
            format!(
                "{} of {} alerts refused ({}): {}",
                errors.len(),
                errors.len() + outcome.received,
                match outcome.received {
                    0 => "nothing was stored".to_owned(),
                    1 => "the other one was stored".to_owned(),
                    n => format!("the other {n} were stored"),
                },
                errors.join("; ")
            ),
        )
        .with_details(json!({ "errors": errors, "stored": outcome })));
    }
    Ok(Json(json!({ "status": "success", "stored": outcome })))
}

/// `POST /hooks/alertmanager`: Alertmanager's webhook payload, version 4.
pub async fn alertmanager_webhook(
    State(state): State<AppState>,
    sender: AlertSender,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_or_error(body)?;
    let message = alert::parse_webhook(&body, state.clock.now()).map_err(malformed)?;
    let outcome = ingest(&state, sender.tag(message.to_alerts(state.clock.now()))).await?;
    Ok(Json(json!({ "status": "success", "stored": outcome })))
}

/// `GET /api/v1/incidents/{number}/alerts?limit=`: every alert linked to the incident, firing
/// first; the timeline lists only the first few of a storm.
pub async fn incident_alerts(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    crate::extract::Number(n): crate::extract::Number,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match q.get("limit") {
        None => 1000,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=10_000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", format!("`{l}` is not 1-10000")))?,
    };
    // A 404 for an incident that does not exist, rather than an empty list.
    state.store.incident(n).await?;
    let mut alerts = state.store.alerts_for_incident(n).await?;
    alerts.sort_by_key(|a| a.status != AlertState::Firing.as_str());
    let total = alerts.len();
    alerts.truncate(limit);
    Ok(Json(json!({ "total": total, "alerts": alerts })))
}

/// `GET /api/v1/alerts?status=firing|resolved&limit=`.
pub async fn list_alerts(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.get("status").map(String::as_str) {
        None => None,
        Some(s @ ("firing" | "resolved")) => Some(s),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("`{other}` is not an alert status; use firing or resolved"),
            ));
        }
    };
    let limit = q
        .get("limit")
        .map(|l| {
            l.parse::<i64>()
                .map_err(|_| ApiError::invalid("limit", "use 1-1000"))
        })
        .transpose()?
        .unwrap_or(100);
    let alerts = state.store.list_alerts(status, limit).await?;
    let out: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let mut v = json!(a);
            if let Some(s) = declare_suggestion(&state, a) {
                v["suggestion"] = json!(s);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "alerts": out })))
}

/// The policy's "only suggest": a firing alert that opened no incident because its severity is
/// below `auto_declare_from` carries the one command that declares it.
fn declare_suggestion(state: &AppState, a: &StoredAlert) -> Option<String> {
    let settings = &state.settings.alerts;
    if a.status != AlertState::Firing.as_str() || a.incident.is_some() {
        return None;
    }
    let severity = settings
        .mapping
        .severity_of(&a.labels)
        .unwrap_or(settings.default_severity);
    if !settings.auto_declare_from.is_more_severe_than(severity) {
        return None;
    }
    let service = a.service.clone().unwrap_or_else(|| "SERVICE".into());
    Some(format!(
        "below the auto-declare severity ({severity} is less severe than {}); declare it with `warroom declare --service {service} --severity {} --summary \"{}\"`",
        settings.auto_declare_from,
        severity.level(),
        summary_of(a).replace('"', "'")
    ))
}

/// Alerts received and deduplicated since start, for `/metrics` (counters; Prometheus handles
/// the reset at a restart).
pub static RECEIVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// See [`RECEIVED`].
pub static DEDUPLICATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Incidents opened from alerts and monitors since start.
pub static INCIDENTS_OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Most alerts acted on in one pass.
pub const PASS_SIZE: i64 = 5000;

/// One pass at a time per process, so two deliveries of the same new group cannot both
/// declare an incident for it.
static PROCESSING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn summary_of(a: &StoredAlert) -> String {
    match a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
    {
        Some(s) if !s.trim().is_empty() => {
            format!("{}: {}", a.name, s.lines().next().unwrap_or_default())
        }
        _ => a.name.clone(),
    }
}

/// Alerts listed in one evidence note: a burst of thousands of alerts for one service becomes
/// a readable handful of timeline notes (and a handful of rows) instead of one each.
const EVIDENCE_PER_NOTE: usize = 20;

fn evidence_line(a: &StoredAlert) -> String {
    let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // The description is where the error and latency are (monitors put them there), so the
    // incident carries them, not only the summary.
    let detail = match (
        a.annotations.get("summary"),
        a.annotations.get("description"),
    ) {
        (Some(_), Some(d)) if !d.trim().is_empty() => format!(": {}", d.trim()),
        _ => String::new(),
    };
    let via = a
        .annotations
        .get(SOURCE_ANNOTATION)
        .map(|s| format!(", via source {s}"))
        .unwrap_or_default();
    format!(
        "Alert firing: {}{detail} since {} ({}){via}",
        summary_of(a),
        warroom_domain::timefmt::hm_utc(a.starts_at),
        labels.join(", ")
    )
}

/// Most evidence notes one group of alerts adds in one pass. A storm of thousands of alerts
/// for one service would otherwise bury the timeline under notes nobody reads (and write a
/// note row per twenty alerts); the rest are counted, and every alert stays linked to the
/// incident, listed by `GET /api/v1/incidents/{number}/alerts`.
const EVIDENCE_NOTES_MAX: usize = 3;

/// Alert names counted in the note about the rest of a storm.
const REST_NAMES_MAX: usize = 20;

fn evidence(alerts: &[StoredAlert], incident: Option<i64>) -> Vec<EventKind> {
    let listed = EVIDENCE_PER_NOTE * EVIDENCE_NOTES_MAX;
    let mut notes: Vec<EventKind> = alerts[..alerts.len().min(listed)]
        .chunks(EVIDENCE_PER_NOTE)
        .map(|chunk| EventKind::Note {
            text: chunk
                .iter()
                .map(evidence_line)
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect();
    if alerts.len() > listed {
        // By name, so that a different alert behind a storm of one kind is still seen.
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &alerts[listed..] {
            *names.entry(a.name.as_str()).or_default() += 1;
        }
        let mut by_count: Vec<(&str, usize)> = names.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut counted: Vec<String> = by_count
            .iter()
            .take(REST_NAMES_MAX)
            .map(|(n, c)| format!("{n} ×{c}"))
            .collect();
        if by_count.len() > REST_NAMES_MAX {
            counted.push(format!("{} more names", by_count.len() - REST_NAMES_MAX));
        }
        let list = match incident {
            Some(n) => format!("GET /api/v1/incidents/{n}/alerts, `warroom alerts --incident {n}`"),
            None => "GET /api/v1/incidents/{number}/alerts".to_owned(),
        };
        notes.push(EventKind::Note {
            text: format!(
                "… and {} more alerts firing with these: {}. Every one is linked to the incident ({list})",
                alerts.len() - listed,
                counted.join(", ")
            ),
        });
    }
    notes
}

fn playbook_notes(alerts: &[StoredAlert]) -> Vec<EventKind> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for a in alerts {
        if let Some(r) = alert::recognise(&a.clone().into_alert())
            && !seen.contains(&r.incident_type)
        {
            seen.push(r.incident_type);
            let p = r.incident_type.playbook();
            out.push(EventKind::Note {
                text: format!(
                    "Playbook: {} ({}). Diagnosis time: {}. Response: {}. Solutions: {}",
                    p.name,
                    r.because,
                    p.diagnosis_time,
                    p.response.join("; "),
                    p.solutions.join("; ")
                ),
            });
        }
    }
    out
}

fn severity_of(state: &AppState, alerts: &[StoredAlert]) -> (Severity, Option<String>) {
    let mut best: Option<(Severity, String)> = None;
    for a in alerts {
        if let Some((s, raw)) = labelled_severity(state, a) {
            let raw = raw.to_owned();
            if best.as_ref().is_none_or(|(b, _)| s.is_more_severe_than(*b)) {
                best = Some((s, raw));
            }
        }
    }
    match best {
        Some((s, raw)) => (s, Some(raw)),
        None => (state.settings.alerts.default_severity, None),
    }
}

async fn open_incident_for(
    state: &AppState,
    service: &str,
) -> Result<Option<warroom_domain::Incident>, ApiError> {
    let filter = IncidentFilter {
        statuses: IncidentStatus::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .collect(),
        service: Some(service.to_owned()),
        limit: 1,
        ..Default::default()
    };
    Ok(state
        .store
        .list_incidents(&filter)
        .await?
        .into_iter()
        .next())
}

/// What a processing pass did.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Alerts settled.
    pub settled: usize,
    /// It only joined alerts to open incidents: no declaration, no resolution.
    pub only_joined: bool,
}

/// Acts on every alert whose state changed: firing groups open an incident (one open
/// incident per service) or join the open one, raising its severity when an alert says it is
/// worse; when every alert of an incident has resolved, the incident moves to monitoring and
/// the post-mortem is suggested.
pub async fn process_pending(state: &AppState) -> Result<Pass, ApiError> {
    let _one_at_a_time = PROCESSING.lock().await;
    let started = std::time::Instant::now();
    let pending = state.store.take_pending(PASS_SIZE).await;
    let result = match pending {
        Ok(pending) => process_batch(state, pending, started).await,
        Err(e) => Err(e.into()),
    };
    state.store.pass_done(result.is_ok());
    result
}

async fn process_batch(
    state: &AppState,
    pending: Vec<StoredAlert>,
    started: std::time::Instant,
) -> Result<Pass, ApiError> {
    let t_read = started.elapsed();
    let mut groups: BTreeMap<String, Vec<StoredAlert>> = BTreeMap::new();
    for a in pending {
        groups.entry(a.group_key.clone()).or_default().push(a);
    }
    let mut settled = 0;
    let mut touched: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // Per touched service: did this pass only add firing alerts, and their severities.
    let mut only_firing: HashMap<String, bool> = HashMap::new();
    let mut pass_severities: HashMap<String, Vec<(String, Severity)>> = HashMap::new();
    let now = state.clock.now();
    let silences = state.silences.current();
    for alerts in groups.values() {
        if let Some(a) = alerts.first()
            && let Some(s) = a
                .service
                .clone()
                .or_else(|| alert::slug_candidate(&a.name).map(|s| s.to_string()))
        {
            let firing_only = alerts
                .iter()
                .all(|a| a.status == AlertState::Firing.as_str());
            only_firing
                .entry(s.clone())
                .and_modify(|o| *o &= firing_only)
                .or_insert(firing_only);
            let sev = pass_severities.entry(s.clone()).or_default();
            for a in alerts {
                if !silences.iter().any(|m| m.mutes(&a.labels, now)) {
                    sev.push((a.name.clone(), alert_severity(state, a)));
                }
            }
            touched.insert(s);
        }
    }
    // Firing alerts that join an open incident, and alerts settled with no incident, are
    // committed together in one transaction ([`Deferred`]) instead of two per group.
    let mut deferred = Deferred::default();
    let opened_before = INCIDENTS_OPENED.load(std::sync::atomic::Ordering::Relaxed);
    let mut resolutions = false;
    for (_, alerts) in groups {
        let (firing, resolved): (Vec<StoredAlert>, Vec<StoredAlert>) = alerts
            .into_iter()
            .partition(|a| a.status == AlertState::Firing.as_str());
        if !firing.is_empty() {
            on_firing(state, &firing, &mut deferred).await?;
            settled += firing.len();
        }
        if !resolved.is_empty() {
            resolutions = true;
            // A resolution looks at which alerts of its incident still fire, which must
            // include those that joined it earlier in this pass.
            deferred.commit(state).await?;
            on_resolved(state, &resolved).await?;
            settled += resolved.len();
        }
    }
    deferred.commit(state).await?;
    let only_joined = !resolutions
        && settled > 0
        && INCIDENTS_OPENED.load(std::sync::atomic::Ordering::Relaxed) == opened_before;
    let t_groups = started.elapsed();
    // Firing alerts can only make a service worse: when this pass only added firing alerts and
    // they imply no worse health than the service already has, its health cannot have changed,
    // and the full recount (every firing alert of the service) is skipped. That recount is what
    // made a stream of new alerts quadratic.
    let current: HashMap<String, String> = if only_firing.values().any(|o| *o) {
        state
            .store
            .service_health()
            .await?
            .into_iter()
            .map(|h| (h.service, h.status))
            .collect()
    } else {
        HashMap::new()
    };
    for service in touched {
        let unchanged = only_firing.get(&service).copied().unwrap_or(false)
            && current.get(&service).is_some_and(|now| {
                let added = warroom_domain::detection::health_of(
                    pass_severities.get(&service).map_or(&[][..], Vec::as_slice),
                )
                .0;
                health_rank(now) >= health_rank(added.as_str())
            });
        if !unchanged {
            refresh_health(state, &service).await?;
        }
    }
    tracing::debug!(
        alerts = settled,
        read_ms = t_read.as_secs_f64() * 1000.0,
        groups_ms = (t_groups - t_read).as_secs_f64() * 1000.0,
        health_ms = (started.elapsed() - t_groups).as_secs_f64() * 1000.0,
        "alert processing pass"
    );
    Ok(Pass {
        settled,
        only_joined,
    })
}

fn health_rank(status: &str) -> u8 {
    match status {
        "UNHEALTHY" => 2,
        "DEGRADED" => 1,
        _ => 0,
    }
}

/// The severity an alert's labels say, and the label value that said it: a monitor's own
/// alert by the label monitors write, any other through the operator's mapping.
fn labelled_severity<'a>(state: &AppState, a: &'a StoredAlert) -> Option<(Severity, &'a str)> {
    let value = |label: &str| a.labels.get(label).map_or("", String::as_str);
    if let Some(s) = warroom_domain::detection::monitor_alert_severity(&a.labels) {
        return Some((s, value("severity")));
    }
    let mapping = &state.settings.alerts.mapping;
    mapping
        .severity_of(&a.labels)
        .map(|s| (s, value(&mapping.label)))
}

fn alert_severity(state: &AppState, a: &StoredAlert) -> Severity {
    labelled_severity(state, a).map_or(state.settings.alerts.default_severity, |(s, _)| s)
}

/// Recomputes a service's health from its firing alerts (monitors' included) and records a
/// change with its cause.
async fn refresh_health(state: &AppState, service: &str) -> Result<(), ApiError> {
    let firing = state.store.firing_alerts_for(service).await?;
    let now = state.clock.now();
    let silences = state.silences.current();
    let severities: Vec<(String, Severity)> = firing
        .iter()
        .filter(|a| !silences.iter().any(|s| s.mutes(&a.labels, now)))
        .map(|a| (a.name.clone(), alert_severity(state, a)))
        .collect();
    let (health, cause) = warroom_domain::detection::health_of(&severities);
    if state
        .store
        .record_health(service, health.as_str(), &cause, now)
        .await?
    {
        tracing::info!(service = %service, health = health.as_str(), cause = %cause, "service health changed");
    }
    Ok(())
}

/// `GET /api/v1/health`: every service's current health.
pub async fn health(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "services": state.store.service_health().await? }),
    ))
}

/// `GET /api/v1/services/{slug}/health`: a service's health changes, newest first.
pub async fn health_history(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    axum::extract::Path(slug): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let slug = ServiceSlug::parse_field(&slug, "slug")?;
    Ok(Json(
        json!({ "service": slug, "changes": state.store.health_history(slug.as_str(), 200).await? }),
    ))
}

/// The part of a pass committed in one transaction at its end (or before anything that has to
/// see it): alerts joining open incidents with their evidence, and alerts settled unlinked.
#[derive(Default)]
struct Deferred {
    joins: Vec<warroom_store::AlertJoin>,
    unlinked: Vec<String>,
}

impl Deferred {
    async fn commit(&mut self, state: &AppState) -> Result<(), ApiError> {
        if self.joins.is_empty() && self.unlinked.is_empty() {
            return Ok(());
        }
        let joins = std::mem::take(&mut self.joins);
        let unlinked = std::mem::take(&mut self.unlinked);
        state
            .store
            .settle_pass("alertmanager", state.clock.now(), joins, &unlinked)
            .await?;
        Ok(())
    }
}

async fn on_firing(
    state: &AppState,
    firing: &[StoredAlert],
    deferred: &mut Deferred,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let silences = state.silences.current();
    let mutes = |a: &StoredAlert| silences.iter().any(|s| s.mutes(&a.labels, now));
    // Copied only when a silence takes some out: a pass of thousands of alerts would
    // otherwise copy every label set once more.
    let kept: Vec<StoredAlert>;
    let firing: &[StoredAlert] = if firing.iter().any(mutes) {
        let (muted, rest): (Vec<&StoredAlert>, Vec<&StoredAlert>) =
            firing.iter().partition(|a| mutes(a));
        tracing::info!(
            alerts = muted.len(),
            "alerts silenced (maintenance window); stored, not acted on"
        );
        deferred
            .unlinked
            .extend(muted.iter().map(|a| a.fingerprint.clone()));
        kept = rest.into_iter().cloned().collect();
        &kept
    } else {
        firing
    };
    let Some(first) = firing.first() else {
        return Ok(());
    };
    let slug = first
        .service
        .clone()
        .or_else(|| alert::slug_candidate(&first.name).map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown".to_owned());
    let slug = ServiceSlug::parse_field(&slug, "service").map_err(ApiError::from)?;
    let fps: Vec<String> = firing.iter().map(|a| a.fingerprint.clone()).collect();
    let (severity, raw) = severity_of(state, firing);
    let now = state.clock.now();
    if let Some(incident) = open_incident_for(state, slug.as_str()).await? {
        let number = incident.number;
        let mut events: Vec<EventKind> = evidence(firing, Some(number));
        let policies = state.settings.policies.clone();
        // Label values have no length limit, timeline notes do: a note that fails its check
        // would fail the whole pass, again and again.
        use warroom_domain::incident::{MAX_FIELD_LEN, clip};
        let reason = clip(
            &format!(
                "alert {} has {}={}",
                first.name,
                state.settings.alerts.mapping.label,
                raw.clone().unwrap_or_default()
            ),
            MAX_FIELD_LEN,
        );
        let labelled = raw.is_some();
        let relapse = clip(
            &format!(
                "{} fired again while monitoring: the fix did not hold",
                first.name
            ),
            MAX_FIELD_LEN,
        );
        // Judged against the incident as stored when the join commits, which may be after
        // another group of this pass raised it.
        deferred.joins.push(warroom_store::AlertJoin {
            incident: number,
            change: Box::new(move |i| {
                // Firing again while the team watches whether the fix holds: it did not, and
                // the incident is worked on again (the runbook's step 7, "monitor for
                // recurrence").
                if i.status == IncidentStatus::Monitoring {
                    events.extend(i.transition(
                        IncidentStatus::Investigating,
                        Default::default(),
                        Some(relapse),
                        &policies,
                        now,
                    )?);
                }
                if labelled && severity.is_more_severe_than(i.severity) {
                    let c = warroom_domain::classify(&Default::default(), Some(severity))?;
                    events.extend(i.change_severity(c, None, Some(reason), &policies, now)?);
                }
                Ok(events.into())
            }),
            alerts: fps,
        });
        return Ok(());
    }
    if severity.is_more_severe_than(state.settings.alerts.auto_declare_from)
        || severity == state.settings.alerts.auto_declare_from
    {
        let service = match state.store.service(slug.as_str()).await? {
            Some(s) => s,
            None => {
                if state.settings.strict_services {
                    tracing::warn!(service = %slug, "alert for a service not in the config; declaring under it anyway, as dropping a firing alert is worse");
                }
                let fresh = Service {
                    name: slug.default_display_name(),
                    slug: slug.clone(),
                    owner: None,
                    public: false,
                };
                state.store.ensure_service(&fresh, now).await?
            }
        };
        let step = warroom_domain::TraceStep {
            question: "alert_label".into(),
            text: format!(
                "Severity from the alerts' `{}` label",
                state.settings.alerts.mapping.label
            ),
            answer: raw
                .clone()
                .unwrap_or_else(|| "absent: the configured default".into()),
            value: raw.clone().unwrap_or_else(|| "none".into()),
            outcome: Some(severity),
        };
        let classification = Classification {
            severity,
            basis: SeverityBasis::Explicit,
            trace: vec![step],
        };
        let summary = warroom_domain::incident::clip(
            &summary_of(first),
            warroom_domain::incident::MAX_SUMMARY_LEN,
        );
        let new = NewIncident {
            services: vec![slug],
            primary_service_name: service.name.clone(),
            summary,
            severity: Some(severity),
            signals: Default::default(),
            reporter: first
                .annotations
                .get(SOURCE_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| "alertmanager".into()),
            detected_at: firing
                .iter()
                .map(|a| a.starts_at)
                .min()
                .filter(|t| *t <= now),
            public: service.public,
        };
        let mut extra: Vec<EventKind> = evidence(firing, None);
        extra.extend(playbook_notes(firing));
        let incident = super::incidents::declare(
            state,
            "alertmanager",
            new,
            classification,
            service.name,
            extra,
        )
        .await?;
        INCIDENTS_OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            incident.number = incident.number,
            alerts = firing.len(),
            "incident opened from alerts"
        );
        state
            .store
            .settle_alerts(&fps, Some(incident.number))
            .await?;
    } else {
        tracing::info!(service = %slug, severity = severity.level(), "alert below the auto-declare severity; stored, not declared");
        deferred.unlinked.extend(fps);
    }
    Ok(())
}

async fn on_resolved(state: &AppState, resolved: &[StoredAlert]) -> Result<(), ApiError> {
    let fps: Vec<String> = resolved.iter().map(|a| a.fingerprint.clone()).collect();
    state.store.settle_alerts(&fps, None).await?;
    let mut incidents: Vec<i64> = resolved.iter().filter_map(|a| a.incident).collect();
    incidents.sort();
    incidents.dedup();
    for n in incidents {
        let all = state.store.alerts_for_incident(n).await?;
        let still: Vec<StoredAlert> = all
            .into_iter()
            .filter(|a| a.status == AlertState::Firing.as_str())
            .collect();
        if !still.is_empty() {
            suggest_from_remaining(state, n, &still).await;
            continue;
        }
        let now = state.clock.now();
        let policies = state.settings.policies.clone();
        let names: Vec<String> = resolved
            .iter()
            .filter(|a| a.incident == Some(n))
            .map(|a| a.name.clone())
            .collect();
        let r = state
            .store
            .mutate_incident(
                n,
                "alertmanager",
                now,
                Box::new(move |i| {
                    let mut events = vec![EventKind::Note { text: format!("Alerts resolved: {}", names.join(", ")) }];
                    // Recovery by the alerts' account: watch it, and offer the post-mortem (the
                    // seed's "the cluster has recovered, write a post-mortem?").
                    if i.status.is_open() && i.status != IncidentStatus::Monitoring {
                        events.extend(i.transition(IncidentStatus::Monitoring, Default::default(), Some("all alerts resolved".into()), &policies, now)?);
                        events.push(EventKind::Note { text: format!("Service recovered: draft the post-mortem in one call with `warroom postmortem new {n}` (POST /api/v1/incidents/{n}/postmortem)", n = i.number) });
                    }
                    Ok(events.into())
                }),
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(incident.number = n, error = %e, "could not record the recovery");
        }
    }
    Ok(())
}

/// Some of an incident's alerts resolved and others still fire: when the worst that remains
/// (by its severity label) is milder than the incident, a downgrade is suggested, never applied.
/// Alerts without a mapped severity label say nothing about severity, so they suggest nothing.
async fn suggest_from_remaining(state: &AppState, number: i64, firing: &[StoredAlert]) {
    let (severity, raw) = severity_of(state, firing);
    let Some(raw) = raw else { return };
    let label = &state.settings.alerts.mapping.label;
    let names: Vec<&str> = firing.iter().map(|a| a.name.as_str()).collect();
    let classification = Classification {
        severity,
        basis: SeverityBasis::Explicit,
        trace: vec![warroom_domain::TraceStep {
            question: "alert_label".into(),
            text: format!("Severity from the still-firing alerts' `{label}` label"),
            answer: raw.clone(),
            value: raw.clone(),
            outcome: Some(severity),
        }],
    };
    let reason = format!(
        "the alerts still firing ({}) are at most {label}={raw}",
        names.join(", ")
    );
    if let Err(e) = super::detection::review_incident(
        state,
        number,
        "alertmanager",
        &classification,
        None,
        &reason,
    )
    .await
    {
        tracing::warn!(incident.number = number, error = ?e, "could not review the severity after a partial recovery");
    }
}

impl From<&DomainError> for ApiError {
    fn from(e: &DomainError) -> Self {
        e.clone().into()
    }
}
