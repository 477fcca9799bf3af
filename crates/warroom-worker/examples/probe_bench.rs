//! Probe throughput and CPU cost, for comparison with prometheus-blackbox-exporter.
//!
//! ```text
//! cargo run --release -p warroom-worker --example probe_bench -- [options]
//!   --mode burst|scheduled  burst: back-to-back checks from --concurrency loops (max probes/s);
//!                           scheduled: --monitors monitors through the Scheduler at --interval-ms
//!                           (CPU per probe at a realistic load, plus drift)      [burst]
//!   --seconds N             how long to measure                                   [10]
//!   --concurrency N         burst loops / scheduler permits                       [64]
//!   --monitors N            scheduled mode: number of monitors                    [1000]
//!   --interval-ms N         scheduled mode: interval of every monitor, >= 1000    [1000]
//!   --url URL               target; default: a local target in a child process
//! ```
//!
//! The default target runs in a child process (this binary with `--serve`) so that the CPU time
//! read from `/proc/self/stat` is the prober's alone, as it would be for the exporter.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use warroom_domain::monitor::{Monitor, MonitorSpec};
use warroom_worker::{Checker, Outcome, Prober, ScheduleConfig, Scheduler};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    mode: String,
    seconds: u64,
    concurrency: usize,
    monitors: usize,
    interval_ms: u64,
    url: Option<String>,
    serve: bool,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        mode: "burst".into(),
        seconds: 10,
        concurrency: 64,
        monitors: 1000,
        interval_ms: 1000,
        url: None,
        serve: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mode" => a.mode = value()?,
            "--seconds" => a.seconds = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--monitors" => a.monitors = value()?.parse()?,
            "--interval-ms" => a.interval_ms = value()?.parse()?,
            "--url" => a.url = Some(value()?),
            "--serve" => a.serve = true,
            other => {
                return Err(
                    format!("unknown option {other}; see the top of probe_bench.rs").into(),
                );
            }
        }
    }
    Ok(a)
}

/// utime + stime of this process in seconds (fields 14 and 15 of /proc/self/stat, in clock
/// ticks). The command name (field 2) may contain spaces, so fields are counted after its `)`.
fn cpu_seconds(ticks_per_sec: f64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn serve() -> Result<(), Error> {
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn monitor(id: String, url: &str, interval_ms: u64) -> Result<Monitor, Error> {
    let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
        "id": id,
        "service": "bench",
        "interval_secs": interval_ms.div_ceil(1000).max(1),
        "timeout_ms": 900,
        "check": {"kind": "http", "url": url},
    }))?;
    Ok(spec.validate("monitors[0]")?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    if args.serve {
        return serve().await;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut child = None;
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let mut c = Command::new(std::env::current_exe()?)
                .arg("--serve")
                .stdout(Stdio::piped())
                .spawn()?;
            let mut line = String::new();
            BufReader::new(c.stdout.take().ok_or("no stdout from the target")?)
                .read_line(&mut line)?;
            child = Some(c);
            format!("http://{}/health", line.trim())
        }
    };

    let ticks = clock_ticks();
    let prober = Prober::new()?;
    let cpu0 = cpu_seconds(ticks);
    let t0 = Instant::now();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut drift = None;

    match args.mode.as_str() {
        "burst" => {
            let m = Arc::new(monitor("bench".into(), &url, 1000)?);
            let deadline = t0 + Duration::from_secs(args.seconds);
            let mut loops = tokio::task::JoinSet::new();
            for _ in 0..args.concurrency {
                let (p, m, ok, failed) = (prober.clone(), m.clone(), ok.clone(), failed.clone());
                loops.spawn(async move {
                    while Instant::now() < deadline {
                        let r = p.check(&m, time::OffsetDateTime::now_utc()).await;
                        let n = if r.outcome == Outcome::Up {
                            &ok
                        } else {
                            &failed
                        };
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            while loops.join_next().await.is_some() {}
        }
        "scheduled" => {
            let monitors = (0..args.monitors)
                .map(|i| monitor(format!("m{i}"), &url, args.interval_ms))
                .collect::<Result<Vec<_>, _>>()?;
            let s = Scheduler::new(
                prober,
                ScheduleConfig {
                    max_concurrency: args.concurrency,
                    ..ScheduleConfig::default()
                },
            );
            let (tx, mut rx) = mpsc::channel::<warroom_worker::ProbeEvent>(10_000);
            let (ok2, failed2) = (ok.clone(), failed.clone());
            let counter = tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    let n = if e.result.outcome == Outcome::Up {
                        &ok2
                    } else {
                        &failed2
                    };
                    n.fetch_add(1, Ordering::Relaxed);
                }
            });
            s.run(
                monitors,
                tx,
                time::OffsetDateTime::now_utc(),
                tokio::time::sleep(Duration::from_secs(args.seconds)),
            )
            .await;
            counter.await?;
            drift = Some(s.stats().snapshot());
        }
        other => return Err(format!("unknown mode {other}; use burst or scheduled").into()),
    }

    let wall = t0.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_seconds(ticks)) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let total = ok + failed;
    println!("mode            {}", args.mode);
    println!("target          {url}");
    println!("probes          {total} ({failed} failed)");
    println!("wall seconds    {wall:.2}");
    println!("probes/s        {:.0}", total as f64 / wall);
    println!("cpu seconds     {cpu:.2} (utime+stime of the prober process)");
    println!("cpu ms / probe  {:.3}", cpu * 1000.0 / total.max(1) as f64);
    if let Some(s) = drift {
        println!(
            "drift           p50 {:?}  p99 {:?}  max {:?}  skipped ticks {}",
            s.drift_p50, s.drift_p99, s.drift_max, s.ticks_skipped
        );
    }
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}
