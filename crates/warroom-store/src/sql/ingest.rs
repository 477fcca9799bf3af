//! Alert ingestion: the group-commit writer, the in-memory table of known alerts that lets a
//! plain repeat be answered without a write, and the lazy flush of repeat counters.
//!
//! What a 2xx promises is that the alerts' *information* is committed: a new fingerprint, a
//! changed status, start, end or annotations. Such alerts go through one writer task that folds
//! every caller waiting at that moment into one transaction (one fsync) and answers them after
//! the commit. A repeat that carries nothing new (clustered Alertmanagers and every Prometheus
//! send one on purpose) has nothing to commit: with the table of known alerts it is answered at
//! once, and only its statistics (`received`, `last_seen`) are written, in batches, about once
//! a second. A crash loses at most that second of repeat counts, never an alert or a state.
//!
//! The table of known alerts is kept only on SQLite, where this process is the only writer of
//! the `alerts` table (the CLI writes tokens, not alerts; two `warroom serve` on one SQLite file
//! are not supported). On PostgreSQL several warroom processes may share the database, so a
//! process's memory of an alert can be stale: every alert goes through the writer, which reads
//! the current rows in one statement per batch and upserts them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use sqlx::{AnyPool, Row};
use time::OffsetDateTime;
use warroom_domain::alert::AlertState;

use super::{Dialect, SqlStore, WriteGate, to_json, ts};
use crate::{AlertIn, IngestOutcome, Result, StoreError, StoredAlert, row::parse_ts};

/// One caller's alerts, waiting for the group commit.
pub(super) struct IngestJob {
    pub(super) alerts: Vec<AlertIn>,
    pub(super) now: OffsetDateTime,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<IngestOutcome>>,
}

/// Most callers folded into one transaction; more in-flight senders make bigger groups.
const GROUP_COMMIT_MAX_CALLERS: usize = 1024;
/// Most alerts folded into one transaction, so one commit stays short.
const GROUP_COMMIT_MAX_ALERTS: usize = 20_000;
/// Rows per multi-row statement: 14 parameters a row stays far below both databases' limits.
const ROWS_PER_STATEMENT: usize = 100;
/// Alerts remembered in memory (about 100 bytes each, so about 20 MB): past that the table is
/// emptied and refills from the database as alerts come in, which keeps memory bounded on a
/// stream of ever-new fingerprints.
const KNOWN_MAX: usize = 200_000;
/// Alertmanager's default `resolve_timeout`: a firing alert re-sent with a later `startsAt`
/// within this time of its last sighting is the same occurrence (Alertmanager merges the two and
/// keeps the earliest start). This is what makes repeats from senders that omit `startsAt`
/// (stamped with the receipt time) duplicates rather than new occurrences.
const SAME_OCCURRENCE: time::Duration = time::Duration::minutes(5);

/// What is known about one stored alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Known {
    firing: bool,
    starts_at: OffsetDateTime,
    ends_at: Option<OffsetDateTime>,
    /// Hash of the annotations.
    annotations: u64,
    last_seen: OffsetDateTime,
}

/// A remembered alert and the repeats not yet written.
#[derive(Debug, Clone, Copy)]
struct Entry {
    known: Known,
    unflushed: u32,
}

/// The alerts this process knows, by fingerprint, with repeat counts waiting to be written.
#[derive(Debug, Default)]
pub(super) struct KnownAlerts {
    inner: Mutex<KnownInner>,
}

#[derive(Debug, Default)]
struct KnownInner {
    map: HashMap<u64, Entry>,
    /// Fingerprints with `unflushed > 0`, so a flush does not scan the table.
    dirty: Vec<u64>,
    /// Repeat counts of entries dropped when the table was emptied, waiting to be written.
    spilled: Vec<(u64, u32, OffsetDateTime)>,
}

/// Repeat counts to write: fingerprint, how many more receipts, last seen.
pub(super) type Counts = Vec<(u64, u32, OffsetDateTime)>;

fn annotations_hash(a: &AlertIn) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    a.alert.annotations.hash(&mut h);
    h.finish()
}

