//! From monitors to incidents: a DOWN or UP transition becomes an alert, so that checks and
//! Prometheus alerts share one path into incidents (grouping, severity, paging, recovery).
//!
//! The alert's severity comes from the decision tree over the service's own monitors, with the
//! sliding-window signals of [`crate::window`] (users can access, failing and 5xx share,
//! recovering, latency against the service's baseline). While a monitor is DOWN the board
//! re-assesses the service as results arrive; [`review_severity`] turns a new assessment into an
//! automatic raise or a downgrade that is only suggested.

use std::collections::BTreeMap;
use time::OffsetDateTime;

use crate::{
    Classification, Severity, Signals,
    alert::{
        Alert, INCIDENT_TYPE_ANNOTATION, INCIDENT_TYPE_BECAUSE_ANNOTATION, LabelSet, fingerprint,
        recognise_checks,
    },
    classifier::SeverityBasis,
    classify,
    monitor::{Monitor, MonitorStatus, Thresholds},
    window::{
        CheckSample, MonitorHistory, MonitorView, RecentChecks, WindowConfig, WindowSignals,
        window_signals,
    },
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

/// The severity a [`severity_label`] value stands for.
fn severity_of_label(label: &str) -> Option<Severity> {
    [
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ]
    .into_iter()
    .find(|s| severity_label(*s) == label)
}

/// The severity a monitor's own alert (`MonitorDown`, `MonitorDegraded`) was raised at, read
/// from the label monitors write, whatever label and values the operator mapped for other
/// senders: a `severity_label = "priority"` must not turn a monitor's Sev1 into the default.
pub fn monitor_alert_severity(labels: &LabelSet) -> Option<Severity> {
    let name = labels.get("alertname")?;
    if (name != DOWN_ALERT && name != DEGRADED_ALERT) || !labels.contains_key("monitor") {
        return None;
    }
    severity_of_label(labels.get("severity")?)
}

/// What every monitor last said, and its recent results for the sliding-window signals.
#[derive(Debug, Clone, Default)]
pub struct MonitorBoard {
    monitors: BTreeMap<String, Entry>,
    /// Monitor ids by service: every result looks at its own service only, so the cost of a
    /// result does not grow with the number of monitors elsewhere (10,000 in the benchmark).
    by_service: BTreeMap<String, Vec<String>>,
    window: WindowConfig,
}

#[derive(Debug, Clone)]
struct Entry {
    monitor: Monitor,
    status: MonitorStatus,
    history: MonitorHistory,
    cert_warning: bool,
    /// When it last came back UP from DOWN: the outage's failures are not a degradation.
    up_since: Option<OffsetDateTime>,
    /// The severity its `MonitorDegraded` alert fired with, while it fires.
    degraded: Option<Severity>,
}

impl Entry {
    fn new(monitor: Monitor) -> Self {
        Entry {
            monitor,
            status: MonitorStatus::Pending,
            history: MonitorHistory::default(),
            cert_warning: false,
            up_since: None,
            degraded: None,
        }
    }
}

/// The alert name of a certificate close to expiry: the runbook's Sev4 example ("SSL cert
/// expiring in 30 days"), separate from `MonitorDown` because the monitor stays up.
pub const CERT_EXPIRING_ALERT: &str = "CertificateExpiring";

/// The alert name of a DOWN monitor.
pub const DOWN_ALERT: &str = "MonitorDown";

/// Every alert a monitor raises, by name.
pub const MONITOR_ALERTS: [&str; 3] = [DOWN_ALERT, DEGRADED_ALERT, CERT_EXPIRING_ALERT];

/// The alert name of a monitor whose checks show trouble short of DOWN: it flaps, or it is
/// slow. It makes the service DEGRADED (or UNHEALTHY, by its severity) without a DOWN monitor.
pub const DEGRADED_ALERT: &str = "MonitorDegraded";

/// Trouble short of DOWN, with the severity the runbook's table gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Degradation {
    /// By the failing share and the latency against the baseline, the worse of the two.
    pub severity: Severity,
    /// The numbers, for the alert and the timeline.
    pub reason: String,
}

/// Latency ratio at which a degradation ends once it fired: a ratio wobbling around 2× must
/// not fire and resolve the alert on every check.
const LATENCY_CALM: f64 = 1.5;

/// Whether a monitor that is not DOWN is degraded, from its checks in the window since it was
/// last DOWN ([`MonitorHistory::recent`]):
/// - it flaps: it failed at least as many checks as it takes in a row to go DOWN (and at least
///   two: with one, every failure is a DOWN), and at least 5 % of them (the runbook's Sev3
///   "5-10% error rate"); or
/// - it is slow: its median latency is at least twice its baseline (Sev3 "elevated latency
///   (2x normal)"; 10× is Sev2). Once degraded, it stays so until below 1.5×.
///
/// The failing share gives Sev3 from 5 %, Sev2 from 10 %, like the decision tree, but never
/// Sev1: a monitor that is not DOWN still gets answers, which is the runbook's Sev2
/// "intermittent connectivity", and complete outages are `MonitorDown`'s.
pub fn degradation(
    recent: &RecentChecks,
    thresholds: Thresholds,
    cfg: &WindowConfig,
    firing: bool,
) -> Option<Degradation> {
    let failing = recent.failing_percent().unwrap_or(0.0);
    let flaps = recent.failed >= thresholds.failures_to_down.max(2) as usize && failing >= 5.0;
    let by_failures = flaps.then_some(if failing >= 10.0 {
        Severity::Sev2
    } else {
        Severity::Sev3
    });
    let ratio = recent.latency_ratio.unwrap_or(0.0);
    let slow_from = if firing { LATENCY_CALM } else { 2.0 };
    let by_latency = if ratio >= 10.0 {
        Some(Severity::Sev2)
    } else if ratio >= slow_from {
        Some(Severity::Sev3)
    } else {
        None
    };
    let severity = match (by_failures, by_latency) {
        (Some(a), Some(b)) => {
            if a.is_more_severe_than(b) {
                a
            } else {
                b
            }
        }
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => return None,
    };
    let mut parts = Vec::new();
    if flaps {
        parts.push(format!(
            "failed {} of {} checks over the last {} ({:.0}%, {} with HTTP 5xx) without going DOWN ({} in a row)",
            recent.failed,
            recent.checks,
            crate::timefmt::human_duration(cfg.window),
            failing,
            recent.crashed,
            thresholds.failures_to_down
        ));
    }
    if by_latency.is_some() {
        parts.push(format!("median latency {ratio:.1}x its baseline"));
    }
    Some(Degradation {
        severity,
        reason: parts.join("; "),
    })
}

