//! An incident, its lifecycle and the rules for changing it.
//!
//! Every change goes through a method here that checks the rule, changes the incident and
//! returns the timeline events that record it. Storage applies both in one transaction.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Duration, OffsetDateTime};

use crate::{
    Classification, DomainError, EventKind, Role, Roles, ServiceSlug, Severity, SeverityPolicies,
    Signals, TraceStep, classifier::SeverityBasis,
};

/// The installation-wide, gap-free incident number.
pub type IncidentNumber = i64;

/// Lifecycle states, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Just declared.
    Declared,
    /// Somebody is looking.
    Investigating,
    /// The cause is known.
    Identified,
    /// A fix or workaround is being applied.
    Mitigating,
    /// The fix is in; watching that it holds.
    Monitoring,
    /// Over; the post-incident work remains.
    Resolved,
    /// Post-incident work done; final.
    Closed,
}

impl IncidentStatus {
    /// In lifecycle order.
    pub const ALL: [IncidentStatus; 7] = [
        IncidentStatus::Declared,
        IncidentStatus::Investigating,
        IncidentStatus::Identified,
        IncidentStatus::Mitigating,
        IncidentStatus::Monitoring,
        IncidentStatus::Resolved,
        IncidentStatus::Closed,
    ];

    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Declared => "declared",
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Mitigating => "mitigating",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Parses an API name, naming `field` on error.
    pub fn parse_field(raw: &str, field: &str) -> Result<Self, DomainError> {
        let norm = raw.trim().to_ascii_lowercase();
        IncidentStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == norm)
            .ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!(
                        "`{raw}` is not a status; use one of {}",
                        IncidentStatus::ALL.map(|s| s.as_str()).join(", ")
                    ),
                )
            })
    }

    fn rank(self) -> usize {
        IncidentStatus::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(0)
    }

    /// Still being worked on (not resolved or closed).
    pub fn is_open(self) -> bool {
        self.rank() < IncidentStatus::Resolved.rank()
    }

    /// Where this status may move to.
    ///
    /// Open incidents move forward freely (people skip steps under pressure), may fall back to
    /// investigating when a hypothesis turns out wrong, and can only close after resolution.
    /// A resolved incident either closes or reopens to investigating. Closed is final.
    pub fn allowed_next(self) -> Vec<IncidentStatus> {
        use IncidentStatus::*;
        match self {
            Closed => vec![],
            Resolved => vec![Investigating, Closed],
            open => IncidentStatus::ALL
                .into_iter()
                .filter(|to| {
                    *to != Closed
                        && *to != Declared
                        && (to.rank() > open.rank()
                            || (*to == Investigating && open.rank() > Investigating.rank()))
                })
                .collect(),
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who was affected, how many, for how long, in people's words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impact {
    /// Who was affected.
    pub who: Option<String>,
    /// How many.
    pub how_many: Option<String>,
    /// How long.
    pub how_long: Option<String>,
}

impl Impact {
    /// `~X users affected for X minutes` style, from whatever is known.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.how_many.as_ref().map(|n| format!("~{n}")),
            self.who.clone(),
            self.how_long.as_ref().map(|l| format!("for {l}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join(" "))
        }
    }
}

/// A periodic update in the runbook's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// When it was posted.
    #[serde(with = "time::serde::rfc3339")]
    pub posted_at: OffsetDateTime,
    /// Status at the time.
    pub status: IncidentStatus,
    /// What is being done now.
    pub current_action: String,
    /// What has been found.
    pub findings: String,
    /// What comes next.
    pub next_step: String,
    /// When the next update is due, if the severity has a cadence.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update_due: Option<OffsetDateTime>,
}

