//! Generic webhook: the notification as JSON, signed with HMAC-SHA256.
//!
//! Headers: `X-Warroom-Signature: sha256=<hex>` over the exact body bytes with the endpoint's
//! secret, `Idempotency-Key` (also `X-Warroom-Idempotency-Key`) stable across retries, and
//! `X-Warroom-Event` with the notification kind.

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use std::{fmt, time::Duration};
use warroom_store::OutboxMessage;

use crate::{Adapter, DeliveryError};

/// One webhook endpoint.
pub struct Webhook {
    url: String,
    secret: Vec<u8>,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `sha256=<hex>` of the body under `secret`: what receivers recompute to verify.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case exists only for fixed-key-size MACs.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body sent for a message.
pub fn body(message: &OutboxMessage) -> serde_json::Value {
    let n = &message.notification;
    json!({
        "id": message.id,
        "idempotency_key": message.idempotency_key,
        "kind": n.kind,
        "incident": message.incident,
        "severity": n.severity,
        "title": n.title,
        "text": n.text,
        "created_at": warroom_domain::timefmt::rfc3339(message.created_at),
    })
}

/// Reads `Retry-After` in its delta-seconds form; HTTP dates are rare from webhook receivers and
/// fall back to the policy's own backoff.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// Maps an HTTP answer to the delivery outcome shared by HTTP-based adapters.
pub fn classify_status(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    what: &str,
) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let error = format!("{what} answered HTTP {}", status.as_u16());
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(DeliveryError::Retry {
            error,
            retry_after: retry_after(headers),
        })
    } else {
        Err(DeliveryError::Permanent(format!(
            "{error}; check the endpoint's URL and secret"
        )))
    }
}

impl Webhook {
    /// An endpoint. `client` is shared across adapters so connections are reused.
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<Vec<u8>>,
        timeout: Duration,
        client: reqwest::Client,
    ) -> Self {
        Webhook {
            url: url.into(),
            secret: secret.into(),
            timeout,
            client,
        }
    }
}

#[async_trait]
impl Adapter for Webhook {
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&body(message))
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let kind = serde_json::to_value(message.notification.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let resp = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Warroom-Signature", signature(&self.secret, &body))
            .header("Idempotency-Key", &message.idempotency_key)
            .header("X-Warroom-Idempotency-Key", &message.idempotency_key)
            .header("X-Warroom-Event", kind)
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Retry {
                error: if e.is_timeout() {
                    format!("webhook timed out after {:?}", self.timeout)
                } else {
                    format!("webhook unreachable: {e}")
                },
                retry_after: None,
            })?;
        classify_status(resp.status(), resp.headers(), "webhook")
    }
}
