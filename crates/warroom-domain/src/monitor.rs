//! Monitors: what to probe, how to judge the answer, and when a service counts as down.
//!
//! Everything here is pure. The worker crate performs the checks and feeds the outcomes to
//! [`FlapState`]; the rules for judging a response ([`HttpCheck::judge_status`],
//! [`HttpCheck::judge_body`]) live here so that they can be tested without sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{DomainError, ServiceSlug};

/// Failures as the runbook's health-check triage names them, plus the ones a probe adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Connection refused: nothing listens ("service down").
    Down,
    /// HTTP 5xx ("service crashed").
    Crashed,
    /// No answer within the timeout ("service hung").
    Hung,
    /// The name does not resolve, or not to the expected addresses.
    DnsFailure,
    /// TLS handshake or certificate validation failed.
    TlsError,
    /// A non-5xx status outside the expected set (a 404 after a bad deploy, a 401, ...).
    UnexpectedStatus,
    /// The body lacks the keyword, or the JSON path does not hold the expected value.
    KeywordMissing,
    /// The certificate expires within the warning window. A warning, not a failure.
    CertExpiring,
}

impl FailureKind {
    /// The snake_case name used in the API and in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Down => "down",
            FailureKind::Crashed => "crashed",
            FailureKind::Hung => "hung",
            FailureKind::DnsFailure => "dns_failure",
            FailureKind::TlsError => "tls_error",
            FailureKind::UnexpectedStatus => "unexpected_status",
            FailureKind::KeywordMissing => "keyword_missing",
            FailureKind::CertExpiring => "cert_expiring",
        }
    }

    /// True for kinds that warn but leave the monitor up.
    pub fn is_warning(self) -> bool {
        matches!(self, FailureKind::CertExpiring)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration (as written in TOML) and validation

/// A monitor as written in the configuration file (`[[monitors]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Stable identifier; also spreads first runs (see the worker's scheduler).
    pub id: String,
    /// Display name; `id` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The service slug whose incidents this monitor opens.
    pub service: String,
    /// Whether a failure means users are affected (drives the classifier's signals).
    #[serde(default)]
    pub user_facing: bool,
    /// Seconds between checks, at least 1.
    pub interval_secs: u64,
    /// Milliseconds before a check counts as hung; below the interval. Default: the smaller of
    /// 10 s and 80 % of the interval.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Consecutive failures before DOWN (default 3: one lost packet is not an incident).
    #[serde(default)]
    pub failures_to_down: Option<u32>,
    /// Consecutive successes before UP again (default 2, so one lucky answer does not resolve).
    #[serde(default)]
    pub successes_to_up: Option<u32>,
    /// What to check.
    pub check: CheckSpec,
}

/// The check part of a [`MonitorSpec`], tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckSpec {
    /// An HTTP(S) request.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// Default `GET`.
        #[serde(default)]
        method: Option<String>,
        /// Extra request headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Accepted statuses: `"200-399"`, `"204"`, `"2xx"`. Default `["200-399"]`.
        #[serde(default)]
        expected_status: Vec<String>,
        /// Text the body must contain.
        #[serde(default)]
        keyword: Option<String>,
        /// Dotted JSON path like `$.status` or `$.checks[0].ok` ...
        #[serde(default)]
        json_path: Option<String>,
        /// ... and the value it must hold.
        #[serde(default)]
        json_value: Option<Value>,
        /// Warn when the certificate expires within this many days (https only).
        #[serde(default)]
        cert_expiry_warn_days: Option<u32>,
    },
    /// A TCP connect.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A DNS resolution.
    Dns {
        /// Name to resolve.
        name: String,
        /// A/AAAA addresses that must all be among the answers; empty means "any answer".
        #[serde(default)]
        expected: Vec<String>,
    },
}

/// A validated monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// Identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Service it belongs to.
    pub service: ServiceSlug,
    /// Whether failures affect users.
    pub user_facing: bool,
    /// Time between checks.
    pub interval: Duration,
    /// Hard limit of one check.
    pub timeout: Duration,
    /// Flap damping thresholds.
    pub thresholds: Thresholds,
    /// What to check.
    pub check: Check,
}

/// A validated check.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// HTTP(S).
    Http(HttpCheck),
    /// TCP connect.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// DNS resolution.
    Dns {
        /// Name to resolve.
        name: String,
        /// Addresses that must be among the answers.
        expected: BTreeSet<IpAddr>,
    },
}

