//! The SQL implementation both backends share, over sqlx's `Any` driver.
//!
//! Schema conventions that work through `Any` on both databases: `BIGINT` for integers and
//! flags, `TEXT` for ids and for timestamps (RFC 3339 UTC with fixed millisecond width, which
//! sorts lexically), incidents as a JSON document beside the columns we filter on.
//! Queries are runtime strings with `$N` placeholders (see docs/ARCHITECTURE.md for why).

use async_trait::async_trait;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row, any::AnyRow};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio_free_mutex::WriteGate;
use warroom_domain::{
    EventKind, Incident, IncidentNumber, ServiceSlug, TimelineEvent, service::Service,
    timefmt::rfc3339,
};

use crate::{
    AlertGauges, AlertIn, AlertJoin, AlertStore, ApiToken, CheckRecord, CheckStore, DeclareFn,
    FiringPage, HealthChange, IncidentFilter, IncidentStore, IngestOutcome, ListedAlert, MutateFn,
    NewOutboxMessage, NewToken, OutboxMessage, OutboxStatus, OutboxStore, Result, Retention,
    ServiceHealth, ServiceStore, Store, StoreError, StoredAlert, TokenRole, TokenStore, Uptime,
    row::{is_unique_violation, parse_ts},
};

/// The few places where the two databases differ at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one writer at a time, so write transactions take the lock up front.
    Sqlite,
    /// PostgreSQL: row locks.
    Postgres,
}

impl Dialect {
    fn begin_write(self) -> &'static str {
        match self {
            // IMMEDIATE takes the write lock at BEGIN, so a transaction never has to upgrade a
            // read lock later, which is where SQLite answers SQLITE_BUSY without waiting.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    fn lock_incident(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT doc FROM incidents WHERE number = $1",
            Dialect::Postgres => "SELECT doc FROM incidents WHERE number = $1 FOR UPDATE",
        }
    }
}

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Increasing version; never reused.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// The SQL, possibly several statements.
    pub sql: &'static str,
}

/// Applies the migrations not applied yet, each in its own transaction. Refuses to run against
/// a database migrated by a newer binary, which would otherwise be silently misread.
pub async fn migrate(pool: &AnyPool, migrations: &[Migration]) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS warroom_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM warroom_migrations ORDER BY version")
            .fetch_all(pool)
            .await?;
    let known_max = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().max()
        && *newest > known_max
    {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {newest} but this warroom knows only up to {known_max}; upgrade warroom"
        )));
    }
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration(format!("{} ({}): {e}", m.version, m.name)))?;
        sqlx::query(
            "INSERT INTO warroom_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(rfc3339(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            migration.version = m.version,
            migration.name = m.name,
            "applied migration"
        );
    }
    Ok(())
}

mod fingerprints;
mod ingest;

/// Authenticated tokens by secret hash, for at most [`TOKEN_CACHE_TTL`]: one database read per
/// token and second instead of one per request (Prometheus sends alerts many times a second).
/// A revocation through this process empties the cache at once; one made by another process
/// (the CLI) takes effect within the TTL.
#[derive(Debug, Default)]
struct TokenCache(
    std::sync::Mutex<std::collections::HashMap<String, (ApiToken, std::time::Instant)>>,
);

/// How long an authenticated token is trusted without asking the database again; also the most
/// a revocation made by another process takes to take effect.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<ApiToken> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, hash: String, token: ApiToken) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: expired entries go whenever the map grows past a few live tokens.
        if map.len() >= 64 {
            map.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
            if map.len() >= 1024 {
                map.clear();
            }
        }
        map.insert(hash, (token, std::time::Instant::now()));
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// In-process serialisation of SQLite writers. SQLite's busy handler sleeps in coarse steps;
/// queueing writers here instead keeps latency flat, while `BEGIN IMMEDIATE` plus the busy
/// timeout still protect against writers in other processes (the CLI creating a token).
mod tokio_free_mutex {
    use std::sync::Arc;
    use tokio::sync::{Mutex, MutexGuard};

    #[derive(Debug, Clone, Default)]
    pub struct WriteGate(Option<Arc<Mutex<()>>>);

    impl WriteGate {
        pub fn new(enabled: bool) -> Self {
            WriteGate(enabled.then(|| Arc::new(Mutex::new(()))))
        }
        pub async fn enter(&self) -> Option<MutexGuard<'_, ()>> {
            match &self.0 {
                Some(m) => Some(m.lock().await),
                None => None,
            }
        }
    }
}

/// The store over a pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    gate: Arc<WriteGate>,
    outbox_signal: Arc<tokio::sync::Notify>,
    alert_signal: Arc<tokio::sync::Notify>,
    ingest_queue: tokio::sync::mpsc::Sender<ingest::IngestJob>,
    /// Alerts known to this process (SQLite only; see the `ingest` module).
    known_alerts: Option<Arc<ingest::KnownAlerts>>,
    /// New alerts handed to the processor in memory (SQLite only; see the `ingest` module).
    handoff: Option<Arc<ingest::Handoff>>,
    /// Merges the alert intake into `alerts` (SQLite only; see the `ingest` module).
    applier: Option<ingest::Applier>,
    tokens: Arc<TokenCache>,
}

fn ts(t: OffsetDateTime) -> String {
    rfc3339(t)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn event_from_row(row: &AnyRow) -> Result<TimelineEvent> {
    let payload: String = row.try_get("payload")?;
    let kind: EventKind = from_json(&payload)?;
    Ok(TimelineEvent {
        id: row.try_get("id")?,
        incident: row.try_get("incident")?,
        at: parse_ts(&row.try_get::<String, _>("at")?)?,
        author: row.try_get("author")?,
        kind,
    })
}

fn token_from_row(row: &AnyRow) -> Result<ApiToken> {
    let role: String = row.try_get("role")?;
    let revoked: Option<String> = row.try_get("revoked_at")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: TokenRole::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        revoked_at: revoked.as_deref().map(parse_ts).transpose()?,
    })
}

