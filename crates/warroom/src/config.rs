//! Typed, layered configuration: defaults, then the TOML file, then `WARROOM_*` environment
//! variables, then command-line flags.

use crate::secret::{DatabaseUrl, Secret};
use anyhow::{Context, bail};
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, net::SocketAddr, path::Path};
use warroom_domain::notify::Routing;
use warroom_domain::{
    ServiceSlug, Severity, SeverityPolicies, service::Service, severity::SeverityOverride,
};

/// The example shipped in the repository; `warroom config example` prints it.
pub const EXAMPLE: &str = include_str!("../../../warroom.example.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub database_url: DatabaseUrl,
    pub strict_services: bool,
    pub body_limit_bytes: usize,
    pub services: Vec<ServiceConfig>,
    pub severity: BTreeMap<String, SeverityOverride>,
    pub channels: Vec<ChannelConfig>,
    pub routing: Routing,
    pub postmortems: Option<PostmortemConfig>,
    pub people: Vec<PersonConfig>,
    pub schedules: Vec<warroom_domain::oncall::Schedule>,
    pub escalation_policies: Vec<warroom_domain::escalation::EscalationPolicy>,
    pub paging: PagingSection,
    /// Where people reach this warroom (for links in notifications).
    pub public_url: Option<String>,
    /// Environment variable holding the secret that signs one-click acknowledgement links.
    pub ack_link_secret_env: Option<String>,
    pub alerts: AlertsSection,
    /// Health checks run by warroom itself.
    pub monitors: Vec<warroom_domain::monitor::MonitorSpec>,
    /// Silences and maintenance windows.
    pub silences: Vec<SilenceConfig>,
    /// How long check results are kept.
    pub retention: RetentionSection,
    /// Follow-up automation: implement safe post-mortem follow-ups, push, publish.
    pub pipeline: Option<PipelineSection>,
    /// The sliding window monitors' signals are derived over.
    pub detection: DetectionSection,
    /// Alert senders with their own secret (instead of an API token).
    pub alert_sources: Vec<AlertSourceConfig>,
}

/// The `[pipeline]` section. Paths and commands are checked by `check`, with keys named.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// A clone of the repository the pipeline owns.
    pub repo: std::path::PathBuf,
    /// The key runs are stored under; defaults to the repository path.
    pub repo_key: Option<String>,
    #[serde(default = "default_remote")]
    pub remote: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default = "default_pm_dir")]
    pub postmortems_dir: String,
    #[serde(default = "warroom_pipeline::default_agent")]
    pub agent: Vec<String>,
    pub plan: Option<Vec<String>>,
    pub apply: Option<Vec<String>>,
    #[serde(default = "default_protected")]
    pub protected_paths: Vec<String>,
    #[serde(default = "default_budget")]
    pub budget_usd: f64,
    #[serde(default = "default_diff_lines")]
    pub max_diff_lines: u64,
    #[serde(default = "default_item_timeout")]
    pub item_timeout_secs: u64,
    #[serde(default = "default_command_timeout")]
    pub command_timeout_secs: u64,
    #[serde(default = "default_run_timeout")]
    pub run_timeout_secs: u64,
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// Seconds between sweeps that queue a run without a webhook; 0 turns them off.
    #[serde(default = "default_sweep")]
    pub sweep_secs: u64,
    pub work_dir: Option<std::path::PathBuf>,
    pub commit_url: Option<String>,
    pub site_dir: Option<std::path::PathBuf>,
    /// A branch of the remote the site is committed to (e.g. `gh-pages`).
    pub site_branch: Option<String>,
    /// Channel names (from [[channels]]) for run summaries.
    #[serde(default)]
    pub notify: Vec<String>,
    /// `owner/name` that webhook payloads must name; any when unset.
    pub repository: Option<String>,
    pub webhook_secret_env: Option<String>,
    pub webhook_secret_file: Option<std::path::PathBuf>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// Variables (`NAME` or `PREFIX*`) the agent, plan and apply commands inherit.
    #[serde(default = "warroom_pipeline::default_pass_env")]
    pub pass_env: Vec<String>,
}

fn default_remote() -> String {
    "origin".into()
}
fn default_branch() -> String {
    "master".into()
}
fn default_pm_dir() -> String {
    "docs/post-mortems".into()
}
fn default_protected() -> Vec<String> {
    warroom_pipeline::guard::DEFAULT_PROTECTED
        .map(String::from)
        .to_vec()
}
fn default_budget() -> f64 {
    5.0
}
fn default_diff_lines() -> u64 {
    500
}
fn default_item_timeout() -> u64 {
    600
}
fn default_command_timeout() -> u64 {
    300
}
fn default_run_timeout() -> u64 {
    3600
}
fn default_lease() -> u64 {
    120
}
fn default_sweep() -> u64 {
    3600
}

/// The pipeline, validated.
#[derive(Debug, Clone)]
pub struct CheckedPipeline {
    pub config: warroom_pipeline::PipelineConfig,
    /// Verifies `POST /hooks/git`; without it the hook answers 503.
    pub webhook_secret: Option<Secret>,
    pub repository: Option<String>,
    pub sweep: Option<std::time::Duration>,
}

/// An Alertmanager (or Prometheus) that authenticates to the alert endpoints with its own
/// secret, so it holds a credential that can only deliver alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSourceConfig {
    /// Recorded on the alerts it delivers.
    pub name: String,
    pub secret_env: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
}

/// Shortest source secret accepted: it is a bearer credential, so guessing must be hopeless.
const MIN_SOURCE_SECRET_LEN: usize = 16;

fn check_alert_sources(
    sources: &[AlertSourceConfig],
    problems: &mut Vec<String>,
) -> Vec<warroom_server::api::alert_auth::AlertSource> {
    let mut out = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let key = format!("alert_sources[{i}]");
        if s.name.is_empty()
            || !s
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            problems.push(format!(
                "{key}.name: `{}` is not a source name; use letters, digits, `-`, `_` or `.`, e.g. `alertmanager-prod`",
                s.name
            ));
        } else if sources[..i].iter().any(|x| x.name == s.name) {
            problems.push(format!("{key}.name: `{}` is used twice", s.name));
        }
        let secret = match read_secret(&key, "secret", &s.secret_env, &s.secret_file, problems) {
            Ok(Some(secret)) => Some((
                secret,
                if s.secret_env.is_some() {
                    "secret_env"
                } else {
                    "secret_file"
                },
            )),
            Ok(None) => {
                problems.push(format!(
                    "{key}: give exactly one of secret_env or secret_file"
                ));
                None
            }
            Err(()) => None,
        };
        if let Some((secret, field)) = secret {
            if secret.expose().chars().count() < MIN_SOURCE_SECRET_LEN {
                problems.push(format!(
                    "{key}.{field}: the secret must be at least {MIN_SOURCE_SECRET_LEN} characters; generate one with `openssl rand -hex 32`"
                ));
            } else {
                out.push(warroom_server::api::alert_auth::AlertSource::new(
                    s.name.clone(),
                    secret.expose(),
                ));
            }
        }
    }
    out
}