/// A person's tick of a checklist item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistTick {
    /// Item id.
    pub item: String,
    /// Who ticked it.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Gap-free, sequential per installation.
    pub number: IncidentNumber,
    /// `INCIDENT: <Service> - <brief description>`.
    pub title: String,
    /// The brief description.
    pub summary: String,
    /// Affected services; the first is the primary one (title and channel).
    pub services: Vec<ServiceSlug>,
    /// Current severity.
    pub severity: Severity,
    /// How the current severity was decided.
    pub severity_basis: SeverityBasis,
    /// The decision tree's trace for the current severity.
    pub severity_trace: Vec<TraceStep>,
    /// The signals last used.
    pub signals: Signals,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// `#incident-YYYYMMDD-<service-slug>`, dated by detection (UTC).
    pub channel: String,
    /// Who reported it.
    pub reporter: String,
    /// When the problem was first noticed.
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    /// When it was declared.
    #[serde(with = "time::serde::rfc3339")]
    pub declared_at: OffsetDateTime,
    /// First time somebody started working on it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// When the cause was identified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub identified_at: Option<OffsetDateTime>,
    /// When the mitigation took effect.
    #[serde(with = "time::serde::rfc3339::option")]
    pub mitigated_at: Option<OffsetDateTime>,
    /// When it was resolved (cleared on reopen).
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// When it was closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Root cause, once known.
    pub root_cause: Option<String>,
    /// Fix applied.
    pub fix_applied: Option<String>,
    /// How recovery was verified.
    pub verification: Option<String>,
    /// Impact.
    pub impact: Impact,
    /// Shown on the public status page.
    pub public: bool,
    /// Role holders.
    pub roles: Roles,
    /// The last update posted.
    pub last_update: Option<StatusUpdate>,
    /// When the next update is due; `None` when the severity has no cadence or it is over.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update_due: Option<OffsetDateTime>,
    /// Checklist items ticked by people.
    pub checklist_ticks: Vec<ChecklistTick>,
    /// Paging and reminder state.
    #[serde(default)]
    pub paging: crate::escalation::Paging,
}

/// What a declarer provides.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    /// Affected services, primary first; at least one.
    pub services: Vec<ServiceSlug>,
    /// Display name of the primary service, for the title.
    pub primary_service_name: String,
    /// Brief description.
    pub summary: String,
    /// Explicit severity, if the declarer gave one.
    pub severity: Option<Severity>,
    /// Signals for the decision tree.
    pub signals: Signals,
    /// Who reports it.
    pub reporter: String,
    /// When it was noticed; defaults to now.
    pub detected_at: Option<OffsetDateTime>,
    /// Public flag.
    pub public: bool,
}

/// The longest summary accepted; titles go into channel topics and subject lines.
pub const MAX_SUMMARY_LEN: usize = 200;

/// Text warroom writes itself from what senders sent (an alert's name, labels, summary), cut to
/// `max` characters: people's text that is too long is refused, but a pass that acts on alerts
/// must not fail on a sender's long label.
pub fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Validates free text: not blank, one line, bounded.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!(
                "is {} characters long; keep it under {max}",
                v.chars().count()
            ),
        ));
    }
    Ok(v.to_owned())
}

/// `INCIDENT: API - 50% error rate since 14:30 UTC`.
pub fn title(service_name: &str, summary: &str) -> String {
    format!("INCIDENT: {service_name} - {summary}")
}

/// `#incident-20260112-backend`, dated by detection in UTC.
pub fn channel_name(detected_at: OffsetDateTime, service: &ServiceSlug) -> String {
    let d = detected_at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "#incident-{:04}{:02}{:02}-{}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        service.as_str()
    )
}

/// What a transition may record at the same time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionFields {
    /// Root cause.
    pub root_cause: Option<String>,
    /// Fix applied.
    pub fix_applied: Option<String>,
    /// Verification steps.
    pub verification: Option<String>,
    /// Impact.
    pub impact: Option<Impact>,
}

/// Fields a responder may change directly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    /// New summary (the title follows).
    pub summary: Option<String>,
    /// Root cause.
    pub root_cause: Option<String>,
    /// Fix applied.
    pub fix_applied: Option<String>,
    /// Verification.
    pub verification: Option<String>,
    /// Impact.
    pub impact: Option<Impact>,
    /// Public flag.
    pub public: Option<bool>,
}

/// The longest note, reason or recorded field accepted.
pub const MAX_FIELD_LEN: usize = 4000;

impl Incident {
    /// Declares an incident with an already-allocated number.
    pub fn declare(
        number: IncidentNumber,
        new: NewIncident,
        classification: Classification,
        policies: &SeverityPolicies,
        now: OffsetDateTime,
    ) -> Result<(Incident, Vec<EventKind>), DomainError> {
        let Some(primary) = new.services.first().cloned() else {
            return Err(DomainError::invalid(
                "service",
                "name at least one affected service",
            ));
        };
        let summary = check_text("summary", &new.summary, MAX_SUMMARY_LEN)?;
        if summary.contains('\n') {
            return Err(DomainError::invalid(
                "summary",
                "must be one line; put details in a note",
            ));
        }
        let reporter = check_text("reporter", &new.reporter, 200)?;
        let detected_at = new.detected_at.unwrap_or(now);
        if detected_at > now + Duration::minutes(5) {
            return Err(DomainError::invalid(
                "detected_at",
                "is in the future; give the UTC time the problem was first noticed",
            ));
        }
        let title = title(&new.primary_service_name, &summary);
        let incident = Incident {
            number,
            title: title.clone(),
            summary,
            channel: channel_name(detected_at, &primary),
            services: new.services,
            severity: classification.severity,
            severity_basis: classification.basis,
            severity_trace: classification.trace.clone(),
            signals: new.signals,
            status: IncidentStatus::Declared,
            reporter,
            detected_at,
            declared_at: now,
            acknowledged_at: None,
            identified_at: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            root_cause: None,
            fix_applied: None,
            verification: None,
            impact: Impact::default(),
            public: new.public,
            roles: Roles::default(),
            last_update: None,
            next_update_due: policies.get(classification.severity).next_update_after(now),
            checklist_ticks: vec![],
            paging: Default::default(),
        };
        let event = EventKind::Declared {
            title,
            severity: classification.severity,
            basis: classification.basis,
            trace: classification.trace,
            services: incident.services.iter().map(|s| s.to_string()).collect(),
        };
        Ok((incident, vec![event]))
    }

