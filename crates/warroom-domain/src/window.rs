//! The decision tree's signals, derived from a service's recent check results over a sliding
//! window (default 5 minutes):
//!
//! - **users can access**: any user-facing monitor of the service is not DOWN;
//! - **failing share**: the share of failed checks in the window, and the share of HTTP 5xx
//!   answers among them. Each monitor's share counts once, however often it runs, so a 1 s
//!   check does not outvote a 60 s one;
//! - **recovering**: the failing share falls from the window's first half to its second (with
//!   nothing failing in either half, latency falling counts instead);
//! - **latency ratio**: the median latency of the window's successful checks against the
//!   monitor's own baseline, the median of its successful checks in the hour before the window.
//!   The service's ratio is its worst monitor's.
//!
//! Pure: the samples and `now` are passed in; the worker keeps the samples.

use std::collections::VecDeque;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::{
    Signals, alert,
    monitor::{FailureKind, MonitorStatus},
};

/// One check result, as much of it as the signals need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSample {
    /// When the check started.
    pub at: OffsetDateTime,
    /// Whether it succeeded (warnings count as success).
    pub ok: bool,
    /// Why it failed, as the runbook names it.
    pub failure: Option<FailureKind>,
    /// How long it took.
    pub latency_ms: u32,
}

impl CheckSample {
    /// Failed with an HTTP 5xx ("crashed").
    pub fn crashed(&self) -> bool {
        self.failure == Some(FailureKind::Crashed)
    }
}

/// The window and the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// How far back the signals look.
    pub window: Duration,
    /// How far before the window the latency baseline looks.
    pub baseline: Duration,
    /// Baselines below this are raised to it: under ~50 ms, a change is network jitter rather
    /// than slowness a user notices, and a 2 ms → 9 ms wobble must not read as "4.5× normal".
    pub min_baseline_ms: u32,
    /// Most samples kept per monitor. A 5 s monitor fills an hour and five minutes with 780;
    /// faster monitors keep a shorter baseline rather than unbounded memory.
    pub max_samples: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window: Duration::minutes(5),
            baseline: Duration::hours(1),
            min_baseline_ms: 50,
            max_samples: 800,
        }
    }
}

/// Fewest successful baseline checks a ratio is computed from; one lucky fast answer is not a
/// baseline.
const MIN_BASELINE_SAMPLES: usize = 3;

/// One monitor's recent results, oldest first, pruned to the window plus the baseline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorHistory {
    samples: VecDeque<Stored>,
}

/// A [`CheckSample`] in 16 bytes instead of 24: at 10,000 monitors every 30 s an hour and five
/// minutes of them is 1.3 million samples, so the width decides tens of megabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    at_ms: i64,
    latency_ms: u32,
    failure: Option<FailureKind>,
    ok: bool,
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Stored {
    fn sample(self) -> CheckSample {
        CheckSample {
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            ok: self.ok,
            failure: self.failure,
            latency_ms: self.latency_ms,
        }
    }
}

impl MonitorHistory {
    /// Adds a result and forgets what neither the window nor the baseline needs any more.
    pub fn record(&mut self, sample: CheckSample, cfg: &WindowConfig) {
        self.samples.push_back(Stored {
            at_ms: unix_ms(sample.at),
            latency_ms: sample.latency_ms,
            failure: sample.failure,
            ok: sample.ok,
        });
        let horizon = unix_ms(sample.at - cfg.window - cfg.baseline);
        while self
            .samples
            .front()
            .is_some_and(|s| s.at_ms < horizon || self.samples.len() > cfg.max_samples.max(1))
        {
            self.samples.pop_front();
        }
    }

