//! Running one check against its target.
//!
//! Every check runs under a hard `tokio::time::timeout` of the monitor's timeout, on top of the
//! HTTP client's own, so a target that accepts and never answers costs one timeout and nothing
//! else. Failures are named as the runbook's triage does (refused → down, 5xx → crashed,
//! timeout → hung); judging statuses and bodies is pure and lives in `warroom_domain::monitor`.

use std::error::Error as _;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;
use warroom_domain::monitor::{Check, FailureKind, HttpCheck, Monitor};

use crate::cert;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Healthy.
    Up,
    /// Healthy, with something to fix soon (an expiring certificate).
    Warning,
    /// Failed.
    Down,
}

impl Outcome {
    /// Whether flap damping counts it as a success (warnings do).
    pub fn is_success(self) -> bool {
        !matches!(self, Outcome::Down)
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Up, warning or down.
    pub outcome: Outcome,
    /// Why it is not up.
    pub failure: Option<FailureKind>,
    /// From start of the check to its verdict (for HTTP: headers, plus the body when judged).
    pub latency: Duration,
    /// HTTP status, when one came back.
    pub status_code: Option<u16>,
    /// What went wrong, for people.
    pub error: Option<String>,
    /// The peer certificate's expiry, for HTTPS checks whose connection was new (a reused pooled
    /// connection carries no certificate to read).
    pub cert_not_after: Option<OffsetDateTime>,
}

impl CheckResult {
    fn up(latency: Duration) -> Self {
        CheckResult {
            outcome: Outcome::Up,
            failure: None,
            latency,
            status_code: None,
            error: None,
            cert_not_after: None,
        }
    }

    fn down(kind: FailureKind, latency: Duration, error: impl Into<String>) -> Self {
        CheckResult {
            outcome: Outcome::Down,
            failure: Some(kind),
            latency,
            status_code: None,
            error: Some(error.into()),
            cert_not_after: None,
        }
    }
}

/// Something that can run a monitor's check. [`Prober`] is the real one; the seam exists so the
/// scheduler can be driven under tokio's paused clock, where real sockets would see time jump.
pub trait Checker: Send + Sync + 'static {
    /// Runs the check. Must finish within `monitor.timeout` (plus scheduling noise).
    /// `now` is the wall-clock time, for certificate expiry.
    fn check(
        &self,
        monitor: &Monitor,
        now: OffsetDateTime,
    ) -> impl Future<Output = CheckResult> + Send;
}

/// Errors building a [`Prober`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The HTTP client could not be built (usually: no rustls crypto provider installed).
    #[error(
        "could not build the HTTP client for probes: {0}; install a rustls crypto provider first \
         (rustls::crypto::ring::default_provider().install_default())"
    )]
    Client(#[source] reqwest::Error),
}

/// Bodies larger than this are cut: a health endpoint that sends megabytes is misconfigured, and
/// a keyword check must not let a target make the worker buffer without bound.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Runs checks. Holds one `reqwest::Client` so every HTTP check shares its connection pool:
/// keep-alive connections to a target are reused between checks, as a browser's would be.
#[derive(Debug, Clone)]
pub struct Prober {
    http: reqwest::Client,
}

impl Prober {
    /// A prober with the default client: no redirects (so `expected_status` sees the first
    /// answer, and a `301` to a login page is not mistaken for health), no proxy from the
    /// environment, TLS info on for certificate expiry.
    pub fn new() -> Result<Self, ProbeError> {
        Self::builder()
            .build()
            .map(Self::with_client)
            .map_err(ProbeError::Client)
    }