/// A validated HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// URL (scheme checked; the HTTP client parses the rest).
    pub url: String,
    /// Upper-case method.
    pub method: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Accepted statuses.
    pub expected_status: StatusSet,
    /// Body must contain this.
    pub keyword: Option<String>,
    /// Body's JSON at this path must equal the value.
    pub json_match: Option<(JsonPath, Value)>,
    /// Certificate expiry warning window.
    pub cert_expiry_warn_days: Option<u32>,
}

/// Inclusive status ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![(200, 399)])
    }
}

impl StatusSet {
    /// Parses `"200-399"`, `"204"` or `"2xx"` entries.
    pub fn parse(entries: &[String], path: &str) -> Result<Self, DomainError> {
        if entries.is_empty() {
            return Ok(StatusSet::default());
        }
        let mut ranges = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let e = e.trim();
            let bad = || {
                DomainError::invalid(
                    format!("{path}[{i}]"),
                    format!(
                        "`{e}` is not a status; use a code (`204`), a range (`200-399`) or a class (`2xx`)"
                    ),
                )
            };
            let code = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
            };
            let range = if let Some(class) = e.strip_suffix("xx").or_else(|| e.strip_suffix("XX")) {
                let d = class
                    .parse::<u16>()
                    .ok()
                    .filter(|d| (1..=5).contains(d))
                    .ok_or_else(bad)?;
                (d * 100, d * 100 + 99)
            } else if let Some((lo, hi)) = e.split_once('-') {
                let (lo, hi) = (code(lo).ok_or_else(bad)?, code(hi).ok_or_else(bad)?);
                if lo > hi {
                    return Err(bad());
                }
                (lo, hi)
            } else {
                let c = code(e).ok_or_else(bad)?;
                (c, c)
            };
            ranges.push(range);
        }
        Ok(StatusSet(ranges))
    }

    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// A dotted JSON path: `$.a.b[0].c`. Enough for health endpoints; not full JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    raw: String,
    steps: Vec<PathStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathStep {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// Parses `$.status`, `$.checks[1].ok`, or `status` (the `$.` is optional).
    pub fn parse(raw: &str, path: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| {
            DomainError::invalid(
                path,
                format!(
                    "`{raw}` is not a supported JSON path ({why}); use dotted keys and [n] indexes, e.g. `$.checks[0].status`"
                ),
            )
        };
        let body = raw.strip_prefix('$').unwrap_or(raw);
        let body = body.strip_prefix('.').unwrap_or(body);
        let mut steps = Vec::new();
        if body.is_empty() {
            return Ok(JsonPath {
                raw: raw.to_owned(),
                steps,
            });
        }
        for part in body.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && rest.is_empty() {
                return Err(bad("empty key"));
            }
            if !key.is_empty() {
                steps.push(PathStep::Key(key.to_owned()));
            }
            while !rest.is_empty() {
                let close = rest.find(']').ok_or_else(|| bad("unclosed ["))?;
                let idx = rest[1..close]
                    .parse::<usize>()
                    .map_err(|_| bad("index is not a number"))?;
                steps.push(PathStep::Index(idx));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(bad("text after ]"));
                }
            }
        }
        Ok(JsonPath {
            raw: raw.to_owned(),
            steps,
        })
    }

    /// The value at this path, if any.
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.steps.iter().try_fold(v, |v, step| match step {
            PathStep::Key(k) => v.get(k.as_str()),
            PathStep::Index(i) => v.get(*i),
        })
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// Defaults and bounds, with the reasons.
const DEFAULT_FAILURES_TO_DOWN: u32 = 3;
const DEFAULT_SUCCESSES_TO_UP: u32 = 2;
/// No target should need longer than this to answer a health check.
const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl MonitorSpec {
    /// Validates one monitor; `path` is where it sits in the config (`monitors[2]`), so errors
    /// read as TOML keys: `monitors[2].interval_secs: ...`.
    pub fn validate(&self, path: &str) -> Result<Monitor, DomainError> {
        let field = |f: &str| format!("{path}.{f}");
        if self.id.trim().is_empty() {
            return Err(DomainError::invalid(field("id"), "must not be empty"));
        }
        let service = ServiceSlug::parse_field(&self.service, &field("service"))?;
        if self.interval_secs < 1 {
            return Err(DomainError::invalid(
                field("interval_secs"),
                "must be at least 1 (seconds between checks)",
            ));
        }
        let interval = Duration::from_secs(self.interval_secs);
        let timeout = match self.timeout_ms {
            Some(0) => {
                return Err(DomainError::invalid(
                    field("timeout_ms"),
                    "must be at least 1",
                ));
            }
            Some(ms) => Duration::from_millis(ms),
            None => (interval * 4 / 5).min(MAX_DEFAULT_TIMEOUT),
        };
        if timeout >= interval {
            return Err(DomainError::invalid(
                field("timeout_ms"),
                format!(
                    "{} ms is not below the interval ({} s); a check must finish before the next one starts",
                    timeout.as_millis(),
                    self.interval_secs
                ),
            ));
        }
        let failures_to_down = self.failures_to_down.unwrap_or(DEFAULT_FAILURES_TO_DOWN);
        let successes_to_up = self.successes_to_up.unwrap_or(DEFAULT_SUCCESSES_TO_UP);
        if failures_to_down == 0 {
            return Err(DomainError::invalid(
                field("failures_to_down"),
                "must be at least 1",
            ));
        }
        if successes_to_up == 0 {
            return Err(DomainError::invalid(
                field("successes_to_up"),
                "must be at least 1",
            ));
        }
        let check = self.check.validate(&field("check"))?;
        Ok(Monitor {
            id: self.id.clone(),
            name: self.name.clone().unwrap_or_else(|| self.id.clone()),
            service,
            user_facing: self.user_facing,
            interval,
            timeout,
            thresholds: Thresholds {
                failures_to_down,
                successes_to_up,
            },
            check,
        })
    }
}

