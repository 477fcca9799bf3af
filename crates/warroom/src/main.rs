//! The `warroom` binary: wires configuration, store and server; the commands live in `commands/`.

mod cli;
mod commands;
mod config;
mod secret;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
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
