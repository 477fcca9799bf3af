//! Incident handlers: declare, read, change, and the runbook's views of one incident.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use warroom_domain::escalation::{Decorate, Delivery, TickContext, reporter_news};
use warroom_domain::notify::{Notification, NotificationKind};
use warroom_domain::severity::OnCallPolicy;
use warroom_domain::{DomainError, EventKind};
use warroom_domain::{
    Incident, IncidentStatus, NewIncident, Role, ServiceSlug, Severity, Signals, checklist,
    classify, incident::IncidentPatch, incident::ResolutionFields, messages, service::Service,
};
use warroom_store::{Change, IncidentFilter, MutateFn, NewOutboxMessage};

use super::classify::explicit_severity;
use crate::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, Number, Responder, Viewer},
};

/// An incident as the API shows it: the stored record plus what follows from it.
#[derive(Debug, Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    incident: Incident,
    severity_name: String,
    missing_roles: Vec<Role>,
    duration_secs: i64,
    update_overdue: bool,
}

fn view(state: &AppState, incident: Incident) -> IncidentView {
    let now = state.clock.now();
    IncidentView {
        severity_name: state.settings.policies.get(incident.severity).name.clone(),
        missing_roles: incident.missing_roles(),
        duration_secs: incident.duration(now).whole_seconds(),
        update_overdue: incident.next_update_due.is_some_and(|d| now > d),
        incident,
    }
}

/// Body of `POST /api/v1/incidents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    /// Primary service slug.
    pub service: String,
    /// Further affected services.
    #[serde(default)]
    pub services: Vec<String>,
    /// Brief description.
    pub summary: String,
    /// Explicit severity 1-4.
    pub severity: Option<i64>,
    /// Signals for the decision tree.
    pub signals: Option<Signals>,
    /// Reporter; defaults to the token's name.
    pub reporter: Option<String>,
    /// When it was noticed, RFC 3339; defaults to now.
    pub detected_at: Option<String>,
    /// Public status page; defaults to the service's setting.
    pub public: Option<bool>,
}

pub(crate) async fn resolve_service(
    state: &AppState,
    raw: &str,
    field: &str,
) -> Result<Service, ApiError> {
    let slug = ServiceSlug::parse_field(raw, field)?;
    if let Some(s) = state.store.service(slug.as_str()).await? {
        return Ok(s);
    }
    if state.settings.strict_services {
        let known: Vec<String> = state
            .store
            .services()
            .await?
            .into_iter()
            .map(|s| s.slug.to_string())
            .collect();
        let list = if known.is_empty() {
            "none are configured".to_owned()
        } else {
            known.join(", ")
        };
        return Err(ApiError::invalid(
            field,
            format!(
                "unknown service `{raw}`; strict_services is on and the known services are: {list}"
            ),
        )
        .with_details(json!({ "field": field, "known_services": known })));
    }
    let fresh = Service {
        name: slug.default_display_name(),
        slug,
        owner: None,
        public: false,
    };
    Ok(state
        .store
        .ensure_service(&fresh, state.clock.now())
        .await?)
}

fn parse_time(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        ApiError::invalid(
            field,
            format!("`{raw}` is not an RFC 3339 time; write it like 2026-01-12T14:30:00Z"),
        )
    })
}

/// `POST /api/v1/incidents`.
pub async fn declare_incident(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    ApiJson(req): ApiJson<DeclareRequest>,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let explicit = explicit_severity(req.severity)?;
    let signals = req.signals.unwrap_or_default();
    // Classify before touching the database, so a declare without a basis changes nothing.
    let classification = classify(&signals, explicit)?;
    let primary = resolve_service(&state, &req.service, "service").await?;
    let mut services = vec![primary.slug.clone()];
    for (i, raw) in req.services.iter().enumerate() {
        let s = resolve_service(&state, raw, &format!("services[{i}]")).await?;
        if !services.contains(&s.slug) {
            services.push(s.slug);
        }
    }
    let detected_at = req
        .detected_at
        .as_deref()
        .map(|d| parse_time("detected_at", d))
        .transpose()?;
    let new = NewIncident {
        services,
        primary_service_name: primary.name.clone(),
        summary: req.summary,
        severity: explicit,
        signals,
        reporter: req.reporter.unwrap_or_else(|| caller.name().to_owned()),
        detected_at,
        public: req.public.unwrap_or(primary.public),
    };
    let incident = declare(
        &state,
        caller.name(),
        new,
        classification,
        primary.name.clone(),
        vec![],
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, incident))))
}

