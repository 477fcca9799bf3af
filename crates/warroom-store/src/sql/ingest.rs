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
//!
//! On SQLite a group commit does not write the alerts into `alerts` itself: it appends one row
//! to `alert_intake` holding every alert it judged (see [`Applier`]), which is one short append
//! whatever the batch, instead of a B-tree insert per alert on a random fingerprint. The intake
//! is merged into `alerts`, oldest first, by the alert processor before it looks at pending
//! alerts, by API reads of alerts, and by the writer itself when too much is waiting. Until an
//! alert is merged, the table of known alerts keeps it (it is never evicted), so judging a
//! later alert never misses what is still in the intake.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use sqlx::{AnyPool, Row};
use time::OffsetDateTime;
use warroom_domain::alert::{AlertState, LabelSet};

use super::{Dialect, SqlStore, WriteGate, to_json, ts};
use crate::{AlertIn, IngestOutcome, Result, StoreError, StoredAlert, row::parse_ts};

/// One caller's alerts, waiting for the group commit.
pub(super) struct IngestJob {
    pub(super) alerts: Vec<AlertIn>,
    /// One per alert on SQLite (the intake), none on PostgreSQL.
    pub(super) prepared: Vec<Prepared>,
    pub(super) now: OffsetDateTime,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<IngestOutcome>>,
}

/// Most callers folded into one transaction; more in-flight senders make bigger groups.
const GROUP_COMMIT_MAX_CALLERS: usize = 1024;
/// Most alerts folded into one transaction, so one commit stays short.
const GROUP_COMMIT_MAX_ALERTS: usize = 10_000;
/// Longest a group commit waits for senders it expects back (see [`Writer::run`]): past it, a
/// sender that stopped costs the others this once, and the next group expects fewer.
const GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(1);
/// Rows per multi-row statement: 14 parameters a row stays far below both databases' limits.
const ROWS_PER_STATEMENT: usize = 100;
/// Alerts remembered in memory beyond those still in the intake: past that the table is emptied
/// and refills from the database as alerts come in, which keeps memory bounded on a stream of
/// ever-new fingerprints (the table's slots for this, [`KNOWN_INTAKE_MAX`] and one group commit
/// take about 12 MB).
const KNOWN_MAX: usize = 50_000;
/// Alerts still in the intake whose whole state stays in memory. Past that, an emptying keeps
/// only which intake row holds each of the others (16 bytes an alert instead of about 90), so
/// a flood can wait in the intake by the hundred thousand in bounded memory; a later sighting
/// of such an alert reads that row back first ([`Applier::read_back`]). With [`KNOWN_MAX`] the
/// whole table stays under 114,688 entries, where its slots would double (measured: at 150,000
/// entries the doubling alone took 23 MB).
const KNOWN_INTAKE_MAX: usize = 50_000;
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
    /// The intake row that holds this alert's latest state, until it is merged (SQLite): the
    /// entry is kept while `journal > applied`.
    journal: u64,
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
    /// The newest intake row merged into `alerts`.
    applied: u64,
    /// Entries kept by the last emptying (they were still in the intake).
    kept: usize,
    /// Alerts in the intake whose entries were dropped: fingerprint and the intake row that
    /// holds its latest state. Stale once that row is merged (`<= applied`). Only 16 bytes a
    /// slot: a flood of new alerts keeps hundreds of thousands here (measured: with the repeat
    /// counts in the same slots, 32 MB at 300,000 waiting).
    in_intake: HashMap<u64, u64>,
    /// Repeats of alerts of `in_intake`, waiting for their rows to be merged; written then.
    held_counts: HashMap<u64, HeldCount>,
    /// `applied` when `in_intake` was last cleared of merged rows.
    pruned: u64,
}

/// Repeats of an alert in the intake that is not whole in memory.
#[derive(Debug, Clone, Copy)]
struct HeldCount {
    unflushed: u32,
    last_seen: OffsetDateTime,
}

/// Repeat counts to write: fingerprint, how many more receipts, last seen.
pub(super) type Counts = Vec<(u64, u32, OffsetDateTime)>;

fn annotations_hash(a: &AlertIn) -> u64 {
    hash_of(&a.alert.annotations)
}

/// The hash [`Known`] keeps of an alert's annotations, however they were read.
fn hash_of(annotations: &warroom_domain::alert::LabelSet) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    annotations.hash(&mut h);
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
    // Compared as stored, to the millisecond: the expiry is built from the row, while memory
    // keeps the sighting's end as sent (Prometheus sends nanoseconds).
    if a.expiry && !(old.firing && old.ends_at.map(millis) == a.alert.ends_at.map(millis)) {
        // Resolved meanwhile, or sighted again with a later end: nothing has expired.
        return (Verdict::Duplicate, *old);
    }
    if a.expiry {
        next.last_seen = old.last_seen;
    }
    let mut refired = false;
    if firing && old.firing {
        // Also when it starts before the stored end, as Alertmanager merges overlapping
        // sightings: a sender that omits `startsAt` and resends less often than
        // SAME_OCCURRENCE but within its `resolve_timeout` still sends one occurrence.
        let same_occurrence = next.starts_at < old.starts_at
            || next.starts_at <= old.last_seen + SAME_OCCURRENCE
            || old.ends_at.is_some_and(|e| next.starts_at <= e);
        if same_occurrence {
            next.starts_at = next.starts_at.min(old.starts_at);
        } else {
            refired = true;
        }
    } else if firing {
        // Firing again after a resolution: a new occurrence.
        refired = true;
    }
    // Sent again without an end while the end stored from an earlier such sighting still
    // lies between this one's timeout and its margin: that end stands, and the repeat is only
    // counted. An end further ahead (a sender's own, or a longer timeout configured before)
    // gives way to this one's.
    if let Some(resend_by) = a.resend_by
        && firing
        && old.firing
        && !refired
        && old
            .ends_at
            .is_some_and(|e| e >= resend_by && Some(e) <= a.alert.ends_at)
    {
        next.ends_at = old.ends_at;
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

    /// The intake rows that hold the latest state of alerts of `fps` that are in the intake but
    /// no longer whole in memory, oldest first. Empty when every alert of `fps` is known here
    /// or stored in `alerts`.
    pub(super) fn held_in_intake(&self, fps: &[u64]) -> Vec<u64> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.in_intake.is_empty() {
            return Vec::new();
        }
        let mut rows: Vec<u64> = fps
            .iter()
            .filter(|fp| !inner.map.contains_key(fp))
            .filter_map(|fp| inner.in_intake.get(fp).copied())
            .filter(|journal| *journal > inner.applied)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// Makes the alerts of intake row `journal`, read back, whole again: those whose latest
    /// state that row holds and that are not whole in memory already.
    fn restore(&self, journal: u64, alerts: Vec<(u64, Known)>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if journal <= inner.applied {
            // Merged meanwhile: `alerts` has them, and is read instead.
            return;
        }
        for (fp, mut known) in alerts {
            if inner.map.contains_key(&fp) {
                continue;
            }
            if inner.in_intake.get(&fp) != Some(&journal) {
                continue;
            }
            inner.in_intake.remove(&fp);
            // Repeats counted while it was not whole are its own again.
            let mut unflushed = 0;
            if let Some(c) = inner.held_counts.remove(&fp) {
                unflushed = c.unflushed;
                known.last_seen = known.last_seen.max(c.last_seen);
            }
            inner.map.insert(
                fp,
                Entry {
                    known,
                    unflushed,
                    journal,
                },
            );
            if unflushed > 0 {
                inner.dirty.push(fp);
            }
        }
    }

    /// Records alerts found in the intake at start-up: fingerprint and intake row.
    fn adopt(&self, held: Vec<(u64, u64)>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (fp, journal) in held {
            inner.hold(fp, journal, 0, OffsetDateTime::UNIX_EPOCH);
        }
    }

    fn snapshot(&self, fps: &[u64]) -> HashMap<u64, Known> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        fps.iter()
            .filter_map(|fp| inner.map.get(fp).map(|e| (*fp, e.known)))
            .collect()
    }

    /// Records what a commit stored (in the intake row `journal`, 0 when written straight to
    /// `alerts`) and the repeats it only counted.
    fn after_commit(&self, stored: &[(u64, Known)], repeats: &[(u64, Known, u32)], journal: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.map.len() + stored.len() + repeats.len() > KNOWN_MAX + inner.kept {
            inner.empty();
        }
        for (fp, known) in stored {
            inner
                .map
                .entry(*fp)
                .and_modify(|e| {
                    e.known = *known;
                    e.journal = journal;
                })
                .or_insert(Entry {
                    known: *known,
                    unflushed: 0,
                    journal,
                });
        }
        for (fp, known, n) in repeats {
            if !inner.map.contains_key(fp) && inner.in_intake.contains_key(fp) {
                // Dropped from memory by the emptying above: the count waits with what is held.
                inner.hold(*fp, 0, *n, known.last_seen);
                continue;
            }
            inner.map.entry(*fp).or_insert(Entry {
                known: *known,
                unflushed: 0,
                journal: 0,
            });
            inner.count_repeat(*fp, *n, known.last_seen);
        }
    }

    /// Records that the intake up to row `id` is merged into `alerts`.
    fn applied(&self, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.applied = inner.applied.max(id);
    }

    /// Takes the repeat counts waiting to be written.
    pub(super) fn take_counts(&self) -> Counts {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Without this, held alerts whose rows are merged would stay until the next emptying,
        // which a quiet intake may never bring.
        inner.release_merged();
        let mut out = std::mem::take(&mut inner.spilled);
        let dirty = std::mem::take(&mut inner.dirty);
        let applied = inner.applied;
        let mut still_in_intake = Vec::new();
        for fp in dirty {
            if let Some(e) = inner.map.get_mut(&fp)
                && e.unflushed > 0
            {
                // Its row is not in `alerts` yet, so an update would miss it: counted later.
                if e.journal > applied {
                    still_in_intake.push(fp);
                    continue;
                }
                out.push((fp, e.unflushed, e.known.last_seen));
                e.unflushed = 0;
            }
        }
        inner.dirty = still_in_intake;
        out
    }

    /// Puts counts back after a failed write, so that they are tried again.
    pub(super) fn restore_counts(&self, counts: Counts) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.spilled.extend(counts);
    }
}

