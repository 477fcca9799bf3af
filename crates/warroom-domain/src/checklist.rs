//! The runbook's checklists, with the items recorded state already proves ticked automatically.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    DomainError, EventKind, Incident, IncidentStatus, Role, Severity, incident::ChecklistTick,
};

/// Which list an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Step 4, initial response actions for the incident's severity.
    InitialActions,
    /// Step 7, recovery verification.
    RecoveryVerification,
    /// Post-incident, within 30 minutes of resolution.
    Within30Minutes,
    /// Post-incident, within 24 hours of resolution.
    Within24Hours,
    /// Post-incident, within 1 week of resolution.
    Within1Week,
    /// The 13-item incident checklist.
    Incident,
}

impl ListKind {
    /// Human title.
    pub fn title(self) -> &'static str {
        match self {
            ListKind::InitialActions => "Initial response actions",
            ListKind::RecoveryVerification => "Recovery verification",
            ListKind::Within30Minutes => "Post-incident: within 30 minutes",
            ListKind::Within24Hours => "Post-incident: within 24 hours",
            ListKind::Within1Week => "Post-incident: within 1 week",
            ListKind::Incident => "Incident checklist",
        }
    }

    fn due_after_resolution(self) -> Option<Duration> {
        match self {
            ListKind::Within30Minutes => Some(Duration::minutes(30)),
            ListKind::Within24Hours => Some(Duration::hours(24)),
            ListKind::Within1Week => Some(Duration::weeks(1)),
            _ => None,
        }
    }
}

/// State that ticks an item by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auto {
    Always,
    Closed,
    Identified,
    FixRecorded,
    VerificationRecorded,
    RootCauseRecorded,
    UpdatePosted,
}

impl Auto {
    fn holds(self, i: &Incident) -> bool {
        match self {
            Auto::Always => true,
            Auto::Closed => i.status == IncidentStatus::Closed,
            Auto::Identified => i.identified_at.is_some(),
            Auto::FixRecorded => i.fix_applied.is_some(),
            Auto::VerificationRecorded => i.verification.is_some(),
            Auto::RootCauseRecorded => i.root_cause.is_some(),
            Auto::UpdatePosted => i.last_update.is_some(),
        }
    }

    fn condition(self) -> &'static str {
        match self {
            Auto::Always => "the incident exists",
            Auto::Closed => "the incident is closed",
            Auto::Identified => "the incident reaches `identified`",
            Auto::FixRecorded => "a fix_applied is recorded",
            Auto::VerificationRecorded => "a verification is recorded",
            Auto::RootCauseRecorded => "a root_cause is recorded",
            Auto::UpdatePosted => "an update is posted",
        }
    }
}

struct ItemDef {
    id: &'static str,
    list: ListKind,
    text: &'static str,
    owner: Role,
    auto: Option<Auto>,
}

const fn item(
    id: &'static str,
    list: ListKind,
    text: &'static str,
    owner: Role,
    auto: Option<Auto>,
) -> ItemDef {
    ItemDef {
        id,
        list,
        text,
        owner,
        auto,
    }
}

use ListKind::*;
use Role::{
    Commander as Ic, CommunicationLead as Comms, OnCallManager as Ocm, TechnicalResponder as Tech,
};

