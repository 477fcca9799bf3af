#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod cert;
pub mod probe;
pub mod schedule;

pub use probe::{CheckResult, Checker, Outcome, ProbeError, Prober};
pub use schedule::{
    LATENCY_BUCKETS, ProbeEvent, ScheduleConfig, Scheduler, Stats, StatsSnapshot, first_run_offset,
};
