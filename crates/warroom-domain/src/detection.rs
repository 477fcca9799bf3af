//! From monitors to incidents: a DOWN or UP transition becomes an alert, so that checks and
//! Prometheus alerts share one path into incidents (grouping, severity, paging, recovery).
//!
//! The alert's severity comes from the decision tree over the service's own monitors: users can
//! access the service while any of its user-facing monitors is up, and the failing share is the
//! share of its monitors that are down.

use std::collections::BTreeMap;
use time::OffsetDateTime;

use crate::{
    Severity, Signals,
    alert::{Alert, LabelSet, fingerprint},
    classify,
    monitor::{Monitor, MonitorStatus},
};

/// The label values the default severity mapping reads, by severity.
fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "critical",
        Severity::Sev2 => "major",
        Severity::Sev3 => "warning",
        Severity::Sev4 => "info",
    }
}

/// What every monitor last said.
#[derive(Debug, Clone, Default)]
pub struct MonitorBoard {
    monitors: BTreeMap<String, (Monitor, MonitorStatus)>,
}

impl MonitorBoard {
    /// A board of monitors, all pending.
    pub fn new(monitors: &[Monitor]) -> Self {
        MonitorBoard {
            monitors: monitors
                .iter()
                .map(|m| (m.id.clone(), (m.clone(), MonitorStatus::Pending)))
                .collect(),
        }
    }

    /// The decision tree's signals for one service, from its monitors.
    pub fn signals(&self, service: &str) -> Signals {
        let of: Vec<&(Monitor, MonitorStatus)> = self
            .monitors
            .values()
            .filter(|(m, _)| m.service.as_str() == service)
            .collect();
        let down = of.iter().filter(|(_, s)| *s == MonitorStatus::Down).count();
        let user_facing: Vec<&&(Monitor, MonitorStatus)> =
            of.iter().filter(|(m, _)| m.user_facing).collect();
        Signals {
            users_can_access: if user_facing.is_empty() {
                None
            } else {
                Some(user_facing.iter().any(|(_, s)| *s != MonitorStatus::Down))
            },
            failing_percent: if of.is_empty() {
                None
            } else {
                Some(down as f64 * 100.0 / of.len() as f64)
            },
            ..Default::default()
        }
    }

    /// Records a monitor's new status; returns the alert when it went DOWN (firing) or came back
    /// UP from DOWN (resolved).
    pub fn transition(
        &mut self,
        monitor_id: &str,
        to: MonitorStatus,
        detail: &str,
        now: OffsetDateTime,
    ) -> Option<Alert> {
        let (monitor, status) = self.monitors.get_mut(monitor_id)?;
        let from = *status;
        *status = to;
        let monitor = monitor.clone();
        let firing = match (from, to) {
            (_, MonitorStatus::Down) if from != MonitorStatus::Down => true,
            (MonitorStatus::Down, MonitorStatus::Up) => false,
            _ => return None,
        };
        let signals = self.signals(monitor.service.as_str());
        // No user-facing monitor and no failures known: the tree cannot say; a single failing
        // internal check is a team matter, not a page.
        let severity = classify(&signals, None)
            .map(|c| c.severity)
            .unwrap_or(Severity::Sev3);
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "MonitorDown".into());
        labels.insert("monitor".into(), monitor.id.clone());
        labels.insert("service".into(), monitor.service.to_string());
        labels.insert("severity".into(), severity_label(severity).into());
        let mut annotations = LabelSet::new();
        annotations.insert("summary".into(), format!("{} is down", monitor.name));
        annotations.insert("description".into(), detail.to_owned());
        Some(Alert {
            fingerprint: fingerprint(&identity(&monitor)),
            labels,
            annotations,
            starts_at: now,
            ends_at: if firing { None } else { Some(now) },
            generator_url: None,
        })
    }
}

