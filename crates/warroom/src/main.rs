//! The `warroom` binary: wires configuration, store and server; the commands live in `commands/`.

mod cli;
mod commands;
mod config;
mod secret;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

/// glibc's malloc gives every thread that allocates an arena of its own (up to 8 per core) and
/// keeps what is freed in it. Under a flood of alerts the request, writer and SQLite threads
/// each held on to their own peak: RSS reached 2.5 times the heap in use (measured with
/// heaptrack and `bench/memory.sh`: 86 MB of heap, 222 MB RSS; with two arenas 171 MB, with no
/// measurable loss of throughput). A `MALLOC_ARENA_MAX` set by the operator wins.
///
/// The mmap threshold is fixed as well: by default glibc raises it to the size of each large
/// block freed (up to 32 MB), after which the drain's pass buffers (a few MB each, one set per
/// pass and one read ahead) come from the heap and leave it fragmented. Peak RSS over 30 s of new
/// batches went from 181-208 MB to 143-160 MB (`bench/flood.sh BIN 30 100 16`). A
/// `MALLOC_MMAP_THRESHOLD_` set by the operator wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes malloc's tuning parameters, and no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

async fn run() -> ExitCode {
    // reqwest is built without a default TLS provider so that no C crypto is compiled; https
    // server URLs need one installed before the first request.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    match commands::run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
