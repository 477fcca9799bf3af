//! The append-only incident timeline. Nothing is edited in place; a correction is a new event.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{IncidentStatus, Role, Severity, StatusUpdate, TraceStep, classifier::SeverityBasis};

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The incident was declared.
    Declared {
        /// Title at declaration.
        title: String,
        /// Severity at declaration.
        severity: Severity,
        /// How it was decided.
        basis: SeverityBasis,
        /// The decision tree's trace.
        trace: Vec<TraceStep>,
        /// Affected services.
        services: Vec<String>,
    },
    /// Severity moved.
    SeverityChanged {
        /// Before.
        from: Severity,
        /// After.
        to: Severity,
        /// How the new one was decided.
        basis: SeverityBasis,
        /// The decision tree's trace.
        trace: Vec<TraceStep>,
        /// Why, in the words of whoever changed it.
        reason: Option<String>,
    },
    /// The signals say the incident could be less severe. Only a suggestion: lowering severity
    /// stands down people and slows the update cadence, so a person decides.
    SeverityDowngradeSuggested {
        /// The severity now.
        from: Severity,
        /// What the signals suggest.
        to: Severity,
        /// The decision tree's trace for the suggestion.
        trace: Vec<TraceStep>,
        /// What the suggestion was decided from.
        reason: String,
    },
    /// Lifecycle status moved.
    StatusChanged {
        /// Before.
        from: IncidentStatus,
        /// After.
        to: IncidentStatus,
        /// An optional note given with the move.
        note: Option<String>,
    },
    /// Somebody took a role.
    RoleAssigned {
        /// The role.
        role: Role,
        /// Who.
        person: String,
        /// Who held it before, for single-holder roles.
        replaced: Option<String>,
    },
    /// Somebody left a role.
    RoleUnassigned {
        /// The role.
        role: Role,
        /// Who.
        person: String,
    },
    /// A status update was posted in the runbook's format.
    UpdatePosted {
        /// The update.
        update: StatusUpdate,
    },
    /// Free text.
    Note {
        /// Text.
        text: String,
    },
    /// Something was done to the system (a rollback, a restart, a scale-up).
    ActionTaken {
        /// What was done.
        text: String,
    },
    /// The incident was escalated.
    Escalated {
        /// To whom.
        to: String,
        /// Why.
        reason: String,
    },
    /// A descriptive field was recorded or corrected.
    FieldRecorded {
        /// Field name (`root_cause`, `fix_applied`, `verification`, `impact`, `public`, `summary`, `reporter`).
        field: String,
        /// New value, as text.
        value: String,
    },
    /// Resolution.
    Resolved {
        /// Seconds from detection to resolution.
        duration_secs: i64,
    },
    /// Reopened after resolution.
    Reopened,
    /// Closed for good.
    Closed,
    /// A notification reached its channel.
    NotificationDelivered {
        /// Channel id.
        channel: String,
        /// What was sent.
        notification: crate::notify::NotificationKind,
        /// Attempts it took.
        attempts: i64,
    },
    /// A notification could not be delivered and was given up: a warning on the incident.
    NotificationFailed {
        /// Channel id.
        channel: String,
        /// What was not sent.
        notification: crate::notify::NotificationKind,
        /// Why.
        error: String,
    },
    /// A person ticked a checklist item.
    ChecklistTicked {
        /// Item id.
        item: String,
        /// Item text, for readers of the raw timeline.
        text: String,
    },
}

impl EventKind {
    /// The snake_case kind name, as in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Declared { .. } => "declared",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::SeverityDowngradeSuggested { .. } => "severity_downgrade_suggested",
            EventKind::StatusChanged { .. } => "status_changed",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::RoleUnassigned { .. } => "role_unassigned",
            EventKind::UpdatePosted { .. } => "update_posted",
            EventKind::Note { .. } => "note",
            EventKind::ActionTaken { .. } => "action_taken",
            EventKind::Escalated { .. } => "escalated",
            EventKind::FieldRecorded { .. } => "field_recorded",
            EventKind::Resolved { .. } => "resolved",
            EventKind::Reopened => "reopened",
            EventKind::Closed => "closed",
            EventKind::ChecklistTicked { .. } => "checklist_ticked",
            EventKind::NotificationDelivered { .. } => "notification_delivered",
            EventKind::NotificationFailed { .. } => "notification_failed",
        }
    }

    /// One line for humans: what the CLI and the post-mortem timeline show.
    pub fn describe(&self) -> String {
        match self {
            EventKind::Declared {
                title,
                severity,
                basis,
                ..
            } => {
                let how = match basis {
                    SeverityBasis::DecisionTree => "by the decision tree",
                    SeverityBasis::Explicit => "by the declarer",
                };
                format!("Declared \"{title}\" as {severity} ({how})")
            }
            EventKind::SeverityChanged {
                from, to, reason, ..
            } => match reason {
                Some(r) => format!("Severity changed {from} → {to}: {r}"),
                None => format!("Severity changed {from} → {to}"),
            },
            EventKind::SeverityDowngradeSuggested {
                from, to, reason, ..
            } => format!(
                "Suggestion: severity could be lowered {from} → {to} ({reason}); not applied, a person decides (`warroom severity <n> --severity {}`)",
                to.level()
            ),
            EventKind::StatusChanged { from, to, note } => match note {
                Some(n) => format!("Status {from} → {to}: {n}"),
                None => format!("Status {from} → {to}"),
            },
            EventKind::RoleAssigned {
                role,
                person,
                replaced,
            } => match replaced {
                Some(p) if p != person => format!("{person} is now {role} (was {p})"),
                _ => format!("{person} is now {role}"),
            },
            EventKind::RoleUnassigned { role, person } => format!("{person} is no longer {role}"),
            EventKind::UpdatePosted { update } => format!(
                "Update: {} | action: {} | findings: {} | next: {}",
                update.status, update.current_action, update.findings, update.next_step
            ),
            EventKind::Note { text } => format!("Note: {text}"),
            EventKind::ActionTaken { text } => format!("Action: {text}"),
            EventKind::Escalated { to, reason } => format!("Escalated to {to}: {reason}"),
            EventKind::FieldRecorded { field, value } => {
                format!("{} recorded: {value}", field.replace('_', " "))
            }
            EventKind::Resolved { duration_secs } => format!(
                "Resolved after {}",
                crate::timefmt::human_duration(time::Duration::seconds(*duration_secs))
            ),
            EventKind::Reopened => "Reopened".to_owned(),
            EventKind::Closed => "Closed".to_owned(),
            EventKind::ChecklistTicked { text, .. } => format!("Checklist: {text} ✔"),
            EventKind::NotificationDelivered {
                channel,
                notification,
                attempts,
            } => {
                format!(
                    "Notified {channel} ({notification:?}) after {} attempt(s)",
                    attempts + 1
                )
            }
            EventKind::NotificationFailed {
                channel,
                notification,
                error,
            } => {
                format!("WARNING: could not notify {channel} ({notification:?}): {error}")
            }
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Store-assigned, increasing.
    pub id: i64,
    /// The incident number.
    pub incident: i64,
    /// When, UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who (token name, or `warroom` for automation).
    pub author: String,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}