/// The labels that identify a monitor's alert; severity is left out so that a change of
/// severity is the same alert, not a new one.
fn identity(m: &Monitor) -> LabelSet {
    let mut l = LabelSet::new();
    l.insert("alertname".into(), "MonitorDown".into());
    l.insert("monitor".into(), m.id.clone());
    l.insert("service".into(), m.service.to_string());
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{MonitorSpec, validate_monitors};
    use time::macros::datetime;

    fn monitors() -> Vec<Monitor> {
        let spec = |id: &str, user_facing: bool| -> MonitorSpec { toml_like(id, user_facing) };
        validate_monitors(&[
            spec("web", true),
            spec("api-health", true),
            spec("worker", false),
        ])
        .unwrap()
    }

    fn toml_like(id: &str, user_facing: bool) -> MonitorSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "service": "api", "user_facing": user_facing, "interval_secs": 30,
            "check": { "kind": "tcp", "host": "127.0.0.1", "port": 1 }
        }))
        .unwrap()
    }

    #[test]
    fn down_fires_up_resolves_and_severity_follows_the_tree() {
        let t = datetime!(2026-01-12 14:30 UTC);
        let mut b = MonitorBoard::new(&monitors());
        for id in ["web", "api-health", "worker"] {
            assert!(b.transition(id, MonitorStatus::Up, "", t).is_none());
        }
        // One of three monitors down, users can still get in: 33% failing → SEV2.
        let a = b
            .transition("worker", MonitorStatus::Down, "connection refused", t)
            .unwrap();
        assert_eq!(a.labels["severity"], "major");
        assert_eq!(a.ends_at, None);
        // Both user-facing monitors down: nobody can get in → SEV1.
        b.transition("web", MonitorStatus::Down, "HTTP 503", t)
            .unwrap();
        let a = b
            .transition("api-health", MonitorStatus::Down, "timeout", t)
            .unwrap();
        assert_eq!(a.labels["severity"], "critical");
        // Back up: resolved, same identity as when it fired.
        let r = b
            .transition("api-health", MonitorStatus::Up, "", t)
            .unwrap();
        assert_eq!(r.ends_at, Some(t));
        assert_eq!(r.fingerprint, a.fingerprint);
        assert!(
            b.transition("api-health", MonitorStatus::Pending, "", t)
                .is_none()
        );
        assert!(b.transition("nope", MonitorStatus::Down, "", t).is_none());
    }
}

/// A service's health, from what is firing about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// Nothing firing.
    Healthy,
    /// Something minor firing (Sev3/Sev4 by its labels).
    Degraded,
    /// Something major firing (Sev1/Sev2 by its labels): users are affected.
    Unhealthy,
}

impl Health {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "HEALTHY",
            Health::Degraded => "DEGRADED",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// Alert names listed in a health cause; the rest are counted.
const CAUSE_NAMES: usize = 10;

/// The health implied by the severities of a service's firing alerts, and the cause to record.
pub fn health_of(firing: &[(String, Severity)]) -> (Health, String) {
    let worst = firing.iter().min_by_key(|(_, s)| s.level());
    match worst {
        None => (Health::Healthy, "no alerts firing".to_owned()),
        Some((name, s)) => {
            // A bounded list: a service can have thousands of firing alerts.
            let mut names: Vec<&str> = firing
                .iter()
                .take(CAUSE_NAMES)
                .map(|(n, _)| n.as_str())
                .collect();
            let more = firing.len().saturating_sub(CAUSE_NAMES);
            let more = format!("{more} more");
            if firing.len() > CAUSE_NAMES {
                names.push(&more);
            }
            let h = if s.level() <= 2 {
                Health::Unhealthy
            } else {
                Health::Degraded
            };
            (
                h,
                format!("{} firing (worst: {name}, {s})", names.join(", ")),
            )
        }
    }
}

#[cfg(test)]
mod health_tests {
    use super::*;

    #[test]
    fn health_follows_the_worst_firing_alert() {
        assert_eq!(health_of(&[]).0, Health::Healthy);
        assert_eq!(
            health_of(&[("Slow".into(), Severity::Sev3)]).0,
            Health::Degraded
        );
        let (h, cause) = health_of(&[
            ("Slow".into(), Severity::Sev3),
            ("Down".into(), Severity::Sev1),
        ]);
        assert_eq!(h, Health::Unhealthy);
        assert!(cause.contains("worst: Down, SEV1"), "{cause}");
    }
}