fn service_from_row(row: &AnyRow) -> Result<Service> {
    let slug: String = row.try_get("slug")?;
    Ok(Service {
        slug: ServiceSlug::parse_field(&slug, "slug")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        public: row.try_get::<i64, _>("public")? != 0,
    })
}

impl SqlStore {
    /// Wraps a migrated pool (PostgreSQL; SQLite is opened with [`SqlStore::sqlite`]).
    pub fn new(pool: AnyPool, dialect: Dialect) -> Self {
        Self::build(pool, dialect, None)
    }

    /// Wraps a migrated SQLite database and its alert intake file (see the `ingest` module),
    /// each with its own write lock.
    pub fn sqlite(pool: AnyPool, intake_pool: AnyPool) -> Self {
        Self::build(pool, Dialect::Sqlite, Some(intake_pool))
    }

    fn build(pool: AnyPool, dialect: Dialect, intake_pool: Option<AnyPool>) -> Self {
        let gate = Arc::new(WriteGate::new(dialect == Dialect::Sqlite));
        let (ingest_queue, rx) = tokio::sync::mpsc::channel(4096);
        let alert_signal = Arc::new(tokio::sync::Notify::new());
        // Only a SQLite store, the sole writer of its file, may trust its memory of alerts.
        let sole_writer = dialect == Dialect::Sqlite && intake_pool.is_some();
        let known_alerts = sole_writer.then(|| Arc::new(ingest::KnownAlerts::default()));
        let handoff = sole_writer.then(|| Arc::new(ingest::Handoff::default()));
        let applier = match (&known_alerts, &handoff, intake_pool) {
            (Some(known), Some(handoff), Some(intake_pool)) => Some(ingest::Applier {
                pool: pool.clone(),
                gate: gate.clone(),
                intake_pool,
                intake_gate: Arc::new(WriteGate::new(true)),
                stored: Arc::new(fingerprints::StoredFingerprints::default()),
                known: known.clone(),
                handoff: handoff.clone(),
                intake: Arc::new(ingest::Intake::default()),
            }),
            _ => None,
        };
        let writer = ingest::Writer {
            pool: pool.clone(),
            dialect,
            gate: gate.clone(),
            known: known_alerts.clone(),
            applier: applier.clone(),
            signal: alert_signal.clone(),
        };
        tokio::spawn(writer.run(rx));
        if let Some(k) = &known_alerts {
            tokio::spawn(Self::checkpoint_forever(
                pool.clone(),
                gate.clone(),
                Arc::downgrade(k),
            ));
            tokio::spawn(Self::flush_counts_forever(
                pool.clone(),
                dialect,
                gate.clone(),
                Arc::downgrade(k),
            ));
        }
        if let Some(a) = &applier {
            tokio::spawn(ingest::scan_stored(pool.clone(), Arc::downgrade(&a.stored)));
            tokio::spawn(Self::intake_upkeep_forever(
                a.intake_pool.clone(),
                a.intake_gate.clone(),
                Arc::downgrade(&a.intake),
            ));
        }
        SqlStore {
            pool,
            dialect,
            gate,
            outbox_signal: Arc::new(tokio::sync::Notify::new()),
            alert_signal,
            ingest_queue,
            known_alerts,
            handoff,
            applier,
            tokens: Arc::new(TokenCache::default()),
        }
    }

    /// The pool, for backend-specific maintenance.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Merges everything in the alert intake (SQLite), so that a read sees every alert that
    /// was answered with a 2xx.
    async fn catch_up_intake(&self) -> Result<()> {
        if let Some(a) = &self.applier {
            a.catch_up().await?;
        }
        Ok(())
    }

    /// Settles alerts inside a transaction, each group of fingerprints linked to its incident
    /// (none for `None`). On SQLite the intake rows a processing pass staged are merged here
    /// first, their new alerts among these written settled, so that they are not updated again.
    /// Hand the result to [`SqlStore::staged_merged`] after the commit.
    async fn settle_merging(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        settles: &[(&[String], Option<i64>)],
    ) -> Result<Option<(ingest::Staged, HashMap<u64, Option<i64>>)>> {
        let mut staged = None;
        let mut written = HashMap::new();
        if let Some(a) = &self.applier {
            written = settles
                .iter()
                .flat_map(|(fps, incident)| {
                    fps.iter()
                        .filter_map(|fp| u64::from_str_radix(fp, 16).ok())
                        .map(move |fp| (fp, *incident))
                })
                .collect();
            staged = a.merge_staged(tx, &mut written).await?;
        }
        for (fps, incident) in settles {
            let rest: Vec<String> = fps
                .iter()
                .filter(|fp| {
                    u64::from_str_radix(fp, 16).map_or(true, |fp| !written.contains_key(&fp))
                })
                .cloned()
                .collect();
            Self::settle_in_tx(tx, self.dialect, &rest, *incident).await?;
        }
        Ok(staged.map(|s| (s, written)))
    }

    /// After the commit of [`SqlStore::settle_merging`]'s transaction.
    fn staged_merged(
        &self,
        settled: Option<(ingest::Staged, HashMap<u64, Option<i64>>)>,
    ) -> Result<()> {
        if let (Some(a), Some((staged, written))) = (&self.applier, settled) {
            drop(a.merged(staged, &written)?);
        }
        Ok(())
    }