/// The sliding window of the decision tree's signals from monitors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSection {
    /// How far back failing share, recovering and current latency look.
    pub window_secs: i64,
    /// How far before the window the latency baseline looks.
    pub baseline_secs: i64,
}

impl Default for DetectionSection {
    fn default() -> Self {
        let d = warroom_domain::window::WindowConfig::default();
        DetectionSection {
            window_secs: d.window.whole_seconds(),
            baseline_secs: d.baseline.whole_seconds(),
        }
    }
}

fn check_detection(
    d: &DetectionSection,
    problems: &mut Vec<String>,
) -> warroom_domain::window::WindowConfig {
    // Two checks per half-window at the fastest interval (1 s) is the least that shows a trend.
    if d.window_secs < 4 {
        problems.push(format!(
            "detection.window_secs: {} is too short; use at least 4 (the window is halved to see a trend)",
            d.window_secs
        ));
    }
    if d.baseline_secs < 60 {
        problems.push(format!(
            "detection.baseline_secs: {} is too short for a latency baseline; use at least 60",
            d.baseline_secs
        ));
    }
    warroom_domain::window::WindowConfig {
        window: time::Duration::seconds(d.window_secs.max(4)),
        baseline: time::Duration::seconds(d.baseline_secs.max(60)),
        ..Default::default()
    }
}

/// Retention of check results (raw, then 5-minute and hourly rollups).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    pub raw_hours: i64,
    pub five_minute_days: i64,
    pub hourly_days: i64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        let d = warroom_store::Retention::default();
        RetentionSection {
            raw_hours: d.raw.whole_hours(),
            five_minute_days: d.five_minutes.whole_days(),
            hourly_days: d.hours.whole_days(),
        }
    }
}

/// A silence or maintenance window, with Alertmanager's matchers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    pub comment: String,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    pub matchers: Vec<ConfigMatcher>,
}

/// A matcher in the config: Alertmanager's text (`"service=payments-db"`, `"env=~prod|dr"`),
/// as its own config files write them, or the API's table (`{ name = "service", value = ... }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ConfigMatcher(pub warroom_domain::alert::MatcherSpec);

impl<'de> Deserialize<'de> for ConfigMatcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = ConfigMatcher;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a matcher: \"name=value\" (or !=, =~, !~), or { name = ..., value = ... }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ConfigMatcher, E> {
                warroom_domain::alert::MatcherSpec::parse(v)
                    .map(ConfigMatcher)
                    .map_err(|e| match e {
                        warroom_domain::DomainError::Invalid { message, .. } => E::custom(message),
                        other => E::custom(other),
                    })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<ConfigMatcher, A::Error> {
                warroom_domain::alert::MatcherSpec::deserialize(
                    serde::de::value::MapAccessDeserializer::new(m),
                )
                .map(ConfigMatcher)
            }
        }
        d.deserialize_any(Either)
    }
}

/// How alerts from Prometheus/Alertmanager become incidents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Labels that group alerts into one incident; the first present wins.
    pub group_by: Vec<String>,
    /// Grouping label when none of `group_by` is present.
    pub fallback_label: String,
    /// The label carrying severity.
    pub severity_label: String,
    /// Label value → severity 1-4, replacing the default table when given.
    pub severity_values: Option<BTreeMap<String, i64>>,
    /// Severity of alerts without a mapped severity label.
    pub default_severity: i64,
    /// Declare automatically from this severity up (4 = always); less severe groups are only stored.
    pub auto_declare_from: i64,
    /// An alert posted to `/api/v2/alerts` without `endsAt` resolves this long after it was
    /// last sent (Alertmanager's `resolve_timeout`).
    pub resolve_timeout_secs: i64,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            group_by: vec!["service".into()],
            fallback_label: "alertname".into(),
            severity_label: "severity".into(),
            severity_values: None,
            default_severity: 3,
            auto_declare_from: 4,
            resolve_timeout_secs: warroom_domain::alert::DEFAULT_RESOLVE_TIMEOUT.whole_seconds(),
        }
    }
}

/// A person who can be paged, and the channels that reach them, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    pub name: String,
    /// Channel names, at once, or `{ channel = "...", after_secs = 60 }` for later rules.
    #[serde(default)]
    pub contacts: Vec<warroom_domain::escalation::Contact>,
    /// Their Slack user id (`U…`): invited to incident channels, mentioned in pages.
    pub slack_user: Option<String>,
    /// Their address: email channels send their pages and reminders there.
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingSection {
    /// The escalation policy paging severities use.
    pub policy: Option<String>,
    /// At most this many pages to one person per window (default 10).
    pub throttle_pages: Option<i64>,
    /// The throttle's window in seconds (default 600).
    pub throttle_window_secs: Option<i64>,
}

/// Where post-mortems are written and published from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmortemConfig {
    pub dir: std::path::PathBuf,
    #[serde(default = "yes")]
    pub git_commit: bool,
    #[serde(default)]
    pub draft_on_resolve: bool,
}

fn yes() -> bool {
    true
}

/// A notification channel. Secrets never sit in the file: they come from an environment
/// variable or a file (e.g. a mounted Kubernetes secret). One flat table for every kind, so
/// that a key given to the wrong kind is named in the error rather than silently ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// webhook: the endpoint.
    pub url: Option<String>,
    /// webhook: the HMAC secret.
    pub secret_env: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
    /// slack: an incoming webhook URL (a secret) ...
    pub webhook_url_env: Option<String>,
    pub webhook_url_file: Option<std::path::PathBuf>,
    /// ... or a bot token for the Web API.
    pub token_env: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
    /// slack: the Web API base URL.
    pub api_url: Option<String>,
    /// slack: where messages without an incident go.
    pub channel: Option<String>,
    /// email: the SMTP server.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    /// email: a PEM CA certificate to trust besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Email,
}

impl ChannelKind {
    fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
        }
    }
}

/// `tls` of an email channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    Starttls,
    Tls,
    None,
}

/// A channel ready to build an adapter from.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub timeout: std::time::Duration,
    pub target: ChannelTarget,
}