const SEV1_INITIAL: &[ItemDef] = &[
    item(
        "initial.page_senior",
        InitialActions,
        "Page a senior engineer if not already responding",
        Ocm,
        None,
    ),
    item(
        "initial.contact_infra",
        InitialActions,
        "Contact the infrastructure team",
        Ocm,
        None,
    ),
    item(
        "initial.notify_managers",
        InitialActions,
        "Notify product and support managers",
        Comms,
        None,
    ),
    item(
        "initial.failover",
        InitialActions,
        "Buy time: fail over to a backup environment or another region if available",
        Tech,
        None,
    ),
    item(
        "initial.save_logs",
        InitialActions,
        "Save current logs and pod events",
        Tech,
        None,
    ),
    item(
        "initial.record_metrics",
        InitialActions,
        "Record current metrics and screenshot the dashboards",
        Tech,
        None,
    ),
    item(
        "initial.first_update",
        InitialActions,
        "Post the first update to the incident channel (then every 2 minutes)",
        Comms,
        Some(Auto::UpdatePosted),
    ),
];
const SEV2_INITIAL: &[ItemDef] = &[
    item(
        "initial.alert_on_call",
        InitialActions,
        "Alert the on-call team",
        Ic,
        None,
    ),
    item(
        "initial.gather_diagnostics",
        InitialActions,
        "Gather diagnostics: logs, pod events, metrics",
        Tech,
        None,
    ),
    item(
        "initial.start_investigation",
        InitialActions,
        "Start the investigation",
        Tech,
        Some(Auto::Identified),
    ),
    item(
        "initial.first_update",
        InitialActions,
        "Post the first update (then every 5 minutes)",
        Comms,
        Some(Auto::UpdatePosted),
    ),
];
const SEV3_INITIAL: &[ItemDef] = &[
    item(
        "initial.ticket",
        InitialActions,
        "Create a ticket for later investigation",
        Ic,
        Some(Auto::Always),
    ),
    item(
        "initial.monitor",
        InitialActions,
        "Monitor closely",
        Tech,
        None,
    ),
    item(
        "initial.gather_diagnostics",
        InitialActions,
        "Gather diagnostics",
        Tech,
        None,
    ),
    item(
        "initial.plan_fix",
        InitialActions,
        "Plan the fix during normal hours if not urgent",
        Ic,
        None,
    ),
];
const SEV4_INITIAL: &[ItemDef] = &[item(
    "initial.team_message",
    InitialActions,
    "Post one message to the team channel",
    Comms,
    Some(Auto::UpdatePosted),
)];

const COMMON: &[ItemDef] = &[
    item(
        "verify.pods_ready",
        RecoveryVerification,
        "All pods Running and Ready",
        Tech,
        None,
    ),
    item(
        "verify.endpoints",
        RecoveryVerification,
        "Every service endpoint has addresses",
        Tech,
        None,
    ),
    item(
        "verify.health",
        RecoveryVerification,
        "Health endpoints return 200 OK",
        Tech,
        None,
    ),
    item(
        "verify.errors",
        RecoveryVerification,
        "Few or no errors in the logs of the last 2 minutes",
        Tech,
        None,
    ),
    item(
        "verify.resources",
        RecoveryVerification,
        "CPU and memory back to normal, not spiking",
        Tech,
        None,
    ),
    item(
        "verify.events",
        RecoveryVerification,
        "No new warnings in cluster events",
        Tech,
        None,
    ),
    item(
        "post30.close_ticket",
        Within30Minutes,
        "Close the incident ticket",
        Ic,
        Some(Auto::Closed),
    ),
    item(
        "post30.final_update",
        Within30Minutes,
        "Post the final update to the incident channel",
        Comms,
        None,
    ),
    item(
        "post30.save_diagnostics",
        Within30Minutes,
        "Save all logs and diagnostics",
        Tech,
        None,
    ),
    item(
        "post30.postmortem_ticket",
        Within30Minutes,
        "Create the post-mortem ticket",
        Ic,
        None,
    ),
    item(
        "post30.notify_team",
        Within30Minutes,
        "Tell the team the incident is resolved",
        Comms,
        None,
    ),
    item(
        "post24.schedule_postmortem",
        Within24Hours,
        "Schedule the post-mortem meeting",
        Ic,
        None,
    ),
    item(
        "post24.root_cause",
        Within24Hours,
        "Identify the root cause",
        Ic,
        Some(Auto::RootCauseRecorded),
    ),
    item(
        "post24.preventive_measures",
        Within24Hours,
        "Document preventive measures",
        Ic,
        None,
    ),
    item(
        "post24.action_owners",
        Within24Hours,
        "Name an owner for each action item",
        Ic,
        None,
    ),
    item(
        "post24.improvement_tickets",
        Within24Hours,
        "Create tickets for improvements",
        Ic,
        None,
    ),
    item(
        "post1w.implement_fixes",
        Within1Week,
        "Implement the identified fixes",
        Tech,
        None,
    ),
    item(
        "post1w.monitoring",
        Within1Week,
        "Update monitoring and alerting",
        Tech,
        None,
    ),
    item(
        "post1w.runbooks",
        Within1Week,
        "Update runbooks with the findings",
        Ic,
        None,
    ),
    item(
        "post1w.training",
        Within1Week,
        "Run team training if needed",
        Ic,
        None,
    ),
    item(
        "post1w.close_postmortem",
        Within1Week,
        "Close the post-mortem ticket",
        Ic,
        None,
    ),
    item(
        "incident.severity",
        Incident,
        "Incident severity determined",
        Ic,
        Some(Auto::Always),
    ),
    item(
        "incident.ticket",
        Incident,
        "Ticket created and updated",
        Ic,
        Some(Auto::Always),
    ),
    item(
        "incident.channel",
        Incident,
        "#incident channel created",
        Comms,
        Some(Auto::Always),
    ),
    item(
        "incident.on_call_alerted",
        Incident,
        "On-call team alerted",
        Ocm,
        None,
    ),
    item(
        "incident.diagnosis",
        Incident,
        "Initial diagnosis completed",
        Tech,
        Some(Auto::Identified),
    ),
    item(
        "incident.fix",
        Incident,
        "Fix identified and implemented",
        Tech,
        Some(Auto::FixRecorded),
    ),
    item(
        "incident.fix_verified",
        Incident,
        "Fix verified working",
        Tech,
        Some(Auto::VerificationRecorded),
    ),
    item(
        "incident.closed",
        Incident,
        "Incident closed and communicated",
        Ic,
        Some(Auto::Closed),
    ),
    item(
        "incident.postmortem_scheduled",
        Incident,
        "Post-mortem scheduled",
        Ic,
        None,
    ),
    item("incident.debriefed", Incident, "Team debriefed", Ic, None),
    item(
        "incident.root_cause",
        Incident,
        "Root cause documented",
        Ic,
        Some(Auto::RootCauseRecorded),
    ),
    item(
        "incident.prevention",
        Incident,
        "Prevention measures identified",
        Ic,
        None,
    ),
    item(
        "incident.followup_tickets",
        Incident,
        "Tickets created for follow-up",
        Ic,
        None,
    ),
];