    async fn read_pending(&self, limit: i64) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE pending = 1 ORDER BY last_seen, fingerprint LIMIT $1"
        )))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// The dialect, for capability modules kept in their own files (`pipeline.rs`).
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Queues behind in-process SQLite writers (the write gate).
    pub(crate) async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.gate.enter().await
    }

    /// Starts a write transaction the way the dialect wants it.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin_with(self.dialect.begin_write()).await?)
    }

    /// A write transaction taken the way every writer here takes it (the in-process gate on
    /// SQLite, then the dialect's `BEGIN`), for capability modules kept in their own files.
    /// Hold the guard until the transaction is committed.
    pub(crate) async fn begin_write_tx(
        &self,
    ) -> Result<(
        Option<tokio::sync::MutexGuard<'_, ()>>,
        sqlx::Transaction<'static, sqlx::Any>,
    )> {
        let gate = self.gate.enter().await;
        let tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        Ok((gate, tx))
    }

    /// Marks alerts caught up inside a transaction, linking them to `incident` when given.
    async fn settle_in_tx(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        dialect: Dialect,
        fingerprints: &[String],
        incident: Option<i64>,
    ) -> Result<()> {
        for chunk in ingest::pieces(fingerprints, 500) {
            let ph = ingest::placeholders(dialect, 2, chunk.len());
            let first = ingest::placeholders(dialect, 1, 1).remove(0);
            let sql = format!(
                "UPDATE alerts SET pending = 0, incident = COALESCE({first}, incident) WHERE {}",
                ingest::with_fingerprint_in(dialect, &ph.join(", "))
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(incident);
            for fp in chunk {
                q = q.bind(fp.clone());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Applies a change to an incident inside a transaction: the incident as changed, its new
    /// events, whether notifications were queued, and whether anything was written (nothing is
    /// when the change is empty).
    async fn mutate_in_tx(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        dialect: Dialect,
        number: IncidentNumber,
        author: &str,
        now: OffsetDateTime,
        change: MutateFn,
    ) -> Result<(Incident, Vec<TimelineEvent>, bool, bool)> {
        let doc: Option<String> = sqlx::query_scalar(dialect.lock_incident())
            .bind(number)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(doc) = doc else {
            return Err(StoreError::NotFound {
                what: "incident",
                key: number.to_string(),
            });
        };
        let mut incident: Incident = from_json(&doc)?;
        let change = change(&mut incident)?;
        if change.events.is_empty() && change.outbox.is_empty() {
            return Ok((incident, vec![], false, false));
        }
        sqlx::query("UPDATE incidents SET status = $1, severity = $2, updated_at = $3, doc = $4 WHERE number = $5")
            .bind(incident.status.as_str())
            .bind(i64::from(incident.severity.level()))
            .bind(ts(now))
            .bind(to_json(&incident)?)
            .bind(number)
            .execute(&mut **tx)
            .await?;
        let events = Self::append_events(tx, number, author, now, change.events).await?;
        let enqueued = !Self::insert_outbox(tx, Some(number), now, change.outbox)
            .await?
            .is_empty();
        Ok((incident, events, enqueued, true))
    }

    async fn append_events(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        number: IncidentNumber,
        author: &str,
        now: OffsetDateTime,
        kinds: Vec<EventKind>,
    ) -> Result<Vec<TimelineEvent>> {
        let mut out = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO timeline_events (incident, at, author, kind, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(number)
            .bind(ts(now))
            .bind(author)
            .bind(kind.name())
            .bind(to_json(&kind)?)
            .fetch_one(&mut **tx)
            .await?;
            out.push(TimelineEvent {
                id,
                incident: number,
                at: now,
                author: author.to_owned(),
                kind,
            });
        }
        Ok(out)
    }
}

const OUTBOX_COLUMNS: &str = "id, channel, incident, recipient, idempotency_key, payload, status, attempts, next_attempt_at, created_at, delivered_at, last_error";

fn outbox_from_row(row: &AnyRow) -> Result<OutboxMessage> {
    let status: String = row.try_get("status")?;
    let status = match status.as_str() {
        "pending" => OutboxStatus::Pending,
        "delivered" => OutboxStatus::Delivered,
        "failed" => OutboxStatus::Failed,
        "cancelled" => OutboxStatus::Cancelled,
        "throttled" => OutboxStatus::Throttled,
        other => return Err(StoreError::Corrupt(format!("outbox status `{other}`"))),
    };
    let delivered: Option<String> = row.try_get("delivered_at")?;
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        incident: row.try_get("incident")?,
        recipient: row.try_get("recipient")?,
        idempotency_key: row.try_get("idempotency_key")?,
        notification: from_json(&row.try_get::<String, _>("payload")?)?,
        status,
        attempts: row.try_get("attempts")?,
        next_attempt_at: parse_ts(&row.try_get::<String, _>("next_attempt_at")?)?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        delivered_at: delivered.as_deref().map(parse_ts).transpose()?,
        last_error: row.try_get("last_error")?,
    })
}

fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("wr-{}", hex::encode(bytes))
}

