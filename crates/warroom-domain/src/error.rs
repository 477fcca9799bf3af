//! Errors raised when a request breaks a rule of the incident process.

use crate::incident::IncidentStatus;

/// A request the domain refuses. Every variant names what is wrong and how to fix it, because
/// these messages reach people directly through the API and the CLI.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        /// The field path, as the user wrote it (`signals.failing_percent`).
        field: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// The lifecycle does not allow this move.
    #[error(
        "cannot move incident from {from} to {to}; allowed from {from}: {}",
        allowed_list(.allowed)
    )]
    InvalidTransition {
        /// Current status.
        from: IncidentStatus,
        /// Requested status.
        to: IncidentStatus,
        /// What the lifecycle allows from `from`.
        allowed: Vec<IncidentStatus>,
    },
    /// A declare with neither an explicit severity nor any signal for the decision tree.
    #[error(
        "severity: give either an explicit severity (1-4) or at least one signal \
         (users_can_access, failing_percent, recovering, user_action_or_data_loss, latency_ratio)"
    )]
    NoSeverityBasis,
    /// A checklist item id that does not exist.
    #[error(
        "checklist item `{0}` does not exist; list the items with GET /api/v1/incidents/{{number}}/checklists"
    )]
    UnknownChecklistItem(String),
    /// The item is ticked automatically from recorded state and cannot be ticked by hand.
    #[error("checklist item `{item}` is ticked automatically when {condition}")]
    AutomaticChecklistItem {
        /// The item id.
        item: String,
        /// What state ticks it.
        condition: String,
    },
    /// Tried to change something on a closed incident.
    #[error("incident is closed; reopen is only possible from resolved, so record a note instead")]
    Closed,
}

fn allowed_list(allowed: &[IncidentStatus]) -> String {
    if allowed.is_empty() {
        "nothing (closed is final)".to_owned()
    } else {
        allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl DomainError {
    /// Shorthand for a field validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