    fn ensure_not_closed(&self) -> Result<(), DomainError> {
        if self.status == IncidentStatus::Closed {
            Err(DomainError::Closed)
        } else {
            Ok(())
        }
    }

    /// Roles the runbook still wants filled.
    pub fn missing_roles(&self) -> Vec<Role> {
        if self.status.is_open() {
            self.roles.missing(self.severity)
        } else {
            vec![]
        }
    }

    /// Time from detection to resolution, or to `now` while open.
    pub fn duration(&self, now: OffsetDateTime) -> Duration {
        self.resolved_at.unwrap_or(now) - self.detected_at
    }

    /// Changes severity to a new classification.
    pub fn change_severity(
        &mut self,
        classification: Classification,
        signals: Option<Signals>,
        reason: Option<String>,
        policies: &SeverityPolicies,
        now: OffsetDateTime,
    ) -> Result<Vec<EventKind>, DomainError> {
        self.ensure_not_closed()?;
        let reason = reason
            .map(|r| check_text("reason", &r, MAX_FIELD_LEN))
            .transpose()?;
        let from = self.severity;
        self.severity = classification.severity;
        self.severity_basis = classification.basis;
        self.severity_trace = classification.trace.clone();
        if let Some(s) = signals {
            self.signals = s;
        }
        if self.status.is_open() && from != self.severity {
            // A new cadence starts now; a raised severity must not wait for the old, slower clock.
            self.next_update_due = policies.get(self.severity).next_update_after(now);
        }
        Ok(vec![EventKind::SeverityChanged {
            from,
            to: classification.severity,
            basis: classification.basis,
            trace: classification.trace,
            reason,
        }])
    }

    fn record_fields(
        &mut self,
        f: ResolutionFields,
        events: &mut Vec<EventKind>,
    ) -> Result<(), DomainError> {
        let mut set = |field: &str,
                       slot: &mut Option<String>,
                       value: Option<String>|
         -> Result<(), DomainError> {
            if let Some(v) = value {
                let v = check_text(field, &v, MAX_FIELD_LEN)?;
                if slot.as_deref() != Some(v.as_str()) {
                    *slot = Some(v.clone());
                    events.push(EventKind::FieldRecorded {
                        field: field.to_owned(),
                        value: v,
                    });
                }
            }
            Ok(())
        };
        set("root_cause", &mut self.root_cause, f.root_cause)?;
        set("fix_applied", &mut self.fix_applied, f.fix_applied)?;
        set("verification", &mut self.verification, f.verification)?;
        if let Some(impact) = f.impact
            && impact != self.impact
        {
            let shown = impact.describe().unwrap_or_else(|| "(cleared)".into());
            self.impact = impact;
            events.push(EventKind::FieldRecorded {
                field: "impact".into(),
                value: shown,
            });
        }
        Ok(())
    }

    /// Applies a patch of descriptive fields.
    pub fn patch(
        &mut self,
        patch: IncidentPatch,
        service_name: &str,
    ) -> Result<Vec<EventKind>, DomainError> {
        self.ensure_not_closed()?;
        let mut events = Vec::new();
        if let Some(s) = patch.summary {
            let s = check_text("summary", &s, MAX_SUMMARY_LEN)?;
            if s.contains('\n') {
                return Err(DomainError::invalid(
                    "summary",
                    "must be one line; put details in a note",
                ));
            }
            if s != self.summary {
                self.title = title(service_name, &s);
                self.summary = s.clone();
                events.push(EventKind::FieldRecorded {
                    field: "summary".into(),
                    value: s,
                });
            }
        }
        if let Some(p) = patch.public
            && p != self.public
        {
            self.public = p;
            events.push(EventKind::FieldRecorded {
                field: "public".into(),
                value: p.to_string(),
            });
        }
        self.record_fields(
            ResolutionFields {
                root_cause: patch.root_cause,
                fix_applied: patch.fix_applied,
                verification: patch.verification,
                impact: patch.impact,
            },
            &mut events,
        )?;
        Ok(events)
    }

