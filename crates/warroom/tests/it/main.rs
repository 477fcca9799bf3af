//! All integration tests of the binary crate link into this one test binary.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; a panic fails the test.

mod alerts;
mod api;
mod cli;
mod detection;
mod ecosystem;
mod monitors_api;
mod notify_e2e;
mod openapi;
mod paging;
mod postmortems;
mod store_contract;