/// A severity the signals arrived at, with what it was decided from.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The decision tree's answer and trace.
    pub classification: Classification,
    /// The window's signals.
    pub signals: WindowSignals,
    /// The signals in words, for the timeline.
    pub reason: String,
    /// The labels of the alerts the assessment speaks for (the DOWN monitors', or with none
    /// DOWN the degraded ones'), so that whoever acts on it can tell whether a silence mutes
    /// them.
    pub alerts: Vec<LabelSet>,
}

/// What to do with an open incident's severity after a new assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeverityReview {
    /// The signals are worse than the incident: raise it (automatic, with a timeline event).
    Raise(Severity),
    /// The signals are better: suggest lowering it, once per suggested level; never applied.
    SuggestDowngrade(Severity),
    /// Nothing to do.
    Keep,
}

/// Raises automatically, only suggests a downgrade, and does not repeat a suggestion already
/// made for the same level (`already_suggested`: the last suggestion since the severity last
/// changed).
pub fn review_severity(
    current: Severity,
    assessed: Severity,
    already_suggested: Option<Severity>,
) -> SeverityReview {
    if assessed.is_more_severe_than(current) {
        SeverityReview::Raise(assessed)
    } else if current.is_more_severe_than(assessed) && already_suggested != Some(assessed) {
        SeverityReview::SuggestDowngrade(assessed)
    } else {
        SeverityReview::Keep
    }
}

impl MonitorBoard {
    /// A board of monitors, all pending, with the default window (5 minutes, 1 hour baseline).
    pub fn new(monitors: &[Monitor]) -> Self {
        Self::with_window(monitors, WindowConfig::default())
    }

    /// A board with a configured window.
    pub fn with_window(monitors: &[Monitor], window: WindowConfig) -> Self {
        let mut b = MonitorBoard {
            monitors: monitors
                .iter()
                .map(|m| (m.id.clone(), Entry::new(m.clone())))
                .collect(),
            by_service: BTreeMap::new(),
            window,
        };
        b.reindex();
        b
    }

    fn reindex(&mut self) {
        self.by_service.clear();
        for (id, e) in &self.monitors {
            self.by_service
                .entry(e.monitor.service.to_string())
                .or_default()
                .push(id.clone());
        }
    }

