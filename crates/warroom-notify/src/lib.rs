//! Delivering notifications from the outbox.
//!
//! Each channel kind is an [`Adapter`] in its own module under `adapters/`; adding a kind
//! touches that folder and the config that names instances of it. The [`Dispatcher`] leases due
//! messages from the store, hands each to its channel's adapter, and records the outcome:
//! delivered, retried later (exponential backoff with jitter, honouring `Retry-After`), or given
//! up after the policy's maximum age, which becomes a warning on the incident's timeline.
#![deny(missing_docs)]

pub mod adapters;
mod dispatch;
mod ticker;

use async_trait::async_trait;
use std::time::Duration;
use warroom_store::OutboxMessage;

pub use dispatch::{DispatchOutcome, Dispatcher, Throttle};
pub use ticker::IncidentTicker;

/// Why a delivery did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (timeouts, 5xx, 429, connection refused).
    #[error("{error}")]
    Retry {
        /// What happened.
        error: String,
        /// The receiver's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help (4xx other than 408/429, bad configuration).
    #[error("{0}")]
    Permanent(String),
}

/// A channel kind: turns a domain notification into a request to one receiver.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Delivers one message. Must carry `message.idempotency_key` in whatever form the receiver
    /// can use to drop duplicates, since a crash between sending and recording resends.
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), DeliveryError>;
}
