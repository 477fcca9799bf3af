//! The loop `warroom serve` and `warroom worker` run: claim and execute runs, and sweep.

use std::time::Duration;

use crate::runner::Runner;

/// Claims and executes runs until `stop` turns true. With `sweep`, also queues a run that
/// often, so that post-mortems pushed while no webhook reached us are still handled.
pub async fn run_worker(
    runner: Runner,
    poll: Duration,
    sweep: Option<Duration>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next_sweep = sweep.map(|s| tokio::time::Instant::now() + s);
    loop {
        if *stop.borrow() {
            return;
        }
        if let (Some(at), Some(every)) = (next_sweep, sweep)
            && tokio::time::Instant::now() >= at
        {
            match runner.enqueue("sweep", None).await {
                Ok((run, true)) => tracing::info!(pipeline.run = run.id, "sweep queued a run"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the sweep could not queue a run"),
            }
            next_sweep = Some(at + every);
        }
        match runner.run_next().await {
            // Straight to the next claim: another run may be queued.
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a pipeline run failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}
