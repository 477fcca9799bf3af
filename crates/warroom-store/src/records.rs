//! Records the store keeps besides incidents.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use warroom_domain::{DomainError, IncidentStatus, Severity};

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Read everything.
    Viewer,
    /// Read and change incidents.
    Responder,
    /// Everything, including token management.
    Admin,
}

impl TokenRole {
    /// API name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Viewer => "viewer",
            TokenRole::Responder => "responder",
            TokenRole::Admin => "admin",
        }
    }

    /// Parses the API name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(TokenRole::Viewer),
            "responder" => Ok(TokenRole::Responder),
            "admin" => Ok(TokenRole::Admin),
            _ => Err(DomainError::invalid(
                "role",
                format!("`{raw}` is not a token role; use viewer, responder or admin"),
            )),
        }
    }
}

impl fmt::Display for TokenRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as stored: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public id, for revocation.
    pub id: String,
    /// Human name; it is the author of what the token does.
    pub name: String,
    /// Role.
    pub role: TokenRole,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A freshly created token with its secret. The secret is redacted in `Debug`.
#[derive(Clone)]
pub struct NewToken {
    /// The stored part.
    pub token: ApiToken,
    /// The secret; shown once.
    pub secret: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &self.token)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Which incidents to list.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFilter {
    /// Only these statuses; empty means all.
    pub statuses: Vec<IncidentStatus>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only incidents affecting this service.
    pub service: Option<String>,
    /// At most this many (1-500).
    pub limit: i64,
}

impl Default for IncidentFilter {
    fn default() -> Self {
        IncidentFilter {
            statuses: vec![],
            severity: None,
            service: None,
            limit: 50,
        }
    }
}

/// A notification to enqueue for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxMessage {
    /// Channel id from the config (`webhook:ops`, `slack:incidents`, `email:oncall`).
    pub channel: String,
    /// What to say.
    pub notification: warroom_domain::notify::Notification,
    /// The person it is for, when it is for one (pages): throttles and acknowledgements act on it.
    pub recipient: Option<String>,
    /// Not before this time (a person's later notification rules, e.g. email after a minute).
    pub not_before: Option<OffsetDateTime>,
}

impl NewOutboxMessage {
    /// A delivery decided by the domain, as an outbox row: its recipient, and its delay from `now`.
    pub fn from_delivery(d: warroom_domain::escalation::Delivery, now: OffsetDateTime) -> Self {
        NewOutboxMessage {
            channel: d.channel,
            notification: d.notification,
            recipient: d.recipient,
            not_before: (d.after > time::Duration::ZERO).then(|| now + d.after),
        }
    }

    /// A message for a channel, due now, for no one in particular.
    pub fn new(
        channel: impl Into<String>,
        notification: warroom_domain::notify::Notification,
    ) -> Self {
        NewOutboxMessage {
            channel: channel.into(),
            notification,
            recipient: None,
            not_before: None,
        }
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Delivered; never sent again.
    Delivered,
    /// Given up; raised as a warning.
    Failed,
    /// Not sent: the page was acknowledged before this later notification rule was due.
    Cancelled,
    /// Not sent: the recipient had been paged as often as the throttle allows.
    Throttled,
}

impl OutboxStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Cancelled => "cancelled",
            OutboxStatus::Throttled => "throttled",
        }
    }
}

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Increasing id; delivery order within a channel.
    pub id: i64,
    /// Channel id.
    pub channel: String,
    /// Incident, if any.
    pub incident: Option<i64>,
    /// The person it is for, if any.
    pub recipient: Option<String>,
    /// Sent as a header so receivers can drop duplicates.
    pub idempotency_key: String,
    /// What to say.
    pub notification: warroom_domain::notify::Notification,
    /// Status.
    pub status: OutboxStatus,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Not before.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// Enqueued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// The last error, for people.
    pub last_error: Option<String>,
}

/// What a change to an incident produces: timeline events and notifications, committed together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Timeline events.
    pub events: Vec<warroom_domain::EventKind>,
    /// Notifications for the outbox.
    pub outbox: Vec<NewOutboxMessage>,
}

impl From<Vec<warroom_domain::EventKind>> for Change {
    fn from(events: Vec<warroom_domain::EventKind>) -> Self {
        Change {
            events,
            outbox: vec![],
        }
    }
}

