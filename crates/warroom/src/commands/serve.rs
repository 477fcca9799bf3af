//! `warroom serve`.

use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use warroom_domain::notify::RetryPolicy;
use warroom_notify::{
    Adapter, Dispatcher, IncidentTicker,
    adapters::{
        email::{Email, EmailConfig, SmtpTls},
        slack::{Slack, SlackMode},
        webhook::Webhook,
    },
};
use warroom_server::{AppState, Settings};
use warroom_store::{Clock, Store, SystemClock};

use crate::{cli::ServerArgs, config};

/// Opens the store the URL names, running migrations.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(warroom_store_sqlite::connect(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(warroom_store_postgres::connect(url).await?)
    } else {
        anyhow::bail!("database URL must start with sqlite:// or postgres://");
    };
    Ok(store)
}

/// Loads and checks config, applying `--database` on top.
pub fn load_config(server: &ServerArgs) -> anyhow::Result<config::Checked> {
    let mut cfg = config::load(server.config.as_deref())?;
    if let Some(db) = &server.database {
        cfg.database_url = crate::secret::DatabaseUrl(db.clone());
    }
    config::check(cfg)
}

pub async fn serve(server: ServerArgs, listen: Option<String>) -> anyhow::Result<()> {
    init_tracing();
    let mut cfg = config::load(server.config.as_deref())?;
    if let Some(db) = &server.database {
        cfg.database_url = crate::secret::DatabaseUrl(db.clone());
    }
    if let Some(l) = listen {
        cfg.listen = l;
    }
    let checked = config::check(cfg)?;
    let store = open_store(&checked.config.database_url.0)
        .await
        .context("opening the database")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    store
        .sync_configured_services(&checked.services, clock.now())
        .await?;
    let listener = TcpListener::bind(checked.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another process using it? pick another with --listen",
            checked.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let mut settings = settings(&checked);
    if let (Some(s), Some(p)) = (settings.pipeline.as_mut(), &checked.pipeline) {
        s.items = Some(super::pipeline::item_lookup(
            store.clone(),
            clock.clone(),
            p.config.clone(),
        ));
    }
    // Always running, even with no [[monitors]]: monitors can be added through the API.
    let scheduler = {
        let prober =
            warroom_worker::Prober::new().context("building the HTTP client for monitors")?;
        let scheduler =
            warroom_worker::Scheduler::new(prober, warroom_worker::ScheduleConfig::default());
        let stats = scheduler.stats();
        settings.extra_metrics = Some(Arc::new(move || monitor_metrics(&stats.snapshot())));
        scheduler
    };
    let state = AppState::new(store.clone(), clock, settings);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = spawn_workers(
        &checked,
        store.clone(),
        state.clock.clone(),
        &state.settings,
        stop_rx.clone(),
    )?;
    // Alerts are committed before they are acted on: the processor acts on them, woken by each
    // commit, and on any a crash left behind.
    let mut processor_stop = stop_rx;
    workers.push(tokio::spawn(warroom_server::api::alerts::run_processor(
        state.clone(),
        async move {
            let _ = processor_stop.changed().await;
        },
    )));
    workers.extend(spawn_monitors(
        scheduler,
        checked.monitors.clone(),
        checked.window,
        state.clone(),
        stop_tx.subscribe(),
    ));
    let r = &checked.config.retention;
    let retention = warroom_store::Retention {
        raw: time::Duration::hours(r.raw_hours),
        five_minutes: time::Duration::days(r.five_minute_days),
        hours: time::Duration::days(r.hourly_days),
    };
    let (prune_store, prune_clock, mut stop) =
        (store.clone(), state.clock.clone(), stop_tx.subscribe());
    workers.push(tokio::spawn(async move {
        loop {
            match prune_store.prune_checks(prune_clock.now(), retention).await {
                Ok(n) if n > 0 => {
                    tracing::info!(rows = n, "pruned check results past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning check results failed; next hour"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = stop.changed() => return,
            }
        }
    }));
    tracing::info!(database.backend = store.backend(), "ready");
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("warroom listening on http://{addr}");
    warroom_server::serve(listener, state, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    if let Err(e) = store.flush_alert_counts().await {
        tracing::warn!(error = %e, "could not write the last alert repeat counts");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The workers: the outbox dispatcher and the incident clock. They meet the server only
/// through the store, so the same function serves `warroom serve` and `warroom worker`.
fn spawn_workers(
    checked: &config::Checked,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: &Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let defaults = warroom_notify::Throttle::default();
    let throttle = warroom_notify::Throttle {
        max_pages: checked
            .config
            .paging
            .throttle_pages
            .unwrap_or(defaults.max_pages),
        window: checked
            .config
            .paging
            .throttle_window_secs
            .map(time::Duration::seconds)
            .unwrap_or(defaults.window),
    };
    let dispatcher = dispatcher(store.clone(), clock.clone(), checked)?.with_throttle(throttle);
    let mut ticker = IncidentTicker::new(
        store.clone(),
        clock.clone(),
        settings.policies.clone(),
        settings.paging.clone(),
        settings.routing.clone(),
    );
    if let Some(links) = &settings.ack_links {
        ticker = ticker.with_decorator(Arc::new(warroom_server::ack_link::decorator(
            links.clone(),
            clock.clone(),
        )));
    }
    let ticker_stop = stop.clone();
    let mut extra = Vec::new();
    if let Some(p) = &checked.pipeline {
        // Runs are claimed from the store, so any number of hosts can run this loop.
        let runner = warroom_pipeline::Runner::new(
            store.clone(),
            clock.clone(),
            p.config.clone(),
            super::pipeline::runner_name(),
        );
        let (sweep, pipeline_stop) = (p.sweep, stop.clone());
        extra.push(tokio::spawn(async move {
            warroom_pipeline::run_worker(
                runner,
                std::time::Duration::from_secs(2),
                sweep,
                pipeline_stop,
            )
            .await
        }));
    }
    let mut workers = vec![
        tokio::spawn(async move {
            dispatcher
                .run(std::time::Duration::from_secs(1), stop)
                .await
        }),
        // Twice a second: the runbook's deadlines are minutes, and this keeps them to the second.
        tokio::spawn(async move {
            ticker
                .run(std::time::Duration::from_millis(500), ticker_stop)
                .await
        }),
    ];
    workers.extend(extra);
    Ok(workers)
}

/// Runs the monitors and turns their DOWN/UP transitions into alerts, so checks and
/// Prometheus share one path into incidents.
fn spawn_monitors(
    scheduler: warroom_worker::Scheduler<warroom_worker::Prober>,
    monitors: Vec<warroom_domain::monitor::Monitor>,
    window: warroom_domain::window::WindowConfig,
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let mut board = warroom_domain::detection::MonitorBoard::with_window(&monitors, window);
    let mut assessed = super::monitor_set::Assessed::default();
    let count = monitors.len();
    let now = state.clock.now();
    let mut sched_stop = stop.clone();
    let (set_tx, set_rx) = tokio::sync::watch::channel(monitors.clone());
    let config_monitors = monitors;
    let mut reloader = super::monitor_set::Reloader::default();
    let mut reload = tokio::time::interval(super::monitor_set::RELOAD_EVERY);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let run = tokio::spawn(async move {
        scheduler
            .run_set(set_rx, tx, now, async move {
                let _ = sched_stop.changed().await;
            })
            .await
    });
    let bridge = tokio::spawn(async move {
        // The whole set (API monitors too) first, so that every monitor resumes its state;
        // until the set and the alerts could be read, every reload tries again.
        let (mut loaded, mut resumed) = (false, false);
        if let Some(set) = reloader.poll(state.store.as_ref(), &config_monitors).await {
            board.replace_monitors(&set, state.clock.now());
            let _ = set_tx.send(set);
            loaded = true;
            super::monitor_set::refill(&mut board, &state).await;
            resumed = super::monitor_set::resume(&mut board, &state).await;
        }
        // Results are written once a second in one transaction: at 10,000 monitors that is one
        // commit a second instead of hundreds.
        let mut batch: Vec<warroom_store::CheckRecord> = Vec::new();
        let mut flush = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = flush.tick() => {
                    if !batch.is_empty() {
                        let checks = std::mem::take(&mut batch);
                        if let Err(e) = state.store.record_checks(&checks).await {
                            tracing::warn!(error = %e, checks = checks.len(), "could not store check results");
                        }
                    }
                }
                _ = reload.tick() => {
                    if let Some(set) = reloader.poll(state.store.as_ref(), &config_monitors).await {
                        let resolved = board.replace_monitors(&set, state.clock.now());
                        let _ = set_tx.send(set);
                        if !loaded {
                            loaded = true;
                            super::monitor_set::refill(&mut board, &state).await;
                        }
                        if !resolved.is_empty()
                            && let Err(e) = warroom_server::api::alerts::ingest(&state, resolved).await
                        {
                            tracing::error!(error = ?e, "could not resolve the alerts of removed monitors");
                        }
                    }
                    if loaded && !resumed {
                        resumed = super::monitor_set::resume(&mut board, &state).await;
                    }
                }
                event = rx.recv() => {
                    let Some(event) = event else { return };
                    batch.push(warroom_store::CheckRecord {
                        monitor: event.monitor_id.clone(),
                        at: event.started_at,
                        ok: event.result.outcome.is_success(),
                        latency_ms: i64::try_from(event.result.latency.as_millis()).unwrap_or(i64::MAX),
                        failure: event.result.failure,
                    });
                    board.record(&event.monitor_id, super::monitor_set::sample(&event));
                    if let Some(alert) = super::monitor_set::cert_warning(&mut board, &event, state.clock.now())
                        && let Err(e) = warroom_server::api::alerts::ingest(&state, vec![alert]).await
                    {
                        tracing::error!(error = ?e, "could not record a certificate warning");
                    }
                    // Before this event's transition: a fresh DOWN is assessed from the next
                    // result on, after its alert has opened or joined the incident.
                    assessed.review(&board, &event, &state).await;
                    if let Some(t) = event.transition {
                        let detail = super::monitor_set::detail(&event);
                        tracing::info!(monitor.id = %event.monitor_id, from = ?t.from, to = ?t.to, "monitor changed state");
                        if let Some(alert) = board.transition(&event.monitor_id, t.to, &detail, state.clock.now())
                            && let Err(e) = warroom_server::api::alerts::ingest(&state, vec![alert]).await
                        {
                            tracing::error!(error = ?e, "could not record a monitor's alert");
                        }
                    }
                    // After the transition: a monitor that just went DOWN is no longer degraded.
                    if let Some(alert) = board.degradation(&event.monitor_id, state.clock.now()) {
                        tracing::info!(monitor.id = %event.monitor_id, firing = alert.ends_at.is_none(), "monitor degradation changed");
                        if let Err(e) = warroom_server::api::alerts::ingest(&state, vec![alert]).await {
                            tracing::error!(error = ?e, "could not record a monitor's degradation");
                        }
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
    tracing::info!(monitors = count, "monitors running");
    vec![run, bridge]
}

/// The probe scheduler's counters in the Prometheus text format.
fn monitor_metrics(s: &warroom_worker::StatsSnapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for l in lines {
            out.push_str(&format!("{name}{l}\n"));
        }
    };
    metric(
        "warroom_checks_total",
        "counter",
        "Checks run by monitors.",
        vec![format!(" {}", s.checks_run)],
    );
    metric(
        "warroom_checks_failed_total",
        "counter",
        "Checks that failed.",
        vec![format!(" {}", s.checks_failed)],
    );
    metric(
        "warroom_check_ticks_skipped_total",
        "counter",
        "Planned checks dropped because a monitor fell an interval behind.",
        vec![format!(" {}", s.ticks_skipped)],
    );
    let mut latency: Vec<String> = warroom_worker::LATENCY_BUCKETS
        .iter()
        .zip(s.latency_buckets)
        .map(|(le, n)| format!("_bucket{{le=\"{le}\"}} {n}"))
        .collect();
    latency.push(format!("_bucket{{le=\"+Inf\"}} {}", s.latency_count));
    latency.push(format!("_sum {}", s.latency_sum.as_secs_f64()));
    latency.push(format!("_count {}", s.latency_count));
    metric(
        "warroom_check_duration_seconds",
        "histogram",
        "How long checks took (timeouts included).",
        latency,
    );
    metric(
        "warroom_monitors_scheduled",
        "gauge",
        "Monitors being checked now (config and API ones).",
        vec![format!(" {}", s.scheduled)],
    );
    metric(
        "warroom_checks_in_flight",
        "gauge",
        "Checks running now.",
        vec![format!(" {}", s.in_flight)],
    );
    metric(
        "warroom_check_drift_seconds",
        "summary",
        "Scheduling drift (actual minus planned start) over recent checks.",
        vec![
            format!("{{quantile=\"0.5\"}} {}", s.drift_p50.as_secs_f64()),
            format!("{{quantile=\"0.99\"}} {}", s.drift_p99.as_secs_f64()),
        ],
    );
    out
}

/// `warroom worker`: only the workers, for scaling out next to `serve` on PostgreSQL.
pub async fn worker(server: ServerArgs) -> anyhow::Result<()> {
    init_tracing();
    let checked = load_config(&server)?;
    let store = open_store(&checked.config.database_url.0)
        .await
        .context("opening the database")?;
    if store.backend() == "sqlite" {
        tracing::warn!(
            "a separate worker on SQLite must share the file with serve; PostgreSQL is the supported way to scale out"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let settings = settings(&checked);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = spawn_workers(&checked, store.clone(), clock, &settings, stop_rx)?;
    tracing::info!(database.backend = store.backend(), "worker running");
    println!("warroom worker running");
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    store.close().await;
    Ok(())
}

fn settings(checked: &config::Checked) -> Settings {
    Settings {
        extra_metrics: None,
        monitors: checked.monitors.clone(),
        alerts: checked.alerts.clone(),
        public_url: checked.config.public_url.clone(),
        policies: checked.policies.clone(),
        strict_services: checked.config.strict_services,
        body_limit: checked.config.body_limit_bytes,
        routing: checked.config.routing.clone(),
        postmortems: checked.config.postmortems.as_ref().map(|p| {
            warroom_server::postmortems::PostmortemSettings {
                dir: p.dir.clone(),
                git_commit: p.git_commit,
                draft_on_resolve: p.draft_on_resolve,
            }
        }),
        pipeline: checked
            .pipeline
            .as_ref()
            .map(|p| warroom_server::pipeline::PipelineSettings {
                repo_key: p.config.repo_key.clone(),
                branch: p.config.branch.clone(),
                postmortems_dir: p.config.postmortems_dir.clone(),
                repository: p.repository.clone(),
                webhook_secret: p
                    .webhook_secret
                    .as_ref()
                    .map(|s| s.expose().as_bytes().to_vec()),
                // Needs the store; `serve` sets it.
                items: None,
            }),
        paging: Arc::new(checked.paging.clone()),
        ack_links: checked.ack_links.as_ref().map(|(url, key)| {
            Arc::new(warroom_server::ack_link::AckLinks::new(
                url,
                key.expose().as_bytes(),
            ))
        }),
    }
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// One adapter per configured channel, sharing one HTTP client so connections are reused.
fn dispatcher(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    checked: &config::Checked,
) -> anyhow::Result<Dispatcher> {
    let client = reqwest::Client::builder()
        .build()
        .context("building the HTTP client for notifications")?;
    let people = &checked.config.people;
    let slack_users: HashMap<String, String> = people
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.slack_user.clone()?)))
        .collect();
    let emails: HashMap<String, String> = people
        .iter()
        .filter_map(|p| Some((p.name.clone(), p.email.clone()?)))
        .collect();
    let mut adapters: HashMap<String, Arc<dyn Adapter>> = HashMap::new();
    for c in &checked.channels {
        let adapter: Arc<dyn Adapter> = match &c.target {
            config::ChannelTarget::Webhook { url, secret } => Arc::new(Webhook::new(
                url.clone(),
                secret.expose().as_bytes().to_vec(),
                c.timeout,
                client.clone(),
            )),
            config::ChannelTarget::SlackWebhook { url } => Arc::new(Slack::new(
                SlackMode::Webhook {
                    url: url.expose().to_owned(),
                },
                store.clone(),
                c.timeout,
                client.clone(),
            )),
            config::ChannelTarget::SlackApi {
                token,
                api_url,
                channel,
            } => Arc::new(Slack::new(
                SlackMode::Api {
                    token: token.expose().to_owned(),
                    api_url: api_url.clone(),
                    fallback_channel: channel.clone(),
                    users: slack_users.clone(),
                },
                store.clone(),
                c.timeout,
                client.clone(),
            )),
            config::ChannelTarget::Email {
                host,
                port,
                tls,
                ca_pem,
                credentials,
                from,
                to,
            } => Arc::new(
                Email::new(EmailConfig {
                    host: host.clone(),
                    port: *port,
                    tls: match tls {
                        config::TlsMode::Starttls => SmtpTls::Starttls,
                        config::TlsMode::Tls => SmtpTls::Tls,
                        config::TlsMode::None => SmtpTls::None,
                    },
                    ca_pem: ca_pem.clone(),
                    credentials: credentials
                        .as_ref()
                        .map(|(u, p)| (u.clone(), p.expose().to_owned())),
                    from: from.clone(),
                    to: to.clone(),
                    people: emails.clone(),
                    timeout: c.timeout,
                })
                .map_err(|e| anyhow::anyhow!("channel `{}`: {e}", c.name))?,
            ),
        };
        adapters.insert(c.name.clone(), adapter);
    }
    Ok(Dispatcher::new(
        store,
        clock,
        adapters,
        RetryPolicy::default(),
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
