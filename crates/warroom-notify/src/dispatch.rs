//! The outbox dispatcher: lease, deliver, record.

use std::{collections::HashMap, sync::Arc};
use time::Duration;
use warroom_domain::{EventKind, notify::RetryDecision, notify::RetryPolicy};
use warroom_store::{Change, Clock, OutboxMessage, Store};

use tokio::task::JoinSet;

use crate::{Adapter, DeliveryError};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchOutcome {
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
}

impl DispatchOutcome {
    /// Nothing was due.
    pub fn is_idle(&self) -> bool {
        self.delivered + self.retried + self.failed == 0
    }
}

/// Delivers due outbox messages through the configured adapters.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    adapters: HashMap<String, Arc<dyn Adapter>>,
    policy: RetryPolicy,
    /// How long a leased message stays with this dispatcher before another may take it; longer
    /// than any adapter timeout, so a slow delivery is not duplicated by a second dispatcher.
    lease: Duration,
    batch: i64,
    throttle: Throttle,
}

/// At most `max_pages` pages to one person per `window`, so an alert storm cannot bury anyone:
/// the incidents and their channel notifications still happen, the person is not paged again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Pages allowed per window.
    pub max_pages: i64,
    /// The window.
    pub window: Duration,
}

impl Default for Throttle {
    /// Ten pages in ten minutes: more than any one person can act on.
    fn default() -> Self {
        Throttle {
            max_pages: 10,
            window: Duration::minutes(10),
        }
    }
}

