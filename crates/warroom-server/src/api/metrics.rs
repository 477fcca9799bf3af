//! `/metrics` in the Prometheus text format, computed from the store on each scrape so that
//! several processes report one truth.

use axum::{extract::State, http::header, response::IntoResponse};
use std::fmt::Write;
use warroom_domain::{IncidentStatus, Severity};
use warroom_store::IncidentFilter;

use crate::{AppState, error::ApiError};

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP warroom_notifications Notifications in the outbox by delivery state."
    );
    let _ = writeln!(out, "# TYPE warroom_notifications gauge");
    for (status, n) in state.store.outbox_counts().await? {
        let _ = writeln!(
            out,
            "warroom_notifications{{status=\"{}\"}} {n}",
            status.as_str()
        );
    }
    let open: Vec<IncidentStatus> = IncidentStatus::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .collect();
    let incidents = state
        .store
        .list_incidents(&IncidentFilter {
            statuses: open,
            limit: 500,
            ..Default::default()
        })
        .await?;
    let _ = writeln!(
        out,
        "# HELP warroom_open_incidents Open incidents by severity."
    );
    let _ = writeln!(out, "# TYPE warroom_open_incidents gauge");
    for sev in Severity::ALL {
        let n = incidents.iter().filter(|i| i.severity == sev).count();
        let _ = writeln!(
            out,
            "warroom_open_incidents{{severity=\"{}\"}} {n}",
            sev.level()
        );
    }
    let now = state.clock.now();
    let overdue = incidents
        .iter()
        .filter(|i| i.next_update_due.is_some_and(|d| now > d))
        .count();
    let unacked = incidents
        .iter()
        .filter(|i| i.paging.policy.is_some() && i.paging.acknowledged_by.is_none())
        .count();
    let _ = writeln!(
        out,
        "# HELP warroom_updates_overdue Open incidents whose status update is overdue."
    );
    let _ = writeln!(out, "# TYPE warroom_updates_overdue gauge");
    let _ = writeln!(out, "warroom_updates_overdue {overdue}");
    let _ = writeln!(
        out,
        "# HELP warroom_pages_unacknowledged Open incidents paged and not acknowledged."
    );
    let _ = writeln!(out, "# TYPE warroom_pages_unacknowledged gauge");
    let _ = writeln!(out, "warroom_pages_unacknowledged {unacked}");
    let _ = writeln!(
        out,
        "# HELP warroom_service_health 1 for each service's current health state."
    );
    let _ = writeln!(out, "# TYPE warroom_service_health gauge");
    for h in state.store.service_health().await? {
        let _ = writeln!(
            out,
            "warroom_service_health{{service=\"{}\",status=\"{}\"}} 1",
            h.service, h.status
        );
    }
    let alerts = state.store.alert_gauges(1000).await?;
    let _ = writeln!(
        out,
        "# HELP warroom_alerts_firing Alerts currently firing (at most 1000 counted)."
    );
    let _ = writeln!(out, "# TYPE warroom_alerts_firing gauge");
    let _ = writeln!(out, "warroom_alerts_firing {}", alerts.firing);
    let _ = writeln!(
        out,
        "# HELP warroom_alert_intake_waiting Alerts accepted and committed, not yet merged into the alert table (so not yet counted above or acted on)."
    );
    let _ = writeln!(out, "# TYPE warroom_alert_intake_waiting gauge");
    let _ = writeln!(
        out,
        "warroom_alert_intake_waiting {}",
        alerts.intake_waiting
    );
    use super::alerts::{DEDUPLICATED, INCIDENTS_OPENED, RECEIVED};
    use std::sync::atomic::Ordering::Relaxed;
    for (name, help, v) in [
        (
            "warroom_alerts_received_total",
            "Alerts received on the intake endpoints and from monitors.",
            RECEIVED.load(Relaxed),
        ),
        (
            "warroom_alerts_deduplicated_total",
            "Alerts received again with nothing new.",
            DEDUPLICATED.load(Relaxed),
        ),
        (
            "warroom_incidents_opened_total",
            "Incidents opened from alerts and monitors.",
            INCIDENTS_OPENED.load(Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {v}");
    }
    if let Some(extra) = &state.settings.extra_metrics {
        out.push_str(&extra());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
