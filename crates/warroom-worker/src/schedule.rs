//! Running many monitors, each at its own interval.
//!
//! One tokio task per monitor keeps a hanging target from delaying anyone else: a task waits
//! for its own planned times only, and a check holds a concurrency permit for at most its
//! timeout. The semaphore bounds how many checks run at once (sockets, file descriptors, CPU).
//!
//! Planned times are `start + offset + k × interval`, not "previous run + interval", so a slow
//! check or a busy runtime never makes a monitor creep later and later. The offset comes from a
//! hash of the monitor id: restarts keep each monitor's phase, and a thousand monitors with the
//! same interval are spread across it instead of all firing at once.
//!
//! Time is tokio's clock, so tests run "30 s later" instantly with `tokio::time::pause()`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use warroom_domain::monitor::{FlapState, Monitor, MonitorStatus, Transition};

use crate::probe::{CheckResult, Checker};

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Most checks in flight at once.
    pub max_concurrency: usize,
    /// How many recent drift samples the percentiles are computed from.
    pub drift_window: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            // Each HTTP check is a few KiB and at most one socket; 64 keeps a 2-core machine
            // responsive while covering ~1000 monitors at 30 s with sub-second checks.
            max_concurrency: 64,
            drift_window: 4096,
        }
    }
}

/// One finished check, as delivered to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeEvent {
    /// Which monitor.
    pub monitor_id: String,
    /// Wall-clock time the check started.
    pub started_at: OffsetDateTime,
    /// Actual start minus planned start (waiting for a permit included).
    pub drift: Duration,
    /// What the check found.
    pub result: CheckResult,
    /// The monitor's state after this result.
    pub status: MonitorStatus,
    /// Set when this result changed the state.
    pub transition: Option<Transition>,
}

/// Counters the caller can read at any time (for `/metrics`, logs or tests).
#[derive(Debug, Default)]
pub struct Stats {
    checks_run: AtomicU64,
    checks_failed: AtomicU64,
    ticks_skipped: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    scheduled: AtomicUsize,
    /// Check durations: a count per bucket of [`LATENCY_BUCKETS`] (not cumulative) and one for
    /// longer, plus the sum in microseconds.
    latency_counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    drift: Mutex<DriftWindow>,
}

/// Upper bounds of the check-duration histogram, in seconds: from a local answer (5 ms) to the
/// default timeout (10 s), roughly ×2.5 apart, as Prometheus' own defaults are.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct DriftWindow {
    capacity: usize,
    samples: VecDeque<Duration>,
    max: Duration,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Checks finished.
    pub checks_run: u64,
    /// Of which failed (outcome down).
    pub checks_failed: u64,
    /// Planned runs dropped because the monitor was more than one interval late.
    pub ticks_skipped: u64,
    /// Checks running now.
    pub in_flight: usize,
    /// Most checks ever running at once.
    pub max_in_flight: usize,
    /// Monitors being run now (config and API ones).
    pub scheduled: usize,
    /// Cumulative check counts at or below each of [`LATENCY_BUCKETS`] (Prometheus `le`).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len()],
    /// Checks measured.
    pub latency_count: u64,
    /// Total check time.
    pub latency_sum: Duration,
    /// Median drift over the window.
    pub drift_p50: Duration,
    /// 99th percentile drift over the window.
    pub drift_p99: Duration,
    /// Largest drift ever seen.
    pub drift_max: Duration,
}