    fn of_service<'a>(&'a self, service: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|id| self.monitors.get(id))
    }

    /// The window in force.
    pub fn window(&self) -> &WindowConfig {
        &self.window
    }

    /// Replaces the set of monitors (API monitors come and go while warroom runs). Unchanged
    /// monitors keep their status and history; a changed one starts over as pending, as the
    /// scheduler restarts its flap damping. A monitor that was DOWN and is removed or changed
    /// has its alert resolved, returned here, so its incident is not held open by a check that
    /// no longer runs; if the changed monitor still fails it goes DOWN again and rejoins.
    pub fn replace_monitors(&mut self, monitors: &[Monitor], now: OffsetDateTime) -> Vec<Alert> {
        let mut old = std::mem::take(&mut self.monitors);
        let mut resolved = Vec::new();
        let retire = |e: Entry, why: &str, out: &mut Vec<Alert>| {
            if e.status == MonitorStatus::Down {
                out.push(alert(&e.monitor, false, Severity::Sev3, why, now));
            }
            if e.cert_warning {
                out.push(cert_alert(&e.monitor, None, now));
            }
            if e.degraded.is_some() {
                out.push(degraded_alert(&e.monitor, None, now));
            }
        };
        for m in monitors {
            let entry = match old.remove(&m.id) {
                Some(e) if e.monitor == *m => e,
                Some(e) => {
                    retire(e, "monitor redefined; checking it afresh", &mut resolved);
                    Entry::new(m.clone())
                }
                None => Entry::new(m.clone()),
            };
            self.monitors.insert(m.id.clone(), entry);
        }
        for (_, e) in old {
            retire(e, "monitor deleted; no longer checked", &mut resolved);
        }
        self.reindex();
        resolved
    }

    /// Adds a check result to the monitor's history (ignored for unknown monitors: a result of
    /// one just removed can still be in flight).
    pub fn record(&mut self, monitor_id: &str, sample: CheckSample) {
        if let Some(e) = self.monitors.get_mut(monitor_id) {
            e.history.record(sample, &self.window);
        }
    }

    /// Follows a monitor's certificate warning: the alert when it starts warning (firing, Sev4
    /// by the `severity="info"` label) and when it stops (resolved: renewed, or the monitor now
    /// fails outright, which its `MonitorDown` covers). `warning` is the probe's message.
    pub fn cert_warning(
        &mut self,
        monitor_id: &str,
        warning: Option<&str>,
        now: OffsetDateTime,
    ) -> Option<Alert> {
        let entry = self.monitors.get_mut(monitor_id)?;
        let warns = warning.is_some();
        if entry.cert_warning == warns {
            return None;
        }
        entry.cert_warning = warns;
        Some(cert_alert(&entry.monitor, warning, now))
    }

    /// Takes up where an earlier process left off, after its results were refilled
    /// ([`MonitorBoard::record`]). `firing` are the labels of alerts still firing in the store
    /// ([`MONITOR_ALERTS`]); those of this board's monitors set where they start. A monitor
    /// whose `MonitorDown` still fires starts DOWN, so that its recovery resolves the alert: a
    /// fresh board would see PENDING → UP, which resolves nothing, and the incident would never
    /// calm. Likewise a degradation and a certificate warning. Returns the resolutions of the
    /// alerts of monitors that no longer exist, or moved to another service, while nobody
    /// watched: nothing would ever resolve them otherwise.
    ///
    /// The earlier process's last recovery of each monitor is gone with it, so it is read off
    /// the results: the end of the last run of failures long enough to have made it DOWN. The
    /// outage before a recent recovery must not read as a degradation after the restart.
    pub fn resume(&mut self, firing: &[LabelSet], now: OffsetDateTime) -> Vec<Alert> {
        for e in self.monitors.values_mut() {
            e.up_since = e
                .history
                .after_last_outage(e.monitor.thresholds.failures_to_down);
        }
        let mut retired = Vec::new();
        for labels in firing {
            let (Some(name), Some(id)) = (labels.get("alertname"), labels.get("monitor")) else {
                continue;
            };
            let e = match self.monitors.get_mut(id) {
                Some(e)
                    if labels.get("service").map(String::as_str)
                        == Some(e.monitor.service.as_str()) =>
                {
                    e
                }
                _ => {
                    retired.push(retired_alert(labels, now));
                    continue;
                }
            };
            match name.as_str() {
                DOWN_ALERT => e.status = MonitorStatus::Down,
                DEGRADED_ALERT => {
                    e.degraded = Some(
                        labels
                            .get("severity")
                            .and_then(|l| severity_of_label(l))
                            .unwrap_or(Severity::Sev3),
                    );
                }
                CERT_EXPIRING_ALERT => e.cert_warning = true,
                _ => {}
            }
        }
        retired
    }

    /// Follows a monitor's degradation ([`degradation`]) after each result: the
    /// `MonitorDegraded` alert when it starts (firing, at its severity) and when it ends
    /// (resolved), which includes the monitor going DOWN, whose own alert speaks for it then.
    /// Call after [`MonitorBoard::transition`].
    pub fn degradation(&mut self, monitor_id: &str, now: OffsetDateTime) -> Option<Alert> {
        let window = self.window;
        let e = self.monitors.get_mut(monitor_id)?;
        let found = if e.status == MonitorStatus::Down {
            None
        } else {
            degradation(
                &e.history.recent(e.up_since, now, &window),
                e.monitor.thresholds,
                &window,
                e.degraded.is_some(),
            )
        };
        match (e.degraded, found) {
            (None, Some(d)) => {
                e.degraded = Some(d.severity);
                let mut a = degraded_alert(&e.monitor, Some(&d), now);
                annotate_incident_type(
                    &mut a,
                    &e.monitor,
                    &e.history.window(e.up_since, now, &window),
                );
                Some(a)
            }
            (Some(_), None) => {
                e.degraded = None;
                Some(degraded_alert(&e.monitor, None, now))
            }
            // Still degraded: the alert stays as it fired; a worse severity reaches the incident
            // through [`MonitorBoard::assess`].
            (Some(_), Some(d)) => {
                e.degraded = Some(d.severity);
                None
            }
            (None, None) => None,
        }
    }

    /// The service a monitor belongs to.
    pub fn service_of(&self, monitor_id: &str) -> Option<&str> {
        self.monitors
            .get(monitor_id)
            .map(|e| e.monitor.service.as_str())
    }

    /// The sliding-window signals of one service at `now`.
    pub fn window_signals(&self, service: &str, now: OffsetDateTime) -> WindowSignals {
        let views: Vec<MonitorView<'_>> = self
            .of_service(service)
            .map(|e| MonitorView {
                user_facing: e.monitor.user_facing,
                status: e.status,
                history: &e.history,
            })
            .collect();
        window_signals(&views, now, &self.window)
    }

    /// The decision tree's signals for one service: the window's, or, before any result is in
    /// the window, the share of its monitors that are DOWN.
    pub fn signals(&self, service: &str, now: OffsetDateTime) -> Signals {
        self.signals_from(&self.window_signals(service, now), service)
    }

    fn signals_from(&self, w: &WindowSignals, service: &str) -> Signals {
        if w.checks > 0 {
            return w.to_signals();
        }
        let of: Vec<&Entry> = self.of_service(service).collect();
        let down = of
            .iter()
            .filter(|e| e.status == MonitorStatus::Down)
            .count();
        Signals {
            users_can_access: w.users_can_access,
            failing_percent: (!of.is_empty()).then(|| down as f64 * 100.0 / of.len() as f64),
            ..Default::default()
        }
    }

    /// The severity the signals give a service while any of its monitors is DOWN (`None`
    /// otherwise: then the monitors hold no incident open).
    pub fn assess(&self, service: &str, now: OffsetDateTime) -> Option<Assessment> {
        let down: Vec<&Monitor> = self
            .of_service(service)
            .filter(|e| e.status == MonitorStatus::Down)
            .map(|e| &e.monitor)
            .collect();
        if down.is_empty() {
            return self.assess_degraded(service, now);
        }
        let signals = self.window_signals(service, now);
        let classification = classification(&self.signals_from(&signals, service));
        Some(Assessment {
            reason: format!("monitors' signals {}", signals.describe(&self.window)),
            alerts: down
                .into_iter()
                .map(|m| down_labels(m, classification.severity))
                .collect(),
            classification,
            signals,
        })
    }

    /// With no monitor DOWN, the worst of the service's degraded monitors: a degradation that
    /// worsens (2× latency, then 40 % failing) raises its incident, one that eases suggests a
    /// downgrade, as for DOWN monitors.
    fn assess_degraded(&self, service: &str, now: OffsetDateTime) -> Option<Assessment> {
        let degraded: Vec<(&Monitor, Severity)> = self
            .of_service(service)
            .filter_map(|e| e.degraded.map(|s| (&e.monitor, s)))
            .collect();
        let severity = degraded.iter().map(|(_, s)| *s).min_by_key(|s| s.level())?;
        let names: Vec<String> = degraded
            .iter()
            .map(|(m, s)| format!("{} ({s})", m.id))
            .collect();
        let signals = self.window_signals(service, now);
        Some(Assessment {
            reason: format!(
                "monitors degraded, none DOWN: {}; service signals {}",
                names.join(", "),
                signals.describe(&self.window)
            ),
            alerts: degraded
                .iter()
                .map(|(m, s)| degraded_labels(m, *s))
                .collect(),
            classification: Classification {
                severity,
                basis: SeverityBasis::DecisionTree,
                trace: vec![crate::TraceStep {
                    question: "degradation".into(),
                    text: "Flapping (failures short of DOWN, 5%+: SEV3, 10%+: SEV2) or slow (2x baseline: SEV3, 10x: SEV2)?".into(),
                    answer: "degraded".into(),
                    value: names.join(", "),
                    outcome: Some(severity),
                }],
            },
            signals,
        })
    }

    /// Records a monitor's new status; returns the alert when it went DOWN (firing) or came back
    /// UP from DOWN (resolved). Record the result that caused it first, so the severity sees it.
    pub fn transition(
        &mut self,
        monitor_id: &str,
        to: MonitorStatus,
        detail: &str,
        now: OffsetDateTime,
    ) -> Option<Alert> {
        let entry = self.monitors.get_mut(monitor_id)?;
        let from = entry.status;
        entry.status = to;
        if from == MonitorStatus::Down && to == MonitorStatus::Up {
            entry.up_since = Some(now);
        }
        let monitor = entry.monitor.clone();
        let firing = match (from, to) {
            (_, MonitorStatus::Down) if from != MonitorStatus::Down => true,
            (MonitorStatus::Down, MonitorStatus::Up) => false,
            _ => return None,
        };
        let severity = classification(&self.signals(monitor.service.as_str(), now)).severity;
        let detail = if firing {
            // The evidence of what the severity was decided from travels with the alert into
            // the incident's timeline.
            let signals = self.window_signals(monitor.service.as_str(), now);
            format!(
                "{detail}; service signals {}",
                signals.describe(&self.window)
            )
        } else {
            detail.to_owned()
        };
        let mut a = alert(&monitor, firing, severity, &detail, now);
        if firing {
            let e = &self.monitors[monitor_id];
            annotate_incident_type(
                &mut a,
                &e.monitor,
                &e.history.window(None, now, &self.window),
            );
        }
        Some(a)
    }
}