impl SqlStore {
    async fn insert_outbox(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        incident: Option<IncidentNumber>,
        now: OffsetDateTime,
        messages: Vec<NewOutboxMessage>,
    ) -> Result<Vec<OutboxMessage>> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let incident = m.notification.incident.or(incident);
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO outbox (channel, incident, kind, idempotency_key, payload, status, attempts, next_attempt_at, created_at, recipient) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8) RETURNING {OUTBOX_COLUMNS}"
            )))
            .bind(&m.channel)
            .bind(incident)
            .bind(to_json(&m.notification.kind)?.trim_matches('"').to_owned())
            .bind(idempotency_key())
            .bind(to_json(&m.notification)?)
            .bind(ts(m.not_before.filter(|t| *t > now).unwrap_or(now)))
            .bind(ts(now))
            .bind(&m.recipient)
            .fetch_one(&mut **tx)
            .await?;
            out.push(outbox_from_row(&row)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue(
        &self,
        messages: Vec<NewOutboxMessage>,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxMessage>> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let out = Self::insert_outbox(&mut tx, None, now, messages).await?;
        tx.commit().await?;
        self.outbox_signal.notify_one();
        Ok(out)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let _gate = self.gate.enter().await;
        // An earlier message holds its channel back while it is due or being retried, which
        // keeps a channel's order through outages; one scheduled for later (a person's delayed
        // notification rule) does not.
        // The outer lease and status checks are repeated on purpose: under PostgreSQL's read
        // committed, a second claimer that waited on the row lock re-checks them against the
        // row the first claimer wrote, so a message is never leased twice.
        let sql = format!(
            "UPDATE outbox SET leased_until = $1 \
             WHERE status = 'pending' AND (leased_until IS NULL OR leased_until < $2) AND id IN ( \
               SELECT o.id FROM outbox o \
               WHERE o.status = 'pending' AND o.next_attempt_at <= $2 \
                 AND (o.leased_until IS NULL OR o.leased_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.status = 'pending' AND p.id < o.id \
                                 AND (p.attempts > 0 OR p.next_attempt_at <= $2)) \
               ORDER BY o.id LIMIT $3) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts(now + lease))
            .bind(ts(now))
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<OutboxMessage> =
            rows.iter().map(outbox_from_row).collect::<Result<_>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    async fn record_delivered(&self, id: i64, now: OffsetDateTime) -> Result<()> {
        let _gate = self.gate.enter().await;
        sqlx::query("UPDATE outbox SET status = 'delivered', delivered_at = $1, leased_until = NULL, last_error = NULL WHERE id = $2")
            .bind(ts(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_failed_attempt(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let _gate = self.gate.enter().await;
        let error: String = error.chars().take(2000).collect();
        match retry_at {
            Some(at) => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, leased_until = NULL, last_error = $2 WHERE id = $3 AND status = 'pending'",
            )
            .bind(ts(at))
            .bind(error)
            .bind(id),
            None => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, status = 'failed', leased_until = NULL, last_error = $1 WHERE id = $2 AND status = 'pending'",
            )
            .bind(error)
            .bind(id),
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_for_incident(&self, number: IncidentNumber) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE incident = $1 ORDER BY id"
        )))
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn cancel_pending_pages(
        &self,
        incident: IncidentNumber,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let _gate = self.gate.enter().await;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'cancelled', last_error = 'acknowledged before this notification rule was due' \
             WHERE incident = $1 AND kind = 'page' AND status = 'pending' AND attempts = 0 AND next_attempt_at > $2 AND leased_until IS NULL",
        )
        .bind(incident)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn pages_delivered_to(&self, recipient: &str, since: OffsetDateTime) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = 'page' AND status = 'delivered' AND delivered_at >= $2",
        )
        .bind(recipient)
        .bind(ts(since))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_throttled(&self, id: i64, reason: &str) -> Result<()> {
        let _gate = self.gate.enter().await;
        sqlx::query("UPDATE outbox SET status = 'throttled', leased_until = NULL, last_error = $1 WHERE id = $2 AND status = 'pending'")
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            let status: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            let s = match status.as_str() {
                "pending" => OutboxStatus::Pending,
                "delivered" => OutboxStatus::Delivered,
                "cancelled" => OutboxStatus::Cancelled,
                "throttled" => OutboxStatus::Throttled,
                _ => OutboxStatus::Failed,
            };
            out.push((s, n));
        }
        Ok(out)
    }
}

const ALERT_COLUMNS: &str = "fingerprint, group_key, service, name, labels, annotations, status, starts_at, ends_at, received, incident";

