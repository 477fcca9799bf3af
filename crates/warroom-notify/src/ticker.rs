//! The incident clock: runs each open (or recently resolved) incident's pure `tick` and
//! enqueues what is due. Everything it decides is recomputed inside the incident's lock, so two
//! tickers, or a ticker restarted mid-pass, never send a reminder twice.

use std::{collections::HashSet, sync::Arc};
use tokio::sync::Mutex;
use warroom_domain::{
    IncidentStatus, SeverityPolicies,
    escalation::{Decorate, Delivery, PagingConfig, TickContext},
    notify::{Notification, NotificationKind, Routing},
};
use warroom_store::{Change, Clock, IncidentFilter, NewOutboxMessage, Store, StoreError};

/// Runs the incident clock.
pub struct IncidentTicker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policies: SeverityPolicies,
    paging: Arc<PagingConfig>,
    routing: Routing,
    /// Schedules already alarmed for the gap they are in; cleared when covered again.
    alarmed: Mutex<HashSet<String>>,
    /// Adds per-person content (a signed acknowledgement link) to pages.
    decorate: Option<Arc<Decorate>>,
}

/// Deliveries become outbox rows with their recipient and delay.
fn deliveries(d: Vec<Delivery>, now: time::OffsetDateTime) -> Vec<NewOutboxMessage> {
    d.into_iter()
        .map(|d| NewOutboxMessage::from_delivery(d, now))
        .collect()
}

impl IncidentTicker {
    /// A ticker over the store.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        policies: SeverityPolicies,
        paging: Arc<PagingConfig>,
        routing: Routing,
    ) -> Self {
        IncidentTicker {
            store,
            clock,
            policies,
            paging,
            routing,
            alarmed: Mutex::new(HashSet::new()),
            decorate: None,
        }
    }

    /// Adds per-person content to every page this ticker sends.
    pub fn with_decorator(mut self, decorate: Arc<Decorate>) -> Self {
        self.decorate = Some(decorate);
        self
    }

    /// One pass over every incident that can still have something due. Returns how many
    /// incidents changed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        self.check_coverage(now).await?;
        let filter = IncidentFilter {
            statuses: IncidentStatus::ALL
                .into_iter()
                .filter(|s| *s != IncidentStatus::Closed)
                .collect(),
            limit: 500,
            ..Default::default()
        };
        let mut changed = 0;
        for incident in self.store.list_incidents(&filter).await? {
            // A dry run on a copy: most passes find nothing due and touch nothing.
            let service_name = match incident.services.first() {
                Some(s) => self
                    .store
                    .service(s.as_str())
                    .await?
                    .map(|s| s.name)
                    .unwrap_or_else(|| s.to_string()),
                None => String::new(),
            };
            let ctx = TickContext {
                policies: &self.policies,
                escalation: self.paging.policy.as_ref(),
                schedules: &self.paging.schedules,
                service_name: &service_name,
                timeline: &[],
            };
            let (events, out) = incident.clone().tick(&ctx, now);
            if events.is_empty() && out.is_empty() {
                continue;
            }
            let timeline = self.store.timeline(incident.number).await?;
            let policies = self.policies.clone();
            let paging = self.paging.clone();
            let routing = self.routing.clone();
            let decorate = self.decorate.clone();
            let r = self
                .store
                .mutate_incident(
                    incident.number,
                    "warroom",
                    now,
                    Box::new(move |i| {
                        let ctx = TickContext {
                            policies: &policies,
                            escalation: paging.policy.as_ref(),
                            schedules: &paging.schedules,
                            service_name: &service_name,
                            timeline: &timeline,
                        };
                        let (events, out) = i.tick(&ctx, now);
                        Ok(Change {
                            events,
                            outbox: deliveries(
                                paging.route_with(out, &routing, decorate.as_deref()),
                                now,
                            ),
                        })
                    }),
                )
                .await;
            match r {
                Ok((_, ev)) if !ev.is_empty() => changed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(incident.number = incident.number, error = %e, "incident tick failed")
                }
            }
        }
        Ok(changed)
    }

    /// The runbook's on-call promise only holds if somebody is on call: alarm the team once per
    /// gap for every schedule the escalation policy pages.
    async fn check_coverage(&self, now: time::OffsetDateTime) -> Result<(), StoreError> {
        let Some(policy) = &self.paging.policy else {
            return Ok(());
        };
        let used: HashSet<&str> = policy
            .levels
            .iter()
            .flat_map(|l| l.targets.iter())
            .filter_map(|t| match t {
                warroom_domain::escalation::Target::Schedule { schedule } => {
                    Some(schedule.as_str())
                }
                _ => None,
            })
            .collect();
        let mut alarmed = self.alarmed.lock().await;
        for s in self
            .paging
            .schedules
            .iter()
            .filter(|s| used.contains(s.name.as_str()))
        {
            if s.on_call_at(now).is_some() {
                alarmed.remove(&s.name);
                continue;
            }
            if alarmed.insert(s.name.clone()) {
                tracing::warn!(schedule = %s.name, "nobody is on call");
                let n = Notification {
                    kind: NotificationKind::Info,
                    incident: None,
                    severity: None,
                    title: format!("Nobody is on call for schedule {}", s.name),
                    text: format!(
                        "Schedule {} has a gap in coverage now and policy {} pages it. Add an override or fix the rotation.",
                        s.name, policy.name
                    ),
                    incident_channel: None,
                };
                let channels: Vec<String> = if self.routing.team.is_empty() {
                    self.routing.on_call.clone()
                } else {
                    self.routing.team.clone()
                };
                self.store
                    .enqueue(
                        channels
                            .into_iter()
                            .map(|channel| NewOutboxMessage::new(channel, n.clone()))
                            .collect(),
                        now,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs until `shutdown`, once per `period`.
    pub async fn run(
        &self,
        period: std::time::Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "incident clock pass failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
