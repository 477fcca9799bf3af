//! The runbook's four severity levels, as data that configuration can override.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::Duration;

use crate::DomainError;

/// How bad an incident is. `Sev1` is the worst.
///
/// Ordering follows urgency: `Sev1 < Sev2` is false in our `Ord`; use [`Severity::is_more_severe_than`]
/// to compare, which reads unambiguously at the call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Severity {
    /// Critical: service down or severely degraded for all users.
    Sev1,
    /// Major: partially down or significantly degraded.
    Sev2,
    /// Minor: slow, or minor issues for some users.
    Sev3,
    /// Informational: no user impact.
    Sev4,
}

impl Severity {
    /// All levels, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ];

    /// 1 to 4.
    pub fn level(self) -> u8 {
        match self {
            Severity::Sev1 => 1,
            Severity::Sev2 => 2,
            Severity::Sev3 => 3,
            Severity::Sev4 => 4,
        }
    }

    /// Parses 1-4.
    pub fn from_level(level: i64) -> Result<Self, DomainError> {
        match level {
            1 => Ok(Severity::Sev1),
            2 => Ok(Severity::Sev2),
            3 => Ok(Severity::Sev3),
            4 => Ok(Severity::Sev4),
            other => Err(DomainError::invalid(
                "severity",
                format!(
                    "{other} is not a severity; use 1 (Critical), 2 (Major), 3 (Minor) or 4 (Informational)"
                ),
            )),
        }
    }

    /// True when `self` is worse than `other`.
    pub fn is_more_severe_than(self, other: Severity) -> bool {
        self.level() < other.level()
    }

    /// The more severe of the two.
    pub fn worst(self, other: Severity) -> Severity {
        if other.is_more_severe_than(self) {
            other
        } else {
            self
        }
    }
}

impl From<Severity> for u8 {
    fn from(s: Severity) -> u8 {
        s.level()
    }
}

impl TryFrom<u8> for Severity {
    type Error = DomainError;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Severity::from_level(i64::from(v))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SEV{}", self.level())
    }
}

/// When somebody must start working on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ResponseTarget {
    /// Within this many seconds of declaration.
    Within {
        /// Seconds.
        seconds: i64,
    },
    /// During business hours; no clock is running.
    BusinessHours,
}

/// Who gets told, and how loudly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCallPolicy {
    /// Page immediately; not optional.
    PageNow,
    /// Alert the on-call engineer.
    AlertOnCallEngineer,
    /// Alert the team, not necessarily an emergency page.
    AlertTeam,
    /// No alert needed.
    None,
}

/// How often people must be told what is going on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cadence {
    /// Seconds between updates in the incident channel, if periodic.
    pub channel_update_secs: Option<i64>,
    /// Seconds between status page updates for public incidents, if periodic.
    pub status_page_update_secs: Option<i64>,
    /// What the runbook asks for, in words (shown in the API and messages).
    pub summary: String,
}

/// Everything the runbook says about one severity level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityPolicy {
    /// Which level this describes.
    pub level: Severity,
    /// Critical, Major, Minor, Informational.
    pub name: String,
    /// The colour marker used in messages.
    pub marker: String,
    /// The runbook's definition.
    pub definition: String,
    /// The runbook's examples.
    pub examples: Vec<String>,
    /// Response-time target.
    pub response: ResponseTarget,
    /// Paging policy.
    pub on_call: OnCallPolicy,
    /// Communication cadence.
    pub cadence: Cadence,
    /// Escalate when the cause is not identified this many seconds after declaration (the
    /// runbook's five-minute rule for Sev1); `None` for no such rule.
    #[serde(default)]
    pub escalate_unidentified_after_secs: Option<i64>,
}

impl SeverityPolicy {
    /// When the next channel update is due after an update (or the declaration) at `from`.
    pub fn next_update_after(&self, from: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        self.cadence
            .channel_update_secs
            .map(|s| from + Duration::seconds(s))
    }

    /// `1 (Critical)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.level.level(), self.name)
    }
}