/// Where a channel delivers, with its secrets read.
#[derive(Debug, Clone)]
pub enum ChannelTarget {
    Webhook {
        url: String,
        secret: Secret,
    },
    SlackWebhook {
        url: Secret,
    },
    SlackApi {
        token: Secret,
        api_url: String,
        channel: Option<String>,
    },
    Email {
        host: String,
        port: u16,
        tls: TlsMode,
        ca_pem: Option<Vec<u8>>,
        credentials: Option<(String, Secret)>,
        from: String,
        to: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub slug: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    #[serde(default)]
    pub public: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: DatabaseUrl("sqlite://warroom.db".into()),
            strict_services: false,
            body_limit_bytes: 1024 * 1024,
            services: vec![],
            severity: BTreeMap::new(),
            channels: vec![],
            routing: Routing::default(),
            postmortems: None,
            people: vec![],
            schedules: vec![],
            escalation_policies: vec![],
            paging: PagingSection::default(),
            public_url: None,
            ack_link_secret_env: None,
            alerts: AlertsSection::default(),
            monitors: vec![],
            silences: vec![],
            retention: RetentionSection::default(),
            pipeline: None,
            detection: DetectionSection::default(),
            alert_sources: vec![],
        }
    }
}

/// Everything validated, ready to use.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub listen: SocketAddr,
    pub services: Vec<Service>,
    pub policies: SeverityPolicies,
    pub channels: Vec<ChannelSpec>,
    pub paging: warroom_domain::escalation::PagingConfig,
    /// Signing key and base URL for acknowledgement links, when configured.
    pub ack_links: Option<(String, Secret)>,
    /// Alert handling.
    pub alerts: warroom_server::api::alerts::AlertSettings,
    /// Validated monitors.
    pub monitors: Vec<warroom_domain::monitor::Monitor>,
    /// Follow-up automation, when configured.
    pub pipeline: Option<CheckedPipeline>,
    /// The monitors' signal window.
    pub window: warroom_domain::window::WindowConfig,
}

/// Loads from the file (if any) and the environment. A named file that does not exist is an
/// error, not silently skipped: a typo in `--config` must not start warroom on defaults.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(p) = path {
        if !p.is_file() {
            bail!(
                "config file {} does not exist; pass an existing file or omit --config",
                p.display()
            );
        }
        fig = fig.merge(Toml::file_exact(p));
    }
    fig = fig.merge(Env::prefixed("WARROOM_").only(&[
        "listen",
        "database_url",
        "strict_services",
        "body_limit_bytes",
    ]));
    fig.extract::<Config>().map_err(|e| {
        let mut msgs: Vec<String> = e.into_iter().map(|e| describe(&e)).collect();
        msgs.dedup();
        anyhow::anyhow!(msgs.join("; "))
    })
}

/// Tables of the config whose keys are names the user chose, possibly digits
/// (`[severity.1]`): their keys stay dotted.
const KEYED_TABLES: &[&str] = &["severity", "severity_values", "headers", "env"];

/// A key path as the semantic checks write it (`silences[0].matchers[1]`): figment writes a
/// list's place as a dotted key (`silences.0.matchers.1`), which reads like a table key.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        let in_table = i > 0 && KEYED_TABLES.contains(&path[i - 1].as_str());
        if i > 0 && !in_table && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn describe(e: &figment::Error) -> String {
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", key_path(&e.path))
    };
    let source = match &e.metadata {
        Some(m) => match &m.source {
            Some(s) => format!(" (in {s})"),
            None => format!(" (from {})", m.name),
        },
        None => String::new(),
    };
    format!("{key}{}{source}", e.kind)
}

/// Semantic checks, each naming the key.
pub fn check(config: Config) -> anyhow::Result<Checked> {
    let mut problems = Vec::new();
    let listen = match config.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(format!(
                "listen: `{}` is not an address; write host:port such as 127.0.0.1:8080",
                config.listen
            ));
            None
        }
    };
    let url = &config.database_url.0;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        problems.push("database_url: must start with sqlite:// or postgres://".to_owned());
    }
    if config.body_limit_bytes < 1024 {
        problems.push(format!(
            "body_limit_bytes: {} is too small; use at least 1024",
            config.body_limit_bytes
        ));
    }
    let mut services = Vec::new();
    for (i, s) in config.services.iter().enumerate() {
        match ServiceSlug::parse_field(&s.slug, &format!("services[{i}].slug")) {
            Ok(slug) => {
                if services.iter().any(|x: &Service| x.slug == slug) {
                    problems.push(format!("services[{i}].slug: `{slug}` is listed twice"));
                }
                services.push(Service {
                    name: s
                        .name
                        .clone()
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| slug.default_display_name()),
                    slug,
                    owner: s.owner.clone(),
                    public: s.public,
                })
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let mut policies = SeverityPolicies::default();
    for (level, o) in &config.severity {
        match level
            .parse::<i64>()
            .ok()
            .and_then(|l| Severity::from_level(l).ok())
        {
            Some(sev) => {
                if let Err(e) = policies.apply_override(sev, o) {
                    problems.push(e.to_string());
                }
            }
            None => problems.push(format!(
                "severity.{level}: not a severity level; use [severity.1] to [severity.4]"
            )),
        }
    }
    let channels = check_channels(&config, &mut problems);
    let paging = check_paging(&config, &mut problems);
    for (key, v) in [
        ("raw_hours", config.retention.raw_hours),
        ("five_minute_days", config.retention.five_minute_days),
        ("hourly_days", config.retention.hourly_days),
    ] {
        if v < 1 {
            problems.push(format!("retention.{key}: must be at least 1"));
        }
    }
    let window = check_detection(&config.detection, &mut problems);
    let mut alerts = check_alerts(&config.alerts, &mut problems);
    alerts.silences = check_silences(&config.silences, &mut problems);
    alerts.sources = check_alert_sources(&config.alert_sources, &mut problems);
    let monitors = match warroom_domain::monitor::validate_monitors(&config.monitors) {
        Ok(m) => m,
        Err(e) => {
            problems.push(e.to_string());
            vec![]
        }
    };
    let ack_links = match (&config.public_url, &config.ack_link_secret_env) {
        (None, None) => None,
        (Some(url), Some(var)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("public_url: `{url}` is not an http(s) URL"));
            }
            match std::env::var(var) {
                Ok(v) if v.len() >= 16 => Some((url.clone(), Secret::from(v))),
                Ok(_) => {
                    problems.push(format!(
                        "ack_link_secret_env: {var} must hold at least 16 characters"
                    ));
                    None
                }
                Err(_) => {
                    problems.push(format!(
                        "ack_link_secret_env: environment variable {var} is not set"
                    ));
                    None
                }
            }
        }
        (Some(_), None) => None,
        (None, Some(_)) => {
            problems
                .push("ack_link_secret_env: acknowledgement links also need public_url".to_owned());
            None
        }
    };
    let pipeline = config
        .pipeline
        .as_ref()
        .and_then(|p| check_pipeline(p, &config, &mut problems));
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(Checked {
        pipeline,
        listen: listen.context("listen")?,
        services,
        policies,
        channels,
        paging,
        ack_links,
        alerts,
        monitors,
        window,
        config,
    })
}

