//! The pure heart of warroom: what an incident is and what the runbook says about it.
//!
//! Nothing here does IO, spawns tasks or reads the clock. Every function that depends on time
//! takes `now` as an argument, so the whole incident process can be replayed and tested
//! deterministically. Every other crate of the workspace depends on this one, never the other
//! way round.
#![deny(missing_docs)]

pub mod alert;
pub mod checklist;
pub mod classifier;
pub mod detection;
pub mod error;
pub mod escalation;
pub mod incident;
pub mod messages;
pub mod monitor;
pub mod notify;
pub mod oncall;
pub mod roles;
pub mod service;
pub mod severity;
pub mod timefmt;
pub mod timeline;
pub mod window;

pub use classifier::{Classification, Signals, TraceStep, classify};
pub use error::DomainError;
pub use incident::{Impact, Incident, IncidentNumber, IncidentStatus, NewIncident, StatusUpdate};
pub use roles::{Role, Roles};
pub use service::ServiceSlug;
pub use severity::{Severity, SeverityPolicies, SeverityPolicy};
pub use timeline::{EventKind, TimelineEvent};
