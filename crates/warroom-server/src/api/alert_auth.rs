//! Who may send alerts: an API token (responder or higher), or a configured alert source's own
//! secret (`[[alert_sources]]`), so an Alertmanager can be given a credential that can do
//! nothing but deliver alerts. Alertmanager sends it as `Authorization: Bearer <secret>` from
//! `http_config.authorization.credentials` (or `credentials_file`); Prometheus the same from its
//! `alerting.alertmanagers[].authorization`.
//!
//! Only the SHA-256 of each secret is kept in memory, compared in constant time against every
//! source (so the position of a match does not show in the timing either), and never logged.

use axum::{extract::FromRequestParts, http::request::Parts};
use sha2::{Digest, Sha256};
use warroom_domain::alert::Alert;

use crate::{
    AppState,
    error::ApiError,
    extract::{Caller, Responder},
};

/// The annotation that records which configured source delivered an alert. An annotation, not
/// a label: labels make the fingerprint, and the same alert from two Alertmanagers of a cluster
/// must stay one alert.
pub const SOURCE_ANNOTATION: &str = "warroom_source";

/// A configured alert source: its name and the hash of its secret.
#[derive(Clone)]
pub struct AlertSource {
    name: String,
    secret_sha256: [u8; 32],
}

impl AlertSource {
    /// A source named `name` that authenticates with `secret`; only the hash is kept.
    pub fn new(name: impl Into<String>, secret: &str) -> Self {
        AlertSource {
            name: name.into(),
            secret_sha256: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Its name, as recorded on the alerts it delivers.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for AlertSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSource")
            .field("name", &self.name)
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The source whose secret was presented, checking every source whatever matches.
fn source_for<'a>(sources: &'a [AlertSource], presented: &str) -> Option<&'a AlertSource> {
    let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for s in sources {
        if same(&s.secret_sha256, &hash) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// Whoever delivered the alerts.
#[derive(Debug)]
pub enum AlertSender {
    /// A configured source, by its secret.
    Source(String),
    /// An API token with the responder role or higher.
    Token(String),
}

impl AlertSender {
    /// Records a source's name on each alert; token deliveries are left as they came.
    pub fn tag(&self, mut alerts: Vec<Alert>) -> Vec<Alert> {
        if let AlertSender::Source(name) = self {
            for a in &mut alerts {
                a.annotations
                    .insert(SOURCE_ANNOTATION.to_owned(), name.clone());
            }
        }
        alerts
    }
}

impl FromRequestParts<AppState> for AlertSender {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let sources = &state.settings.alerts.sources;
        if !sources.is_empty()
            && let Some(secret) = parts
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
            && let Some(source) = source_for(sources, secret)
        {
            return Ok(AlertSender::Source(source.name.clone()));
        }
        // Not a source's secret: it must be a token, with the token's own errors (401/403).
        let caller = Caller::<Responder>::from_request_parts(parts, state).await?;
        Ok(AlertSender::Token(caller.name().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_by_hash_and_never_show_in_debug() {
        let sources = [
            AlertSource::new("am-prod", "prod-secret-0123456789"),
            AlertSource::new("am-stage", "stage-secret-0123456789"),
        ];
        assert_eq!(
            source_for(&sources, "stage-secret-0123456789").map(AlertSource::name),
            Some("am-stage")
        );
        assert!(source_for(&sources, "prod-secret-012345678").is_none());
        assert!(source_for(&sources, "").is_none());
        let dbg = format!("{sources:?}");
        assert!(
            dbg.contains("am-prod") && !dbg.contains("prod-secret"),
            "{dbg}"
        );
    }
}