fn check_pipeline(
    p: &PipelineSection,
    config: &Config,
    problems: &mut Vec<String>,
) -> Option<CheckedPipeline> {
    use std::time::Duration;
    let mut c = warroom_pipeline::PipelineConfig::new(p.repo.clone());
    if !p.repo.join(".git").exists() {
        problems.push(format!(
            "pipeline.repo: {} is not a git clone; clone the repository there first (git clone URL {})",
            p.repo.display(),
            p.repo.display()
        ));
    }
    if let Some(k) = &p.repo_key {
        c.repo_key = k.clone();
    }
    c.remote = p.remote.clone();
    c.branch = p.branch.clone();
    c.postmortems_dir = p.postmortems_dir.trim_matches('/').to_string();
    c.agent = p.agent.clone();
    c.plan = p.plan.clone();
    c.apply = p.apply.clone();
    c.protected_paths = p.protected_paths.clone();
    c.budget_usd = p.budget_usd;
    c.max_diff_lines = p.max_diff_lines;
    c.item_timeout = Duration::from_secs(p.item_timeout_secs);
    c.command_timeout = Duration::from_secs(p.command_timeout_secs);
    c.run_timeout = Duration::from_secs(p.run_timeout_secs);
    c.lease = Duration::from_secs(p.lease_secs);
    if let Some(w) = &p.work_dir {
        c.work_dir = w.clone();
    }
    c.commit_url = p.commit_url.clone();
    c.site_dir = p.site_dir.clone();
    c.site_branch = p.site_branch.clone();
    c.notify_channels = p.notify.clone();
    c.pass_env = p.pass_env.clone();
    if let Some(n) = &p.author_name {
        c.author_name = n.clone();
    }
    if let Some(e) = &p.author_email {
        c.author_email = e.clone();
    }
    problems.extend(c.problems());
    let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    for (i, n) in p.notify.iter().enumerate() {
        if !known.contains(&n.as_str()) {
            problems.push(format!("pipeline.notify[{i}]: no channel named `{n}`"));
        }
    }
    let webhook_secret = read_secret(
        "pipeline",
        "webhook_secret",
        &p.webhook_secret_env,
        &p.webhook_secret_file,
        problems,
    )
    .ok()
    .flatten()
    .filter(|secret| {
        let long_enough = secret.expose().chars().count() >= 16;
        if !long_enough {
            let field = if p.webhook_secret_env.is_some() { "webhook_secret_env" } else { "webhook_secret_file" };
            problems.push(format!(
                "pipeline.{field}: the secret must hold at least 16 characters; generate one with `openssl rand -hex 32`"
            ));
        }
        long_enough
    });
    Some(CheckedPipeline {
        config: c,
        webhook_secret,
        repository: p.repository.clone(),
        sweep: (p.sweep_secs > 0).then(|| Duration::from_secs(p.sweep_secs)),
    })
}

fn check_silences(
    silences: &[SilenceConfig],
    problems: &mut Vec<String>,
) -> Vec<warroom_domain::alert::Silence> {
    use time::format_description::well_known::Rfc3339;
    let mut out = Vec::new();
    for (i, s) in silences.iter().enumerate() {
        let key = format!("silences[{i}]");
        let at = |field: &str, raw: &str, problems: &mut Vec<String>| {
            time::OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|_| problems.push(format!("{key}.{field}: `{raw}` is not an RFC 3339 time; write e.g. 2026-01-12T22:00:00Z")))
                .ok()
        };
        let (start, end) = (
            at("starts_at", &s.starts_at, problems),
            at("ends_at", &s.ends_at, problems),
        );
        let matchers = warroom_domain::alert::Matchers::from_specs(
            &s.matchers.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
            &format!("{key}.matchers"),
        );
        match (start, end, matchers) {
            (Some(a), Some(b), Ok(m)) if a < b => out.push(warroom_domain::alert::Silence {
                id: format!("config-{}", i + 1),
                matchers: m,
                starts_at: a,
                ends_at: b,
                comment: s.comment.clone(),
            }),
            (Some(_), Some(_), Ok(_)) => {
                problems.push(format!("{key}.ends_at: must be after starts_at"))
            }
            (_, _, Err(e)) => problems.push(e.to_string()),
            _ => {}
        }
    }
    out
}

fn check_alerts(
    a: &AlertsSection,
    problems: &mut Vec<String>,
) -> warroom_server::api::alerts::AlertSettings {
    use warroom_domain::alert::{Grouping, SeverityMapping, is_valid_label_name};
    let mut sev = |key: &str, v: i64| match Severity::from_level(v) {
        Ok(s) => s,
        Err(_) => {
            problems.push(format!("alerts.{key}: {v} is not a severity; use 1-4"));
            Severity::Sev3
        }
    };
    let default_severity = sev("default_severity", a.default_severity);
    let auto_declare_from = sev("auto_declare_from", a.auto_declare_from);
    let mut mapping = SeverityMapping {
        label: a.severity_label.clone(),
        ..SeverityMapping::default()
    };
    if let Some(values) = &a.severity_values {
        mapping.values = values
            .iter()
            .map(|(k, v)| (k.to_lowercase(), sev(&format!("severity_values.{k}"), *v)))
            .collect();
    }
    for (i, l) in a.group_by.iter().enumerate() {
        if !is_valid_label_name(l) {
            problems.push(format!("alerts.group_by[{i}]: `{l}` is not a label name"));
        }
    }
    for (key, l) in [
        ("fallback_label", &a.fallback_label),
        ("severity_label", &a.severity_label),
    ] {
        if !is_valid_label_name(l) {
            problems.push(format!("alerts.{key}: `{l}` is not a label name"));
        }
    }
    // Alertmanager takes any positive duration; under a second would resolve an alert between
    // two sends of any sender, and more than a day keeps an alert whose sender is gone firing
    // past any incident it belonged to.
    if !(1..=86_400).contains(&a.resolve_timeout_secs) {
        problems.push(format!(
            "alerts.resolve_timeout_secs: {} is out of range; use 1 to 86400 (Alertmanager's default is 300)",
            a.resolve_timeout_secs
        ));
    }
    warroom_server::api::alerts::AlertSettings {
        resolve_timeout: time::Duration::seconds(a.resolve_timeout_secs.clamp(1, 86_400)),
        grouping: Grouping {
            by: a.group_by.clone(),
            fallback: a.fallback_label.clone(),
        },
        mapping,
        default_severity,
        auto_declare_from,
        silences: vec![],
        sources: vec![],
    }
}