    /// Moves through the lifecycle, stamping the matching time.
    pub fn transition(
        &mut self,
        to: IncidentStatus,
        fields: ResolutionFields,
        note: Option<String>,
        policies: &SeverityPolicies,
        now: OffsetDateTime,
    ) -> Result<Vec<EventKind>, DomainError> {
        let from = self.status;
        let allowed = from.allowed_next();
        if !allowed.contains(&to) {
            return Err(DomainError::InvalidTransition { from, to, allowed });
        }
        let note = note
            .map(|n| check_text("note", &n, MAX_FIELD_LEN))
            .transpose()?;
        let mut events = Vec::new();
        self.record_fields(fields, &mut events)?;
        self.status = to;
        events.insert(0, EventKind::StatusChanged { from, to, note });
        use IncidentStatus::*;
        match to {
            Investigating if from == Resolved => {
                self.resolved_at = None;
                self.next_update_due = policies.get(self.severity).next_update_after(now);
                events.push(EventKind::Reopened);
            }
            Resolved => {
                self.resolved_at = Some(now);
                self.mitigated_at.get_or_insert(now);
                self.next_update_due = None;
                events.push(EventKind::Resolved {
                    duration_secs: (now - self.detected_at).whole_seconds(),
                });
            }
            Closed => {
                self.closed_at = Some(now);
                events.push(EventKind::Closed);
            }
            _ => {}
        }
        if matches!(
            to,
            Investigating | Identified | Mitigating | Monitoring | Resolved
        ) {
            self.acknowledged_at.get_or_insert(now);
        }
        if to == Identified {
            self.identified_at.get_or_insert(now);
        }
        if to == Monitoring {
            self.mitigated_at.get_or_insert(now);
        }
        Ok(events)
    }

    /// Assigns or removes a role holder.
    pub fn assign_role(
        &mut self,
        role: Role,
        person: &str,
        remove: bool,
    ) -> Result<Vec<EventKind>, DomainError> {
        self.ensure_not_closed()?;
        let person = check_text("person", person, 200)?;
        if remove {
            if !self.roles.unassign(role, &person) {
                return Err(DomainError::invalid(
                    "person",
                    format!("{person} does not hold the role {role}"),
                ));
            }
            return Ok(vec![EventKind::RoleUnassigned { role, person }]);
        }
        let replaced = self.roles.assign(role, &person);
        if replaced.as_deref() == Some(person.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![EventKind::RoleAssigned {
            role,
            person,
            replaced,
        }])
    }

    /// Posts an update in the runbook's format and restarts the cadence clock.
    pub fn post_update(
        &mut self,
        current_action: &str,
        findings: &str,
        next_step: &str,
        policies: &SeverityPolicies,
        now: OffsetDateTime,
    ) -> Result<Vec<EventKind>, DomainError> {
        self.ensure_not_closed()?;
        let due = if self.status.is_open() {
            policies.get(self.severity).next_update_after(now)
        } else {
            None
        };
        let update = StatusUpdate {
            posted_at: now,
            status: self.status,
            current_action: check_text("current_action", current_action, MAX_FIELD_LEN)?,
            findings: check_text("findings", findings, MAX_FIELD_LEN)?,
            next_step: check_text("next_step", next_step, MAX_FIELD_LEN)?,
            next_update_due: due,
        };
        self.next_update_due = due;
        self.last_update = Some(update.clone());
        Ok(vec![EventKind::UpdatePosted { update }])
    }

