//! All integration tests of the binary crate link into this one test binary.

mod api;
mod cli;
mod openapi;
mod store_contract;
