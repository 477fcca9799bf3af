//! One module per group of commands.

mod client;
mod local;
mod monitor_set;
mod output;
mod pipeline;
mod postmortem;
mod serve;

use crate::cli::Command;

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Serve { server, listen } => serve::serve(server, listen).await,
        Command::Worker { server } => serve::worker(server).await,
        Command::Token { command } => local::token(command).await,
        Command::Config { command } => local::config(command),
        Command::Classify {
            signals,
            severity,
            json,
        } => local::classify(signals, severity, json),
        Command::Postmortem { command } => postmortem::run(command).await,
        Command::Site { command } => postmortem::site(command),
        Command::Pipeline { command } => pipeline::run(command).await,
        other => client::run(other).await,
    }
}