impl Stats {
    fn new(window: usize) -> Self {
        Stats {
            drift: Mutex::new(DriftWindow {
                capacity: window.max(1),
                ..DriftWindow::default()
            }),
            ..Stats::default()
        }
    }

    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (p50, p99, max) = {
            let d = self.drift.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<Duration> = d.samples.iter().copied().collect();
            v.sort_unstable();
            (percentile(&v, 50), percentile(&v, 99), d.max)
        };
        let mut latency_buckets = [0; LATENCY_BUCKETS.len()];
        let mut running = 0;
        for (i, b) in latency_buckets.iter_mut().enumerate() {
            running += self.latency_counts[i].load(Ordering::Relaxed);
            *b = running;
        }
        let latency_count =
            running + self.latency_counts[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        StatsSnapshot {
            checks_run: self.checks_run.load(Ordering::Relaxed),
            checks_failed: self.checks_failed.load(Ordering::Relaxed),
            ticks_skipped: self.ticks_skipped.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            max_in_flight: self.max_in_flight.load(Ordering::Relaxed),
            scheduled: self.scheduled.load(Ordering::Relaxed),
            latency_buckets,
            latency_count,
            latency_sum: Duration::from_micros(self.latency_sum_us.load(Ordering::Relaxed)),
            drift_p50: p50,
            drift_p99: p99,
            drift_max: max,
        }
    }

    fn record_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_counts[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn record_drift(&self, drift: Duration) {
        let mut d = self.drift.lock().unwrap_or_else(|p| p.into_inner());
        if d.samples.len() == d.capacity {
            d.samples.pop_front();
        }
        d.samples.push_back(drift);
        d.max = d.max.max(drift);
    }
}

/// Nearest-rank percentile of sorted samples; zero when empty.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Where in its interval a monitor runs first: FNV-1a of the id modulo the interval, in
/// milliseconds. Deterministic (std's hasher is randomly seeded per process), so a restart keeps
/// every monitor's phase and the spread survives restarts.
pub fn first_run_offset(id: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(h % ms)
}

/// Runs monitors on their intervals and reports every result.
pub struct Scheduler<C> {
    checker: Arc<C>,
    config: ScheduleConfig,
    stats: Arc<Stats>,
}

impl<C: Checker> Scheduler<C> {
    /// A scheduler that runs checks with `checker`.
    pub fn new(checker: C, config: ScheduleConfig) -> Self {
        let stats = Arc::new(Stats::new(config.drift_window));
        Scheduler {
            checker: Arc::new(checker),
            config,
            stats,
        }
    }

    /// The live counters; keep the `Arc` to read them while [`Scheduler::run`] runs.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown` completes or the receiver of `events` is dropped (noticed at the
    /// next delivery). Checks still in
    /// flight at shutdown are abandoned (their results would describe a stopping process).
    ///
    /// `wall_now` is the wall-clock time at the call; event times are derived from it and tokio's
    /// clock, so they advance with `tokio::time::pause()` in tests. A slow receiver applies
    /// back-pressure: the monitor waits to deliver, which shows up as drift, never as lost results.
    pub async fn run(
        &self,
        monitors: Vec<Monitor>,
        events: mpsc::Sender<ProbeEvent>,
        wall_now: OffsetDateTime,
        shutdown: impl Future<Output = ()>,
    ) {
        let (_keep, set) = watch::channel(monitors);
        self.run_set(set, events, wall_now, shutdown).await;
    }