fn check_paging(
    config: &Config,
    problems: &mut Vec<String>,
) -> warroom_domain::escalation::PagingConfig {
    use warroom_domain::escalation::{PagingConfig, Target};
    let channel_names: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    let mut contacts = std::collections::HashMap::new();
    for (i, p) in config.people.iter().enumerate() {
        if p.name.trim().is_empty() {
            problems.push(format!("people[{i}].name: must not be empty"));
        }
        for (j, c) in p.contacts.iter().enumerate() {
            if !channel_names.contains(&c.channel()) {
                problems.push(format!(
                    "people[{i}].contacts[{j}]: no channel named `{}`",
                    c.channel()
                ));
            }
            if c.after() < time::Duration::ZERO {
                problems.push(format!(
                    "people[{i}].contacts[{j}].after_secs: must not be negative"
                ));
            }
        }
        if let Some(u) = &p.slack_user
            && !(u.len() > 1
                && (u.starts_with('U') || u.starts_with('W'))
                && u.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            problems.push(format!("people[{i}].slack_user: `{u}` is not a Slack user id; copy it from the profile's \"Copy member ID\" (U…)"));
        }
        if let Some(e) = &p.email
            && let Err(e) =
                warroom_notify::adapters::email::parse_address(&format!("people[{i}].email"), e)
        {
            problems.push(e.to_string());
        }
        if contacts
            .insert(p.name.clone(), p.contacts.clone())
            .is_some()
        {
            problems.push(format!("people[{i}].name: `{}` is listed twice", p.name));
        }
    }
    let mut schedules = Vec::new();
    for (i, s) in config.schedules.iter().enumerate() {
        match s.check(&format!("schedules[{i}]")) {
            Ok(c) => schedules.push(c),
            Err(e) => problems.push(e.to_string()),
        }
        for (l, layer) in s.layers.iter().enumerate() {
            for (m, member) in layer.members.iter().enumerate() {
                if !contacts.contains_key(member) {
                    problems.push(format!("schedules[{i}].layers[{l}].members[{m}]: no person named `{member}` in [[people]]"));
                }
            }
        }
    }
    let schedule_names: Vec<String> = config.schedules.iter().map(|s| s.name.clone()).collect();
    for (i, p) in config.escalation_policies.iter().enumerate() {
        let key = format!("escalation_policies[{i}]");
        if let Err(e) = p.check(&key, &schedule_names) {
            problems.push(e.to_string());
        }
        for (l, level) in p.levels.iter().enumerate() {
            for (t, target) in level.targets.iter().enumerate() {
                if let Target::User { user } = target
                    && !contacts.contains_key(user)
                {
                    problems.push(format!("{key}.levels[{l}].targets[{t}].user: no person named `{user}` in [[people]]"));
                }
            }
        }
    }
    for (key, v) in [
        ("throttle_pages", config.paging.throttle_pages),
        ("throttle_window_secs", config.paging.throttle_window_secs),
    ] {
        if v.is_some_and(|v| v < 1) {
            problems.push(format!("paging.{key}: must be at least 1"));
        }
    }
    let policy = match &config.paging.policy {
        Some(name) => match config.escalation_policies.iter().find(|p| &p.name == name) {
            Some(p) => Some(p.clone()),
            None => {
                problems.push(format!(
                    "paging.policy: no escalation policy named `{name}`"
                ));
                None
            }
        },
        None => None,
    };
    PagingConfig {
        policy,
        schedules,
        contacts,
    }
}

/// Reads a secret given as `<what>_env` or `<what>_file`. `Ok(None)` when neither is given;
/// `Err(())` after recording the problem.
fn read_secret(
    key: &str,
    what: &str,
    env: &Option<String>,
    file: &Option<std::path::PathBuf>,
    problems: &mut Vec<String>,
) -> Result<Option<Secret>, ()> {
    match (env, file) {
        (None, None) => Ok(None),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::from(v))),
            _ => {
                problems.push(format!("{key}.{what}_env: environment variable {var} is not set; export it before starting warroom"));
                Err(())
            }
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::from(v.trim().to_owned()))),
            Ok(_) => {
                problems.push(format!("{key}.{what}_file: {} is empty", path.display()));
                Err(())
            }
            Err(e) => {
                problems.push(format!(
                    "{key}.{what}_file: cannot read {}: {e}",
                    path.display()
                ));
                Err(())
            }
        },
        (Some(_), Some(_)) => {
            problems.push(format!("{key}: give {what}_env or {what}_file, not both"));
            Err(())
        }
    }
}