/// An alert to store, with what the caller derived from its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertIn {
    /// The alert.
    pub alert: warroom_domain::alert::Alert,
    /// Firing or resolved at receipt.
    pub state: warroom_domain::alert::AlertState,
    /// The group it belongs to (by the configured labels).
    pub group_key: String,
    /// The service the group names, if any.
    pub service: Option<String>,
    /// Not a sighting but the alert's `endsAt` passing (the alert processor's look for
    /// expired alerts): it resolves the alert only if the stored alert is still firing and
    /// still ends then, so a sighting that moved the end on since wins; it counts as no receipt.
    pub expiry: bool,
    /// Sent without an end (Alertmanager's API v2 allows it): the alert ends unless it is sent
    /// again by this time, `resolve_timeout` after this sighting, and `alert.ends_at` holds
    /// that time plus a margin. A firing alert stored with an end not before this keeps it, so
    /// a sender repeating the alert every few seconds is counted instead of rewritten each time.
    pub resend_by: Option<time::OffsetDateTime>,
}

/// What an ingest did, for the answer and for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Alerts in the request.
    pub received: usize,
    /// Fingerprints never seen before.
    pub new: usize,
    /// Known fingerprints whose state changed (resolved, or firing again).
    pub changed: usize,
    /// Repeats with nothing new: clustered Alertmanagers send these on purpose.
    pub duplicates: usize,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAlert {
    /// Fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// Group key.
    pub group_key: String,
    /// Service, if the group names one.
    pub service: Option<String>,
    /// `alertname`.
    pub name: String,
    /// Labels.
    pub labels: warroom_domain::alert::LabelSet,
    /// Annotations.
    pub annotations: warroom_domain::alert::LabelSet,
    /// `firing` or `resolved`.
    pub status: String,
    /// Started.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// Ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// How many times it was received.
    pub received: i64,
    /// The incident it belongs to.
    pub incident: Option<i64>,
}

impl StoredAlert {
    /// The alert as received (the generator URL is not kept with it).
    pub fn into_alert(self) -> warroom_domain::alert::Alert {
        warroom_domain::alert::Alert {
            fingerprint: self
                .fingerprint
                .parse()
                .unwrap_or_else(|_| warroom_domain::alert::fingerprint(&self.labels)),
            labels: self.labels,
            annotations: self.annotations,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            generator_url: None,
        }
    }
}

/// A firing alert as Alertmanager's `GET /api/v2/alerts` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedAlert {
    /// Fingerprint, 16 hex digits.
    pub fingerprint: String,
    /// Labels.
    pub labels: warroom_domain::alert::LabelSet,
    /// Annotations.
    pub annotations: warroom_domain::alert::LabelSet,
    /// Started.
    pub starts_at: OffsetDateTime,
    /// Ends, when the sender said.
    pub ends_at: Option<OffsetDateTime>,
    /// When it was last received (repeats reach the database up to a second late).
    pub last_seen: OffsetDateTime,
    /// Link back to the rule that produced it.
    pub generator_url: Option<String>,
    /// The incident it belongs to.
    pub incident: Option<i64>,
}

/// One page of [`crate::AlertStore::firing_alerts_page`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FiringPage {
    /// Firing alerts, in the store's own order.
    pub alerts: Vec<ListedAlert>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<String>,
}

/// A service's current health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceHealth {
    /// Service slug.
    pub service: String,
    /// HEALTHY, DEGRADED or UNHEALTHY.
    pub status: String,
    /// Since when.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Why.
    pub cause: String,
}

/// One change of a service's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthChange {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Before (none the first time).
    pub from: Option<String>,
    /// After.
    pub to: String,
    /// Why.
    pub cause: String,
}

/// One check's outcome, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    /// Monitor id.
    pub monitor: String,
    /// When it ran.
    pub at: OffsetDateTime,
    /// Succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed (`None` when it succeeded).
    pub failure: Option<warroom_domain::monitor::FailureKind>,
}

/// How long each kind of check data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw results.
    pub raw: time::Duration,
    /// 5-minute rollups.
    pub five_minutes: time::Duration,
    /// Hourly rollups.
    pub hours: time::Duration,
}

impl Default for Retention {
    /// Raw for 6 hours (enough to investigate an incident), 5-minute rollups for 7 days, hourly
    /// for 400 days. At 1,000 monitors every 30 s this keeps the database well under 500 MB
    /// (docs/BENCHMARKS.md has the measurement).
    fn default() -> Self {
        Retention {
            raw: time::Duration::hours(6),
            five_minutes: time::Duration::days(7),
            hours: time::Duration::days(400),
        }
    }
}

/// Availability over a period, from the rollups.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Uptime {
    /// Checks in the period.
    pub checks: i64,
    /// Failed checks.
    pub failures: i64,
    /// Share of successful checks, 0-100; `None` without checks.
    pub availability_percent: Option<f64>,
    /// Mean latency.
    pub mean_latency_ms: Option<f64>,
    /// Worst latency.
    pub max_latency_ms: Option<i64>,
}
