//! Notifications as the domain decides them, and the retry policy for delivering them.
//!
//! A notification is written to the outbox in the same transaction as the event that causes
//! it; adapters (Slack, webhook, email) deliver it later. Nothing here knows how.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::Severity;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An incident was declared.
    IncidentDeclared,
    /// A status update was posted.
    UpdatePosted,
    /// Severity changed.
    SeverityChanged,
    /// The incident was escalated.
    Escalation,
    /// The incident was resolved.
    IncidentResolved,
    /// A person is paged.
    Page,
    /// A reminder (update overdue, checklist item due).
    Reminder,
    /// Anything else worth telling a channel.
    Info,
}

/// One message for one channel, channel-agnostic: adapters format it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What it is about.
    pub kind: NotificationKind,
    /// The incident, if any.
    pub incident: Option<i64>,
    /// Severity of that incident, for formatting and routing.
    pub severity: Option<Severity>,
    /// One line: subject, Slack fallback, page title.
    pub title: String,
    /// The runbook-format plain text body.
    pub text: String,
    /// The incident's channel name by the runbook's convention (`#incident-YYYYMMDD-<slug>`),
    /// for adapters that create or address per-incident rooms.
    #[serde(default)]
    pub incident_channel: Option<String>,
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// First retry delay, seconds.
    pub base_secs: i64,
    /// Longest delay between attempts, seconds.
    pub max_delay_secs: i64,
    /// After this long since creation the message is marked failed, seconds.
    pub max_age_secs: i64,
}