/// The four policies, indexed by level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityPolicies {
    policies: [SeverityPolicy; 4],
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for SeverityPolicies {
    /// The runbook's table.
    ///
    /// The runbook disagrees with itself about the Sev1 status page: its severity table says every
    /// 2 minutes, the communication lead's role says every 5. The default follows the severity
    /// table, since that is the policy people look up under pressure; configuration can set 300.
    fn default() -> Self {
        SeverityPolicies {
            policies: [
                SeverityPolicy {
                    level: Severity::Sev1,
                    name: "Critical".into(),
                    marker: "🔴".into(),
                    definition: "Service completely down or severely degraded affecting all users"
                        .into(),
                    examples: strings(&[
                        "All backend pods crashed",
                        "Database completely unreachable",
                        "API returning 100% errors",
                        "Frontend completely inaccessible",
                    ]),
                    response: ResponseTarget::Within { seconds: 120 },
                    on_call: OnCallPolicy::PageNow,
                    cadence: Cadence {
                        channel_update_secs: Some(120),
                        status_page_update_secs: Some(120),
                        summary: "Update the incident channel and the status page every 2 minutes"
                            .into(),
                    },
                    escalate_unidentified_after_secs: Some(300),
                },
                SeverityPolicy {
                    level: Severity::Sev2,
                    name: "Major".into(),
                    marker: "🟠".into(),
                    definition: "Service partially down or significantly degraded".into(),
                    examples: strings(&[
                        "50% of requests returning errors",
                        "Latency 10x normal",
                        "Some services down but others working",
                        "Intermittent connectivity issues",
                    ]),
                    response: ResponseTarget::Within { seconds: 300 },
                    on_call: OnCallPolicy::AlertOnCallEngineer,
                    cadence: Cadence {
                        channel_update_secs: Some(300),
                        status_page_update_secs: None,
                        summary: "Internal updates every 5 minutes".into(),
                    },
                    escalate_unidentified_after_secs: None,
                },
                SeverityPolicy {
                    level: Severity::Sev3,
                    name: "Minor".into(),
                    marker: "🟡".into(),
                    definition: "Service slow or minor issues affecting some users".into(),
                    examples: strings(&[
                        "5-10% error rate",
                        "Elevated latency (2x normal)",
                        "One pod having issues, others recovering",
                        "Non-critical features unavailable",
                    ]),
                    response: ResponseTarget::Within { seconds: 900 },
                    on_call: OnCallPolicy::AlertTeam,
                    cadence: Cadence {
                        channel_update_secs: None,
                        status_page_update_secs: None,
                        summary: "Post-incident update".into(),
                    },
                    escalate_unidentified_after_secs: None,
                },
                SeverityPolicy {
                    level: Severity::Sev4,
                    name: "Informational".into(),
                    marker: "🟢".into(),
                    definition: "No user impact, system anomalies or preventive issues".into(),
                    examples: strings(&[
                        "Disk usage trending high",
                        "SSL cert expiring in 30 days",
                        "Deployment taking longer than normal",
                        "Non-critical service warnings",
                    ]),
                    response: ResponseTarget::BusinessHours,
                    on_call: OnCallPolicy::None,
                    cadence: Cadence {
                        channel_update_secs: None,
                        status_page_update_secs: None,
                        summary: "One team message".into(),
                    },
                    escalate_unidentified_after_secs: None,
                },
            ],
        }
    }
}

/// Partial override of one level, as written in the config file. Unset fields keep the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityOverride {
    /// Response target in seconds; 0 means business hours.
    pub response_secs: Option<i64>,
    /// Channel update interval in seconds; 0 disables periodic updates.
    pub channel_update_secs: Option<i64>,
    /// Status page update interval in seconds; 0 disables it.
    pub status_page_update_secs: Option<i64>,
    /// Paging policy.
    pub on_call: Option<OnCallPolicy>,
    /// Escalate when the cause is not identified this long after declaration; 0 disables.
    pub escalate_unidentified_after_secs: Option<i64>,
}