fn alert_from_row(row: &AnyRow) -> Result<StoredAlert> {
    let ends: Option<String> = row.try_get("ends_at")?;
    Ok(StoredAlert {
        fingerprint: row.try_get("fingerprint")?,
        group_key: row.try_get("group_key")?,
        service: row.try_get("service")?,
        name: row.try_get("name")?,
        labels: from_json(&row.try_get::<String, _>("labels")?)?,
        annotations: from_json(&row.try_get::<String, _>("annotations")?)?,
        status: row.try_get("status")?,
        starts_at: parse_ts(&row.try_get::<String, _>("starts_at")?)?,
        ends_at: ends.as_deref().map(parse_ts).transpose()?,
        received: row.try_get("received")?,
        incident: row.try_get("incident")?,
    })
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn ingest_alerts(
        &self,
        alerts: Vec<AlertIn>,
        now: OffsetDateTime,
    ) -> Result<IngestOutcome> {
        let mut prepared = Vec::new();
        if let Some(k) = &self.known_alerts {
            if let Some(outcome) = (!alerts.iter().any(|a| a.expiry))
                .then(|| k.try_duplicates(&alerts, now))
                .flatten()
            {
                return Ok(outcome);
            }
            // What does not depend on what is stored is done here, in parallel across
            // requests, so that the writer, the one serial step, does as little as it can.
            prepared = alerts
                .iter()
                .map(ingest::prepare)
                .collect::<Result<Vec<_>>>()?;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ingest_queue
            .send(ingest::IngestJob {
                alerts,
                prepared,
                now,
                reply,
            })
            .await
            .map_err(|_| StoreError::Failed("the alert writer stopped; restart warroom".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Failed("the alert writer stopped; restart warroom".into()))?
    }

    fn alert_signal(&self) -> Arc<tokio::sync::Notify> {
        self.alert_signal.clone()
    }

    async fn flush_alert_counts(&self) -> Result<()> {
        // Counts of alerts still in the intake wait for their rows.
        self.catch_up_intake().await?;
        if let Some(k) = &self.known_alerts {
            let counts = k.take_counts();
            if let Err(e) =
                ingest::write_counts(&self.pool, self.dialect, &self.gate, &counts).await
            {
                k.restore_counts(counts);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn firing_alerts_for(&self, service: &str) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND service = $1 ORDER BY fingerprint"
        )))
        .bind(service)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn firing_alerts_named(&self, names: &[&str]) -> Result<Vec<StoredAlert>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.catch_up_intake().await?;
        let ph = ingest::placeholders(self.dialect, 1, names.len());
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND name IN ({}) ORDER BY fingerprint",
            ph.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in names {
            q = q.bind(n.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn record_health(
        &self,
        service: &str,
        status: &str,
        cause: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM service_health WHERE service = $1")
                .bind(service)
                .fetch_optional(&mut *tx)
                .await?;
        if current.as_deref() == Some(status) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO service_health (service, status, since, cause) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (service) DO UPDATE SET status = excluded.status, since = excluded.since, cause = excluded.cause",
        )
        .bind(service)
        .bind(status)
        .bind(ts(now))
        .bind(cause)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO service_health_events (service, at, from_status, to_status, cause) VALUES ($1, $2, $3, $4, $5)")
            .bind(service)
            .bind(ts(now))
            .bind(&current)
            .bind(status)
            .bind(cause)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn service_health(&self) -> Result<Vec<ServiceHealth>> {
        let rows = sqlx::query(
            "SELECT service, status, since, cause FROM service_health ORDER BY service",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceHealth {
                    service: r.try_get("service")?,
                    status: r.try_get("status")?,
                    since: parse_ts(&r.try_get::<String, _>("since")?)?,
                    cause: r.try_get("cause")?,
                })
            })
            .collect()
    }

    async fn health_history(&self, service: &str, limit: i64) -> Result<Vec<HealthChange>> {
        let rows = sqlx::query(
            "SELECT at, from_status, to_status, cause FROM service_health_events WHERE service = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(service)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HealthChange {
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    from: r.try_get("from_status")?,
                    to: r.try_get("to_status")?,
                    cause: r.try_get("cause")?,
                })
            })
            .collect()
    }

    async fn pending_alerts(&self, limit: i64) -> Result<Vec<StoredAlert>> {
        self.catch_up_intake().await?;
        self.read_pending(limit).await
    }

    async fn take_pending(&self, limit: i64) -> Result<Vec<StoredAlert>> {
        let limit = limit.clamp(1, 10_000);
        // What the intake holds is pending too, and older: its new alerts, oldest first, a
        // pass's worth, are this pass, staged until the pass settles them.
        if let Some(a) = &self.applier {
            let fresh = a
                .stage_for_pass(usize::try_from(limit).unwrap_or(1))
                .await?;
            if !fresh.is_empty() {
                return Ok(fresh);
            }
        }
        if let Some(h) = &self.handoff
            && let Some(alerts) = h.take(usize::try_from(limit).unwrap_or(1))
        {
            return Ok(alerts);
        }
        let alerts = self.read_pending(limit).await?;
        if let Some(h) = &self.handoff {
            h.read_from_db(&alerts, (alerts.len() as i64) < limit);
        }
        Ok(alerts)
    }

    fn pass_done(&self, settled_all: bool) {
        if let Some(a) = &self.applier {
            a.unstage();
        }
        if let Some(h) = &self.handoff {
            h.pass_done(settled_all);
        }
    }

    async fn settle_alerts(&self, fingerprints: &[String], incident: Option<i64>) -> Result<()> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let settled = self
            .settle_merging(&mut tx, &[(fingerprints, incident)])
            .await?;
        tx.commit().await?;
        self.staged_merged(settled)
    }

    async fn settle_pass(
        &self,
        author: &str,
        now: OffsetDateTime,
        joins: Vec<AlertJoin>,
        unlinked: &[String],
    ) -> Result<()> {
        if joins.is_empty() && unlinked.is_empty() {
            return Ok(());
        }
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let mut settles: Vec<(&[String], Option<i64>)> = joins
            .iter()
            .map(|j| (j.alerts.as_slice(), Some(j.incident)))
            .collect();
        settles.push((unlinked, None));
        let settled = self.settle_merging(&mut tx, &settles).await?;
        drop(settles);
        let mut enqueued = false;
        for j in joins {
            enqueued |=
                Self::mutate_in_tx(&mut tx, self.dialect, j.incident, author, now, j.change)
                    .await?
                    .2;
        }
        tx.commit().await?;
        self.staged_merged(settled)?;
        if enqueued {
            self.outbox_signal.notify_one();
        }
        Ok(())
    }

    async fn alerts_for_incident(&self, number: IncidentNumber) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE incident = $1 ORDER BY fingerprint"
        )))
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn alert_gauges(&self, limit: i64) -> Result<AlertGauges> {
        let firing: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM alerts WHERE status = 'firing' LIMIT $1) AS firing",
        )
        .bind(limit.max(0))
        .fetch_one(&self.pool)
        .await?;
        let intake_waiting = self.applier.as_ref().map_or(0, |a| a.waiting());
        Ok(AlertGauges {
            firing,
            intake_waiting,
        })
    }

    async fn unlinked_firing_alerts(&self, after: &str, limit: i64) -> Result<Vec<StoredAlert>> {
        self.catch_up_intake().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE incident IS NULL AND status = 'firing' AND pending = 0 AND fingerprint > $1 ORDER BY fingerprint LIMIT $2"
        )))
        .bind(after.to_owned())
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn firing_alerts_page(
        &self,
        after: &str,
        limit: i64,
        labels: &[(&str, &str)],
    ) -> Result<FiringPage> {
        if after.is_empty() {
            self.catch_up_intake().await?;
        }
        let limit = limit.clamp(1, 10_000);
        // SQLite's alerts are keyed by row id (fingerprints live in the key tables), so its
        // walk follows the row ids; PostgreSQL's are keyed by fingerprint. Label values are
        // compared in the database, so that rows of other alerts are never decoded here.
        // PostgreSQL's json types refuse `\u0000` (a NUL in a label value, which the wire
        // allows): such rows are let through to be judged by the caller instead, and CASE is
        // what keeps the cast from running on them.
        let key = match self.dialect {
            Dialect::Sqlite => "id",
            Dialect::Postgres => "fingerprint",
        };
        // The label named by parameter `$n` has the value of `$n+1`.
        let label_is = |n: usize| match self.dialect {
            Dialect::Sqlite => format!("json_extract(labels, ${n}) = ${}", n + 1),
            Dialect::Postgres => format!(
                "CASE WHEN strpos(labels, '\\u0000') > 0 THEN TRUE ELSE (labels::jsonb ->> ${n}) = ${} END",
                n + 1
            ),
        };
        // A NUL cannot be a PostgreSQL text parameter: such a value is left to the caller.
        let labels: Vec<&(&str, &str)> = labels.iter().filter(|(_, v)| !v.contains('\0')).collect();
        let mut sql = format!(
            "SELECT {key} AS page_key, fingerprint, labels, annotations, starts_at, ends_at, last_seen, generator_url, incident \
             FROM alerts WHERE {key} > $1 AND status = 'firing'"
        );
        for i in 0..labels.len() {
            sql.push_str(" AND ");
            sql.push_str(&label_is(3 + 2 * i));
        }
        sql.push_str(&format!(" ORDER BY {key} LIMIT $2"));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        q = match self.dialect {
            Dialect::Sqlite => q.bind(if after.is_empty() {
                0
            } else {
                after.parse::<i64>().map_err(|_| {
                    StoreError::Failed(format!("`{after}` is not a page of firing alerts"))
                })?
            }),
            Dialect::Postgres => q.bind(after.to_owned()),
        };
        q = q.bind(limit);
        for (name, value) in labels {
            q = match self.dialect {
                // A JSON path; label names are letters, digits and underscores.
                Dialect::Sqlite => q.bind(format!("$.\"{name}\"")),
                Dialect::Postgres => q.bind((*name).to_owned()),
            };
            q = q.bind((*value).to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let next = match (rows.last(), rows.len() as i64 == limit) {
            (Some(last), true) => Some(match self.dialect {
                Dialect::Sqlite => last.try_get::<i64, _>("page_key")?.to_string(),
                Dialect::Postgres => last.try_get::<String, _>("page_key")?,
            }),
            _ => None,
        };
        let alerts = rows
            .iter()
            .map(|r| {
                let ends: Option<String> = r.try_get("ends_at")?;
                Ok(ListedAlert {
                    fingerprint: r.try_get("fingerprint")?,
                    labels: from_json(&r.try_get::<String, _>("labels")?)?,
                    annotations: from_json(&r.try_get::<String, _>("annotations")?)?,
                    starts_at: parse_ts(&r.try_get::<String, _>("starts_at")?)?,
                    ends_at: ends.as_deref().map(parse_ts).transpose()?,
                    last_seen: parse_ts(&r.try_get::<String, _>("last_seen")?)?,
                    generator_url: r
                        .try_get::<Option<String>, _>("generator_url")?
                        .filter(|u| !u.is_empty()),
                    incident: r.try_get("incident")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FiringPage { alerts, next })
    }

    async fn reconsider_alerts(&self, fingerprints: &[String]) -> Result<u64> {
        if fingerprints.is_empty() {
            return Ok(0);
        }
        self.catch_up_intake().await?;
        let mut marked = 0;
        {
            let _gate = self.gate.enter().await;
            let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
            for chunk in fingerprints.chunks(500) {
                let sql = format!(
                    "UPDATE alerts SET pending = 1 WHERE incident IS NULL AND status = 'firing' AND {}",
                    ingest::with_fingerprint_in(
                        self.dialect,
                        &ingest::placeholders(self.dialect, 1, chunk.len()).join(", ")
                    )
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for fp in chunk {
                    q = q.bind(fp.clone());
                }
                marked += q.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        }
        // The processor takes its passes from memory while memory holds every pending alert;
        // these became pending behind its back, so the next pass reads the database.
        if let Some(h) = &self.handoff {
            h.forget();
        }
        if marked > 0 {
            self.alert_signal.notify_one();
        }
        Ok(marked)
    }

    async fn expired_alerts(&self, now: OffsetDateTime, limit: i64) -> Result<Vec<StoredAlert>> {
        // Alerts still in the intake are not looked at: their newest state is in memory (the
        // table of known alerts), and an expiry is judged against that before it resolves
        // anything. Reading `alerts` as it is leaves at most a sighting's end unseen until the
        // next merge, which only delays the expiry of an alert the intake holds anyway.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND ends_at IS NOT NULL AND ends_at <= $1 ORDER BY ends_at LIMIT $2"
        )))
        .bind(ts(now))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn list_alerts(&self, status: Option<&str>, limit: i64) -> Result<Vec<StoredAlert>> {
        self.catch_up_intake().await?;
        let rows = match status {
            Some(s) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE status = $1 ORDER BY last_seen DESC, fingerprint LIMIT $2"
            )))
            .bind(s.to_owned())
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY last_seen DESC, fingerprint LIMIT $1")))
                .bind(limit.clamp(1, 1000))
                .fetch_all(&self.pool)
                .await?,
        };
        rows.iter().map(alert_from_row).collect()
    }
}

fn check_from_row(r: &sqlx::any::AnyRow) -> Result<CheckRecord> {
    let at: i64 = r.try_get("at")?;
    let failure: Option<String> = r.try_get("failure")?;
    Ok(CheckRecord {
        monitor: r.try_get("monitor")?,
        at: OffsetDateTime::from_unix_timestamp(at)
            .map_err(|e| StoreError::Corrupt(format!("check result time {at}: {e}")))?,
        ok: r.try_get::<i64, _>("ok")? != 0,
        latency_ms: r.try_get("latency_ms")?,
        failure: failure
            .map(|f| {
                serde_json::from_value(serde_json::Value::String(f.clone()))
                    .map_err(|e| StoreError::Corrupt(format!("check failure `{f}`: {e}")))
            })
            .transpose()?,
    })
}

/// Rollup granularities in seconds: 5 minutes and 1 hour.
const ROLLUPS: [i64; 2] = [300, 3600];

#[async_trait]
impl CheckStore for SqlStore {
    async fn record_checks(&self, checks: &[CheckRecord]) -> Result<()> {
        if checks.is_empty() {
            return Ok(());
        }
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        for c in checks {
            let at = c.at.unix_timestamp();
            sqlx::query(
                "INSERT INTO check_results (monitor, at, ok, latency_ms, failure) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&c.monitor)
            .bind(at)
            .bind(i64::from(c.ok))
            .bind(c.latency_ms)
            .bind(c.failure.map(|f| f.as_str()))
            .execute(&mut *tx)
            .await?;
            for g in ROLLUPS {
                sqlx::query(
                    "INSERT INTO check_rollups (monitor, granularity, bucket, checks, failures, latency_sum_ms, latency_max_ms) \
                     VALUES ($1, $2, $3, 1, $4, $5, $5) \
                     ON CONFLICT (monitor, granularity, bucket) DO UPDATE SET checks = check_rollups.checks + 1, \
                     failures = check_rollups.failures + excluded.failures, latency_sum_ms = check_rollups.latency_sum_ms + excluded.latency_sum_ms, \
                     latency_max_ms = CASE WHEN excluded.latency_max_ms > check_rollups.latency_max_ms THEN excluded.latency_max_ms ELSE check_rollups.latency_max_ms END",
                )
                .bind(&c.monitor)
                .bind(g)
                .bind(at - at.rem_euclid(g))
                .bind(i64::from(!c.ok))
                .bind(c.latency_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recent_checks(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<CheckRecord>> {
        let rows = sqlx::query(
            "SELECT monitor, at, ok, latency_ms, failure FROM check_results WHERE at >= $1 AND at < $2 ORDER BY at",
        )
        .bind(from.unix_timestamp())
        .bind(to.unix_timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(check_from_row).collect()
    }

    async fn latest_checks(&self, monitor: &str, limit: i64) -> Result<Vec<CheckRecord>> {
        let rows = sqlx::query(
            "SELECT monitor, at, ok, latency_ms, failure FROM check_results WHERE monitor = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(monitor.to_owned())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(check_from_row).collect()
    }

    async fn prune_checks(&self, now: OffsetDateTime, retention: Retention) -> Result<u64> {
        let _gate = self.gate.enter().await;
        let now = now.unix_timestamp();
        let raw = sqlx::query("DELETE FROM check_results WHERE at < $1")
            .bind(now - retention.raw.whole_seconds())
            .execute(&self.pool)
            .await?
            .rows_affected();
        let mut rolled = 0;
        for (g, keep) in [(300, retention.five_minutes), (3600, retention.hours)] {
            rolled +=
                sqlx::query("DELETE FROM check_rollups WHERE granularity = $1 AND bucket < $2")
                    .bind(g)
                    .bind(now - keep.whole_seconds())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
        }
        Ok(raw + rolled)
    }

    async fn uptime(
        &self,
        monitor: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Uptime> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(checks), 0) AS BIGINT) AS checks, CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS failures, \
             CAST(COALESCE(SUM(latency_sum_ms), 0) AS BIGINT) AS latency_sum, CAST(COALESCE(MAX(latency_max_ms), -1) AS BIGINT) AS latency_max \
             FROM check_rollups WHERE monitor = $1 AND granularity = 3600 AND bucket >= $2 AND bucket < $3",
        )
        .bind(monitor)
        .bind(from.unix_timestamp() - from.unix_timestamp().rem_euclid(3600))
        .bind(to.unix_timestamp())
        .fetch_one(&self.pool)
        .await?;
        let checks: i64 = row.try_get("checks")?;
        let failures: i64 = row.try_get("failures")?;
        let latency_sum: i64 = row.try_get("latency_sum")?;
        let latency_max: i64 = row.try_get("latency_max")?;
        Ok(Uptime {
            checks,
            failures,
            availability_percent: (checks > 0)
                .then(|| (checks - failures) as f64 * 100.0 / checks as f64),
            mean_latency_ms: (checks > 0).then(|| latency_sum as f64 / checks as f64),
            max_latency_ms: (latency_max >= 0).then_some(latency_max),
        })
    }
}

#[async_trait]
impl IncidentStore for SqlStore {
    async fn declare_incident(
        &self,
        author: &str,
        now: OffsetDateTime,
        build: DeclareFn,
    ) -> Result<(Incident, Vec<TimelineEvent>)> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        // The counter row is the serialisation point: numbers are allocated in commit order
        // and a rolled-back declare gives its number back, so the sequence has no gaps.
        let number: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'incident' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (incident, change) = build(number)?;
        sqlx::query(
            "INSERT INTO incidents (number, status, severity, primary_service, detected_at, declared_at, updated_at, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(number)
        .bind(incident.status.as_str())
        .bind(i64::from(incident.severity.level()))
        .bind(incident.services.first().map(|s| s.as_str().to_owned()).unwrap_or_default())
        .bind(ts(incident.detected_at))
        .bind(ts(incident.declared_at))
        .bind(ts(now))
        .bind(to_json(&incident)?)
        .execute(&mut *tx)
        .await?;
        for s in &incident.services {
            sqlx::query("INSERT INTO incident_services (incident, service) VALUES ($1, $2)")
                .bind(number)
                .bind(s.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Rejected(warroom_domain::DomainError::invalid(
                            "services",
                            format!("`{s}` is listed twice"),
                        ))
                    } else {
                        e.into()
                    }
                })?;
        }
        let events = Self::append_events(&mut tx, number, author, now, change.events).await?;
        let enqueued = !Self::insert_outbox(&mut tx, Some(number), now, change.outbox)
            .await?
            .is_empty();
        tx.commit().await?;
        if enqueued {
            self.outbox_signal.notify_one();
        }
        Ok((incident, events))
    }

    async fn incident(&self, number: IncidentNumber) -> Result<Incident> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM incidents WHERE number = $1")
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        match doc {
            Some(d) => from_json(&d),
            None => Err(StoreError::NotFound {
                what: "incident",
                key: number.to_string(),
            }),
        }
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>> {
        // Built only from fixed fragments and numbered placeholders; values are bound.
        let mut sql = String::from("SELECT i.doc FROM incidents i WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if !filter.statuses.is_empty() {
            let ph: Vec<String> = filter.statuses.iter().map(|_| next()).collect();
            sql.push_str(&format!(" AND i.status IN ({})", ph.join(", ")));
        }
        if filter.severity.is_some() {
            sql.push_str(&format!(" AND i.severity = {}", next()));
        }
        if filter.service.is_some() {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM incident_services s WHERE s.incident = i.number AND s.service = {})",
                next()
            ));
        }
        sql.push_str(&format!(" ORDER BY i.number DESC LIMIT {}", next()));
        let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for s in &filter.statuses {
            q = q.bind(s.as_str());
        }
        if let Some(sev) = filter.severity {
            q = q.bind(i64::from(sev.level()));
        }
        if let Some(svc) = &filter.service {
            q = q.bind(svc.clone());
        }
        q = q.bind(filter.limit.clamp(1, 500));
        let docs = q.fetch_all(&self.pool).await?;
        docs.iter().map(|d| from_json(d)).collect()
    }

    async fn mutate_incident(
        &self,
        number: IncidentNumber,
        author: &str,
        now: OffsetDateTime,
        change: MutateFn,
    ) -> Result<(Incident, Vec<TimelineEvent>)> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let (incident, events, enqueued, wrote) =
            Self::mutate_in_tx(&mut tx, self.dialect, number, author, now, change).await?;
        if !wrote {
            tx.rollback().await?;
            return Ok((incident, events));
        }
        tx.commit().await?;
        if enqueued {
            self.outbox_signal.notify_one();
        }
        Ok((incident, events))
    }

    async fn timeline(&self, number: IncidentNumber) -> Result<Vec<TimelineEvent>> {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT number FROM incidents WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "incident",
                key: number.to_string(),
            });
        }
        let rows = sqlx::query("SELECT id, incident, at, author, payload FROM timeline_events WHERE incident = $1 ORDER BY id")
            .bind(number)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}