/// How an incoming alert relates to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A fingerprint never seen: stored and pending.
    New,
    /// A state change (resolved, or firing again): stored and pending. `detach`: a new
    /// occurrence after a resolution, which leaves the old incident.
    Changed { detach: bool },
    /// The same state with new information (start, end or annotations): stored, not pending.
    Updated,
    /// Nothing new: only counted.
    Duplicate,
}

/// Compares an incoming alert with what is stored; returns the verdict and what is stored after.
fn judge(
    old: Option<&Known>,
    a: &AlertIn,
    annotations: u64,
    now: OffsetDateTime,
) -> (Verdict, Known) {
    let firing = a.state == AlertState::Firing;
    let mut next = Known {
        firing,
        starts_at: a.alert.starts_at,
        ends_at: a.alert.ends_at,
        annotations,
        last_seen: now,
    };
    let Some(old) = old else {
        return (Verdict::New, next);
    };
    let mut refired = false;
    if firing && old.firing {
        let same_occurrence =
            next.starts_at < old.starts_at || next.starts_at <= old.last_seen + SAME_OCCURRENCE;
        if same_occurrence {
            next.starts_at = next.starts_at.min(old.starts_at);
        } else {
            refired = true;
        }
    } else if firing {
        // Firing again after a resolution: a new occurrence.
        refired = true;
    }
    let verdict = if old.firing != firing || refired {
        Verdict::Changed {
            detach: refired && !old.firing,
        }
    } else if old.starts_at != next.starts_at
        || old.ends_at != next.ends_at
        || old.annotations != next.annotations
    {
        Verdict::Updated
    } else {
        Verdict::Duplicate
    };
    (verdict, next)
}

impl KnownAlerts {
    /// Answers a request at once when every alert in it is a repeat with nothing new; `None`
    /// when something has to be committed (then nothing was counted here).
    pub(super) fn try_duplicates(
        &self,
        alerts: &[AlertIn],
        now: OffsetDateTime,
    ) -> Option<IngestOutcome> {
        let hashes: Vec<u64> = alerts.iter().map(annotations_hash).collect();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (a, h) in alerts.iter().zip(&hashes) {
            let e = inner.map.get(&a.alert.fingerprint.0)?;
            if judge(Some(&e.known), a, *h, now).0 != Verdict::Duplicate {
                return None;
            }
        }
        for a in alerts {
            inner.count_repeat(a.alert.fingerprint.0, 1, now);
        }
        Some(IngestOutcome {
            received: alerts.len(),
            duplicates: alerts.len(),
            ..Default::default()
        })
    }

    fn snapshot(&self, fps: &[u64]) -> HashMap<u64, Known> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        fps.iter()
            .filter_map(|fp| inner.map.get(fp).map(|e| (*fp, e.known)))
            .collect()
    }

    /// Records what a commit stored and the repeats it only counted.
    fn after_commit(&self, stored: &[(u64, Known)], repeats: &[(u64, Known, u32)]) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.len() + stored.len() + repeats.len() > KNOWN_MAX {
            inner.empty();
        }
        for (fp, known) in stored {
            inner
                .map
                .entry(*fp)
                .and_modify(|e| e.known = *known)
                .or_insert(Entry {
                    known: *known,
                    unflushed: 0,
                });
        }
        for (fp, known, n) in repeats {
            inner.map.entry(*fp).or_insert(Entry {
                known: *known,
                unflushed: 0,
            });
            inner.count_repeat(*fp, *n, known.last_seen);
        }
    }

    /// Takes the repeat counts waiting to be written.
    pub(super) fn take_counts(&self) -> Counts {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::mem::take(&mut inner.spilled);
        let dirty = std::mem::take(&mut inner.dirty);
        for fp in dirty {
            if let Some(e) = inner.map.get_mut(&fp)
                && e.unflushed > 0
            {
                out.push((fp, e.unflushed, e.known.last_seen));
                e.unflushed = 0;
            }
        }
        out
    }

    /// Puts counts back after a failed write, so that they are tried again.
    pub(super) fn restore_counts(&self, counts: Counts) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.spilled.extend(counts);
    }
}

