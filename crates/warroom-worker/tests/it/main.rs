//! Integration tests: real sockets on 127.0.0.1, real HTTP client, one test binary.
#![expect(clippy::unwrap_used, reason = "helpers fail the test loudly")]

mod probe;
mod schedule;
mod support;
