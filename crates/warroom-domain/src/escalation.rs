//! Paging and the incident's clock: escalation policies, acknowledgement, and everything the
//! runbook asks people to remember on a timer (update cadence, the Sev1 five-minute rule,
//! post-incident checklist deadlines).
//!
//! [`Incident::tick`] is pure: given the incident, its context and `now`, it changes the
//! incident's paging state and returns the timeline events and outgoing notifications. Running
//! it again at the same `now` does nothing, which is what makes it safe to run from several
//! workers and after a crash.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{
    DomainError, EventKind, Incident, Severity, SeverityPolicies, TimelineEvent, checklist,
    messages,
    notify::{Notification, NotificationKind},
    oncall::CheckedSchedule,
    severity::ResponseTarget,
    timefmt::hm_utc,
};

/// Who a level pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// A person by name.
    User {
        /// The person.
        user: String,
    },
    /// Whoever a schedule has on call.
    Schedule {
        /// The schedule's name.
        schedule: String,
    },
}

/// One level of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Who to page.
    pub targets: Vec<Target>,
    /// Seconds to wait for an acknowledgement before the next level; defaults to the
    /// severity's response target (Sev1 2 min, Sev2 5 min, Sev3 15 min).
    pub delay_secs: Option<i64>,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Name.
    pub name: String,
    /// Levels, first paged first.
    pub levels: Vec<Level>,
    /// How many more times to walk the levels after the last one.
    #[serde(default)]
    pub repeat: u32,
}