#[async_trait]
impl ServiceStore for SqlStore {
    async fn sync_configured_services(
        &self,
        services: &[Service],
        now: OffsetDateTime,
    ) -> Result<()> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        for s in services {
            sqlx::query(
                "INSERT INTO services (slug, name, owner, public, configured, created_at) VALUES ($1, $2, $3, $4, 1, $5) \
                 ON CONFLICT (slug) DO UPDATE SET name = excluded.name, owner = excluded.owner, public = excluded.public, configured = 1",
            )
            .bind(s.slug.as_str())
            .bind(&s.name)
            .bind(&s.owner)
            .bind(i64::from(s.public))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ensure_service(&self, service: &Service, now: OffsetDateTime) -> Result<Service> {
        if let Some(existing) = self.service(service.slug.as_str()).await? {
            return Ok(existing);
        }
        let _gate = self.gate.enter().await;
        sqlx::query(
            "INSERT INTO services (slug, name, owner, public, configured, created_at) VALUES ($1, $2, $3, $4, 0, $5) \
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(service.slug.as_str())
        .bind(&service.name)
        .bind(&service.owner)
        .bind(i64::from(service.public))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        drop(_gate);
        self.service(service.slug.as_str()).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("service {} vanished after insert", service.slug))
        })
    }

    async fn service(&self, slug: &str) -> Result<Option<Service>> {
        let row = sqlx::query("SELECT slug, name, owner, public FROM services WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(service_from_row).transpose()
    }

    async fn services(&self) -> Result<Vec<Service>> {
        let rows = sqlx::query("SELECT slug, name, owner, public FROM services ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(service_from_row).collect()
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(
        &self,
        name: &str,
        role: TokenRole,
        now: OffsetDateTime,
    ) -> Result<NewToken> {
        let name = warroom_domain::incident::check_text("name", name, 100)?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("wr_{}", hex::encode(bytes));
        let mut id_bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut id_bytes);
        let token = ApiToken {
            id: hex::encode(id_bytes),
            name,
            role,
            created_at: now,
            revoked_at: None,
        };
        let _gate = self.gate.enter().await;
        sqlx::query("INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&token.id)
            .bind(&token.name)
            .bind(role.as_str())
            .bind(hash_secret(&secret))
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("a live token named `{}` exists; revoke it first or pick another name", token.name))
                } else {
                    e.into()
                }
            })?;
        Ok(NewToken { token, secret })
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>> {
        let hash = hash_secret(secret);
        if let Some(t) = self.tokens.get(&hash) {
            return Ok(Some(t));
        }
        let row = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let token = row.as_ref().map(token_from_row).transpose()?;
        if let Some(t) = &token {
            self.tokens.put(hash, t.clone());
        }
        Ok(token)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<bool> {
        let _gate = self.gate.enter().await;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.tokens.clear();
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn close(&self) {
        if let Some(a) = &self.applier {
            if let Err(e) = ingest::forget_merged(&a.intake_pool, &a.intake_gate, &a.intake).await {
                tracing::warn!(error = %e, "deleting merged rows from the alert intake failed; the next start does it");
            }
            a.intake_pool.close().await;
        }
        self.pool.close().await;
    }
}