impl KnownInner {
    /// Holds an alert of intake row `journal` (or of the row it is held with, when 0) that is
    /// not whole in memory, with `n` more repeats.
    fn hold(&mut self, fp: u64, journal: u64, n: u32, last_seen: OffsetDateTime) {
        let held = self.in_intake.entry(fp).or_insert(journal);
        *held = (*held).max(journal);
        if n > 0 {
            let c = self.held_counts.entry(fp).or_insert(HeldCount {
                unflushed: 0,
                last_seen,
            });
            c.last_seen = c.last_seen.max(last_seen);
            c.unflushed = c.unflushed.saturating_add(n);
        }
    }

    /// Lets go of held alerts whose rows are merged (`alerts` has them now); their repeat
    /// counts can be written, and wait in `spilled`. Scans only when more rows were merged.
    fn release_merged(&mut self) {
        let applied = self.applied;
        if self.pruned >= applied || self.in_intake.is_empty() {
            return;
        }
        self.pruned = applied;
        let spilled = &mut self.spilled;
        let counts = &mut self.held_counts;
        self.in_intake.retain(|fp, journal| {
            if *journal > applied {
                return true;
            }
            if let Some(c) = counts.remove(fp) {
                spilled.push((*fp, c.unflushed, c.last_seen));
            }
            false
        });
        if self.in_intake.is_empty() {
            // Their slots would otherwise stay as large as the biggest backlog.
            self.in_intake = HashMap::new();
            self.held_counts = HashMap::new();
        }
    }

    fn count_repeat(&mut self, fp: u64, n: u32, now: OffsetDateTime) {
        if let Some(e) = self.map.get_mut(&fp) {
            if e.unflushed == 0 {
                self.dirty.push(fp);
            }
            e.unflushed = e.unflushed.saturating_add(n);
            e.known.last_seen = e.known.last_seen.max(now);
        }
    }

    /// Forgets every alert that is in `alerts` (its repeat counts wait in `spilled`); alerts
    /// still in the intake are kept, since the database cannot tell their state yet.
    fn empty(&mut self) {
        let applied = self.applied;
        let dropped: Vec<(u64, u32, OffsetDateTime)> = self
            .map
            .iter()
            .filter(|(_, e)| e.unflushed > 0 && e.journal <= applied)
            .map(|(fp, e)| (*fp, e.unflushed, e.known.last_seen))
            .collect();
        self.spilled.extend(dropped);
        self.map.retain(|_, e| e.journal > applied);
        self.release_merged();
        if self.map.len() > KNOWN_INTAKE_MAX {
            // The newest half stays whole: those are the alerts a sender is likeliest to send
            // again before they are merged. Repeat counts of the others are held with them
            // until their rows are merged.
            let mut journals: Vec<u64> = self.map.values().map(|e| e.journal).collect();
            let newest = KNOWN_INTAKE_MAX / 2;
            let cut = journals.len() - newest;
            let (_, cutoff, _) = journals.select_nth_unstable(cut);
            let cutoff = *cutoff;
            let mut dropped = Vec::new();
            self.map.retain(|fp, e| {
                let keep = e.journal >= cutoff;
                if !keep {
                    dropped.push((*fp, e.journal, e.unflushed, e.known.last_seen));
                }
                keep
            });
            for (fp, journal, n, last_seen) in dropped {
                self.hold(fp, journal, n, last_seen);
            }
        }
        // Into fresh slots: the removals above leave tombstones, which use up the table's room
        // as much as entries do, so the refill would double it (measured: to 229,000 slots for
        // under 90,000 alerts, 23 MB) although it never holds more than the bound.
        let mut fresh =
            HashMap::with_capacity(KNOWN_MAX + KNOWN_INTAKE_MAX + GROUP_COMMIT_MAX_ALERTS);
        fresh.extend(self.map.drain());
        self.map = fresh;
        let map = &self.map;
        self.dirty.retain(|fp| map.contains_key(fp));
        self.kept = self.map.len();
    }
}

/// Most alerts handed over in memory; past that the processor reads from the database again
/// until it has caught up (about 500 bytes an alert, so about 10 MB): twice a merge, so that
/// what one merge hands over fits beside what the last one left.
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
    /// Alerts became pending that memory does not hold: the next pass reads the database.
    pub(super) fn forget(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .invalidate();
    }

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

/// What an alert is, whatever its state: rendered to JSON in the request, outside the writer.
/// Borrowed from the request when written, owned when read back from the intake.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Intrinsic<'a> {
    fp: u64,
    group_key: Cow<'a, str>,
    service: Option<Cow<'a, str>>,
    name: Cow<'a, str>,
    labels: Cow<'a, LabelSet>,
    annotations: Cow<'a, LabelSet>,
    generator_url: Option<Cow<'a, str>>,
}

impl<'a> Intrinsic<'a> {
    fn of(a: &'a AlertIn) -> Self {
        let al = &a.alert;
        Intrinsic {
            fp: al.fingerprint.0,
            group_key: Cow::Borrowed(&a.group_key),
            service: a.service.as_deref().map(Cow::Borrowed),
            name: Cow::Borrowed(al.name()),
            labels: Cow::Borrowed(&al.labels),
            annotations: Cow::Borrowed(&al.annotations),
            generator_url: al.generator_url.as_deref().map(Cow::Borrowed),
        }
    }
}

/// An alert prepared in its request: its annotations' hash and its [`Intrinsic`] as JSON.
#[derive(Debug)]
pub(super) struct Prepared {
    annotations: u64,
    intrinsic: String,
}

pub(super) fn prepare(a: &AlertIn) -> Result<Prepared> {
    Ok(Prepared {
        annotations: annotations_hash(a),
        intrinsic: to_json(&Intrinsic::of(a))?,
    })
}

/// One alert's row as a group commit decided it: what [`write_rows`] upserts, and what an
/// intake row holds (as JSON) until it is merged. Times are Unix milliseconds (the precision
/// stored).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct RowOut<'a> {
    a: Intrinsic<'a>,
    firing: bool,
    starts_at: i64,
    ends_at: Option<i64>,
    last_seen: i64,
    /// Receipts to add to the stored count.
    received: i64,
    pending: bool,
    /// A new occurrence after a resolution: it leaves its old incident.
    detach: bool,
    /// The fingerprint was stored before this row.
    existed: bool,
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("alert time {ms} ms: {e}")))
}

fn ts_millis(ms: i64) -> Result<String> {
    Ok(ts(from_millis(ms)?))
}

/// The judged part of a row, appended after its intrinsic JSON: the intake's JSON is put
/// together from pieces in the writer, which is the one serial step of ingestion.
fn render_row(out: &mut String, intrinsic: &str, r: &RowWrite<'_>) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{{\"a\":{intrinsic},\"firing\":{},\"starts_at\":{},\"ends_at\":",
        r.known.firing,
        millis(r.known.starts_at)
    );
    match r.known.ends_at {
        Some(e) => {
            let _ = write!(out, "{}", millis(e));
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"last_seen\":{},\"received\":{},\"pending\":{},\"detach\":{},\"existed\":{}}}",
        millis(r.known.last_seen),
        r.received,
        r.pending,
        r.detach,
        r.existed
    );
}

fn row_out<'a>(r: &RowWrite<'a>) -> RowOut<'a> {
    RowOut {
        a: Intrinsic::of(r.alert),
        firing: r.known.firing,
        starts_at: millis(r.known.starts_at),
        ends_at: r.known.ends_at.map(millis),
        last_seen: millis(r.known.last_seen),
        received: r.received,
        pending: r.pending,
        detach: r.detach,
        existed: r.existed,
    }
}

