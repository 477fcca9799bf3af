//! The runbook's messages, rendered from recorded state as plain text.
//!
//! Slack formatting comes later as an adapter over the same content; these are the fallbacks and
//! what the CLI prints.

use time::{Duration, OffsetDateTime};

use crate::{
    EventKind, Incident, IncidentStatus, SeverityPolicies, TimelineEvent,
    timefmt::{date, hm_utc, human_duration},
};

fn status_word(s: IncidentStatus) -> String {
    let w = s.as_str();
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn next_update(incident: &Incident, policies: &SeverityPolicies) -> String {
    match incident.next_update_due {
        Some(t) => hm_utc(t),
        None => policies.get(incident.severity).cadence.summary.clone(),
    }
}

/// `🔴 INCIDENT DECLARED`.
pub fn declared(incident: &Incident, service_name: &str, policies: &SeverityPolicies) -> String {
    let p = policies.get(incident.severity);
    let status = match incident.status {
        IncidentStatus::Declared => "Unknown".to_owned(),
        s => status_word(s),
    };
    format!(
        "{marker} INCIDENT DECLARED\nService: {service_name}\nSeverity: {sev}\nTime Detected: {detected}\nCurrent Status: {status}\nNext Update: {next}\nChannel: {channel}",
        marker = p.marker,
        sev = p.label(),
        detected = hm_utc(incident.detected_at),
        next = next_update(incident, policies),
        channel = incident.channel,
    )
}

/// `⏱️ 14:35 UTC UPDATE` for the last posted update.
pub fn update(incident: &Incident, on_call: Option<&str>) -> Option<String> {
    let u = incident.last_update.as_ref()?;
    let eta = u
        .next_update_due
        .map(hm_utc)
        .unwrap_or_else(|| "when there is news".to_owned());
    let mut s = format!(
        "⏱️ {} UPDATE\nStatus: {}\nCurrent Action: {}\nFindings: {}\nNext Step: {}\nETA for Update: {eta}",
        hm_utc(u.posted_at),
        status_word(u.status),
        u.current_action,
        u.findings,
        u.next_step,
    );
    if let Some(who) = on_call {
        s.push_str(&format!("\n/cc @{who}"));
    }
    Some(s)
}

/// The public status page entry.
pub fn status_page(
    incident: &Incident,
    service_name: &str,
    policies: &SeverityPolicies,
    now: OffsetDateTime,
) -> String {
    let state = match incident.status {
        IncidentStatus::Declared | IncidentStatus::Investigating => {
            "Investigating: Our team is investigating the problem"
        }
        IncidentStatus::Identified => {
            "Identified: The cause has been identified and a fix is being worked on"
        }
        IncidentStatus::Mitigating => "Mitigating: A fix is being applied",
        IncidentStatus::Monitoring => {
            "Monitoring: A fix has been applied and we are monitoring the results"
        }
        IncidentStatus::Resolved | IncidentStatus::Closed => {
            "Resolved: This incident has been resolved"
        }
    };
    let degraded = match incident.severity {
        crate::Severity::Sev1 => "Major Outage",
        crate::Severity::Sev2 => "Partially Degraded",
        _ => "Degraded Performance",
    };
    let impact = incident
        .impact
        .describe()
        .or_else(|| {
            incident
                .signals
                .failing_percent
                .map(|p| format!("~{p}% of requests failing"))
        })
        .unwrap_or_else(|| "Being assessed".to_owned());
    let last = incident
        .last_update
        .as_ref()
        .map(|u| u.posted_at)
        .unwrap_or(incident.declared_at);
    let next = match incident.status.is_open() {
        true => policies
            .get(incident.severity)
            .cadence
            .status_page_update_secs
            .map(|s| hm_utc(last + Duration::seconds(s)))
            .unwrap_or_else(|| "when there is news".into()),
        false => "none (resolved)".into(),
    };
    format!(
        "INCIDENT: {service_name} {degraded}\n{state}\nDuration: {}\nImpact: {impact}\nLast Updated: {}\nNext Update: {next}",
        human_duration(incident.duration(now)),
        hm_utc(last),
    )
}

/// The Sev1 escalation message: service, duration, what was tried, symptoms, why stuck.
pub fn escalation(
    incident: &Incident,
    service_name: &str,
    events: &[TimelineEvent],
    why_stuck: &str,
    now: OffsetDateTime,
) -> String {
    let tried: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActionTaken { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let tried = if tried.is_empty() {
        "nothing recorded yet".to_owned()
    } else {
        tried.join("; ")
    };
    let symptoms = incident
        .last_update
        .as_ref()
        .map(|u| u.findings.clone())
        .unwrap_or_else(|| incident.summary.clone());
    format!(
        "Escalating to senior engineering team.\nPage @senior-engineer-on-call immediately.\nActivating Incident War Room.\nService: {service_name}\nDuration so far: {}\nWhat's been tried: {tried}\nCurrent symptoms: {symptoms}\nWhy stuck: {why_stuck}",
        human_duration(incident.duration(now)),
    )
}

/// `✅ INCIDENT RESOLVED`. `None` until the incident is resolved.
pub fn resolved(incident: &Incident) -> Option<String> {
    let end = incident.resolved_at?;
    let d = end - incident.detected_at;
    let postmortem = end + Duration::hours(24);
    Some(format!(
        "✅ INCIDENT RESOLVED\n\nDuration: {} to {} = {}\nRoot Cause: {}\nFix Applied: {}\nImpact: {}\n\nStatus: All services healthy\nMonitoring: Continuing for 1 hour\nPost-mortem: Scheduled for {} (within 24 hours)",
        hm_utc(incident.detected_at),
        hm_utc(end),
        human_duration(d),
        incident.root_cause.as_deref().unwrap_or("not recorded yet"),
        incident
            .fix_applied
            .as_deref()
            .unwrap_or("not recorded yet"),
        incident
            .impact
            .describe()
            .unwrap_or_else(|| "not recorded yet".into()),
        date(postmortem),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Impact, incident::ResolutionFields};
    use time::macros::datetime;

    fn incident() -> (Incident, SeverityPolicies, OffsetDateTime) {
        let t0 = datetime!(2026-01-12 14:32 UTC);
        (
            crate::incident::tests::declared(t0),
            SeverityPolicies::default(),
            t0,
        )
    }

    #[test]
    fn declared_message_has_the_runbook_fields() {
        let (i, p, _) = incident();
        let m = declared(&i, "API", &p);
        assert_eq!(
            m,
            "🟠 INCIDENT DECLARED\nService: API\nSeverity: 2 (Major)\nTime Detected: 14:29 UTC\nCurrent Status: Unknown\nNext Update: 14:37 UTC\nChannel: #incident-20260112-api"
        );
    }

    #[test]
    fn update_message_uses_the_cadence() {
        let (mut i, p, t0) = incident();
        assert!(update(&i, None).is_none());
        i.post_update(
            "Checking pod logs",
            "Backend pods in CrashLoopBackOff",
            "Review recent deployment",
            &p,
            t0 + Duration::minutes(3),
        )
        .unwrap();
        let m = update(&i, Some("oncall")).unwrap();
        assert_eq!(
            m,
            "⏱️ 14:35 UTC UPDATE\nStatus: Declared\nCurrent Action: Checking pod logs\nFindings: Backend pods in CrashLoopBackOff\nNext Step: Review recent deployment\nETA for Update: 14:40 UTC\n/cc @oncall"
        );
    }

    #[test]
    fn status_page_and_resolution() {
        let (mut i, p, t0) = incident();
        let m = status_page(&i, "API", &p, t0 + Duration::minutes(2));
        assert!(
            m.starts_with("INCIDENT: API Partially Degraded\nInvestigating:"),
            "{m}"
        );
        assert!(m.contains("Duration: 5 minutes"), "{m}");
        assert!(m.contains("Impact: ~30% of requests failing"), "{m}");
        assert!(resolved(&i).is_none());
        i.transition(
            IncidentStatus::Resolved,
            ResolutionFields {
                root_cause: Some("Bad config push".into()),
                fix_applied: Some("Rolled back".into()),
                impact: Some(Impact {
                    who: Some("API users".into()),
                    how_many: Some("1200".into()),
                    how_long: Some("21 minutes".into()),
                }),
                ..Default::default()
            },
            None,
            &p,
            t0 + Duration::minutes(18),
        )
        .unwrap();
        let m = resolved(&i).unwrap();
        assert!(
            m.contains("Duration: 14:29 UTC to 14:50 UTC = 21 minutes"),
            "{m}"
        );
        assert!(m.contains("Root Cause: Bad config push"), "{m}");
        assert!(m.contains("Impact: ~1200 API users for 21 minutes"), "{m}");
        assert!(m.contains("Post-mortem: Scheduled for 2026-01-13"), "{m}");
    }

    #[test]
    fn escalation_lists_actions_from_the_timeline() {
        let (i, _, t0) = incident();
        let ev = vec![TimelineEvent {
            id: 1,
            incident: 1,
            at: t0,
            author: "ana".into(),
            kind: EventKind::ActionTaken {
                text: "Restarted pods".into(),
            },
        }];
        let m = escalation(
            &i,
            "API",
            &ev,
            "cause not identified after 5 minutes",
            t0 + Duration::minutes(5),
        );
        assert!(
            m.contains(
                "Service: API\nDuration so far: 8 minutes\nWhat's been tried: Restarted pods"
            ),
            "{m}"
        );
        assert!(
            m.ends_with("Why stuck: cause not identified after 5 minutes"),
            "{m}"
        );
    }
}