impl EscalationPolicy {
    /// Validates against the known schedules, naming the key.
    pub fn check(&self, key: &str, schedules: &[String]) -> Result<(), DomainError> {
        if self.levels.is_empty() {
            return Err(DomainError::invalid(
                format!("{key}.levels"),
                "a policy needs at least one level",
            ));
        }
        for (i, l) in self.levels.iter().enumerate() {
            if l.targets.is_empty() {
                return Err(DomainError::invalid(
                    format!("{key}.levels[{i}].targets"),
                    "list at least one user or schedule",
                ));
            }
            if l.delay_secs.is_some_and(|d| d < 1) {
                return Err(DomainError::invalid(
                    format!("{key}.levels[{i}].delay_secs"),
                    "must be at least 1",
                ));
            }
            for (j, t) in l.targets.iter().enumerate() {
                if let Target::Schedule { schedule } = t
                    && !schedules.contains(schedule)
                {
                    return Err(DomainError::invalid(
                        format!("{key}.levels[{i}].targets[{j}].schedule"),
                        format!(
                            "no schedule named `{schedule}`; the schedules are: {}",
                            schedules.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Paging state kept on the incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Paging {
    /// The policy in use, if paging started.
    pub policy: Option<String>,
    /// Current level (0-based).
    pub level: usize,
    /// Completed passes over all levels.
    pub round: u32,
    /// When the current level was paged.
    #[serde(with = "time::serde::rfc3339::option")]
    pub level_paged_at: Option<OffsetDateTime>,
    /// Everyone paged so far.
    pub paged: Vec<String>,
    /// Who acknowledged; paging stops.
    pub acknowledged_by: Option<String>,
    /// Every level and repeat used up without an acknowledgement.
    pub exhausted: bool,
    /// The five-minute rule fired.
    pub stuck_escalated: bool,
    /// When the last overdue-update reminder went out.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_update_reminder: Option<OffsetDateTime>,
    /// Post-incident checklist items already reminded.
    pub checklist_reminded: Vec<String>,
}

/// Who an outgoing notification is for; the caller maps this to channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// These people, through their contact channels.
    People(Vec<String>),
    /// The incident's update channels.
    Updates,
    /// The person who reported the incident, only through their own contacts: a reporter who
    /// is not a configured person is not broadcast to.
    Reporter(String),
}

/// A notification and who gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Who.
    pub audience: Audience,
    /// What.
    pub notification: Notification,
}

/// What a tick needs besides the incident.
#[derive(Debug, Clone)]
pub struct TickContext<'a> {
    /// Severity table.
    pub policies: &'a SeverityPolicies,
    /// The escalation policy, if paging is configured.
    pub escalation: Option<&'a EscalationPolicy>,
    /// Schedules, to resolve schedule targets.
    pub schedules: &'a [CheckedSchedule],
    /// The primary service's display name, for messages.
    pub service_name: &'a str,
    /// The timeline so far, for drafts and the escalation message.
    pub timeline: &'a [TimelineEvent],
}

/// Paging as configured: the policy, the schedules it may name, and each person's contact
/// channels.
#[derive(Debug, Clone, Default)]
pub struct PagingConfig {
    /// The escalation policy for paging severities.
    pub policy: Option<EscalationPolicy>,
    /// Checked schedules.
    pub schedules: Vec<CheckedSchedule>,
    /// Person → how to reach them: channels, each after a delay (their notification rules).
    pub contacts: std::collections::HashMap<String, Vec<Contact>>,
}

/// One of a person's notification rules: this channel, this long after the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Contact {
    /// A channel, at once: `"ops-pager"`.
    Now(String),
    /// A channel after a delay: `{ channel = "email-ana", after_secs = 60 }`.
    After {
        /// Channel name.
        channel: String,
        /// Seconds after the page.
        after_secs: i64,
    },
}

impl Contact {
    /// The channel name.
    pub fn channel(&self) -> &str {
        match self {
            Contact::Now(c) | Contact::After { channel: c, .. } => c,
        }
    }

    /// The delay.
    pub fn after(&self) -> Duration {
        match self {
            Contact::Now(_) => Duration::ZERO,
            Contact::After { after_secs, .. } => Duration::seconds(*after_secs),
        }
    }
}

/// A notification for one channel, maybe for one person, maybe later.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Channel name.
    pub channel: String,
    /// What.
    pub notification: Notification,
    /// The person, for pages and reminders to people.
    pub recipient: Option<String>,
    /// Delay from now (a person's later notification rule).
    pub after: Duration,
}

impl From<crate::notify::Routed> for Delivery {
    fn from((channel, notification): crate::notify::Routed) -> Self {
        Delivery {
            channel,
            notification,
            recipient: None,
            after: Duration::ZERO,
        }
    }
}

/// Adds per-person content to a notification for a person (a signed acknowledgement link).
pub type Decorate = dyn Fn(&str, &mut Notification) + Send + Sync;

impl PagingConfig {
    /// Channels for outgoing notifications: people through their contacts (a person with no
    /// contacts falls back to the update channels, so nothing is silently dropped).
    pub fn route(&self, out: Vec<Outgoing>, routing: &crate::notify::Routing) -> Vec<Delivery> {
        self.route_with(out, routing, None)
    }

    /// [`PagingConfig::route`], letting `decorate` add per-person content to what each person gets.
    pub fn route_with(
        &self,
        out: Vec<Outgoing>,
        routing: &crate::notify::Routing,
        decorate: Option<&Decorate>,
    ) -> Vec<Delivery> {
        let mut routed: Vec<Delivery> = Vec::new();
        for o in out {
            match o.audience {
                Audience::People(people) => {
                    for person in people {
                        let mut n = o.notification.clone();
                        if let Some(d) = decorate {
                            d(&person, &mut n);
                        }
                        match self.contacts.get(&person).filter(|c| !c.is_empty()) {
                            Some(contacts) => routed.extend(contacts.iter().map(|c| Delivery {
                                channel: c.channel().to_owned(),
                                notification: n.clone(),
                                recipient: Some(person.clone()),
                                after: c.after(),
                            })),
                            // Nobody to reach them by: tell the incident's room, never drop it.
                            None => {
                                routed.extend(routing.update(n).into_iter().map(Delivery::from))
                            }
                        }
                    }
                }
                Audience::Updates => routed.extend(
                    routing
                        .update(o.notification)
                        .into_iter()
                        .map(Delivery::from),
                ),
                Audience::Reporter(person) => {
                    for c in self.contacts.get(&person).into_iter().flatten() {
                        routed.push(Delivery {
                            channel: c.channel().to_owned(),
                            notification: o.notification.clone(),
                            recipient: Some(person.clone()),
                            after: Duration::ZERO,
                        });
                    }
                }
            }
        }
        routed
    }
}

fn resolve(
    level: &Level,
    schedules: &[CheckedSchedule],
    now: OffsetDateTime,
) -> (Vec<String>, Vec<String>) {
    let mut people = Vec::new();
    let mut uncovered = Vec::new();
    for t in &level.targets {
        match t {
            Target::User { user } => people.push(user.clone()),
            Target::Schedule { schedule } => match schedules
                .iter()
                .find(|s| &s.name == schedule)
                .and_then(|s| s.on_call_at(now))
            {
                Some(oc) => people.push(oc.person),
                None => uncovered.push(schedule.clone()),
            },
        }
    }
    people.dedup();
    (people, uncovered)
}

fn note(incident: &Incident, kind: NotificationKind, title: String, text: String) -> Notification {
    Notification {
        kind,
        incident: Some(incident.number),
        severity: Some(incident.severity),
        title,
        text,
        incident_channel: Some(incident.channel.clone()),
    }
}

/// A pre-filled update built from what the timeline recorded since the last update.
pub fn draft_update(incident: &Incident, timeline: &[TimelineEvent]) -> String {
    let since = incident
        .last_update
        .as_ref()
        .map(|u| u.posted_at)
        .unwrap_or(incident.declared_at);
    let recent: Vec<&TimelineEvent> = timeline.iter().filter(|e| e.at >= since).collect();
    let actions: Vec<&str> = recent
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActionTaken { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let findings: Vec<&str> = recent
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let or = |v: Vec<&str>, fallback: &str| {
        if v.is_empty() {
            fallback.to_owned()
        } else {
            v.join("; ")
        }
    };
    format!(
        "Status: {}\nCurrent Action: {}\nFindings: {}\nNext Step: (fill in)",
        incident.status,
        or(actions, "(nothing recorded since the last update)"),
        or(findings, "(nothing recorded since the last update)"),
    )
}

/// What the reporter is told, from the events a change produced: that the investigation
/// started, and that a fix was applied (the seed's "you'll be notified when...").
pub fn reporter_news(incident: &Incident, events: &[EventKind]) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for e in events {
        let text = match e {
            EventKind::StatusChanged {
                from: crate::IncidentStatus::Declared,
                to,
                ..
            } if to.is_open() => {
                format!(
                    "Thanks for reporting it: we are investigating {} (status: {to}).",
                    incident.title
                )
            }
            EventKind::FieldRecorded { field, value } if field == "fix_applied" => {
                format!(
                    "A fix has been applied for {}: {value}. We are verifying it.",
                    incident.title
                )
            }
            _ => continue,
        };
        let title = format!("Update on what you reported: {}", incident.title);
        out.push(Outgoing {
            audience: Audience::Reporter(incident.reporter.clone()),
            notification: note(incident, NotificationKind::Info, title, text),
        });
    }
    out
}

impl Incident {
    fn level_wait(&self, ctx: &TickContext<'_>, level: &Level) -> Option<Duration> {
        if let Some(d) = level.delay_secs {
            return Some(Duration::seconds(d));
        }
        match ctx.policies.get(self.severity).response {
            ResponseTarget::Within { seconds } => Some(Duration::seconds(seconds)),
            ResponseTarget::BusinessHours => None,
        }
    }

    fn page_level(
        &mut self,
        ctx: &TickContext<'_>,
        now: OffsetDateTime,
        reason: &str,
    ) -> (Vec<EventKind>, Vec<Outgoing>) {
        let Some(policy) = ctx.escalation else {
            return (vec![], vec![]);
        };
        let Some(level) = policy.levels.get(self.paging.level) else {
            return (vec![], vec![]);
        };
        let (people, uncovered) = resolve(level, ctx.schedules, now);
        self.paging.level_paged_at = Some(now);
        for p in &people {
            if !self.paging.paged.contains(p) {
                self.paging.paged.push(p.clone());
            }
        }
        let mut events = vec![EventKind::Escalated {
            to: if people.is_empty() {
                "nobody".into()
            } else {
                people.join(", ")
            },
            reason: format!(
                "{reason} (policy {}, level {} of {})",
                policy.name,
                self.paging.level + 1,
                policy.levels.len()
            ),
        }];
        if !uncovered.is_empty() {
            events.push(EventKind::Note {
                text: format!(
                    "WARNING: nobody is on call for schedule(s) {}",
                    uncovered.join(", ")
                ),
            });
        }
        let p = ctx.policies.get(self.severity);
        let text = format!(
            "{}\n\nYou are paged: {reason}. Acknowledge with `warroom ack {}`.",
            messages::declared(self, ctx.service_name, ctx.policies),
            self.number
        );
        let title = format!("{} PAGE: {}", p.marker, self.title);
        let out = if people.is_empty() {
            vec![]
        } else {
            vec![Outgoing {
                audience: Audience::People(people),
                notification: note(self, NotificationKind::Page, title, text),
            }]
        };
        (events, out)
    }

    /// Starts paging with a policy (on declaration of a paging severity). Sev1 also puts the
    /// first person paged on the response as a technical responder and suggests them as commander.
    pub fn start_paging(
        &mut self,
        ctx: &TickContext<'_>,
        now: OffsetDateTime,
    ) -> (Vec<EventKind>, Vec<Outgoing>) {
        let Some(policy) = ctx.escalation else {
            return (vec![], vec![]);
        };
        if self.paging.policy.is_some() {
            return (vec![], vec![]);
        }
        self.paging.policy = Some(policy.name.clone());
        self.paging.level = 0;
        let reason = format!("{} declared", self.severity);
        let (mut events, out) = self.page_level(ctx, now, &reason);
        if self.severity == Severity::Sev1
            && let Some(first) = self.paging.paged.first().cloned()
        {
            // `assign` answers `None` when the person was newly added.
            if self
                .roles
                .assign(crate::Role::TechnicalResponder, &first)
                .is_none()
            {
                events.push(EventKind::RoleAssigned {
                    role: crate::Role::TechnicalResponder,
                    person: first.clone(),
                    replaced: None,
                });
            }
            if self.roles.commander.is_none() {
                events.push(EventKind::Note { text: format!("Suggested commander: {first} (on call); assign with `warroom assign {} --role commander --person {first}`", self.number) });
            }
        }
        (events, out)
    }

    /// Acknowledges the page: escalation stops, and the first acknowledgement time is kept
    /// for MTTA. Acknowledging twice changes nothing.
    pub fn acknowledge(
        &mut self,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<EventKind>, DomainError> {
        if self.status == crate::IncidentStatus::Closed {
            return Err(DomainError::Closed);
        }
        let by = crate::incident::check_text("person", by, 200)?;
        if self.paging.acknowledged_by.is_some() {
            return Ok(vec![]);
        }
        self.paging.acknowledged_by = Some(by.clone());
        self.acknowledged_at.get_or_insert(now);
        Ok(vec![EventKind::Note {
            text: format!(
                "Acknowledged by {by} after {}",
                crate::timefmt::human_duration(now - self.declared_at)
            ),
        }])
    }

    /// Everything due at `now`. Idempotent at a given `now`.
    pub fn tick(
        &mut self,
        ctx: &TickContext<'_>,
        now: OffsetDateTime,
    ) -> (Vec<EventKind>, Vec<Outgoing>) {
        let mut events = Vec::new();
        let mut out = Vec::new();
        let open = self.status.is_open();

        // Unacknowledged page: the next level after the level's wait.
        if open
            && self.paging.acknowledged_by.is_none()
            && !self.paging.exhausted
            && let (Some(policy), Some(paged_at)) = (ctx.escalation, self.paging.level_paged_at)
            && let Some(level) = policy.levels.get(self.paging.level)
            && let Some(wait) = self.level_wait(ctx, level)
            && now >= paged_at + wait
        {
            let mut next = self.paging.level + 1;
            if next >= policy.levels.len() {
                if self.paging.round < policy.repeat {
                    self.paging.round += 1;
                    next = 0;
                } else {
                    self.paging.exhausted = true;
                    events.push(EventKind::Note {
                        text: format!(
                            "WARNING: nobody acknowledged; every level of policy {} was paged",
                            policy.name
                        ),
                    });
                }
            }
            if !self.paging.exhausted {
                self.paging.level = next;
                let reason = format!(
                    "not acknowledged within {}",
                    crate::timefmt::human_duration(wait)
                );
                let (e, o) = self.page_level(ctx, now, &reason);
                events.extend(e);
                out.extend(o);
            }
        }

        // Overdue update: remind the communication lead (or the commander), every cadence interval.
        let interval = ctx
            .policies
            .get(self.severity)
            .cadence
            .channel_update_secs
            .map(Duration::seconds);
        if open
            && let (Some(due), Some(interval)) = (self.next_update_due, interval)
            && now > due
            && self
                .paging
                .last_update_reminder
                .is_none_or(|last| last < due || now >= last + interval)
        {
            self.paging.last_update_reminder = Some(now);
            let who = self
                .roles
                .communication_lead
                .clone()
                .or_else(|| self.roles.commander.clone());
            let text = format!(
                "Update overdue since {} for {}.\nPost one with `warroom update {}`. Draft from the timeline:\n\n{}",
                hm_utc(due),
                self.title,
                self.number,
                draft_update(self, ctx.timeline)
            );
            let n = note(
                self,
                NotificationKind::Reminder,
                format!("⏰ Update overdue: {}", self.title),
                text,
            );
            events.push(EventKind::Note {
                text: format!(
                    "Reminder: update overdue since {} sent to {}",
                    hm_utc(due),
                    who.as_deref().unwrap_or("the update channels")
                ),
            });
            out.push(Outgoing {
                audience: who
                    .map(|w| Audience::People(vec![w]))
                    .unwrap_or(Audience::Updates),
                notification: n,
            });
        }

        // The five-minute rule.
        if open
            && !self.paging.stuck_escalated
            && self.identified_at.is_none()
            && let Some(after) = ctx
                .policies
                .get(self.severity)
                .escalate_unidentified_after_secs
                .map(Duration::seconds)
            && now >= self.declared_at + after
        {
            self.paging.stuck_escalated = true;
            let why = format!(
                "cause not identified within {}",
                crate::timefmt::human_duration(after)
            );
            let text = messages::escalation(self, ctx.service_name, ctx.timeline, &why, now);
            events.push(EventKind::Escalated {
                to: "next escalation level".into(),
                reason: why.clone(),
            });
            out.push(Outgoing {
                audience: Audience::Updates,
                notification: note(
                    self,
                    NotificationKind::Escalation,
                    format!("ESCALATION: {}", self.title),
                    text.clone(),
                ),
            });
            if let Some(policy) = ctx.escalation
                && self.paging.policy.is_some()
                && self.paging.level + 1 < policy.levels.len()
            {
                self.paging.level += 1;
                let (e, o) = self.page_level(ctx, now, &why);
                events.extend(e);
                out.extend(o);
            }
        }

        // Post-incident checklist deadlines, once per item, to the item's owner.
        if self.resolved_at.is_some() {
            for item in checklist::evaluate(self, now) {
                if item.done.is_none()
                    && item.due_at.is_some_and(|d| now >= d)
                    && !self.paging.checklist_reminded.contains(&item.id)
                {
                    self.paging.checklist_reminded.push(item.id.clone());
                    let text = format!(
                        "\"{}\" was due {} for {}.",
                        item.text,
                        item.due_at.map(hm_utc).unwrap_or_default(),
                        self.title
                    );
                    let n = note(
                        self,
                        NotificationKind::Reminder,
                        format!("Checklist due: {}", item.text),
                        text,
                    );
                    out.push(Outgoing {
                        audience: item
                            .owner
                            .clone()
                            .map(|o| Audience::People(vec![o]))
                            .unwrap_or(Audience::Updates),
                        notification: n,
                    });
                    events.push(EventKind::Note {
                        text: format!(
                            "Reminder sent: {} ({})",
                            item.text,
                            item.owner.as_deref().unwrap_or("no owner")
                        ),
                    });
                }
            }
        }
        (events, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IncidentStatus, Role, classify};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-12 14:30 UTC);

    fn sev1() -> Incident {
        let c = classify(&Default::default(), Some(Severity::Sev1)).unwrap();
        let new = crate::NewIncident {
            services: vec![crate::ServiceSlug::parse_field("api", "s").unwrap()],
            primary_service_name: "API".into(),
            summary: "API down".into(),
            severity: Some(Severity::Sev1),
            signals: Default::default(),
            reporter: "ana".into(),
            detected_at: None,
            public: false,
        };
        Incident::declare(1, new, c, &SeverityPolicies::default(), T0)
            .unwrap()
            .0
    }

    fn policy() -> EscalationPolicy {
        EscalationPolicy {
            name: "default".into(),
            levels: vec![
                Level {
                    targets: vec![Target::User { user: "ana".into() }],
                    delay_secs: None,
                },
                Level {
                    targets: vec![Target::User {
                        user: "senior".into(),
                    }],
                    delay_secs: None,
                },
            ],
            repeat: 0,
        }
    }

    fn ctx<'a>(p: &'a SeverityPolicies, e: &'a EscalationPolicy) -> TickContext<'a> {
        TickContext {
            policies: p,
            escalation: Some(e),
            schedules: &[],
            service_name: "API",
            timeline: &[],
        }
    }

    fn people(out: &[Outgoing]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match &o.audience {
                Audience::People(p) if o.notification.kind == NotificationKind::Page => {
                    Some(p.join(","))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn sev1_unacknowledged_for_two_minutes_pages_level_two() {
        let (p, e) = (SeverityPolicies::default(), policy());
        let c = ctx(&p, &e);
        let mut i = sev1();
        let (ev, out) = i.start_paging(&c, T0);
        assert_eq!(people(&out), ["ana"]);
        assert_eq!(i.roles.technical_responders, ["ana"]);
        assert!(
            ev.iter()
                .any(|e| e.describe().contains("Suggested commander: ana"))
        );
        let (_, out) = i.tick(&c, T0 + Duration::seconds(119));
        assert!(
            people(&out).is_empty(),
            "not before the 2-minute response target"
        );
        let (ev, out) = i.tick(&c, T0 + Duration::minutes(2));
        assert_eq!(people(&out), ["senior"]);
        assert!(
            ev.iter()
                .any(|e| e.describe().contains("not acknowledged within 2 minutes")),
            "{ev:?}"
        );
        // Same instant again: nothing new.
        let (ev, out) = i.tick(&c, T0 + Duration::minutes(2));
        assert!(ev.is_empty() && out.is_empty());
    }

    #[test]
    fn acknowledgement_stops_escalation_and_records_mtta() {
        let (mut p, e) = (SeverityPolicies::default(), policy());
        // The five-minute rule pages on regardless of acknowledgement; keep it out of this test.
        let off = crate::severity::SeverityOverride {
            escalate_unidentified_after_secs: Some(0),
            ..Default::default()
        };
        p.apply_override(Severity::Sev1, &off).unwrap();
        let c = ctx(&p, &e);
        let mut i = sev1();
        i.start_paging(&c, T0);
        i.acknowledge("ana", T0 + Duration::seconds(50)).unwrap();
        assert_eq!(i.acknowledged_at, Some(T0 + Duration::seconds(50)));
        assert!(
            i.acknowledge("bo", T0 + Duration::minutes(1))
                .unwrap()
                .is_empty()
        );
        let (_, out) = i.tick(&c, T0 + Duration::minutes(10));
        assert!(
            people(&out).is_empty(),
            "acknowledged: nobody else is paged"
        );
    }

    #[test]
    fn the_five_minute_rule_escalates_with_the_runbook_message() {
        let (p, e) = (SeverityPolicies::default(), policy());
        let c = ctx(&p, &e);
        let mut i = sev1();
        i.start_paging(&c, T0);
        i.acknowledge("ana", T0 + Duration::seconds(30)).unwrap();
        let (_, out) = i.tick(&c, T0 + Duration::seconds(299));
        assert!(
            out.iter()
                .all(|o| o.notification.kind != NotificationKind::Escalation)
        );
        let (ev, out) = i.tick(&c, T0 + Duration::minutes(5));
        let esc = out
            .iter()
            .find(|o| o.notification.kind == NotificationKind::Escalation)
            .expect("escalation message");
        assert!(
            esc.notification
                .text
                .starts_with("Escalating to senior engineering team."),
            "{}",
            esc.notification.text
        );
        assert!(
            esc.notification
                .text
                .contains("Why stuck: cause not identified within 5 minutes")
        );
        assert_eq!(people(&out), ["senior"], "the next level is paged");
        assert!(ev.iter().any(|e| e.name() == "escalated"));
        // Once identified in time, it never fires.
        let mut j = sev1();
        j.transition(
            IncidentStatus::Identified,
            Default::default(),
            None,
            &p,
            T0 + Duration::minutes(4),
        )
        .unwrap();
        let (_, out) = j.tick(&c, T0 + Duration::minutes(6));
        assert!(
            out.iter()
                .all(|o| o.notification.kind != NotificationKind::Escalation)
        );
    }

    #[test]
    fn sev2_without_an_update_for_five_minutes_reminds_the_comms_lead_until_one_is_posted() {
        let p = SeverityPolicies::default();
        let c = TickContext {
            policies: &p,
            escalation: None,
            schedules: &[],
            service_name: "API",
            timeline: &[],
        };
        let mut i = sev1();
        i.severity = Severity::Sev2;
        i.next_update_due = Some(T0 + Duration::minutes(5));
        i.roles.assign(Role::Commander, "ic");
        i.roles.assign(Role::CommunicationLead, "comms");
        assert!(
            i.tick(&c, T0 + Duration::minutes(5)).1.is_empty(),
            "due, not yet overdue"
        );
        let (_, out) = i.tick(&c, T0 + Duration::minutes(5) + Duration::seconds(1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].audience, Audience::People(vec!["comms".into()]));
        assert!(
            out[0].notification.text.contains("Draft from the timeline"),
            "{}",
            out[0].notification.text
        );
        assert!(
            i.tick(&c, T0 + Duration::minutes(7)).1.is_empty(),
            "not again within the interval"
        );
        assert_eq!(
            i.tick(&c, T0 + Duration::minutes(10) + Duration::seconds(1))
                .1
                .len(),
            1,
            "and again after it"
        );
        i.post_update("a", "b", "c", &p, T0 + Duration::minutes(11))
            .unwrap();
        assert!(
            i.tick(&c, T0 + Duration::minutes(12)).1.is_empty(),
            "an update stops the reminders"
        );
    }

    #[test]
    fn the_reporter_hears_when_investigation_starts_and_a_fix_is_applied() {
        let p = SeverityPolicies::default();
        let mut i = sev1();
        let ev = i
            .transition(
                IncidentStatus::Investigating,
                Default::default(),
                None,
                &p,
                T0,
            )
            .unwrap();
        let news = reporter_news(&i, &ev);
        assert_eq!(news.len(), 1);
        assert_eq!(news[0].audience, Audience::Reporter("ana".into()));
        assert!(news[0].notification.text.contains("we are investigating"));
        let ev = i
            .patch(
                crate::incident::IncidentPatch {
                    fix_applied: Some("rolled back".into()),
                    ..Default::default()
                },
                "API",
            )
            .unwrap();
        assert!(
            reporter_news(&i, &ev)[0]
                .notification
                .text
                .contains("A fix has been applied")
        );
        let routed = PagingConfig::default().route(
            reporter_news(&i, &ev),
            &crate::notify::Routing {
                updates: vec!["room".into()],
                ..Default::default()
            },
        );
        assert!(
            routed.is_empty(),
            "an unknown reporter is not broadcast to the room"
        );
    }

    #[test]
    fn post_incident_items_remind_their_owner_when_due() {
        let p = SeverityPolicies::default();
        let c = TickContext {
            policies: &p,
            escalation: None,
            schedules: &[],
            service_name: "API",
            timeline: &[],
        };
        let mut i = sev1();
        i.roles.assign(Role::Commander, "ic");
        i.transition(
            IncidentStatus::Resolved,
            Default::default(),
            None,
            &p,
            T0 + Duration::minutes(10),
        )
        .unwrap();
        assert!(i.tick(&c, T0 + Duration::minutes(39)).1.is_empty());
        let (_, out) = i.tick(&c, T0 + Duration::minutes(40));
        assert!(out.len() >= 3, "the 30-minute items: {out:?}");
        assert!(
            out.iter()
                .any(|o| o.audience == Audience::People(vec!["ic".into()]))
        );
        assert!(
            i.tick(&c, T0 + Duration::minutes(41)).1.is_empty(),
            "once per item"
        );
    }
}