    /// The client builder [`Prober::new`] uses, to add trust roots or change settings.
    pub fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tls_info(true)
            .user_agent(concat!("warroom-probe/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
    }

    /// A prober around an existing client (which should have `tls_info(true)` for expiry).
    pub fn with_client(http: reqwest::Client) -> Self {
        Prober { http }
    }

    async fn run(&self, monitor: &Monitor, now: OffsetDateTime) -> CheckResult {
        let start = Instant::now();
        let check = async {
            match &monitor.check {
                Check::Http(h) => self.http_check(h, monitor.timeout, start, now).await,
                Check::Tcp { host, port } => tcp_check(host, *port, start).await,
                Check::Dns { name, expected } => dns_check(name, expected, start).await,
            }
        };
        match tokio::time::timeout(monitor.timeout, check).await {
            Ok(r) => r,
            Err(_) => CheckResult::down(
                FailureKind::Hung,
                start.elapsed(),
                format!("no answer within {} ms", monitor.timeout.as_millis()),
            ),
        }
    }

    async fn http_check(
        &self,
        h: &HttpCheck,
        timeout: Duration,
        start: Instant,
        now: OffsetDateTime,
    ) -> CheckResult {
        let method = match reqwest::Method::from_bytes(h.method.as_bytes()) {
            Ok(m) => m,
            Err(e) => {
                return CheckResult::down(
                    FailureKind::UnexpectedStatus,
                    start.elapsed(),
                    e.to_string(),
                );
            }
        };
        let mut req = self.http.request(method, &h.url).timeout(timeout);
        for (k, v) in &h.headers {
            req = req.header(k, v);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let (kind, text) = classify_reqwest(&e);
                return CheckResult::down(kind, start.elapsed(), text);
            }
        };
        let status = resp.status().as_u16();
        let cert_not_after = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .and_then(cert::not_after);
        let mut result = CheckResult {
            status_code: Some(status),
            cert_not_after,
            ..CheckResult::up(Duration::ZERO)
        };
        if let Some(kind) = h.judge_status(status) {
            result.outcome = Outcome::Down;
            result.failure = Some(kind);
            result.error = Some(format!("HTTP {status}"));
        } else if h.needs_body() {
            match read_body(&mut resp).await {
                Ok(body) => {
                    if let Err(why) = h.judge_body(&body) {
                        result.outcome = Outcome::Down;
                        result.failure = Some(FailureKind::KeywordMissing);
                        result.error = Some(why);
                    }
                }
                Err(e) => {
                    let (kind, text) = classify_reqwest(&e);
                    result.outcome = Outcome::Down;
                    result.failure = Some(kind);
                    result.error = Some(format!("reading the body: {text}"));
                }
            }
        }
        if result.outcome == Outcome::Up
            && let (Some(days), Some(end)) = (h.cert_expiry_warn_days, cert_not_after)
        {
            let left = end - now;
            if left < time::Duration::days(i64::from(days)) {
                result.outcome = Outcome::Warning;
                result.failure = Some(FailureKind::CertExpiring);
                result.error = Some(format!(
                    "certificate expires in {} days (warning at {days})",
                    left.whole_days()
                ));
            }
        }
        result.latency = start.elapsed();
        result
    }
}

impl Checker for Prober {
    fn check(
        &self,
        monitor: &Monitor,
        now: OffsetDateTime,
    ) -> impl Future<Output = CheckResult> + Send {
        self.run(monitor, now)
    }
}

async fn read_body(resp: &mut reqwest::Response) -> Result<String, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY_BYTES - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Names a client error the runbook's way from its source chain: reqwest's own flags do not
/// tell refused from unreachable, nor DNS from TLS, and rustls is not a dependency of ours to
/// downcast to, so TLS and DNS failures are recognised by the text hyper and rustls give them.
fn classify_reqwest(e: &reqwest::Error) -> (FailureKind, String) {
    let mut text = e.to_string();
    let mut refused = false;
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            refused = true;
        }
        source = s.source();
    }
    let lower = text.to_lowercase();
    let kind = if e.is_timeout() {
        FailureKind::Hung
    } else if refused || lower.contains("connection refused") {
        FailureKind::Down
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        FailureKind::DnsFailure
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        FailureKind::TlsError
    } else {
        // Reset, unreachable, closed before an answer: nothing usable is listening.
        FailureKind::Down
    };
    (kind, text)
}

async fn resolve(host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{host} resolved to no addresses"))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

async fn tcp_check(host: &str, port: u16, start: Instant) -> CheckResult {
    // Resolve first so a DNS failure is named as one, not as a refused connection.
    let addrs = match resolve(host, port).await {
        Ok(a) => a,
        Err(e) => return CheckResult::down(FailureKind::DnsFailure, start.elapsed(), e),
    };
    // Refused and unreachable both mean nothing usable listens; a silent peer ends in the outer
    // timeout and is reported as hung.
    let mut last = String::new();
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return CheckResult::up(start.elapsed()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    CheckResult::down(FailureKind::Down, start.elapsed(), last)
}

async fn dns_check(
    name: &str,
    expected: &std::collections::BTreeSet<IpAddr>,
    start: Instant,
) -> CheckResult {
    let addrs = match resolve(name, 0).await {
        Ok(a) => a,
        Err(e) => return CheckResult::down(FailureKind::DnsFailure, start.elapsed(), e),
    };
    let got: std::collections::BTreeSet<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|ip| !got.contains(ip))
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        CheckResult::up(start.elapsed())
    } else {
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        CheckResult::down(
            FailureKind::DnsFailure,
            start.elapsed(),
            format!(
                "{name} resolved to {} but not to {}",
                got.join(", "),
                missing.join(", ")
            ),
        )
    }
}