    /// Samples in `[from, to)`.
    fn between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> impl Iterator<Item = CheckSample> + '_ {
        let (from, to) = (unix_ms(from), unix_ms(to));
        self.samples
            .iter()
            .filter(move |s| s.at_ms >= from && s.at_ms < to)
            .map(|s| s.sample())
    }

    /// What the checks in the window since `since` say, for trouble that falls short of DOWN
    /// (see [`crate::detection::degradation`]). Checks before `since` are left out of the
    /// window, so that an outage that has just ended is not read as a degradation after it;
    /// the latency baseline is the same as [`window_signals`]'.
    pub fn recent(
        &self,
        since: Option<OffsetDateTime>,
        now: OffsetDateTime,
        cfg: &WindowConfig,
    ) -> RecentChecks {
        let start = now - cfg.window;
        let from = since.map_or(start, |s| s.max(start));
        let window: Vec<CheckSample> = self.between(from, now + Duration::SECOND).collect();
        let latency_ratio = match median_latency(window.iter().copied()) {
            Some((cur, n)) if n >= MIN_BASELINE_SAMPLES => self.against_baseline(cur, start, cfg),
            _ => None,
        };
        RecentChecks {
            checks: window.len(),
            failed: window.iter().filter(|s| !s.ok).count(),
            crashed: window.iter().filter(|s| s.crashed()).count(),
            latency_ratio: latency_ratio.filter(|r| r.is_finite()),
        }
    }

    /// The window's samples since `since` (all of the window without it), oldest first, in
    /// the shape the incident-type rules read ([`crate::alert::recognise_checks`]).
    pub fn window(
        &self,
        since: Option<OffsetDateTime>,
        now: OffsetDateTime,
        cfg: &WindowConfig,
    ) -> Vec<alert::CheckSample> {
        let start = now - cfg.window;
        self.between(
            since.map_or(start, |s| s.max(start)),
            now + Duration::SECOND,
        )
        .map(|s| alert::CheckSample {
            failure: s.failure,
            latency: std::time::Duration::from_millis(u64::from(s.latency_ms)),
        })
        .collect()
    }

    /// When the last run of at least `failures` failures in a row ended (its first success
    /// after), that is, when the monitor last recovered from what was a DOWN; `None` if no such
    /// run is kept, or the newest results are one (still down).
    pub fn after_last_outage(&self, failures: u32) -> Option<OffsetDateTime> {
        let (mut run, mut outage_ended, mut in_outage) = (0u32, None, false);
        for s in &self.samples {
            if s.ok {
                if in_outage {
                    outage_ended = Some(s.sample().at);
                    in_outage = false;
                }
                run = 0;
            } else {
                run = run.saturating_add(1);
                if run >= failures.max(1) {
                    in_outage = true;
                }
            }
        }
        if in_outage { None } else { outage_ended }
    }

    /// `current` (a median latency) ÷ the median of the baseline before `start`, raised to the
    /// jitter floor; `None` without enough baseline.
    fn against_baseline(
        &self,
        current: f64,
        start: OffsetDateTime,
        cfg: &WindowConfig,
    ) -> Option<f64> {
        match median_latency(self.between(start - cfg.baseline, start)) {
            Some((base, n)) if n >= MIN_BASELINE_SAMPLES => {
                Some(current / base.max(f64::from(cfg.min_baseline_ms.max(1))))
            }
            _ => None,
        }
    }

    /// Number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// One monitor's checks over part of the window ([`MonitorHistory::recent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecentChecks {
    /// Checks.
    pub checks: usize,
    /// Of which failed.
    pub failed: usize,
    /// Of which answered with an HTTP 5xx.
    pub crashed: usize,
    /// Median latency of the successful ones ÷ the baseline's; `None` with fewer than three of
    /// either (one slow answer is not a trend).
    pub latency_ratio: Option<f64>,
}

impl RecentChecks {
    /// Failed checks, 0-100; `None` without checks.
    pub fn failing_percent(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.failed as f64 * 100.0 / self.checks as f64)
    }
}

/// A monitor as the signals see it.
#[derive(Debug, Clone, Copy)]
pub struct MonitorView<'a> {
    /// Whether a failure keeps users out.
    pub user_facing: bool,
    /// Its confirmed state (flap-damped).
    pub status: MonitorStatus,
    /// Its recent results.
    pub history: &'a MonitorHistory,
}