impl CheckSpec {
    fn validate(&self, path: &str) -> Result<Check, DomainError> {
        let field = |f: &str| format!("{path}.{f}");
        match self {
            CheckSpec::Http {
                url,
                method,
                headers,
                expected_status,
                keyword,
                json_path,
                json_value,
                cert_expiry_warn_days,
            } => {
                let lower = url.to_ascii_lowercase();
                let rest = lower
                    .strip_prefix("http://")
                    .or_else(|| lower.strip_prefix("https://"));
                if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
                    || url.chars().any(char::is_whitespace)
                {
                    return Err(DomainError::invalid(
                        field("url"),
                        format!(
                            "`{url}` is not an http(s) URL; e.g. `https://api.example.com/health`"
                        ),
                    ));
                }
                let method = method.as_deref().unwrap_or("GET").to_ascii_uppercase();
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(DomainError::invalid(
                        field("method"),
                        format!("`{method}` is not an HTTP method; e.g. GET or HEAD"),
                    ));
                }
                if let Some(bad) = headers.keys().find(|h| {
                    h.is_empty()
                        || !h
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
                }) {
                    return Err(DomainError::invalid(
                        field("headers"),
                        format!("`{bad}` is not a valid header name"),
                    ));
                }
                let expected_status = StatusSet::parse(expected_status, &field("expected_status"))?;
                if keyword.as_deref() == Some("") {
                    return Err(DomainError::invalid(
                        field("keyword"),
                        "must not be empty; leave it out to skip the body check",
                    ));
                }
                let json_match = match (json_path, json_value) {
                    (None, None) => None,
                    (Some(p), Some(v)) => {
                        Some((JsonPath::parse(p, &field("json_path"))?, v.clone()))
                    }
                    (Some(_), None) => {
                        return Err(DomainError::invalid(
                            field("json_value"),
                            "missing; json_path needs the value it must equal",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(DomainError::invalid(
                            field("json_path"),
                            "missing; json_value needs the path to compare, e.g. `$.status`",
                        ));
                    }
                };
                if cert_expiry_warn_days.is_some() && !lower.starts_with("https://") {
                    return Err(DomainError::invalid(
                        field("cert_expiry_warn_days"),
                        "only applies to https:// URLs",
                    ));
                }
                Ok(Check::Http(HttpCheck {
                    url: url.clone(),
                    method,
                    headers: headers.clone(),
                    expected_status,
                    keyword: keyword.clone(),
                    json_match,
                    cert_expiry_warn_days: *cert_expiry_warn_days,
                }))
            }
            CheckSpec::Tcp { host, port } => {
                if host.trim().is_empty() || host.chars().any(char::is_whitespace) {
                    return Err(DomainError::invalid(
                        field("host"),
                        "must be a host name or address",
                    ));
                }
                if *port == 0 {
                    return Err(DomainError::invalid(field("port"), "must be 1-65535"));
                }
                Ok(Check::Tcp {
                    host: host.clone(),
                    port: *port,
                })
            }
            CheckSpec::Dns { name, expected } => {
                if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
                    return Err(DomainError::invalid(field("name"), "must be a DNS name"));
                }
                let expected = expected
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.parse::<IpAddr>().map_err(|_| {
                            DomainError::invalid(
                                format!("{}[{i}]", field("expected")),
                                format!("`{a}` is not an IPv4 or IPv6 address"),
                            )
                        })
                    })
                    .collect::<Result<BTreeSet<_>, _>>()?;
                Ok(Check::Dns {
                    name: name.clone(),
                    expected,
                })
            }
        }
    }
}