fn initial(sev: Severity) -> &'static [ItemDef] {
    match sev {
        Severity::Sev1 => SEV1_INITIAL,
        Severity::Sev2 => SEV2_INITIAL,
        Severity::Sev3 => SEV3_INITIAL,
        Severity::Sev4 => SEV4_INITIAL,
    }
}

fn items(sev: Severity) -> impl Iterator<Item = &'static ItemDef> {
    initial(sev).iter().chain(COMMON.iter())
}

/// How an item got ticked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Done {
    /// Recorded state proves it.
    Automatic {
        /// Which state.
        condition: String,
    },
    /// A person ticked it.
    Person {
        /// Who.
        who: String,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// One item as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChecklistItem {
    /// Stable id, used to tick it.
    pub id: String,
    /// Which list.
    pub list: ListKind,
    /// What to do.
    pub text: String,
    /// The role that owns it.
    pub owner_role: Role,
    /// The person holding that role (the commander when the role is empty), if anyone.
    pub owner: Option<String>,
    /// Ticked by state rather than by people.
    pub automatic: bool,
    /// Done, and how.
    pub done: Option<Done>,
    /// Due time, for post-incident items once resolved.
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    /// Past due and not done.
    pub overdue: bool,
}

fn owner_of(i: &Incident, role: Role) -> Option<String> {
    let holder = match role {
        Role::Commander => i.roles.commander.clone(),
        Role::CommunicationLead => i.roles.communication_lead.clone(),
        Role::OnCallManager => i.roles.on_call_manager.clone(),
        Role::TechnicalResponder => i.roles.technical_responders.first().cloned(),
    };
    holder.or_else(|| i.roles.commander.clone())
}

/// Every checklist of the incident, evaluated at `now`.
pub fn evaluate(i: &Incident, now: OffsetDateTime) -> Vec<ChecklistItem> {
    items(i.severity)
        .map(|d| {
            let done = match d.auto {
                Some(a) if a.holds(i) => Some(Done::Automatic {
                    condition: a.condition().to_owned(),
                }),
                _ => i
                    .checklist_ticks
                    .iter()
                    .find(|t| t.item == d.id)
                    .map(|t| Done::Person {
                        who: t.by.clone(),
                        at: t.at,
                    }),
            };
            let due_at = d
                .list
                .due_after_resolution()
                .and_then(|after| i.resolved_at.map(|r| r + after));
            ChecklistItem {
                id: d.id.to_owned(),
                list: d.list,
                text: d.text.to_owned(),
                owner_role: d.owner,
                owner: owner_of(i, d.owner),
                automatic: d.auto.is_some(),
                overdue: done.is_none() && due_at.is_some_and(|due| now > due),
                done,
                due_at,
            }
        })
        .collect()
}

