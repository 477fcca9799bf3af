//! Severity re-evaluation of monitor-driven incidents as the monitors' signals change.
//!
//! A worse assessment raises the open incident at once, with the tree's trace and the signals
//! in the timeline; a better one is only suggested (a `severity_downgrade_suggested` event),
//! because lowering severity stands people down and slows the update cadence, which a person
//! must decide. The same raise happens for alerts through their severity label; this is the
//! path for changes that arrive without a new alert (a share creeping up, latency rising).

use warroom_domain::{
    EventKind, IncidentStatus,
    detection::{Assessment, SeverityReview, review_severity},
};
use warroom_store::IncidentFilter;

use crate::{AppState, error::ApiError};

/// Who the timeline names for these changes.
const AUTHOR: &str = "monitors";

/// The last downgrade suggestion since the severity last changed, so one is not repeated.
fn last_suggestion(events: &[warroom_domain::TimelineEvent]) -> Option<warroom_domain::Severity> {
    for e in events.iter().rev() {
        match &e.kind {
            EventKind::SeverityDowngradeSuggested { to, .. } => return Some(*to),
            EventKind::SeverityChanged { .. } | EventKind::Declared { .. } => return None,
            _ => {}
        }
    }
    None
}

/// Applies a new assessment of `service` to its open incident, if it has one. Returns what was
/// done (`None`: no open incident, or the service is in a maintenance window).
pub async fn review_monitor_severity(
    state: &AppState,
    service: &str,
    assessment: &Assessment,
) -> Result<Option<SeverityReview>, ApiError> {
    // Muted when a silence covers every DOWN monitor's alert, matched on the labels those
    // alerts really carry (a silence on `monitor=...` included).
    let now = state.clock.now();
    let silences = state.silences.current();
    if !assessment.alerts.is_empty()
        && assessment
            .alerts
            .iter()
            .all(|labels| silences.iter().any(|s| s.mutes(labels, now)))
    {
        return Ok(None);
    }
    let filter = IncidentFilter {
        statuses: IncidentStatus::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .collect(),
        service: Some(service.to_owned()),
        limit: 1,
        ..Default::default()
    };
    let Some(incident) = state
        .store
        .list_incidents(&filter)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let review = review_incident(
        state,
        incident.number,
        AUTHOR,
        &assessment.classification,
        Some(assessment.signals.to_signals()),
        &assessment.reason,
    )
    .await?;
    Ok(Some(review))
}

/// Raises the incident to `classification`'s severity when that is worse, or suggests lowering
/// it (once per level since the last change) when better; decided under the incident's lock.
pub async fn review_incident(
    state: &AppState,
    number: warroom_domain::IncidentNumber,
    author: &str,
    classification: &warroom_domain::Classification,
    signals: Option<warroom_domain::Signals>,
    reason: &str,
) -> Result<SeverityReview, ApiError> {
    let now = state.clock.now();
    let already = last_suggestion(&state.store.timeline(number).await?);
    let policies = state.settings.policies.clone();
    let (c, reason) = (classification.clone(), reason.to_owned());
    let outcome = std::sync::Arc::new(std::sync::Mutex::new(SeverityReview::Keep));
    let seen = outcome.clone();
    state
        .store
        .mutate_incident(
            number,
            author,
            now,
            Box::new(move |i| {
                let review = review_severity(i.severity, c.severity, already);
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = review;
                Ok(match review {
                    SeverityReview::Keep => vec![].into(),
                    SeverityReview::Raise(_) => i
                        .change_severity(c, signals, Some(reason), &policies, now)?
                        .into(),
                    SeverityReview::SuggestDowngrade(to) => {
                        vec![EventKind::SeverityDowngradeSuggested {
                            from: i.severity,
                            to,
                            trace: c.trace,
                            reason,
                        }]
                        .into()
                    }
                })
            }),
        )
        .await?;
    let review = *outcome.lock().unwrap_or_else(|p| p.into_inner());
    if review != SeverityReview::Keep {
        tracing::info!(incident.number = number, author, review = ?review, "severity re-evaluated");
    }
    Ok(review)
}