/// Validates the `[[monitors]]` list: each monitor, and that ids are unique.
pub fn validate_monitors(specs: &[MonitorSpec]) -> Result<Vec<Monitor>, DomainError> {
    let mut seen = BTreeSet::new();
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = format!("monitors[{i}]");
            if !seen.insert(s.id.as_str()) {
                return Err(DomainError::invalid(
                    format!("{path}.id"),
                    format!(
                        "`{}` is used by an earlier monitor; ids must be unique",
                        s.id
                    ),
                ));
            }
            s.validate(&path)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Judging HTTP answers

impl HttpCheck {
    /// The failure a status means, if any: 5xx is "crashed" (unless explicitly expected), any
    /// other status outside the expected set is "unexpected".
    pub fn judge_status(&self, status: u16) -> Option<FailureKind> {
        if self.expected_status.contains(status) {
            None
        } else if (500..=599).contains(&status) {
            Some(FailureKind::Crashed)
        } else {
            Some(FailureKind::UnexpectedStatus)
        }
    }

    /// Whether the body must be read at all.
    pub fn needs_body(&self) -> bool {
        self.keyword.is_some() || self.json_match.is_some()
    }

    /// Checks the body against the keyword and the JSON match. The error says what was missing.
    pub fn judge_body(&self, body: &str) -> Result<(), String> {
        if let Some(k) = &self.keyword
            && !body.contains(k.as_str())
        {
            return Err(format!("body does not contain `{k}`"));
        }
        if let Some((path, want)) = &self.json_match {
            let json: Value =
                serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
            match path.get(&json) {
                Some(got) if got == want => {}
                Some(got) => {
                    return Err(format!("{} is {got}, expected {want}", path.as_str()));
                }
                None => return Err(format!("{} is missing from the body", path.as_str())),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Flap damping

/// How many consecutive results it takes to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive failures before DOWN.
    pub failures_to_down: u32,
    /// Consecutive successes before UP.
    pub successes_to_up: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failures_to_down: DEFAULT_FAILURES_TO_DOWN,
            successes_to_up: DEFAULT_SUCCESSES_TO_UP,
        }
    }
}

/// A monitor's confirmed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorStatus {
    /// Not confirmed either way: just started, or an UP monitor has begun failing.
    Pending,
    /// Confirmed healthy.
    Up,
    /// Confirmed failing: this is what opens an incident.
    Down,
}

/// A change of [`MonitorStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Before.
    pub from: MonitorStatus,
    /// After.
    pub to: MonitorStatus,
}

/// The flap-damping state machine. UP needs `successes_to_up` successes in a row, DOWN needs
/// `failures_to_down` failures in a row. An UP monitor that fails becomes PENDING at once (so a
/// dashboard shows the doubt) but only DOWN opens an incident; a DOWN monitor stays DOWN until
/// enough successes, so one lucky answer in an outage does not resolve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapState {
    /// Current state.
    pub status: MonitorStatus,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// Successes in a row so far.
    pub consecutive_successes: u32,
}

impl Default for FlapState {
    fn default() -> Self {
        FlapState {
            status: MonitorStatus::Pending,
            consecutive_failures: 0,
            consecutive_successes: 0,
        }
    }
}