/// A person ticks an item. Ticking twice is a no-op; automatic items refuse the tick.
pub fn tick(
    i: &mut Incident,
    item_id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<Vec<EventKind>, DomainError> {
    let Some(def) = items(i.severity).find(|d| d.id == item_id) else {
        return Err(DomainError::UnknownChecklistItem(item_id.to_owned()));
    };
    if let Some(a) = def.auto {
        return Err(DomainError::AutomaticChecklistItem {
            item: item_id.to_owned(),
            condition: a.condition().to_owned(),
        });
    }
    if i.checklist_ticks.iter().any(|t| t.item == item_id) {
        return Ok(vec![]);
    }
    i.checklist_ticks.push(ChecklistTick {
        item: item_id.to_owned(),
        by: by.to_owned(),
        at: now,
    });
    Ok(vec![EventKind::ChecklistTicked {
        item: item_id.to_owned(),
        text: def.text.to_owned(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeverityPolicies;
    use time::macros::datetime;

    #[test]
    fn the_incident_checklist_has_thirteen_items_and_state_ticks_some() {
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = crate::incident::tests::declared(t0);
        let all = evaluate(&i, t0);
        let incident: Vec<_> = all
            .iter()
            .filter(|c| c.list == ListKind::Incident)
            .collect();
        assert_eq!(incident.len(), 13);
        let done: Vec<_> = incident
            .iter()
            .filter(|c| c.done.is_some())
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            done,
            ["incident.severity", "incident.ticket", "incident.channel"]
        );

        i.root_cause = Some("x".into());
        let all = evaluate(&i, t0);
        assert!(
            all.iter()
                .find(|c| c.id == "incident.root_cause")
                .unwrap()
                .done
                .is_some()
        );
    }

    #[test]
    fn post_incident_items_are_due_from_resolution_with_owners() {
        let p = SeverityPolicies::default();
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = crate::incident::tests::declared(t0);
        i.assign_role(Role::Commander, "ana", false).unwrap();
        assert!(evaluate(&i, t0).iter().all(|c| c.due_at.is_none()));
        i.transition(
            IncidentStatus::Resolved,
            Default::default(),
            None,
            &p,
            t0 + Duration::minutes(10),
        )
        .unwrap();
        let later = t0 + Duration::hours(2);
        let all = evaluate(&i, later);
        let save = all
            .iter()
            .find(|c| c.id == "post30.save_diagnostics")
            .unwrap();
        assert_eq!(save.due_at, Some(t0 + Duration::minutes(40)));
        assert!(save.overdue);
        let sched = all
            .iter()
            .find(|c| c.id == "post24.schedule_postmortem")
            .unwrap();
        assert_eq!(
            sched.due_at,
            Some(t0 + Duration::minutes(10) + Duration::hours(24))
        );
        assert!(!sched.overdue);
        assert_eq!(sched.owner.as_deref(), Some("ana"));
    }

    #[test]
    fn ticking() {
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = crate::incident::tests::declared(t0);
        let ev = tick(&mut i, "incident.on_call_alerted", "bo", t0).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(
            tick(&mut i, "incident.on_call_alerted", "bo", t0)
                .unwrap()
                .is_empty()
        );
        let d = evaluate(&i, t0)
            .into_iter()
            .find(|c| c.id == "incident.on_call_alerted")
            .unwrap()
            .done;
        assert_eq!(
            d,
            Some(Done::Person {
                who: "bo".into(),
                at: t0
            })
        );
        assert!(matches!(
            tick(&mut i, "incident.closed", "bo", t0),
            Err(DomainError::AutomaticChecklistItem { .. })
        ));
        assert!(matches!(
            tick(&mut i, "nope", "bo", t0),
            Err(DomainError::UnknownChecklistItem(_))
        ));
    }

    #[test]
    fn initial_actions_follow_severity() {
        let t0 = datetime!(2026-01-12 14:32 UTC);
        let mut i = crate::incident::tests::declared(t0);
        let n2 = evaluate(&i, t0)
            .iter()
            .filter(|c| c.list == ListKind::InitialActions)
            .count();
        i.severity = Severity::Sev1;
        let n1 = evaluate(&i, t0)
            .iter()
            .filter(|c| c.list == ListKind::InitialActions)
            .count();
        assert_eq!((n2, n1), (4, 7));
    }
}