    /// Like [`Scheduler::run`], but the set of monitors can change while it runs: every value
    /// sent on `set` replaces the set. A monitor whose definition is unchanged keeps running
    /// undisturbed (its phase and flap state); a removed one stops before its next check; a new
    /// or changed one starts at its next phase point, so adding monitors never causes a burst.
    pub async fn run_set(
        &self,
        mut set: watch::Receiver<Vec<Monitor>>,
        events: mpsc::Sender<ProbeEvent>,
        wall_now: OffsetDateTime,
        shutdown: impl Future<Output = ()>,
    ) {
        let start = Instant::now();
        let permits = Arc::new(Semaphore::new(self.config.max_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let mut running: HashMap<String, (Monitor, AbortHandle)> = HashMap::new();
        let spawn = |tasks: &mut JoinSet<()>, monitor: Monitor| {
            let ctx = MonitorTask {
                checker: Arc::clone(&self.checker),
                stats: Arc::clone(&self.stats),
                permits: Arc::clone(&permits),
                events: events.clone(),
                start,
                wall_start: wall_now,
            };
            let first = next_phase_point(start, Instant::now(), &monitor);
            tasks.spawn(ctx.run(monitor, first))
        };
        let mut apply = |tasks: &mut JoinSet<()>, wanted: Vec<Monitor>| {
            let mut keep: HashMap<String, (Monitor, AbortHandle)> = HashMap::new();
            for m in wanted {
                match running.remove(&m.id) {
                    Some((old, handle)) if old == m => {
                        keep.insert(m.id.clone(), (old, handle));
                    }
                    previous => {
                        if let Some((_, handle)) = previous {
                            handle.abort();
                        }
                        let handle = spawn(tasks, m.clone());
                        keep.insert(m.id.clone(), (m, handle));
                    }
                }
            }
            for (_, (_, handle)) in running.drain() {
                handle.abort();
            }
            running = keep;
            self.stats.scheduled.store(running.len(), Ordering::Relaxed);
        };
        let initial = set.borrow_and_update().clone();
        apply(&mut tasks, initial);
        let mut set_open = true;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                changed = set.changed(), if set_open => match changed {
                    Ok(()) => {
                        let wanted = set.borrow_and_update().clone();
                        apply(&mut tasks, wanted);
                    }
                    // Nobody can change the set any more; keep running the current one.
                    Err(_) => set_open = false,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    // Tasks end on their own only when the receiver is gone (aborted ones end
                    // too, and are simply reaped here).
                    if events.is_closed() {
                        break;
                    }
                }
            }
        }
        tasks.shutdown().await;
        self.stats.scheduled.store(0, Ordering::Relaxed);
    }
}

/// The first planned time at or after `now` on the monitor's grid `start + offset + k × interval`,
/// so a monitor added later keeps the phase it would have had from the start.
fn next_phase_point(start: Instant, now: Instant, monitor: &Monitor) -> Instant {
    let base = start + first_run_offset(&monitor.id, monitor.interval);
    if now <= base {
        return base;
    }
    let interval = monitor.interval.as_nanos().max(1);
    let k = (now - base).as_nanos().div_ceil(interval);
    base + monitor.interval * u32::try_from(k).unwrap_or(u32::MAX)
}

struct MonitorTask<C> {
    checker: Arc<C>,
    stats: Arc<Stats>,
    permits: Arc<Semaphore>,
    events: mpsc::Sender<ProbeEvent>,
    start: Instant,
    wall_start: OffsetDateTime,
}

impl<C: Checker> MonitorTask<C> {
    async fn run(self, monitor: Monitor, first: Instant) {
        let interval = monitor.interval;
        let mut planned = first;
        let mut flap = FlapState::default();
        loop {
            tokio::time::sleep_until(planned).await;
            let Ok(permit) = self.permits.acquire().await else {
                return;
            };
            let began = Instant::now();
            let drift = began.saturating_duration_since(planned);
            self.stats.record_drift(drift);
            let now = self.wall_start + (began - self.start);
            let in_flight = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            self.stats
                .max_in_flight
                .fetch_max(in_flight, Ordering::Relaxed);
            let result = self.checker.check(&monitor, now).await;
            self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            self.stats.checks_run.fetch_add(1, Ordering::Relaxed);
            self.stats.record_latency(result.latency);
            if !result.outcome.is_success() {
                self.stats.checks_failed.fetch_add(1, Ordering::Relaxed);
            }
            let transition = flap.observe(result.outcome.is_success(), monitor.thresholds);
            let event = ProbeEvent {
                monitor_id: monitor.id.clone(),
                started_at: now,
                drift,
                result,
                status: flap.status,
                transition,
            };
            if self.events.send(event).await.is_err() {
                return;
            }
            planned += interval;
            let late = Instant::now();
            if late > planned + interval {
                // More than a whole interval behind: run once now-ish instead of a burst of
                // catch-up checks that would only hammer a target that is already struggling.
                let behind = late.duration_since(planned);
                let skip = u32::try_from(behind.as_nanos() / interval.as_nanos().max(1))
                    .unwrap_or(u32::MAX);
                self.stats
                    .ticks_skipped
                    .fetch_add(u64::from(skip), Ordering::Relaxed);
                planned += interval * skip;
            }
        }
    }
}