/// Declares an incident with everything that goes with it, in one transaction: its events (plus
/// `extra_events`, e.g. an alert's evidence), the notifications its severity calls for, and the
/// first page of the escalation policy. Shared by the API and alert intake.
pub(crate) async fn declare(
    state: &AppState,
    author: &str,
    new: NewIncident,
    classification: warroom_domain::Classification,
    service_name: String,
    extra_events: Vec<EventKind>,
) -> Result<Incident, ApiError> {
    let now = state.clock.now();
    let policies = state.settings.policies.clone();
    let routing = state.settings.routing.clone();
    let paging = state.settings.paging.clone();
    let ack_links = state.settings.ack_links.clone();
    let clock = state.clock.clone();
    let (incident, _) = state
        .store
        .declare_incident(
            author,
            now,
            Box::new(move |number| {
                let (incident, events) =
                    Incident::declare(number, new, classification, &policies, now)?;
                let text = messages::declared(&incident, &service_name, &policies);
                let n = notification(&incident, NotificationKind::IncidentDeclared, text);
                let on_call = policies.get(incident.severity).on_call;
                let mut routed: Vec<Delivery> = routing
                    .declared(on_call, n)
                    .into_iter()
                    .map(Delivery::from)
                    .collect();
                let mut events = events;
                events.extend(extra_events);
                let mut incident = incident;
                // Paging severities start the escalation policy in the same transaction, so a
                // declared Sev1 is never left unpaged by a crash.
                if matches!(
                    on_call,
                    OnCallPolicy::PageNow | OnCallPolicy::AlertOnCallEngineer
                ) {
                    let ctx = TickContext {
                        policies: &policies,
                        escalation: paging.policy.as_ref(),
                        schedules: &paging.schedules,
                        service_name: &service_name,
                        timeline: &[],
                    };
                    let (e, out) = incident.start_paging(&ctx, now);
                    events.extend(e);
                    let decorate = ack_links.map(|l| crate::ack_link::decorator(l, clock));
                    routed.extend(paging.route_with(
                        out,
                        &routing,
                        decorate.as_ref().map(|d| d as &Decorate),
                    ));
                }
                Ok((
                    incident,
                    Change {
                        events,
                        outbox: deliveries(routed, now),
                    },
                ))
            }),
        )
        .await?;
    tracing::info!(
        incident.number = incident.number,
        incident.severity = incident.severity.level(),
        "incident declared"
    );
    Ok(incident)
}

/// `GET /api/v1/incidents?status=&severity=&service=&limit=`.
pub async fn list_incidents(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut filter = IncidentFilter::default();
    for (k, v) in &q {
        match k.as_str() {
            "status" => {
                for s in v.split(',').filter(|s| !s.trim().is_empty()) {
                    filter.statuses.push(match s.trim() {
                        // `open` is shorthand people reach for first.
                        "open" => {
                            filter
                                .statuses
                                .extend(IncidentStatus::ALL.into_iter().filter(|s| s.is_open()));
                            continue;
                        }
                        other => IncidentStatus::parse_field(other, "status")?,
                    });
                }
            }
            "severity" => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::invalid("severity", format!("`{v}` is not a severity; use 1-4"))
                })?;
                filter.severity = Some(Severity::from_level(n)?);
            }
            "service" => filter.service = Some(ServiceSlug::parse_field(v, "service")?.to_string()),
            "limit" => {
                filter.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", format!("`{v}` is not a limit; use 1-500"))
                    })?;
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown query parameter; use status, severity, service or limit",
                ));
            }
        }
    }
    let incidents = state.store.list_incidents(&filter).await?;
    let views: Vec<IncidentView> = incidents.into_iter().map(|i| view(&state, i)).collect();
    Ok(Json(json!({ "incidents": views })))
}