/// Well-known ports of databases (PostgreSQL, MySQL and MariaDB, SQL Server, Oracle, MongoDB,
/// CockroachDB): a refused TCP check on one is the runbook's database connectivity, not just an
/// unresponsive service.
const DATABASE_PORTS: [u16; 6] = [5432, 3306, 1433, 1521, 27017, 26257];

/// The runbook's incident type from the checks themselves (5xx share, p99 latency), which the
/// alert's own text cannot show; `alert::recognise` honours the annotation.
fn annotate_incident_type(a: &mut Alert, m: &Monitor, checks: &[crate::alert::CheckSample]) {
    if let Some(mut r) = recognise_checks(checks) {
        if r.incident_type == crate::alert::IncidentType::ServiceUnresponsive
            && let crate::monitor::Check::Tcp { host, port } = &m.check
            && DATABASE_PORTS.contains(port)
        {
            r.incident_type = crate::alert::IncidentType::DatabaseConnectivity;
            r.because = format!(
                "{}, connecting to {host}:{port}, a database port",
                r.because
            );
        }
        a.annotations.insert(
            INCIDENT_TYPE_ANNOTATION.into(),
            r.incident_type.as_str().into(),
        );
        a.annotations
            .insert(INCIDENT_TYPE_BECAUSE_ANNOTATION.into(), r.because);
    }
}

/// A certificate warning's alert: firing with the probe's message, resolved without one.
fn cert_alert(m: &Monitor, warning: Option<&str>, now: OffsetDateTime) -> Alert {
    let mut labels = identity(m);
    labels.insert("alertname".into(), CERT_EXPIRING_ALERT.into());
    let fingerprint = fingerprint(&labels);
    labels.insert("severity".into(), severity_label(Severity::Sev4).into());
    let mut annotations = LabelSet::new();
    annotations.insert(
        "summary".into(),
        format!("{}: TLS certificate expires soon", m.name),
    );
    annotations.insert(
        "description".into(),
        warning
            .unwrap_or("certificate no longer close to expiry")
            .to_owned(),
    );
    Alert {
        fingerprint,
        labels,
        annotations,
        starts_at: now,
        ends_at: warning.is_none().then_some(now),
        generator_url: None,
    }
}

