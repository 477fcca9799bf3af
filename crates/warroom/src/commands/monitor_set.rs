//! The set of monitors `serve` runs: the config's, plus the API's from the store, reloaded when
//! the store's monitor-set version moves. Polling the version (one indexed row, once a second)
//! keeps the server and the scheduler meeting only through the store, and also picks up
//! changes made through another `serve` on the same database.

use std::collections::BTreeSet;
use warroom_domain::monitor::Monitor;
use warroom_store::Store;

/// How often the scheduler looks for API changes: an added monitor starts, and a deleted one
/// stops, within this much time.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Remembers the version last loaded.
#[derive(Debug, Default)]
pub struct Reloader {
    seen: Option<i64>,
}

impl Reloader {
    /// The new full set when the stored one changed since the last call (always on the first
    /// call); `None` when unchanged or the database could not be read (the running set stays).
    pub async fn poll(&mut self, store: &dyn Store, config: &[Monitor]) -> Option<Vec<Monitor>> {
        let version = match store.monitor_set_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the monitor set version; keeping the running monitors");
                return None;
            }
        };
        if self.seen == Some(version) {
            return None;
        }
        let stored = match store.api_monitors().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load API monitors; keeping the running monitors");
                return None;
            }
        };
        self.seen = Some(version);
        let mut ids: BTreeSet<&str> = config.iter().map(|m| m.id.as_str()).collect();
        let mut set = config.to_vec();
        for s in &stored {
            if !ids.insert(s.spec.id.as_str()) {
                tracing::warn!(monitor.id = %s.spec.id, "an API monitor has the id of a config monitor; running the config one");
                continue;
            }
            // Stored specs were validated when written; a rule tightened by an upgrade must not
            // stop every other monitor, so only this one is skipped.
            match s.spec.validate(&format!("monitor {}", s.spec.id)) {
                Ok(m) => set.push(m),
                Err(e) => {
                    tracing::warn!(monitor.id = %s.spec.id, error = %e, "stored monitor does not validate; not running it")
                }
            }
        }
        tracing::info!(
            monitors = set.len(),
            api = set.len() - config.len(),
            version,
            "monitor set loaded"
        );
        Some(set)
    }
}

