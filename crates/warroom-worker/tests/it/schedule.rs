use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::mpsc;
use warroom_domain::monitor::{FailureKind, Monitor, MonitorStatus};
use warroom_worker::{
    CheckResult, Checker, Outcome, ProbeEvent, ScheduleConfig, Scheduler, first_run_offset,
};

use crate::support::{http, http_target, monitor, prober, silent_listener};

const WALL: OffsetDateTime = datetime!(2026-01-12 14:00:00 UTC);

async fn run_for<C: Checker>(
    scheduler: &Scheduler<C>,
    monitors: Vec<Monitor>,
    for_how_long: Duration,
) -> Vec<ProbeEvent> {
    let (tx, mut rx) = mpsc::channel(100_000);
    scheduler
        .run(monitors, tx, WALL, tokio::time::sleep(for_how_long))
        .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

fn by_monitor(events: &[ProbeEvent]) -> BTreeMap<&str, Vec<&ProbeEvent>> {
    let mut m: BTreeMap<&str, Vec<&ProbeEvent>> = BTreeMap::new();
    for e in events {
        m.entry(e.monitor_id.as_str()).or_default().push(e);
    }
    m
}

/// A stand-in for targets under tokio's paused clock (real sockets would see time jump): each
/// check takes `latency` of tokio time; monitors whose id starts with `bad` fail from
/// `fail_after` on.
struct SimulatedTargets {
    latency: Duration,
    fail_after: OffsetDateTime,
}

impl Checker for SimulatedTargets {
    async fn check(&self, monitor: &Monitor, now: OffsetDateTime) -> CheckResult {
        tokio::time::sleep(self.latency).await;
        let failing = monitor.id.starts_with("bad") && now >= self.fail_after;
        CheckResult {
            outcome: if failing { Outcome::Down } else { Outcome::Up },
            failure: failing.then_some(FailureKind::Crashed),
            latency: self.latency,
            status_code: Some(if failing { 500 } else { 200 }),
            error: None,
            cert_not_after: None,
        }
    }
}

fn simulated(latency_ms: u64) -> SimulatedTargets {
    SimulatedTargets {
        latency: Duration::from_millis(latency_ms),
        fail_after: WALL + time::Duration::days(1),
    }
}

fn fake(id: &str, interval_secs: u64) -> Monitor {
    monitor(id, interval_secs, 500, http("http://unused.invalid/"))
}

#[tokio::test(start_paused = true)]
async fn first_runs_are_spread_over_the_interval_and_later_runs_keep_their_phase() {
    let monitors: Vec<Monitor> = (0..200).map(|i| fake(&format!("m{i}"), 30)).collect();
    let s = Scheduler::new(simulated(700), ScheduleConfig::default());
    let events = run_for(&s, monitors, Duration::from_secs(95)).await;
    let runs = by_monitor(&events);
    assert_eq!(runs.len(), 200);
    // Each first run at its hash offset, later runs exactly one interval apart, even though each
    // check takes 0.7 s.
    for (id, evs) in &runs {
        let offset = first_run_offset(id, Duration::from_secs(30));
        assert_eq!(evs[0].started_at, WALL + offset, "{id}");
        for pair in evs.windows(2) {
            assert_eq!(
                pair[1].started_at - pair[0].started_at,
                time::Duration::seconds(30)
            );
        }
        assert!((3..=4).contains(&evs.len()), "{id}: {}", evs.len());
    }
    // No thundering herd: 200 first runs over 30 one-second slots, none holds more than 10%.
    let mut per_second = [0usize; 30];
    for evs in runs.values() {
        let secs = (evs[0].started_at - WALL).whole_seconds();
        per_second[usize::try_from(secs).unwrap()] += 1;
    }
    assert!(per_second.iter().all(|n| *n <= 20), "{per_second:?}");
    assert!(
        per_second.iter().filter(|n| **n > 0).count() >= 25,
        "{per_second:?}"
    );
    let stats = s.stats().snapshot();
    assert_eq!(stats.checks_run, events.len() as u64);
    assert_eq!(stats.drift_max, Duration::ZERO);
    assert_eq!(stats.ticks_skipped, 0);
}

#[test]
fn offsets_are_deterministic_and_inside_the_interval() {
    let i = Duration::from_secs(60);
    assert_eq!(
        first_run_offset("api-health", i),
        first_run_offset("api-health", i)
    );
    assert_ne!(
        first_run_offset("api-health", i),
        first_run_offset("db-health", i)
    );
    for n in 0..1000 {
        assert!(first_run_offset(&format!("m{n}"), i) < i);
    }
}

#[tokio::test(start_paused = true)]
async fn flap_damping_turns_three_failures_into_one_down_transition() {
    let monitors = vec![fake("bad-api", 10), fake("good-api", 10)];
    let targets = SimulatedTargets {
        latency: Duration::from_millis(50),
        fail_after: WALL + time::Duration::seconds(60),
    };
    let s = Scheduler::new(targets, ScheduleConfig::default());
    let events = run_for(&s, monitors, Duration::from_secs(120)).await;
    let runs = by_monitor(&events);
    let transitions: Vec<_> = runs["bad-api"]
        .iter()
        .filter_map(|e| e.transition.map(|t| (t.from, t.to, e.started_at - WALL)))
        .collect();
    use MonitorStatus::*;
    let off =
        time::Duration::try_from(first_run_offset("bad-api", Duration::from_secs(10))).unwrap();
    // Up after 2 successes; the first failure at ≥60 s makes it pending, the third down.
    let first_fail = (0..)
        .map(|k| off + time::Duration::seconds(10 * k))
        .find(|t| *t >= time::Duration::seconds(60))
        .unwrap();
    assert_eq!(
        transitions,
        [
            (Pending, Up, off + time::Duration::seconds(10)),
            (Up, Pending, first_fail),
            (Pending, Down, first_fail + time::Duration::seconds(20)),
        ]
    );
    assert!(runs["good-api"].iter().all(|e| e.status != Down));
    assert!(s.stats().snapshot().checks_failed >= 3);
}

#[tokio::test(start_paused = true)]
async fn a_saturated_scheduler_measures_drift_and_skips_instead_of_bursting() {
    // One permit, three monitors each needing 0.9 s every second: they cannot all keep up.
    let monitors = vec![fake("a", 1), fake("b", 1), fake("c", 1)];
    let s = Scheduler::new(
        simulated(900),
        ScheduleConfig {
            max_concurrency: 1,
            ..ScheduleConfig::default()
        },
    );
    let events = run_for(&s, monitors, Duration::from_secs(30)).await;
    let stats = s.stats().snapshot();
    assert_eq!(stats.max_in_flight, 1);
    assert!(stats.ticks_skipped > 0, "{stats:?}");
    assert!(stats.drift_p99 >= Duration::from_millis(900), "{stats:?}");
    assert!(stats.drift_p50 <= stats.drift_p99);
    // 30 s of one permit at 0.9 s per check: no more checks than fit.
    assert!(events.len() <= 34, "{}", events.len());
}

#[tokio::test]
async fn a_hanging_target_does_not_delay_other_monitors() {
    let t = http_target().await;
    let silent = silent_listener().await;
    let monitors = vec![
        monitor("hanging", 1, 900, http(&format!("http://{silent}/"))),
        monitor("healthy", 1, 900, http(&t.url("/ok"))),
    ];
    let s = Scheduler::new(prober(), ScheduleConfig::default());
    let events = run_for(&s, monitors, Duration::from_millis(3500)).await;
    let runs = by_monitor(&events);
    let healthy = &runs["healthy"];
    assert!(healthy.len() >= 3, "{}", healthy.len());
    assert!(healthy.iter().all(|e| e.result.outcome == Outcome::Up));
    assert!(
        healthy.iter().all(|e| e.drift < Duration::from_millis(600)),
        "{:?}",
        healthy.iter().map(|e| e.drift).collect::<Vec<_>>()
    );
    assert!(
        runs["hanging"]
            .iter()
            .all(|e| e.result.failure == Some(FailureKind::Hung))
    );
}

#[tokio::test]
async fn concurrency_is_bounded_by_the_semaphore() {
    let t = http_target().await;
    let monitors: Vec<Monitor> = (0..12)
        .map(|i| monitor(&format!("busy{i}"), 1, 900, http(&t.url("/busy"))))
        .collect();
    let s = Scheduler::new(
        prober(),
        ScheduleConfig {
            max_concurrency: 3,
            ..ScheduleConfig::default()
        },
    );
    let stats = s.stats();
    let events = run_for(&s, monitors, Duration::from_millis(2500)).await;
    assert!(events.len() >= 6, "{}", events.len());
    let seen = t
        .seen
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(seen <= 3, "target saw {seen} at once");
    assert_eq!(stats.snapshot().max_in_flight, 3);
}

#[tokio::test(start_paused = true)]
async fn without_monitors_the_run_lasts_until_shutdown() {
    let s = Scheduler::new(simulated(10), ScheduleConfig::default());
    let before = tokio::time::Instant::now();
    let events = run_for(&s, Vec::new(), Duration::from_secs(60)).await;
    assert!(events.is_empty());
    assert_eq!(before.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_receiver_stops_the_run() {
    let s = Scheduler::new(simulated(10), ScheduleConfig::default());
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    s.run(vec![fake("a", 5)], tx, WALL, std::future::pending())
        .await;
    assert_eq!(s.stats().snapshot().checks_run, 1);
}

#[tokio::test(start_paused = true)]
async fn the_monitor_set_changes_while_running_without_disturbing_unchanged_monitors() {
    let s = Scheduler::new(simulated(10), ScheduleConfig::default());
    let (set_tx, set_rx) = tokio::sync::watch::channel(vec![fake("kept", 10)]);
    let (tx, mut rx) = mpsc::channel(10_000);
    let t0 = tokio::time::Instant::now();
    let changes = async {
        tokio::time::sleep(Duration::from_secs(35)).await;
        set_tx
            .send(vec![fake("kept", 10), fake("added", 10)])
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        set_tx.send(vec![fake("kept", 10)]).unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    };
    s.run_set(set_rx, tx, WALL, changes).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let runs = by_monitor(&events);
    let kept = &runs["kept"];
    // Kept ran every 10 s on its phase through both changes: 95 s of runs, none skipped.
    assert!(kept.len() >= 9, "{}", kept.len());
    for w in kept.windows(2) {
        assert_eq!(
            w[1].started_at - w[0].started_at,
            time::Duration::seconds(10)
        );
    }
    // Added ran only while it was in the set, on its own phase grid (not in a burst at 35 s).
    let added = &runs["added"];
    let offset = first_run_offset("added", Duration::from_secs(10));
    for e in added {
        let since = e.started_at - WALL;
        assert!(
            since >= time::Duration::seconds(35) && since < time::Duration::seconds(66),
            "{since}"
        );
        let phase = (since.whole_milliseconds() % 10_000) as u128;
        assert_eq!(phase, offset.as_millis(), "off its phase: {since}");
    }
    assert_eq!(added.len(), 3);
    assert_eq!(t0.elapsed(), Duration::from_secs(95));
    assert_eq!(
        s.stats().snapshot().scheduled,
        0,
        "nothing runs after the run"
    );
}

#[tokio::test(start_paused = true)]
async fn check_durations_are_counted_in_cumulative_buckets() {
    let s = Scheduler::new(simulated(30), ScheduleConfig::default());
    let events = run_for(
        &s,
        vec![fake("a", 10), fake("b", 10)],
        Duration::from_secs(25),
    )
    .await;
    let snap = s.stats().snapshot();
    assert_eq!(snap.latency_count, events.len() as u64);
    // 30 ms: above the 25 ms bucket, inside the 50 ms one and every larger one.
    let le = |b: f64| {
        warroom_worker::LATENCY_BUCKETS
            .iter()
            .position(|x| *x == b)
            .unwrap()
    };
    assert_eq!(snap.latency_buckets[le(0.025)], 0);
    assert_eq!(snap.latency_buckets[le(0.05)], snap.latency_count);
    assert_eq!(snap.latency_buckets[le(10.0)], snap.latency_count);
    assert_eq!(
        snap.latency_sum,
        Duration::from_millis(30) * events.len() as u32
    );
}
