//! warroom's storage contract.
//!
//! The server and the workers never talk to each other; they meet here. The traits are split
//! by capability so that a component names exactly what it needs. One SQL implementation
//! ([`sql::SqlStore`]) serves both backends through sqlx's `Any` driver and runtime queries; the
//! backend crates (`warroom-store-sqlite`, `warroom-store-postgres`) supply connection setup,
//! their migrations and a [`sql::Dialect`]. Why not two hand-written implementations: the SQL
//! differs in a handful of places (write-transaction start, row locks, DDL), which the dialect
//! and the migration folders cover, and one code path means one set of bugs.
#![deny(missing_docs)]

pub mod clock;
pub mod error;
pub mod monitors;
pub mod pipeline;
pub mod records;
pub mod rooms;
mod row;
pub mod silences;
pub mod sql;

use async_trait::async_trait;
use time::OffsetDateTime;
use warroom_domain::{DomainError, Incident, IncidentNumber, TimelineEvent, service::Service};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use monitors::{MonitorStore, StoredMonitor};
pub use pipeline::{
    Approval, ItemClaim, ItemRecord, ItemState, LogLine, PipelineStore, RunRecord, RunStatus,
};
pub use records::{
    AlertIn, ApiToken, Change, CheckRecord, FiringPage, HealthChange, IncidentFilter,
    IngestOutcome, ListedAlert, NewOutboxMessage, NewToken, OutboxMessage, OutboxStatus, Retention,
    ServiceHealth, StoredAlert, TokenRole, Uptime,
};
pub use rooms::{ChatRoom, ChatRoomStore};

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Builds an incident once its number is allocated, inside the declaring transaction.
pub type DeclareFn =
    Box<dyn FnOnce(IncidentNumber) -> Result<(Incident, Change), DomainError> + Send>;

/// Changes an incident inside a transaction; the events and notifications it returns are
/// written atomically with it.
pub type MutateFn = Box<dyn FnOnce(&mut Incident) -> Result<Change, DomainError> + Send>;

/// Alerts joining an open incident, for [`AlertStore::settle_pass`].
pub struct AlertJoin {
    /// The incident they join.
    pub incident: IncidentNumber,
    /// Its change (evidence notes, a raise), applied to the incident as stored at commit time.
    pub change: MutateFn,
    /// The alerts' fingerprints, settled and linked to the incident.
    pub alerts: Vec<String>,
}

/// Incidents and their timelines.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Allocates the next gap-free number and stores the incident the closure builds, with its
    /// events, in one transaction. A refusal from the closure rolls the number back.
    async fn declare_incident(
        &self,
        author: &str,
        now: OffsetDateTime,
        build: DeclareFn,
    ) -> Result<(Incident, Vec<TimelineEvent>)>;

    /// One incident.
    async fn incident(&self, number: IncidentNumber) -> Result<Incident>;

    /// Incidents matching a filter, newest first.
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>>;

    /// Read-modify-write of one incident under a lock, appending the returned events.
    /// When the closure returns no events and no notifications nothing is written.
    async fn mutate_incident(
        &self,
        number: IncidentNumber,
        author: &str,
        now: OffsetDateTime,
        change: MutateFn,
    ) -> Result<(Incident, Vec<TimelineEvent>)>;

    /// The whole timeline of one incident, oldest first.
    async fn timeline(&self, number: IncidentNumber) -> Result<Vec<TimelineEvent>>;
}

/// Services known to the installation.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    /// Writes the services from the config file, replacing name, owner and public flag.
    async fn sync_configured_services(
        &self,
        services: &[Service],
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Registers a service on first use; an existing record is kept as it is. Returns the record.
    async fn ensure_service(&self, service: &Service, now: OffsetDateTime) -> Result<Service>;
    /// One service.
    async fn service(&self, slug: &str) -> Result<Option<Service>>;
    /// All services, by slug.
    async fn services(&self) -> Result<Vec<Service>>;
}

/// API tokens. Only hashes are stored; the secret exists once, in the creator's hands.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Creates a token; the returned [`NewToken`] carries the secret, shown once.
    async fn create_token(
        &self,
        name: &str,
        role: TokenRole,
        now: OffsetDateTime,
    ) -> Result<NewToken>;
    /// The live token whose secret this is.
    async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>>;
    /// All tokens, without secrets.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    /// Revokes a token by id; false when there was no live token with that id.
    async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<bool>;
}