/// `GET /api/v1/incidents/{number}`.
pub async fn show_incident(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Number(n): Number,
) -> Result<Json<IncidentView>, ApiError> {
    let incident = state.store.incident(n).await?;
    Ok(Json(view(&state, incident)))
}

/// The display name of the incident's primary service, as titles and messages use it.
pub(crate) async fn primary_service_name(
    state: &AppState,
    incident: &Incident,
) -> Result<String, ApiError> {
    let primary = incident
        .services
        .first()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    Ok(state
        .store
        .service(&primary)
        .await?
        .map(|s| s.name)
        .unwrap_or(primary))
}

fn notification(incident: &Incident, kind: NotificationKind, text: String) -> Notification {
    Notification {
        kind,
        incident: Some(incident.number),
        severity: Some(incident.severity),
        title: incident.title.clone(),
        text,
        incident_channel: Some(incident.channel.clone()),
    }
}

/// Deliveries become outbox rows with their recipient and delay.
pub(crate) fn deliveries(d: Vec<Delivery>, now: time::OffsetDateTime) -> Vec<NewOutboxMessage> {
    d.into_iter()
        .map(|d| NewOutboxMessage::from_delivery(d, now))
        .collect()
}

async fn mutate(
    state: &AppState,
    n: i64,
    author: &str,
    change: impl FnOnce(&mut Incident) -> Result<Vec<EventKind>, DomainError> + Send + 'static,
) -> Result<Json<IncidentView>, ApiError> {
    let (paging, routing) = (
        state.settings.paging.clone(),
        state.settings.routing.clone(),
    );
    let now = state.clock.now();
    let change: MutateFn = Box::new(move |i| {
        let events = change(i)?;
        let outbox = deliveries(paging.route(reporter_news(i, &events), &routing), now);
        Ok(Change { events, outbox })
    });
    let (incident, _) = state
        .store
        .mutate_incident(n, author, state.clock.now(), change)
        .await?;
    Ok(Json(view(state, incident)))
}

/// `PATCH /api/v1/incidents/{number}`: descriptive fields.
pub async fn update_incident(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(patch): ApiJson<IncidentPatch>,
) -> Result<Json<IncidentView>, ApiError> {
    let current = state.store.incident(n).await?;
    let name = primary_service_name(&state, &current).await?;
    mutate(&state, n, caller.name(), move |i| i.patch(patch, &name)).await
}

/// Body of `POST /api/v1/incidents/{number}/severity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRequest {
    /// Explicit severity.
    pub severity: Option<i64>,
    /// New signals for the decision tree.
    pub signals: Option<Signals>,
    /// Why.
    pub reason: Option<String>,
}

/// `POST /api/v1/incidents/{number}/severity`.
pub async fn change_severity(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(req): ApiJson<SeverityRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let explicit = explicit_severity(req.severity)?;
    let signals = req.signals.clone().unwrap_or_default();
    let c = classify(&signals, explicit)?;
    let policies = state.settings.policies.clone();
    let now = state.clock.now();
    mutate(&state, n, caller.name(), move |i| {
        i.change_severity(c, req.signals, req.reason, &policies, now)
    })
    .await
}

/// Body of `POST /api/v1/incidents/{number}/roles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// commander, technical_responder, communication_lead, on_call_manager.
    pub role: String,
    /// Who.
    pub person: String,
    /// Remove instead of assign.
    #[serde(default)]
    pub remove: bool,
}

/// `POST /api/v1/incidents/{number}/roles`.
pub async fn assign_role(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let role = Role::parse(&req.role)?;
    mutate(&state, n, caller.name(), move |i| {
        i.assign_role(role, &req.person, req.remove)
    })
    .await
}

/// Body of `POST /api/v1/incidents/{number}/transition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// Target status.
    pub to: String,
    /// A note for the timeline.
    pub note: Option<String>,
    /// Fields to record at the same time (typically when resolving).
    #[serde(flatten)]
    pub fields: ResolutionFields,
}

