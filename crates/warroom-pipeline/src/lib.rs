//! warroom's follow-up automation: when post-mortems are pushed, implement their safe
//! follow-ups through a guarded agent, record the commits in the post-mortems, push, publish.
//!
//! A run ([`Runner::execute`]) is a job leased from the store (`PipelineStore`):
//!
//! 1. fetch the configured branch and put a run branch at its tip;
//! 2. read **every** post-mortem in the folder there ([`scan`]) and list the items automation
//!    may implement (safe and open, or approved by a person), P0 first across all documents;
//! 3. per item, in a fresh `git worktree` on a new branch from the run branch: run the agent
//!    (an argv list, the item on stdin and in `WARROOM_*` variables, under a time limit with
//!    its whole process group killed on timeout), then the guardrails — budget, empty change,
//!    protected paths, diff size, the plan's deletes — then the optional apply command, then
//!    commit `fix(post-mortem): <action> [PM-YYYY-MM-DD]`; a refusal removes the work tree
//!    and records the reason;
//! 4. mark the items Done or "Needs human review" in their post-mortems (byte-preserving
//!    edits), append Follow-up Implementation rows with the hashes that are pushed, commit
//!    `docs: update post-mortem follow-up [PM-YYYY-MM-DD] [ci skip]`, push (a rejected push is
//!    rebuilt on the new remote tip and pushed once more), notify, rebuild the site.
//!
//! Items are recorded per (post-mortem, item id) as they finish, and each fix commit carries
//! a `Warroom-Item:` trailer, so a run resumed after a crash never redoes an item.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod git;
pub mod guard;
pub mod process;
mod runner;
pub mod scan;
mod worker;

pub use config::{PipelineConfig, default_agent, default_pass_env};
pub use runner::{
    FoundItem, ItemOutcome, ItemReport, PlannedItem, PlannedReview, RunError, RunOutcome, Runner,
    fix_subject,
};
pub use worker::run_worker;