/// Picks up where an earlier process stopped, part one: the stored results of the window and
/// its baseline, so that a restart does not start the signals blind. Once, with the whole set
/// of monitors (the API's too) on the board; a failure only costs the signals their history,
/// with a warning.
pub async fn refill(
    board: &mut warroom_domain::detection::MonitorBoard,
    state: &warroom_server::AppState,
) {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let w = *board.window();
    // A minute at a time: the whole hour of 10,000 monitors at once would be a hundred
    // megabytes held for a moment.
    let mut from = now - w.window - w.baseline;
    let mut n = 0;
    while from <= now {
        let to = from + time::Duration::MINUTE;
        match store.recent_checks(from, to).await {
            Ok(checks) => {
                n += checks.len();
                for c in checks {
                    board.record(
                        &c.monitor,
                        warroom_domain::window::CheckSample {
                            at: c.at,
                            ok: c.ok,
                            failure: c.failure,
                            latency_ms: u32::try_from(c.latency_ms).unwrap_or(u32::MAX),
                        },
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stored check results; the monitors' signals start from the next results");
                return;
            }
        }
        from = to;
    }
    tracing::info!(checks = n, "monitors' window refilled from stored results");
}

/// Part two, after [`refill`]: which monitors' alerts still fire, so that a recovery during
/// the restart resolves them; alerts of monitors no longer on the board are resolved. Returns
/// false when the alerts could not be read (try again later).
pub async fn resume(
    board: &mut warroom_domain::detection::MonitorBoard,
    state: &warroom_server::AppState,
) -> bool {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let firing = match store
        .firing_alerts_named(&warroom_domain::detection::MONITOR_ALERTS)
        .await
    {
        Ok(firing) => firing,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the monitors' firing alerts; trying again at the next reload");
            return false;
        }
    };
    let labels: Vec<_> = firing.into_iter().map(|a| a.labels).collect();
    let retired = board.resume(&labels, now);
    if !retired.is_empty() {
        tracing::info!(
            alerts = retired.len(),
            "resolving the alerts of monitors removed while warroom was stopped"
        );
        if let Err(e) = warroom_server::api::alerts::ingest(state, retired).await {
            tracing::error!(error = ?e, "could not resolve the alerts of removed monitors");
        }
    }
    true
}

/// What the signals need of a check result.
pub fn sample(event: &warroom_worker::ProbeEvent) -> warroom_domain::window::CheckSample {
    warroom_domain::window::CheckSample {
        at: event.started_at,
        ok: event.result.outcome.is_success(),
        failure: event.result.failure,
        latency_ms: u32::try_from(event.result.latency.as_millis()).unwrap_or(u32::MAX),
    }
}

/// The evidence a transition's alert carries into the incident: the runbook's failure kind, the
/// error, the status and the latency.
pub fn detail(event: &warroom_worker::ProbeEvent) -> String {
    let r = &event.result;
    let mut facts = Vec::new();
    if let Some(e) = &r.error {
        facts.push(e.clone());
    }
    if let Some(code) = r.status_code {
        facts.push(format!("HTTP {code}"));
    }
    facts.push(format!("{} ms", r.latency.as_millis()));
    match r.failure {
        Some(f) => format!("{f} ({})", facts.join("; ")),
        None => format!("recovered ({})", facts.join("; ")),
    }
}

/// The severity last assessed per service while its monitors are DOWN, so that the incident is
/// reviewed only when the assessment changes, not on every check.
#[derive(Debug, Default)]
pub struct Assessed {
    by_service: std::collections::HashMap<String, warroom_domain::Severity>,
}

impl Assessed {
    /// Re-assesses the event's service and, when the severity the signals give has changed,
    /// raises its open incident or suggests a downgrade.
    pub async fn review(
        &mut self,
        board: &warroom_domain::detection::MonitorBoard,
        event: &warroom_worker::ProbeEvent,
        state: &warroom_server::AppState,
    ) {
        let Some(service) = board.service_of(&event.monitor_id) else {
            return;
        };
        let Some(a) = board.assess(service, event.started_at) else {
            self.by_service.remove(service);
            return;
        };
        if self.by_service.get(service) == Some(&a.classification.severity) {
            return;
        }
        match warroom_server::api::detection::review_monitor_severity(state, service, &a).await {
            Ok(_) => {
                self.by_service
                    .insert(service.to_owned(), a.classification.severity);
            }
            // Not remembered, so the next result tries again.
            Err(e) => {
                tracing::warn!(service.slug = %service, error = ?e, "could not re-evaluate severity")
            }
        }
    }
}

/// A certificate warning's alert when it starts or stops. Only a check that saw the certificate
/// can say: a failed check (its `MonitorDown` speaks for it) and one over a reused pooled
/// connection (no handshake, no certificate) leave the warning as it was, or it would flap.
pub fn cert_warning(
    board: &mut warroom_domain::detection::MonitorBoard,
    event: &warroom_worker::ProbeEvent,
    now: time::OffsetDateTime,
) -> Option<warroom_domain::alert::Alert> {
    use warroom_domain::monitor::FailureKind;
    if !event.result.outcome.is_success() || event.result.cert_not_after.is_none() {
        return None;
    }
    let warning = (event.result.failure == Some(FailureKind::CertExpiring)).then(|| {
        event
            .result
            .error
            .as_deref()
            .unwrap_or("certificate expires soon")
    });
    board.cert_warning(&event.monitor_id, warning, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;
    use warroom_domain::monitor::{FailureKind, MonitorSpec, MonitorStatus};
    use warroom_worker::{CheckResult, Outcome, ProbeEvent};

    fn event(outcome: Outcome, failure: Option<FailureKind>, cert: bool) -> ProbeEvent {
        ProbeEvent {
            monitor_id: "web".into(),
            started_at: datetime!(2026-01-12 14:30 UTC),
            drift: Duration::ZERO,
            result: CheckResult {
                outcome,
                failure,
                latency: Duration::from_millis(12),
                status_code: Some(200),
                error: failure.map(|_| "certificate expires in 9 days (warning at 30)".into()),
                cert_not_after: cert.then_some(datetime!(2026-01-21 14:30 UTC)),
            },
            status: MonitorStatus::Up,
            transition: None,
        }
    }

    #[test]
    fn certificate_warnings_change_only_on_checks_that_saw_the_certificate() {
        let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
            "id": "web", "service": "shop", "interval_secs": 30,
            "check": { "kind": "http", "url": "https://shop.example.com/", "cert_expiry_warn_days": 30 }
        }))
        .unwrap();
        let mut board =
            warroom_domain::detection::MonitorBoard::new(&[spec.validate("m").unwrap()]);
        let now = datetime!(2026-01-12 14:30 UTC);
        let warn = event(Outcome::Warning, Some(FailureKind::CertExpiring), true);
        let fired = cert_warning(&mut board, &warn, now).unwrap();
        assert_eq!(fired.ends_at, None);
        assert!(fired.annotations["description"].contains("9 days"));
        // A pooled connection (no certificate seen) and a failed check change nothing.
        assert!(cert_warning(&mut board, &event(Outcome::Up, None, false), now).is_none());
        assert!(
            cert_warning(
                &mut board,
                &event(Outcome::Down, Some(FailureKind::Hung), false),
                now
            )
            .is_none()
        );
        // A fresh handshake with a renewed certificate resolves it.
        let resolved = cert_warning(&mut board, &event(Outcome::Up, None, true), now).unwrap();
        assert_eq!(resolved.ends_at, Some(now));
    }
}