/// `POST /api/v1/incidents/{number}/transition`.
pub async fn transition_incident(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(req): ApiJson<TransitionRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    let to = IncidentStatus::parse_field(&req.to, "to")?;
    let policies = state.settings.policies.clone();
    let routing = state.settings.routing.clone();
    let paging = state.settings.paging.clone();
    let now = state.clock.now();
    let change: MutateFn = Box::new(move |i| {
        let events = i.transition(to, req.fields, req.note, &policies, now)?;
        let mut routed = paging.route(reporter_news(i, &events), &routing);
        if let (IncidentStatus::Resolved, Some(text)) = (to, messages::resolved(i)) {
            let n = notification(i, NotificationKind::IncidentResolved, text);
            routed.extend(routing.resolved(n).into_iter().map(Delivery::from));
        }
        Ok(Change {
            events,
            outbox: deliveries(routed, now),
        })
    });
    let (incident, _) = state
        .store
        .mutate_incident(n, caller.name(), now, change)
        .await?;
    // The seed's "recovered, write a post-mortem?" made automatic when configured. The resolve
    // has committed; a failed draft is logged and can be retried with the API or the CLI.
    if to == IncidentStatus::Resolved
        && state
            .settings
            .postmortems
            .as_ref()
            .is_some_and(|p| p.draft_on_resolve)
    {
        match crate::postmortems::draft(&state, n, "warroom", true).await {
            Ok(d) => {
                tracing::info!(incident.number = n, file = %d.file_name, "post-mortem drafted on resolve")
            }
            Err(e) => {
                tracing::warn!(incident.number = n, error = ?e, "could not draft the post-mortem on resolve")
            }
        }
    }
    Ok(Json(view(&state, incident)))
}

/// Body of `POST /api/v1/incidents/{number}/updates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// Move to this status first, if given.
    pub status: Option<String>,
    /// What is being done now.
    pub current_action: String,
    /// What has been found.
    pub findings: String,
    /// What comes next.
    pub next_step: String,
}

/// `POST /api/v1/incidents/{number}/updates`: a periodic update; restarts the cadence.
pub async fn post_update(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let to = req
        .status
        .as_deref()
        .map(|s| IncidentStatus::parse_field(s, "status"))
        .transpose()?;
    let policies = state.settings.policies.clone();
    let routing = state.settings.routing.clone();
    let paging = state.settings.paging.clone();
    let now = state.clock.now();
    let (incident, _) = state
        .store
        .mutate_incident(
            n,
            caller.name(),
            now,
            Box::new(move |i| {
                let mut events = Vec::new();
                if let Some(to) = to
                    && to != i.status
                {
                    events.extend(i.transition(to, Default::default(), None, &policies, now)?);
                }
                events.extend(i.post_update(
                    &req.current_action,
                    &req.findings,
                    &req.next_step,
                    &policies,
                    now,
                )?);
                let text = messages::update(i, i.roles.commander.as_deref()).unwrap_or_default();
                let n = notification(i, NotificationKind::UpdatePosted, text);
                let mut routed: Vec<Delivery> =
                    routing.update(n).into_iter().map(Delivery::from).collect();
                routed.extend(paging.route(reporter_news(i, &events), &routing));
                Ok(Change {
                    events,
                    outbox: deliveries(routed, now),
                })
            }),
        )
        .await?;
    let message = messages::update(&incident, incident.roles.commander.as_deref());
    Ok((
        StatusCode::CREATED,
        Json(json!({ "incident": view(&state, incident), "message": message })),
    ))
}

/// Body of `POST /api/v1/incidents/{number}/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// Text.
    pub text: String,
    /// An action taken on the system rather than an observation.
    #[serde(default)]
    pub action: bool,
}

/// `POST /api/v1/incidents/{number}/notes`.
pub async fn add_note(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    ApiJson(req): ApiJson<NoteRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (_, events) = state
        .store
        .mutate_incident(
            n,
            caller.name(),
            state.clock.now(),
            Box::new(move |i| i.add_note(&req.text, req.action).map(Change::from)),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "events": events }))))
}