/// The durable notification outbox.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Enqueues messages not tied to an incident change (reminders from workers).
    async fn enqueue(
        &self,
        messages: Vec<NewOutboxMessage>,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxMessage>>;
    /// Leases up to `limit` due messages until `now + lease`. Only the oldest pending message of
    /// each channel is ever handed out, so a channel's messages arrive in order and a failing
    /// channel holds back only itself.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>>;
    /// Marks a message delivered; it is never handed out again.
    async fn record_delivered(&self, id: i64, now: OffsetDateTime) -> Result<()>;
    /// Records a failed attempt: retry at `retry_at`, or give up when `None`.
    async fn record_failed_attempt(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<()>;
    /// The messages of one incident, oldest first.
    async fn outbox_for_incident(&self, number: IncidentNumber) -> Result<Vec<OutboxMessage>>;
    /// Message counts by status.
    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>>;
    /// Cancels the incident's pages that are not due yet (people's later notification rules):
    /// somebody acknowledged. Returns how many.
    async fn cancel_pending_pages(
        &self,
        incident: IncidentNumber,
        now: OffsetDateTime,
    ) -> Result<u64>;
    /// Pages delivered to a person since `since`, for the throttle.
    async fn pages_delivered_to(&self, recipient: &str, since: OffsetDateTime) -> Result<i64>;
    /// Marks a message not sent because of the throttle.
    async fn record_throttled(&self, id: i64, reason: &str) -> Result<()>;
    /// Woken after a commit that enqueued messages in this process, so that a page never waits
    /// for a poll interval. Dispatchers in other processes poll.
    fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// What a metrics scrape reports about alerts: see [`AlertStore::alert_gauges`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertGauges {
    /// Firing alerts in the alert table, at most the limit asked for.
    pub firing: i64,
    /// Alerts accepted and committed, not merged into the alert table yet.
    pub intake_waiting: i64,
}

/// Alerts from Prometheus and Alertmanager.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores a batch, committed before this returns, deduplicating by fingerprint. A state
    /// change marks the alert pending until incidents catch up; a plain repeat only counts (and
    /// its count may reach the database up to a second later).
    async fn ingest_alerts(
        &self,
        alerts: Vec<AlertIn>,
        now: OffsetDateTime,
    ) -> Result<IngestOutcome>;
    /// Alerts whose state change incidents have not caught up with, oldest first.
    async fn pending_alerts(&self, limit: i64) -> Result<Vec<StoredAlert>>;
    /// The alert processor's next pass: pending alerts, oldest first, like
    /// [`AlertStore::pending_alerts`], but taken from memory when this process holds every
    /// pending alert there (new alerts it committed itself). On SQLite, while the intake holds
    /// alerts, a pass is the new alerts of its oldest rows (the intake is older than anything
    /// pending since it filled), staged: the pass's first settle writes them into `alerts`,
    /// settled, and [`AlertStore::pass_done`] gives back what no settle wrote (it stays in the
    /// intake). Other pending alerts follow once the intake is empty. Follow every call with
    /// [`AlertStore::pass_done`].
    async fn take_pending(&self, limit: i64) -> Result<Vec<StoredAlert>>;
    /// Ends a pass begun with [`AlertStore::take_pending`]: `settled_all` when every alert it
    /// took was settled (otherwise the next pass reads the database).
    fn pass_done(&self, settled_all: bool);
    /// Marks alerts caught up, linking them to an incident when there is one.
    async fn settle_alerts(&self, fingerprints: &[String], incident: Option<i64>) -> Result<()>;
    /// Commits a share of an alert processing pass in one transaction: each join's change to
    /// its incident (evidence, a raise) together with settling the alerts it takes, and the
    /// `unlinked` alerts settled with no incident. Either all of it is committed or none (the
    /// alerts stay pending), so a crash never leaves evidence for alerts still pending.
    async fn settle_pass(
        &self,
        author: &str,
        now: OffsetDateTime,
        joins: Vec<AlertJoin>,
        unlinked: &[String],
    ) -> Result<()>;
    /// The alerts linked to an incident.
    async fn alerts_for_incident(&self, number: IncidentNumber) -> Result<Vec<StoredAlert>>;
    /// Firing alerts linked to no incident (silenced, or below the auto-declare severity), by
    /// fingerprint after `after` (`""` for the first page), up to `limit`: what a maintenance
    /// window that just ended may have held back.
    async fn unlinked_firing_alerts(&self, after: &str, limit: i64) -> Result<Vec<StoredAlert>>;
    /// Marks firing alerts linked to no incident pending again, so the processor acts on them
    /// as if they had just arrived (a silence that muted them ended). Returns how many.
    async fn reconsider_alerts(&self, fingerprints: &[String]) -> Result<u64>;
    /// Firing alerts whose `endsAt` is at or before `now`, soonest ended first, up to `limit`.
    async fn expired_alerts(&self, now: OffsetDateTime, limit: i64) -> Result<Vec<StoredAlert>>;
    /// Every firing alert, a page at a time: `after` is `""` for the first page, else the
    /// `next` of the page before. The order is the store's own (callers sort), so that a
    /// walk over millions of alerts reads each row once. `labels` narrows the walk to alerts
    /// with each of these label values (non-empty), in the database, before rows are read; a
    /// page may then hold fewer than `limit` alerts while more follow. It only narrows: a
    /// value the database cannot compare (one holding a NUL) is not applied, nor is it on rows
    /// whose labels hold one (PostgreSQL), so callers apply their matchers again.
    async fn firing_alerts_page(
        &self,
        after: &str,
        limit: i64,
        labels: &[(&str, &str)],
    ) -> Result<FiringPage>;
    /// Alerts, optionally only `firing` or `resolved`, most recently seen first.
    async fn list_alerts(&self, status: Option<&str>, limit: i64) -> Result<Vec<StoredAlert>>;
    /// Firing alerts counted up to `limit`, and alerts accepted but still waiting in the
    /// intake (SQLite; never in the first number until merged). It never waits for a merge,
    /// so a metrics scrape during a flood answers at once.
    async fn alert_gauges(&self, limit: i64) -> Result<AlertGauges>;
    /// Firing alerts about one service.
    async fn firing_alerts_for(&self, service: &str) -> Result<Vec<StoredAlert>>;
    /// Firing alerts with one of these names (`alertname`): a starting process learns which of
    /// its monitors' alerts are still firing, so that a recovery during the restart resolves
    /// them instead of leaving them firing.
    async fn firing_alerts_named(&self, names: &[&str]) -> Result<Vec<StoredAlert>>;
    /// Woken after a commit that left alerts pending in this process, so that the alert
    /// processor acts on them at once. Processors in other processes poll.
    fn alert_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// Writes the repeat counters (`received`, `last_seen`) that are kept in memory between
    /// their once-a-second flushes: statistics, not accepted alerts. For tests and shutdown.
    async fn flush_alert_counts(&self) -> Result<()>;
    /// Records a service's health; a change is kept in its history. True when it changed.
    async fn record_health(
        &self,
        service: &str,
        status: &str,
        cause: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Every service's current health.
    async fn service_health(&self) -> Result<Vec<ServiceHealth>>;
    /// A service's health changes, newest first.
    async fn health_history(&self, service: &str, limit: i64) -> Result<Vec<HealthChange>>;
}

/// Check results and uptime history, bounded by retention.
#[async_trait]
pub trait CheckStore: Send + Sync {
    /// Stores results and adds them to the 5-minute and hourly rollups, in one transaction.
    async fn record_checks(&self, checks: &[CheckRecord]) -> Result<()>;
    /// Raw results in `[from, to)`, oldest first: what a starting process refills its
    /// monitors' sliding window with, a slice of time at a time (10,000 monitors leave over a
    /// million results in an hour).
    async fn recent_checks(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<CheckRecord>>;
    /// A monitor's latest raw results, newest first, up to `limit`.
    async fn latest_checks(&self, monitor: &str, limit: i64) -> Result<Vec<CheckRecord>>;
    /// Deletes what retention no longer keeps; returns rows deleted.
    async fn prune_checks(&self, now: OffsetDateTime, retention: Retention) -> Result<u64>;
    /// A monitor's availability over `[from, to)`, from the hourly rollups.
    async fn uptime(
        &self,
        monitor: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Uptime>;
}

/// Everything, for the wiring code.
#[async_trait]
pub trait Store:
    IncidentStore
    + ServiceStore
    + TokenStore
    + OutboxStore
    + AlertStore
    + CheckStore
    + ChatRoomStore
    + PipelineStore
    + MonitorStore
    + silences::SilenceStore
{
    /// Is the database reachable?
    async fn ping(&self) -> Result<()>;
    /// Which backend, for logs: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Closes the connections at shutdown. On SQLite the last one to close copies the WAL back
    /// into the database file and removes it, so the file alone is the whole database again
    /// (what a backup that copies one file expects). Nothing can be used after it.
    async fn close(&self);
}