/// The signals of one service over the window, with the numbers behind them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowSignals {
    /// Any user-facing monitor not DOWN; `None` without user-facing monitors.
    pub users_can_access: Option<bool>,
    /// Failed checks, 0-100, the mean of the monitors' shares; `None` without checks.
    pub failing_percent: Option<f64>,
    /// HTTP 5xx answers, 0-100, likewise.
    pub http_5xx_percent: Option<f64>,
    /// Failing share falling over the window; `None` when a half of it has no checks.
    pub recovering: Option<bool>,
    /// Window median latency ÷ baseline median latency, worst monitor; `None` without a baseline.
    pub latency_ratio: Option<f64>,
    /// Checks in the window.
    pub checks: usize,
}

impl WindowSignals {
    /// The decision tree's input. Whether users must act or lost data is not something a probe
    /// can see, so that stays unknown.
    pub fn to_signals(&self) -> Signals {
        Signals {
            users_can_access: self.users_can_access,
            failing_percent: self.failing_percent,
            recovering: self.recovering,
            user_action_or_data_loss: None,
            latency_ratio: self.latency_ratio,
        }
    }

    /// One line for the timeline: what the severity was decided from.
    pub fn describe(&self, cfg: &WindowConfig) -> String {
        let pct = |p: Option<f64>| p.map_or("unknown".to_owned(), |p| format!("{p:.0}%"));
        let yn = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        format!(
            "over the last {}: users can access: {}; failing {} of {} checks (5xx {}); recovering: {}; latency {}",
            crate::timefmt::human_duration(cfg.window),
            yn(self.users_can_access),
            pct(self.failing_percent),
            self.checks,
            pct(self.http_5xx_percent),
            yn(self.recovering),
            self.latency_ratio
                .map_or("against baseline unknown".to_owned(), |r| format!(
                    "{r:.1}x baseline"
                )),
        )
    }
}