impl FlapState {
    /// Feeds one check outcome (`true` = success; warnings count as success) and returns the
    /// transition it caused, if any.
    pub fn observe(&mut self, success: bool, t: Thresholds) -> Option<Transition> {
        let from = self.status;
        if success {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
            if self.consecutive_successes >= t.successes_to_up {
                self.status = MonitorStatus::Up;
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
            if self.consecutive_failures >= t.failures_to_down {
                self.status = MonitorStatus::Down;
            } else if from == MonitorStatus::Up {
                self.status = MonitorStatus::Pending;
            }
        }
        (self.status != from).then_some(Transition {
            from,
            to: self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_spec(extra: &str) -> MonitorSpec {
        toml_like(&format!(
            r#"{{"id":"api-health","service":"api","interval_secs":30,
                "check":{{"kind":"http","url":"https://api.example.com/health"{extra}}}}}"#
        ))
    }

    fn toml_like(json: &str) -> MonitorSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_follow_the_documented_values() {
        let m = http_spec("").validate("monitors[0]").unwrap();
        assert_eq!(m.name, "api-health");
        assert_eq!(m.timeout, Duration::from_secs(10));
        assert_eq!(m.thresholds, Thresholds::default());
        let Check::Http(h) = &m.check else { panic!() };
        assert_eq!(h.method, "GET");
        assert!(h.expected_status.contains(200) && h.expected_status.contains(399));
        assert!(!h.expected_status.contains(404));
    }

    #[test]
    fn short_intervals_get_a_timeout_below_the_interval() {
        let mut s = http_spec("");
        s.interval_secs = 1;
        assert_eq!(s.validate("m").unwrap().timeout, Duration::from_millis(800));
    }

    #[test]
    fn errors_name_the_toml_key() {
        let mut s = http_spec("");
        s.interval_secs = 0;
        let e = validate_monitors(&[http_spec(""), s.clone()]).unwrap_err();
        assert!(e.to_string().starts_with("monitors[1].id:"), "{e}");
        s.id = "other".into();
        let e = validate_monitors(&[http_spec(""), s.clone()]).unwrap_err();
        assert!(
            e.to_string().starts_with("monitors[1].interval_secs:"),
            "{e}"
        );
        s.interval_secs = 5;
        s.timeout_ms = Some(5000);
        let e = s.validate("monitors[1]").unwrap_err().to_string();
        assert!(e.starts_with("monitors[1].timeout_ms:"), "{e}");
        let e = http_spec(r#","expected_status":["200","6xx"]"#)
            .validate("monitors[0]")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("monitors[0].check.expected_status[1]:"),
            "{e}"
        );
        let e = http_spec(r#","json_path":"$.status""#)
            .validate("monitors[0]")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("monitors[0].check.json_value:"), "{e}");
        let mut s = http_spec("");
        s.service = "Not A Slug".into();
        let e = s.validate("monitors[3]").unwrap_err().to_string();
        assert!(e.starts_with("monitors[3].service:"), "{e}");
        let s = toml_like(
            r#"{"id":"d","service":"api","interval_secs":30,
                "check":{"kind":"dns","name":"example.com","expected":["1.2.3.4","nope"]}}"#,
        );
        let e = s.validate("monitors[4]").unwrap_err().to_string();
        assert!(e.starts_with("monitors[4].check.expected[1]:"), "{e}");
        let s = toml_like(
            r#"{"id":"t","service":"api","interval_secs":30,
                "check":{"kind":"http","url":"ftp://x"}}"#,
        );
        let e = s.validate("monitors[5]").unwrap_err().to_string();
        assert!(e.starts_with("monitors[5].check.url:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_serde() {
        let r: Result<MonitorSpec, _> = serde_json::from_str(
            r#"{"id":"x","service":"api","interval_secs":30,"intervall":3,
                "check":{"kind":"tcp","host":"db","port":5432}}"#,
        );
        assert!(r.is_err());
        let r: Result<MonitorSpec, _> = serde_json::from_str(
            r#"{"id":"x","service":"api","interval_secs":30,
                "check":{"kind":"http","url":"http://a/","keywrod":"ok"}}"#,
        );
        assert!(r.is_err(), "a typo in a check key must not be ignored");
    }

    #[test]
    fn status_sets_accept_codes_ranges_and_classes() {
        let s = StatusSet::parse(&["204".into(), "2xx".into(), "301-302".into()], "p").unwrap();
        assert!(s.contains(204) && s.contains(250) && s.contains(302));
        assert!(!s.contains(303) && !s.contains(404));
        for bad in ["99", "200-100", "7xx", "abc", "600"] {
            assert!(StatusSet::parse(&[bad.into()], "p").is_err(), "{bad}");
        }
    }