impl KnownInner {
    fn count_repeat(&mut self, fp: u64, n: u32, now: OffsetDateTime) {
        if let Some(e) = self.map.get_mut(&fp) {
            if e.unflushed == 0 {
                self.dirty.push(fp);
            }
            e.unflushed = e.unflushed.saturating_add(n);
            e.known.last_seen = e.known.last_seen.max(now);
        }
    }

    fn empty(&mut self) {
        let dropped: Vec<(u64, u32, OffsetDateTime)> = self
            .map
            .iter()
            .filter(|(_, e)| e.unflushed > 0)
            .map(|(fp, e)| (*fp, e.unflushed, e.known.last_seen))
            .collect();
        self.spilled.extend(dropped);
        self.map.clear();
        self.dirty.clear();
    }
}

/// Most alerts handed over in memory; past that the processor reads from the database again
/// until it has caught up (about 500 bytes an alert, so about 10 MB).
const HANDOFF_MAX: usize = 20_000;

/// New alerts handed from the writer to the alert processor in memory, so that a pass does not
/// read back (and parse) the rows just written. The database stays the truth: memory is used
/// only while it holds *every* pending alert (`complete`), which the processor establishes by a
/// database pass that read all pending rows; anything that memory cannot represent (a state
/// change of an existing alert, whose incident link only the database knows; an overflow; a
/// failed pass) makes it incomplete again, and the processor reads from the database. SQLite
/// only, for the same reason as [`KnownAlerts`]: this process is the only writer of alerts.
#[derive(Debug, Default)]
pub(super) struct Handoff {
    inner: Mutex<HandoffInner>,
}

#[derive(Debug, Default)]
struct HandoffInner {
    /// Fingerprints in commit order; some may have left `alerts` already.
    order: std::collections::VecDeque<u64>,
    alerts: HashMap<u64, StoredAlert>,
    /// Every alert pending in the database is in `alerts` (or is being committed and will be).
    complete: bool,
    /// A database pass is catching up, and nothing has made memory incomplete since it began.
    armed: bool,
    /// The fingerprints the current database pass read, and whether that was all pending rows.
    db_pass: Option<(Vec<u64>, bool)>,
}

impl HandoffInner {
    fn invalidate(&mut self) {
        self.complete = false;
        self.armed = false;
        self.order.clear();
        self.alerts.clear();
    }
}

impl Handoff {
    /// The next pass's alerts from memory, or `None` when memory is incomplete (then a
    /// database pass starts: call [`Handoff::read_from_db`] with what it read).
    pub(super) fn take(&self, limit: usize) -> Option<Vec<StoredAlert>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.db_pass = None;
        if !inner.complete {
            inner.order.clear();
            inner.alerts.clear();
            inner.armed = true;
            return None;
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(fp) = inner.order.pop_front() else {
                break;
            };
            if let Some(a) = inner.alerts.remove(&fp) {
                out.push(a);
            }
        }
        Some(out)
    }

    /// Records what a database pass read: `all` when that was every pending row.
    pub(super) fn read_from_db(&self, alerts: &[StoredAlert], all: bool) {
        let fps = alerts
            .iter()
            .filter_map(|a| u64::from_str_radix(&a.fingerprint, 16).ok())
            .collect();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.db_pass = Some((fps, all));
    }

    /// After a pass: when it settled everything it took and it was a database pass that read
    /// every pending row, memory now holds every pending alert.
    pub(super) fn pass_done(&self, settled_all: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let db_pass = inner.db_pass.take();
        if !settled_all {
            inner.invalidate();
            return;
        }
        if let Some((fps, all)) = db_pass
            && all
            && inner.armed
        {
            // Alerts committed while the database pass ran may be in both; they are settled.
            for fp in fps {
                inner.alerts.remove(&fp);
            }
            inner.complete = true;
            inner.armed = false;
        }
    }

    /// Records a commit: its new alerts (pending, linked to no incident), its updates of alerts
    /// that stayed in the same state, and whether it changed the state of an existing alert.
    fn after_commit(
        &self,
        new: Vec<(u64, StoredAlert)>,
        updated: Vec<(u64, StoredAlert)>,
        changed: bool,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.complete && !inner.armed {
            return;
        }
        if changed || inner.alerts.len() + new.len() > HANDOFF_MAX {
            inner.invalidate();
            return;
        }
        for (fp, a) in updated {
            if let Some(e) = inner.alerts.get_mut(&fp) {
                *e = a;
            }
        }
        for (fp, a) in new {
            if inner.alerts.insert(fp, a).is_none() {
                inner.order.push_back(fp);
            }
        }
    }
}