fn share(samples: &[CheckSample], pred: impl Fn(&CheckSample) -> bool) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let n = samples.iter().filter(|s| pred(s)).count();
    Some(n as f64 * 100.0 / samples.len() as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn median_latency(samples: impl Iterator<Item = CheckSample>) -> Option<(f64, usize)> {
    let mut v: Vec<u32> = samples.filter(|s| s.ok).map(|s| s.latency_ms).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    let m = if n % 2 == 1 {
        f64::from(v[n / 2])
    } else {
        (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
    };
    Some((m, n))
}

/// The signals of one service at `now`, from its monitors.
pub fn window_signals(
    monitors: &[MonitorView<'_>],
    now: OffsetDateTime,
    cfg: &WindowConfig,
) -> WindowSignals {
    let start = now - cfg.window;
    let middle = start + cfg.window / 2;
    let user_facing: Vec<&MonitorView<'_>> = monitors.iter().filter(|m| m.user_facing).collect();
    let users_can_access = (!user_facing.is_empty())
        .then(|| user_facing.iter().any(|m| m.status != MonitorStatus::Down));
    let (mut failing, mut crashed, mut first, mut second) = (vec![], vec![], vec![], vec![]);
    let (mut lat_first, mut lat_second) = (vec![], vec![]);
    let mut ratio: Option<f64> = None;
    let mut checks = 0;
    for m in monitors {
        let window: Vec<CheckSample> = m.history.between(start, now + Duration::SECOND).collect();
        checks += window.len();
        if let Some(p) = share(&window, |s| !s.ok) {
            failing.push(p);
        }
        if let Some(p) = share(&window, CheckSample::crashed) {
            crashed.push(p);
        }
        let (a, b): (Vec<CheckSample>, Vec<CheckSample>) =
            window.iter().partition(|s| s.at < middle);
        if let (Some(pa), Some(pb)) = (share(&a, |s| !s.ok), share(&b, |s| !s.ok)) {
            first.push(pa);
            second.push(pb);
            if let (Some((la, _)), Some((lb, _))) = (
                median_latency(a.iter().copied()),
                median_latency(b.iter().copied()),
            ) {
                lat_first.push(la);
                lat_second.push(lb);
            }
        }
        if let Some((cur, _)) = median_latency(window.iter().copied())
            && let Some(r) = m.history.against_baseline(cur, start, cfg)
        {
            ratio = Some(ratio.map_or(r, |worst: f64| worst.max(r)));
        }
    }
    let recovering = match (mean(&first), mean(&second)) {
        (Some(a), Some(b)) if a > 0.0 || b > 0.0 => Some(b < a),
        (Some(_), Some(_)) => match (mean(&lat_first), mean(&lat_second)) {
            (Some(a), Some(b)) => Some(b < a),
            _ => None,
        },
        _ => None,
    };
    WindowSignals {
        users_can_access,
        failing_percent: mean(&failing),
        http_5xx_percent: mean(&crashed),
        recovering,
        // Guard the tree against a NaN or zero from degenerate input; it refuses such ratios.
        latency_ratio: ratio.map(|r| if r.is_finite() && r > 0.0 { r } else { 1.0 }),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Severity, classify};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-12 15:00 UTC);

    /// A history from a pattern, one check every `every` seconds ending just before `NOW`:
    /// `+` ok, `-` failed, `5` a 5xx.
    fn history(pattern: &str, every: i64, latency_ms: u32) -> MonitorHistory {
        let cfg = WindowConfig::default();
        let mut h = MonitorHistory::default();
        let n = pattern.len() as i64;
        for (i, c) in pattern.chars().enumerate() {
            h.record(
                CheckSample {
                    at: NOW - Duration::seconds((n - i as i64) * every),
                    ok: c == '+',
                    failure: match c {
                        '+' => None,
                        '5' => Some(FailureKind::Crashed),
                        _ => Some(FailureKind::Down),
                    },
                    latency_ms,
                },
                &cfg,
            );
        }
        h
    }

    fn view(h: &MonitorHistory, user_facing: bool, status: MonitorStatus) -> MonitorView<'_> {
        MonitorView {
            user_facing,
            status,
            history: h,
        }
    }

    #[test]
    fn users_can_access_while_any_user_facing_monitor_is_up() {
        let cfg = WindowConfig::default();
        let (a, b) = (history("----", 30, 10), history("++++", 30, 10));
        let s = window_signals(
            &[
                view(&a, true, MonitorStatus::Down),
                view(&b, true, MonitorStatus::Up),
            ],
            NOW,
            &cfg,
        );
        assert_eq!(s.users_can_access, Some(true));
        let s = window_signals(&[view(&a, true, MonitorStatus::Down)], NOW, &cfg);
        assert_eq!(s.users_can_access, Some(false));
        assert_eq!(
            classify(&s.to_signals(), None).unwrap().severity,
            Severity::Sev1
        );
        let s = window_signals(&[view(&a, false, MonitorStatus::Down)], NOW, &cfg);
        assert_eq!(s.users_can_access, None, "no user-facing monitor: unknown");
    }

    #[test]
    fn failing_share_counts_each_monitor_once_and_reports_5xx() {
        let cfg = WindowConfig::default();
        // A 1 s monitor failing 300 times and a 60 s one fine 5 times: 50 %, not 98 %.
        let fast = history(&"5".repeat(300), 1, 10);
        let slow = history("+++++", 60, 10);
        let s = window_signals(
            &[
                view(&fast, false, MonitorStatus::Down),
                view(&slow, false, MonitorStatus::Up),
            ],
            NOW,
            &cfg,
        );
        assert_eq!(s.failing_percent, Some(50.0));
        assert_eq!(s.http_5xx_percent, Some(50.0));
        assert_eq!(s.checks, 300 + 5);
        // Outside the window does not count.
        let old = history(&format!("{}{}", "-".repeat(10), "+".repeat(10)), 30, 10);
        let s = window_signals(&[view(&old, false, MonitorStatus::Up)], NOW, &cfg);
        assert_eq!(s.failing_percent, Some(0.0));
        assert_eq!(
            window_signals(&[], NOW, &cfg).failing_percent,
            None,
            "no checks: unknown"
        );
    }

    #[test]
    fn recovering_compares_the_two_halves_of_the_window() {
        let cfg = WindowConfig::default();
        let falling = history("----------+-+-++++++", 15, 10);
        let s = window_signals(&[view(&falling, true, MonitorStatus::Up)], NOW, &cfg);
        assert_eq!(s.recovering, Some(true));
        let rising = history("++++++++++-+-+------", 15, 10);
        let s = window_signals(&[view(&rising, true, MonitorStatus::Up)], NOW, &cfg);
        assert_eq!(s.recovering, Some(false));
        let flat = history(&"-".repeat(20), 15, 10);
        let s = window_signals(&[view(&flat, true, MonitorStatus::Down)], NOW, &cfg);
        assert_eq!(
            s.recovering,
            Some(false),
            "failing throughout is not recovering"
        );
        let young = history("--", 15, 10);
        let s = window_signals(&[view(&young, true, MonitorStatus::Down)], NOW, &cfg);
        assert_eq!(s.recovering, None, "the first half has no checks yet");
    }

    #[test]
    fn latency_ratio_is_against_the_monitors_own_last_hour() {
        let cfg = WindowConfig::default();
        let mut h = MonitorHistory::default();
        let sample = |at, latency_ms, ok: bool| CheckSample {
            at,
            ok,
            failure: (!ok).then_some(FailureKind::Hung),
            latency_ms,
        };
        // An hour at 200 ms, then the window at 2.1 s: 10.5× → the latency floor makes it SEV2.
        for i in 0..120 {
            h.record(
                sample(
                    NOW - Duration::minutes(65) + Duration::seconds(i * 30),
                    200,
                    true,
                ),
                &cfg,
            );
        }
        for i in 0..10 {
            h.record(
                sample(
                    NOW - Duration::minutes(5) + Duration::seconds(i * 30),
                    2100,
                    true,
                ),
                &cfg,
            );
        }
        // A failed check's latency (a timeout) is not a latency measurement.
        h.record(sample(NOW - Duration::seconds(1), 10_000, false), &cfg);
        let s = window_signals(&[view(&h, true, MonitorStatus::Up)], NOW, &cfg);
        assert_eq!(s.latency_ratio, Some(10.5));
        let c = classify(&s.to_signals(), None).unwrap();
        assert_eq!(c.severity, Severity::Sev2);
        // A fast service's jitter (2 ms → 9 ms) is not a latency rise.
        let mut h = MonitorHistory::default();
        for i in 0..20 {
            h.record(
                sample(
                    NOW - Duration::minutes(20) + Duration::seconds(i * 30),
                    2,
                    true,
                ),
                &cfg,
            );
        }
        h.record(sample(NOW - Duration::seconds(10), 9, true), &cfg);
        let s = window_signals(&[view(&h, true, MonitorStatus::Up)], NOW, &cfg);
        assert!(s.latency_ratio.unwrap() < 1.0, "{s:?}");
        // Without a baseline there is no ratio.
        let fresh = history("+++", 30, 100);
        let s = window_signals(&[view(&fresh, true, MonitorStatus::Up)], NOW, &cfg);
        assert_eq!(s.latency_ratio, None);
    }

    #[test]
    fn history_is_bounded_by_time_and_count() {
        let cfg = WindowConfig {
            max_samples: 50,
            ..WindowConfig::default()
        };
        let mut h = MonitorHistory::default();
        for i in 0..100 {
            h.record(
                CheckSample {
                    at: NOW + Duration::seconds(i),
                    ok: true,
                    failure: None,
                    latency_ms: 1,
                },
                &cfg,
            );
        }
        assert_eq!(h.len(), 50);
        h.record(
            CheckSample {
                at: NOW + Duration::hours(3),
                ok: true,
                failure: None,
                latency_ms: 1,
            },
            &cfg,
        );
        assert_eq!(h.len(), 1, "older than window + baseline is forgotten");
    }

    #[test]
    fn the_description_names_every_signal() {
        let cfg = WindowConfig::default();
        let h = history("+-5-", 30, 10);
        let d = window_signals(&[view(&h, true, MonitorStatus::Down)], NOW, &cfg).describe(&cfg);
        assert!(d.contains("users can access: no"), "{d}");
        assert!(d.contains("failing 75% of 4 checks (5xx 25%)"), "{d}");
        assert!(d.contains("latency against baseline unknown"), "{d}");
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn a_kept_sample_is_16_bytes() {
        assert_eq!(std::mem::size_of::<super::Stored>(), 16);
    }
}