/// `GET /api/v1/incidents/{number}/timeline`.
pub async fn timeline(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Number(n): Number,
) -> Result<Json<Value>, ApiError> {
    let events = state.store.timeline(n).await?;
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let text = e.kind.describe();
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            v["text"] = Value::String(text);
            v
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

/// `GET /api/v1/incidents/{number}/checklists`.
pub async fn checklists(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Number(n): Number,
) -> Result<Json<Value>, ApiError> {
    let incident = state.store.incident(n).await?;
    let items = checklist::evaluate(&incident, state.clock.now());
    let done = items.iter().filter(|i| i.done.is_some()).count();
    Ok(Json(
        json!({ "items": items, "done": done, "total": items.len() }),
    ))
}

/// `POST /api/v1/incidents/{number}/checklists/{item}/tick`.
pub async fn tick_checklist(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Path((number, item)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let n = number.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "`{number}` is not an incident number; use a positive whole number such as 12"
        ))
    })?;
    let now = state.clock.now();
    let who = caller.name().to_owned();
    let (incident, _) = state
        .store
        .mutate_incident(
            n,
            caller.name(),
            now,
            Box::new(move |i| checklist::tick(i, &item, &who, now).map(Change::from)),
        )
        .await?;
    let items = checklist::evaluate(&incident, now);
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/incidents/{number}/messages`: the runbook's messages rendered from the record.
pub async fn messages(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Number(n): Number,
) -> Result<Json<Value>, ApiError> {
    let incident = state.store.incident(n).await?;
    let events = state.store.timeline(n).await?;
    let name = primary_service_name(&state, &incident).await?;
    let now = state.clock.now();
    let p = &state.settings.policies;
    let stuck = if incident.identified_at.is_none() {
        "cause not identified yet"
    } else {
        "fix not holding"
    };
    Ok(Json(json!({
        "declared": messages::declared(&incident, &name, p),
        "update": messages::update(&incident, incident.roles.commander.as_deref()),
        "status_page": messages::status_page(&incident, &name, p, now),
        // Escalation only makes sense while the incident is still open.
        "escalation": incident.status.is_open().then(|| messages::escalation(&incident, &name, &events, stuck, now)),
        "resolved": messages::resolved(&incident),
    })))
}

/// Body of `POST /api/v1/incidents/{number}/ack`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Who acknowledges; defaults to the token's name.
    pub person: Option<String>,
}

/// `POST /api/v1/incidents/{number}/ack`: stops the escalation; the first one sets MTTA.
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller<Responder>,
    Number(n): Number,
    body: axum::body::Bytes,
) -> Result<Json<IncidentView>, ApiError> {
    let req: AckRequest = crate::extract::optional_json(&body)?;
    let person = req.person.unwrap_or_else(|| caller.name().to_owned());
    let now = state.clock.now();
    let answer = mutate(&state, n, caller.name(), move |i| {
        i.acknowledge(&person, now)
    })
    .await?;
    cancel_later_pages(&state, n, now).await;
    Ok(answer)
}

/// Somebody has it: people's later notification rules for this incident need not fire.
pub(crate) async fn cancel_later_pages(state: &AppState, n: i64, now: time::OffsetDateTime) {
    match state.store.cancel_pending_pages(n, now).await {
        Ok(0) => {}
        Ok(k) => tracing::info!(
            incident.number = n,
            cancelled = k,
            "later pages cancelled by the acknowledgement"
        ),
        Err(e) => tracing::warn!(incident.number = n, error = %e, "could not cancel later pages"),
    }
}

/// `GET /api/v1/incidents/{number}/notifications`: every notification of the incident with its
/// delivery state, attempts and last error.
pub async fn notifications(
    State(state): State<AppState>,
    _c: Caller<Viewer>,
    Number(n): Number,
) -> Result<Json<Value>, ApiError> {
    state.store.incident(n).await?;
    Ok(Json(
        json!({ "notifications": state.store.outbox_for_incident(n).await? }),
    ))
}