/// What the processor reads back for an alert just written: the row as stored.
fn stored_alert(r: &RowWrite<'_>) -> StoredAlert {
    let a = &r.alert.alert;
    StoredAlert {
        fingerprint: a.fingerprint.to_string(),
        group_key: r.alert.group_key.clone(),
        service: r.alert.service.clone(),
        name: a.name().to_owned(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        status: if r.known.firing {
            AlertState::Firing.as_str()
        } else {
            AlertState::Resolved.as_str()
        }
        .to_owned(),
        starts_at: as_stored(r.known.starts_at),
        ends_at: r.known.ends_at.map(as_stored),
        received: r.received,
        incident: None,
    }
}

/// A time as the database gives it back: to the millisecond (see [`ts`]) and in UTC.
fn as_stored(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

/// One fingerprint's net effect in a group commit.
struct RowWrite<'a> {
    alert: &'a AlertIn,
    known: Known,
    received: i64,
    pending: bool,
    detach: bool,
    /// The row must be written in this transaction (otherwise only counted, later).
    write: bool,
    existed: bool,
}

/// Statement sizes used, largest first: a batch is cut into pieces of these sizes only, so that
/// each connection prepares (and caches) a handful of statements instead of one per batch
/// length. Preparing a statement of a thousand parameters costs more than running it.
const SIZES: [usize; 4] = [100, 25, 5, 1];

/// Cuts `items` into pieces whose lengths are all in [`SIZES`] (scaled by `max / 100`).
pub(super) fn pieces<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let sizes: Vec<usize> = SIZES.iter().map(|s| (s * max / 100).max(1)).collect();
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let n = sizes
            .iter()
            .copied()
            .find(|n| *n <= rest.len())
            .unwrap_or(1);
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// `count` placeholders numbered from `from`: SQLite gets anonymous `?`, because naming them
/// costs SQLite a linear search per parameter (quadratic in a statement of a thousand).
pub(super) fn placeholders(dialect: Dialect, from: usize, count: usize) -> Vec<String> {
    match dialect {
        Dialect::Sqlite => vec!["?".to_owned(); count],
        Dialect::Postgres => (from..from + count).map(|i| format!("${i}")).collect(),
    }
}

/// Reads what is stored about alerts the table of known alerts does not hold.
async fn read_known(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    fps: &[u64],
) -> Result<HashMap<u64, Known>> {
    let mut out = HashMap::with_capacity(fps.len());
    for chunk in pieces(fps, 500) {
        let ph = placeholders(dialect, 1, chunk.len());
        // On PostgreSQL the rows stay locked until the commit, so that a concurrent writer in
        // another process judges against this transaction's outcome, not the state before it
        // (a resolution there followed by a firing here must be a change, not a repeat). Rows
        // are locked in fingerprint order, the same in every process, so two writers cannot
        // deadlock. SQLite's writers are serialised by BEGIN IMMEDIATE already.
        let lock = match dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " ORDER BY fingerprint FOR UPDATE",
        };
        let sql = format!(
            "SELECT fingerprint, status, starts_at, ends_at, annotations, last_seen FROM alerts WHERE fingerprint IN ({}){lock}",
            ph.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for fp in chunk {
            q = q.bind(format!("{fp:016x}"));
        }
        for row in q.fetch_all(&mut **tx).await? {
            let fp: String = row.try_get("fingerprint")?;
            let fp = u64::from_str_radix(&fp, 16)
                .map_err(|e| StoreError::Corrupt(format!("fingerprint `{fp}`: {e}")))?;
            let ends: Option<String> = row.try_get("ends_at")?;
            let annotations: warroom_domain::alert::LabelSet =
                super::from_json(&row.try_get::<String, _>("annotations")?)?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            annotations.hash(&mut h);
            out.insert(
                fp,
                Known {
                    firing: row.try_get::<String, _>("status")? == AlertState::Firing.as_str(),
                    starts_at: parse_ts(&row.try_get::<String, _>("starts_at")?)?,
                    ends_at: ends.as_deref().map(parse_ts).transpose()?,
                    annotations: h.finish(),
                    last_seen: parse_ts(&row.try_get::<String, _>("last_seen")?)?,
                },
            );
        }
    }
    Ok(out)
}

/// Upserts rows, many per statement.
async fn write_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    rows: &[&RowWrite<'_>],
) -> Result<()> {
    for chunk in pieces(rows, ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len());
        for i in 0..chunk.len() {
            let ph = placeholders(dialect, i * 14 + 1, 14);
            values.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, {})",
                ph[0],
                ph[1],
                ph[2],
                ph[3],
                ph[4],
                ph[5],
                ph[6],
                ph[7],
                ph[8],
                ph[9],
                ph[10],
                ph[11],
                ph[12],
                ph[13]
            ));
        }
        let sql = format!(
            "INSERT INTO alerts (fingerprint, group_key, service, name, labels, annotations, status, starts_at, ends_at, generator_url, first_seen, last_seen, received, incident, pending) \
             VALUES {} \
             ON CONFLICT (fingerprint) DO UPDATE SET status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
             annotations = excluded.annotations, last_seen = excluded.last_seen, received = alerts.received + excluded.received, \
             pending = CASE WHEN excluded.pending = 1 THEN 1 ELSE alerts.pending END",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            let a = &r.alert.alert;
            q = q
                .bind(a.fingerprint.to_string())
                .bind(r.alert.group_key.clone())
                .bind(r.alert.service.clone())
                .bind(a.name().to_owned())
                .bind(to_json(&a.labels)?)
                .bind(to_json(&a.annotations)?)
                .bind(if r.known.firing {
                    AlertState::Firing.as_str()
                } else {
                    AlertState::Resolved.as_str()
                })
                .bind(ts(r.known.starts_at))
                .bind(r.known.ends_at.map(ts))
                .bind(a.generator_url.clone())
                .bind(ts(r.known.last_seen))
                .bind(ts(r.known.last_seen))
                .bind(r.received)
                .bind(i64::from(r.pending));
        }
        q.execute(&mut **tx).await?;
    }
    let detach: Vec<String> = rows
        .iter()
        .filter(|r| r.detach && r.existed)
        .map(|r| r.alert.alert.fingerprint.to_string())
        .collect();
    for chunk in pieces(&detach, 500) {
        let ph = placeholders(dialect, 1, chunk.len());
        let sql = format!(
            "UPDATE alerts SET incident = NULL WHERE fingerprint IN ({})",
            ph.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for fp in chunk {
            q = q.bind(fp.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes repeat counts: statistics, so one statement per alert is fine at about one a second.
pub(super) async fn write_counts(
    pool: &AnyPool,
    dialect: Dialect,
    gate: &WriteGate,
    counts: &Counts,
) -> Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let _gate = gate.enter().await;
    let mut tx = pool.begin_with(dialect.begin_write()).await?;
    for (fp, n, last_seen) in counts {
        sqlx::query("UPDATE alerts SET received = received + $1, last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END WHERE fingerprint = $3")
            .bind(i64::from(*n))
            .bind(ts(*last_seen))
            .bind(format!("{fp:016x}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Everything one group commit needs to know.
pub(super) struct Writer {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    pub(super) gate: Arc<WriteGate>,
    pub(super) known: Option<Arc<KnownAlerts>>,
    pub(super) handoff: Option<Arc<Handoff>>,
    pub(super) signal: Arc<tokio::sync::Notify>,
}

impl Writer {
    /// The group commit: every ingest waiting when the writer is free goes into one
    /// transaction, and each caller is answered after that transaction commits, so a 2xx still
    /// means the alerts are on disk while concurrent senders share one fsync.
    pub(super) async fn run(self, mut rx: tokio::sync::mpsc::Receiver<IngestJob>) {
        while let Some(first) = rx.recv().await {
            let mut alerts = first.alerts.len();
            let mut jobs = vec![first];
            while jobs.len() < GROUP_COMMIT_MAX_CALLERS && alerts < GROUP_COMMIT_MAX_ALERTS {
                match rx.try_recv() {
                    Ok(j) => {
                        alerts += j.alerts.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let result = self.commit(&jobs).await;
            tracing::debug!(
                callers = jobs.len(),
                alerts,
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                "alert group commit"
            );
            match result {
                Ok((outs, pending)) => {
                    if pending {
                        self.signal.notify_one();
                    }
                    for (j, o) in jobs.into_iter().zip(outs) {
                        let _ = j.reply.send(Ok(o));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, callers = jobs.len(), "storing alerts failed; nothing was committed");
                    let msg = e.to_string();
                    for j in jobs {
                        let _ = j.reply.send(Err(StoreError::Failed(msg.clone())));
                    }
                }
            }
        }
    }

    /// One transaction for a group; returns each caller's outcome and whether any alert became
    /// pending.
    async fn commit(&self, jobs: &[IngestJob]) -> Result<(Vec<IngestOutcome>, bool)> {
        let mut fps: Vec<u64> = jobs
            .iter()
            .flat_map(|j| j.alerts.iter().map(|a| a.alert.fingerprint.0))
            .collect();
        fps.sort_unstable();
        fps.dedup();
        let mut known = match &self.known {
            Some(k) => k.snapshot(&fps),
            None => HashMap::new(),
        };
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        let missing: Vec<u64> = fps
            .iter()
            .copied()
            .filter(|fp| !known.contains_key(fp))
            .collect();
        known.extend(read_known(&mut tx, self.dialect, &missing).await?);

        let mut rows: HashMap<u64, RowWrite<'_>> = HashMap::with_capacity(fps.len());
        let mut order: Vec<u64> = Vec::with_capacity(fps.len());
        let mut outs = Vec::with_capacity(jobs.len());
        let keep_repeats_in_memory = self.known.is_some();
        for j in jobs {
            let mut out = IngestOutcome {
                received: j.alerts.len(),
                ..Default::default()
            };
            for a in &j.alerts {
                let fp = a.alert.fingerprint.0;
                let old = rows
                    .get(&fp)
                    .map(|r| r.known)
                    .or_else(|| known.get(&fp).copied());
                let (verdict, next) = judge(old.as_ref(), a, annotations_hash(a), j.now);
                match verdict {
                    Verdict::New => out.new += 1,
                    Verdict::Changed { .. } => out.changed += 1,
                    Verdict::Updated | Verdict::Duplicate => out.duplicates += 1,
                }
                let write = verdict != Verdict::Duplicate || !keep_repeats_in_memory;
                match rows.get_mut(&fp) {
                    Some(r) => {
                        r.alert = a;
                        r.known = next;
                        r.received += 1;
                        r.write |= write;
                        r.pending |= matches!(verdict, Verdict::New | Verdict::Changed { .. });
                        if let Verdict::Changed { detach } = verdict {
                            r.detach |= detach;
                        }
                    }
                    None => {
                        order.push(fp);
                        rows.insert(
                            fp,
                            RowWrite {
                                alert: a,
                                known: next,
                                received: 1,
                                pending: matches!(verdict, Verdict::New | Verdict::Changed { .. }),
                                detach: matches!(verdict, Verdict::Changed { detach: true }),
                                write,
                                existed: known.contains_key(&fp),
                            },
                        );
                    }
                }
            }
            outs.push(out);
        }
        let to_write: Vec<&RowWrite<'_>> = order
            .iter()
            .filter_map(|fp| rows.get(fp))
            .filter(|r| r.write)
            .collect();
        let pending = to_write.iter().any(|r| r.pending);
        let t0 = std::time::Instant::now();
        if to_write.is_empty() {
            tx.rollback().await?;
        } else {
            write_rows(&mut tx, self.dialect, &to_write).await?;
            let t1 = std::time::Instant::now();
            tx.commit().await?;
            tracing::trace!(
                rows = to_write.len(),
                write_ms = (t1 - t0).as_secs_f64() * 1000.0,
                commit_ms = t1.elapsed().as_secs_f64() * 1000.0,
                "alert rows written"
            );
        }
        drop(_gate);
        if let Some(h) = &self.handoff
            && !to_write.is_empty()
        {
            let mut new = Vec::new();
            let mut updated = Vec::new();
            let mut changed = false;
            for fp in &order {
                let Some(r) = rows.get(fp).filter(|r| r.write) else {
                    continue;
                };
                match (r.existed, r.pending) {
                    (false, _) => new.push((*fp, stored_alert(r))),
                    (true, true) => changed = true,
                    (true, false) => updated.push((*fp, stored_alert(r))),
                }
            }
            h.after_commit(new, updated, changed);
        }
        if let Some(k) = &self.known {
            let mut stored = Vec::new();
            let mut repeats = Vec::new();
            for fp in &order {
                if let Some(r) = rows.get(fp) {
                    if r.write {
                        stored.push((*fp, r.known));
                    } else {
                        repeats.push((*fp, r.known, u32::try_from(r.received).unwrap_or(u32::MAX)));
                    }
                }
            }
            k.after_commit(&stored, &repeats);
        }
        Ok((outs, pending))
    }
}

impl SqlStore {
    /// Writes the repeat counts kept in memory, about once a second, until the store is
    /// dropped.
    pub(super) async fn flush_counts_forever(
        pool: AnyPool,
        dialect: Dialect,
        gate: Arc<WriteGate>,
        known: std::sync::Weak<KnownAlerts>,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(k) = known.upgrade() else { return };
            let counts = k.take_counts();
            if let Err(e) = write_counts(&pool, dialect, &gate, &counts).await {
                tracing::warn!(error = %e, alerts = counts.len(), "writing alert repeat counts failed; retrying");
                k.restore_counts(counts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use warroom_domain::alert::{Alert, LabelSet, fingerprint};

    fn alert_in(
        starts: OffsetDateTime,
        ends: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> AlertIn {
        let labels: LabelSet = [("alertname".to_owned(), "Down".to_owned())].into();
        let a = Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: LabelSet::new(),
            starts_at: starts,
            ends_at: ends,
            generator_url: None,
        };
        AlertIn {
            state: a.state_at(now),
            alert: a,
            group_key: "{alertname=\"Down\"}".into(),
            service: None,
        }
    }

    const T: OffsetDateTime = datetime!(2026-01-12 14:30 UTC);

    fn stored(fp: u64) -> (u64, StoredAlert) {
        (
            fp,
            StoredAlert {
                fingerprint: format!("{fp:016x}"),
                group_key: "g".into(),
                service: None,
                name: "Down".into(),
                labels: LabelSet::new(),
                annotations: LabelSet::new(),
                status: "firing".into(),
                starts_at: T,
                ends_at: None,
                received: 1,
                incident: None,
            },
        )
    }

    #[test]
    fn the_handoff_is_used_only_after_a_database_pass_read_every_pending_alert() {
        let h = Handoff::default();
        // At start memory knows nothing: the first pass reads the database.
        assert!(h.take(10).is_none());
        h.after_commit(vec![stored(1)], vec![], false);
        // The database pass read alert 1 (committed while it ran) and 2 (from before the start).
        h.read_from_db(&[stored(1).1, stored(2).1], true);
        h.pass_done(true);
        // Alert 1 is not handed over again: it was settled by the database pass.
        assert_eq!(h.take(10).unwrap().len(), 0);
        h.after_commit(vec![stored(3), stored(4)], vec![], false);
        let taken = h.take(1).unwrap();
        assert_eq!(taken[0].fingerprint, format!("{:016x}", 3));
        h.pass_done(true);
        assert_eq!(h.take(10).unwrap().len(), 1);
        h.pass_done(true);
    }

    #[test]
    fn a_state_change_a_failed_pass_or_a_partial_read_send_the_processor_to_the_database() {
        let h = Handoff::default();
        assert!(h.take(10).is_none());
        h.read_from_db(&[], true);
        h.pass_done(true);
        assert!(h.take(10).is_some());
        h.pass_done(true);
        h.after_commit(vec![stored(1)], vec![], true);
        assert!(
            h.take(10).is_none(),
            "a state change: its incident is in the database"
        );
        h.read_from_db(&[stored(1).1], false);
        h.pass_done(true);
        assert!(
            h.take(10).is_none(),
            "the database pass did not read everything"
        );
        h.read_from_db(&[], true);
        h.after_commit(vec![stored(5)], vec![], true);
        h.pass_done(true);
        assert!(h.take(10).is_none(), "changed while the database pass ran");
        h.read_from_db(&[], true);
        h.pass_done(true);
        h.after_commit(vec![stored(6)], vec![], false);
        assert_eq!(h.take(10).unwrap().len(), 1);
        h.pass_done(false);
        assert!(
            h.take(10).is_none(),
            "a failed pass leaves its alerts to the database"
        );
    }

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes() {
        let items: Vec<u32> = (0..237).collect();
        let lens: Vec<usize> = pieces(&items, 100).iter().map(|p| p.len()).collect();
        assert_eq!(lens, [100, 100, 25, 5, 5, 1, 1]);
        assert_eq!(lens.iter().sum::<usize>(), 237);
        assert!(pieces(&items[..0], 100).is_empty());
    }

    #[test]
    fn a_repeat_with_a_later_receipt_stamped_start_is_the_same_occurrence() {
        let first = alert_in(T, None, T);
        let (v, k) = judge(None, &first, annotations_hash(&first), T);
        assert_eq!(v, Verdict::New);
        let later = T + time::Duration::seconds(3);
        let again = alert_in(later, None, later);
        let (v, k2) = judge(Some(&k), &again, annotations_hash(&again), later);
        assert_eq!(v, Verdict::Duplicate);
        assert_eq!(k2.starts_at, T, "the earliest start is kept");
    }

    #[test]
    fn a_resolution_then_a_firing_are_state_changes() {
        let first = alert_in(T, None, T);
        let (_, k) = judge(None, &first, annotations_hash(&first), T);
        let end = T + time::Duration::minutes(1);
        let resolved = alert_in(T, Some(end), end);
        let (v, k) = judge(Some(&k), &resolved, annotations_hash(&resolved), end);
        assert_eq!(v, Verdict::Changed { detach: false });
        let (v, _) = judge(Some(&k), &resolved, annotations_hash(&resolved), end);
        assert_eq!(v, Verdict::Duplicate, "the same resolution again");
        let (v, _) = judge(Some(&k), &first, annotations_hash(&first), end);
        assert_eq!(
            v,
            Verdict::Changed { detach: true },
            "firing again after the resolution"
        );
    }

    #[test]
    fn a_start_long_after_the_last_sighting_is_a_new_occurrence() {
        let first = alert_in(T, None, T);
        let (_, k) = judge(None, &first, annotations_hash(&first), T);
        let much_later = T + time::Duration::hours(2);
        let again = alert_in(much_later, None, much_later);
        let (v, _) = judge(Some(&k), &again, annotations_hash(&again), much_later);
        assert_eq!(v, Verdict::Changed { detach: false });
    }

    #[test]
    fn new_annotations_or_end_are_updates() {
        let first = alert_in(T, None, T);
        let (_, k) = judge(None, &first, annotations_hash(&first), T);
        let mut annotated = alert_in(T, None, T);
        annotated
            .alert
            .annotations
            .insert("summary".into(), "now with words".into());
        assert_eq!(
            judge(Some(&k), &annotated, annotations_hash(&annotated), T).0,
            Verdict::Updated
        );
        let ends = alert_in(T, Some(T + time::Duration::hours(1)), T);
        assert_eq!(
            judge(Some(&k), &ends, annotations_hash(&ends), T).0,
            Verdict::Updated
        );
    }
}
