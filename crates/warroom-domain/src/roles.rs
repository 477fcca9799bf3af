//! The runbook's incident roles.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{DomainError, Severity};

/// A role in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Overall control; exactly one.
    Commander,
    /// Investigates and fixes; any number.
    TechnicalResponder,
    /// Owns updates; required for Sev1.
    CommunicationLead,
    /// Pages more people, tracks the timeline; required for Sev1.
    OnCallManager,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [
        Role::Commander,
        Role::TechnicalResponder,
        Role::CommunicationLead,
        Role::OnCallManager,
    ];

    /// Snake-case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commander => "commander",
            Role::TechnicalResponder => "technical_responder",
            Role::CommunicationLead => "communication_lead",
            Role::OnCallManager => "on_call_manager",
        }
    }

    /// Parses the API name (dashes accepted too), naming the field on error.
    pub fn parse(raw: &str) -> Result<Role, DomainError> {
        let norm = raw.trim().to_ascii_lowercase().replace('-', "_");
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == norm || (norm == "responder" && *r == Role::TechnicalResponder))
            .ok_or_else(|| {
                DomainError::invalid(
                    "role",
                    format!("`{raw}` is not a role; use commander, technical_responder, communication_lead or on_call_manager"),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds which role on one incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Roles {
    /// Incident commander.
    pub commander: Option<String>,
    /// Technical responders, in the order they joined.
    pub technical_responders: Vec<String>,
    /// Communication lead.
    pub communication_lead: Option<String>,
    /// On-call manager.
    pub on_call_manager: Option<String>,
}

impl Roles {
    /// Assigns a person. Single-holder roles are replaced; returns the previous holder.
    /// Adding a responder twice is a no-op (returns `Some(person)` to say nothing changed).
    pub fn assign(&mut self, role: Role, person: &str) -> Option<String> {
        let person = person.to_owned();
        match role {
            Role::Commander => self.commander.replace(person),
            Role::CommunicationLead => self.communication_lead.replace(person),
            Role::OnCallManager => self.on_call_manager.replace(person),
            Role::TechnicalResponder => {
                if self.technical_responders.contains(&person) {
                    Some(person)
                } else {
                    self.technical_responders.push(person);
                    None
                }
            }
        }
    }

    /// Removes a person from a role; false when they did not hold it.
    pub fn unassign(&mut self, role: Role, person: &str) -> bool {
        let slot = match role {
            Role::Commander => &mut self.commander,
            Role::CommunicationLead => &mut self.communication_lead,
            Role::OnCallManager => &mut self.on_call_manager,
            Role::TechnicalResponder => {
                let before = self.technical_responders.len();
                self.technical_responders.retain(|p| p != person);
                return before != self.technical_responders.len();
            }
        };
        if slot.as_deref() == Some(person) {
            *slot = None;
            true
        } else {
            false
        }
    }

    /// Roles the runbook requires at this severity that nobody holds yet.
    /// Every incident needs a commander; Sev1 also a communication lead and an on-call manager.
    pub fn missing(&self, severity: Severity) -> Vec<Role> {
        let mut missing = Vec::new();
        if self.commander.is_none() {
            missing.push(Role::Commander);
        }
        if severity == Severity::Sev1 {
            if self.communication_lead.is_none() {
                missing.push(Role::CommunicationLead);
            }
            if self.on_call_manager.is_none() {
                missing.push(Role::OnCallManager);
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sev1_requires_communication_lead_and_on_call_manager() {
        let mut r = Roles::default();
        assert_eq!(r.missing(Severity::Sev2), vec![Role::Commander]);
        assert_eq!(
            r.missing(Severity::Sev1),
            vec![
                Role::Commander,
                Role::CommunicationLead,
                Role::OnCallManager
            ]
        );
        r.assign(Role::Commander, "ana");
        r.assign(Role::CommunicationLead, "bo");
        assert_eq!(r.missing(Severity::Sev1), vec![Role::OnCallManager]);
        r.assign(Role::OnCallManager, "cy");
        assert!(r.missing(Severity::Sev1).is_empty());
    }

    #[test]
    fn one_commander_many_responders() {
        let mut r = Roles::default();
        assert_eq!(r.assign(Role::Commander, "ana"), None);
        assert_eq!(r.assign(Role::Commander, "bo"), Some("ana".into()));
        r.assign(Role::TechnicalResponder, "x");
        r.assign(Role::TechnicalResponder, "y");
        r.assign(Role::TechnicalResponder, "x");
        assert_eq!(r.technical_responders, vec!["x", "y"]);
        assert!(r.unassign(Role::TechnicalResponder, "x"));
        assert!(!r.unassign(Role::Commander, "ana"));
        assert_eq!(Role::parse("on-call-manager").unwrap(), Role::OnCallManager);
        assert!(
            Role::parse("boss")
                .unwrap_err()
                .to_string()
                .starts_with("role:")
        );
    }
}
