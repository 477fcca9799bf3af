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
    /// The sliding window monitors' signals are derived over.
    pub detection: DetectionSection,
    /// Alert senders with their own secret (instead of an API token).
    pub alert_sources: Vec<AlertSourceConfig>,
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
        let secret = match (&s.secret_env, &s.secret_file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some((v, "secret_env")),
                _ => {
                    problems.push(format!("{key}.secret_env: environment variable {var} is not set; export it before starting warroom"));
                    None
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) => Some((v.trim().to_owned(), "secret_file")),
                Err(e) => {
                    problems.push(format!(
                        "{key}.secret_file: cannot read {}: {e}",
                        path.display()
                    ));
                    None
                }
            },
            _ => {
                problems.push(format!(
                    "{key}: give exactly one of secret_env or secret_file"
                ));
                None
            }
        };
        if let Some((secret, field)) = secret {
            if secret.chars().count() < MIN_SOURCE_SECRET_LEN {
                problems.push(format!(
                    "{key}.{field}: the secret must be at least {MIN_SOURCE_SECRET_LEN} characters; generate one with `openssl rand -hex 32`"
                ));
            } else {
                out.push(warroom_server::api::alert_auth::AlertSource::new(
                    s.name.clone(),
                    &secret,
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
    pub matchers: Vec<warroom_domain::alert::MatcherSpec>,
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
/// variable or a file (e.g. a mounted Kubernetes secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    pub url: String,
    pub secret_env: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
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
}

/// A channel ready to build an adapter from.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    pub url: String,
    pub secret: Secret,
    pub timeout: std::time::Duration,
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

fn describe(e: &figment::Error) -> String {
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", e.path.join("."))
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
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(Checked {
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
        let matchers =
            warroom_domain::alert::Matchers::from_specs(&s.matchers, &format!("{key}.matchers"));
        match (start, end, matchers) {
            (Some(a), Some(b), Ok(m)) if a < b => out.push(warroom_domain::alert::Silence {
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
    warroom_server::api::alerts::AlertSettings {
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

fn check_channels(config: &Config, problems: &mut Vec<String>) -> Vec<ChannelSpec> {
    let mut channels: Vec<ChannelSpec> = Vec::new();
    for (i, c) in config.channels.iter().enumerate() {
        let key = format!("channels[{i}]");
        if c.name.trim().is_empty() {
            problems.push(format!("{key}.name: must not be empty"));
        } else if config.channels[..i].iter().any(|x| x.name == c.name) {
            problems.push(format!("{key}.name: `{}` is used twice", c.name));
        }
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            problems.push(format!("{key}.url: `{}` is not an http(s) URL", c.url));
        }
        if c.timeout_secs == 0 || c.timeout_secs > 120 {
            problems.push(format!(
                "{key}.timeout_secs: {} is out of range; use 1-120",
                c.timeout_secs
            ));
        }
        let secret = match (&c.secret_env, &c.secret_file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(Secret::from(v)),
                _ => {
                    problems.push(format!("{key}.secret_env: environment variable {var} is not set; export it before starting warroom"));
                    None
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::from(v.trim().to_owned())),
                Ok(_) => {
                    problems.push(format!("{key}.secret_file: {} is empty", path.display()));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "{key}.secret_file: cannot read {}: {e}",
                        path.display()
                    ));
                    None
                }
            },
            _ => {
                problems.push(format!("{key}: give exactly one of secret_env or secret_file; webhooks are always signed"));
                None
            }
        };
        if let Some(secret) = secret {
            channels.push(ChannelSpec {
                name: c.name.clone(),
                kind: c.kind,
                url: c.url.clone(),
                secret,
                timeout: std::time::Duration::from_secs(c.timeout_secs),
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
    fn a_missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/warroom.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
