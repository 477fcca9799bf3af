//! warroom's HTTP server: the JSON API under `/api/v1`, health endpoints and the OpenAPI
//! document. The app is a library: [`router`] builds it, [`serve`] runs it on a listener.
#![deny(missing_docs)]
#![recursion_limit = "256"]

pub mod ack_link;
pub mod api;
pub mod error;
pub mod extract;
mod home;
mod html;
pub mod openapi;
pub mod pipeline;
pub mod postmortems;
mod router;

use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;
use warroom_domain::SeverityPolicies;
use warroom_store::{Clock, Store};

pub use router::{ROUTES, router};

/// What the server needs to know from the configuration.
#[derive(Clone)]
pub struct Settings {
    /// The severity table in force.
    pub policies: SeverityPolicies,
    /// Refuse services that are not in the config instead of registering them on first use.
    pub strict_services: bool,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Which channels hear about what.
    pub routing: warroom_domain::notify::Routing,
    /// The post-mortem folder, when configured.
    pub postmortems: Option<postmortems::PostmortemSettings>,
    /// The follow-up pipeline's webhook and API, when configured.
    pub pipeline: Option<pipeline::PipelineSettings>,
    /// Escalation policy, schedules and people's contacts.
    pub paging: std::sync::Arc<warroom_domain::escalation::PagingConfig>,
    /// Signed one-click acknowledgement links, when a public URL and secret are configured.
    pub ack_links: Option<std::sync::Arc<ack_link::AckLinks>>,
    /// How alerts become incidents.
    pub alerts: api::alerts::AlertSettings,
    /// Where people reach this warroom, for links in notifications.
    pub public_url: Option<String>,
    /// The configured monitors, for the API.
    pub monitors: Vec<warroom_domain::monitor::Monitor>,
    /// More Prometheus text for `/metrics` from components the server does not know (the probe
    /// scheduler), so that the server does not depend on them.
    pub extra_metrics: Option<std::sync::Arc<dyn Fn() -> String + Send + Sync>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("strict_services", &self.strict_services)
            .field("body_limit", &self.body_limit)
            .field("routing", &self.routing)
            .field("ack_links", &self.ack_links)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policies: SeverityPolicies::default(),
            strict_services: false,
            body_limit: 1024 * 1024,
            routing: Default::default(),
            postmortems: None,
            pipeline: None,
            paging: Default::default(),
            ack_links: None,
            alerts: Default::default(),
            public_url: None,
            extra_metrics: None,
            monitors: vec![],
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock; a manual one in tests.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The silences in force: the config's and the API's.
    pub silences: Arc<api::silences::SilenceBoard>,
    /// When this state was made: the server's start, for Alertmanager's `uptime`.
    pub started: time::OffsetDateTime,
}

impl AppState {
    /// The state for a store, a clock and settings.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let silences = Arc::new(api::silences::SilenceBoard::new(
            settings.alerts.silences.clone(),
        ));
        AppState {
            started: clock.now(),
            store,
            clock,
            settings: Arc::new(settings),
            silences,
        }
    }
}

/// Serves until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