    #[test]
    fn status_judgement_follows_the_runbook() {
        let Check::Http(h) = http_spec("").validate("m").unwrap().check else {
            panic!()
        };
        assert_eq!(h.judge_status(200), None);
        assert_eq!(h.judge_status(302), None);
        assert_eq!(h.judge_status(500), Some(FailureKind::Crashed));
        assert_eq!(h.judge_status(503), Some(FailureKind::Crashed));
        assert_eq!(h.judge_status(404), Some(FailureKind::UnexpectedStatus));
        let Check::Http(h) = http_spec(r#","expected_status":["503"]"#)
            .validate("m")
            .unwrap()
            .check
        else {
            panic!()
        };
        assert_eq!(h.judge_status(503), None);
        assert_eq!(h.judge_status(200), Some(FailureKind::UnexpectedStatus));
    }

    #[test]
    fn body_keyword_and_json_path() {
        let Check::Http(h) =
            http_spec(r#","keyword":"ok","json_path":"$.checks[1].state","json_value":"ok""#)
                .validate("m")
                .unwrap()
                .check
        else {
            panic!()
        };
        assert!(h.needs_body());
        assert!(
            h.judge_body(r#"{"checks":[{"state":"bad"},{"state":"ok"}]}"#)
                .is_ok()
        );
        let e = h
            .judge_body(r#"{"checks":[{"state":"ok"},{"state":"degraded"}]}"#)
            .unwrap_err();
        assert!(e.contains("$.checks[1].state is \"degraded\""), "{e}");
        assert!(h.judge_body(r#"{"checks":[]} ok"#).is_err());
        assert!(h.judge_body("nothing").unwrap_err().contains("`ok`"));
    }

    #[test]
    fn json_paths() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":[1,{"c":true}]},"status":"up"}"#).unwrap();
        let get = |p: &str| JsonPath::parse(p, "p").unwrap().get(&v).cloned();
        assert_eq!(get("$.status"), Some(Value::from("up")));
        assert_eq!(get("status"), Some(Value::from("up")));
        assert_eq!(get("$.a.b[1].c"), Some(Value::from(true)));
        assert_eq!(get("$.a.b[5]"), None);
        assert_eq!(get("$"), Some(v.clone()));
        for bad in ["$.a..b", "$.a[x]", "$.a[1", "$.a[0]b"] {
            assert!(JsonPath::parse(bad, "p").is_err(), "{bad}");
        }
    }

    fn run(t: Thresholds, outcomes: &str) -> Vec<MonitorStatus> {
        let mut s = FlapState::default();
        outcomes
            .chars()
            .map(|c| {
                s.observe(c == '+', t);
                s.status
            })
            .collect()
    }

    #[test]
    fn flap_damping_needs_consecutive_results() {
        use MonitorStatus::{Down as D, Pending as P, Up as U};
        let t = Thresholds {
            failures_to_down: 3,
            successes_to_up: 2,
        };
        assert_eq!(run(t, "++"), [P, U]);
        // One failure makes an UP monitor pending; three in a row make it DOWN.
        assert_eq!(run(t, "++-+-"), [P, U, P, P, P]);
        assert_eq!(run(t, "++---"), [P, U, P, P, D]);
        // Alternating never confirms anything.
        assert_eq!(run(t, "-+-+-+"), [P; 6]);
        // DOWN stays DOWN through a single success.
        assert_eq!(run(t, "---+-++"), [P, P, D, D, D, D, U]);
        let fast = Thresholds {
            failures_to_down: 1,
            successes_to_up: 1,
        };
        assert_eq!(run(fast, "+-+"), [U, D, U]);
    }

    #[test]
    fn transitions_are_reported_once() {
        let t = Thresholds::default();
        let mut s = FlapState::default();
        let seen: Vec<_> = "++---+++"
            .chars()
            .filter_map(|c| s.observe(c == '+', t))
            .map(|tr| (tr.from, tr.to))
            .collect();
        use MonitorStatus::*;
        assert_eq!(
            seen,
            [(Pending, Up), (Up, Pending), (Pending, Down), (Down, Up)]
        );
    }
}