impl Dispatcher {
    /// A dispatcher over named channels.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        adapters: HashMap<String, Arc<dyn Adapter>>,
        policy: RetryPolicy,
    ) -> Self {
        Dispatcher {
            store,
            clock,
            adapters,
            policy,
            lease: Duration::seconds(60),
            batch: 100,
            throttle: Throttle::default(),
        }
    }

    /// Replaces the default per-person page throttle.
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    /// Drops pages to people who have had their share; the rest go out.
    async fn admit(
        &self,
        due: Vec<OutboxMessage>,
    ) -> Result<Vec<OutboxMessage>, warroom_store::StoreError> {
        let since = self.clock.now() - self.throttle.window;
        let mut this_pass: std::collections::HashMap<String, i64> =
            std::collections::HashMap::new();
        let mut admitted = Vec::with_capacity(due.len());
        for m in due {
            let Some(person) = m
                .recipient
                .clone()
                .filter(|_| m.notification.kind == warroom_domain::notify::NotificationKind::Page)
            else {
                admitted.push(m);
                continue;
            };
            let sent = self.store.pages_delivered_to(&person, since).await?
                + this_pass.get(&person).copied().unwrap_or(0);
            if sent >= self.throttle.max_pages {
                let reason = format!(
                    "{person} was paged {sent} times in the last {} (throttle {}); not paged again",
                    warroom_domain::timefmt::human_duration(self.throttle.window),
                    self.throttle.max_pages
                );
                self.store.record_throttled(m.id, &reason).await?;
                self.on_timeline(
                    &m,
                    EventKind::Note {
                        text: format!("Page throttled: {reason}"),
                    },
                )
                .await;
                tracing::warn!(outbox.id = m.id, recipient = %person, "page throttled");
                continue;
            }
            *this_pass.entry(person).or_insert(0) += 1;
            admitted.push(m);
        }
        Ok(admitted)
    }

    fn spawn_deliveries(
        &self,
        due: Vec<OutboxMessage>,
        tasks: &mut JoinSet<(OutboxMessage, Result<(), DeliveryError>)>,
    ) {
        for message in due {
            let adapter = self.adapters.get(&message.channel).cloned();
            tasks.spawn(async move {
                let result = match adapter {
                    Some(a) => a.deliver(&message).await,
                    None => Err(DeliveryError::Permanent(format!(
                        "no channel named `{}` is configured; add it to the config or remove its routing",
                        message.channel
                    ))),
                };
                (message, result)
            });
        }
    }

    async fn settle(
        &self,
        message: OutboxMessage,
        result: Result<(), DeliveryError>,
        outcome: &mut DispatchOutcome,
    ) -> Result<(), warroom_store::StoreError> {
        match result {
            Ok(()) => {
                self.store
                    .record_delivered(message.id, self.clock.now())
                    .await?;
                self.on_timeline(
                    &message,
                    EventKind::NotificationDelivered {
                        channel: message.channel.clone(),
                        notification: message.notification.kind,
                        attempts: message.attempts,
                    },
                )
                .await;
                outcome.delivered += 1;
                tracing::info!(outbox.id = message.id, channel = %message.channel, "notification delivered");
                Ok(())
            }
            Err(e) => self.failed(&message, e, outcome).await,
        }
    }

    /// One pass: every channel's oldest due message, delivered concurrently across channels,
    /// returning when all of them are settled.
    pub async fn run_once(&self) -> Result<DispatchOutcome, warroom_store::StoreError> {
        let due = self
            .store
            .claim_due(self.clock.now(), self.lease, self.batch)
            .await?;
        let due = self.admit(due).await?;
        let mut tasks = JoinSet::new();
        self.spawn_deliveries(due, &mut tasks);
        let mut outcome = DispatchOutcome::default();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((message, result)) = joined {
                self.settle(message, result, &mut outcome).await?;
            }
        }
        Ok(outcome)
    }

    async fn failed(
        &self,
        message: &OutboxMessage,
        e: DeliveryError,
        outcome: &mut DispatchOutcome,
    ) -> Result<(), warroom_store::StoreError> {
        let now = self.clock.now();
        let decision = match &e {
            DeliveryError::Permanent(_) => RetryDecision::GiveUp,
            DeliveryError::Retry { retry_after, .. } => {
                let attempts = u32::try_from(message.attempts + 1).unwrap_or(u32::MAX);
                let ra = retry_after.and_then(|d| Duration::try_from(d).ok());
                self.policy
                    .next(attempts, message.created_at, now, rand::random::<f64>(), ra)
            }
        };
        match decision {
            RetryDecision::RetryAt(at) => {
                self.store
                    .record_failed_attempt(message.id, &e.to_string(), Some(at))
                    .await?;
                outcome.retried += 1;
                tracing::warn!(outbox.id = message.id, channel = %message.channel, error = %e, "notification will be retried");
            }
            RetryDecision::GiveUp => {
                self.store
                    .record_failed_attempt(message.id, &e.to_string(), None)
                    .await?;
                self.on_timeline(
                    message,
                    EventKind::NotificationFailed {
                        channel: message.channel.clone(),
                        notification: message.notification.kind,
                        error: e.to_string(),
                    },
                )
                .await;
                outcome.failed += 1;
                tracing::error!(outbox.id = message.id, channel = %message.channel, error = %e, "notification given up");
            }
        }
        Ok(())
    }

    async fn on_timeline(&self, message: &OutboxMessage, event: EventKind) {
        let Some(number) = message.incident else {
            return;
        };
        let r = self
            .store
            .mutate_incident(
                number,
                "warroom",
                self.clock.now(),
                Box::new(move |_| Ok(Change::from(vec![event]))),
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(incident.number = number, error = %e, "could not record the delivery on the timeline");
        }
    }

    /// Passes until nothing is due: for tests on a manual clock.
    pub async fn run_until_idle(&self) -> Result<DispatchOutcome, warroom_store::StoreError> {
        let mut total = DispatchOutcome::default();
        loop {
            let o = self.run_once().await?;
            if o.is_idle() {
                return Ok(total);
            }
            total.delivered += o.delivered;
            total.retried += o.retried;
            total.failed += o.failed;
        }
    }

    /// Runs until `shutdown`. Each delivery is settled as soon as it finishes and the next due
    /// message is claimed at once, so a slow channel (a receiver taking its full timeout) never
    /// holds back another channel's page. Wakes on every in-process enqueue, and at least every
    /// `poll` for retries and for messages enqueued by other processes.
    pub async fn run(
        &self,
        poll: std::time::Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let signal = self.store.outbox_signal();
        let mut tasks = JoinSet::new();
        let mut outcome = DispatchOutcome::default();
        loop {
            match self
                .store
                .claim_due(self.clock.now(), self.lease, self.batch)
                .await
            {
                Ok(due) => match self.admit(due).await {
                    Ok(due) => self.spawn_deliveries(due, &mut tasks),
                    Err(e) => {
                        tracing::error!(error = %e, "throttle check failed; the leases expire and it is retried")
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "claiming due notifications failed; retrying")
                }
            }
            tokio::select! {
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok((message, result)) = joined
                        && let Err(e) = self.settle(message, result, &mut outcome).await
                    {
                        tracing::error!(error = %e, "recording a delivery failed; the lease will expire and it is retried");
                    }
                }
                _ = signal.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