impl SeverityPolicies {
    /// The policy of one level.
    pub fn get(&self, s: Severity) -> &SeverityPolicy {
        &self.policies[usize::from(s.level() - 1)]
    }

    /// All four, most severe first.
    pub fn all(&self) -> &[SeverityPolicy; 4] {
        &self.policies
    }

    /// Applies a config override to one level. Negative durations are rejected with the key named.
    pub fn apply_override(&mut self, s: Severity, o: &SeverityOverride) -> Result<(), DomainError> {
        let key = format!("severity.{}", s.level());
        let check = |name: &str, v: Option<i64>| -> Result<Option<Option<i64>>, DomainError> {
            match v {
                None => Ok(None),
                Some(v) if v < 0 => Err(DomainError::invalid(
                    format!("{key}.{name}"),
                    format!("{v} is negative; give seconds, or 0 to disable"),
                )),
                Some(0) => Ok(Some(None)),
                Some(v) => Ok(Some(Some(v))),
            }
        };
        let response = check("response_secs", o.response_secs)?;
        let channel = check("channel_update_secs", o.channel_update_secs)?;
        let page = check("status_page_update_secs", o.status_page_update_secs)?;
        let stuck = check(
            "escalate_unidentified_after_secs",
            o.escalate_unidentified_after_secs,
        )?;
        let p = &mut self.policies[usize::from(s.level() - 1)];
        if let Some(r) = response {
            p.response = match r {
                Some(seconds) => ResponseTarget::Within { seconds },
                None => ResponseTarget::BusinessHours,
            };
        }
        if let Some(c) = channel {
            p.cadence.channel_update_secs = c;
        }
        if let Some(c) = page {
            p.cadence.status_page_update_secs = c;
        }
        if let Some(c) = stuck {
            p.escalate_unidentified_after_secs = c;
        }
        if let Some(on_call) = o.on_call {
            p.on_call = on_call;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_runbook_table() {
        let p = SeverityPolicies::default();
        assert_eq!(
            p.get(Severity::Sev1).response,
            ResponseTarget::Within { seconds: 120 }
        );
        assert_eq!(
            p.get(Severity::Sev2).response,
            ResponseTarget::Within { seconds: 300 }
        );
        assert_eq!(
            p.get(Severity::Sev3).response,
            ResponseTarget::Within { seconds: 900 }
        );
        assert_eq!(
            p.get(Severity::Sev4).response,
            ResponseTarget::BusinessHours
        );
        assert_eq!(p.get(Severity::Sev1).on_call, OnCallPolicy::PageNow);
        assert_eq!(p.get(Severity::Sev4).on_call, OnCallPolicy::None);
        // The documented choice: status page every 2 minutes, as in the severity table.
        assert_eq!(
            p.get(Severity::Sev1).cadence.status_page_update_secs,
            Some(120)
        );
        assert_eq!(p.get(Severity::Sev2).cadence.channel_update_secs, Some(300));
        assert_eq!(p.get(Severity::Sev3).cadence.channel_update_secs, None);
        assert_eq!(p.get(Severity::Sev2).label(), "2 (Major)");
    }

    #[test]
    fn overrides_apply_and_reject_negative_values_with_the_key() {
        let mut p = SeverityPolicies::default();
        p.apply_override(
            Severity::Sev1,
            &SeverityOverride {
                status_page_update_secs: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.get(Severity::Sev1).cadence.status_page_update_secs,
            Some(300)
        );
        let err = p
            .apply_override(
                Severity::Sev2,
                &SeverityOverride {
                    channel_update_secs: Some(-1),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("severity.2.channel_update_secs"),
            "{err}"
        );
    }

    #[test]
    fn severity_parses_only_1_to_4() {
        assert_eq!(Severity::from_level(2).unwrap(), Severity::Sev2);
        let err = Severity::from_level(7).unwrap_err().to_string();
        assert!(err.contains("7 is not a severity"), "{err}");
        assert!(Severity::Sev1.is_more_severe_than(Severity::Sev2));
        assert_eq!(Severity::Sev3.worst(Severity::Sev2), Severity::Sev2);
    }
}