fn is_http_url(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

fn check_channels(config: &Config, problems: &mut Vec<String>) -> Vec<ChannelSpec> {
    use ChannelKind::*;
    let mut channels: Vec<ChannelSpec> = Vec::new();
    for (i, c) in config.channels.iter().enumerate() {
        let key = format!("channels[{i}]");
        if c.name.trim().is_empty() {
            problems.push(format!("{key}.name: must not be empty"));
        } else if config.channels[..i].iter().any(|x| x.name == c.name) {
            problems.push(format!("{key}.name: `{}` is used twice", c.name));
        }
        if c.timeout_secs == 0 || c.timeout_secs > 120 {
            problems.push(format!(
                "{key}.timeout_secs: {} is out of range; use 1-120",
                c.timeout_secs
            ));
        }
        // Keys that belong to one kind: given to another they would be ignored silently.
        let owned: [(&str, bool, ChannelKind); 17] = [
            ("url", c.url.is_some(), Webhook),
            ("secret_env", c.secret_env.is_some(), Webhook),
            ("secret_file", c.secret_file.is_some(), Webhook),
            ("webhook_url_env", c.webhook_url_env.is_some(), Slack),
            ("webhook_url_file", c.webhook_url_file.is_some(), Slack),
            ("token_env", c.token_env.is_some(), Slack),
            ("token_file", c.token_file.is_some(), Slack),
            ("api_url", c.api_url.is_some(), Slack),
            ("channel", c.channel.is_some(), Slack),
            ("host", c.host.is_some(), Email),
            ("port", c.port.is_some(), Email),
            ("tls", c.tls.is_some(), Email),
            ("ca_file", c.ca_file.is_some(), Email),
            ("username", c.username.is_some(), Email),
            ("password_env", c.password_env.is_some(), Email),
            ("password_file", c.password_file.is_some(), Email),
            ("from", c.from.is_some(), Email),
        ];
        let mut misplaced = false;
        for (field, set, kind) in owned.into_iter().chain([("to", !c.to.is_empty(), Email)]) {
            if set && kind != c.kind {
                problems.push(format!(
                    "{key}.{field}: only {} channels take `{field}`; this one is kind = \"{}\"",
                    kind.as_str(),
                    c.kind.as_str()
                ));
                misplaced = true;
            }
        }
        if misplaced {
            continue;
        }
        let target = match c.kind {
            Webhook => check_webhook(&key, c, problems),
            Slack => check_slack(&key, c, problems),
            Email => check_email(&key, c, problems),
        };
        if let Some(target) = target {
            channels.push(ChannelSpec {
                name: c.name.clone(),
                timeout: std::time::Duration::from_secs(c.timeout_secs),
                target,
            });
        }
    }
    let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    for (list, name) in config.routing.channel_names() {
        let idx = position.entry(list).or_insert(0);
        if !known.contains(&name.as_str()) {
            problems.push(format!(
                "routing.{list}[{idx}]: no channel named `{name}`; the [[channels]] are: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
        *idx += 1;
    }
    channels
}

fn check_webhook(
    key: &str,
    c: &ChannelConfig,
    problems: &mut Vec<String>,
) -> Option<ChannelTarget> {
    let url = match &c.url {
        Some(u) if is_http_url(u) => Some(u.clone()),
        Some(u) => {
            problems.push(format!("{key}.url: `{u}` is not an http(s) URL"));
            None
        }
        None => {
            problems.push(format!(
                "{key}.url: webhook channels need the endpoint's URL"
            ));
            None
        }
    };
    let secret = match read_secret(key, "secret", &c.secret_env, &c.secret_file, problems) {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            problems.push(format!(
                "{key}: give exactly one of secret_env or secret_file; webhooks are always signed"
            ));
            None
        }
        Err(()) => None,
    };
    Some(ChannelTarget::Webhook {
        url: url?,
        secret: secret?,
    })
}

fn check_slack(key: &str, c: &ChannelConfig, problems: &mut Vec<String>) -> Option<ChannelTarget> {
    let hook = read_secret(
        key,
        "webhook_url",
        &c.webhook_url_env,
        &c.webhook_url_file,
        problems,
    );
    let token = read_secret(key, "token", &c.token_env, &c.token_file, problems);
    match (hook, token) {
        (Ok(Some(url)), Ok(None)) => {
            if !is_http_url(url.expose()) {
                // Never echo the value: the URL is the secret.
                problems.push(format!("{key}.webhook_url: the value is not an http(s) URL; copy the incoming webhook URL from the Slack app's settings"));
                return None;
            }
            for (field, set) in [
                ("api_url", c.api_url.is_some()),
                ("channel", c.channel.is_some()),
            ] {
                if set {
                    problems.push(format!("{key}.{field}: only Web API (token) Slack channels take `{field}`; an incoming webhook posts where it was created"));
                }
            }
            (c.api_url.is_none() && c.channel.is_none())
                .then_some(ChannelTarget::SlackWebhook { url })
        }
        (Ok(None), Ok(Some(token))) => {
            if !token.expose().starts_with("xox") {
                problems.push(format!("{key}.token: the value is not a Slack token; use the app's Bot User OAuth Token (xoxb-…)"));
                return None;
            }
            let api_url = c
                .api_url
                .clone()
                .unwrap_or_else(|| warroom_notify::adapters::slack::DEFAULT_API_URL.to_owned());
            if !is_http_url(&api_url) {
                problems.push(format!("{key}.api_url: `{api_url}` is not an http(s) URL"));
                return None;
            }
            Some(ChannelTarget::SlackApi {
                token,
                api_url,
                channel: c.channel.clone(),
            })
        }
        (Ok(None), Ok(None)) => {
            problems.push(format!("{key}: slack channels need webhook_url_env/webhook_url_file (incoming webhook) or token_env/token_file (bot token)"));
            None
        }
        (Ok(Some(_)), Ok(Some(_))) => {
            problems.push(format!(
                "{key}: give an incoming webhook or a bot token, not both"
            ));
            None
        }
        _ => None,
    }
}

fn check_email(key: &str, c: &ChannelConfig, problems: &mut Vec<String>) -> Option<ChannelTarget> {
    use warroom_notify::adapters::email::{SmtpTls, parse_address};
    let mut ok = true;
    let host = c.host.clone().filter(|h| !h.trim().is_empty());
    if host.is_none() {
        problems.push(format!(
            "{key}.host: email channels need the SMTP server's host name"
        ));
        ok = false;
    }
    let tls = c.tls.unwrap_or(TlsMode::Starttls);
    let port = c.port.unwrap_or(
        match tls {
            TlsMode::Starttls => SmtpTls::Starttls,
            TlsMode::Tls => SmtpTls::Tls,
            TlsMode::None => SmtpTls::None,
        }
        .default_port(),
    );
    if port == 0 {
        problems.push(format!("{key}.port: must not be 0"));
        ok = false;
    }
    match &c.from {
        Some(f) => {
            if let Err(e) = parse_address(&format!("{key}.from"), f) {
                problems.push(e.to_string());
                ok = false;
            }
        }
        None => {
            problems.push(format!("{key}.from: email channels need a From address"));
            ok = false;
        }
    }
    for (j, t) in c.to.iter().enumerate() {
        if let Err(e) = parse_address(&format!("{key}.to[{j}]"), t) {
            problems.push(e.to_string());
            ok = false;
        }
    }
    let ca_pem = match &c.ca_file {
        Some(p) => match std::fs::read(p) {
            Ok(pem) => Some(pem),
            Err(e) => {
                problems.push(format!("{key}.ca_file: cannot read {}: {e}", p.display()));
                ok = false;
                None
            }
        },
        None => None,
    };
    if ca_pem.is_some() && tls == TlsMode::None {
        problems.push(format!("{key}.ca_file: has no effect with tls = \"none\""));
        ok = false;
    }
    let password = read_secret(key, "password", &c.password_env, &c.password_file, problems);
    let credentials = match (&c.username, password) {
        (Some(u), Ok(Some(p))) => Some((u.clone(), p)),
        (None, Ok(None)) => None,
        (Some(_), Ok(None)) => {
            problems.push(format!(
                "{key}.username: AUTH also needs password_env or password_file"
            ));
            ok = false;
            None
        }
        (None, Ok(Some(_))) => {
            problems.push(format!("{key}.password_env: a password needs a username"));
            ok = false;
            None
        }
        (_, Err(())) => {
            ok = false;
            None
        }
    };
    if credentials.is_some() && tls == TlsMode::None {
        problems.push(format!(
            "{key}.tls: \"none\" would send the password in clear text; use \"starttls\" or \"tls\""
        ));
        ok = false;
    }
    ok.then(|| ChannelTarget::Email {
        host: host.unwrap_or_default(),
        port,
        tls,
        ca_pem,
        credentials,
        from: c.from.clone().unwrap_or_default(),
        to: c.to.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> anyhow::Result<Checked> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("c.toml");
        std::fs::write(&p, toml)?;
        check(load(Some(&p))?)
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].name, "API");
        assert_eq!(c.listen.port(), 8080);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("listen = 5").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = parse("[[services]]\nslug = \"Bad Slug\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("services[0].slug:"), "{e}");
        let e = parse("[severity.7]\nresponse_secs = 1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("severity.7:"), "{e}");
        let e = parse("[severity.2]\nchannel_update_secs = -5")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("severity.2.channel_update_secs"), "{e}");
        let e = parse("bogus = 1").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("listen = \"nope\"").unwrap_err().to_string();
        assert!(e.starts_with("listen:"), "{e}");
        // A list's place in brackets, as the semantic checks write it; a table's keys dotted,
        // digits or not.
        let e = parse("[[monitors]]\nname = \"a\"\ninterval = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("monitors[0]."), "{e}");
        assert_eq!(
            key_path(&["severity".into(), "2".into(), "x".into()]),
            "severity.2.x"
        );
        assert_eq!(
            key_path(&["services".into(), "3".into(), "headers".into(), "10".into()]),
            "services[3].headers.10"
        );
        let e = parse("listen = [").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn channels_need_a_secret_and_routing_must_name_real_channels() {
        let e = parse("[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("channels[0]: give exactly one of secret_env or secret_file"),
            "{e}"
        );
        let e = parse("[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret_env = \"WARROOM_TEST_UNSET_VAR_XYZ\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "channels[0].secret_env: environment variable WARROOM_TEST_UNSET_VAR_XYZ is not set"
            ),
            "{e}"
        );
        let e = parse("[routing]\npage = [\"pager\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("routing.page[0]: no channel named `pager`"),
            "{e}"
        );
        let e =
            parse("[[channels]]\nname = \"ops\"\nkind = \"carrier-pigeon\"\nurl = \"http://x\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn slack_and_email_channels_are_checked_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "xoxb-1-2-3\n").unwrap();
        let token = token.display();
        let slack = format!(
            "[[channels]]\nname = \"slack\"\nkind = \"slack\"\ntoken_file = \"{token}\"\nchannel = \"C0123\"\n"
        );
        let slack = slack.as_str();
        let c = parse(slack).unwrap();
        match &c.channels[0].target {
            ChannelTarget::SlackApi {
                api_url,
                channel,
                token,
            } => {
                assert_eq!(api_url, "https://slack.com/api");
                assert_eq!(channel.as_deref(), Some("C0123"));
                assert_eq!(format!("{token:?}"), "[redacted]");
            }
            other => panic!("{other:?}"),
        }
        let e = parse(&format!("{slack}host = \"smtp.example.com\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "channels[0].host: only email channels take `host`; this one is kind = \"slack\""
            ),
            "{e}"
        );
        let e = parse("[[channels]]\nname = \"s\"\nkind = \"slack\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("channels[0]: slack channels need webhook_url_env"),
            "{e}"
        );
        let e = parse("[[channels]]\nname = \"s\"\nkind = \"slack\"\ntoken_env = \"WARROOM_TEST_UNSET_VAR_XYZ\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "channels[0].token_env: environment variable WARROOM_TEST_UNSET_VAR_XYZ is not set"
            ),
            "{e}"
        );

        let email = "[[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"warroom@example.com\"\nto = [\"ops@example.com\"]\n";
        let c = parse(email).unwrap();
        match &c.channels[0].target {
            ChannelTarget::Email { port, tls, .. } => {
                assert_eq!((*port, *tls), (587, TlsMode::Starttls))
            }
            other => panic!("{other:?}"),
        }
        let e = parse(&email.replace("ops@example.com", "not an address"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("channels[0].to[0]: `not an address` is not an email address"),
            "{e}"
        );
        let e = parse(&format!(
            "{email}tls = \"none\"\nusername = \"u\"\npassword_file = \"{token}\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("channels[0].tls: \"none\" would send the password in clear text"),
            "{e}"
        );
        let e = parse(&format!("{email}tls = \"ssl\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("channels[0].tls") && e.contains("ssl"), "{e}");
        let e = parse(&format!(
            "{email}\n[[people]]\nname = \"ana\"\nslack_user = \"ana\"\nemail = \"nope\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("people[0].slack_user: `ana` is not a Slack user id"),
            "{e}"
        );
        assert!(
            e.contains("people[0].email: `nope` is not an email address"),
            "{e}"
        );
    }

    #[test]
    fn paging_references_are_checked_with_their_keys() {
        let base = "[[people]]\nname = \"ana\"\n[[schedules]]\nname = \"primary\"\ntime_zone = \"UTC\"\n[[schedules.layers]]\nname = \"l\"\nrotation = \"weekly\"\nhandoff = \"2026-01-05T09:00\"\nmembers = [\"ana\"]\n";
        let ok = format!(
            "{base}[[escalation_policies]]\nname = \"default\"\n[[escalation_policies.levels]]\ntargets = [{{ schedule = \"primary\" }}, {{ user = \"ana\" }}]\n[paging]\npolicy = \"default\"\n"
        );
        let c = parse(&ok).unwrap();
        assert!(c.paging.policy.is_some());
        assert_eq!(c.paging.schedules.len(), 1);
        let e = parse(&ok.replace("{ user = \"ana\" }", "{ user = \"zed\" }"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("escalation_policies[0].levels[0].targets[1].user: no person named `zed`"),
            "{e}"
        );
        let e = parse(&ok.replace("{ schedule = \"primary\" }", "{ schedule = \"nope\" }"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("escalation_policies[0].levels[0].targets[0].schedule"),
            "{e}"
        );
        let e = parse(&ok.replace("policy = \"default\"", "policy = \"other\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("paging.policy: no escalation policy named `other`"),
            "{e}"
        );
        let e = parse(&ok.replace("UTC", "Nowhere/Town"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedules[0].time_zone"), "{e}");
        let e = parse(&base.replace(
            "name = \"ana\"\n[[schedules]]",
            "name = \"ana\"\ncontacts = [\"pager\"]\n[[schedules]]",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("people[0].contacts[0]: no channel named `pager`"),
            "{e}"
        );
    }

    #[test]
    fn pipeline_errors_name_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        let repo = dir.path().display().to_string();
        let ok = format!("[pipeline]\nrepo = \"{repo}\"\n");
        let c = parse(&ok).unwrap();
        let p = c.pipeline.unwrap();
        assert_eq!(p.config.branch, "master");
        assert_eq!(p.config.agent[0], "claude");
        assert!(p.webhook_secret.is_none());
        let e = parse(&format!("{ok}item_timeout_secs = 4000\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.item_timeout_secs:"), "{e}");
        let e = parse(&format!(
            "{ok}agent = []\nnotify = [\"nope\"]\nwebhook_secret_env = \"WARROOM_TEST_UNSET_VAR_XYZ\"\n"
        ))
        .unwrap_err()
        .to_string();
        for key in [
            "pipeline.agent:",
            "pipeline.notify[0]:",
            "pipeline.webhook_secret_env:",
        ] {
            assert!(e.contains(key), "{key}: {e}");
        }
        let e = parse("[pipeline]\nrepo = \"/nonexistent/repo\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.repo:"), "{e}");
        let e = parse(&format!("{ok}agent = \"claude -p\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.agent"), "{e}");
        let e = parse(&format!("{ok}site_branch = \"master\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pipeline.site_branch: `master` is the branch"),
            "{e}"
        );
        let e = parse(&format!("{ok}site_branch = \"gh pages\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.site_branch:"), "{e}");
        let e = parse("[pipeline]\nbranch = \"master\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("repo"), "{e}");
        let e = parse(&format!("{ok}branch = \"-f\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.branch:"), "{e}");
        // Typos and wrong types are refused with the key, never ignored.
        let e = parse(&format!("{ok}site_brnach = \"gh-pages\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("site_brnach"), "{e}");
        let e = parse(&format!("{ok}budget_usd = \"five\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("budget_usd"), "{e}");
        let e = parse(&format!("{ok}run_timeout_secs = 100\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pipeline.item_timeout_secs:") && e.contains("run_timeout_secs = 100s"),
            "{e}"
        );
    }

    #[test]
    fn the_examples_pipeline_section_is_valid_when_uncommented() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        let start = EXAMPLE.find("# [pipeline]").unwrap();
        let section: String = EXAMPLE[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            // These name things that exist only on a real installation.
            .filter(|l| !l.starts_with("notify") && !l.starts_with("webhook_secret_env"))
            .map(|l| {
                if l.starts_with("repo ") {
                    format!("repo = \"{}\"\n", dir.path().display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let c = parse(&section).unwrap();
        let p = c.pipeline.unwrap();
        assert_eq!(p.config.plan.unwrap()[0], "scripts/plan-json");
        assert_eq!(p.repository.as_deref(), Some("ViktorBarzin/infra"));
        assert_eq!(p.sweep, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(p.config.site_branch.as_deref(), Some("gh-pages"));
    }

    #[test]
    fn the_detection_window_is_checked_with_its_keys() {
        let c = parse("[detection]\nwindow_secs = 60\n").unwrap();
        assert_eq!(c.window.window, time::Duration::minutes(1));
        assert_eq!(c.window.baseline, time::Duration::hours(1));
        let e = parse("[detection]\nwindow_secs = 1\nbaseline_secs = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("detection.window_secs: 1 is too short"), "{e}");
        assert!(e.contains("detection.baseline_secs: 5 is too short"), "{e}");
        let e = parse("[detection]\nwindow = 60\n").unwrap_err().to_string();
        assert!(e.contains("window"), "{e}");
    }

    #[test]
    fn the_resolve_timeout_is_alertmanagers_by_default_and_checked() {
        let c = parse("").unwrap();
        assert_eq!(c.alerts.resolve_timeout, time::Duration::minutes(5));
        let c = parse("[alerts]\nresolve_timeout_secs = 60\n").unwrap();
        assert_eq!(c.alerts.resolve_timeout, time::Duration::minutes(1));
        let e = parse("[alerts]\nresolve_timeout_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("alerts.resolve_timeout_secs: 0 is out of range; use 1 to 86400"),
            "{e}"
        );
    }

    #[test]
    fn alert_sources_need_a_long_enough_secret_and_are_checked_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("am.secret");
        std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
        let c = parse(&format!(
            "[[alert_sources]]\nname = \"am-prod\"\nsecret_file = \"{}\"\n",
            secret.display()
        ))
        .unwrap();
        assert_eq!(c.alerts.sources[0].name(), "am-prod");
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "never in Debug"
        );
        std::fs::write(&secret, "short").unwrap();
        let e = parse(&format!(
            "[[alert_sources]]\nname = \"am prod\"\nsecret_file = \"{}\"\n[[alert_sources]]\nname = \"b\"\n",
            secret.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("alert_sources[0].name: `am prod`"), "{e}");
        assert!(
            e.contains("alert_sources[0].secret_file: the secret must be at least 16"),
            "{e}"
        );
        assert!(
            e.contains("alert_sources[1]: give exactly one of secret_env or secret_file"),
            "{e}"
        );
        let e =
            parse("[[alert_sources]]\nname = \"x\"\nsecret_env = \"WARROOM_TEST_UNSET_VAR_XYZ\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("alert_sources[0].secret_env: environment variable WARROOM_TEST_UNSET_VAR_XYZ is not set"), "{e}");
        let e = parse("[[alert_sources]]\nname = \"x\"\nsecret = \"inline\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret"), "secrets never sit in the file: {e}");
    }

    #[test]
    fn silences_take_alertmanagers_matcher_text_or_tables() {
        let silence = |matchers: &str| {
            format!(
                "[[silences]]\ncomment = \"c\"\nstarts_at = \"2026-01-01T00:00:00Z\"\nends_at = \"2027-01-01T00:00:00Z\"\nmatchers = {matchers}\n"
            )
        };
        let c = parse(&silence(
            r#"["service=\"billing\"", "env!~dev|test", { name = "team", value = "sre" }]"#,
        ))
        .unwrap();
        let parsed = |t: &str| warroom_domain::alert::MatcherSpec::parse(t).unwrap();
        assert_eq!(
            c.alerts.silences[0].matchers.to_specs(),
            [
                parsed("service=billing"),
                parsed("env!~dev|test"),
                parsed("team=sre")
            ]
        );
        assert_eq!(c.alerts.silences[0].id, "config-1");
        for (bad, says) in [
            (
                r#"["service"]"#,
                "silences[0].matchers[0]: `service`: write it as name=value",
            ),
            ("[42]", "silences[0].matchers[0]: invalid type"),
            (
                r#"["bad-name=x"]"#,
                "silences[0].matchers[0].name: `bad-name` is not a valid label name",
            ),
        ] {
            let e = parse(&silence(bad)).unwrap_err().to_string();
            assert!(e.starts_with(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/warroom.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