impl Default for RetryPolicy {
    /// 1 s doubling to 5 min, given up after 24 h: long enough to ride out a provider outage,
    /// short enough that a message about a long-closed incident does not arrive days late.
    fn default() -> Self {
        RetryPolicy {
            base_secs: 1,
            max_delay_secs: 300,
            max_age_secs: 24 * 3600,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this time.
    RetryAt(OffsetDateTime),
    /// Give up: too old.
    GiveUp,
}

impl RetryPolicy {
    /// After `attempts` failed attempts (1 after the first failure), when to try next.
    ///
    /// Exponential backoff with "equal jitter": half the delay is fixed, half is spread by
    /// `jitter` (a number in 0..1 the caller draws), so a burst of failures does not retry in
    /// lock-step. A receiver's `Retry-After` wins when it asks for longer.
    pub fn next(
        &self,
        attempts: u32,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> RetryDecision {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self
            .base_secs
            .saturating_mul(1_i64 << exp)
            .min(self.max_delay_secs)
            .max(0) as f64;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let mut delay =
            Duration::milliseconds(((full / 2.0 + full / 2.0 * jitter) * 1000.0) as i64);
        if let Some(ra) = retry_after
            && ra > delay
        {
            delay = ra;
        }
        let at = now + delay;
        if at - created_at > Duration::seconds(self.max_age_secs) {
            RetryDecision::GiveUp
        } else {
            RetryDecision::RetryAt(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        let t0 = datetime!(2026-01-12 14:30 UTC);
        let at = |n, j| match p.next(n, t0, t0, j, None) {
            RetryDecision::RetryAt(t) => (t - t0).whole_milliseconds(),
            RetryDecision::GiveUp => -1,
        };
        assert_eq!(at(1, 0.0), 500);
        assert_eq!(at(1, 1.0), 1000);
        assert_eq!(at(3, 1.0), 4000);
        assert_eq!(at(20, 1.0), 300_000, "capped at max_delay");
        assert_eq!(at(20, 0.0), 150_000);
    }

    #[test]
    fn retry_after_wins_when_longer_and_old_messages_give_up() {
        let p = RetryPolicy::default();
        let t0 = datetime!(2026-01-12 14:30 UTC);
        assert_eq!(
            p.next(1, t0, t0, 1.0, Some(Duration::seconds(30))),
            RetryDecision::RetryAt(t0 + Duration::seconds(30))
        );
        assert_eq!(
            p.next(1, t0, t0, 1.0, Some(Duration::milliseconds(10))),
            RetryDecision::RetryAt(t0 + Duration::seconds(1))
        );
        let late = t0 + Duration::hours(24);
        assert_eq!(p.next(5, t0, late, 0.5, None), RetryDecision::GiveUp);
    }
}

/// Which configured channels hear what. Channel names refer to the config's `[[channels]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    /// Paged for severities whose policy is "page now" (Sev1 by default).
    pub page: Vec<String>,
    /// Alerted for "alert the on-call engineer" (Sev2 by default); pages go here too.
    pub on_call: Vec<String>,
    /// The team: "alert the team" (Sev3), the one message of Sev4, and resolutions.
    pub team: Vec<String>,
    /// Where status updates and the other runbook messages of an incident go.
    pub updates: Vec<String>,
}

/// One notification for one channel.
pub type Routed = (String, Notification);

fn fan_out(channels: &[String], n: &Notification) -> Vec<Routed> {
    channels.iter().map(|c| (c.clone(), n.clone())).collect()
}

fn dedup(mut v: Vec<Routed>) -> Vec<Routed> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|(c, _)| seen.insert(c.clone()));
    v
}

impl Routing {
    /// Every channel name this routing mentions, for config validation.
    pub fn channel_names(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.page
            .iter()
            .map(|c| ("page", c))
            .chain(self.on_call.iter().map(|c| ("on_call", c)))
            .chain(self.team.iter().map(|c| ("team", c)))
            .chain(self.updates.iter().map(|c| ("updates", c)))
    }

    /// Who hears about a (newly) declared incident, by the severity's on-call policy: Sev1 pages
    /// (page + on-call + team), Sev2 alerts the on-call engineer, Sev3 the team, Sev4 one team
    /// message. A channel appears once even when listed under several roles.
    pub fn declared(&self, policy: crate::severity::OnCallPolicy, n: Notification) -> Vec<Routed> {
        use crate::severity::OnCallPolicy::*;
        let page = Notification {
            kind: NotificationKind::Page,
            ..n.clone()
        };
        let v = match policy {
            PageNow => [
                fan_out(&self.page, &page),
                fan_out(&self.on_call, &page),
                fan_out(&self.team, &n),
            ]
            .concat(),
            AlertOnCallEngineer => {
                [fan_out(&self.on_call, &page), fan_out(&self.updates, &n)].concat()
            }
            AlertTeam | None => [fan_out(&self.team, &n), fan_out(&self.updates, &n)].concat(),
        };
        dedup(v)
    }

    /// Status updates and other in-incident messages.
    pub fn update(&self, n: Notification) -> Vec<Routed> {
        dedup(fan_out(&self.updates, &n))
    }

    /// Resolution: the incident's audience and the team.
    pub fn resolved(&self, n: Notification) -> Vec<Routed> {
        dedup([fan_out(&self.updates, &n), fan_out(&self.team, &n)].concat())
    }
}

#[cfg(test)]
mod routing_tests {
    use super::*;
    use crate::severity::OnCallPolicy;

    fn n() -> Notification {
        Notification {
            kind: NotificationKind::IncidentDeclared,
            incident: Some(1),
            severity: None,
            title: "t".into(),
            text: "x".into(),
            incident_channel: None,
        }
    }

    #[test]
    fn severity_policy_decides_who_hears_of_a_declaration() {
        let r = Routing {
            page: vec!["pager".into()],
            on_call: vec!["oncall".into(), "pager".into()],
            team: vec!["team".into()],
            updates: vec!["room".into()],
        };
        let names = |v: Vec<Routed>| {
            v.into_iter()
                .map(|(c, n)| format!("{c}:{:?}", n.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(r.declared(OnCallPolicy::PageNow, n())),
            ["pager:Page", "oncall:Page", "team:IncidentDeclared"]
        );
        assert_eq!(
            names(r.declared(OnCallPolicy::AlertOnCallEngineer, n())),
            ["oncall:Page", "pager:Page", "room:IncidentDeclared"]
        );
        assert_eq!(
            names(r.declared(OnCallPolicy::AlertTeam, n())),
            ["team:IncidentDeclared", "room:IncidentDeclared"]
        );
        assert_eq!(
            names(r.declared(OnCallPolicy::None, n())),
            ["team:IncidentDeclared", "room:IncidentDeclared"]
        );
        assert_eq!(
            names(r.resolved(n())),
            ["room:IncidentDeclared", "team:IncidentDeclared"]
        );
    }
}
