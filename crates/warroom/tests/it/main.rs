//! All integration tests of the binary crate link into this one test binary.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; a panic fails the test.

mod alerts;
mod amtool;
mod api;
mod cli;
mod detection;
mod ecosystem;
mod monitors_api;
mod notify_e2e;
mod openapi;
mod paging;
mod pipeline_e2e;
mod pipeline_hooks;
mod pipeline_store;
mod postmortems;
mod slack_email_e2e;
mod store_contract;