/// The resolution of a monitor's alert, from the labels it fired with, for a monitor that is
/// gone: its identity is every label but the severity.
fn retired_alert(labels: &LabelSet, now: OffsetDateTime) -> Alert {
    let mut annotations = LabelSet::new();
    annotations.insert(
        "description".into(),
        "monitor removed or moved to another service while warroom was stopped".into(),
    );
    Alert {
        fingerprint: fingerprint_of(labels),
        labels: labels.clone(),
        annotations,
        starts_at: now,
        ends_at: Some(now),
        generator_url: None,
    }
}

/// A degradation's alert: firing with its severity and numbers, resolved without.
fn degraded_alert(m: &Monitor, d: Option<&Degradation>, now: OffsetDateTime) -> Alert {
    let labels = degraded_labels(m, d.map_or(Severity::Sev3, |d| d.severity));
    let fingerprint = fingerprint_of(&labels);
    let mut annotations = LabelSet::new();
    annotations.insert("summary".into(), format!("{} is degraded", m.name));
    annotations.insert(
        "description".into(),
        d.map_or("checks back to normal".to_owned(), |d| d.reason.clone()),
    );
    Alert {
        fingerprint,
        labels,
        annotations,
        starts_at: now,
        ends_at: d.is_none().then_some(now),
        generator_url: None,
    }
}

fn alert(
    monitor: &Monitor,
    firing: bool,
    severity: Severity,
    detail: &str,
    now: OffsetDateTime,
) -> Alert {
    let labels = down_labels(monitor, severity);
    let mut annotations = LabelSet::new();
    annotations.insert("summary".into(), format!("{} is down", monitor.name));
    annotations.insert("description".into(), detail.to_owned());
    Alert {
        fingerprint: fingerprint(&identity(monitor)),
        labels,
        annotations,
        starts_at: now,
        ends_at: if firing { None } else { Some(now) },
        generator_url: None,
    }
}

/// The decision tree over a service's signals. No user-facing monitor and no failures known:
/// the tree cannot say; a single failing internal check is a team matter, not a page.
fn classification(signals: &Signals) -> Classification {
    classify(signals, None).unwrap_or_else(|_| Classification {
        severity: Severity::Sev3,
        basis: SeverityBasis::DecisionTree,
        trace: vec![],
    })
}

/// A monitor alert's fingerprint: of every label but the severity (see [`identity`]).
fn fingerprint_of(labels: &LabelSet) -> crate::alert::Fingerprint {
    let mut identity = labels.clone();
    identity.remove("severity");
    fingerprint(&identity)
}

/// The labels of a monitor's `MonitorDegraded` alert at `severity`.
fn degraded_labels(m: &Monitor, severity: Severity) -> LabelSet {
    let mut l = identity(m);
    l.insert("alertname".into(), DEGRADED_ALERT.into());
    l.insert("severity".into(), severity_label(severity).into());
    l
}

/// The labels of a monitor's `MonitorDown` alert at `severity`.
fn down_labels(m: &Monitor, severity: Severity) -> LabelSet {
    let mut l = identity(m);
    l.insert("severity".into(), severity_label(severity).into());
    l
}

