//! Detection workers of warroom: probes that check monitored services, and the scheduler that
//! runs them. See the crate README for the design.
#![deny(missing_docs)]

pub mod cert;
pub mod probe;
pub mod schedule;

pub use probe::{CheckResult, Checker, Outcome, ProbeError, Prober};
pub use schedule::{ProbeEvent, ScheduleConfig, Scheduler, Stats, StatsSnapshot, first_run_offset};