    /// Records a note or an action taken. Allowed on closed incidents too: late findings belong
    /// in the record.
    pub fn add_note(&mut self, text: &str, action: bool) -> Result<Vec<EventKind>, DomainError> {
        let text = check_text("text", text, MAX_FIELD_LEN)?;
        Ok(vec![if action {
            EventKind::ActionTaken { text }
        } else {
            EventKind::Note { text }
        }])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::classify;
    use time::macros::datetime;

    pub(crate) fn declared(now: OffsetDateTime) -> Incident {
        let signals = Signals {
            users_can_access: Some(true),
            failing_percent: Some(30.0),
            recovering: Some(false),
            ..Default::default()
        };
        let c = classify(&signals, None).unwrap();
        let new = NewIncident {
            services: vec![ServiceSlug::parse_field("api", "service").unwrap()],
            primary_service_name: "API".into(),
            summary: "30% of requests failing".into(),
            severity: None,
            signals,
            reporter: "ana".into(),
            detected_at: Some(now - Duration::minutes(3)),
            public: false,
        };
        Incident::declare(1, new, c, &SeverityPolicies::default(), now)
            .unwrap()
            .0
    }

    #[test]
    fn declare_names_title_and_channel_by_the_runbook() {
        let now = datetime!(2026-01-12 00:01 UTC);
        let i = declared(now);
        assert_eq!(i.title, "INCIDENT: API - 30% of requests failing");
        // Detected three minutes before midnight: the channel carries the detection date.
        assert_eq!(i.channel, "#incident-20260111-api");
        assert_eq!(i.severity, Severity::Sev2);
        assert_eq!(i.next_update_due, Some(now + Duration::minutes(5)));
    }

    #[test]
    fn lifecycle_moves_stamp_times_and_reject_invalid_moves() {
        let p = SeverityPolicies::default();
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = declared(t0);
        let err = i
            .transition(IncidentStatus::Closed, Default::default(), None, &p, t0)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cannot move incident from declared to closed"),
            "{msg}"
        );
        assert!(
            msg.contains("investigating, identified, mitigating, monitoring, resolved"),
            "{msg}"
        );

        i.transition(
            IncidentStatus::Investigating,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(1),
        )
        .unwrap();
        assert_eq!(i.acknowledged_at, Some(t0 + Duration::minutes(1)));
        i.transition(
            IncidentStatus::Identified,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(4),
        )
        .unwrap();
        assert_eq!(i.identified_at, Some(t0 + Duration::minutes(4)));
        let ev = i
            .transition(
                IncidentStatus::Resolved,
                ResolutionFields {
                    root_cause: Some("bad deploy".into()),
                    ..Default::default()
                },
                None,
                &p,
                t0 + Duration::minutes(20),
            )
            .unwrap();
        assert_eq!(
            ev.iter().map(|e| e.name()).collect::<Vec<_>>(),
            ["status_changed", "field_recorded", "resolved"]
        );
        assert_eq!(i.resolved_at, Some(t0 + Duration::minutes(20)));
        assert_eq!(i.next_update_due, None);
        assert_eq!(i.root_cause.as_deref(), Some("bad deploy"));

        // Reopen clears resolution and restarts the cadence.
        i.transition(
            IncidentStatus::Investigating,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(30),
        )
        .unwrap();
        assert_eq!(i.resolved_at, None);
        assert_eq!(i.next_update_due, Some(t0 + Duration::minutes(35)));
        i.transition(
            IncidentStatus::Resolved,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(40),
        )
        .unwrap();
        i.transition(
            IncidentStatus::Closed,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(50),
        )
        .unwrap();
        let err = i
            .transition(
                IncidentStatus::Investigating,
                Default::default(),
                None,
                &p,
                t0,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("nothing (closed is final)"),
            "{err}"
        );
        assert_eq!(
            i.post_update("a", "b", "c", &p, t0).unwrap_err(),
            DomainError::Closed
        );
    }

    #[test]
    fn allowed_moves() {
        use IncidentStatus::*;
        assert_eq!(Monitoring.allowed_next(), vec![Investigating, Resolved]);
        assert_eq!(Resolved.allowed_next(), vec![Investigating, Closed]);
        assert!(!Investigating.allowed_next().contains(&Investigating));
        assert!(!Declared.allowed_next().contains(&Closed));
    }

    #[test]
    fn updates_restart_the_cadence_clock() {
        let p = SeverityPolicies::default();
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = declared(t0);
        i.post_update(
            "Checking logs",
            "CrashLoopBackOff",
            "Review deploy",
            &p,
            t0 + Duration::minutes(3),
        )
        .unwrap();
        assert_eq!(i.next_update_due, Some(t0 + Duration::minutes(8)));
        let err = i.post_update(" ", "x", "y", &p, t0).unwrap_err();
        assert!(err.to_string().starts_with("current_action"), "{err}");
    }

    #[test]
    fn raising_severity_restarts_the_faster_clock() {
        let p = SeverityPolicies::default();
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = declared(t0);
        let c = classify(&Signals::default(), Some(Severity::Sev1)).unwrap();
        i.change_severity(
            c,
            None,
            Some("spreading".into()),
            &p,
            t0 + Duration::minutes(1),
        )
        .unwrap();
        assert_eq!(i.next_update_due, Some(t0 + Duration::minutes(3)));
        assert_eq!(
            i.missing_roles(),
            vec![
                Role::Commander,
                Role::CommunicationLead,
                Role::OnCallManager
            ]
        );
    }
}