/// The labels that identify a monitor's alert; severity is left out so that a change of
/// severity is the same alert, not a new one.
fn identity(m: &Monitor) -> LabelSet {
    let mut l = LabelSet::new();
    l.insert("alertname".into(), DOWN_ALERT.into());
    l.insert("monitor".into(), m.id.clone());
    l.insert("service".into(), m.service.to_string());
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{MonitorSpec, validate_monitors};
    use time::macros::datetime;

    #[test]
    fn a_monitor_alert_says_its_own_severity_and_other_alerts_do_not() {
        let m = &monitors()[0];
        for s in [
            Severity::Sev1,
            Severity::Sev2,
            Severity::Sev3,
            Severity::Sev4,
        ] {
            assert_eq!(monitor_alert_severity(&down_labels(m, s)), Some(s));
            assert_eq!(monitor_alert_severity(&degraded_labels(m, s)), Some(s));
        }
        let mut other = down_labels(m, Severity::Sev1);
        other.remove("monitor");
        assert_eq!(monitor_alert_severity(&other), None, "not from a monitor");
        let mut other = down_labels(m, Severity::Sev1);
        other.insert("alertname".into(), "HighErrorRate".into());
        assert_eq!(
            monitor_alert_severity(&other),
            None,
            "not a monitor's alert"
        );
    }

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

    /// Feeds a monitor results as the scheduler does (flap damping, then the board's transition
    /// and degradation, in that order), one every 30 s from `*at`: `+` ok, `-` failed, `5` a
    /// 5xx. Returns the degradation alerts and the transitions' alerts, in order.
    fn feed(
        b: &mut MonitorBoard,
        flap: &mut crate::monitor::FlapState,
        id: &str,
        pattern: &str,
        latency_ms: u32,
        at: &mut OffsetDateTime,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for c in pattern.chars() {
            *at += time::Duration::seconds(30);
            let ok = c == '+';
            b.record(
                id,
                CheckSample {
                    at: *at,
                    ok,
                    failure: match c {
                        '+' => None,
                        '5' => Some(crate::monitor::FailureKind::Crashed),
                        _ => Some(crate::monitor::FailureKind::Down),
                    },
                    latency_ms,
                },
            );
            if let Some(t) = flap.observe(ok, Thresholds::default())
                && let Some(a) = b.transition(id, t.to, "", *at)
            {
                out.push(a);
            }
            out.extend(b.degradation(id, *at));
        }
        out
    }

    #[test]
    fn a_refused_database_port_is_database_connectivity() {
        let mut pg = toml_like("orders-pg", false);
        pg.check = serde_json::from_value(
            serde_json::json!({ "kind": "tcp", "host": "orders-db", "port": 5432 }),
        )
        .unwrap();
        let mut b = MonitorBoard::new(&validate_monitors(&[pg, toml_like("web", true)]).unwrap());
        let mut at = datetime!(2026-01-12 14:00 UTC);
        let kind = |alerts: &[Alert]| {
            let down = named(alerts, DOWN_ALERT);
            down.first()
                .and_then(|a| a.annotations.get(INCIDENT_TYPE_ANNOTATION).cloned())
        };
        let mut flap = crate::monitor::FlapState::default();
        let pg = feed(&mut b, &mut flap, "orders-pg", "+---", 5, &mut at);
        assert_eq!(
            kind(&pg).as_deref(),
            Some("database_connectivity"),
            "{pg:?}"
        );
        let because = named(&pg, DOWN_ALERT)[0]
            .annotations
            .get(INCIDENT_TYPE_BECAUSE_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        assert!(because.contains("orders-db:5432"), "{because}");
        let mut flap = crate::monitor::FlapState::default();
        let web = feed(&mut b, &mut flap, "web", "+---", 5, &mut at);
        assert_eq!(
            kind(&web).as_deref(),
            Some("service_unresponsive"),
            "{web:?}"
        );
    }

    fn named<'a>(alerts: &'a [Alert], name: &str) -> Vec<&'a Alert> {
        alerts.iter().filter(|a| a.name() == name).collect()
    }

    #[test]
    fn a_flapping_monitor_is_degraded_until_its_failures_leave_the_window() {
        let mut b = MonitorBoard::new(&monitors());
        let mut flap = crate::monitor::FlapState::default();
        let mut at = datetime!(2026-01-12 14:00 UTC);
        assert!(feed(&mut b, &mut flap, "web", "++++++++++", 40, &mut at).is_empty());
        // One failure is a blip, not a degradation; nor are two (3 in a row make it DOWN).
        assert!(feed(&mut b, &mut flap, "web", "-++-+", 40, &mut at).is_empty());
        // The third failure in the window, never three in a row: it flaps.
        let a = feed(&mut b, &mut flap, "web", "5", 40, &mut at);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].name(), DEGRADED_ALERT);
        assert_eq!(a[0].ends_at, None);
        // 3 of the 11 checks in the last 5 minutes: 27 %, the runbook's Sev2 band (10-50 %).
        assert_eq!(a[0].labels["severity"], "major");
        assert_eq!(a[0].labels["service"], "api");
        let why = &a[0].annotations["description"];
        assert!(
            why.contains("failed 3 of 11 checks") && why.contains("1 with HTTP 5xx"),
            "{why}"
        );
        // Still flapping: no new alert while it stays degraded.
        assert!(feed(&mut b, &mut flap, "web", "+-+", 40, &mut at).is_empty());
        // Good results until the failures have aged out of the 5-minute window: resolved, with
        // the same identity it fired with.
        let r = feed(&mut b, &mut flap, "web", "++++++++++", 40, &mut at);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].fingerprint, a[0].fingerprint);
        assert!(r[0].ends_at.is_some());
    }

    #[test]
    fn a_slow_monitor_is_degraded_by_its_latency_against_its_baseline() {
        let mut b = MonitorBoard::new(&monitors());
        let mut flap = crate::monitor::FlapState::default();
        let mut at = datetime!(2026-01-12 14:00 UTC);
        // Half an hour at 100 ms is the baseline.
        assert!(
            feed(
                &mut b,
                &mut flap,
                "api-health",
                &"+".repeat(60),
                100,
                &mut at
            )
            .is_empty()
        );
        // 250 ms: once three slow answers are the window's median, it is 2.5× normal → Sev3.
        let a = feed(&mut b, &mut flap, "api-health", "++++++", 250, &mut at);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].labels["severity"], "warning");
        assert!(
            a[0].annotations["description"].contains("latency 2.5x its baseline"),
            "{a:?}"
        );
        // 1.6×: better, but not back to normal (hysteresis), so nothing changes.
        assert!(
            feed(
                &mut b,
                &mut flap,
                "api-health",
                &"+".repeat(12),
                160,
                &mut at
            )
            .is_empty()
        );
        // Back to 100 ms: resolved.
        let r = feed(
            &mut b,
            &mut flap,
            "api-health",
            &"+".repeat(12),
            100,
            &mut at,
        );
        assert_eq!(named(&r, DEGRADED_ALERT).len(), 1, "{r:?}");
        assert!(r[0].ends_at.is_some());
    }

    #[test]
    fn going_down_ends_the_degradation_and_the_outage_is_not_read_as_one_after_it() {
        let mut b = MonitorBoard::new(&monitors());
        let mut flap = crate::monitor::FlapState::default();
        let mut at = datetime!(2026-01-12 14:00 UTC);
        feed(&mut b, &mut flap, "web", "++++", 40, &mut at);
        let a = feed(&mut b, &mut flap, "web", "-+-+-", 40, &mut at);
        assert_eq!(named(&a, DEGRADED_ALERT).len(), 1, "{a:?}");
        // Three in a row: DOWN fires and the degradation resolves, in that order.
        let a = feed(&mut b, &mut flap, "web", "--", 40, &mut at);
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!((a[0].name(), a[0].ends_at), ("MonitorDown", None));
        assert_eq!(a[1].name(), DEGRADED_ALERT);
        assert!(a[1].ends_at.is_some());
        // Up again (two successes): the window still holds the outage's failures, which must
        // not fire a degradation the moment the incident calms.
        let a = feed(&mut b, &mut flap, "web", "++++++", 40, &mut at);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].name(), "MonitorDown");
        assert!(a[0].ends_at.is_some());
        // Flapping after the recovery is a degradation again.
        let a = feed(&mut b, &mut flap, "web", "-+-+-", 40, &mut at);
        assert_eq!(named(&a, DEGRADED_ALERT).len(), 1, "{a:?}");
        // Deleting the monitor resolves its degradation.
        let gone = b.replace_monitors(&[], at);
        assert!(
            gone.iter()
                .any(|g| g.name() == DEGRADED_ALERT && g.ends_at.is_some()),
            "{gone:?}"
        );
    }

    #[test]
    fn a_resumed_board_resolves_what_the_earlier_process_left_firing() {
        let t = datetime!(2026-01-12 14:30 UTC);
        let mut before = MonitorBoard::new(&monitors());
        let down = before
            .transition("web", MonitorStatus::Down, "HTTP 503", t)
            .unwrap();
        let mut elsewhere = down.labels.clone();
        elsewhere.insert("service".into(), "other".into());
        let mut gone = down.labels.clone();
        gone.insert("monitor".into(), "deleted".into());
        let mut degraded = identity(&monitors()[2]);
        degraded.insert("alertname".into(), DEGRADED_ALERT.into());
        degraded.insert("severity".into(), "major".into());
        // A fresh board resolves nothing on PENDING → UP; a resumed one does, and only for the
        // monitors whose alerts it was given (same id and service).
        let mut fresh = MonitorBoard::new(&monitors());
        assert!(fresh.transition("web", MonitorStatus::Up, "", t).is_none());
        let mut b = MonitorBoard::new(&monitors());
        let retired = b.resume(
            &[
                down.labels.clone(),
                elsewhere.clone(),
                gone.clone(),
                degraded,
            ],
            t,
        );
        // The alerts of a monitor that is gone, or moved to another service, are resolved
        // under the identity they fired with.
        let mut fps: Vec<_> = retired.iter().map(|a| (a.fingerprint, a.ends_at)).collect();
        fps.sort();
        let identity = |l: &LabelSet| {
            let mut l = l.clone();
            l.remove("severity");
            fingerprint(&l)
        };
        let mut want = vec![(identity(&elsewhere), Some(t)), (identity(&gone), Some(t))];
        want.sort();
        assert_eq!(fps, want);
        let r = b.transition("web", MonitorStatus::Up, "", t).unwrap();
        assert_eq!(r.fingerprint, down.fingerprint);
        assert!(r.ends_at.is_some());
        assert!(
            b.transition("api-health", MonitorStatus::Up, "", t)
                .is_none()
        );
        // Its degradation ends with the first result that shows none.
        let r = b.degradation("worker", t).unwrap();
        assert_eq!((r.name(), r.ends_at.is_some()), (DEGRADED_ALERT, true));
        assert!(b.degradation("worker", t).is_none());
    }

    #[test]
    fn after_a_restart_the_outage_before_a_recovery_is_not_a_degradation() {
        let mut flap = crate::monitor::FlapState::default();
        let mut at = datetime!(2026-01-12 14:00 UTC);
        let mut before = MonitorBoard::new(&monitors());
        // An outage of 8 failed checks, then the recovery, all seen by the earlier process.
        let seen = feed(
            &mut before,
            &mut flap,
            "web",
            "++++--------+++",
            40,
            &mut at,
        );
        assert_eq!(named(&seen, DOWN_ALERT).len(), 2, "{seen:?}");
        assert!(named(&seen, DEGRADED_ALERT).is_empty(), "{seen:?}");
        // A new process refills the same results and resumes with nothing firing.
        let mut b = MonitorBoard::new(&monitors());
        let mut t = datetime!(2026-01-12 14:00 UTC);
        for c in "++++--------+++".chars() {
            t += time::Duration::seconds(30);
            b.record(
                "web",
                CheckSample {
                    at: t,
                    ok: c == '+',
                    failure: (c != '+').then_some(crate::monitor::FailureKind::Down),
                    latency_ms: 40,
                },
            );
        }
        assert!(b.resume(&[], at).is_empty());
        let mut flap = crate::monitor::FlapState::default();
        let a = feed(&mut b, &mut flap, "web", "+", 40, &mut at);
        assert!(a.is_empty(), "the outage read as flapping: {a:?}");
        // Flapping after that recovery still is.
        let a = feed(&mut b, &mut flap, "web", "-+-+-", 40, &mut at);
        assert_eq!(named(&a, DEGRADED_ALERT).len(), 1, "{a:?}");
    }

    #[test]
    fn a_degradation_that_worsens_is_assessed_so_its_incident_is_raised() {
        let mut b = MonitorBoard::new(&monitors());
        let mut flap = crate::monitor::FlapState::default();
        let mut at = datetime!(2026-01-12 14:00 UTC);
        feed(
            &mut b,
            &mut flap,
            "api-health",
            &"+".repeat(60),
            100,
            &mut at,
        );
        assert!(b.assess("api", at).is_none(), "healthy: nothing to assess");
        let a = feed(&mut b, &mut flap, "api-health", "++++++", 250, &mut at);
        assert_eq!(a[0].labels["severity"], "warning");
        let first = b.assess("api", at).unwrap();
        assert_eq!(first.classification.severity, Severity::Sev3);
        // Now it also fails often (never 3 in a row): the Sev2 band.
        let a = feed(&mut b, &mut flap, "api-health", "-+-+-+", 250, &mut at);
        assert!(a.is_empty(), "still the same alert: {a:?}");
        let worse = b.assess("api", at).unwrap();
        assert_eq!(worse.classification.severity, Severity::Sev2);
        assert!(
            worse.reason.contains("api-health (SEV2)"),
            "{}",
            worse.reason
        );
        assert_eq!(worse.alerts[0]["alertname"], DEGRADED_ALERT);
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

    #[test]
    fn severity_is_raised_automatically_and_a_downgrade_only_suggested_once() {
        use Severity::*;
        assert_eq!(
            review_severity(Sev2, Sev1, None),
            SeverityReview::Raise(Sev1)
        );
        assert_eq!(review_severity(Sev2, Sev2, None), SeverityReview::Keep);
        assert_eq!(
            review_severity(Sev1, Sev3, None),
            SeverityReview::SuggestDowngrade(Sev3)
        );
        assert_eq!(
            review_severity(Sev1, Sev3, Some(Sev3)),
            SeverityReview::Keep
        );
        assert_eq!(
            review_severity(Sev1, Sev2, Some(Sev3)),
            SeverityReview::SuggestDowngrade(Sev2),
            "a different level is a new suggestion"
        );
    }

    #[test]
    fn the_assessment_follows_the_window_as_results_arrive() {
        let t = datetime!(2026-01-12 14:30 UTC);
        let mut b = MonitorBoard::new(&monitors());
        let sample = |at, ok: bool| CheckSample {
            at,
            ok,
            failure: (!ok).then_some(crate::monitor::FailureKind::Crashed),
            latency_ms: 20,
        };
        let mut now = t;
        for id in ["web", "api-health", "worker"] {
            b.record(id, sample(now, true));
            b.transition(id, MonitorStatus::Up, "", now);
        }
        assert!(
            b.assess("api", now).is_none(),
            "nothing DOWN, nothing to assess"
        );
        for _ in 0..3 {
            now += time::Duration::seconds(30);
            b.record("web", sample(now, false));
            b.record("api-health", sample(now, true));
            b.record("worker", sample(now, true));
        }
        let fired = b
            .transition("web", MonitorStatus::Down, "HTTP 503", now)
            .unwrap();
        // 3 of its 4 checks answered 5xx: the runbook's "high error rate", with the playbook.
        let r = crate::alert::recognise(&fired).unwrap();
        assert_eq!(r.incident_type, crate::alert::IncidentType::HighErrorRate);
        assert!(
            r.because.contains("3 of the last 4 checks answered 5xx"),
            "{}",
            r.because
        );
        let a = b.assess("api", now).unwrap();
        // web failed 3 of 4, the others none: a quarter of checks fail, users still get in.
        assert_eq!(a.signals.failing_percent, Some(25.0));
        assert_eq!(a.signals.users_can_access, Some(true));
        assert_eq!(a.classification.severity, Severity::Sev2);
        assert!(
            a.reason.contains("failing 25% of 12 checks"),
            "{}",
            a.reason
        );
        // Only web is DOWN, and its alert's own labels come with the assessment, so a silence
        // on `monitor=web` can be told apart from one on the service.
        assert_eq!(a.alerts.len(), 1);
        assert_eq!(a.alerts[0], fired.labels);
        // api-health starts failing without being DOWN yet: the share passes 50% → SEV1.
        for _ in 0..4 {
            now += time::Duration::seconds(30);
            b.record("web", sample(now, false));
            b.record("api-health", sample(now, false));
            b.record("worker", sample(now, false));
        }
        assert_eq!(
            b.assess("api", now).unwrap().classification.severity,
            Severity::Sev1
        );
    }

    #[test]
    fn an_expiring_certificate_fires_a_sev4_alert_once_and_resolves_when_renewed() {
        let t = datetime!(2026-01-12 14:30 UTC);
        let mut b = MonitorBoard::new(&monitors());
        assert!(
            b.cert_warning("web", None, t).is_none(),
            "no warning, nothing to say"
        );
        let a = b
            .cert_warning(
                "web",
                Some("certificate expires in 12 days (warning at 30)"),
                t,
            )
            .unwrap();
        assert_eq!(a.labels["alertname"], CERT_EXPIRING_ALERT);
        assert_eq!(a.labels["severity"], "info", "the runbook's Sev4 example");
        assert_eq!(a.ends_at, None);
        assert!(a.annotations["description"].contains("12 days"));
        assert!(
            b.cert_warning("web", Some("certificate expires in 11 days"), t)
                .is_none(),
            "still warning: the same alert, not a new one"
        );
        let r = b.cert_warning("web", None, t).unwrap();
        assert_eq!((r.fingerprint, r.ends_at), (a.fingerprint, Some(t)));
        let down = b.transition("web", MonitorStatus::Down, "x", t).unwrap();
        assert_ne!(
            down.fingerprint, a.fingerprint,
            "a separate alert from MonitorDown"
        );
    }

    #[test]
    fn removing_or_redefining_a_down_monitor_resolves_its_alert() {
        let t = datetime!(2026-01-12 14:30 UTC);
        let all = monitors();
        let mut b = MonitorBoard::new(&all);
        let fired = b
            .transition("worker", MonitorStatus::Down, "refused", t)
            .unwrap();
        b.transition("web", MonitorStatus::Up, "", t);
        // Unchanged monitors keep their state: nothing to resolve.
        assert!(b.replace_monitors(&all, t).is_empty());
        // The DOWN one is deleted: its alert resolves, with the same identity.
        let resolved = b.replace_monitors(&all[..2], t);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].fingerprint, fired.fingerprint);
        assert_eq!(resolved[0].ends_at, Some(t));
        assert!(resolved[0].annotations["description"].contains("deleted"));
        // web stayed UP through the change, so a failure is a fresh DOWN.
        assert!(b.transition("web", MonitorStatus::Up, "", t).is_none());
        let mut changed = all[0].clone();
        changed.interval = std::time::Duration::from_secs(60);
        b.transition("web", MonitorStatus::Down, "503", t).unwrap();
        let resolved = b.replace_monitors(&[changed, all[1].clone()], t);
        assert_eq!(resolved.len(), 1, "redefining a DOWN monitor resolves it");
        assert!(b.transition("web", MonitorStatus::Pending, "", t).is_none());
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