/// Folds rows of one fingerprint from several commits into its net effect, in first-seen
/// order: the latest state, every receipt, and whether it existed before the first.
fn fold_by_fingerprint(rows: Vec<RowOut<'_>>) -> Vec<RowOut<'_>> {
    let mut at: HashMap<u64, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<RowOut<'_>> = Vec::with_capacity(rows.len());
    for r in rows {
        match at.get(&r.a.fp) {
            Some(&i) => {
                let first = &out[i];
                let merged = RowOut {
                    received: first.received + r.received,
                    pending: first.pending || r.pending,
                    detach: first.detach || r.detach,
                    existed: first.existed,
                    ..r
                };
                out[i] = merged;
            }
            None => {
                at.insert(r.a.fp, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// What the processor reads back for an alert just written: the row as stored.
fn stored_alert(r: &RowOut<'_>) -> Result<StoredAlert> {
    Ok(StoredAlert {
        fingerprint: format!("{:016x}", r.a.fp),
        group_key: r.a.group_key.to_string(),
        service: r.a.service.as_deref().map(str::to_owned),
        name: r.a.name.to_string(),
        labels: r.a.labels.clone().into_owned(),
        annotations: r.a.annotations.clone().into_owned(),
        status: status_of(r.firing).to_owned(),
        starts_at: from_millis(r.starts_at)?,
        ends_at: r.ends_at.map(from_millis).transpose()?,
        received: r.received,
        incident: None,
    })
}

fn status_of(firing: bool) -> &'static str {
    if firing {
        AlertState::Firing.as_str()
    } else {
        AlertState::Resolved.as_str()
    }
}

/// One fingerprint's net effect in a group commit.
struct RowWrite<'a> {
    alert: &'a AlertIn,
    /// Its [`Intrinsic`] as JSON (SQLite).
    intrinsic: Option<&'a str>,
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

/// A rest this short is one statement of its own length: the few sizes up to it are prepared
/// once per connection, and a handful of alerts (single-alert requests) take one round trip to
/// the database instead of one each.
const SMALL_REST: usize = 10;

/// Cuts `items` into pieces whose lengths are all in [`SIZES`] (scaled by `max / 100`), or
/// up to [`SMALL_REST`] for the rest.
pub(super) fn pieces<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let sizes: Vec<usize> = SIZES.iter().map(|s| (s * max / 100).max(1)).collect();
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let n = if rest.len() <= SMALL_REST {
            rest.len()
        } else {
            sizes
                .iter()
                .copied()
                .find(|n| *n <= rest.len())
                .unwrap_or(1)
        };
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

/// The condition that picks the alerts whose fingerprint is one of `placeholders` (a list
/// already joined): on SQLite through the key tables, because `alerts` there has no index on
/// fingerprint (migration 18).
pub(super) fn with_fingerprint_in(dialect: Dialect, placeholders: &str) -> String {
    match dialect {
        Dialect::Sqlite => {
            format!("id IN (SELECT alert FROM alert_key WHERE fingerprint IN ({placeholders}))")
        }
        Dialect::Postgres => format!("fingerprint IN ({placeholders})"),
    }
}

/// Reads what is stored about alerts the table of known alerts does not hold.
async fn read_known(
    conn: &mut sqlx::AnyConnection,
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
            "SELECT fingerprint, status, starts_at, ends_at, annotations, last_seen FROM alerts WHERE {}{lock}",
            with_fingerprint_in(dialect, &ph.join(", "))
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for fp in chunk {
            q = q.bind(format!("{fp:016x}"));
        }
        for row in q.fetch_all(&mut *conn).await? {
            let fp: String = row.try_get("fingerprint")?;
            let fp = u64::from_str_radix(&fp, 16)
                .map_err(|e| StoreError::Corrupt(format!("fingerprint `{fp}`: {e}")))?;
            let ends: Option<String> = row.try_get("ends_at")?;
            let annotations: warroom_domain::alert::LabelSet =
                super::from_json(&row.try_get::<String, _>("annotations")?)?;
            out.insert(
                fp,
                Known {
                    firing: row.try_get::<String, _>("status")? == AlertState::Firing.as_str(),
                    starts_at: parse_ts(&row.try_get::<String, _>("starts_at")?)?,
                    ends_at: ends.as_deref().map(parse_ts).transpose()?,
                    annotations: hash_of(&annotations),
                    last_seen: parse_ts(&row.try_get::<String, _>("last_seen")?)?,
                },
            );
        }
    }
    Ok(out)
}

/// One row's statement parameters, rendered before the write gate is taken: rendering labels
/// to JSON and times to text costs about as much as SQLite's insert, and the gate is the one
/// serial step of ingestion.
struct RowBinds {
    fp: u64,
    fingerprint: String,
    group_key: String,
    service: Option<String>,
    name: String,
    labels: String,
    annotations: String,
    firing: bool,
    starts_at: String,
    ends_at: Option<String>,
    generator_url: Option<String>,
    last_seen: String,
    received: i64,
    pending: bool,
    /// A new occurrence of a stored alert: it leaves its old incident.
    detach: bool,
    /// Stored before: updated, not inserted (SQLite has no unique fingerprint to upsert on).
    existed: bool,
}

/// Renders rows' parameters, in fingerprint order: consecutive inserts then land on
/// neighbouring pages of the fingerprint index instead of a random one each, which halves
/// SQLite's work on a batch of new alerts.
fn prepare_rows(rows: &[RowOut<'_>]) -> Result<Vec<RowBinds>> {
    let mut rows: Vec<&RowOut<'_>> = rows.iter().collect();
    rows.sort_unstable_by_key(|r| r.a.fp);
    rows.into_iter()
        .map(|r| {
            Ok(RowBinds {
                fp: r.a.fp,
                fingerprint: format!("{:016x}", r.a.fp),
                group_key: r.a.group_key.to_string(),
                service: r.a.service.as_deref().map(str::to_owned),
                name: r.a.name.to_string(),
                labels: to_json(&r.a.labels)?,
                annotations: to_json(&r.a.annotations)?,
                firing: r.firing,
                starts_at: ts_millis(r.starts_at)?,
                ends_at: r.ends_at.map(ts_millis).transpose()?,
                generator_url: r.a.generator_url.as_deref().map(str::to_owned),
                last_seen: ts_millis(r.last_seen)?,
                received: r.received,
                pending: r.pending,
                detach: r.detach && r.existed,
                existed: r.existed,
            })
        })
        .collect()
}

/// Upserts rows, many per statement.
async fn write_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    rows: &[RowOut<'_>],
) -> Result<()> {
    exec_rows(tx, dialect, prepare_rows(rows)?, &HashMap::new()).await
}

/// Upserts prepared rows. A new alert found in `links` is stored settled, in the incident it
/// maps to (none for `None`): the alert processor decided it before the row was written, so
/// the row is written once instead of inserted pending and updated when settled.
async fn exec_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    rows: Vec<RowBinds>,
    links: &HashMap<u64, Option<i64>>,
) -> Result<()> {
    let detach: Vec<String> = rows
        .iter()
        .filter(|r| r.detach)
        .map(|r| r.fingerprint.clone())
        .collect();
    exec_chunks(tx, dialect, rows, links).await?;
    for chunk in pieces(&detach, 500) {
        let ph = placeholders(dialect, 1, chunk.len());
        let sql = format!(
            "UPDATE alerts SET incident = NULL WHERE {}",
            with_fingerprint_in(dialect, &ph.join(", "))
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for fp in chunk {
            q = q.bind(fp.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Upserts rows in statements of the sizes [`pieces`] allows. On SQLite, where nothing makes a
/// fingerprint unique to upsert on (migration 18), new alerts are inserted and stored ones
/// updated one statement each: a stored alert reaches the writer only when it changed, which
/// is rare beside new ones. One that turns out not to be stored after all is inserted.
async fn exec_chunks(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    dialect: Dialect,
    rows: Vec<RowBinds>,
    links: &HashMap<u64, Option<i64>>,
) -> Result<()> {
    let rows = match dialect {
        Dialect::Postgres => rows,
        Dialect::Sqlite => {
            // `rows` come in fingerprint order (`prepare_rows`), which the new ones keep, so
            // that their keys land on neighbouring pages.
            let (stored, mut new): (Vec<RowBinds>, Vec<RowBinds>) =
                rows.into_iter().partition(|r| r.existed);
            let update: Arc<str> = format!(
                "UPDATE alerts SET status = ?, starts_at = ?, ends_at = ?, annotations = ?, last_seen = ?, received = received + ?, \
                 pending = CASE WHEN ? = 1 THEN 1 ELSE pending END WHERE {}",
                with_fingerprint_in(Dialect::Sqlite, "?")
            )
            .into();
            for r in stored {
                if !update_stored(tx, &update, &r).await? {
                    new.push(r);
                }
            }
            new
        }
    };
    // SQLite: `OR FAIL`, because a statement that may be aborted half-way (the default) makes
    // SQLite copy every page it changes into a statement journal first, in case it has to undo
    // only that statement: 7 % of the merge's time in a profile, for nothing, as any error here
    // rolls the whole transaction back anyway.
    let (verb, conflict) = match dialect {
        Dialect::Sqlite => ("INSERT OR FAIL", ""),
        Dialect::Postgres => (
            "INSERT",
            " ON CONFLICT (fingerprint) DO UPDATE SET status = excluded.status, starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
             annotations = excluded.annotations, last_seen = excluded.last_seen, received = alerts.received + excluded.received, \
             pending = CASE WHEN excluded.pending = 1 THEN 1 ELSE alerts.pending END",
        ),
    };
    let lens: Vec<usize> = pieces(&rows, ROWS_PER_STATEMENT)
        .iter()
        .map(|p| p.len())
        .collect();
    let mut chunk = rows.into_iter();
    for len in lens {
        let mut values = Vec::with_capacity(len);
        for i in 0..len {
            let ph = placeholders(dialect, i * 15 + 1, 15);
            values.push(format!("({})", ph.join(", ")));
        }
        let sql = format!(
            "{verb} INTO alerts (fingerprint, group_key, service, name, labels, annotations, status, starts_at, ends_at, generator_url, first_seen, last_seen, received, incident, pending) \
             VALUES {}{conflict}",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk.by_ref().take(len) {
            let (pending, incident) = match links.get(&r.fp) {
                Some(link) => (false, *link),
                None => (r.pending, None),
            };
            q = q
                .bind(r.fingerprint)
                .bind(r.group_key)
                .bind(r.service)
                .bind(r.name)
                .bind(r.labels)
                .bind(r.annotations)
                .bind(status_of(r.firing))
                .bind(r.starts_at)
                .bind(r.ends_at)
                .bind(r.generator_url)
                .bind(r.last_seen.clone())
                .bind(r.last_seen)
                .bind(r.received)
                .bind(incident)
                .bind(i64::from(pending));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Updates a stored alert with `update` as the upsert on PostgreSQL does (SQLite): false when
/// it is not stored.
async fn update_stored(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    update: &Arc<str>,
    r: &RowBinds,
) -> Result<bool> {
    let done = sqlx::query(sqlx::AssertSqlSafe(update.clone()))
        .bind(status_of(r.firing))
        .bind(r.starts_at.clone())
        .bind(r.ends_at.clone())
        .bind(r.annotations.clone())
        .bind(r.last_seen.clone())
        .bind(r.received)
        .bind(i64::from(r.pending))
        .bind(r.fingerprint.clone())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
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
    let sql: Arc<str> = format!(
        "UPDATE alerts SET received = received + $1, last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END WHERE {}",
        with_fingerprint_in(dialect, "$3")
    )
    .into();
    for (fp, n, last_seen) in counts {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(i64::from(*n))
            .bind(ts(*last_seen))
            .bind(format!("{fp:016x}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Most alerts waiting in the intake before the writer merges some itself (back-pressure). Past
/// [`KNOWN_INTAKE_MAX`] an alert waiting costs 16 bytes of memory in a map that doubles past
/// 917,504 entries (from 17 to 34 MB), which this stays under; it also bounds the disk the
/// intake takes (about 150 MB) and how long a read that merges it all may wait.
const INTAKE_MAX: i64 = 800_000;
/// Most alerts merged from the intake in one transaction.
const APPLY_MAX: usize = 10_000;

/// What is waiting in `alert_intake` (SQLite).
#[derive(Debug)]
pub(super) struct Intake {
    /// Alerts committed to the intake by this process and not merged yet. It may dip below zero
    /// for a moment (a merge can see a row before its writer counted it).
    waiting: std::sync::atomic::AtomicI64,
    /// Rows left by an earlier process may be waiting: unknown until a merge finds none.
    unknown: std::sync::atomic::AtomicBool,
    /// The newest intake row merged into `alerts` (`alert_intake_merged`, committed with the
    /// merge). Rows up to it are deleted from the intake file later, so readers skip them.
    merged: std::sync::atomic::AtomicI64,
    /// Rows up to this one are deleted from the intake file.
    deleted: std::sync::atomic::AtomicI64,
    /// One merge at a time; held from reading intake rows until they are merged.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Intake rows read for the alert processor's pass, merged by its first settle.
    staged: Mutex<Option<Staged>>,
    /// The rows after those staged for a pass, being read while that pass settles: the read
    /// took a fifth of a drain's time ahead of the merge, which only one pass at a time can
    /// do. Keyed by the merged row it follows; it is used only if the merge got exactly there.
    prefetch: Mutex<Option<Prefetch>>,
}

/// Intake rows read ahead, after row `after`.
struct Prefetch {
    after: i64,
    read: tokio::task::JoinHandle<Result<Option<ReadRows>>>,
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl Default for Intake {
    fn default() -> Self {
        Intake {
            waiting: 0.into(),
            unknown: true.into(),
            merged: 0.into(),
            deleted: 0.into(),
            lock: Arc::new(tokio::sync::Mutex::new(())),
            staged: Mutex::new(None),
            prefetch: Mutex::new(None),
        }
    }
}

impl Intake {
    fn is_empty(&self) -> bool {
        use std::sync::atomic::Ordering::Acquire;
        !self.unknown.load(Acquire) && self.waiting.load(Acquire) <= 0
    }

    fn take_staged(&self) -> Option<Staged> {
        self.staged.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn take_prefetch(&self) -> Option<Prefetch> {
        self.prefetch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Intake rows read, parsed, folded and rendered: what a [`Staged`] holds besides the lock.
struct ReadRows {
    last: i64,
    alerts: usize,
    intake_rows: usize,
    rows: Vec<RowOut<'static>>,
    binds: Vec<RowBinds>,
}

/// Reads the oldest intake rows after row `after` until `want` alerts (at least one row), and
/// makes them ready to merge; `None` when there is none. Needs no lock: only a holder of the
/// intake lock deletes intake rows, and only rows already merged, and rows are appended in id
/// order, so what is read stays as read.
async fn read_rows(pool: AnyPool, after: i64, want: usize) -> Result<Option<ReadRows>> {
    let mut alerts = 0usize;
    let mut intake_rows = 0usize;
    let mut rows: Vec<RowOut<'static>> = Vec::new();
    let mut last = after;
    // Rows are at most a group commit (GROUP_COMMIT_MAX_ALERTS), so a few rows cover `want`.
    'rows: loop {
        let batch = intake_after::<RowOut<'static>>(&pool, last, 4).await?;
        if batch.is_empty() {
            break;
        }
        for mut row in batch {
            rows.append(&mut row.rows);
            alerts += usize::try_from(row.alerts).unwrap_or(0);
            intake_rows += 1;
            last = row.id;
            if rows.len() >= want {
                break 'rows;
            }
        }
    }
    if intake_rows == 0 {
        return Ok(None);
    }
    let rows = fold_by_fingerprint(rows);
    let binds = prepare_rows(&rows)?;
    Ok(Some(ReadRows {
        last,
        alerts,
        intake_rows,
        rows,
        binds,
    }))
}

/// Intake rows read, parsed, folded and rendered outside the write gate, waiting to be merged.
/// It holds the intake's lock, so nothing else merges those rows meanwhile.
pub(super) struct Staged {
    _one: tokio::sync::OwnedMutexGuard<()>,
    /// The newest intake row merged when these were read.
    from: i64,
    /// The newest intake row read.
    last: i64,
    /// Alerts in the rows read (before folding).
    alerts: usize,
    intake_rows: usize,
    rows: Vec<RowOut<'static>>,
    binds: Vec<RowBinds>,
    /// The new alerts were given to the alert processor as its pass: they are not handed over
    /// again after the merge.
    taken: bool,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("last", &self.last)
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

/// One intake row, its body parsed as `T` (the whole row, or only the parts a reader needs).
struct IntakeRow<T> {
    id: i64,
    alerts: i64,
    rows: Vec<T>,
}

fn parse_intake<T: serde::de::DeserializeOwned>(id: i64, body: &str) -> Result<Vec<T>> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("alert intake row {id}: {e}")))
}

/// Up to `limit` intake rows after row `after`, oldest first.
async fn intake_after<T: serde::de::DeserializeOwned>(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<IntakeRow<T>>> {
    let rows =
        sqlx::query("SELECT id, alerts, body FROM alert_intake WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(IntakeRow {
                id,
                alerts: row.try_get("alerts")?,
                rows: parse_intake(id, &row.try_get::<String, _>("body")?)?,
            })
        })
        .collect()
}

/// Merges the intake into `alerts` (SQLite): the rows exactly as their group commits decided
/// them, in commit order, deleted from the intake in the same transaction, so a crash repeats
/// nothing and loses nothing. New alerts are then handed to the processor in memory.
///
/// The alert processor's pass goes further: it takes the new alerts of intake rows that are
/// read but not merged yet ([`Applier::stage_for_pass`]), and its first settle merges those
/// rows in its own transaction with the new alerts already settled ([`Applier::merge_staged`]).
/// A new alert is then written once, where it used to be inserted pending and updated when
/// settled, which cost as much again.
#[derive(Debug, Clone)]
pub(super) struct Applier {
    /// The main database, where `alerts` is.
    pub(super) pool: AnyPool,
    pub(super) gate: Arc<WriteGate>,
    /// The intake's own file, with its own write lock and gate.
    pub(super) intake_pool: AnyPool,
    pub(super) intake_gate: Arc<WriteGate>,
    /// Fingerprints that may be in `alerts`: the others need no lookup.
    pub(super) stored: Arc<super::fingerprints::StoredFingerprints>,
    pub(super) known: Arc<KnownAlerts>,
    pub(super) handoff: Arc<Handoff>,
    pub(super) intake: Arc<Intake>,
}

impl Applier {
    /// Merges the oldest intake rows until at least `want` alerts are merged or none is left.
    /// Waits for a pass that has rows staged to settle them.
    pub(super) async fn apply(&self, want: usize) -> Result<()> {
        if self.intake.is_empty() {
            return Ok(());
        }
        let mut one = self.intake.lock.clone().lock_owned().await;
        let mut merged = 0;
        while merged < want.max(1) && !self.intake.is_empty() {
            let Ok(staged) = self
                .stage(want.saturating_sub(merged).clamp(1, APPLY_MAX), one, false)
                .await?
            else {
                break;
            };
            merged += staged.alerts;
            one = self.merge_plain(staged).await?;
        }
        Ok(())
    }

    /// Takes over the intake an earlier process left: which alert each row holds, so that an
    /// alert in it is read back before it is judged ([`KnownAlerts::held_in_intake`]), and how
    /// many wait. Only the fingerprints are parsed: 390,000 waiting alerts took 0.46 s to the
    /// first answer, where merging them all first took 11 s; the processor merges them behind,
    /// oldest first.
    pub(super) async fn adopt(&self) -> Result<()> {
        use std::sync::atomic::Ordering::Release;
        #[derive(serde::Deserialize)]
        struct AlertOf {
            a: Fingerprint,
        }
        #[derive(serde::Deserialize)]
        struct Fingerprint {
            fp: u64,
        }
        // Under the main gate no merge commits, and every merge subtracts what it merged from
        // `waiting` before it leaves that gate; under the intake's, nothing is appended: what
        // is counted here is exactly what waits, with no need to wait for a merge in progress
        // (a start-up read may be catching up). The gates are always taken in this order.
        let _gate = self.gate.enter().await;
        let _intake_gate = self.intake_gate.enter().await;
        let merged: i64 = sqlx::query_scalar("SELECT id FROM alert_intake_merged")
            .fetch_one(&self.pool)
            .await?;
        let mut last = merged;
        let mut waiting = 0i64;
        let mut held: Vec<(u64, u64)> = Vec::new();
        loop {
            let batch = intake_after::<AlertOf>(&self.intake_pool, last, 16).await?;
            if batch.is_empty() {
                break;
            }
            for row in batch {
                let journal = u64::try_from(row.id).unwrap_or(0);
                held.extend(row.rows.iter().map(|r| (r.a.fp, journal)));
                waiting += row.alerts;
                last = row.id;
            }
        }
        self.known.applied(u64::try_from(merged).unwrap_or(0));
        self.stored.insert(held.iter().map(|(fp, _)| *fp));
        self.known.adopt(held);
        self.intake.merged.fetch_max(merged, Release);
        self.intake.waiting.store(waiting, Release);
        self.intake.unknown.store(false, Release);
        if waiting > 0 {
            tracing::info!(
                alerts = waiting,
                "alerts an earlier process left in the intake are merged in the background"
            );
        }
        Ok(())
    }

    /// Alerts waiting in the intake, as far as this process knows.
    pub(super) fn waiting(&self) -> i64 {
        self.intake
            .waiting
            .load(std::sync::atomic::Ordering::Acquire)
            .max(0)
    }

    /// Reads intake row `id` back and makes its alerts whole in memory again, so that a
    /// sighting of one of them is judged against the state that row holds. A row merged
    /// meanwhile is gone, and its alerts are then read from `alerts`. Reading one row costs
    /// about a microsecond an alert; merging the intake through it, what this replaced, held
    /// the writer for as long as the merge of everything older took.
    pub(super) async fn read_back(&self, id: u64) -> Result<()> {
        let row = i64::try_from(id).unwrap_or(i64::MAX);
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM alert_intake WHERE id = $1")
                .bind(row)
                .fetch_optional(&self.intake_pool)
                .await?;
        let Some(body) = body else {
            return Ok(());
        };
        let alerts = parse_intake::<RowOut<'static>>(row, &body)?
            .iter()
            .map(|r| {
                Ok((
                    r.a.fp,
                    Known {
                        firing: r.firing,
                        starts_at: from_millis(r.starts_at)?,
                        ends_at: r.ends_at.map(from_millis).transpose()?,
                        annotations: hash_of(&r.a.annotations),
                        last_seen: from_millis(r.last_seen)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.known.restore(id, alerts);
        Ok(())
    }

    /// Merges everything waiting, now: rows staged for a pass are merged as they are (their new
    /// alerts pending), so that a read never waits for a pass, and a pass that reads cannot
    /// wait for itself.
    pub(super) async fn catch_up(&self) -> Result<()> {
        if let Some(staged) = self.intake.take_staged() {
            self.merge_plain(staged).await?;
        }
        self.apply(usize::MAX).await
    }

    /// The alert processor's next pass from the intake: the new alerts of the oldest rows, up
    /// to `want`, staged until the pass settles them ([`Applier::merge_staged`]). Rows without
    /// a new alert are merged on the way (up to `want` alerts). Empty when there is none.
    pub(super) async fn stage_for_pass(&self, want: usize) -> Result<Vec<StoredAlert>> {
        if self.intake.is_empty() {
            return Ok(Vec::new());
        }
        // What a pass that was not ended staged stays in the intake, and is read again.
        self.unstage();
        let mut one = self.intake.lock.clone().lock_owned().await;
        let mut merged = 0;
        loop {
            if self.intake.is_empty() || merged >= want {
                return Ok(Vec::new());
            }
            let Ok(staged) = self.stage(want.clamp(1, APPLY_MAX), one, true).await? else {
                return Ok(Vec::new());
            };
            let fresh = staged
                .rows
                .iter()
                .filter(|r| !r.existed)
                .map(stored_alert)
                .collect::<Result<Vec<_>>>()?;
            if fresh.is_empty() {
                merged += staged.alerts;
                one = self.merge_plain(staged).await?;
                continue;
            }
            // Only while more waits: an empty intake is known to be so without reading.
            if self
                .intake
                .waiting
                .load(std::sync::atomic::Ordering::Acquire)
                > i64::try_from(staged.alerts).unwrap_or(i64::MAX)
            {
                self.read_ahead(staged.last, want.clamp(1, APPLY_MAX));
            }
            *self.intake.staged.lock().unwrap_or_else(|p| p.into_inner()) = Some(staged);
            return Ok(fresh);
        }
    }

    /// Forgets what a pass staged and did not settle (its rows stay in the intake, read again).
    pub(super) fn unstage(&self) {
        drop(self.intake.take_staged());
    }

    /// Reads, parses, folds and renders the oldest intake rows, until `want` alerts (at least
    /// one row), without the write gate ([`read_rows`]), or takes them from the read ahead when
    /// it starts where the merge is. When the intake is empty (then known to be), the lock is
    /// given back instead.
    async fn stage(
        &self,
        want: usize,
        one: tokio::sync::OwnedMutexGuard<()>,
        taken: bool,
    ) -> Result<std::result::Result<Staged, tokio::sync::OwnedMutexGuard<()>>> {
        use std::sync::atomic::Ordering::Release;
        // Only a holder of the intake lock merges, so this stays the newest merged row.
        let from = self
            .intake
            .merged
            .load(std::sync::atomic::Ordering::Acquire);
        let ahead = match self.intake.take_prefetch() {
            Some(p) if p.after == from => match p.read.await {
                Ok(Ok(read)) => read,
                // Read again below: a real failure shows itself there.
                Ok(Err(_)) | Err(_) => None,
            },
            Some(p) => {
                p.read.abort();
                None
            }
            None => None,
        };
        let read = match ahead {
            Some(read) => Some(read),
            // The read ahead found nothing: rows may have come since.
            None => read_rows(self.intake_pool.clone(), from, want).await?,
        };
        let Some(read) = read else {
            // Under the intake's gate, and writers count what they append before they leave
            // it: an empty intake there means nothing is waiting.
            let _gate = self.intake_gate.enter().await;
            let any: Option<i64> =
                sqlx::query_scalar("SELECT id FROM alert_intake WHERE id > $1 LIMIT 1")
                    .bind(from)
                    .fetch_optional(&self.intake_pool)
                    .await?;
            if any.is_none() {
                self.intake.waiting.store(0, Release);
                self.intake.unknown.store(false, Release);
            }
            return Ok(Err(one));
        };
        Ok(Ok(Staged {
            _one: one,
            from,
            last: read.last,
            alerts: read.alerts,
            intake_rows: read.intake_rows,
            rows: read.rows,
            binds: read.binds,
            taken,
        }))
    }

    /// Starts reading the rows after `after` while a pass settles the rows up to it.
    fn read_ahead(&self, after: i64, want: usize) {
        let read = tokio::spawn(read_rows(self.intake_pool.clone(), after, want));
        if let Some(old) = self
            .intake
            .prefetch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(Prefetch { after, read })
        {
            old.read.abort();
        }
    }

    /// Merges staged rows in a transaction of their own, new alerts pending.
    async fn merge_plain(&self, mut staged: Staged) -> Result<tokio::sync::OwnedMutexGuard<()>> {
        let _gate = self.gate.enter().await;
        let mut tx = self.pool.begin_with(Dialect::Sqlite.begin_write()).await?;
        let links = HashMap::new();
        self.write_staged(&mut tx, &mut staged, &links).await?;
        tx.commit().await?;
        self.merged(staged, &links)
    }

    /// Merges the rows a pass staged inside the pass's own transaction (`tx`, under the gate),
    /// its new alerts in `links` stored settled in the incident they map to; new alerts not in
    /// `links` are stored pending. Returns what was staged (for [`Applier::merged`] after the
    /// commit), or `None` when nothing was.
    pub(super) async fn merge_staged(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        links: &mut HashMap<u64, Option<i64>>,
    ) -> Result<Option<Staged>> {
        let Some(mut staged) = self.intake.take_staged() else {
            links.clear();
            return Ok(None);
        };
        let new: std::collections::HashSet<u64> = staged
            .rows
            .iter()
            .filter(|r| !r.existed)
            .map(|r| r.a.fp)
            .collect();
        links.retain(|fp, _| new.contains(fp));
        self.write_staged(tx, &mut staged, links).await?;
        Ok(Some(staged))
    }

    async fn write_staged(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        staged: &mut Staged,
        links: &HashMap<u64, Option<i64>>,
    ) -> Result<()> {
        exec_rows(
            tx,
            Dialect::Sqlite,
            std::mem::take(&mut staged.binds),
            links,
        )
        .await?;
        // The mark moves in the merge's own transaction: a crash either merged the rows and
        // moved it, or did neither, and the rows are read again.
        let moved = sqlx::query("UPDATE alert_intake_merged SET id = $1 WHERE id = $2")
            .bind(staged.last)
            .bind(staged.from)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if moved != 1 {
            return Err(StoreError::Failed(format!(
                "the alert intake was merged by someone else meanwhile (rows {} to {} were read after row {} was merged); nothing was merged, and the merge will be tried again",
                staged.from + 1,
                staged.last,
                staged.from
            )));
        }
        Ok(())
    }

    /// After the commit that merged staged rows: what is waiting, what is merged, and the
    /// alerts left pending handed to the processor. Returns the intake lock.
    pub(super) fn merged(
        &self,
        staged: Staged,
        links: &HashMap<u64, Option<i64>>,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>> {
        use std::sync::atomic::Ordering::Release;
        self.intake
            .waiting
            .fetch_sub(i64::try_from(staged.alerts).unwrap_or(i64::MAX), Release);
        self.intake.merged.fetch_max(staged.last, Release);
        self.known.applied(u64::try_from(staged.last).unwrap_or(0));
        // New alerts a pass took are the pass's, settled by it or left to it.
        hand_off(
            &self.handoff,
            staged.rows.iter().filter(|r| r.existed || !staged.taken),
        )?;
        tracing::trace!(
            alerts = staged.alerts,
            rows = staged.rows.len(),
            settled = links.len(),
            intake_rows = staged.intake_rows,
            "alert intake merged"
        );
        Ok(staged._one)
    }
}

/// Adds every fingerprint stored in `alerts` at start to `stored`, then marks it ready. Rows
/// stored after the scan began came through the intake, whose fingerprints are added as they
/// are appended (or taken over at start), so a scan in pages by rowid misses nothing.
pub(super) async fn scan_stored(
    pool: AnyPool,
    stored: std::sync::Weak<super::fingerprints::StoredFingerprints>,
) {
    let mut after = 0i64;
    let mut scanned = 0usize;
    loop {
        if stored.strong_count() == 0 {
            return;
        }
        let page = sqlx::query(
            "SELECT rowid AS r, fingerprint FROM alerts WHERE rowid > $1 ORDER BY rowid LIMIT 10000",
        )
        .bind(after)
        .fetch_all(&pool)
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(e) => {
                // Until it is done every new alert is looked up, which is correct, only slower.
                tracing::warn!(error = %e, "scanning stored alert fingerprints failed; retrying in 5 s");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                continue;
            }
        };
        let Some(s) = stored.upgrade() else { return };
        let Some(last) = rows.last() else {
            s.set_ready();
            tracing::debug!(alerts = scanned, "stored alert fingerprints scanned");
            return;
        };
        after = last.try_get("r").unwrap_or(i64::MAX);
        scanned += rows.len();
        // A fingerprint that does not parse is stored under some other text: it cannot match
        // an incoming alert's, so it is not needed here.
        s.insert(rows.iter().filter_map(|row| {
            let fp: String = row.try_get("fingerprint").ok()?;
            u64::from_str_radix(&fp, 16).ok()
        }));
    }
}

/// Deletes the intake rows that are merged into `alerts`.
pub(super) async fn forget_merged(pool: &AnyPool, gate: &WriteGate, intake: &Intake) -> Result<()> {
    use std::sync::atomic::Ordering::{Acquire, Release};
    let merged = intake.merged.load(Acquire);
    if merged <= intake.deleted.load(Acquire) {
        return Ok(());
    }
    let _gate = gate.enter().await;
    sqlx::query("DELETE FROM alert_intake WHERE id <= $1")
        .bind(merged)
        .execute(pool)
        .await?;
    intake.deleted.fetch_max(merged, Release);
    Ok(())
}

/// Tells the processor, in memory, about rows just committed to `alerts`.
fn hand_off<'r, 'a: 'r>(
    handoff: &Handoff,
    rows: impl Iterator<Item = &'r RowOut<'a>>,
) -> Result<()> {
    let mut new = Vec::new();
    let mut updated = Vec::new();
    let mut changed = false;
    for r in rows {
        match (r.existed, r.pending) {
            (false, _) => new.push((r.a.fp, stored_alert(r)?)),
            (true, true) => changed = true,
            // The stored count is higher than this row's; the processor does not use it.
            (true, false) => updated.push((r.a.fp, stored_alert(r)?)),
        }
    }
    handoff.after_commit(new, updated, changed);
    Ok(())
}

/// Appends one group commit's alerts to the intake file and commits (SQLite): the
/// transaction, the insert and the commit in one statement list, so the group waits for one
/// round trip to the connection's thread instead of three (a fifth of a single-alert commit's
/// cycle). A failure part-way leaves the connection inside the transaction, which is rolled
/// back before the connection goes back to the pool.
async fn append_to_intake(pool: &AnyPool, alerts: usize, body: String) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    // All rows, not one: fetching one stops the statement list after the insert, before the
    // commit.
    let appended: std::result::Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
        "BEGIN IMMEDIATE; INSERT INTO alert_intake (alerts, body) VALUES (?, ?) RETURNING id; COMMIT",
    )
    .bind(i64::try_from(alerts).unwrap_or(i64::MAX))
    .bind(body)
    .fetch_all(&mut *conn)
    .await;
    match appended {
        Ok(ids) => ids
            .first()
            .and_then(|&id| u64::try_from(id).ok())
            .ok_or_else(|| {
                StoreError::Failed("the alert intake gave the appended row no id".into())
            }),
        Err(e) => {
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                // Still inside the transaction, or broken: it must not serve anyone else.
                drop(conn.detach());
            }
            Err(e.into())
        }
    }
}

/// Everything one group commit needs to know.
pub(super) struct Writer {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    pub(super) gate: Arc<WriteGate>,
    pub(super) known: Option<Arc<KnownAlerts>>,
    /// SQLite: commits go to the intake.
    pub(super) applier: Option<Applier>,
    pub(super) signal: Arc<tokio::sync::Notify>,
}

impl Writer {
    /// The group commit: every ingest waiting when the writer is free goes into one
    /// transaction, and each caller is answered after that transaction commits, so a 2xx still
    /// means the alerts are on disk while concurrent senders share one fsync.
    pub(super) async fn run(self, mut rx: tokio::sync::mpsc::Receiver<IngestJob>) {
        // What an earlier process left is taken over before the first request, so that the
        // metrics count it from the start and the first sender does not wait for it.
        if let Some(a) = &self.applier
            && a.intake.unknown.load(std::sync::atomic::Ordering::Acquire)
            && let Err(e) = a.adopt().await
        {
            tracing::warn!(error = %e, "taking over the alert intake failed; the first commit tries again");
        }
        // Callers that were waiting when the last commit ended: about how many senders are
        // sending at once.
        let mut senders = 1;
        while let Some(first) = rx.recv().await {
            let mut alerts = first.alerts.len();
            let mut jobs = vec![first];
            let mut gather_until = None;
            while jobs.len() < GROUP_COMMIT_MAX_CALLERS && alerts < GROUP_COMMIT_MAX_ALERTS {
                let next = match rx.try_recv() {
                    Ok(j) => Some(j),
                    // The senders just answered send again within a fraction of the fsync:
                    // waiting for them folds every sender into one commit, where otherwise the
                    // commits alternate between two halves of them, each paying a whole fsync
                    // (measured with 16 senders: groups of 8 every 0.74 ms).
                    Err(_) if jobs.len() < senders => {
                        let until = *gather_until
                            .get_or_insert_with(|| tokio::time::Instant::now() + GATHER_MAX);
                        tokio::time::timeout_at(until, rx.recv())
                            .await
                            .ok()
                            .flatten()
                    }
                    Err(_) => None,
                };
                let Some(j) = next else { break };
                alerts += j.alerts.len();
                jobs.push(j);
            }
            let started = std::time::Instant::now();
            let result = self.commit(&jobs).await;
            senders = (jobs.len() + rx.len()).min(GROUP_COMMIT_MAX_CALLERS);
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
        if let Some(a) = &self.applier {
            // Rows left by an earlier process are not in the table of known alerts, so they are
            // looked up before anything is judged; and the intake is kept within bounds.
            if a.intake.unknown.load(std::sync::atomic::Ordering::Acquire) {
                a.adopt().await?;
            }
            // One merge per commit while over the bound: senders slow down to the merge rate
            // instead of all waiting out one long catch-up.
            if a.intake.waiting.load(std::sync::atomic::Ordering::Acquire) > INTAKE_MAX {
                a.apply(APPLY_MAX).await?;
            }
        }
        let mut fps: Vec<u64> = jobs
            .iter()
            .flat_map(|j| j.alerts.iter().map(|a| a.alert.fingerprint.0))
            .collect();
        fps.sort_unstable();
        fps.dedup();
        if let (Some(a), Some(k)) = (&self.applier, &self.known) {
            for row in k.held_in_intake(&fps) {
                a.read_back(row).await?;
            }
        }
        let mut known = match &self.known {
            Some(k) => k.snapshot(&fps),
            None => HashMap::new(),
        };
        let missing: Vec<u64> = fps
            .iter()
            .copied()
            .filter(|fp| !known.contains_key(fp))
            .collect();
        let t_read = std::time::Instant::now();
        // SQLite: the group commit goes to the intake file, under its own gate, so that it
        // never waits for a merge into `alerts` (which holds the main gate for as long as a
        // pass takes). What it judges against is read from `alerts` beside any merge: a merge
        // changes nothing a judgement uses except by applying intake rows, whose alerts the
        // table of known alerts holds until that merge is committed, and the snapshot above is
        // taken before this read, so every alert is in one or the other.
        let (_gate, mut tx) = match &self.applier {
            Some(a) => {
                let mut lookup = missing.clone();
                a.stored.retain_maybe_stored(&mut lookup);
                if !lookup.is_empty() {
                    let mut conn = self.pool.acquire().await?;
                    known.extend(read_known(&mut conn, self.dialect, &lookup).await?);
                }
                // The intake's transaction is opened by the append itself (below): this
                // process is its only writer and the gate orders the appends.
                (a.intake_gate.enter().await, None)
            }
            None => {
                let gate = self.gate.enter().await;
                let mut tx = self.pool.begin_with(self.dialect.begin_write()).await?;
                known.extend(read_known(&mut tx, self.dialect, &missing).await?);
                (gate, Some(tx))
            }
        };
        let read_ms = t_read.elapsed().as_secs_f64() * 1000.0;

        let mut rows: HashMap<u64, RowWrite<'_>> = HashMap::with_capacity(fps.len());
        let mut order: Vec<u64> = Vec::with_capacity(fps.len());
        let mut outs = Vec::with_capacity(jobs.len());
        let keep_repeats_in_memory = self.known.is_some();
        for j in jobs {
            let mut out = IngestOutcome {
                received: j.alerts.len(),
                ..Default::default()
            };
            for (i, a) in j.alerts.iter().enumerate() {
                let fp = a.alert.fingerprint.0;
                let old = rows
                    .get(&fp)
                    .map(|r| r.known)
                    .or_else(|| known.get(&fp).copied());
                let prepared = j.prepared.get(i);
                let hash = prepared.map_or_else(|| annotations_hash(a), |p| p.annotations);
                let (verdict, next) = judge(old.as_ref(), a, hash, j.now);
                if a.expiry && verdict != (Verdict::Changed { detach: false }) {
                    // An expiry that found nothing to end (or an alert no longer stored)
                    // leaves the alert as it is, repeat count included.
                    continue;
                }
                match verdict {
                    Verdict::New => out.new += 1,
                    Verdict::Changed { .. } => out.changed += 1,
                    Verdict::Updated | Verdict::Duplicate => out.duplicates += 1,
                }
                let receipts = i64::from(!a.expiry);
                let write = verdict != Verdict::Duplicate || !keep_repeats_in_memory;
                match rows.get_mut(&fp) {
                    Some(r) => {
                        r.alert = a;
                        r.intrinsic = prepared.map(|p| p.intrinsic.as_str());
                        r.known = next;
                        r.received += receipts;
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
                                intrinsic: prepared.map(|p| p.intrinsic.as_str()),
                                known: next,
                                received: receipts,
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
        let mut journal = 0;
        if to_write.is_empty() {
            if let Some(tx) = tx {
                tx.rollback().await?;
            }
        } else {
            match &self.applier {
                Some(a) => {
                    let mut body = String::with_capacity(
                        to_write
                            .iter()
                            .map(|r| r.intrinsic.map_or(0, str::len) + 160)
                            .sum(),
                    );
                    body.push('[');
                    for (i, r) in to_write.iter().enumerate() {
                        if i > 0 {
                            body.push(',');
                        }
                        match r.intrinsic {
                            Some(intrinsic) => render_row(&mut body, intrinsic, r),
                            None => render_row(&mut body, &to_json(&Intrinsic::of(r.alert))?, r),
                        }
                    }
                    body.push(']');
                    // Before the commit: once committed, a merge may store them at any time.
                    a.stored
                        .insert(to_write.iter().map(|r| r.alert.alert.fingerprint.0));
                    journal = append_to_intake(&a.intake_pool, to_write.len(), body).await?;
                }
                None => {
                    let direct: Vec<RowOut<'_>> = to_write.iter().map(|r| row_out(r)).collect();
                    if let Some(tx) = &mut tx {
                        write_rows(tx, self.dialect, &direct).await?;
                    }
                }
            }
            let t1 = std::time::Instant::now();
            if let Some(tx) = tx {
                tx.commit().await?;
            }
            tracing::trace!(
                rows = to_write.len(),
                missing = missing.len(),
                read_ms,
                judge_ms = (t0 - t_read).as_secs_f64() * 1000.0 - read_ms,
                write_ms = (t1 - t0).as_secs_f64() * 1000.0,
                commit_ms = t1.elapsed().as_secs_f64() * 1000.0,
                "alert rows written"
            );
        }
        if let Some(a) = &self.applier
            && journal > 0
        {
            a.intake.waiting.fetch_add(
                i64::try_from(to_write.len()).unwrap_or(i64::MAX),
                std::sync::atomic::Ordering::Release,
            );
        }
        drop(_gate);
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
            k.after_commit(&stored, &repeats, journal);
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

/// New alerts whose keys wait in `alert_keys_recent` before they are moved into `alert_keys`
/// (SQLite, migration 18). A move writes each page of `alert_keys` it touches once, so bigger
/// moves cost less an alert; with 2,000,000 alerts stored, a move of 200,000 took about 0.25 s
/// under the write gate, and a batch of new alerts touches few pages of a table this small
/// (measured with SQLite alone: 80,000 new alerts/s against 35,000 with one fingerprint index).
const RECENT_KEYS_MAX: i64 = 200_000;

/// Moves the recent alert keys into `alert_keys` once [`RECENT_KEYS_MAX`] alerts were stored
/// after `folded` (always when `None`, at start). Returns the newest alert moved.
async fn fold_alert_keys(pool: &AnyPool, gate: &WriteGate, folded: Option<i64>) -> Result<i64> {
    let newest = || sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM alerts");
    if let Some(folded) = folded
        && newest().fetch_one(pool).await? - folded < RECENT_KEYS_MAX
    {
        return Ok(folded);
    }
    let _gate = gate.enter().await;
    let mut tx = pool.begin_with(Dialect::Sqlite.begin_write()).await?;
    let upto = newest().fetch_one(&mut *tx).await?;
    // `alert_keys_recent` is read in its key order, so `alert_keys` is written page by page.
    // A fingerprint in both (which the writer never makes) keeps its newest alert.
    let moved = sqlx::query(
        "INSERT INTO alert_keys (fingerprint, alert) SELECT fingerprint, alert FROM alert_keys_recent WHERE true \
         ON CONFLICT (fingerprint) DO UPDATE SET alert = excluded.alert",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM alert_keys_recent")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if moved > 0 {
        tracing::debug!(keys = moved, "recent alert keys moved");
    }
    Ok(upto)
}

/// WAL size (in 4 KB frames) past which the checkpointer holds the writers back while it
/// catches up. Under a steady stream of writes a passive checkpoint beside the writer never
/// finishes (the writer appends while it copies), and SQLite starts the WAL over only after a
/// checkpoint that copied everything: without this the WAL would grow without end.
const WAL_CATCH_UP_FRAMES: i64 = 16_384;

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl SqlStore {
    /// Checkpoints the WAL (SQLite) off the write path, until the store is dropped. SQLite's
    /// automatic checkpoint (turned off by the SQLite backend) runs inside whichever commit
    /// crosses its threshold: copying the WAL into the database and syncing it, under the
    /// write gate, which held every writer up for it. A passive checkpoint on its own
    /// connection runs beside the writer instead, on the other core; only past
    /// [`WAL_CATCH_UP_FRAMES`] does one run with the writers held at the gate, copying what the
    /// ones beside them have not, so that it finishes and the next write starts the WAL over.
    pub(super) async fn checkpoint_forever(
        pool: AnyPool,
        gate: Arc<WriteGate>,
        alive: std::sync::Weak<KnownAlerts>,
    ) {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Warned once per spell of a reader holding the WAL back, not every 200 ms.
        let mut held_back = false;
        // The newest alert whose key is in `alert_keys`, as far as this process knows; `None`
        // until the first fold, which runs at start.
        let mut folded: Option<i64> = None;
        loop {
            tick.tick().await;
            if alive.upgrade().is_none() {
                return;
            }
            match fold_alert_keys(&pool, &gate, folded).await {
                Ok(newest) => folded = Some(newest),
                Err(e) => tracing::warn!(error = %e, "moving recent alert keys failed; retrying"),
            }
            Self::checkpoint_step(&pool, &gate, &mut held_back).await;
        }
    }

    /// The intake file's upkeep, until the store is dropped: deletes the rows merged since the
    /// last time (one short write under the intake's gate, where a delete in every merge would
    /// have had the merge wait for the appends), then checkpoints like the main file.
    pub(super) async fn intake_upkeep_forever(
        pool: AnyPool,
        gate: Arc<WriteGate>,
        intake: std::sync::Weak<Intake>,
    ) {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut held_back = false;
        loop {
            tick.tick().await;
            let Some(i) = intake.upgrade() else { return };
            if let Err(e) = forget_merged(&pool, &gate, &i).await {
                tracing::warn!(error = %e, "deleting merged rows from the alert intake failed; retrying");
            }
            drop(i);
            Self::checkpoint_step(&pool, &gate, &mut held_back).await;
        }
    }

    async fn checkpoint_step(pool: &AnyPool, gate: &WriteGate, held_back: &mut bool) {
        let frames = match Self::checkpoint(pool).await {
            Ok((_, frames, _)) => frames,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                return;
            }
        };
        if frames <= WAL_CATCH_UP_FRAMES {
            *held_back = false;
            return;
        }
        let caught_up = {
            let _gate = gate.enter().await;
            Self::checkpoint(pool).await
        };
        match caught_up {
            Ok((busy, frames, copied)) if busy != 0 || copied < frames => {
                if !*held_back {
                    tracing::warn!(
                        frames,
                        copied,
                        "the WAL cannot be copied back whole: a reader holds an old snapshot (a backup tool, a sqlite3 shell?); it grows until the reader lets go"
                    );
                }
                *held_back = true;
            }
            Ok(_) => *held_back = false,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }

    /// A passive checkpoint: (busy, frames in the WAL, frames copied back).
    async fn checkpoint(pool: &AnyPool) -> std::result::Result<(i64, i64, i64), sqlx::Error> {
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await
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
            expiry: false,
            resend_by: None,
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
    fn alerts_dropped_from_memory_while_in_the_intake_are_read_back_before_they_are_judged() {
        let k = KnownAlerts::default();
        let known = Known {
            firing: true,
            starts_at: T,
            ends_at: None,
            annotations: 0,
            last_seen: T,
        };
        // One intake row per 1,000 alerts, far past what stays whole in memory.
        let rows = (KNOWN_MAX + KNOWN_INTAKE_MAX) as u64 / 1_000 * 2;
        for row in 1..=rows {
            let stored: Vec<(u64, Known)> = (0..1_000).map(|i| (row * 1_000 + i, known)).collect();
            k.after_commit(&stored, &[], row);
        }
        let inner = k.inner.lock().unwrap();
        assert!(
            inner.map.len() <= KNOWN_MAX + KNOWN_INTAKE_MAX,
            "{} whole entries",
            inner.map.len()
        );
        assert!(!inner.in_intake.is_empty());
        // The newest alerts stay whole; the oldest are only remembered as "in the intake".
        assert!(inner.map.contains_key(&(rows * 1_000 + 999)));
        assert!(!inner.map.contains_key(&1_000));
        drop(inner);
        assert!(k.held_in_intake(&[rows * 1_000 + 999]).is_empty());
        assert_eq!(k.held_in_intake(&[2_000, 1_000, 2_001, 7]), vec![1, 2]);
        // Read back, a row's alerts are whole again (only those it holds the latest state of).
        k.restore(2, vec![(2_000, known), (1_000, known)]);
        assert_eq!(k.held_in_intake(&[2_000, 1_000]), vec![1]);
        assert_eq!(k.snapshot(&[2_000]).get(&2_000), Some(&known));
        // Once the intake is merged through a row, its alerts are read from `alerts` instead.
        k.applied(3);
        assert!(k.held_in_intake(&[1_000, 3_500]).is_empty());
        assert_eq!(k.held_in_intake(&[4_500]), vec![4]);
        // A row merged before it was read back is not restored.
        k.restore(3, vec![(3_500, known)]);
        assert!(k.snapshot(&[3_500]).is_empty());
        // Repeats of an alert held this way wait with it until its row is merged, then count.
        k.after_commit(&[], &[(4_500, known, 3)], 0);
        assert!(!k.take_counts().iter().any(|c| c.0 == 4_500));
        k.applied(4);
        let counts = k.take_counts();
        assert_eq!(
            counts
                .iter()
                .filter(|c| c.0 == 4_500)
                .map(|c| c.1)
                .sum::<u32>(),
            3,
            "{counts:?}"
        );
        assert!(
            !k.take_counts().iter().any(|c| c.0 == 4_500),
            "counted once"
        );
        // Once merged, held alerts are let go even if no emptying comes.
        k.applied(u64::MAX);
        k.take_counts();
        assert!(k.inner.lock().unwrap().in_intake.is_empty());
    }

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes() {
        let items: Vec<u32> = (0..237).collect();
        let lens: Vec<usize> = pieces(&items, 100).iter().map(|p| p.len()).collect();
        assert_eq!(lens, [100, 100, 25, 5, 7]);
        assert_eq!(lens.iter().sum::<usize>(), 237);
        let few: Vec<usize> = pieces(&items[..3], 500).iter().map(|p| p.len()).collect();
        assert_eq!(few, [3], "a few items are one statement");
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

    /// An alert sent without an end, as the API stamps it: ends `resolve_timeout` after `now`.
    fn timed_out_in(now: OffsetDateTime) -> AlertIn {
        let (resend_by, end) =
            warroom_domain::alert::timeout_end(now, warroom_domain::alert::DEFAULT_RESOLVE_TIMEOUT);
        let mut a = alert_in(now, Some(end), now);
        a.resend_by = Some(resend_by);
        a
    }

    #[test]
    fn an_alert_sent_without_an_end_keeps_its_end_until_the_margin_is_used_up() {
        let first = timed_out_in(T);
        let (v, k) = judge(None, &first, annotations_hash(&first), T);
        assert_eq!(v, Verdict::New);
        assert_eq!(k.ends_at, Some(T + time::Duration::seconds(330)));
        // Within the margin (30 s of 5 min): only counted, the end stays.
        let soon = T + time::Duration::seconds(30);
        let again = timed_out_in(soon);
        let (v, k2) = judge(Some(&k), &again, annotations_hash(&again), soon);
        assert_eq!(v, Verdict::Duplicate);
        assert_eq!(k2.ends_at, k.ends_at);
        // Past it: the end moves on, written without acting (no state change).
        let later = T + time::Duration::seconds(31);
        let again = timed_out_in(later);
        let (v, k3) = judge(Some(&k2), &again, annotations_hash(&again), later);
        assert_eq!(v, Verdict::Updated);
        assert_eq!(k3.ends_at, Some(later + time::Duration::seconds(330)));
        // An end the sender gives is taken as sent, even an earlier one.
        let given = alert_in(T, Some(later + time::Duration::minutes(1)), later);
        let (v, k4) = judge(Some(&k3), &given, annotations_hash(&given), later);
        assert_eq!(v, Verdict::Updated);
        assert_eq!(k4.ends_at, given.alert.ends_at);
        // And a sighting without an end after a sender's far end takes the timeout's.
        let far = alert_in(T, Some(T + time::Duration::hours(6)), later);
        let (_, k5) = judge(Some(&k4), &far, annotations_hash(&far), later);
        let again = timed_out_in(later);
        let (v, k6) = judge(Some(&k5), &again, annotations_hash(&again), later);
        assert_eq!(v, Verdict::Updated);
        assert_eq!(k6.ends_at, again.alert.ends_at);
    }

    #[test]
    fn a_resend_without_a_start_before_the_stored_end_is_the_same_occurrence() {
        // Sent every 5 min 20 s, past SAME_OCCURRENCE but before each end (5 min 30 s).
        let first = timed_out_in(T);
        let (_, k) = judge(None, &first, annotations_hash(&first), T);
        let next = T + time::Duration::seconds(320);
        let again = timed_out_in(next);
        let (v, k2) = judge(Some(&k), &again, annotations_hash(&again), next);
        assert_eq!(v, Verdict::Updated, "the end moves on, nothing to act on");
        assert_eq!(k2.starts_at, T, "the first start is kept");
        // After its end passed and it was resolved, a send is a new occurrence.
        let end = T + time::Duration::minutes(12);
        let resolved = alert_in(T, Some(end), end);
        let (_, k3) = judge(Some(&k2), &resolved, annotations_hash(&resolved), end);
        let back = end + time::Duration::minutes(1);
        let again = timed_out_in(back);
        let (v, k4) = judge(Some(&k3), &again, annotations_hash(&again), back);
        assert_eq!(v, Verdict::Changed { detach: true });
        assert_eq!(k4.ends_at, again.alert.ends_at, "with an end of its own");
    }
}
